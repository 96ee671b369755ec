"""One builder of t-based inference: estimate, SE and df to statistic, p-value and interval.

Every estimator (linear mixed model, GLMM, GEE, OLS with CR variance, cluster-level
analyses), the CACE of the fidelity stage and the power simulation build their
Wald-type tests here, so that they share one rule:

* ``statistic = estimate / std_error`` (NaN when the SE is not positive and finite);
* two-sided ``p = 2·sf(|statistic|)`` of ``t(df)``, or of the standard normal when
  ``df`` is infinite (``sf``, never ``1 - cdf``);
* ``(1 - α)`` interval ``estimate ± q·std_error`` with ``q = isf(α/2)`` of the same
  distribution;
* the distribution label ``"t(<df to 6 significant digits>)"`` or ``"z"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from trialkit.models.terms import Term

__all__ = ["distribution_label", "t_inference", "t_term", "t_terms"]


def distribution_label(df: float) -> str:
    """``"t(9.997)"`` for finite ``df`` (6 significant digits), ``"z"`` for infinite ``df``."""
    return "z" if np.isinf(df) else f"t({df:.6g})"


def t_inference(
    estimate: Any, std_error: Any, df: Any, alpha: float = 0.05, *, two_sided: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Statistics, p-values and ``(1 - α)`` intervals, vectorised over any array shape.

    Parameters
    ----------
    estimate, std_error, df : array_like
        Broadcast together; ``df = inf`` uses the standard normal.
    alpha : float
        1 - confidence level (the interval is always two-sided).
    two_sided : bool
        Two-sided p-value (default) or the upper-tail p-value ``sf(statistic)``.

    Returns
    -------
    statistic, p_value, conf_low, conf_high : ndarray
    """
    est, se, nu = np.broadcast_arrays(
        np.asarray(estimate, dtype=float),
        np.asarray(std_error, dtype=float),
        np.asarray(df, dtype=float),
    )
    ok = np.isfinite(se) & (se > 0)
    normal = np.isinf(nu)
    nu_t = np.where(normal, 1.0, nu)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(ok, est / np.where(ok, se, 1.0), np.nan)
        x = np.abs(stat) if two_sided else stat
        # scipy.stats' t and norm sf/isf are these special functions (same numbers,
        # without the per-call argument handling that dominated small fits)
        sf = np.where(normal, special.ndtr(-x), special.stdtr(nu_t, -x))
        p = 2.0 * sf if two_sided else sf
        q = np.where(normal, -special.ndtri(alpha / 2.0), -special.stdtrit(nu_t, alpha / 2.0))
        half = np.where(ok, q * se, np.nan)
    return stat, p, est - half, est + half


def t_term(
    label: str,
    estimate: float,
    std_error: float,
    df: float,
    alpha: float,
    df_method: str,
) -> Term:
    """A :class:`Term` for one coefficient or contrast (see the module docstring for the rule)."""
    stat, p, lo, hi = t_inference(estimate, std_error, df, alpha)
    return Term(
        term=label,
        estimate=float(estimate),
        std_error=float(std_error),
        df=float(df),
        statistic=float(stat),
        p_value=float(p),
        conf_low=float(lo),
        conf_high=float(hi),
        df_method=df_method,
        distribution=distribution_label(float(df)),
    )


def t_terms(
    labels: Any, estimates: Any, std_errors: Any, dfs: Any, alpha: float, df_method: str
) -> list[Term]:
    """:func:`t_term` for several coefficients at once (one label, estimate, SE and df each)."""
    est, se, nu = (
        np.broadcast_to(np.asarray(a, dtype=float), (len(labels),))
        for a in (estimates, std_errors, dfs)
    )
    stat, p, lo, hi = t_inference(est, se, nu, alpha)  # one call for every coefficient
    return [
        Term(
            term=str(lab),
            estimate=float(est[j]),
            std_error=float(se[j]),
            df=float(nu[j]),
            statistic=float(stat[j]),
            p_value=float(p[j]),
            conf_low=float(lo[j]),
            conf_high=float(hi[j]),
            df_method=df_method,
            distribution=distribution_label(float(nu[j])),
        )
        for j, lab in enumerate(labels)
    ]
