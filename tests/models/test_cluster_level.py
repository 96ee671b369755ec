"""Cluster-level analyses: t-test on means, two-stage, ANCOVA against scipy/statsmodels."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from trialkit.errors import ModelSpecError
from trialkit.models.cluster_level import fit_cluster_level
from trialkit.models.design import build_model_frame
from trialkit.models.results import FitResult

_spec = importlib.util.spec_from_file_location(
    "robust_tolerances", Path(__file__).parents[1] / "reference" / "robust" / "tolerances.py"
)
assert _spec is not None and _spec.loader is not None
tol = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tol)


def _frame(name: str, covariates: tuple[str, ...] = ("x", "z")):
    d = tol.data(name)
    return d, build_model_frame(
        d, outcome="y", treatment="treat", covariates=list(covariates), clusters=["cluster"]
    )


def _means(d: pd.DataFrame) -> pd.DataFrame:
    return d.groupby("cluster").agg(
        y=("y", "mean"), t=("treat", "first"), x=("x", "mean"), z=("z", "first")
    )


@pytest.mark.parametrize("name", tol.DATASETS)
def test_means_equals_scipy_ttest(name: str) -> None:
    d, f = _frame(name)
    r = fit_cluster_level(f, kind="means")
    m = _means(d)
    ref = stats.ttest_ind(m.y[m.t == 1], m.y[m.t == 0])
    assert r.treatment.statistic == pytest.approx(ref.statistic, abs=tol.EQUIV)
    assert r.treatment.p_value == pytest.approx(ref.pvalue, abs=tol.EQUIV)
    assert r.treatment.df == len(m) - 2


def test_means_welch_equals_scipy() -> None:
    d, f = _frame("a")
    r = fit_cluster_level(f, kind="means", welch=True)
    m = _means(d)
    ref = stats.ttest_ind(m.y[m.t == 1], m.y[m.t == 0], equal_var=False)
    assert r.treatment.statistic == pytest.approx(ref.statistic, abs=tol.EQUIV)
    assert r.treatment.df == pytest.approx(ref.df, abs=tol.EQUIV)


def test_two_stage_by_hand() -> None:
    d, f = _frame("a")
    r = fit_cluster_level(f, kind="two-stage")
    res = sm.OLS(d.y, sm.add_constant(d[["x", "z"]])).fit().resid
    m = d.assign(e=res).groupby("cluster").agg(e=("e", "mean"), t=("treat", "first"))
    ref = stats.ttest_ind(m.e[m.t == 1], m.e[m.t == 0])
    assert r.treatment.statistic == pytest.approx(ref.statistic, abs=tol.EQUIV)
    assert r.treatment.df == len(m) - 3  # one cluster-level covariate (z)


def test_ancova_equals_statsmodels_on_means() -> None:
    d, f = _frame("b")
    r = fit_cluster_level(f, kind="ancova")
    m = _means(d)
    ref = sm.OLS(m.y, sm.add_constant(m[["t", "x", "z"]])).fit()
    assert r.treatment.estimate == pytest.approx(ref.params["t"], abs=tol.EQUIV)
    assert r.treatment.std_error == pytest.approx(ref.bse["t"], abs=tol.EQUIV)
    assert r.treatment.p_value == pytest.approx(ref.pvalues["t"], abs=tol.EQUIV)
    assert r.treatment.df == len(m) - 4


def test_result_round_trips() -> None:
    _, f = _frame("a")
    r = fit_cluster_level(f, kind="means")
    assert FitResult.from_dict(r.to_dict()).to_dict() == r.to_dict()
    assert r.method == "cluster-level"


def test_bad_kind() -> None:
    _, f = _frame("a")
    with pytest.raises(ModelSpecError) as exc:
        fit_cluster_level(f, kind="median")
    assert exc.value.problems[0].code == "fit.cluster_level.kind"


def test_too_few_clusters_per_arm() -> None:
    d = pd.DataFrame(
        {"y": np.arange(9.0), "treat": [1, 1, 1, 0, 0, 0, 0, 0, 0], "cluster": list("aaabbbccc")}
    )
    f = build_model_frame(d, outcome="y", treatment="treat", clusters=["cluster"])
    with pytest.raises(ModelSpecError) as exc:
        fit_cluster_level(f)
    assert exc.value.problems[0].code == "fit.cluster_level.too_few_clusters"


@pytest.mark.parametrize("kind", ["means", "two-stage", "ancova"])
def test_affine_outcome(kind: str) -> None:
    d, f = _frame("a")
    f2 = build_model_frame(
        d.assign(y=2.0 - 3.0 * d.y),
        outcome="y",
        treatment="treat",
        covariates=["x", "z"],
        clusters=["cluster"],
    )
    a, b = fit_cluster_level(f, kind=kind).treatment, fit_cluster_level(f2, kind=kind).treatment
    assert b.estimate == pytest.approx(-3.0 * a.estimate, rel=1e-10)
    assert b.std_error == pytest.approx(3.0 * a.std_error, rel=1e-10)
    assert b.p_value == pytest.approx(a.p_value, rel=1e-8)
    assert b.df == a.df


def test_treatment_varying_within_clusters_is_refused() -> None:
    rng = np.random.default_rng(4)
    d = pd.DataFrame(
        {"y": rng.normal(size=60), "t": np.arange(60) % 2, "cl": np.repeat(np.arange(6), 10)}
    )
    f = build_model_frame(d, outcome="y", treatment="t", clusters=["cl"])
    with pytest.raises(ModelSpecError) as err:
        fit_cluster_level(f)
    assert err.value.codes == ("fit.cluster_level.treatment_varies",)
