"""``[analysis.missing_data]``: the model, its defaults and its checks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from trialkit.protocol import check_protocol, protocol_from_mapping

Doc = dict[str, Any]


def _with(doc: Doc, **md: Any) -> Doc:
    doc["analysis"]["missing_data"] = {"method": "multilevel-mi", **md}
    return doc


def test_defaults_and_a_single_delta(doc: Doc) -> None:
    p = protocol_from_mapping(_with(doc, auxiliary=["mid"], delta=-0.3))
    md = p.analysis.missing_data
    assert md is not None
    assert md.delta == [-0.3]
    assert (md.imputations, md.seed, md.delta_arm, md.by_arm) == (20, 0, "treated", False)
    assert check_protocol(p).ok


@pytest.mark.parametrize(
    ("md", "code", "path"),
    [
        (
            {"auxiliary": ["midpoint"]},
            "protocol.missing_data.unknown_auxiliary",
            "analysis.missing_data.auxiliary[0]",
        ),
        (
            {"outcomes": ["family_functionin"]},
            "protocol.missing_data.unknown_outcome",
            "analysis.missing_data.outcomes[0]",
        ),
        (
            {"outcomes": ["keyworker_retention"]},
            "protocol.missing_data.outcome_type",
            "analysis.missing_data.outcomes[0]",
        ),
        (
            {"auxiliary": ["end"], "outcomes": ["family_functioning"]},
            "protocol.missing_data.auxiliary_is_outcome",
            "analysis.missing_data.auxiliary",
        ),
    ],
)
def test_check_codes(doc: Doc, md: Doc, code: str, path: str) -> None:
    report = check_protocol(protocol_from_mapping(_with(doc, **md)))
    got = [(p.code, p.path) for p in report.issues]
    assert (code, path) in got, got
    problem = next(p for p in report.issues if p.code == code)
    assert problem.message and problem.hint


def test_a_covariate_is_a_valid_auxiliary(doc: Doc) -> None:
    report = check_protocol(protocol_from_mapping(_with(doc, auxiliary=["imd_score", "mid"])))
    assert report.ok and not report.issues


@pytest.mark.parametrize(
    "md", [{"imputations": 1}, {"method": "mice"}, {"delta_arm": "intervention"}, {"m": 5}]
)
def test_model_refuses_bad_values(doc: Doc, md: Doc) -> None:
    with pytest.raises((ValidationError, Exception)):
        protocol_from_mapping(_with(doc, **md))
