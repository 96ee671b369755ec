"""Standardised effect sizes (Hedges' g) and intraclass correlations with intervals.

Notes
-----
**Hedges' g for cluster randomised trials** (Hedges 2007, *J. Educ. Behav.
Stat.* 32:341–370; the quantities eefAnalytics reports).  With treatment
estimate ``β̂``, cluster-level variance ``σ²_B`` (the sum of every cluster-level
variance component), individual-level variance ``σ²_W`` and
``ρ = σ²_B/(σ²_B + σ²_W)``:

* total: ``d_T = β̂/√(σ²_B + σ²_W)``,
  ``Var(d_T) = (1/N_T + 1/N_C)(1 + (ñ - 1)ρ)
  + d_T²[(N-2)(1-ρ)² + ñ(N-2ñ)ρ² + 2(N-2ñ)ρ(1-ρ)] / (2(N-2)[(N-2) - 2(ñ-1)ρ])``
  (Hedges 2007, eq. 20);
* within: ``d_W = β̂/σ_W``,
  ``Var(d_W) = (1/N_T + 1/N_C)(1 + (ñ - 1)ρ)/(1 - ρ) + d_W²/(2(N - M))``
  (Hedges 2007, eq. 15);

``N_T, N_C`` individuals per arm, ``N = N_T + N_C``, ``M`` top-level clusters
and ``ñ = [N_C Σ_T n_i²/N_T + N_T Σ_C n_i²/N_C]/N`` (Hedges 2007, eq. 24; equals
the cluster size ``n`` when all clusters have ``n`` rows).  The small-sample
correction is ``g = J(ν) d`` with ``J(ν) = 1 - 3/(4ν - 1)``, ``ν = N - 2``
(total) or ``N - M`` (within), and the interval ``g ± z_{1-α/2} J √Var(d)``.
Variances are taken either from the covariate-adjusted model (``conditional``)
or from the unconditional model with an intercept and the random effects only
(``unconditional``), as eefAnalytics does.

**Hedges' g consistent with the fitted model** (:func:`standardised_effect`, what
``trialkit analyse`` reports).  With the model's estimate ``β̂`` and its interval
``(L, U)`` (the model's own SE and denominator df: ``β̂ ± t_{1-α/2,ν}·SE``), and the
total variance ``σ²_T`` of the unconditional model (intercept and random effects
only, every level's variance plus the residual):

``g = J(N - 2)·β̂/σ_T``,  ``(g_L, g_U) = J(N - 2)·(L, U)/σ_T``

(Hedges 2007, eq. 19 for ``d_T``; Hedges 1981 for ``J``).  The interval is the
mean-difference interval rescaled, so it excludes 0 exactly when that interval
does, whatever the number of levels; it treats ``σ_T`` as known (its sampling error
is small next to the between-LA error of ``β̂`` when there are few LAs).  It
replaces eq. 20's z-interval, whose variance treats every cluster-level variance
as top-level variance with the top-level cluster sizes and so disagrees with the
3-level model's own inference.

**Intraclass correlations** at each level ``l``: ``ρ_l = ψ_l / Σ_r ψ_r``.
Intervals by the delta method on the logit scale, using the inverse expected
(REML) information of the variance components ``ψ`` as their covariance,
back-transformed; when ``ψ_l = 0`` (a singular fit) the lower limit is 0 and
the upper limit uses the delta method on the raw scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

__all__ = [
    "hedges_g",
    "icc_intervals",
    "standardised_effect",
    "tilde_n",
    "variance_explained",
]


def tilde_n(sizes: np.ndarray, treated: np.ndarray) -> float:
    """Hedges' (2007) ``ñ`` from top-level cluster sizes and arm indicators."""
    sizes = np.asarray(sizes, dtype=float)
    treated = np.asarray(treated, dtype=bool)
    NT = sizes[treated].sum()
    NC = sizes[~treated].sum()
    N = NT + NC
    if NT == 0 or NC == 0:
        return float("nan")
    return float(
        (NC * np.sum(sizes[treated] ** 2) / NT + NT * np.sum(sizes[~treated] ** 2) / NC) / N
    )


def _J(nu: float) -> float:
    return 1.0 - 3.0 / (4.0 * nu - 1.0)


def hedges_g(
    estimate: float,
    var_between: float,
    var_within: float,
    *,
    sizes: np.ndarray,
    treated: np.ndarray,
    alpha: float = 0.05,
) -> dict[str, float]:
    """Hedges' g (total and within) with confidence intervals.

    Parameters
    ----------
    estimate : float
        Treatment effect on the outcome scale.
    var_between, var_within : float
        Cluster-level (sum over levels) and residual variances.
    sizes, treated : array
        Rows per top-level cluster and whether the cluster is treated.
    alpha : float
        1 - confidence level.

    Returns
    -------
    dict
        ``g_total, g_total_se, g_total_conf_low, g_total_conf_high`` and the same
        for ``g_within``.  See the module Notes for the formulas.
    """
    sizes = np.asarray(sizes, dtype=float)
    treated = np.asarray(treated, dtype=bool)
    NT = float(sizes[treated].sum())
    NC = float(sizes[~treated].sum())
    N = NT + NC
    M = float(sizes.size)
    nt = tilde_n(sizes, treated)
    total = var_between + var_within
    rho = var_between / total if total > 0 else 0.0
    z = float(special.ndtri(1.0 - alpha / 2.0))  # the standard normal quantile
    base = (1.0 / NT + 1.0 / NC) * (1.0 + (nt - 1.0) * rho)
    dT = estimate / np.sqrt(total)
    num = (
        (N - 2.0) * (1.0 - rho) ** 2
        + nt * (N - 2.0 * nt) * rho**2
        + 2.0 * (N - 2.0 * nt) * rho * (1.0 - rho)
    )
    den = 2.0 * (N - 2.0) * ((N - 2.0) - 2.0 * (nt - 1.0) * rho)
    vT = base + dT**2 * num / den
    jT = _J(N - 2.0)
    dW = estimate / np.sqrt(var_within)
    vW = base / (1.0 - rho) + dW**2 / (2.0 * (N - M))
    jW = _J(N - M)
    out: dict[str, float] = {}
    for key, d, v, j in (("g_total", dT, vT, jT), ("g_within", dW, vW, jW)):
        g = j * d
        se = j * np.sqrt(v)
        out[key] = float(g)
        out[f"{key}_se"] = float(se)
        out[f"{key}_conf_low"] = float(g - z * se)
        out[f"{key}_conf_high"] = float(g + z * se)
    return out


def standardised_effect(
    estimate: float,
    conf_low: float,
    conf_high: float,
    total_variance: float,
    *,
    n_obs: int,
) -> dict[str, float]:
    """Hedges' g with the interval of the model that produced the estimate.

    Parameters
    ----------
    estimate, conf_low, conf_high : float
        The treatment effect and its interval from the fitted model (its own SE and df).
    total_variance : float
        ``σ²_T``: the unconditional model's variance components summed (every level and
        the residual).
    n_obs : int
        Individuals analysed, ``N``; the small-sample factor is ``J(N - 2)``.

    Returns
    -------
    dict
        ``g, g_conf_low, g_conf_high, total_sd, correction``; every value NaN when
        ``σ²_T`` is not a positive finite number or ``N ≤ 3`` (a constant outcome has
        no standardised effect).

    Notes
    -----
    ``g = J(N - 2)·β̂/σ_T`` and ``(g_L, g_U) = J(N - 2)·(L, U)/σ_T`` with
    ``J(ν) = 1 - 3/(4ν - 1)``; see the module Notes.

    References
    ----------
    Hedges LV. Effect sizes in cluster-randomized designs. J Educ Behav Stat
    2007;32:341–370 (eq. 19).  Hedges LV. Distribution theory for Glass's estimator of
    effect size and related estimators. J Educ Stat 1981;6:107–128.
    """
    nan = float("nan")
    ok = bool(np.isfinite(total_variance) and total_variance > 0)
    sd = float(np.sqrt(total_variance)) if ok else nan
    if not ok or n_obs <= 3:
        return {"g": nan, "g_conf_low": nan, "g_conf_high": nan, "total_sd": nan, "correction": nan}
    j = _J(float(n_obs) - 2.0)
    return {
        "g": float(j * estimate / sd),
        "g_conf_low": float(j * conf_low / sd),
        "g_conf_high": float(j * conf_high / sd),
        "total_sd": sd,
        "correction": float(j),
    }


def variance_explained(conditional: Sequence[float], unconditional: Sequence[float]) -> list[float]:
    """Share of each level's variance explained by the covariates (and treatment).

    ``R²_l = 1 - ψ_l(adjusted model)/ψ_l(unconditional model)`` at every level ``l``
    (top level first, residual last), the proportional reduction in variance of
    Raudenbush & Bryk (2002, eq. 4.24), bounded to ``[0, 1]``; a level whose
    unconditional variance is 0 gets 0.  These are the ``R²`` inputs of the MDES
    formulas (Dong & Maynard 2013; :mod:`trialkit.power.analytic`).

    References
    ----------
    Raudenbush SW, Bryk AS. Hierarchical Linear Models, 2nd ed. Sage, 2002, ch. 4.
    Dong N, Maynard R. PowerUp!. J Res Educ Eff 2013;6:24–67.
    """
    out: list[float] = []
    for c, u in zip(conditional, unconditional, strict=True):
        c, u = float(c), float(u)
        out.append(0.0 if not u > 0 else float(min(1.0, max(0.0, 1.0 - c / u))))
    return out


def icc_intervals(
    psi: Sequence[float], cov_psi: np.ndarray, names: Sequence[str], *, alpha: float = 0.05
) -> dict[str, dict[str, float]]:
    """ICCs at each level with delta-method intervals on the logit scale.

    Parameters
    ----------
    psi : sequence of float
        Variance components, levels (top first) then the residual.
    cov_psi : ndarray
        Their asymptotic covariance.
    names : sequence of str
        Level names (one fewer than ``psi``).
    """
    psi_a = np.asarray(psi, dtype=float)
    T = float(psi_a.sum())
    z = float(special.ndtri(1.0 - alpha / 2.0))  # the standard normal quantile
    out: dict[str, dict[str, float]] = {}
    for l, name in enumerate(names):
        rho = psi_a[l] / T
        grad = -np.full(psi_a.size, psi_a[l] / T**2)
        grad[l] += 1.0 / T
        se = float(np.sqrt(max(grad @ cov_psi @ grad, 0.0)))
        if 0.0 < rho < 1.0:
            gl = grad / (rho * (1.0 - rho))
            sel = float(np.sqrt(max(gl @ cov_psi @ gl, 0.0)))
            lg = np.log(rho / (1.0 - rho))
            lo = float(special.expit(lg - z * sel))
            hi = float(special.expit(lg + z * sel))
        else:
            lo = 0.0
            hi = float(min(1.0, rho + z * se))
        out[name] = {"icc": float(rho), "std_error": se, "conf_low": lo, "conf_high": hi}
    return out
