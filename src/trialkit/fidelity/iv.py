"""Two-stage least squares with CR2 cluster-robust variance and Satterthwaite df.

The CR2 covariance and its Satterthwaite df come from
:func:`trialkit.models.robust.vcov_cr` (shared with the analysis stage); an
independent implementation lives in the tests as a cross-check.
"""

from __future__ import annotations

import math

import numpy as np

from trialkit.errors import FitError
from trialkit.models.inference import t_term
from trialkit.models.results import Term
from trialkit.models.robust import vcov_cr

__all__ = ["iv_2sls"]


# ----------------------------------------------------------------------------- 2SLS
def iv_2sls(
    y: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray,
    cluster: np.ndarray,
    *,
    coef: int = 1,
    alpha: float = 0.05,
    name: str = "cace",
) -> tuple[np.ndarray, np.ndarray, Term]:
    """Two-stage least squares with CR2 covariance and Satterthwaite df for one coefficient.

    Parameters
    ----------
    y : (n,) outcome; X : (n, p) regressors (intercept, receipt, covariates);
    Z : (n, q) instruments (intercept, randomised arm, covariates), q >= p.
    cluster : (n,) cluster labels.
    coef : int
        Column of ``X`` whose inference is returned.

    Returns
    -------
    (beta, vcov, Term)

    Notes
    -----
    :math:`\\hat X = Z(Z'Z)^{-1}Z'X`, :math:`\\hat\\beta = (\\hat X'\\hat X)^{-1}\\hat X'y`,
    residuals :math:`e = y - X\\hat\\beta`; CR2 (Bell & McCaffrey 2002;
    Pustejovsky & Tipton 2018) by :func:`trialkit.models.robust.vcov_cr` with
    :math:`\\hat X` as the design (as clubSandwich does for ``ivreg``).  When
    ``Z`` equals ``X`` this is OLS with CR2.
    """
    y = np.asarray(y, float)
    X = np.asarray(X, float)
    Z = np.asarray(Z, float)
    if np.linalg.matrix_rank(Z) < Z.shape[1]:
        raise FitError.from_problem(
            path="cace",
            code="cace.collinear",
            message="the instruments and covariates are collinear (the design is rank deficient)",
            hint="drop covariates that are constant or linear combinations of others; with 12 LAs "
            "use few LA-level covariates",
        )
    coefs, *_ = np.linalg.lstsq(Z, X, rcond=None)
    Xhat = Z @ coefs
    if np.linalg.matrix_rank(Xhat) < X.shape[1]:
        raise FitError.from_problem(
            path="cace",
            code="cace.weak_instrument",
            message="the randomised arm does not predict receipt (no compliers): the first stage is "
            "rank deficient",
            hint="check the compliance threshold: with it no intervention LA (or every LA) complies",
        )
    beta, *_ = np.linalg.lstsq(Xhat, y, rcond=None)
    e = y - X @ beta
    c = np.zeros(X.shape[1])
    c[coef] = 1.0
    cr = vcov_cr(Xhat, e, cluster, type="CR2")
    vcov = np.asarray(cr.vcov, dtype=float)
    df = float(cr.satterthwaite_df(c))
    se = math.sqrt(max(float(c @ vcov @ c), 0.0))
    return beta, vcov, t_term(name, float(beta[coef]), se, df, alpha, "satterthwaite")
