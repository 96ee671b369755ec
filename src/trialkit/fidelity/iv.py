"""Two-stage least squares with CR2 cluster-robust variance and Satterthwaite df.

The CR2 covariance comes from :func:`trialkit.analysis.robust.vcov_cr` (shared with
the analysis stage); :func:`vcov_cr2` is this module's own implementation, kept as
a fallback and as an independent check (they agree to ~1e-13).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from trialkit.analysis.result import Term
from trialkit.errors import FitError

__all__ = ["iv_2sls", "vcov_cr2"]


# ----------------------------------------------------------------------------- CR2
def _inv_sqrt_psd(m: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Symmetric (Moore–Penrose) inverse square root of a PSD matrix."""
    vals, vecs = np.linalg.eigh((m + m.T) / 2.0)
    keep = vals > tol * max(1.0, float(np.max(np.abs(vals))) if vals.size else 1.0)
    inv = np.zeros_like(vals)
    inv[keep] = 1.0 / np.sqrt(vals[keep])
    return (vecs * inv) @ vecs.T


@dataclass(frozen=True, slots=True)
class _CR2:
    vcov: np.ndarray
    bread: np.ndarray
    groups: list[np.ndarray]
    adjust: list[np.ndarray]
    X: np.ndarray


def vcov_cr2(X: np.ndarray, resid: np.ndarray, cluster: np.ndarray) -> _CR2:
    """CR2 cluster-robust covariance for an OLS-type fit (working model: independence).

    Parameters
    ----------
    X : (n, p) array
        Design (for 2SLS pass the projected design :math:`\\hat X = P_Z X`).
    resid : (n,) array
        Residuals (for 2SLS the structural residuals :math:`y - X\\hat\\beta`).
    cluster : (n,) array
        Cluster labels.

    Notes
    -----
    With :math:`M = (X'X)^{-1}` and :math:`H = XMX'`, the adjustment for cluster
    *j* is :math:`A_j = (I - H_{jj})^{-1/2}` (symmetric, Moore–Penrose for zero
    eigenvalues) and :math:`V = M[\\sum_j X_j' A_j e_j e_j' A_j X_j]M`
    (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018).
    """
    X = np.asarray(X, dtype=float)
    e = np.asarray(resid, dtype=float)
    codes, _uniq = pd.factorize(pd.Series(cluster), sort=True)
    M = np.linalg.inv(X.T @ X)
    groups = [np.flatnonzero(codes == k) for k in range(int(codes.max()) + 1)]
    meat = np.zeros((X.shape[1], X.shape[1]))
    adjust = []
    for idx in groups:
        Xj = X[idx]
        Hjj = Xj @ M @ Xj.T
        A = _inv_sqrt_psd(np.eye(len(idx)) - Hjj)
        adjust.append(A)
        u = Xj.T @ (A @ e[idx])
        meat += np.outer(u, u)
    V = M @ meat @ M
    return _CR2(vcov=(V + V.T) / 2.0, bread=M, groups=groups, adjust=adjust, X=X)


def _satterthwaite_df(cr: _CR2, c: np.ndarray) -> float:
    """Satterthwaite df for contrast ``c`` under the working model (clubSandwich, CR2).

    :math:`\\nu = (\\sum_j p_j'p_j)^2 / \\sum_i\\sum_j (p_i'p_j)^2` with
    :math:`p_j = (I - H)_{\\cdot j} A_j X_j M c`.
    """
    X, M = cr.X, cr.bread
    n = X.shape[0]
    Mc = M @ c
    P = np.zeros((n, len(cr.groups)))
    for k, (idx, A) in enumerate(zip(cr.groups, cr.adjust, strict=True)):
        u = A @ (X[idx] @ Mc)
        col = -X @ (M @ (X[idx].T @ u))
        col[idx] += u
        P[:, k] = col
    G = P.T @ P
    return float(np.trace(G) ** 2 / np.sum(G * G))


# ----------------------------------------------------------------------------- 2SLS
def _term(name: str, est: float, se: float, df: float, alpha: float) -> Term:
    if not (se > 0 and math.isfinite(se) and math.isfinite(df) and df > 0):
        return Term(
            term=name,
            estimate=est,
            std_error=se,
            df=df,
            statistic=math.nan,
            p_value=math.nan,
            conf_low=math.nan,
            conf_high=math.nan,
            df_method="satterthwaite",
            distribution=f"t({df:.6g})",
        )
    t = est / se
    q = float(stats.t.isf(alpha / 2.0, df))
    return Term(
        term=name,
        estimate=est,
        std_error=se,
        df=df,
        statistic=t,
        p_value=float(2.0 * stats.t.sf(abs(t), df)),
        conf_low=est - q * se,
        conf_high=est + q * se,
        df_method="satterthwaite",
        distribution=f"t({df:.6g})",
    )


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
    residuals :math:`e = y - X\\hat\\beta`; CR2 as in :func:`vcov_cr2` with
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
    vcov, df = _cr2_with_df(Xhat, e, cluster, c)
    se = math.sqrt(max(float(c @ vcov @ c), 0.0))
    return beta, vcov, _term(name, float(beta[coef]), se, df, alpha)


def _cr2_with_df(
    X: np.ndarray, e: np.ndarray, cluster: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, float]:
    """CR2 covariance and Satterthwaite df: the shared implementation when available.

    ``trialkit.analysis.robust.vcov_cr`` and this module's :func:`vcov_cr2` agree to
    ~1e-13 (tested); the private one is the fallback and an independent check.
    """
    try:
        from trialkit.analysis.robust import vcov_cr
    except ImportError:  # pragma: no cover - the analysis stage is part of trialkit
        cr = vcov_cr2(X, e, cluster)
        return cr.vcov, _satterthwaite_df(cr, c)
    shared = vcov_cr(X, e, cluster, type="CR2")
    return np.asarray(shared.vcov, dtype=float), float(shared.satterthwaite_df(c))
