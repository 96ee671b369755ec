"""Rubin's rules with the Barnard–Rubin small-sample degrees of freedom.

:func:`pool` combines one parameter's estimates ``Q̂_1..Q̂_m`` and their
squared standard errors ``U_1..U_m`` from ``m`` completed (multiply imputed)
datasets into a :class:`PooledEstimate` (Rubin 1987, ch. 3):

* point estimate ``Q̄ = Σ Q̂_l / m``; within-imputation variance ``Ū = Σ U_l / m``;
  between-imputation variance ``B = Σ (Q̂_l - Q̄)² / (m - 1)``;
* total variance ``T = Ū + (1 + 1/m) B``; standard error ``√T``;
* relative increase in variance due to non-response ``r = (1 + 1/m) B / Ū``;
  proportion of the variance due to the missing data ``λ = (1 + 1/m) B / T``;
* Rubin's large-sample df ``ν_m = (m - 1)(1 + 1/r)² = (m - 1)/λ²``;
* Barnard & Rubin (1999) small-sample df, given the complete-data df ``ν_com``:
  ``ν_obs = (ν_com + 1)/(ν_com + 3) · ν_com (1 - λ)`` and
  ``ν = (1/ν_m + 1/ν_obs)⁻¹`` (``ν = ν_m`` when ``ν_com`` is infinite);
* fraction of missing information ``γ = (r + 2/(ν + 3)) / (r + 1)`` (Rubin 1987,
  eq. 3.1.10, with the df ``ν`` used for the test, as ``mitml::testEstimates``);
* Wald test ``t = Q̄/√T`` against ``t(ν)`` and the interval ``Q̄ ± t_{ν,1-α/2} √T``.

In a cluster randomised trial analysed by a linear mixed model the complete-data
df is the Kenward–Roger df of the treatment effect from the completed datasets
(:func:`trialkit.models.multiple_imputation.fit_imputed` passes the mean of the
``m`` Kenward–Roger df).  With ``B = 0`` (identical estimates) ``r = 0`` and
``ν = ν_obs``.

References
----------
Rubin DB. Multiple Imputation for Nonresponse in Surveys. Wiley, 1987.
Barnard J, Rubin DB. Small-sample degrees of freedom with multiple imputation.
Biometrika 1999;86:948–955.
Grund S, Lüdtke O, Robitzsch A. mitml: tools for multiple imputation in multilevel
modeling (R package), ``testEstimates``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from trialkit.errors import ModelSpecError, TrialkitError
from trialkit.models.inference import t_term
from trialkit.models.terms import Term, clean_float

__all__ = ["DF_METHOD", "PooledEstimate", "barnard_rubin_df", "pool"]

#: Name of the pooled df rule recorded in results and JSON.
DF_METHOD = "barnard-rubin"


@dataclass(frozen=True, slots=True, kw_only=True)
class PooledEstimate:
    """One parameter pooled over ``m`` imputations by Rubin's rules.

    Attributes
    ----------
    estimate, std_error, df, statistic, p_value, conf_low, conf_high : float
        Pooled inference (``df`` by Barnard–Rubin; ``inf`` gives the normal).
    m : int
        Number of imputations.
    within_variance, between_variance, total_variance : float
        ``Ū``, ``B`` and ``T``.
    relative_increase_in_variance : float
        ``r = (1 + 1/m) B / Ū``.
    fraction_missing_information : float
        ``γ = (r + 2/(ν + 3)) / (r + 1)``.
    lambda_ : float
        ``λ = (1 + 1/m) B / T``, the proportion of the total variance due to missingness.
    df_complete : float
        Complete-data df ``ν_com`` (``inf`` when none).
    df_large_sample : float
        Rubin's ``ν_m``.
    df_method : str
        ``"barnard-rubin"``.
    alpha : float
        1 - confidence level of the interval.
    """

    estimate: float
    std_error: float
    df: float
    statistic: float
    p_value: float
    conf_low: float
    conf_high: float
    m: int
    within_variance: float
    between_variance: float
    total_variance: float
    relative_increase_in_variance: float
    fraction_missing_information: float
    lambda_: float
    df_complete: float
    df_large_sample: float
    df_method: str = DF_METHOD
    alpha: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (non-finite numbers become ``None``)."""
        return {k: clean_float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PooledEstimate:
        kw: dict[str, Any] = {}
        for k in cls.__dataclass_fields__:
            v = d[k] if k in d else None
            if k in ("m",):
                kw[k] = int(v)  # type: ignore[arg-type]
            elif k == "df_method":
                kw[k] = str(v or DF_METHOD)
            elif k in ("df", "df_complete", "df_large_sample"):
                kw[k] = math.inf if v is None else float(v)
            else:
                kw[k] = math.nan if v is None else float(v)
        return cls(**kw)

    def to_term(self, label: str) -> Term:
        """The pooled inference as a :class:`~trialkit.models.terms.Term`."""
        return t_term(label, self.estimate, self.std_error, self.df, self.alpha, self.df_method)


def barnard_rubin_df(m: int, lambda_: float, df_complete: float) -> tuple[float, float]:
    """Rubin's large-sample df and the Barnard–Rubin df: ``(ν_m, ν)``.

    ``ν_m = (m - 1)/λ²`` (infinite when ``λ = 0``); ``ν_obs = (ν_com + 1)/(ν_com + 3)
    ν_com (1 - λ)``; ``ν = (1/ν_m + 1/ν_obs)⁻¹``, or ``ν_m`` when ``ν_com`` is infinite.
    """
    nu_m = math.inf if lambda_ <= 0 else (m - 1) / lambda_**2
    if not math.isfinite(df_complete):
        return nu_m, nu_m
    nu_obs = (df_complete + 1.0) / (df_complete + 3.0) * df_complete * (1.0 - lambda_)
    if not math.isfinite(nu_m):
        return nu_m, nu_obs
    return nu_m, 1.0 / (1.0 / nu_m + 1.0 / nu_obs)


def _fail(code: str, path: str, message: str, hint: str) -> TrialkitError:
    return ModelSpecError.from_problem(path=path, code=code, message=message, hint=hint)


def pool(
    estimates: Sequence[float] | np.ndarray,
    variances: Sequence[float] | np.ndarray,
    df_complete: float = math.inf,
    *,
    alpha: float = 0.05,
) -> PooledEstimate:
    """Pool one parameter over ``m`` imputations by Rubin's rules (Barnard–Rubin df).

    Parameters
    ----------
    estimates : sequence of float, length m >= 2
        The parameter's estimate in each completed dataset.
    variances : sequence of float, length m
        Its squared standard error in each completed dataset.
    df_complete : float
        Complete-data denominator df ``ν_com`` (e.g. the Kenward–Roger df of the
        completed-data analysis); ``inf`` (default) gives Rubin's large-sample df.
    alpha : float
        1 - confidence level.

    Returns
    -------
    PooledEstimate

    Raises
    ------
    ModelSpecError
        Fewer than two imputations, lengths differ, non-finite or negative
        variances, a non-positive complete-data df (codes ``pool.*``).

    Notes
    -----
    The formulas are in the module docstring (Rubin 1987; Barnard & Rubin 1999).

    Examples
    --------
    >>> r = pool([1.0, 1.2, 0.9], [0.04, 0.05, 0.04], df_complete=10)
    >>> round(r.estimate, 4), r.df_method
    (1.0333, 'barnard-rubin')
    """
    q = np.asarray(estimates, dtype=float).ravel()
    u = np.asarray(variances, dtype=float).ravel()
    if q.size != u.size:
        raise _fail(
            "pool.lengths",
            "variances",
            f"estimates and variances must have the same length; got {q.size} and {u.size}.",
            "pass one squared standard error per imputation.",
        )
    if q.size < 2:
        raise _fail(
            "pool.too_few",
            "estimates",
            f"pooling needs at least 2 imputations; got {q.size}.",
            "impute more datasets (20 or more is usual).",
        )
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(u)) and np.all(u >= 0)):
        raise _fail(
            "pool.not_finite",
            "estimates",
            "every estimate must be finite and every variance finite and >= 0; got "
            f"estimates {q.tolist()[:5]}..., variances {u.tolist()[:5]}...",
            "check the completed-data fits (a failed fit gives NaN).",
        )
    dfc = float(df_complete)
    if not dfc > 0:
        raise _fail(
            "pool.df_complete",
            "df_complete",
            f"df_complete must be > 0 (or inf); got {df_complete!r}.",
            "pass the completed-data analysis's df, or inf for large samples.",
        )
    if not 0.0 < alpha < 1.0:
        raise _fail("pool.alpha", "alpha", f"alpha must be in (0, 1); got {alpha!r}.", "0.05")
    m = int(q.size)
    qbar = float(q.mean())
    ubar = float(u.mean())
    b = float(q.var(ddof=1))
    t = ubar + (1.0 + 1.0 / m) * b
    r = (1.0 + 1.0 / m) * b / ubar if ubar > 0 else math.inf
    lam = (1.0 + 1.0 / m) * b / t if t > 0 else 0.0
    nu_m, nu = barnard_rubin_df(m, lam, dfc)
    fmi = (r + 2.0 / (nu + 3.0)) / (r + 1.0) if math.isfinite(r) else 1.0
    term = t_term("pooled", qbar, math.sqrt(t), nu, alpha, DF_METHOD)
    return PooledEstimate(
        estimate=qbar,
        std_error=math.sqrt(t),
        df=nu,
        statistic=term.statistic,
        p_value=term.p_value,
        conf_low=term.conf_low,
        conf_high=term.conf_high,
        m=m,
        within_variance=ubar,
        between_variance=b,
        total_variance=t,
        relative_increase_in_variance=r,
        fraction_missing_information=fmi,
        lambda_=lam,
        df_complete=dfc,
        df_large_sample=nu_m,
        alpha=alpha,
    )
