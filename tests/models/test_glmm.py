"""Random-intercept logistic GLMM (Laplace, AGQ) against lme4::glmer."""

from __future__ import annotations

import importlib.util
import math
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialkit.errors import ModelSpecError
from trialkit.models.design import build_model_frame
from trialkit.models.glmm import fit_glmm, glmm_deviance
from trialkit.models.results import FitResult

_spec = importlib.util.spec_from_file_location(
    "robust_tolerances", Path(__file__).parents[1] / "reference" / "robust" / "tolerances.py"
)
assert _spec is not None and _spec.loader is not None
tol = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tol)
REF = tol.reference()


def _frame(name: str):
    d = tol.data(name)
    return build_model_frame(
        d, outcome="yb", treatment="treat", covariates=["x", "z"], clusters=["cluster"]
    )


@cache
def _fit(name: str, nagq: int) -> FitResult:
    return fit_glmm(_frame(name), nagq=nagq)


def _est(r: FitResult) -> np.ndarray:
    return np.array([t.estimate for t in r.fixed_effects])


def _se(r: FitResult) -> np.ndarray:
    return np.array([t.std_error for t in r.fixed_effects])


@pytest.mark.parametrize("name", tol.DATASETS)
def test_laplace_beta_matches_glmer_tight(name: str) -> None:
    ref = REF[name]["glmer_agq1_tight"]
    np.testing.assert_allclose(_est(_fit(name, 1)), ref["beta"], rtol=0, atol=tol.GLMM_BETA_TIGHT)


@pytest.mark.parametrize("name", tol.DATASETS)
def test_laplace_theta_matches_glmer_tight(name: str) -> None:
    ref = REF[name]["glmer_agq1_tight"]
    assert _fit(name, 1).theta == pytest.approx(ref["theta"], abs=tol.GLMM_THETA_TIGHT)


@pytest.mark.parametrize("name", tol.DATASETS)
def test_laplace_loglik_matches_glmer_tight(name: str) -> None:
    ref = REF[name]["glmer_agq1_tight"]
    assert _fit(name, 1).loglik == pytest.approx(ref["loglik"], abs=tol.GLMM_LOGLIK_TIGHT)


@pytest.mark.parametrize("name", tol.DATASETS)
def test_laplace_se_matches_glmer_tight(name: str) -> None:
    ref = REF[name]["glmer_agq1_tight"]
    np.testing.assert_allclose(_se(_fit(name, 1)), ref["se"], rtol=0, atol=tol.GLMM_SE_TIGHT)


@pytest.mark.parametrize("name", tol.DATASETS)
def test_laplace_beta_matches_glmer_default(name: str) -> None:
    ref = REF[name]["glmer_agq1"]
    np.testing.assert_allclose(_est(_fit(name, 1)), ref["beta"], rtol=0, atol=tol.GLMM_BETA_DEFAULT)


@pytest.mark.parametrize("name", tol.DATASETS)
def test_agq10_matches_glmer(name: str) -> None:
    r, ref = _fit(name, 10), REF[name]["glmer_agq10"]
    np.testing.assert_allclose(_est(r), ref["beta"], rtol=0, atol=tol.GLMM_BETA_AGQ)
    assert r.theta == pytest.approx(ref["theta"], abs=tol.GLMM_BETA_AGQ)
    assert r.loglik == pytest.approx(ref["loglik"], abs=tol.GLMM_LOGLIK_AGQ)


@pytest.mark.parametrize("nagq", [1, 10])
def test_deviance_at_glmer_estimates(nagq: int) -> None:
    d = tol.data("a")
    ref = REF["a"][f"glmer_agq{nagq}_tight"]
    X = np.column_stack([np.ones(len(d)), d.treat, d.x, d.z])
    codes = pd.factorize(d.cluster, sort=True)[0]
    dev = glmm_deviance(
        X, d.yb.to_numpy(float), codes, ref["theta"], np.array(ref["beta"]), nagq=nagq
    )
    assert -0.5 * dev == pytest.approx(ref["loglik"], abs=tol.GLMM_LOGLIK_TIGHT)


def test_between_within_df_and_extras() -> None:
    r = _fit("a", 1)
    assert r.treatment.df == r.n_clusters["cluster"] - 3  # intercept, treat, z are cluster-level
    assert r.fixed_effects[2].df == r.n_obs - r.n_clusters["cluster"] - 1
    assert r.effects.odds_ratio == pytest.approx(math.exp(r.treatment.estimate))
    assert (
        r.effects.risk_difference_conf_low
        < r.effects.risk_difference
        < r.effects.risk_difference_conf_high
    )
    assert FitResult.from_dict(r.to_dict()).to_dict() == r.to_dict()


def test_df_methods() -> None:
    f = _frame("b")
    assert math.isinf(fit_glmm(f, df_method="z").treatment.df)
    assert fit_glmm(f, df_method="residual").treatment.df == f.n_obs - 4


def _nested_frame(name: str):
    d = tol.data(name)
    d = d.assign(sub=d.groupby("cluster").cumcount().add(1) % 3)
    return build_model_frame(
        d, outcome="yb", treatment="treat", covariates=["x", "z"], clusters=["cluster", "sub"]
    )


@cache
def _fit_nested(name: str) -> FitResult:
    return fit_glmm(_nested_frame(name))


@pytest.mark.parametrize("name", tol.DATASETS)
def test_nested_laplace_beta_matches_glmer(name: str) -> None:
    """(1 | cluster/sub); dataset a is singular at the sub level."""
    ref = REF[name]["glmer3_agq1_tight"]
    np.testing.assert_allclose(
        _est(_fit_nested(name)), ref["beta"], rtol=0, atol=tol.GLMM_BETA_TIGHT
    )


@pytest.mark.parametrize("name", tol.DATASETS)
def test_nested_laplace_theta_matches_glmer(name: str) -> None:
    ref = REF[name]["glmer3_agq1_tight"]  # lme4 orders theta (sub:cluster, cluster)
    np.testing.assert_allclose(
        _fit_nested(name).theta, ref["theta"][::-1], rtol=0, atol=tol.GLMM_THETA_TIGHT
    )


@pytest.mark.parametrize("name", tol.DATASETS)
def test_nested_laplace_loglik_matches_glmer(name: str) -> None:
    ref = REF[name]["glmer3_agq1_tight"]
    assert _fit_nested(name).loglik == pytest.approx(ref["loglik"], abs=tol.GLMM_LOGLIK_TIGHT)


@pytest.mark.parametrize("name", tol.DATASETS)
def test_nested_laplace_se_matches_glmer(name: str) -> None:
    ref = REF[name]["glmer3_agq1_tight"]
    np.testing.assert_allclose(_se(_fit_nested(name)), ref["se"], rtol=0, atol=tol.GLMM_SE_TIGHT)


def test_nested_singular_flag() -> None:
    assert _fit_nested("a").singular
    assert not _fit_nested("b").singular


def test_nested_agq_rejected() -> None:
    with pytest.raises(ModelSpecError) as exc:
        fit_glmm(_nested_frame("a"), nagq=5)
    assert exc.value.problems[0].code == "fit.glmm.levels"


def test_three_levels_rejected() -> None:
    d = tol.data("a").assign(sub=lambda t: t.groupby("cluster").cumcount() % 4)
    d = d.assign(subsub=d.groupby(["cluster", "sub"]).cumcount() % 2)
    f = build_model_frame(d, outcome="yb", treatment="treat", clusters=["cluster", "sub", "subsub"])
    with pytest.raises(ModelSpecError) as exc:
        fit_glmm(f)
    assert exc.value.problems[0].code == "fit.glmm.levels"


def test_shuffled_rows_and_relabelled_clusters_give_same_fit() -> None:
    d = tol.data("b").sample(frac=1.0, random_state=11)
    d = d.assign(cluster="q" + d.cluster.str[::-1])
    f = build_model_frame(
        d, outcome="yb", treatment="treat", covariates=["x", "z"], clusters=["cluster"]
    )
    r = fit_glmm(f)
    np.testing.assert_allclose(_est(r), _est(_fit("b", 1)), rtol=0, atol=1e-7)
