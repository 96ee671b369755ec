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
