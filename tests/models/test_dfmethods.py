"""Denominator df methods: equivalences that theory gives exactly."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from trialkit.errors import FewClustersWarning, ModelSpecError, SingularFitWarning
from trialkit.models import _engine
from trialkit.models.design import build_model_frame
from trialkit.models.dfmethods import Inference, test_contrast
from trialkit.models.fit import fit
from trialkit.models.lmm import contrast, with_df_method
from trialkit.models.results import FitResult


def balanced(J: int = 10, m: int = 8, seed: int = 0, icc: float = 0.2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cl = np.repeat(np.arange(J), m)
    y = rng.normal(0, np.sqrt(icc), J)[cl] + rng.normal(0, np.sqrt(1 - icc), J * m)
    return pd.DataFrame({"y": y, "treat": (cl % 2).astype(float), "cl": cl})


def test_balanced_kr_and_satterthwaite_df_equal_between_within():
    d = balanced()
    res = fit(d, outcome="y", treatment="treat", clusters=["cl"], effect_sizes=False)
    assert res.treatment.df == pytest.approx(10 - 2, abs=1e-8)
    sat = with_df_method(res, "satterthwaite")
    assert sat.treatment.df == pytest.approx(8, abs=1e-6)
    bw = with_df_method(res, "between-within")
    assert bw.treatment.df == 8.0
    # balanced: KR adjustment vanishes for the treatment contrast
    assert res.treatment.std_error == pytest.approx(bw.treatment.std_error, rel=1e-10)


def test_balanced_se_is_cluster_means_t_test():
    d = balanced(J=12, m=5, seed=4)
    res = fit(d, outcome="y", treatment="treat", clusters=["cl"], effect_sizes=False)
    means = d.groupby("cl").agg(y=("y", "mean"), t=("treat", "first"))
    a, b = means.y[means.t == 1], means.y[means.t == 0]
    sp2 = (a.var() * (len(a) - 1) + b.var() * (len(b) - 1)) / (len(a) + len(b) - 2)
    se = np.sqrt(sp2 * (1 / len(a) + 1 / len(b)))
    if not res.singular:
        assert res.treatment.std_error == pytest.approx(se, rel=1e-8)
        assert res.treatment.estimate == pytest.approx(a.mean() - b.mean(), rel=1e-10)


def test_between_within_counts_cluster_level_columns():
    d = balanced()
    rng = np.random.default_rng(1)
    d["clcov"] = np.repeat(rng.normal(size=10), 8)
    d["indiv"] = rng.normal(size=len(d))
    res = fit(
        d,
        outcome="y",
        treatment="treat",
        covariates=["clcov", "indiv"],
        clusters=["cl"],
        df_method="between-within",
        effect_sizes=False,
    )
    df = {t.term: t.df for t in res.fixed_effects}
    assert df["treat"] == 10 - 3 and df["clcov"] == 10 - 3
    assert df["indiv"] == 80 - 10 - 1


def test_zero_cluster_variance_reproduces_ols():
    # the reference 'singular' case has a REML cluster variance of exactly 0
    d = pd.read_csv("tests/reference/lmm/data/singular.csv")
    fr = build_model_frame(
        d, outcome="y", treatment="treat", covariates=["baseline"], clusters=["la"]
    )
    f = _engine.fit_lmm(_engine.make_layout(fr.cluster_codes), fr.X, fr.y)
    assert f.theta[0, 0] == 0.0
    beta, *_ = np.linalg.lstsq(fr.X, fr.y, rcond=None)
    resid = fr.y - fr.X @ beta
    s2 = resid @ resid / (fr.n_obs - fr.X.shape[1])
    np.testing.assert_allclose(f.beta[0], beta, rtol=1e-10)
    np.testing.assert_allclose(f.Phi[0], s2 * np.linalg.inv(fr.X.T @ fr.X), rtol=1e-9)


def test_residual_df_warns():
    d = balanced()
    with pytest.warns(FewClustersWarning):
        res = fit(
            d,
            outcome="y",
            treatment="treat",
            clusters=["cl"],
            df_method="residual",
            effect_sizes=False,
        )
    assert res.treatment.df == 80 - 2


def test_unknown_df_method():
    with pytest.raises(ModelSpecError) as e:
        fit(balanced(), outcome="y", treatment="treat", clusters=["cl"], df_method="bogus")
    assert e.value.codes == ("fit.df_method",)


def test_contrast_on_result_and_after_round_trip():
    d = balanced(seed=3)
    d["x"] = np.random.default_rng(2).normal(size=len(d))
    res = fit(
        d, outcome="y", treatment="treat", covariates=["x"], clusters=["cl"], effect_sizes=False
    )
    one = contrast(res, [0, 1, 0])
    assert one.ddf == pytest.approx(res.treatment.df, rel=1e-12)
    assert one.std_error[0] == pytest.approx(res.treatment.std_error, rel=1e-12)
    back = FitResult.from_dict(res.to_dict())
    two = contrast(back, [[0, 1, 0], [0, 0, 1]])
    assert two.ndf == 2 and two.ddf > 0 and 0 < two.p_value < 1
    for m in ("satterthwaite", "between-within", "residual"):
        t = contrast(back, [[0, 1, 0], [0, 0, 1]], m)
        assert t.df_method == m and t.ndf == 2


def test_contrast_shape_error():
    res = fit(balanced(), outcome="y", treatment="treat", clusters=["cl"], effect_sizes=False)
    with pytest.raises(ModelSpecError) as e:
        contrast(res, [1, 0, 0])
    assert e.value.codes == ("fit.contrast_shape",)


def test_single_row_kr_matches_multi_row_formula_limit():
    d = balanced(seed=5)
    d["x"] = np.random.default_rng(5).normal(size=len(d))
    fr = build_model_frame(d, outcome="y", treatment="treat", covariates=["x"], clusters=["cl"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        f = _engine.fit_lmm(_engine.make_layout(fr.cluster_codes), fr.X, fr.y)
    inf = Inference.from_fitted(f, n_top=10, cluster_level=fr.cluster_level_columns)
    t1 = test_contrast(inf, [0, 1, 0])
    # the q = 1 case of the general KR formulas (scale 1, m = 2v²/g'Wg)
    F = test_contrast(inf, np.array([[0, 1, 0], [0, 0, 1]]))
    assert t1.scale == 1.0 and F.scale > 0


@pytest.mark.slow
def test_type_one_error_12_clusters_kenward_roger():
    """Null simulation: 12 clusters, ICC 0.1, unequal sizes; KR holds 5% within MC error."""
    rng = np.random.default_rng(12)
    sizes = rng.integers(8, 30, 12)
    cl = np.repeat(np.arange(12), sizes)
    t = (cl % 2).astype(float)
    b = rng.normal(size=cl.size)
    X = np.column_stack([np.ones(cl.size), t, b])
    lay = _engine.make_layout([cl])
    R = 2000
    Y = rng.normal(0, np.sqrt(0.1), (R, 12))[:, cl] + rng.normal(0, np.sqrt(0.9), (R, cl.size))
    Y += 0.5 * b
    out = _engine.fit_lmm_batch(lay, X, Y)
    rate = float(np.mean(out["p_value"] < 0.05))
    mcse = np.sqrt(0.05 * 0.95 / R)
    assert abs(rate - 0.05) < 3 * mcse, rate
