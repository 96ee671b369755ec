"""The CONSORT diagram adds up, and a report whose accounting does not close is refused.

Issue #14 item 10 and the arithmetic guards: every box of the flow diagram is the box
above it minus the losses listed; per analysis and arm, analysed + excluded = eligible.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from trialkit.analyse import load_analysis
from trialkit.errors import ReportError
from trialkit.pipeline import DemoResult
from trialkit.report import build_report
from trialkit.report.consort import consort_flow
from trialkit.report.diagrams import flow_svg


def _consort(a):  # type: ignore[no-untyped-def]
    return consort_flow(
        a.table("flow"), a.table("exclusions"), a.protocol, ["intervention", "control"]
    )


def _counts(arm) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {c.key: c.n for box in arm.boxes for c in box.counts}


def _losses(arm) -> dict[str, int]:  # type: ignore[no-untyped-def]
    out: dict[str, int] = {}
    for box in arm.boxes:
        for x in box.losses:
            out[x.key] = out.get(x.key, 0) + x.n
    return out


def test_every_box_is_the_box_above_minus_the_losses(demo: DemoResult) -> None:
    a = load_analysis(demo.analysis)
    flow = _consort(a)
    assert flow.gaps() == []
    families = pd.read_csv(demo.data / "families.csv", dtype=str)
    alloc = pd.read_csv(demo.allocation / "allocation.csv", dtype=str)
    arm_of = dict(zip(alloc["cluster"], alloc["arm"], strict=True))
    for arm in flow.arms:
        c, lost = _counts(arm), _losses(arm)
        fam = families[families["la_id"].map(arm_of) == arm.arm]
        # recomputed from the raw families file
        assert c["fam"] == len(fam)
        assert lost["fam_c"] == int(fam["consent_date"].isna().sum())
        assert c["fam_c"] == c["fam"] - lost["fam_c"]
        consented = fam[fam["consent_date"].notna()]
        assert lost["fam_f"] == int(consented["withdrawal_date"].notna().sum())
        assert c["fam_f"] == c["fam_c"] - lost["fam_f"]
        assert c["kw_f"] == c["kw"] - lost["kw_f"]
        ff = "oc:family_functioning"
        assert c[ff] == c["fam_f"] - lost.get(ff, 0)
        kw = "oc:keyworker_wellbeing"
        assert c[kw] == c["kw_f"] - lost.get(kw, 0)


def test_the_diagram_reads_in_order_with_labels_and_reasons(demo: DemoResult) -> None:
    svg = (demo.report / "figures" / "flow.svg").read_text()
    order = [
        "Allocated to",
        "Excluded at consent",
        "Families not consented",
        "Families consented",
        "Lost to follow-up",
        "Followed up",
        "Not analysed (primary outcomes)",
        "Family functioning: no measurement at end",
        "Analysed (primary outcomes)",
        "Family functioning: families analysed",
    ]
    pos = [svg.find(s) for s in order]
    assert all(p >= 0 for p in pos), dict(zip(order, pos, strict=True))
    assert pos == sorted(pos)
    assert "family_functioning" not in svg and "keyworker_wellbeing" not in svg
    assert "stroke-dasharray" in svg  # exclusion boxes are drawn as side boxes


def test_an_arm_that_loses_an_la_says_why() -> None:
    protocol = {
        "arms": {"intervention": {"label": "Model"}, "control": {"label": "Usual"}},
        "outcomes": [
            {"id": "y", "label": "Wellbeing (scale)", "level": "family", "role": "primary"}
        ],
    }
    rows = []
    for arm, las, analysed_las in (("intervention", 8, 7), ("control", 8, 8)):
        rows += [
            (arm, "la", "randomised", "", las),
            (arm, "la", "with data", "", las),
            (arm, "keyworker", "randomised", "in randomised LAs", 20),
            (arm, "family", "randomised", "referred in randomised LAs", 50),
            (arm, "family", "excluded", "not consented", 10),
            (arm, "family", "consented", "", 40),
            (arm, "family", "analysed", "y", 30),
            (arm, "la", "analysed", "y", analysed_las),
            (arm, "keyworker", "analysed", "y", 15),
        ]
    flow = pd.DataFrame(rows, columns=["arm", "level", "stage", "detail", "n"])
    excl = pd.DataFrame(
        [("analysis:y", "family", "not consented", arm, 10) for arm in ("intervention", "control")]
        + [
            ("analysis:y", "family", "no measurement at end", arm, 10)
            for arm in ("intervention", "control")
        ],
        columns=["stage", "entity", "reason", "arm", "n"],
    )
    model = consort_flow(flow, excl, protocol, ["intervention", "control"])
    assert model.gaps() == []
    inter = model.arms[0]
    lines = [x.label for box in inter.boxes for x in box.losses]
    assert any("LAs with no family analysed" in s for s in lines)
    la_loss = [x for box in inter.boxes for x in box.losses if x.key == "oc:y:la"]
    assert [x.n for x in la_loss] == [1]
    svg = flow_svg(model.columns(), list(model.top), title="t")
    assert "Wellbeing: LAs analysed: 7" in svg and "LAs with no family analysed" in svg
    # a box that does not add up is a gap
    broken = flow.copy()
    broken.loc[(broken["stage"] == "consented") & (broken["arm"] == "control"), "n"] = 41
    gaps = consort_flow(broken, excl, protocol, ["intervention", "control"]).gaps()
    assert any("Families consented" in g and "Usual" in g for g in gaps)


def _corrupt(a, name: str, frame: pd.DataFrame):  # type: ignore[no-untyped-def]
    return dataclasses.replace(a, tables={**a.tables, name: frame})


def test_a_report_whose_accounting_does_not_close_is_refused(demo: DemoResult) -> None:
    a = load_analysis(demo.analysis)
    build_report(a, generated="x")  # the demo closes
    ex = a.table("exclusions")
    sel = (
        (ex["stage"] == "analysis:family_functioning")
        & (ex["reason"] == "no measurement at end")
        & (ex["arm"] == "control")
    )
    assert sel.sum() == 1
    ex.loc[sel, "n"] = ex.loc[sel, "n"] - 3  # three families vanish from the accounting
    with pytest.raises(ReportError) as err:
        build_report(_corrupt(a, "exclusions", ex), generated="x")
    assert err.value.exit_code == 1
    assert "report.accounting_gap" in err.value.codes
    text = str(err.value)
    assert "family_functioning, arm control" in text and "gap 3" in text


def test_an_analysis_whose_model_used_other_rows_is_refused(demo: DemoResult) -> None:
    a = load_analysis(demo.analysis)
    res = a.table("results")
    sel = (res["analysis"] == "primary") & (res["outcome_id"] == "keyworker_wellbeing")
    res.loc[sel, "n_obs"] = res.loc[sel, "n_obs"] - 1
    with pytest.raises(ReportError, match="primary model used"):
        build_report(_corrupt(a, "results", res), generated="x")
