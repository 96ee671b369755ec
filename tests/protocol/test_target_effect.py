"""``[[outcomes]] target_effect``: the effect a definitive trial should detect (planning)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from trialkit.errors import ProtocolError
from trialkit.protocol import check_protocol, protocol_from_mapping

BUNDLED = (
    Path(__file__).resolve().parents[2] / "protocols" / "supporting-families-systemic-pilot.toml"
)


@pytest.fixture
def doc() -> dict:
    return tomllib.loads(BUNDLED.read_text(encoding="utf-8"))


def test_bundled_primary_outcomes_have_a_target_effect(doc: dict) -> None:
    p = protocol_from_mapping(doc)
    assert {o.id: o.target_effect for o in p.primary_outcomes} == {
        "family_functioning": 0.3,
        "keyworker_wellbeing": 0.3,
    }


def test_target_effect_on_a_binary_outcome_is_a_warning(doc: dict) -> None:
    i = next(i for i, o in enumerate(doc["outcomes"]) if o["type"] == "binary")
    doc["outcomes"][i]["target_effect"] = 0.2
    report = check_protocol(protocol_from_mapping(doc))
    assert report.ok
    problem = next(p for p in report.issues if p.code == "protocol.outcome.target_effect")
    assert problem.path == f"outcomes[{i}].target_effect"
    assert problem.severity == "warning" and problem.hint


def test_target_effect_must_be_positive(doc: dict) -> None:
    doc["outcomes"][0]["target_effect"] = 0
    with pytest.raises(ProtocolError) as e:
        protocol_from_mapping(doc)
    assert "target_effect" in str(e.value)
