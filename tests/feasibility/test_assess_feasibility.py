"""assess_feasibility on hand-built trial data: each metric's counts, the estimator it uses,
zones, the test against red, by-arm criteria and the recommendation rule."""

from __future__ import annotations

import copy
import datetime as dt
import math
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from trialkit.data import TrialData
from trialkit.errors import FeasibilityError
from trialkit.feasibility import (
    FeasibilityAssessment,
    assess_feasibility,
    check_progression,
    recommend,
    zone_of,
)
from trialkit.feasibility.result import CriterionResult
from trialkit.models.proportion import cluster_mean, clustered_proportion, exact_proportion
from trialkit.protocol import check_protocol
from trialkit.protocol.load import protocol_from_mapping

PILOT = (
    Path(__file__).resolve().parents[2] / "protocols" / "supporting-families-systemic-pilot.toml"
)
DOC = tomllib.loads(PILOT.read_text(encoding="utf-8"))
ARMS = {"LA01": "intervention", "LA02": "control", "LA03": "intervention", "LA04": "control"}
REFERRED = {"LA01": 10, "LA02": 12, "LA03": 6, "LA04": 9}
CONSENTED = {"LA01": 8, "LA02": 7, "LA03": 6, "LA04": 5}
MEASURED_END = {"LA01": 6, "LA02": 5, "LA03": 4, "LA04": 5}  # of the consented, with a row
UNSCORABLE_END = {"LA01": 1, "LA02": 0, "LA03": 2, "LA04": 0}  # of those, value missing
KEYWORKERS = {"LA01": 3, "LA02": 4, "LA03": 2, "LA04": 3}
KW_MEASURED = {"LA01": 2, "LA02": 4, "LA03": 1, "LA04": 2}
KW_LEFT = {"LA01": 1, "LA02": 0, "LA03": 1, "LA04": 2}


def _protocol(progression: list[dict[str, Any]], approached: int | None = 6) -> Any:
    doc = copy.deepcopy(DOC)
    doc["progression"] = progression
    if approached is None:
        doc["trial"].pop("approached", None)
    else:
        doc["trial"]["approached"] = approached
    return protocol_from_mapping(doc)


def _trial_data() -> TrialData:
    fam, kw, scores = [], [], []
    for la in ARMS:
        for i in range(REFERRED[la]):
            fid = f"{la}-F{i}"
            consented = i < CONSENTED[la]
            fam.append(
                {
                    "family_id": fid,
                    "keyworker_id": f"{la}-K0",
                    "la_id": la,
                    "consent_date": dt.date(2024, 10, 1) if consented else None,
                }
            )
            if consented and i < MEASURED_END[la]:
                value = math.nan if i < UNSCORABLE_END[la] else 30.0
                scores.append(("family_functioning", fid, "family", "end", value))
        for k in range(KEYWORKERS[la]):
            kid = f"{la}-K{k}"
            left = k < KW_LEFT[la]
            kw.append(
                {
                    "keyworker_id": kid,
                    "la_id": la,
                    "role": "keyworker",
                    "leave_date": dt.date(2025, 3, 1) if left else None,
                }
            )
            if k >= KEYWORKERS[la] - KW_MEASURED[la]:
                scores.append(("keyworker_wellbeing", kid, "keyworker", "end", 22.0))
    tables = {
        "families": pd.DataFrame(fam),
        "keyworkers": pd.DataFrame(kw),
        "delivery": pd.DataFrame(
            {
                "record_type": ["training"] * 3,
                "la_id": ["LA01", "LA02", "LA02"],
                "attended": [True, False, True],
            }
        ),  # fmt: skip
        "allocation": pd.DataFrame({"cluster": list(ARMS), "arm": list(ARMS.values())}),
    }
    return TrialData(
        tables=tables,
        scores=pd.DataFrame(
            scores, columns=["outcome_id", "entity_id", "level", "timepoint", "value"]
        ),
        problems=(),
        exclusions=pd.DataFrame(),
        flow=pd.DataFrame(),
        trial_end=dt.date(2025, 12, 31),
    )


def _fidelity() -> Any:
    return SimpleNamespace(
        overall=pd.DataFrame(
            {"la_id": list(ARMS), "arm": list(ARMS.values()),
             "overall_index": [0.85, math.nan, 0.6, math.nan]}
        ),
        components=pd.DataFrame(
            {"la_id": ["LA02", "LA02", "LA04"], "arm": "control",
             "component": ["supervision", "feedback", "feedback"], "index": [0.55, 0.1, 0.2]}
        ),
        contamination=pd.DataFrame(
            {"la_id": ["LA02", "LA04"], "arm": "control", "component": "feedback",
             "contaminated": [True, True]}
        ),
    )  # fmt: skip


def _c(cid: str, metric: str, green: float = 0.8, red: float = 0.5, **kw: Any) -> dict[str, Any]:
    return {"id": cid, "label": cid.replace("_", " "), "metric": metric, "green": green,
            "red": red, **kw}  # fmt: skip


def _counts(d: dict[str, int], las: list[str] | None = None) -> np.ndarray:
    return np.array([d[la] for la in (las or sorted(ARMS))], dtype=float)


def _one(protocol: Any, **kw: Any) -> CriterionResult:
    res = assess_feasibility(protocol, _trial_data(), **kw)
    assert len(res.criteria) == 1
    return res.criteria[0]


def test_family_consent_is_the_clustered_pooled_ratio() -> None:
    c = _one(_protocol([_c("consent", "family_consent", 0.7, 0.5)]))
    ref = clustered_proportion(_counts(CONSENTED), _counts(REFERRED))
    assert (c.numerator, c.denominator, c.clusters) == (26, 37, 4)
    assert c.estimate == ref.estimate and c.conf_low == ref.conf_low
    assert c.method == "design-based logit" and c.df == 3 and c.unit == "families"
    assert c.zone == "green" and c.arm == ""


def test_retention_counts_rows_and_completeness_counts_usable_scores() -> None:
    p = _protocol(
        [
            _c("ret", "family_retention"),
            _c("comp", "data_completeness", params={"outcome": "family_functioning"}),
        ]
    )
    ret, comp = assess_feasibility(p, _trial_data()).criteria
    assert (ret.numerator, ret.denominator) == (20, 26)
    usable = {la: MEASURED_END[la] - UNSCORABLE_END[la] for la in ARMS}
    assert (comp.numerator, comp.denominator) == (sum(usable.values()), 26)
    ref = clustered_proportion(_counts(usable), _counts(CONSENTED))
    assert comp.estimate == pytest.approx(ref.estimate) and comp.conf_high == ref.conf_high


def test_keyworker_retention_by_outcome_or_in_post() -> None:
    p = _protocol(
        [
            _c("kw", "keyworker_retention"),
            _c("post", "keyworker_retention", params={"outcome": "keyworker_retention"}),
        ]
    )
    measured, in_post = assess_feasibility(p, _trial_data()).criteria
    assert (measured.numerator, measured.denominator) == (9, 12)
    assert (in_post.numerator, in_post.denominator) == (8, 12)
    assert in_post.unit == "keyworkers"


def test_by_arm_gives_one_row_per_arm() -> None:
    res = assess_feasibility(
        _protocol([_c("consent", "family_consent", 0.7, 0.5, by_arm=True)]), _trial_data()
    )
    assert [c.arm for c in res.criteria] == ["intervention", "control"]
    inter = ["LA01", "LA03"]
    ref = clustered_proportion(_counts(CONSENTED, inter), _counts(REFERRED, inter))
    assert res.criteria[0].estimate == ref.estimate and res.criteria[0].clusters == 2


def test_la_recruitment_is_exact_against_approached() -> None:
    c = _one(_protocol([_c("rec", "la_recruitment", 0.7, 0.4)], approached=6))
    ref = exact_proportion(4, 6)
    assert (c.numerator, c.denominator) == (4, 6) and c.method == "clopper-pearson"
    assert (c.conf_low, c.conf_high) == (ref.conf_low, ref.conf_high)
    assert c.zone == "amber" and c.test_method == "exact binomial"


def test_fidelity_share_mean_and_contamination() -> None:
    p = _protocol(
        [
            _c("fid", "fidelity", params={"band": "high"}),
            _c("fid_mod", "fidelity", params={"threshold": 0.5}),
            _c("fid_mean", "fidelity", 0.8, 0.6, params={"statistic": "mean"}),
            _c("cont", "contamination", 0.2, 0.5),
            _c("cont_sub", "contamination", 0.2, 0.5, params={"min_index": 0.5}),
        ]
    )
    fid, fid_mod, fid_mean, cont, cont_sub = assess_feasibility(
        p, _trial_data(), fidelity=_fidelity()
    ).criteria
    assert (fid.numerator, fid.denominator, fid.arm) == (1, 2, "intervention")
    assert (fid_mod.numerator, fid_mod.denominator) == (2, 2)
    ref = cluster_mean([0.85, 0.6])
    assert fid_mean.estimate == pytest.approx(0.725) and fid_mean.conf_low == ref.conf_low
    assert (cont.numerator, cont.denominator, cont.arm) == (2, 2, "control")
    assert cont.zone == "red" and not cont.higher_is_better
    assert (cont_sub.numerator, cont_sub.denominator) == (1, 2)


def test_fidelity_criterion_without_fidelity_data_is_not_assessed() -> None:
    td = _trial_data()
    td.tables["delivery"] = td.tables["delivery"].iloc[0:0]  # type: ignore[index]
    res = assess_feasibility(_protocol([_c("fid", "fidelity")]), td)
    assert res.criteria[0].zone == "not assessed" and "no delivery data" in res.criteria[0].note
    assert res.decision == "amend" and res.warnings


def test_ratio_of_two_columns() -> None:
    p = _protocol(
        [_c("r", "ratio", params={"table": "delivery", "numerator": "attended",
                                   "record_type": "training"})]
    )  # fmt: skip
    c = _one(p)
    assert (c.numerator, c.denominator, c.unit) == (2, 3, "records")


@pytest.mark.parametrize(
    ("est", "green", "red", "zone"),
    [
        (0.8, 0.8, 0.5, "green"),
        (0.5, 0.8, 0.5, "red"),
        (0.6, 0.8, 0.5, "amber"),
        (0.1, 0.2, 0.5, "green"),
        (0.5, 0.2, 0.5, "red"),
        (0.3, 0.2, 0.5, "amber"),
        (math.nan, 0.8, 0.5, "not assessed"),
    ],
)
def test_zone_of(est: float, green: float, red: float, zone: str) -> None:
    assert zone_of(est, green, red) == zone


def _crit(zone: str, rules_out: bool | None = True) -> CriterionResult:
    return CriterionResult(
        id="x", label="x", metric="family_consent", arm="", numerator=1, denominator=2,
        clusters=2, unit="families", estimate=0.5, std_error=0.1, df=1, conf_low=0.1,
        conf_high=0.9, conf_level=0.95, method="m", green=0.8, red=0.4, higher_is_better=True,
        zone=zone, statistic=1.0, test_df=1, p_value=0.01 if rules_out else 0.3,
        test_method="t", alpha=0.05, rules_out_red=rules_out,
    )  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize(
    ("zones", "decision"),
    [
        ([("green", True), ("green", True)], "proceed"),
        ([("green", True), ("green", False)], "amend"),
        ([("green", True), ("amber", True)], "amend"),
        ([("green", True), ("not assessed", None)], "amend"),
        ([("amber", True), ("red", False)], "stop"),
        ([], "amend"),
    ],
)
def test_recommendation_rule(zones: list[tuple[str, bool | None]], decision: str) -> None:
    rec = recommend([_crit(z, r) for z, r in zones])
    assert rec.decision == decision and rec.reasons and "stop if any" in rec.rule


def test_round_trips_and_summary() -> None:
    p = _protocol([_c("consent", "family_consent", 0.7, 0.5, by_arm=True),
                   _c("rec", "la_recruitment", 0.7, 0.4)])  # fmt: skip
    res = assess_feasibility(p, _trial_data())
    d = res.to_dict()
    for key in ("id", "label", "metric", "numerator", "denominator", "clusters", "estimate",
                "conf_low", "conf_high", "green", "red", "zone", "p_value"):  # fmt: skip
        assert key in d["criteria"][0]
    assert FeasibilityAssessment.from_dict(d).to_dict() == d
    back = FeasibilityAssessment.from_frame(res.to_frame(), d["recommendation"])
    assert back.to_dict() == d
    assert "recommendation: AMEND" in res.summary() and "rec" in res.summary()


def test_missing_approached_and_bad_allocation_are_input_errors() -> None:
    p = _protocol([_c("rec", "la_recruitment")], approached=None)
    with pytest.raises(FeasibilityError) as e:
        assess_feasibility(p, _trial_data())
    assert e.value.codes == ("feasibility.progression.approached",)
    with pytest.raises(FeasibilityError):
        assess_feasibility(p, _trial_data(), allocation=42)


def _codes(progression: list[dict[str, Any]], approached: int | None = 16) -> set[str]:
    return {x.code for x in check_protocol(_protocol(progression, approached)).issues}


def test_protocol_checks_have_stable_codes() -> None:
    assert not _codes([_c("a", "family_consent")])
    assert "feasibility.progression.unknown_metric" in _codes([_c("a", "family_consnt")])
    assert "protocol.progression.thresholds" in _codes([_c("a", "family_consent", 0.5, 0.5)])
    assert "protocol.progression.duplicate_id" in _codes(
        [_c("a", "family_consent"), _c("a", "family_consent")]
    )
    assert "feasibility.progression.missing_param" in _codes([_c("a", "data_completeness")])
    assert "feasibility.progression.unknown_param" in _codes(
        [_c("a", "family_consent", params={"x": 1})]
    )
    assert "feasibility.progression.param_value" in _codes(
        [_c("a", "data_completeness", params={"outcome": "nope"})]
    )
    assert "feasibility.progression.param_value" in _codes(
        [_c("a", "family_retention", params={"timepoint": "week7"})]
    )
    assert "feasibility.progression.param_value" in _codes(
        [_c("a", "ratio", params={"table": "families", "numerator": "consnt_date"})]
    )
    assert "feasibility.progression.param_value" in _codes(
        [_c("a", "fidelity", params={"band": "superb"})]
    )
    assert "feasibility.progression.by_arm" in _codes([_c("a", "fidelity", by_arm=True)])
    assert "feasibility.progression.limits" in _codes([_c("a", "family_consent", 1.2, 0.5)])
    assert "feasibility.progression.limits" in _codes([_c("a", "family_consent", 0.8, 0.0)])
    assert "feasibility.progression.direction" in _codes([_c("a", "contamination", 0.5, 0.2)])
    assert "feasibility.progression.approached" in _codes(
        [_c("a", "la_recruitment")], approached=None
    )
    assert "protocol.trial.approached" in _codes([], approached=5)


def test_bundled_protocol_has_illustrative_criteria_that_pass_the_check() -> None:
    p = protocol_from_mapping(DOC)
    assert len(p.progression) >= 7 and all(c.illustrative for c in p.progression)
    assert {c.metric for c in p.progression} >= {
        "la_recruitment", "family_consent", "family_retention", "keyworker_retention",
        "data_completeness", "fidelity", "contamination",
    }  # fmt: skip
    assert not check_progression(p)
