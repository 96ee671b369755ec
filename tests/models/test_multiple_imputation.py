"""``fit(missing="multilevel-mi")``: pooling of completed-data fits, δ, tipping point.

The slow simulation at the end (``-m slow``) shows that under MAR driven by an
auxiliary the complete-case estimate is biased while multilevel MI is not and
covers at about 95%.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trialkit
from trialkit.errors import ModelSpecError, UsageError
from trialkit.models.imputation import impute_multilevel
from trialkit.models.multiple_imputation import (
    BatchedLmm,
    MiResult,
    TippingPoint,
    _crossing,
    impute_and_fit,
    plot_tipping_point,
    tipping_point,
)

REF = Path(__file__).resolve().parents[1] / "reference" / "imputation"


def _trial(
    seed: int,
    n_la: int = 12,
    kw: int = 3,
    fam: int = 8,
    effect: float = 0.3,
    miss_slope: float = 1.5,
) -> pd.DataFrame:
    """3-level trial; the outcome is MAR given the auxiliary ``z`` (more so when treated)."""
    rng = np.random.default_rng(seed)
    arms = rng.permutation(np.repeat([0, 1], n_la // 2))
    rows = []
    for la in range(n_la):
        u = rng.normal(0, 0.3)
        for k in range(kw):
            v = rng.normal(0, 0.2)
            for _ in range(fam):
                b = rng.normal()
                e = rng.normal(0, 0.8)
                y = effect * arms[la] + 0.5 * b + u + v + e
                z = 0.8 * (y - effect * arms[la]) + rng.normal(0, 0.5)  # the mid-point measure
                p = 1 / (1 + np.exp(-(-1.0 + miss_slope * z * arms[la] - 0.5 * z * (1 - arms[la]))))
                rows.append(
                    {
                        "la": f"L{la:02d}",
                        "kw": f"K{k}",
                        "arm": "intervention" if arms[la] else "control",
                        "baseline": b,
                        "z": z,
                        "y": y if rng.random() > p else np.nan,
                    }
                )
    return pd.DataFrame(rows)


KW = {
    "outcome": "y",
    "treatment": "arm",
    "treatment_level": "intervention",
    "covariates": ["baseline"],
    "clusters": ["la", "kw"],
}


def _quiet(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trialkit.fit(**kw)


def test_nothing_missing_equals_complete_case_exactly() -> None:
    d = _trial(1).assign(y=lambda f: f["y"].fillna(0.25))
    cc = _quiet(data=d, **KW)
    mi = _quiet(data=d, **KW, missing="multilevel-mi", auxiliary=["z"], imputations=5, seed=1)
    assert mi.treatment == cc.treatment
    assert mi.fixed_effects == cc.fixed_effects
    assert any("nothing to impute" in w for w in mi.warnings)


def test_same_seed_same_result_and_round_trip() -> None:
    d = _trial(2)
    a = _quiet(data=d, **KW, missing="multilevel-mi", auxiliary=["z"], imputations=4, seed=9)
    b = _quiet(data=d, **KW, missing="multilevel-mi", auxiliary=["z"], imputations=4, seed=9)
    c = _quiet(data=d, **KW, missing="multilevel-mi", auxiliary=["z"], imputations=4, seed=10)
    assert isinstance(a, MiResult)
    assert a.to_dict() == b.to_dict()
    assert a.treatment.estimate != c.treatment.estimate
    assert a.df_method == "barnard-rubin" and a.method == "multilevel-mi"
    assert a.n_obs == len(d)
    s = a.imputation_summary()
    assert s["m"] == 4 and s["df_method"] == "barnard-rubin"
    assert 0 < s["fraction_missing_information"] < 1
    assert s["relative_increase_in_variance"] > 0
    back = trialkit.FitResult.from_dict(json.loads(json.dumps(a.to_dict())))
    assert isinstance(back, MiResult)
    assert back.treatment == a.treatment and back.pooled == a.pooled
    assert "multiple imputation: m = 4" in a.summary()
    # pooling the stored per-imputation numbers by hand gives the treatment term
    p = trialkit.pool(a.completed_estimates, a.completed_variances, float(np.mean(a.completed_df)))
    assert p.estimate == a.treatment.estimate and p.df == a.treatment.df


def test_delta_moves_the_estimate_by_the_imputed_share() -> None:
    d = _trial(3)
    r0 = _quiet(data=d, **KW, missing="multilevel-mi", auxiliary=["z"], imputations=3, seed=1)
    r1 = _quiet(
        data=d, **KW, missing="multilevel-mi", auxiliary=["z"], imputations=3, seed=1, delta=-0.5
    )
    assert r1.treatment.estimate < r0.treatment.estimate
    assert r1.imputation["delta"] == -0.5
    assert any("delta-adjusted" in w for w in r1.warnings)


def test_usage_errors() -> None:
    d = _trial(4)
    with pytest.raises(UsageError):
        trialkit.fit(d, **KW, seed=3)
    with pytest.raises(UsageError):
        trialkit.fit(d, **KW, auxiliary=["z"])
    with pytest.raises(ModelSpecError) as err:
        trialkit.fit(d, **KW, missing="multiple")
    assert err.value.problems[0].code == "fit.missing"
    with pytest.raises(ModelSpecError) as err:
        trialkit.fit(
            d.assign(y=(d["y"] > 0).astype(float).where(d["y"].notna())),
            **KW,
            family="binomial",
            missing="multilevel-mi",
        )
    assert err.value.problems[0].code == "fit.mi_family"
    with pytest.raises(ModelSpecError) as err:
        trialkit.fit(d, **KW, missing="multilevel-mi", delta=float("nan"))
    assert err.value.problems[0].code == "fit.mi_delta"


def test_completed_data_fits_match_lmer_and_pool_like_mitml() -> None:
    """Each stored completed dataset fitted by trialkit = lmer + pbkrtest (KR), so the
    pooled result is mitml's (the pooling itself is checked to 1e-10 in test_pooling)."""
    ref = json.loads((REF / "reference.json").read_text())["pooling"]["treat"]
    comp = pd.read_csv(REF / "data" / "completed.csv")
    est, var, dfs = [], [], []
    for _, d in comp.groupby("imp", sort=True):
        r = _quiet(data=d, outcome="y", treatment="treat", covariates=["x"], clusters=["la"])
        est.append(r.treatment.estimate)
        var.append(r.treatment.std_error**2)
        dfs.append(r.treatment.df)
    np.testing.assert_allclose(est, ref["estimates"], rtol=1e-6)
    np.testing.assert_allclose(var, ref["variances"], rtol=1e-5)
    np.testing.assert_allclose(dfs, ref["kr_df"], rtol=1e-5)
    p = trialkit.pool(est, var, float(np.mean(dfs)))
    assert p.estimate == pytest.approx(ref["barnard_rubin"]["estimate"], rel=1e-6)
    assert p.df == pytest.approx(ref["barnard_rubin"]["df"], rel=1e-4)


def test_crossing_is_interpolated_on_the_interval_limit() -> None:
    t = pd.DataFrame(
        {
            "delta": [-1.0, -0.5, 0.0, 0.5, 1.0],
            "conf_low": [0.5, 0.3, 0.1, -0.1, -0.3],
            "conf_high": [2.5, 2.3, 2.1, 1.9, 1.7],
        }
    )
    t["conclusion"] = np.where(t["conf_low"] > 0, "favours treated", "no clear difference")
    assert _crossing(t, 1, "favours treated") == pytest.approx(0.25)
    assert _crossing(t, -1, "favours treated") is None


def test_tipping_point_table_and_plot() -> None:
    d = _trial(5, effect=1.0)
    imp = impute_multilevel(
        d,
        outcome="y",
        treatment="arm",
        treatment_level="intervention",
        clusters=["la", "kw"],
        predictors=["baseline", "z"],
        m=3,
        seed=2,
        burn_in=100,
        thin=5,
    )

    def analyse(frame: pd.DataFrame):
        return _quiet(data=frame, **KW)

    tp = tipping_point(imp, analyse, [-2.0, -1.0, 1.0], alpha=0.05)
    assert isinstance(tp, TippingPoint)
    assert list(tp.table["delta"]) == [-2.0, -1.0, 0.0, 1.0]
    assert tp.table["estimate"].is_monotonic_increasing
    assert tp.conclusion_mar == tp.table.loc[2, "conclusion"]
    assert json.dumps(tp.to_dict())
    assert "tipping point" in tp.summary()
    fig = plot_tipping_point(tp)
    from trialkit.plotting import figure_to_svg

    svg = figure_to_svg(fig, title="tipping point", desc="estimate against delta")
    assert svg.count("<svg") == 1


# ---------------------------------------------------------------------------- simulation
def simulate(reps: int, m: int = 10, seed: int = 0) -> pd.DataFrame:
    """Replicates of :func:`_trial`: complete-case and MI estimates with their intervals."""
    rows = []
    for r in range(reps):
        d = _trial(10_000 + seed + r)
        cc = _quiet(data=d, **KW)
        mi = _quiet(data=d, **KW, missing="multilevel-mi", auxiliary=["z"], imputations=m, seed=r)
        for name, res in (("complete-case", cc), ("multilevel-mi", mi)):
            t = res.treatment
            rows.append(
                {
                    "rep": r,
                    "analysis": name,
                    "estimate": t.estimate,
                    "covered": t.conf_low <= 0.3 <= t.conf_high,
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_simulation_mar_via_auxiliary_cc_biased_mi_unbiased_and_covers() -> None:
    res = simulate(200)
    s = res.groupby("analysis").agg(
        mean=("estimate", "mean"), sd=("estimate", "std"), coverage=("covered", "mean")
    )
    mc = s["sd"] / math.sqrt(200)
    bias = s["mean"] - 0.3
    assert abs(bias["multilevel-mi"]) < 3 * mc["multilevel-mi"]
    assert abs(bias["complete-case"]) > 4 * mc["complete-case"]
    assert 0.91 <= s.loc["multilevel-mi", "coverage"] <= 0.99


# ----------------------------------------------------------------------------- batched fits

SPEC = BatchedLmm(
    outcome="y",
    treatment="arm",
    covariates=("baseline",),
    clusters=("la", "kw"),
    treatment_level="intervention",
)


def _analyse(frame: pd.DataFrame):
    return trialkit.fit(frame, **KW, effect_sizes=False)


def _run(data: pd.DataFrame, batched: BatchedLmm | None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return impute_and_fit(
            data,
            outcome="y",
            treatment="arm",
            treatment_level="intervention",
            covariates=["baseline"],
            clusters=["la", "kw"],
            auxiliary=["z"],
            analyse=_analyse,
            imputations=8,
            seed=5,
            burn_in=100,
            thin=5,
            batched=batched,
            **kw,
        )


def _same(a, b, tol: float = 1e-8) -> None:
    assert a.method == b.method == "multilevel-mi"
    for ta, tb in zip(a.fixed_effects, b.fixed_effects, strict=True):
        assert ta.term == tb.term
        for k in ("estimate", "std_error", "df", "conf_low", "conf_high", "p_value"):
            x, y = getattr(ta, k), getattr(tb, k)
            assert abs(x - y) <= tol * max(1.0, abs(y)), (ta.term, k, x, y)
    np.testing.assert_allclose(a.completed_df, b.completed_df, rtol=tol)
    np.testing.assert_allclose(a.completed_estimates, b.completed_estimates, rtol=0, atol=tol)
    np.testing.assert_allclose(a.pooled.df_complete, b.pooled.df_complete, rtol=tol)
    np.testing.assert_allclose(
        a.pooled.fraction_missing_information, b.pooled.fraction_missing_information, rtol=1e-7
    )
    for k, v in b.variance_components.items():
        assert a.variance_components[k] == pytest.approx(v, rel=1e-6, abs=1e-10)
    assert a.singular == b.singular and a.converged == b.converged
    assert a.warnings == b.warnings


@pytest.mark.parametrize("delta", [0.0, -0.7])
def test_batched_equals_loop(delta: float) -> None:
    data = _trial(11)
    assert data["y"].isna().sum() > 10
    loop, imp = _run(data, None, delta=delta)
    batch, imp2 = _run(data, SPEC, delta=delta)
    assert imp is not None and imp2 is not None and imp.imputed == ("y",)
    assert SPEC.applies(imp)
    _same(batch, loop)


def test_imputed_auxiliary_still_batched() -> None:
    """An incomplete auxiliary (the mid-point score) is imputed but not in the analysis."""
    data = _trial(15)
    data.loc[data.index[::7], "z"] = np.nan
    loop, imp = _run(data, None)
    batch, _ = _run(data, SPEC)
    assert imp is not None and imp.imputed == ("y", "z") and SPEC.applies(imp)
    _same(batch, loop)


def test_tipping_grid_batched_equals_loop() -> None:
    data = _trial(12)
    mar, imp = _run(data, SPEC)
    assert imp is not None
    grid = [-1.0, -0.5, 0.5, 1.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = tipping_point(imp, _analyse, grid, mar=mar, batched=SPEC)
        b = tipping_point(imp, _analyse, grid, mar=mar)
        c = tipping_point(imp, _analyse, grid, batched=SPEC)  # δ = 0 refitted, in the batch
    num = ["estimate", "std_error", "df", "conf_low", "conf_high", "fraction_missing_information"]
    np.testing.assert_allclose(a.table[num], b.table[num], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(c.table[num], b.table[num], rtol=1e-8, atol=1e-10)
    assert list(a.table["conclusion"]) == list(b.table["conclusion"])
    assert a.tipping_below == pytest.approx(b.tipping_below, rel=1e-8) if b.tipping_below else True


def test_imputed_covariate_falls_back_to_the_loop() -> None:
    """A missing covariate is imputed too: X differs between datasets, so the loop is used."""
    data = _trial(13)
    data.loc[data.index[::17], "baseline"] = np.nan
    loop, imp = _run(data, None)
    batch, _ = _run(data, SPEC)
    assert imp is not None and "baseline" in imp.imputed and not SPEC.applies(imp)
    _same(batch, loop, tol=0.0)


def test_fit_uses_the_batch() -> None:
    """trialkit.fit(missing="multilevel-mi") batches and gives the loop's numbers."""
    data = _trial(14)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = trialkit.fit(
            data, **KW, missing="multilevel-mi", auxiliary=["z"], imputations=6, seed=3
        )
        loop, _ = impute_and_fit(
            data,
            outcome="y",
            treatment="arm",
            treatment_level="intervention",
            covariates=["baseline"],
            clusters=["la", "kw"],
            auxiliary=["z"],
            analyse=_analyse,
            imputations=6,
            seed=3,
        )
    _same(res, loop)
