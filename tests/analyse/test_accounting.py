"""Every analysis accounts for every eligible entity exactly once (issue #14 item 1).

Recomputed from the raw demo CSVs, not from trialkit's intermediate tables: the
eligible entities are the rows of ``families.csv`` / ``keyworkers.csv``.
"""

from __future__ import annotations

import pandas as pd


def test_analysed_plus_excluded_equals_eligible(demo):
    results = pd.read_parquet(demo.analysis / "results.parquet")
    exclusions = pd.read_parquet(demo.analysis / "exclusions.parquet")
    eligible = {
        "family": len(pd.read_csv(demo.data / "families.csv")),
        "keyworker": len(pd.read_csv(demo.data / "keyworkers.csv")),
    }
    primary = results[results["analysis"] == "primary"]
    assert len(primary) == len(primary["outcome_id"].unique()) > 0
    for row in primary.itertuples():
        stage = exclusions[exclusions["stage"] == f"analysis:{row.outcome_id}"]
        assert set(stage["entity"]) <= {row.level}
        excluded = int(stage["n"].sum())
        assert int(row.n_obs) + excluded == eligible[row.level], row.outcome_id


def test_consent_exclusions_match_the_families_file(demo):
    families = pd.read_csv(demo.data / "families.csv")
    exclusions = pd.read_parquet(demo.analysis / "exclusions.parquet")
    not_consented = int(families["consent_date"].isna().sum())
    rows = exclusions[(exclusions["reason"] == "not consented")]
    # counted by arm: each stage's arms add up to the file's count
    assert set(rows.groupby("stage")["n"].sum()) == {not_consented}


def _arm_of_la(demo) -> dict[str, str]:
    alloc = pd.read_csv(demo.allocation / "allocation.csv", dtype=str)
    return dict(zip(alloc["cluster"], alloc["arm"], strict=True))


def test_each_arm_closes_analysed_plus_excluded_equals_eligible(demo):
    # eligible per arm from the raw CSVs; analysed from the flow, excluded from the exclusions
    arm_of = _arm_of_la(demo)
    raw = {
        "family": pd.read_csv(demo.data / "families.csv", dtype=str),
        "keyworker": pd.read_csv(demo.data / "keyworkers.csv", dtype=str),
    }
    results = pd.read_parquet(demo.analysis / "results.parquet")
    exclusions = pd.read_parquet(demo.analysis / "exclusions.parquet")
    flow = pd.read_parquet(demo.analysis / "flow.parquet")
    assert "arm" in exclusions.columns
    for row in results[results["analysis"] == "primary"].itertuples():
        stage = exclusions[exclusions["stage"] == f"analysis:{row.outcome_id}"]
        analysed_total = 0
        for arm in ("intervention", "control"):
            eligible = int(raw[row.level]["la_id"].map(arm_of).eq(arm).sum())
            excluded = int(stage.loc[stage["arm"] == arm, "n"].sum())
            sel = (
                (flow["arm"] == arm)
                & (flow["level"] == row.level)
                & (flow["stage"] == "analysed")
                & (flow["detail"] == row.outcome_id)
            )
            analysed = int(flow.loc[sel, "n"].sum())
            analysed_total += analysed
            assert analysed + excluded == eligible, (row.outcome_id, arm)
        assert analysed_total == int(row.n_obs), row.outcome_id


def test_not_consented_is_an_exclusion_at_consent_before_consented(demo):
    flow = pd.read_parquet(demo.analysis / "flow.parquet")
    families = pd.read_csv(demo.data / "families.csv", dtype=str)
    arm_of = _arm_of_la(demo)
    for arm in ("intervention", "control"):
        f = flow[(flow["arm"] == arm) & (flow["level"] == "family")].reset_index(drop=True)
        excl = f.index[(f["stage"] == "excluded") & (f["detail"] == "not consented")]
        cons = f.index[f["stage"] == "consented"]
        assert len(excl) == len(cons) == 1 and excl[0] < cons[0]
        fam = families[families["la_id"].map(arm_of) == arm]
        assert int(f.loc[excl[0], "n"]) == int(fam["consent_date"].isna().sum())
        assert not ((f["stage"] == "lost") & (f["detail"] == "not consented")).any()


def test_missing_outcomes_carry_the_validation_warnings(demo):
    # one computation: every missing-data warning of validate is a flag of the analysis table
    import json

    problems = json.loads((demo.validated / "problems.json").read_text())
    items = problems["problems"] if isinstance(problems, dict) else problems
    warned = {
        p["message"].split("'")[1] + "@" + p["message"].split("'")[3]
        for p in items
        if p["code"] == "measurements.missing_pattern"
    }
    mo = pd.read_parquet(demo.analysis / "missing_outcomes.parquet")
    flagged = {
        f"{r.outcome_id}@{r.timepoint}"
        for r in mo.itertuples()
        if "missing_pattern" in str(r.warnings)
    }
    assert warned and warned == flagged
    # eligible = consented families per arm, from the raw CSV
    families = pd.read_csv(demo.data / "families.csv", dtype=str)
    arm_of = _arm_of_la(demo)
    consented = families[families["consent_date"].notna()]
    ff = mo[(mo["outcome_id"] == "family_functioning") & (mo["timepoint"] == "end")]
    for r in ff.itertuples():
        assert r.n_eligible == int(consented["la_id"].map(arm_of).eq(r.arm).sum())
        assert r.share_missing == r.n_missing / r.n_eligible


def test_rows_dropped_for_a_missing_covariate_are_exclusions():
    from trialkit.analyse.accounting import complete_case_exclusions

    frame = pd.DataFrame(
        {
            "family_id": ["f1", "f2", "f3", "f4"],
            "y": [1.0, 2.0, float("nan"), 4.0],
            "baseline": [1.0, float("nan"), 3.0, 4.0],
            "region": ["N", "S", "N", None],
        }
    )
    used, excluded = complete_case_exclusions(frame, ["baseline", "region"], "oc", "family")
    assert list(used["family_id"]) == ["f1"]
    assert list(excluded["entity_id"]) == ["f2", "f3", "f4"]
    assert list(excluded["reason"]) == [
        "covariate missing: baseline",
        "outcome missing",
        "covariate missing: region",
    ]
    assert set(excluded["stage"]) == {"analysis:oc"}
