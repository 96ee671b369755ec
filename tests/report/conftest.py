"""Fixtures of the report tests: a second trial beside the demo (``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialkit.pipeline import DemoResult, run_demo

PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"
#: the second trial: 16 LAs in 4 regions, its own outcomes, arms, courses and timepoints
TRIAL16_PROTOCOL = PROTOCOLS / "family-hubs-reflective-practice-pilot.toml"
TRIAL16_CLUSTERS = PROTOCOLS / "family-hubs-clusters.csv"


@pytest.fixture(scope="session")
def trial16(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    """The whole pipeline on the second trial with simulated data, once per session (~15 s).

    Read-only for its users, like the ``demo`` fixture; the generation time is fixed so
    that reports are byte-comparable.
    """
    return run_demo(
        tmp_path_factory.mktemp("trial16") / "out",
        protocol_path=TRIAL16_PROTOCOL,
        clusters_path=TRIAL16_CLUSTERS,
        generated="2000-01-01 00:00:00 UTC",
    )
