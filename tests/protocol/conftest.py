from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"
BROKEN = Path(__file__).with_name("broken-protocol.toml")


@pytest.fixture(scope="session")
def bundled_doc() -> dict[str, Any]:
    with open(BUNDLED, "rb") as fh:
        return tomllib.load(fh)


@pytest.fixture
def doc(bundled_doc: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(bundled_doc)
