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
    assert set(rows["n"]) == {not_consented}
