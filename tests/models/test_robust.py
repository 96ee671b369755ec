"""CR0–CR3, Satterthwaite df and HTZ against clubSandwich; CR2 = HC2 with singleton clusters."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from trialkit.errors import ModelSpecError
from trialkit.models.design import build_model_frame
from trialkit.models.robust import fit_ols_cr, nested_intercept_blocks, vcov_cr, vcov_cr_gls

_spec = importlib.util.spec_from_file_location(
    "robust_tolerances", Path(__file__).parents[1] / "reference" / "robust" / "tolerances.py"
)
assert _spec is not None and _spec.loader is not None
tol = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tol)
REF = tol.reference()


def _design(name: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    d = tol.data(name)
    X = np.column_stack([np.ones(len(d)), d.treat, d.x, d.z])
    return d, X, d.y.to_numpy()


def _ols(name: str, type_: str):
    d, X, y = _design(name)
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    return vcov_cr(X, y - X @ b, d.cluster, type=type_), b


@pytest.mark.parametrize("name", tol.DATASETS)
@pytest.mark.parametrize("type_", ["CR0", "CR1", "CR1S", "CR2", "CR3"])
def test_lm_se_matches_clubsandwich(name: str, type_: str) -> None:
    cr, _ = _ols(name, type_)
    ref = REF[name]["lm"][type_]
    np.testing.assert_allclose(cr.std_errors, ref["se"], rtol=0, atol=tol.CR_SE)
    np.testing.assert_allclose(cr.vcov, ref["vcov"], rtol=0, atol=tol.CR_VCOV)


@pytest.mark.parametrize("name", tol.DATASETS)
@pytest.mark.parametrize("type_", ["CR0", "CR2", "CR3"])
def test_lm_satterthwaite_df_matches_clubsandwich(name: str, type_: str) -> None:
    cr, _ = _ols(name, type_)
    df = [cr.satterthwaite_df(np.eye(4)[k]) for k in range(4)]
    np.testing.assert_allclose(df, REF[name]["lm"][type_]["df"], rtol=0, atol=tol.CR_DF)


@pytest.mark.parametrize("name", tol.DATASETS)
def test_lm_htz_matches_clubsandwich(name: str) -> None:
    cr, b = _ols(name, "CR2")
    w = cr.wald_test(b, np.eye(4)[1:3], test="HTZ")
    ref = REF[name]["lm"]["HTZ"]
    assert w["Fstat"] == pytest.approx(ref["Fstat"], abs=tol.HTZ_F)
    assert w["df_denom"] == pytest.approx(ref["df_denom"], abs=tol.HTZ_DF)
    assert w["p_value"] == pytest.approx(ref["p_val"], abs=tol.HTZ_F)


@pytest.mark.parametrize("name", tol.DATASETS)
@pytest.mark.parametrize("type_", ["CR0", "CR2"])
def test_lmer_cr_matches_clubsandwich(name: str, type_: str) -> None:
    d, X, y = _design(name)
    L = REF[name]["lmer"]
    sizes = d.groupby("cluster").size()
    V = [L["sigma2"] * np.eye(n) + L["tau2"] for n in sizes]
    cr = vcov_cr_gls(X, y - X @ np.array(L["beta"]), d.cluster, V, type=type_)
    np.testing.assert_allclose(cr.std_errors, L[type_]["se"], rtol=0, atol=tol.CR_SE)
    df = [cr.satterthwaite_df(np.eye(4)[k]) for k in range(4)]
    np.testing.assert_allclose(df, L[type_]["df"], rtol=0, atol=tol.CR_DF)


def test_lmer_blocks_as_mapping_give_same_answer() -> None:
    d, X, y = _design("a")
    L = REF["a"]["lmer"]
    sizes = d.groupby("cluster").size()
    V = {k: L["sigma2"] * np.eye(n) + L["tau2"] for k, n in sizes.items()}
    cr = vcov_cr_gls(X, y - X @ np.array(L["beta"]), d.cluster, V)
    np.testing.assert_allclose(cr.std_errors, L["CR2"]["se"], rtol=0, atol=tol.CR_SE)


def test_cr2_singleton_clusters_is_hc2() -> None:
    d, X, y = _design("a")
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    cr = vcov_cr(X, y - X @ b, np.arange(len(y)), type="CR2")
    hc2 = sm.OLS(y, X).fit(cov_type="HC2").cov_params()
    np.testing.assert_allclose(cr.vcov, hc2, rtol=0, atol=tol.EQUIV)


def test_cr3_singleton_clusters_is_hc3() -> None:
    d, X, y = _design("a")
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    cr = vcov_cr(X, y - X @ b, np.arange(len(y)), type="CR3")
    hc3 = sm.OLS(y, X).fit(cov_type="HC3").cov_params()
    np.testing.assert_allclose(cr.vcov, hc3, rtol=0, atol=tol.EQUIV)


def test_fit_ols_cr_treatment_matches_clubsandwich() -> None:
    d = tol.data("a")
    f = build_model_frame(
        d, outcome="y", treatment="treat", covariates=["x", "z"], clusters=["cluster"]
    )
    r = fit_ols_cr(f)
    ref = REF["a"]["lm"]
    assert r.method == "ols-cr2"
    assert r.treatment.estimate == pytest.approx(ref["coef"][1], abs=1e-10)
    assert r.treatment.std_error == pytest.approx(ref["CR2"]["se"][1], abs=tol.CR_SE)
    assert r.treatment.df == pytest.approx(ref["CR2"]["df"][1], abs=tol.CR_DF)
    assert r.to_dict()["treatment"]["df_method"] == "satterthwaite"


def test_shuffle_and_relabel_invariance() -> None:
    d = tol.data("b")
    f = build_model_frame(
        d, outcome="y", treatment="treat", covariates=["x", "z"], clusters=["cluster"]
    )
    d2 = d.sample(frac=1.0, random_state=3).assign(cluster=lambda t: "k" + t.cluster.str[::-1])
    f2 = build_model_frame(
        d2, outcome="y", treatment="treat", covariates=["x", "z"], clusters=["cluster"]
    )
    a, b = fit_ols_cr(f).treatment, fit_ols_cr(f2).treatment
    assert b.std_error == pytest.approx(a.std_error, rel=1e-10)
    assert b.df == pytest.approx(a.df, rel=1e-10)


def test_affine_outcome_scales_se_keeps_df() -> None:
    d, X, y = _design("b")
    b0 = np.linalg.lstsq(X, y, rcond=None)[0]
    y2 = 3.0 - 2.5 * y
    b1 = np.linalg.lstsq(X, y2, rcond=None)[0]
    c0 = vcov_cr(X, y - X @ b0, d.cluster)
    c1 = vcov_cr(X, y2 - X @ b1, d.cluster)
    np.testing.assert_allclose(c1.std_errors, 2.5 * c0.std_errors, rtol=1e-10)
    assert c1.satterthwaite_df([0, 1, 0, 0]) == pytest.approx(
        c0.satterthwaite_df([0, 1, 0, 0]), rel=1e-10
    )


def test_bad_type_raises_fit_error() -> None:
    _, X, y = _design("a")
    with pytest.raises(ModelSpecError) as exc:
        vcov_cr(X, y, np.zeros(len(y)), type="CR9")
    assert exc.value.problems[0].code == "fit.robust.type"


def test_one_cluster_raises() -> None:
    _, X, y = _design("a")
    with pytest.raises(ModelSpecError) as exc:
        vcov_cr(X, y, np.zeros(len(y)))
    assert exc.value.problems[0].code == "fit.robust.one_cluster"


def _three_level(name: str):
    d, X, y = _design(name)
    d = d.assign(sub=d.groupby("cluster").cumcount().add(1) % 3)
    L = REF[name]["lmer3"]
    comp = dict(zip(L["grp"], L["vcov_components"], strict=True))
    codes = [d.cluster.to_numpy(), (d.cluster + "/" + d["sub"].astype(str)).to_numpy()]
    blocks = nested_intercept_blocks(
        codes, [comp["cluster"], comp["sub:cluster"]], comp["Residual"]
    )
    return d, X, y - X @ np.array(L["beta"]), blocks, L


@pytest.mark.parametrize("name", tol.DATASETS)
def test_three_level_lmer_cr2_matches_clubsandwich(name: str) -> None:
    """Nested random intercepts (dataset b is a singular fit), low-rank blocks."""
    d, X, e, blocks, L = _three_level(name)
    cr = vcov_cr_gls(X, e, d.cluster, blocks)
    np.testing.assert_allclose(cr.std_errors, L["CR2"]["se"], rtol=0, atol=tol.CR_SE)
    df = [cr.satterthwaite_df(np.eye(4)[k]) for k in range(4)]
    np.testing.assert_allclose(df, L["CR2"]["df"], rtol=0, atol=tol.CR_DF)


@pytest.mark.parametrize("type_", ["CR0", "CR2", "CR3"])
def test_low_rank_blocks_equal_dense_blocks(type_: str) -> None:
    d, X, e, blocks, _ = _three_level("a")
    dense = [a * np.eye(len(U)) + U @ U.T for a, U in blocks]
    lo = vcov_cr_gls(X, e, d.cluster, blocks, type=type_)
    de = vcov_cr_gls(X, e, d.cluster, dense, type=type_)
    np.testing.assert_allclose(lo.vcov, de.vcov, rtol=0, atol=tol.CR_VCOV)
    assert lo.satterthwaite_df([0, 1, 0, 0]) == pytest.approx(
        de.satterthwaite_df([0, 1, 0, 0]), abs=tol.CR_DF
    )


def test_ols_reduced_path_equals_explicit_identity_weights() -> None:
    d, X, y = _design("b")
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    sizes = d.groupby("cluster").size()
    fast = vcov_cr(X, y - X @ b, d.cluster)
    dense = vcov_cr(X, y - X @ b, d.cluster, weights_blocks=[np.ones(n) for n in sizes])
    np.testing.assert_allclose(fast.vcov, dense.vcov, rtol=0, atol=tol.CR_VCOV)
    assert fast.satterthwaite_df([0, 1, 0, 0]) == pytest.approx(
        dense.satterthwaite_df([0, 1, 0, 0]), abs=tol.CR_DF
    )
