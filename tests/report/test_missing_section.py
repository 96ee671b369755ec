"""Section 6a, missing outcome data: complete case beside MI, tipping point, disclosure."""

from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trialkit
from trialkit import store
from trialkit.analyse import load_analysis
from trialkit.analyse.missing_data import analyse_missing_data, missing_data_outcomes
from trialkit.data import validate
from trialkit.pipeline import DemoResult, bundled_example
from trialkit.protocol import load_protocol
from trialkit.report import DisclosureSettings, build_report
from trialkit.report import wording as W
from trialkit.report.build import Figure, Section
from trialkit.report.disclosure import SUPPRESSED
from trialkit.report.missing_section import (
    MISSING_SECTION_ID,
    la_band_table,
    mi_comparison_table,
    missing_data_section,
    predictor_table,
    tipping_point_of,
    tipping_table,
)

OUTCOME = "family_functioning"


@pytest.fixture(scope="module")
def rerun(demo: DemoResult):
    """The demo's missing-data analysis run again from the validated data (same seed)."""
    protocol = load_protocol(bundled_example()[0])
    rec = store.read_allocation(demo.allocation, keep_default_na=False, with_space=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        td = validate(protocol, demo.data, rec)
        (oc,) = missing_data_outcomes(protocol)
        covs = ["baseline", "region", "imd_score", "families_referred_2023"]
        return analyse_missing_data(
            oc, td, protocol, covariates=covs, clusters=["la_id", "keyworker_id"], notes=[]
        )


def test_demo_report_has_the_section_with_complete_case_beside_mi(demo: DemoResult) -> None:
    html = (demo.report / "report.html").read_text(encoding="utf-8")
    assert f'<section id="{MISSING_SECTION_ID}"' in html
    assert "missing at random (MAR)" in html and "δ" in html
    assert "tipping_point_family_functioning.svg" in (demo.report / "report.md").read_text()
    a = load_analysis(demo.analysis)
    t = mi_comparison_table(a)
    assert list(t.frame["Analysis"]) == ["Complete case (primary)", "MI (MAR)"]
    assert t.data is not None
    res = a.table("results").query("outcome_id == @OUTCOME").set_index("analysis")
    for kind in ("primary", "multilevel-mi"):
        row = t.data[t.data["analysis"] == kind].iloc[0]
        assert row["estimate"] == res.loc[kind, "estimate"]  # unrounded, the stored value
        assert row["df"] == res.loc[kind, "df"]
    mi = t.data[t.data["analysis"] == "multilevel-mi"].iloc[0]
    imp = a.table("imputation").iloc[0]
    assert mi["fraction_missing_information"] == imp["fraction_missing_information"]
    assert mi["m"] == imp["imputations"] >= 20
    assert res.loc["multilevel-mi", "df_method"] == "barnard-rubin"
    assert res.loc["multilevel-mi", "n_obs"] > res.loc["primary", "n_obs"]


def test_tipping_table_matches_tipping_point(demo: DemoResult, rerun) -> None:
    a = load_analysis(demo.analysis)
    tp = rerun.tipping
    assert tp is not None
    stored = tipping_point_of(a, OUTCOME)
    assert stored.tipping_below == tp.tipping_below and stored.tipping_above == tp.tipping_above
    t = tipping_table(a, OUTCOME)
    assert t.data is not None
    for col in ("delta", "estimate", "conf_low", "conf_high", "df"):
        np.testing.assert_array_equal(t.data[col].to_numpy(float), tp.table[col].to_numpy(float))
    for x in (tp.tipping_below, tp.tipping_above):
        if x is not None:
            assert f"δ = {x:.2f} SD" in t.caption
    # the interpolated crossing lies between the grid points whose conclusions differ
    if tp.tipping_below is not None:
        lo = t.data[t.data["delta"] < tp.tipping_below]["conclusion"].iloc[-1]
        hi = t.data[(t.data["delta"] > tp.tipping_below) & (t.data["delta"] <= 0)]
        assert lo != hi["conclusion"].iloc[0]


def test_same_seed_identical_mi_table(demo: DemoResult, rerun) -> None:
    """The stored MI summary is reproduced exactly by a second run with the same seed."""
    a = load_analysis(demo.analysis)
    stored = a.table("imputation").iloc[0].to_dict()
    for k, v in rerun.summary.items():
        if isinstance(v, float) and np.isnan(v):
            assert np.isnan(stored[k]), k
        else:
            assert stored[k] == v, k


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_property_same_seed_same_mi(seed: int) -> None:
    rng = np.random.default_rng(7)
    n = 120
    la = np.repeat(np.arange(8), n // 8)
    df = pd.DataFrame(
        {
            "la": la,
            "arm": (la % 2).astype(int),
            "x": rng.normal(size=n),
        }
    )
    df["y"] = 0.3 * df["arm"] + df["x"] + rng.normal(0, 0.3, 8)[la] + rng.normal(size=n)
    df.loc[rng.random(n) < 0.25, "y"] = np.nan
    kw = dict(outcome="y", treatment="arm", covariates=["x"], clusters=["la"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = trialkit.fit(df, **kw, missing="multilevel-mi", imputations=4, seed=seed)
        two = trialkit.fit(df, **kw, missing="multilevel-mi", imputations=4, seed=seed)
    assert one.to_dict() == two.to_dict()


def test_predictor_table_counts_are_arm_level_or_suppressed(demo: DemoResult) -> None:
    a = load_analysis(demo.analysis)
    s = DisclosureSettings()
    t = predictor_table(a, s)
    assert "Thirds of the baseline score" in set(t.frame["Factor"])
    assert "Thirds of the mid-point score" in set(t.frame["Factor"])
    for col in [c for c in t.frame.columns if c.endswith("missing of n")]:
        for cell in t.frame[col]:
            if cell == "–":
                continue
            m, n = cell.split(" of ")
            assert m == SUPPRESSED or int(m) == 0 or int(m) >= s.threshold
    # a small count is suppressed with a complementary cell, so it cannot be recovered
    mp = a.table("missingness_predictors").copy()
    base = (mp["factor"] == "baseline score") & (mp["arm"] == "intervention")
    first = mp.index[base][0]
    mp.loc[first, "n_missing"] = 2
    small = dataclasses.replace(a, tables={**a.tables, "missingness_predictors": mp})
    t2 = predictor_table(small, s)
    rows = t2.frame[t2.frame["Factor"] == "Thirds of the baseline score"]
    cells = list(rows["Intervention: missing of n"])
    assert sum(c.startswith(SUPPRESSED) for c in cells) >= 2
    assert "count(s) suppressed" in t2.note


def test_la_shares_only_in_bands(demo: DemoResult) -> None:
    a = load_analysis(demo.analysis)
    t = la_band_table(a)
    la_ids = set(a.table("missingness_predictors").query("factor == 'la'")["level"])
    text = t.frame.to_string()
    assert not any(re.search(rf"\b{re.escape(x)}\b", text) for x in la_ids)
    assert list(t.frame["Share missing"]) == ["< 20%", "20–40%", "> 40%"]
    n_la = len(la_ids)
    assert int(t.frame.filter(like=": LAs").to_numpy().sum()) == n_la


@pytest.mark.parametrize(
    ("share", "band"),
    [(0.0, "< 20%"), (0.1999, "< 20%"), (0.2, "20–40%"), (0.4, "20–40%"), (0.41, "> 40%")],
)
def test_share_band(share: float, band: str) -> None:
    assert W.share_band(share) == band


def test_no_missing_data_plan_says_so(demo: DemoResult) -> None:
    a = load_analysis(demo.analysis)
    tables = {k: v for k, v in a.tables.items() if k not in ("imputation", "tipping_point")}
    bare = dataclasses.replace(a, tables=tables)
    sec = missing_data_section(bare, DisclosureSettings(), make_section=Section, make_figure=Figure)
    assert sec.paragraphs[0] == W.MISSING_DATA_NONE and not sec.tables
    assert any(s.id == MISSING_SECTION_ID for s in build_report(bare, generated="x").sections)
