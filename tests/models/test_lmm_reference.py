"""Linear mixed model against lme4 / lmerTest / pbkrtest (stored reference values).

One test per case and quantity; tolerances in tests/reference/lmm/tolerances.py.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialkit.errors import SingularFitWarning
from trialkit.models import _engine
from trialkit.models.design import build_model_frame
from trialkit.models.dfmethods import Inference, test_contrast
from trialkit.models.lmm import fit_lmm_frame

HERE = Path(__file__).resolve().parents[1] / "reference" / "lmm"
_spec = importlib.util.spec_from_file_location("lmm_tolerances", HERE / "tolerances.py")
assert _spec is not None and _spec.loader is not None
TOL = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(TOL)
REF = json.loads((HERE / "reference.json").read_text())

SPECS = {
    "two_level": dict(outcome="y", treatment="treat", covariates=["baseline"], clusters=["la"]),
    "unequal": dict(outcome="y", treatment="treat", covariates=["baseline"], clusters=["la"]),
    "singular": dict(outcome="y", treatment="treat", covariates=["baseline"], clusters=["la"]),
    "three_level": dict(
        outcome="y", treatment="treat", covariates=["baseline", "imd"], clusters=["la", "kw"]
    ),
    "three_level_singular_top": dict(
        outcome="y", treatment="treat", covariates=["baseline"], clusters=["la", "kw"]
    ),
    "missing_categorical": dict(
        outcome="y",
        treatment="arm",
        treatment_level="intervention",
        covariates=["baseline", "region"],
        clusters=["la", "kw"],
    ),
    "orthodont": dict(
        outcome="distance",
        treatment="Sex",
        treatment_level="Female",
        covariates=["age"],
        clusters=["Subject"],
    ),
}
CASES = sorted(SPECS)
# lme4's VarCorr group names for each of our levels (top first)
GROUPS = {1: ["la"], 2: ["la", "la:kw"]}


def _groups(case: str) -> list[str]:
    if case == "orthodont":
        return ["Subject"]
    return GROUPS[len(SPECS[case]["clusters"])]


@cache
def frame(case: str):
    d = pd.read_csv(HERE / "data" / f"{case}.csv", dtype={"la": str, "kw": str})
    return build_model_frame(d, **SPECS[case])


@cache
def fitted(case: str, reml: bool = True):
    fr = frame(case)
    lay = _engine.make_layout(fr.cluster_codes)
    return _engine.fit_lmm(lay, fr.X, fr.y, reml=reml)


@cache
def inference(case: str) -> Inference:
    fr = frame(case)
    return Inference.from_fitted(
        fitted(case), n_top=fr.n_clusters[0], cluster_level=fr.cluster_level_columns
    )


def _varcomp(ref: dict, case: str) -> np.ndarray:
    vc = dict(zip(ref["varcomp_groups"], ref["varcomp"], strict=True))
    return np.array([vc[g] for g in _groups(case)] + [vc["Residual"]])


@pytest.mark.parametrize("case", CASES)
def test_design_matches_r(case):
    fr = frame(case)
    assert fr.n_obs == REF[case]["n"]
    assert len(fr.column_names) == len(REF[case]["terms"])


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
@pytest.mark.parametrize("case", CASES)
def test_fixed_effects(case, reml):
    ref = REF[case]["reml" if reml else "ml"]
    f = fitted(case, reml)
    se = np.sqrt(np.diag(np.array(ref["vcov"])))
    scale = np.maximum(np.abs(ref["beta"]), se)
    assert np.max(np.abs(f.beta[0] - ref["beta"]) / scale) < TOL.FIXED_REL


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
@pytest.mark.parametrize("case", CASES)
def test_variance_components(case, reml):
    ref = REF[case]["reml" if reml else "ml"]
    np.testing.assert_allclose(
        fitted(case, reml).psi[0], _varcomp(ref, case), rtol=0, atol=TOL.VARCOMP_ABS
    )


@pytest.mark.parametrize("reml", [True, False], ids=["reml", "ml"])
@pytest.mark.parametrize("case", CASES)
def test_loglik(case, reml):
    ref = REF[case]["reml" if reml else "ml"]
    assert abs(fitted(case, reml).loglik[0] - ref["loglik"]) < TOL.LOGLIK_ABS


@pytest.mark.parametrize("case", CASES)
def test_model_based_vcov(case):
    ref = np.array(REF[case]["reml"]["vcov"])
    d = np.sqrt(np.diag(ref))
    err = np.abs(fitted(case).Phi[0] - ref) / np.outer(d, d)
    assert err.max() < TOL.VCOV_REL


@pytest.mark.parametrize("case", CASES)
def test_singular_flag(case):
    f = fitted(case)
    assert bool((f.theta[0] < 1e-4).any()) == REF[case]["reml"]["singular"]


@pytest.mark.parametrize("case", CASES)
def test_kenward_roger_se(case):
    ref = REF[case]["reml"]
    res = _result(case)
    se = np.array([t.std_error for t in res.fixed_effects])
    np.testing.assert_allclose(se, np.sqrt(np.diag(ref["kr_vcov"])), rtol=TOL.KR_SE_REL)


@pytest.mark.parametrize("case", CASES)
def test_kenward_roger_df(case):
    res = _result(case)
    df = np.array([t.df for t in res.fixed_effects])
    np.testing.assert_allclose(df, REF[case]["reml"]["kr_df"], rtol=TOL.KR_DF_REL)


@pytest.mark.parametrize("case", CASES)
def test_satterthwaite_df(case):
    inf = inference(case)
    p = inf.p
    df = [test_contrast(inf, np.eye(p)[j], "satterthwaite").ddf for j in range(p)]
    np.testing.assert_allclose(
        df, REF[case]["reml"]["satterthwaite_df"], rtol=0, atol=TOL.SATT_DF_ABS
    )


@pytest.mark.parametrize("case", CASES)
def test_kenward_roger_multi_row(case):
    ref = REF[case]["reml"]["kr_multi"]
    t = test_contrast(inference(case), np.array(ref["L"]), "kenward-roger")
    assert t.ndf == ref["ndf"]
    np.testing.assert_allclose(
        [t.statistic, t.ddf, t.scale], [ref["F"], ref["ddf"], ref["scaling"]], rtol=TOL.KR_F_REL
    )


@pytest.mark.parametrize("case", CASES)
def test_satterthwaite_multi_row(case):
    ref = REF[case]["reml"]["sat_multi"]
    L = np.array(REF[case]["reml"]["kr_multi"]["L"])
    t = test_contrast(inference(case), L, "satterthwaite")
    assert abs(t.ddf - ref["ddf"]) < TOL.SATT_DF_ABS
    np.testing.assert_allclose(t.statistic, ref["F"], rtol=TOL.KR_F_REL)


@cache
def _result(case: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        return fit_lmm_frame(frame(case), effect_sizes=False)


def test_batched_equals_one_at_a_time():
    fr = frame("three_level")
    lay = _engine.make_layout(fr.cluster_codes)
    rng = np.random.default_rng(3)
    Y = fr.y[None, :] + rng.normal(size=(6, fr.n_obs))
    out = _engine.fit_lmm_batch(lay, fr.X, Y)
    for r in range(Y.shape[0]):
        one = _engine.fit_lmm_batch(lay, fr.X, Y[r : r + 1])
        for key in ("estimate", "std_error", "df", "p_value"):
            assert abs(out[key][r] - one[key][0]) < TOL.BATCH_ABS, key


@pytest.mark.parametrize("case", CASES)
def test_cr2_for_lmm_fixed_effects(case):
    """CR2 + Satterthwaite df for the LMM fixed effects, as clubSandwich::coef_test on lmer."""
    ref = REF[case]["reml"]["cr2"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        res = fit_lmm_frame(frame(case), effect_sizes=False, vcov="CR2")
    terms = res.robust.terms
    np.testing.assert_allclose([t.std_error for t in terms], ref["se"], rtol=TOL.CR2_REL)
    np.testing.assert_allclose([t.df for t in terms], ref["df"], rtol=TOL.CR2_REL)
