"""Proportions for feasibility outcomes: clustered (design-based), exact, and a mean of cluster values.

Three estimators, each with a one-sided test against a limit:

* :func:`clustered_proportion` — the pooled ratio :math:`\\hat p = \\sum_j y_j / \\sum_j n_j`
  over clusters (LAs), with the Taylor-linearisation variance of a one-stage cluster
  sample and a logit-scale confidence interval on :math:`J - 1` degrees of freedom;
* :func:`exact_proportion` — a count of clusters out of a total (e.g. LAs randomised out
  of LAs approached) with the exact Clopper–Pearson interval;
* :func:`cluster_mean` — the mean of one value per cluster (e.g. the fidelity index)
  with a *t* interval on :math:`J - 1` degrees of freedom.

:func:`compare_with_limit` gives the one-sided test of "the true value is on the far
side of ``limit``" (the red zone of a progression criterion) that is dual to each
interval.

References
----------
Binder DA. On the variances of asymptotically normal estimators from complex surveys.
Int Stat Rev 1983;51:279–292.
Lumley T. Complex Surveys: A Guide to Analysis Using R. Wiley, 2010 (ch. 2.3 and the
``svyciprop`` "logit" interval).
Korn EL, Graubard BI. Confidence intervals for proportions with small expected number
of positive counts estimated from survey data. Surv Methodol 1998;24:193–201.
Clopper CJ, Pearson ES. The use of confidence or fiducial limits illustrated in the
case of the binomial. Biometrika 1934;26:404–413.
Lewis M, Bromley K, Sutton CJ, McCray G, Myers HL, Lancaster GA. Determining sample size
for progression criteria for pragmatic pilot RCTs: the hypothesis test strikes back!
Pilot Feasibility Stud 2021;7:40.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from trialkit.errors import ModelSpecError

__all__ = [
    "LimitTest",
    "ProportionEstimate",
    "cluster_mean",
    "clustered_proportion",
    "exact_proportion",
    "compare_with_limit",
]

Method = Literal["design-based logit", "clopper-pearson", "cluster mean t"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProportionEstimate:
    """A proportion (or mean of cluster values) with its interval.

    Attributes
    ----------
    estimate : float
        :math:`\\hat p` (or the mean); NaN when the denominator is zero.
    numerator, denominator : float
        :math:`\\sum y_j` and :math:`\\sum n_j` (for a cluster mean: the sum of the values
        and the number of clusters).
    clusters : int
        Clusters contributing to the denominator (:math:`J`).
    std_error : float
        Standard error of the estimate (design-based, or *s*/√J); NaN for Clopper–Pearson.
    std_error_logit : float
        Standard error of :math:`\\operatorname{logit}\\hat p` (design-based method only).
    df : float
        Degrees of freedom of the interval and the test (:math:`J - 1`); NaN when exact.
    conf_low, conf_high, conf_level : float
    method : str
        ``"design-based logit"``, ``"clopper-pearson"`` or ``"cluster mean t"``.
    note : str
        Why a fallback was used, if one was.
    """

    estimate: float
    numerator: float
    denominator: float
    clusters: int
    std_error: float
    std_error_logit: float
    df: float
    conf_low: float
    conf_high: float
    conf_level: float
    method: Method
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitTest:
    """One-sided test of the null "the true value is at or beyond ``limit``".

    ``higher_is_better`` True: :math:`H_0: \\pi \\le` limit against :math:`H_1: \\pi >`
    limit; False: :math:`H_0: \\pi \\ge` limit against :math:`H_1: \\pi <` limit.
    ``statistic`` is the *t* statistic (NaN for the exact binomial test).
    """

    limit: float
    higher_is_better: bool
    statistic: float
    df: float
    p_value: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _counts(
    y: Sequence[float] | np.ndarray, n: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    ya = np.asarray(y, dtype=float)
    na = np.asarray(n, dtype=float)
    if ya.shape != na.shape or ya.ndim != 1:
        raise ModelSpecError(
            f"numerators and denominators must be two lists of the same length; got "
            f"{ya.shape} and {na.shape}"
        )
    if not (np.all(np.isfinite(ya)) and np.all(np.isfinite(na))):
        raise ModelSpecError("numerators and denominators must be finite counts")
    if np.any(na < 0) or np.any(ya < 0) or np.any(ya > na):
        raise ModelSpecError(
            "each cluster's numerator must lie between 0 and its denominator; got "
            f"numerators {ya.tolist()} and denominators {na.tolist()}"
        )
    return ya, na


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def exact_proportion(
    x: float, n: float, *, conf_level: float = 0.95, note: str = ""
) -> ProportionEstimate:
    """``x`` out of ``n`` with the exact Clopper–Pearson interval.

    Notes
    -----
    With :math:`a = (1 - \\text{conf\\_level})/2`, the limits are the beta quantiles
    :math:`B(a; x, n - x + 1)` and :math:`B(1 - a; x + 1, n - x)` (0 when :math:`x = 0`,
    1 when :math:`x = n`) — R's ``binom.test(x, n)$conf.int`` (Clopper & Pearson 1934).
    """
    (xa,), (na,) = _counts([x], [n])
    if na == 0:
        return ProportionEstimate(
            estimate=math.nan, numerator=xa, denominator=na, clusters=0, std_error=math.nan,
            std_error_logit=math.nan, df=math.nan, conf_low=math.nan, conf_high=math.nan,
            conf_level=conf_level, method="clopper-pearson", note=note or "denominator is zero",
        )  # fmt: skip
    a = (1.0 - conf_level) / 2.0
    lo = 0.0 if xa == 0 else float(stats.beta.ppf(a, xa, na - xa + 1))
    hi = 1.0 if xa == na else float(stats.beta.ppf(1 - a, xa + 1, na - xa))
    return ProportionEstimate(
        estimate=xa / na,
        numerator=xa,
        denominator=na,
        clusters=int(na),
        std_error=math.nan,
        std_error_logit=math.nan,
        df=math.nan,
        conf_low=lo,
        conf_high=hi,
        conf_level=conf_level,
        method="clopper-pearson",
        note=note,
    )


def clustered_proportion(
    y: Sequence[float] | np.ndarray, n: Sequence[float] | np.ndarray, *, conf_level: float = 0.95
) -> ProportionEstimate:
    """Pooled proportion over clusters with a design-based (Taylor-linearised) logit interval.

    Parameters
    ----------
    y, n : sequence of float
        Per cluster (LA): units with the event and units at risk (:math:`0 \\le y_j \\le n_j`).
        Clusters with :math:`n_j = 0` contribute nothing and are not counted in :math:`J`.
    conf_level : float

    Returns
    -------
    ProportionEstimate

    Notes
    -----
    The ratio estimator :math:`\\hat p = Y/N` with :math:`Y = \\sum_j y_j`,
    :math:`N = \\sum_j n_j` over the :math:`J` clusters with :math:`n_j > 0`. Its
    linearised variance for a one-stage cluster sample (clusters as primary sampling
    units drawn with replacement, equal weights, no finite-population correction) is

    .. math:: \\widehat{V}(\\hat p) = \\frac{J}{J - 1} \\sum_{j=1}^{J}
              \\left(\\frac{y_j - \\hat p\\, n_j}{N}\\right)^2

    (Binder 1983; the residuals sum to zero so no centring term is needed).  The
    interval is formed on the logit scale, where the delta method gives
    :math:`\\operatorname{se}(\\operatorname{logit}\\hat p) =
    \\operatorname{se}(\\hat p) / \\{\\hat p (1 - \\hat p)\\}`:

    .. math:: \\operatorname{expit}\\left(\\operatorname{logit}\\hat p \\pm
              t_{J-1,\\,1-a/2}\\,\\operatorname{se}(\\operatorname{logit}\\hat p)\\right)

    which is R's ``survey::svyciprop(~y, design, method = "logit", df = degf(design))``
    for ``svydesign(ids = ~la, data = rows)`` on one row per unit (Lumley 2010).  When
    every cluster has :math:`\\hat p_j` equal to 0 or 1 together (no variation: the
    design-based SE is zero and the logit undefined) or fewer than two clusters
    contribute, the exact Clopper–Pearson interval of the pooled counts is given
    instead, ignoring clustering, and ``note`` says so.
    """
    ya, na = _counts(y, n)
    keep = na > 0
    ya, na = ya[keep], na[keep]
    J = int(keep.sum())
    Y, N = float(ya.sum()), float(na.sum())
    if N == 0:
        return exact_proportion(0, 0, conf_level=conf_level)
    p = Y / N
    if J < 2:
        return _with_clusters(
            exact_proportion(Y, N, conf_level=conf_level,
                             note="fewer than two clusters: exact interval of the pooled counts, "
                                  "ignoring clustering"),
            J,
        )  # fmt: skip
    resid = (ya - p * na) / N
    var = J / (J - 1) * float(np.sum(resid**2))
    se = math.sqrt(max(var, 0.0))
    if p <= 0.0 or p >= 1.0 or se == 0.0:
        return _with_clusters(
            exact_proportion(Y, N, conf_level=conf_level,
                             note="no variation between clusters (design-based SE is zero): "
                                  "exact interval of the pooled counts, ignoring clustering"),
            J,
        )  # fmt: skip
    se_logit = se / (p * (1.0 - p))
    df = float(J - 1)
    q = float(stats.t.ppf(1 - (1 - conf_level) / 2, df))
    lp = _logit(p)
    return ProportionEstimate(
        estimate=p,
        numerator=Y,
        denominator=N,
        clusters=J,
        std_error=se,
        std_error_logit=se_logit,
        df=df,
        conf_low=_expit(lp - q * se_logit),
        conf_high=_expit(lp + q * se_logit),
        conf_level=conf_level,
        method="design-based logit",
    )


def _with_clusters(est: ProportionEstimate, clusters: int) -> ProportionEstimate:
    d = est.to_dict()
    d["clusters"] = clusters
    return ProportionEstimate(**d)


def cluster_mean(
    values: Sequence[float] | np.ndarray, *, conf_level: float = 0.95
) -> ProportionEstimate:
    """Mean of one value per cluster with a *t* interval on :math:`J - 1` df.

    Notes
    -----
    :math:`\\bar x \\pm t_{J-1,1-a/2}\\, s/\\sqrt J` — also the design-based SE of the mean
    of cluster-level values (``svymean`` with ``ids = ~la`` on one row per cluster).
    Missing values are dropped.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    J = len(x)
    if J == 0:
        return ProportionEstimate(
            estimate=math.nan, numerator=0.0, denominator=0.0, clusters=0, std_error=math.nan,
            std_error_logit=math.nan, df=math.nan, conf_low=math.nan, conf_high=math.nan,
            conf_level=conf_level, method="cluster mean t", note="no cluster has a value",
        )  # fmt: skip
    mean = float(x.mean())
    if J < 2:
        return ProportionEstimate(
            estimate=mean, numerator=float(x.sum()), denominator=float(J), clusters=J,
            std_error=math.nan, std_error_logit=math.nan, df=math.nan, conf_low=math.nan,
            conf_high=math.nan, conf_level=conf_level, method="cluster mean t",
            note="one cluster: no interval",
        )  # fmt: skip
    se = float(x.std(ddof=1)) / math.sqrt(J)
    df = float(J - 1)
    q = float(stats.t.ppf(1 - (1 - conf_level) / 2, df))
    return ProportionEstimate(
        estimate=mean,
        numerator=float(x.sum()),
        denominator=float(J),
        clusters=J,
        std_error=se,
        std_error_logit=math.nan,
        df=df,
        conf_low=mean - q * se,
        conf_high=mean + q * se,
        conf_level=conf_level,
        method="cluster mean t",
    )


def compare_with_limit(
    est: ProportionEstimate, limit: float, *, higher_is_better: bool
) -> LimitTest:
    """One-sided test that the true value is beyond the red ``limit`` (Lewis et al. 2021).

    Parameters
    ----------
    est : ProportionEstimate
    limit : float
        The red zone's boundary (its upper limit when higher is better).
    higher_is_better : bool

    Returns
    -------
    LimitTest
        A small p-value rules out the red zone.

    Notes
    -----
    Lewis et al. (2021) test :math:`H_0: \\pi \\le R_{UL}` against :math:`H_1: \\pi > R_{UL}`
    (reversed when lower is better) for an individually sampled proportion.  With
    clustering the test here is the one dual to each interval, so that the one-sided
    p-value is below :math:`a/2` exactly when ``limit`` lies outside the two-sided
    :math:`1 - a` interval:

    * design-based logit: :math:`t = (\\operatorname{logit}\\hat p -
      \\operatorname{logit} R) / \\operatorname{se}(\\operatorname{logit}\\hat p)` referred
      to *t* on :math:`J - 1` df (``0 < R < 1``);
    * Clopper–Pearson: the exact binomial tail :math:`P(X \\ge x \\mid n, R)`
      (:math:`P(X \\le x)` when lower is better), R's
      ``binom.test(x, n, R, alternative = "greater")``;
    * cluster mean: :math:`t = (\\bar x - R) / (s/\\sqrt J)` on :math:`J - 1` df.

    NaN when the estimate is missing.
    """
    upper = higher_is_better
    nan = LimitTest(
        limit=limit, higher_is_better=higher_is_better, statistic=math.nan, df=math.nan,
        p_value=math.nan, method=est.method,
    )  # fmt: skip
    if not math.isfinite(est.estimate):
        return nan
    if est.method == "clopper-pearson":
        x, n = int(round(est.numerator)), int(round(est.denominator))
        p = float(stats.binom.sf(x - 1, n, limit)) if upper else float(stats.binom.cdf(x, n, limit))
        return LimitTest(
            limit=limit, higher_is_better=higher_is_better, statistic=math.nan, df=math.nan,
            p_value=min(1.0, p), method="exact binomial",
        )  # fmt: skip
    if est.method == "design-based logit":
        if not 0.0 < limit < 1.0:
            return nan
        t = (_logit(est.estimate) - _logit(limit)) / est.std_error_logit
    else:
        if not (math.isfinite(est.std_error) and est.std_error > 0):
            return nan
        t = (est.estimate - limit) / est.std_error
    p = float(stats.t.sf(t, est.df)) if upper else float(stats.t.cdf(t, est.df))
    return LimitTest(
        limit=limit, higher_is_better=higher_is_better, statistic=t, df=est.df, p_value=p,
        method=f"one-sided t on {est.df:g} df ({est.method})",
    )  # fmt: skip
