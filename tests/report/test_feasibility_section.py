"""The feasibility section's table: disclosure control of small counts, zones in words."""

from __future__ import annotations

import math

import pandas as pd

from trialkit.analyse import TrialAnalysis
from trialkit.feasibility.result import CRITERION_COLUMNS
from trialkit.report.disclosure import DisclosureSettings
from trialkit.report.disclosure_pass import apply_disclosure
from trialkit.report.feasibility_section import CONSORT_ITEMS, feasibility_table, frame_as_pilot
from trialkit.report.tables import ReportTable
from trialkit.report.wording import ZONE_WORDS, recommendation_sentence


def _row(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {c: math.nan for c in CRITERION_COLUMNS}
    base.update(
        id="c", label="Families consenting", metric="family_consent", arm="", clusters=12,
        unit="families", estimate=0.9, conf_low=0.8, conf_high=0.95, conf_level=0.95,
        method="design-based logit", green=0.8, red=0.5, higher_is_better=True, zone="green",
        p_value=0.001, test_method="t", alpha=0.05, rules_out_red=True, action="", note="",
    )  # fmt: skip
    base.update(kw)
    return base


def _analysis(rows: list[dict[str, object]]) -> TrialAnalysis:
    return TrialAnalysis(
        tables={"feasibility": pd.DataFrame(rows, columns=list(CRITERION_COLUMNS))},
        protocol={"arms": {}},
        methods={"feasibility": {"recommendation": {"decision": "proceed", "rule": "r",
                                                     "reasons": ["all green"]}}},
        provenance={},
    )  # fmt: skip


def _published(a: TrialAnalysis, settings: DisclosureSettings) -> ReportTable:
    """Table F.1 after the report's one disclosure pass."""
    from trialkit.report.build import Report, Section

    t = feasibility_table(a, settings)
    rep = apply_disclosure(
        Report(
            title="t",
            subtitle="",
            sections=(Section(id="feasibility", title="F", tables=(t,)),),
            disclosure=settings,
        )
    )
    assert rep.disclosure_check["recoverable"] == []
    return rep.sections[0].tables[0]


def test_small_counts_of_people_are_suppressed_but_not_counts_of_las() -> None:
    a = _analysis(
        [
            _row(numerator=97, denominator=100, clusters=3),  # complement 3, over 3 LAs
            _row(numerator=40, denominator=60, id="a"),
            _row(numerator=2, denominator=6, unit="LAs", metric="contamination", id="l"),
            _row(numerator=3, denominator=30, unit="keyworkers", clusters=2, id="k"),
            _row(numerator=97, denominator=100, id="d"),  # complement 3, over 12 LAs
        ]
    )
    t = _published(a, DisclosureSettings())
    counts = t.frame["Count"].tolist()
    # over fewer than 6 LAs a count (or the complement it implies) of 1-4 people is protected
    assert "3" not in counts[0].split() and counts[0] != "97 / 100 families"
    assert t.frame["Estimate"].tolist()[0] != "97.0%"
    assert counts[1:4] == ["40 / 60 families", "2 / 6 LAs", "c / 30 keyworkers"]
    assert t.frame["Estimate"].tolist()[3] == "c"
    # a trial-wide total over 12 LAs is published in standard mode (as in Table 2.1)
    assert counts[4] == "97 / 100 families"
    assert "Disclosure control (standard" in t.note
    assert t.data is not None and t.data["numerator"].tolist()[3] == "c"
    strict = _published(a, DisclosureSettings(mode="strict"))
    sc = strict.frame["Count"].tolist()
    assert sc[1] == "40 / 60 families" and sc[4] != "97 / 100 families"
    assert t.frame["Zone"].tolist()[0] == ZONE_WORDS["green"]


def test_frame_as_pilot_places_the_section_after_the_summary() -> None:
    from trialkit.report.build import Section

    secs = tuple(Section(id=i, title=i.title()) for i in ("summary", "flow", "outcomes", "methods"))
    out = frame_as_pilot(secs, _analysis([_row()]), DisclosureSettings())
    assert [s.id for s in out] == ["summary", "feasibility", "flow", "outcomes", "methods"]
    assert out[0].paragraphs[0].startswith(recommendation_sentence("proceed"))
    assert out[1].bullets == ("all green",)
    assert out[-1].tables[-1].id == "consort_map"
    assert set(out[-1].tables[-1].frame["Report section"]) <= {s.title for s in out}
    assert set(CONSORT_ITEMS) >= {"summary", "feasibility", "outcomes"}
    # no criteria: the section still says what is missing, and the summary is unchanged
    empty = frame_as_pilot(secs, _analysis([]), DisclosureSettings())
    assert "has none" in empty[1].paragraphs[0] and not empty[0].paragraphs


# ----------------------------------------------------------------------------- planning tables
def _planning_analysis(arms: list[dict[str, object]]) -> TrialAnalysis:
    from trialkit.feasibility.planning import ARM_COLUMNS, PLAN_COLUMNS

    planned = dict.fromkeys(PLAN_COLUMNS, math.nan) | {
        "outcome_id": "ff", "label": "FF", "level": "family", "timepoint": "end",
        "role": "primary", "status": "planned", "reason": "", "singular": False,
        "icc_la": 0.0363170901698, "icc_la_low": 0.0, "icc_la_high": 0.18521,
        "icc_keyworker": 0.186, "icc_keyworker_low": 0.0647, "icc_keyworker_high": 0.336,
        "sd": 13.666, "sd_low": 12.6, "sd_high": 14.93, "correlation": 0.559,
        "correlation_low": 0.47, "correlation_high": 0.64, "cluster_size_cv": 0.3128,
        "target_effect": 0.3, "las_point": 49, "las_upper": 122, "las_assurance": 73, "n_las": 12,
    }  # fmt: skip
    failed = dict.fromkeys(PLAN_COLUMNS) | {
        "outcome_id": "kw",
        "status": "not planned",
        "reason": "no data at end",
    }
    return TrialAnalysis(
        tables={
            "planning": pd.DataFrame([planned, failed], columns=list(PLAN_COLUMNS)),
            "planning_arms": pd.DataFrame(arms, columns=list(ARM_COLUMNS)),
        },
        protocol={"arms": {}, "outcomes": [{"id": "ff", "label": "Family functioning"}]},
        methods={"planning": {"status": "planned", "conf_level": 0.95, "power": 0.9,
                              "alpha": 0.05}},
        provenance={},
    )  # fmt: skip


def _arm(arm: str, referred: int, consented: int, followed: int, kws: int, left: int) -> dict:
    return {
        "arm": arm, "families_referred": referred, "families_consented": consented,
        "consent_rate": consented / referred, "families_followed_up": followed,
        "family_attrition": 1 - followed / consented, "followup_timepoint": "end",
        "keyworkers": kws, "keyworkers_left": left, "keyworker_attrition": left / kws,
    }  # fmt: skip


def test_planning_table_labels_unconditional_iccs_and_keeps_failures() -> None:
    from trialkit.report.feasibility_section import planning_table

    t = planning_table(_planning_analysis([]))
    assert t.id == "planning" and len(t.frame) == 2
    cols = list(t.frame.columns)
    assert any("LA ICC, unconditional (95% CI)" == c for c in cols)
    first = t.frame.iloc[0]
    assert first["Outcome"] == "Family functioning"
    assert first["LA ICC, unconditional (95% CI)"] == "0.036 (0.000 to 0.185)"
    assert first["LAs needed: point ICC / upper limit / assurance"] == "49 / 122 / 73"
    assert t.frame.iloc[1]["Note"] == "not planned: no data at end"
    # typed export: unrounded numbers, counts as integers
    d = t.export_frame()
    assert d.loc[0, "icc_la"] == 0.0363170901698 and d.loc[0, "las_upper"] == 122
    assert type(d.loc[0, "las_point"]) is int and d.loc[1, "las_point"] is None
    assert d.loc[1, "status"] == "not planned" and d.loc[1, "reason"] == "no data at end"


def _published_arms(a: TrialAnalysis, settings: DisclosureSettings) -> ReportTable:
    """Table F.3 after the report's one disclosure pass."""
    from trialkit.report.build import Report, Section
    from trialkit.report.feasibility_section import planning_arms_table

    rep = apply_disclosure(
        Report(
            title="t",
            subtitle="",
            sections=(
                Section(id="feasibility", title="F", tables=(planning_arms_table(a, settings),)),
            ),
            disclosure=settings,
        )
    )
    assert rep.disclosure_check["recoverable"] == []
    return rep.sections[0].tables[0]


def test_planning_arms_table_protects_small_counts_of_people() -> None:
    a = _planning_analysis(
        [_arm("intervention", 216, 162, 146, 48, 11), _arm("control", 30, 27, 25, 48, 2)]
    )
    t = _published_arms(a, DisclosureSettings())
    inter, ctrl = t.frame.iloc[0], t.frame.iloc[1]
    assert inter["Families consented / referred"] == "162 / 216 (75.0%)"
    followed = "Consented families measured at follow-up / consented"
    assert inter[followed] == "146 / 162 (90.1%)"
    # control: 3 not consented, 2 without the outcome, 2 keyworkers left (< 5): none of
    # these can be read or worked out from the published cells
    for col in (
        "Families consented / referred",
        followed,
        "Keyworkers who left post / in randomised LAs",
    ):
        assert "c" in ctrl[col], (col, ctrl[col])
    d = t.export_frame()
    assert d.loc[0, "families_consented"] == 162
    strict = _published_arms(a, DisclosureSettings(mode="strict"))
    # 11 is at or above the strict threshold: still published
    assert strict.frame.iloc[0]["Keyworkers who left post / in randomised LAs"] == "11 / 48 (22.9%)"


def test_frame_as_pilot_adds_the_planning_tables() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class S:
        id: str
        title: str
        paragraphs: tuple = ()
        bullets: tuple = ()
        tables: tuple = ()
        figures: tuple = ()

    a = _planning_analysis([_arm("intervention", 216, 162, 146, 48, 11)])
    out = frame_as_pilot([S("summary", "Summary"), S("methods", "Methods")], a,
                         DisclosureSettings())  # fmt: skip
    feas = next(s for s in out if s.id == "feasibility")
    assert [t.id for t in feas.tables] == ["planning", "planning_arms"]
