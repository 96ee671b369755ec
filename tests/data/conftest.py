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


@pytest.fixture(scope="session")
def tiny_tables(protocol, clusters, allocation, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """A tiny valid trial (4 LAs, 12 keyworkers, 12 families) as the text of its CSV tables.

    Built once; rule tests mutate a copy (see ``write_tables`` in ``test_validate.py``), so a
    broken dataset differs from a valid one in exactly the cell a test changed.
    """
    tiny = simulate_trial(
        protocol,
        clusters.iloc[:4],
        allocation.iloc[:4],
        seed=11,
        n_keyworkers=1,
        families_per_keyworker=1,
    )
    d = tmp_path_factory.mktemp("tiny")
    tiny.save(d, fmt="csv")
    return {f.stem: pd.read_csv(f, dtype=str, keep_default_na=False) for f in d.glob("*.csv")}
