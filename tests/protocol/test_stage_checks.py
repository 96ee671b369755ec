"""Issue #16 item 2: `check` validates everything later stages use (one test per new code)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import trialkit.data.scoring
import trialkit.fidelity.metrics  # noqa: F401  (registers the indicator checks)
from trialkit.protocol import check_protocol, load_protocol, protocol_from_mapping
from trialkit.protocol.hooks import registered_checks

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"

Doc = dict[str, Any]


def _indicator(doc: Doc, metric: str, nth: int = 0) -> tuple[str, Doc]:
    hits = [
        (f"logic_model.nodes[{i}].indicators[{j}]", ind)
        for i, node in enumerate(doc["logic_model"]["nodes"])
        for j, ind in enumerate(node.get("indicators", []))
        if ind["metric"] == metric
    ]
    return hits[nth]


def _outcome(doc: Doc, instrument: str) -> tuple[int, Doc]:
    return next((k, o) for k, o in enumerate(doc["outcomes"]) if o["instrument"] == instrument)


def _course_typo(doc: Doc) -> str:
    path, ind = _indicator(doc, "training_days_delivered")
    ind["params"] = {"course": "cpdd"}
    return f"{path}.params.course"


def _metric_typo(doc: Doc) -> str:
    path, ind = _indicator(doc, "supervision_attendance")
    ind["metric"] = "supervision_attendence"
    return f"{path}.metric"


def _param_name_typo(doc: Doc) -> str:
    path, ind = _indicator(doc, "share_completing_training")
    ind["params"] = {"course": "cpd", "min_day": 4}
    return f"{path}.params.min_day"


def _param_missing(doc: Doc) -> str:
    path, ind = _indicator(doc, "share_completing_training")
    ind["params"] = {"course": "cpd"}
    return f"{path}.params"


def _min_days_text(doc: Doc) -> str:
    path, ind = _indicator(doc, "share_completing_training")
    ind["params"] = {"course": "cpd", "min_days": "four"}
    return f"{path}.params.min_days"


def _cbi_score(doc: Doc) -> str:
    k, o = _outcome(doc, "CBI")
    o["score"] = "wrok"
    return f"outcomes[{k}].score"


def _title_tbc(doc: Doc) -> str:
    doc["trial"]["title"] = "TBC"
    return "trial.title"


def _label_empty(doc: Doc) -> str:
    k, o = _outcome(doc, "CBI")
    o["label"] = ""
    return f"outcomes[{k}].label"


def _n_clusters(doc: Doc) -> str:
    doc["trial"]["n_clusters"] = 11
    doc.setdefault("randomisation", {})["method"] = "matched"
    doc["randomisation"]["pairs_column"] = "pair"
    return "trial.n_clusters"


def _custom_unknown(doc: Doc) -> str:
    doc["outcomes"].append(
        {
            "id": "family_functioning_fad",
            "label": "Family functioning (FAD general functioning)",
            "level": "family",
            "instrument": "custom",
            "score": "FAD-GF",
            "range": [1, 4],
            "timepoints": ["baseline", "end"],
        }
    )
    return f"outcomes[{len(doc['outcomes']) - 1}].score"


def _custom_reverse(doc: Doc) -> str:
    doc["scoring"] = {"instruments": [{"id": "FAD", "n_items": 12, "range": [1, 4],
                                       "reverse_items": [2, 13]}]}  # fmt: skip
    return "scoring.instruments[0].reverse_items"


def _custom_range_order(doc: Doc) -> str:
    doc["scoring"] = {"instruments": [{"id": "FAD", "n_items": 12, "range": [4, 1]}]}
    return "scoring.instruments[0].range"


def _custom_min_answered(doc: Doc) -> str:
    doc["scoring"] = {"instruments": [{"id": "FAD", "n_items": 3, "range": [1, 4],
                                       "min_answered": 5}]}  # fmt: skip
    return "scoring.instruments[0].min_answered"


def _custom_duplicate(doc: Doc) -> str:
    fad = {"id": "FAD", "n_items": 3, "range": [1, 4]}
    doc["scoring"] = {"instruments": [fad, dict(fad)]}
    return "scoring.instruments"


def _custom_range_mismatch(doc: Doc) -> str:
    doc["scoring"] = {"instruments": [{"id": "FAD", "n_items": 12, "range": [1, 4],
                                       "method": "mean"}]}  # fmt: skip
    path = _custom_unknown(doc)
    doc["outcomes"][-1]["score"] = "FAD"
    doc["outcomes"][-1]["range"] = [12, 48]
    return path.replace(".score", ".range")


CASES: list[tuple[str, Callable[[Doc], str], str]] = [
    ("course typo", _course_typo, "fidelity.indicator.param_value"),
    ("metric typo", _metric_typo, "fidelity.indicator.unknown_metric"),
    ("param name typo", _param_name_typo, "fidelity.indicator.unknown_param"),
    ("param missing", _param_missing, "fidelity.indicator.missing_param"),
    ("param not a number", _min_days_text, "fidelity.indicator.param_value"),
    ("CBI score name", _cbi_score, "protocol.outcome.unknown_score"),
    ("title TBC", _title_tbc, "protocol.label.placeholder"),
    ("empty label", _label_empty, "protocol.label.placeholder"),
    ("n_clusters vs pairs", _n_clusters, "protocol.trial.n_clusters"),
    ("custom undeclared", _custom_unknown, "protocol.outcome.unknown_custom_instrument"),
    ("custom reverse item", _custom_reverse, "protocol.scoring.reverse_item"),
    ("custom range order", _custom_range_order, "protocol.scoring.range_order"),
    ("custom min answered", _custom_min_answered, "protocol.scoring.min_answered"),
    ("custom duplicate", _custom_duplicate, "protocol.scoring.duplicate_instrument"),
    ("custom range mismatch", _custom_range_mismatch, "protocol.outcome.custom_range_mismatch"),
]


@pytest.mark.parametrize(("name", "mutate", "code"), CASES, ids=[c[0] for c in CASES])
def test_new_check_code_and_path(doc: Doc, name: str, mutate, code: str) -> None:
    path = mutate(doc)
    report = check_protocol(protocol_from_mapping(doc))
    got = [(p.code, p.path) for p in report.issues]
    assert (code, path) in got, got
    problem = next(p for p in report.issues if p.code == code and p.path == path)
    assert problem.message and problem.hint and "; got" in problem.message


def test_did_you_mean_hints(doc: Doc) -> None:
    _course_typo(doc)
    _metric_typo(doc)
    _param_name_typo(doc)
    _cbi_score(doc)
    hints = {p.code: p.hint for p in check_protocol(protocol_from_mapping(doc)).issues}
    assert "'cpd'" in hints["fidelity.indicator.param_value"]
    assert "'supervision_attendance'" in hints["fidelity.indicator.unknown_metric"]
    assert "'min_days'" in hints["fidelity.indicator.unknown_param"]
    assert "'work'" in hints["protocol.outcome.unknown_score"]


def test_placeholders_warn_at_protocol_stage_and_fail_at_report(doc: Doc) -> None:
    _title_tbc(doc)
    p = protocol_from_mapping(doc)
    early = [
        i for i in check_protocol(p, "protocol").issues if i.code == "protocol.label.placeholder"
    ]
    late = [i for i in check_protocol(p, "report").issues if i.code == "protocol.label.placeholder"]
    assert [i.severity for i in early] == ["warning"]
    assert [i.severity for i in late] == ["error"]


def test_n_clusters_off_ratio_is_a_warning_without_pairs(doc: Doc) -> None:
    doc["trial"]["n_clusters"] = 11
    report = check_protocol(protocol_from_mapping(doc))
    hit = [p for p in report.issues if p.code == "protocol.trial.n_clusters"]
    assert [p.severity for p in hit] == ["warning"]


def test_declared_course_is_accepted(doc: Doc) -> None:
    doc["data"]["courses"] = ["cpd", "foundation", "advanced"]
    _path, ind = _indicator(doc, "training_days_delivered")
    ind["params"] = {"course": "advanced"}
    assert check_protocol(protocol_from_mapping(doc)).ok


def test_declared_custom_instrument_passes(doc: Doc) -> None:
    doc["scoring"] = {"instruments": [{"id": "FAD-GF", "n_items": 12, "range": [1, 4],
                                       "reverse_items": [1, 3], "method": "mean"}]}  # fmt: skip
    _custom_unknown(doc)
    doc["outcomes"][-1]["score"] = "FAD-GF"
    report = check_protocol(protocol_from_mapping(doc))
    assert {p.code for p in report.errors()} == {"protocol.logic_model.outcome_not_in_model"}


def test_hooks_registered_and_bundled_passes_every_stage() -> None:
    assert {"fidelity.indicators", "data.outcome_scores"} <= set(registered_checks())
    protocol = load_protocol(BUNDLED)
    assert check_protocol(protocol, "protocol").issues == ()
    report = check_protocol(protocol, "report")
    # only the TIDieR items that are written after the trial are missing
    assert {p.code for p in report.issues} == {"protocol.tidier.missing_item"}
