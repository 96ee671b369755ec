"""The MDES table (issue #14 item 8): unconditional ICCs, R² credit, unequal LA sizes.

Recomputed with the closed form of Dong & Maynard (2013) and Eldridge et al. (2006) and the
noncentral t (scipy), not with trialkit.power.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from trialkit.analyse import load_analysis
from trialkit.pipeline import DemoResult


def _mdes(se: float, df: float, power: float = 0.8, alpha: float = 0.05) -> float:
    c = stats.t.ppf(1 - alpha / 2, df)

    def gap(lam: float) -> float:
        # P(T > c) + P(T < −c); the lower tail as sf with −λ (nct.cdf is NaN for large λ)
        return stats.nct.sf(c, df, lam) + stats.nct.sf(c, df, -lam) - power

    return float(optimize.brentq(gap, 0.0, 20.0, xtol=1e-13)) * se


def _se(r: pd.Series, credit: bool) -> float:
    r2 = {k: (float(r[k]) if credit else 0.0) for k in ("r2_la", "r2_keyworker", "r2_residual")}
    top = r["icc_la"] * (1 - r2["r2_la"]) * (1 + r["cv_cluster_size"] ** 2)
    if r["level"] == "family":
        j, n = r["keyworkers_per_la"], r["families_per_keyworker"]
        low = r["icc_keyworker"] * (1 - r2["r2_keyworker"]) / j + (
            1 - r["icc_la"] - r["icc_keyworker"]
        ) * (1 - r2["r2_residual"]) / (j * n)
    else:
        low = (1 - r["icc_la"]) * (1 - r2["r2_residual"]) / r["units_per_la"]
    return float(np.sqrt((top + low) / (0.25 * r["n_la"])))


def test_mdes_matches_the_closed_form(demo: DemoResult) -> None:
    a = load_analysis(demo.analysis)
    m = a.table("mdes")
    res = a.table("results")
    prim = res[res["analysis"] == "primary"].set_index("outcome_id")
    assert len(m) == (prim["type"] == "continuous").sum()
    for _, r in m.iterrows():
        p = prim.loc[r["outcome_id"]]
        # the ICC is the unconditional one, and the R² the primary model's
        assert r["icc_la"] == p["icc_la_unconditional"]
        assert r["r2_la"] == min(p["r2_la"], 1 - 1e-9)
        assert r["icc_source"] == "unconditional (intercept-only model)"
        assert 0 < r["cv_cluster_size"] < 1
        df = r["n_la"] - r["cluster_covariates"] - 2
        assert r["df"] == df
        np.testing.assert_allclose(r["mdes"], _mdes(_se(r, True), df), rtol=1e-8)
        np.testing.assert_allclose(r["mdes_unadjusted"], _mdes(_se(r, False), df), rtol=1e-8)
        assert r["mdes"] <= r["mdes_unadjusted"] + 1e-12


def test_unequal_la_sizes_are_the_analysed_ones(demo: DemoResult) -> None:
    """CV of the analysed LA sizes, from the raw keyworker CSV and the results' n."""
    m = load_analysis(demo.analysis).table("mdes").set_index("outcome_id")
    kw = pd.read_csv(demo.data / "keyworkers.csv")
    assert m.loc["keyworker_wellbeing", "n_la"] == kw["la_id"].nunique()
    assert m.loc["keyworker_wellbeing", "n_obs"] <= len(kw)
