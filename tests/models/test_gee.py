"""GEE against geepack; KC / MD small-sample corrections against closed forms."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import linalg
from scipy.special import expit

from trialkit.errors import ModelSpecError
from trialkit.models.design import build_model_frame
from trialkit.models.gee import fit_gee, gee_sandwich
from trialkit.models.results import FitResult

_spec = importlib.util.spec_from_file_location(
    "robust_tolerances", Path(__file__).parents[1] / "reference" / "robust" / "tolerances.py"
)
assert _spec is not None and _spec.loader is not None
tol = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tol)
REF = tol.reference()


def _frame(name: str, outcome: str):
    d = tol.data(name)
    return build_model_frame(
        d, outcome=outcome, treatment="treat", covariates=["x", "z"], clusters=["cluster"]
    )


CASES = [
    ("yb", "binomial", "independence", "gee_bin_independence"),
    ("yb", "binomial", "exchangeable", "gee_bin_exchangeable"),
    ("y", "gaussian", "exchangeable", "gee_gau_exchangeable"),
]


@pytest.mark.parametrize("name", tol.DATASETS)
@pytest.mark.parametrize(("outcome", "family", "corr", "key"), CASES)
def test_coef_matches_geepack(name: str, outcome: str, family: str, corr: str, key: str) -> None:
    r = fit_gee(_frame(name, outcome), corr=corr, family=family, vcov="CR0")
    est = [t.estimate for t in r.fixed_effects]
    np.testing.assert_allclose(est, REF[name][key]["coef"], rtol=0, atol=tol.GEE_COEF)


@pytest.mark.parametrize("name", tol.DATASETS)
@pytest.mark.parametrize(("outcome", "family", "corr", "key"), CASES)
def test_robust_se_matches_geepack(
    name: str, outcome: str, family: str, corr: str, key: str
) -> None:
    r = fit_gee(_frame(name, outcome), corr=corr, family=family, vcov="CR0")
    se = [t.std_error for t in r.fixed_effects]
    np.testing.assert_allclose(se, REF[name][key]["se"], rtol=0, atol=tol.GEE_SE)


@pytest.mark.parametrize("name", tol.DATASETS)
def test_exchangeable_alpha_matches_geepack(name: str) -> None:
    r = fit_gee(_frame(name, "yb"), corr="exchangeable", family="binomial")
    assert r.alpha_corr == pytest.approx(
        REF[name]["gee_bin_exchangeable"]["alpha"], abs=tol.GEE_ALPHA
    )


@pytest.mark.parametrize("name", tol.DATASETS)
@pytest.mark.parametrize(("vcov", "cr"), [("CR2", "CR2"), ("CR3", "CR3")])
def test_identity_independence_kc_md_equal_clubsandwich_cr2_cr3(
    name: str, vcov: str, cr: str
) -> None:
    r = fit_gee(_frame(name, "y"), corr="independence", family="gaussian", vcov=vcov)
    se = [t.std_error for t in r.fixed_effects]
    np.testing.assert_allclose(se, REF[name]["lm"][cr]["se"], rtol=0, atol=tol.GEE_KC_MD)


def _logistic_pieces():
    rng = np.random.default_rng(5)
    D, V, E = [], [], []
    for n in (3, 5, 4, 6, 2, 5):
        X = np.column_stack([np.ones(n), rng.normal(size=n)])
        mu = expit(X @ np.array([0.2, 0.7]))
        v = mu * (1 - mu)
        R = 0.7 * np.eye(n) + 0.3
        D.append(X * v[:, None])
        V.append(np.sqrt(v)[:, None] * R * np.sqrt(v)[None, :])
        E.append((rng.uniform(size=n) < mu) - mu)
    return D, V, E


@pytest.mark.parametrize("vcov", ["CR2", "CR3"])
def test_kc_md_closed_form(vcov: str) -> None:
    """Kauermann–Carroll and Mancl–DeRouen written directly from the papers."""
    D, V, E = _logistic_pieces()
    M = np.linalg.inv(sum(d.T @ np.linalg.solve(v, d) for d, v in zip(D, V, strict=True)))
    meat = np.zeros((2, 2))
    for d, v, e in zip(D, V, E, strict=True):
        IH = np.eye(len(e)) - d @ M @ d.T @ np.linalg.inv(v)
        A = np.real(linalg.inv(linalg.sqrtm(IH))) if vcov == "CR2" else np.linalg.inv(IH)
        u = d.T @ np.linalg.solve(v, A @ e)
        meat += np.outer(u, u)
    cov, _ = gee_sandwich(D, V, E, type=vcov)
    np.testing.assert_allclose(cov, M @ meat @ M, rtol=1e-9, atol=tol.GEE_KC_MD)


def test_binomial_extras_and_round_trip() -> None:
    r = fit_gee(_frame("a", "yb"))
    assert r.method == "gee"
    assert r.treatment.df == r.n_clusters["cluster"] - 4
    assert r.effects.odds_ratio == pytest.approx(math.exp(r.treatment.estimate))
    assert (
        r.effects.risk_difference_conf_low
        < r.effects.risk_difference
        < r.effects.risk_difference_conf_high
    )
    assert FitResult.from_dict(r.to_dict()).to_dict() == r.to_dict()


def test_bad_options() -> None:
    f = _frame("a", "yb")
    with pytest.raises(ModelSpecError):
        fit_gee(f, corr="ar1")
    with pytest.raises(ModelSpecError):
        fit_gee(f, vcov="HC9")
    with pytest.raises(ModelSpecError) as exc:
        fit_gee(_frame("a", "y"), family="binomial")
    assert exc.value.problems[0].code == "fit.gee.outcome"


def test_shuffled_rows_give_same_fit() -> None:
    d = tol.data("b").sample(frac=1.0, random_state=2)
    f = build_model_frame(
        d, outcome="yb", treatment="treat", covariates=["x", "z"], clusters=["cluster"]
    )
    a, b = fit_gee(f).treatment, fit_gee(_frame("b", "yb")).treatment
    assert a.estimate == pytest.approx(b.estimate, abs=1e-10)
    assert a.std_error == pytest.approx(b.std_error, abs=1e-10)


def test_marginal_risk_difference_closed_form_treatment_only() -> None:
    # Treatment-only independence GEE: fitted risks are the arm proportions, and the
    # delta-method CR0 SE of their difference is the cluster-robust SE of p̂₁ − p̂₀:
    # Var(p̂_a) = Σ_{j in arm a} (Σ_i (y_ij − p̂_a))² / N_a² (Liang & Zeger 1986).
    d = tol.data("a")
    f = build_model_frame(d, outcome="yb", treatment="treat", clusters=["cluster"])
    r = fit_gee(f, corr="independence", vcov="CR0")
    y, t = d["yb"].to_numpy(float), d["treat"].to_numpy(int)
    p1, p0 = y[t == 1].mean(), y[t == 0].mean()
    var = 0.0
    for arm, p in ((1, p1), (0, p0)):
        s = d.assign(e=y - p)[t == arm].groupby("cluster")["e"].sum().to_numpy()
        var += float(s @ s) / (t == arm).sum() ** 2
    assert r.effects.marginal_risk_treated == pytest.approx(p1, abs=1e-10)
    assert r.effects.marginal_risk_control == pytest.approx(p0, abs=1e-10)
    assert r.effects.risk_difference == pytest.approx(p1 - p0, abs=1e-10)
    assert r.effects.risk_difference_std_error == pytest.approx(math.sqrt(var), rel=1e-8)


def test_cr1_is_cr0_scaled_by_j_over_j_minus_1() -> None:
    """CR1 (listed for GEE by ``trialkit fit --help``): CR0 × J/(J − 1) exactly."""
    fr = _frame("a", "yb")
    r0 = fit_gee(fr, family="binomial", vcov="CR0")
    r1 = fit_gee(fr, family="binomial", vcov="CR1")
    J = r0.n_clusters["cluster"]
    se0 = np.array([t.std_error for t in r0.fixed_effects])
    se1 = np.array([t.std_error for t in r1.fixed_effects])
    assert np.allclose(se1, se0 * math.sqrt(J / (J - 1)), rtol=1e-12)
    assert r1.vcov_type == "CR1"
