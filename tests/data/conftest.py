from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from trialkit.protocol.load import load_protocol
from trialkit.simulate.trial import simulate_trial

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"
CLUSTERS = ROOT / "protocols" / "supporting-families-clusters.csv"


@pytest.fixture(scope="session")
def protocol():
    return load_protocol(PROTOCOL)


@pytest.fixture(scope="session")
def clusters() -> pd.DataFrame:
    return pd.read_csv(CLUSTERS, dtype={"la_id": str})


@pytest.fixture(scope="session")
def allocation(clusters) -> pd.DataFrame:
    return pd.DataFrame({"cluster": clusters["la_id"], "arm": ["intervention", "control"] * 6})


@pytest.fixture(scope="session")
def synthetic(protocol, clusters, allocation):
    return simulate_trial(
        protocol, clusters, allocation, seed=11, n_keyworkers=5, families_per_keyworker=3
    )


@pytest.fixture(scope="session")
def sim_dir(synthetic, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sim") / "data"
    synthetic.save(d, fmt="csv")
    return d
