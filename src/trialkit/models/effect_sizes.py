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

**Intraclass correlations** at each level ``l``: ``ρ_l = ψ_l / Σ_r ψ_r``.
Intervals by the delta method on the logit scale, using the inverse expected
(REML) information of the variance components ``ψ`` as their covariance,
back-transformed; when ``ψ_l = 0`` (a singular fit) the lower limit is 0 and
the upper limit uses the delta method on the raw scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special, stats

__all__ = ["hedges_g", "icc_intervals", "tilde_n"]


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
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
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
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
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
