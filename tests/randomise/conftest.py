from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = ROOT / "protocols" / "supporting-families-clusters.csv"


@pytest.fixture
def clusters() -> pd.DataFrame:
    return pd.read_csv(CLUSTERS, dtype={"la_id": str})
