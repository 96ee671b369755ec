"""Fixtures for the fidelity tests: the pilot protocol and small hand-built protocols."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
PILOT = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"


@pytest.fixture(scope="session")
def pilot_path() -> Path:
    return PILOT


@pytest.fixture(scope="session")
def pilot_doc() -> dict[str, Any]:
    return tomllib.loads(PILOT.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def pilot(pilot_doc: dict[str, Any]) -> Any:
    from trialkit.protocol.load import protocol_from_mapping

    return protocol_from_mapping(pilot_doc)


@pytest.fixture
def make_protocol(pilot_doc: dict[str, Any]) -> Any:
    """Build the pilot protocol with a replaced list of indicators and [fidelity] settings."""
    from trialkit.protocol.load import protocol_from_mapping

    def make(indicators: list[dict[str, Any]], fidelity: dict[str, Any] | None = None) -> Any:
        doc = copy.deepcopy(pilot_doc)
        for node in doc["logic_model"]["nodes"]:
            node.pop("indicators", None)
        doc["logic_model"]["nodes"][3]["indicators"] = indicators
        if fidelity is not None:
            doc["fidelity"] = fidelity
        return protocol_from_mapping(doc)

    return make


def allocation(las_int: list[str], las_ctl: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cluster": las_int + las_ctl,
            "arm": ["intervention"] * len(las_int) + ["control"] * len(las_ctl),
        }
    )


@pytest.fixture
def small() -> dict[str, pd.DataFrame]:
    """Two intervention LAs (A, B) and one control LA (C) with keyworkers and families."""
    kw = pd.DataFrame(
        {
            "keyworker_id": ["a1", "a2", "a3", "b1", "b2", "c1"],
            "la_id": ["A", "A", "A", "B", "B", "C"],
            "role": ["champion", "keyworker", "keyworker", "champion", "keyworker", "keyworker"],
            "start_date": ["2024-06-01"] * 6,
        }
    )
    fam = pd.DataFrame(
        {
            "family_id": ["fa1", "fa2", "fa3", "fa4", "fa5", "fb1", "fc1"],
            "la_id": ["A", "A", "A", "A", "A", "B", "C"],
            "consent_date": [
                "2024-10-01",
                "2024-10-01",
                "2024-11-01",
                "2025-01-10",
                None,
                "2024-10-01",
                "2024-10-01",
            ],
        }
    )
    return {"keyworkers": kw, "families": fam, "allocation": allocation(["A", "B"], ["C"])}
