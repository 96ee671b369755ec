"""One demo run shared by the analysis tests (about 5 s)."""

from __future__ import annotations

import pytest

from trialkit.pipeline import DemoResult, run_demo


@pytest.fixture(scope="package")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return run_demo(tmp_path_factory.mktemp("demo") / "out", generated="2000-01-01 00:00:00 UTC")
