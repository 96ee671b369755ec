from __future__ import annotations

from pathlib import Path

import pytest

from trialkit.errors import ProtocolError
from trialkit.protocol import load_protocol, parse_protocol, protocol_from_mapping
from trialkit.protocol.model import TIDIER_ITEMS

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"


def test_bundled_protocol_loads() -> None:
    p = load_protocol(BUNDLED)
    assert p.trial.levels == ["la", "keyworker", "family"]
    assert set(p.arms) == {"intervention", "control"}
    for arm in p.arms.values():
        for key in TIDIER_ITEMS:
            assert hasattr(arm.tidier, key)
    q = {q.id: q for _, q in p.arms["intervention"].tidier.quantities()}
    assert q["cpd_days"].value == 5 and q["cpd_days"].unit == "day"
    assert q["clinician_fte"].minimum == 1 and q["clinician_fte"].maximum == 3
    assert p.intervention_arm == "intervention" and p.control_arm == "control"
    assert [o.id for o in p.primary_outcomes] == ["family_functioning", "keyworker_wellbeing"]


def test_missing_file() -> None:
    with pytest.raises(ProtocolError) as exc:
        load_protocol("does-not-exist.toml")
    assert exc.value.codes == ("protocol.file_not_found",)


def test_bad_encoding() -> None:
    with pytest.raises(ProtocolError) as exc:
        parse_protocol(b"\xff\xfe title")
    assert exc.value.codes == ("protocol.encoding",)


def test_toml_syntax() -> None:
    with pytest.raises(ProtocolError) as exc:
        parse_protocol("[trial\ntitle = 1")
    assert exc.value.codes == ("protocol.toml_syntax",)


def test_unknown_key_suggests(doc) -> None:
    doc["arms"]["control"]["tidier"]["whre"] = "somewhere"
    with pytest.raises(ProtocolError) as exc:
        protocol_from_mapping(doc)
    (problem,) = exc.value.problems
    assert problem.code == "protocol.unknown_key"
    assert problem.path == "arms.control.tidier.whre"
    assert "where" in problem.hint


def test_missing_key(doc) -> None:
    del doc["trial"]["title"]
    with pytest.raises(ProtocolError) as exc:
        protocol_from_mapping(doc)
    assert ("protocol.missing_key", "trial.title") in [(p.code, p.path) for p in exc.value.problems]


def test_invalid_value_lists_choices(doc) -> None:
    doc["logic_model"]["nodes"][0]["kind"] = "input"
    with pytest.raises(ProtocolError) as exc:
        protocol_from_mapping(doc)
    (problem,) = exc.value.problems
    assert problem.code == "protocol.invalid_value"
    assert problem.path == "logic_model.nodes[0].kind"
    assert "activity" in problem.hint


def test_all_problems_gathered(doc) -> None:
    doc["trial"]["n_clusters"] = "twelve"
    doc["outcomes"][0]["level"] = "school"
    doc["analysis"]["df_method"] = "kr"
    with pytest.raises(ProtocolError) as exc:
        protocol_from_mapping(doc)
    paths = {p.path for p in exc.value.problems}
    assert {"trial.n_clusters", "outcomes[0].level", "analysis.df_method"} <= paths


def test_protocol_is_frozen() -> None:
    p = load_protocol(BUNDLED)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError
        p.trial.title = "x"  # type: ignore[misc]
