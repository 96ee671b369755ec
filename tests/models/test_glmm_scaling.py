"""Logistic GLMM with an LA covariate on its natural scale (issue 16, item 8) against glmer.

Reference: tests/reference/glmm (glmer on the raw and on the standardised caseload).
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
from trialkit.models.fit import fit
from trialkit.models.results import GlmmResult

HERE = Path(__file__).resolve().parents[1] / "reference" / "glmm"
_spec = importlib.util.spec_from_file_location("glmm_tolerances", HERE / "tolerances.py")
assert _spec is not None and _spec.loader is not None
TOL = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(TOL)
REF = json.loads((HERE / "reference.json").read_text())
CASES = ["caseload", "boundary"]


@cache
def _fit(case: str, factor: float = 1.0) -> GlmmResult:
    d = pd.read_csv(HERE / f"{case}.csv", dtype={"la": str})
    d["caseload"] = d["caseload"] * factor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        r = fit(
            d,
            outcome="retained",
            treatment="arm",
            treatment_level="intervention",
            covariates=["caseload", "x"],
            clusters=["la"],
            family="binomial",
        )
    assert isinstance(r, GlmmResult)
    return r


def _scaled_back(case: str) -> tuple[np.ndarray, np.ndarray]:
    """glmer's fit on scale(caseload), transformed to the raw caseload."""
    ref = REF[case]
    m, s = ref["caseload_mean"], ref["caseload_sd"]
    A = np.eye(4)
    A[2, 2] = 1 / s
    A[0, 2] = -m / s
    beta = A @ np.array(ref["scaled"]["beta"])
    cov = A @ np.array(ref["scaled"]["vcov"]) @ A.T
    return beta, cov


def _beta(r: GlmmResult) -> np.ndarray:
    return np.array([t.estimate for t in r.fixed_effects])


def _se(r: GlmmResult) -> np.ndarray:
    return np.array([t.std_error for t in r.fixed_effects])


@pytest.mark.parametrize("case", CASES)
def test_converges_on_the_natural_scale(case: str) -> None:
    r = _fit(case)
    assert r.converged
    assert not any("converge" in w for w in r.warnings)


@pytest.mark.parametrize("case", CASES)
def test_beta_as_glmer_on_scaled_caseload(case: str) -> None:
    beta, cov = _scaled_back(case)
    r = _fit(case)
    scale = np.maximum(np.abs(beta), np.sqrt(np.diag(cov)))
    assert np.max(np.abs(_beta(r) - beta) / scale) < TOL.BETA_REL


@pytest.mark.parametrize("case", CASES)
def test_beta_as_glmer_on_raw_caseload(case: str) -> None:
    ref = REF[case]["unscaled"]
    r = _fit(case)
    beta = np.array(ref["beta"])
    scale = np.maximum(np.abs(beta), np.sqrt(np.diag(ref["vcov"])))
    assert np.max(np.abs(_beta(r) - beta) / scale) < TOL.BETA_REL_UNSCALED
    assert abs(r.loglik - ref["loglik"]) < TOL.LOGLIK_ABS_UNSCALED


def test_se_as_glmer_on_scaled_caseload() -> None:
    _beta_ref, cov = _scaled_back("caseload")
    se = np.sqrt(np.diag(cov))
    assert np.max(np.abs(_se(_fit("caseload")) / se - 1)) < TOL.SE_REL


@pytest.mark.parametrize("case", CASES)
def test_loglik_and_theta_as_glmer_on_scaled_caseload(case: str) -> None:
    ref = REF[case]["scaled"]
    r = _fit(case)
    assert abs(r.loglik - ref["loglik"]) < TOL.LOGLIK_ABS
    theta = ref["theta"][0] if isinstance(ref["theta"], list) else ref["theta"]
    assert abs(float(r.theta) - theta) < TOL.THETA_ABS  # type: ignore[arg-type]


def test_boundary_fit_is_singular_not_failed() -> None:
    r = _fit("boundary")
    assert REF["boundary"]["scaled"]["singular"] is True
    assert r.singular and r.converged
    assert float(r.theta) < TOL.SINGULAR_THETA  # type: ignore[arg-type]


@pytest.mark.parametrize("factor", [0.001, 10.0])
def test_results_do_not_depend_on_the_covariate_scale(factor: float) -> None:
    """Caseload in thousands or ×10: the same fit, the coefficient rescaled exactly."""
    a, b = _fit("boundary"), _fit("boundary", factor)
    assert b.converged and b.singular
    assert abs(a.loglik - b.loglik) < 1e-8
    assert abs(b.fixed_effects[2].estimate * factor / a.fixed_effects[2].estimate - 1) < 1e-6
    assert abs(b.treatment.estimate - a.treatment.estimate) < 1e-6
