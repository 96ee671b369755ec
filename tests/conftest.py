"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest
from hypothesis import settings

from trialkit.pipeline import DemoResult, run_demo

# Property tests check invariants, not speed: no per-example deadline (a loaded CI machine
# would otherwise fail them at random).  Speed is measured in benchmarks/.
settings.register_profile("trialkit", deadline=None)
settings.load_profile("trialkit")

#: The report's generation time in the shared demo, so reports are byte-comparable.
DEMO_GENERATED = "2000-01-01 00:00:00 UTC"


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    """The demo pipeline, run once per session (about 5 s).

    Read-only for its users: a test that modifies a stage's output copies it first
    (``shutil.copytree(demo.data, tmp_path / "data")``).  ``trialkit demo`` through the
    CLI is run once more, by ``tests/cli/test_cmd_demo.py``.
    """
    return run_demo(tmp_path_factory.mktemp("demo") / "out", generated=DEMO_GENERATED)
