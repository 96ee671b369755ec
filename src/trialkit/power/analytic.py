"""Analytic power, minimum detectable effect size (MDES) and required clusters.

Designs: 2-level (clusters of units) and 3-level (clusters of subclusters of
units) cluster randomised trials with the treatment at the top level, covariates
explaining a share R² of the variance at each level, ``g*`` cluster-level
covariates, a treated fraction ``P``, unequal cluster sizes through their
coefficient of variation, and binary outcomes on the proportion scale.

Notes
-----
Continuous outcomes (Dong & Maynard 2013, PowerUp!; Hedges & Rhoads 2010), in
standard-deviation units of the total (unconditional) outcome variance:

2-level, ``J`` clusters of ``n`` units, ICC ``ρ``:

.. math::

    SE^2 = \\frac{ρ(1-R_2^2)}{P(1-P)J} + \\frac{(1-ρ)(1-R_1^2)}{P(1-P)Jn},
    \\qquad df = J - g^* - 2.

3-level, ``K`` clusters of ``J`` subclusters of ``n`` units, ICCs ``ρ_3``, ``ρ_2``:

.. math::

    SE^2 = \\frac{ρ_3(1-R_3^2)}{P(1-P)K} + \\frac{ρ_2(1-R_2^2)}{P(1-P)KJ}
         + \\frac{(1-ρ_2-ρ_3)(1-R_1^2)}{P(1-P)KJn}, \\qquad df = K - g^* - 2.

``MDES = M·SE``.  The ``powerup`` multiplier is ``M = t_{1-α/2,df} + t_{π,df}``
(``t_{1-α,df}`` one-tailed; π the target power), as in PowerUp!/PowerUpR.  It
treats the test statistic under the alternative as a *shifted central* t, so the
power actually achieved at its MDES is a little below the target for small df.
The ``exact`` multiplier (default) is the noncentrality ``λ`` solving
``power(λ) = π`` for the noncentral t with ``df`` degrees of freedom, where

.. math::

    power(λ) = P(T_{df,λ} > c) + P(T_{df,λ} < -c), \\qquad c = t_{1-α/2,df},

(the second term only for two-tailed tests), evaluated with
``nct.sf(c, df, λ) + nct.sf(c, df, -λ)`` because ``nct.cdf(-c, df, λ)`` can
return NaN for large ``λ``.  The confidence interval of the MDES is
``MDES ± c·SE`` (PowerUpR's definition).

Unequal cluster sizes with coefficient of variation ``CV`` of the top-level
cluster sizes:

* ``eldridge`` (Eldridge, Ashby & Kerry 2006): the design effect
  ``DE = 1 + ((CV² + 1)m̄ − 1)ρ`` is obtained by multiplying the cluster-level
  variance term by ``1 + CV²``; we apply the same factor to the (covariate
  reduced) top-level term of the 2- and 3-level formulas.
* ``van-breukelen`` (van Breukelen, Candel & Berger 2007): the relative efficiency
  of unequal versus equal cluster sizes is ``RE ≈ 1 − CV²λ(1 − λ)`` with
  ``λ`` the reliability of a cluster mean (``m̄ρ/(m̄ρ + 1 − ρ)`` in 2 levels; the
  top-level term divided by the whole per-cluster variance in general), and
  ``SE²`` is divided by ``RE``.

Binary outcomes on the proportion scale (Donner & Klar 2000; clusterPower):
``Var(p̂₁ − p̂₀) = [π₁(1−π₁)/k₁ + π₀(1−π₀)/k₀]·DE/m`` with ``k₁ = PJ``,
``k₀ = (1−P)J`` clusters per arm, ``m`` units per cluster and
``DE = 1 + (m−1)ρ`` (3 levels: ``1 + (n−1)ρ₂ + (Jn−1)ρ₃``; with a CV, the
top-level ICC term is scaled as above); the test uses t with ``J − 2``
(``= 2(k − 1)`` for equal arms) degrees of freedom or z.  For ``P = 1/2`` this is
``[π₁(1−π₁) + π₀(1−π₀)]·DE/(k·m)``.

References
----------
Dong, N. & Maynard, R. (2013). PowerUp!: a tool for calculating minimum detectable
effect sizes and minimum required sample sizes for experimental and
quasi-experimental design studies. *Journal of Research on Educational
Effectiveness* 6(1), 24–67.

Eldridge, S. M., Ashby, D. & Kerry, S. (2006). Sample size for cluster randomized
trials: effect of coefficient of variation of cluster size and analysis method.
*International Journal of Epidemiology* 35(5), 1292–1300.

van Breukelen, G. J. P., Candel, M. J. J. M. & Berger, M. P. F. (2007). Relative
efficiency of unequal versus equal cluster sizes in cluster randomized and
multicentre trials. *Statistics in Medicine* 26(13), 2589–2603.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import integrate, optimize, special, stats

from trialkit._version import __version__
from trialkit.errors import PowerError, Problem

RESULT_SCHEMA_VERSION = 1

Multiplier = Literal["exact", "powerup"]
CVMethod = Literal["eldridge", "van-breukelen"]
OutcomeType = Literal["continuous", "binary"]
TestKind = Literal["t", "z"]

__all__ = [
    "AnalyticResult",
    "CRTDesign",
    "analytic_mdes",
    "analytic_power",
    "binary_icc_from_latent",
    "power_from_noncentrality",
    "required_clusters",
    "standard_error",
]

_MAX_CLUSTERS = 1_000_000


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# --------------------------------------------------------------------------- design
@dataclass(frozen=True, slots=True, kw_only=True)
class CRTDesign:
    """A 2- or 3-level cluster randomised design (treatment at the top level).

    Parameters
    ----------
    levels : {2, 3}
    clusters : int
        Number of randomised clusters (``J`` in 2 levels, ``K`` in 3 levels).
    units_per_cluster : float, optional
        2 levels: (mean) units per cluster ``n``.
    subclusters_per_cluster, units_per_subcluster : float, optional
        3 levels: subclusters per cluster ``J`` and units per subcluster ``n``.
    icc_cluster : float
        ICC of the top level (``ρ`` or ``ρ₃``); on the proportion scale for binary outcomes.
    icc_subcluster : float
        ICC of the middle level (``ρ₂``; 3 levels only).
    r2_unit, r2_subcluster, r2_cluster : float
        Share of the variance at each level explained by covariates, in [0, 1).
    cluster_covariates : int
        Number of cluster-level covariates ``g*`` (costs degrees of freedom).
    treated_fraction : float
        Fraction ``P`` of clusters treated, in (0, 1).
    cv : float
        Coefficient of variation of the top-level cluster sizes (0 = equal).
    cv_method : {"eldridge", "van-breukelen"}
    outcome : {"continuous", "binary"}
    proportions : tuple of float, optional
        Binary outcomes: ``(p_control, p_intervention)``; the second may be omitted
        (``NaN``) when the MDES is asked for.
    test : {"t", "z"}
        Binary outcomes: reference distribution (t with ``J − 2`` df, or z).
    """

    levels: int = 2
    clusters: int | None = None
    units_per_cluster: float | None = None
    subclusters_per_cluster: float | None = None
    units_per_subcluster: float | None = None
    icc_cluster: float = 0.0
    icc_subcluster: float = 0.0
    r2_unit: float = 0.0
    r2_subcluster: float = 0.0
    r2_cluster: float = 0.0
    cluster_covariates: int = 0
    treated_fraction: float = 0.5
    cv: float = 0.0
    cv_method: CVMethod = "eldridge"
    outcome: OutcomeType = "continuous"
    proportions: tuple[float, float] | None = None
    test: TestKind = "t"

    # ------------------------------------------------------------------ checks
    def problems(self, *, need_clusters: bool = True) -> list[Problem]:
        """Every problem with these settings (empty when the design is valid)."""
        out: list[Problem] = []

        def bad(path: str, code: str, message: str, hint: str) -> None:
            out.append(Problem(path=path, code=code, message=message, hint=hint))

        def finite(x: Any) -> bool:
            return isinstance(x, int | float) and math.isfinite(float(x))

        if self.levels not in (2, 3):
            bad(
                "levels",
                "power.levels",
                f"`levels` must be 2 or 3; got {self.levels!r}.",
                "Use 2 for clusters of units, 3 for clusters of subclusters of units.",
            )
        if self.outcome not in ("continuous", "binary"):
            bad(
                "outcome",
                "power.outcome",
                f"`outcome` must be 'continuous' or 'binary'; got {self.outcome!r}.",
                "",
            )
        if self.cv_method not in ("eldridge", "van-breukelen"):
            bad(
                "cv_method",
                "power.cv_method",
                f"`cv_method` must be 'eldridge' or 'van-breukelen'; got {self.cv_method!r}.",
                "",
            )
        if self.test not in ("t", "z"):
            bad("test", "power.test", f"`test` must be 't' or 'z'; got {self.test!r}.", "")
        for name in ("icc_cluster", "icc_subcluster"):
            v = getattr(self, name)
            if not finite(v) or not 0.0 <= v < 1.0:
                bad(
                    name,
                    "power.icc_range",
                    f"`{name}` must be in [0, 1); got {v!r}.",
                    "ICCs are shares of the total variance.",
                )
        if self.levels == 3 and finite(self.icc_cluster) and finite(self.icc_subcluster):
            if self.icc_cluster + self.icc_subcluster >= 1.0:
                bad(
                    "icc_cluster+icc_subcluster",
                    "power.icc_sum",
                    "`icc_cluster + icc_subcluster` must be below 1; got "
                    f"{self.icc_cluster + self.icc_subcluster!r}.",
                    "The two ICCs are shares of one total variance; the unit level needs the rest.",
                )
        for name in ("r2_unit", "r2_subcluster", "r2_cluster"):
            v = getattr(self, name)
            if not finite(v) or not 0.0 <= v < 1.0:
                bad(
                    name,
                    "power.r2_range",
                    f"`{name}` must be in [0, 1); got {v!r}.",
                    "R² is the share of a level's variance explained by covariates.",
                )
        if not finite(self.treated_fraction) or not 0.0 < self.treated_fraction < 1.0:
            bad(
                "treated_fraction",
                "power.treated_fraction",
                f"`treated_fraction` must be strictly between 0 and 1; got {self.treated_fraction!r}.",
                "Use 0.5 for equal allocation.",
            )
        if not finite(self.cv) or self.cv < 0:
            bad(
                "cv",
                "power.cv",
                f"`cv` must be a number ≥ 0; got {self.cv!r}.",
                "The coefficient of variation of cluster sizes is sd/mean of the sizes.",
            )
        g = self.cluster_covariates
        if not isinstance(g, int | np.integer) or isinstance(g, bool) or g < 0:
            bad(
                "cluster_covariates",
                "power.cluster_covariates",
                f"`cluster_covariates` must be a whole number ≥ 0; got {g!r}.",
                "",
            )
            g = 0
        if self.levels == 2:
            self._check_size(out, "units_per_cluster", self.units_per_cluster)
        elif self.levels == 3:
            self._check_size(out, "subclusters_per_cluster", self.subclusters_per_cluster)
            self._check_size(out, "units_per_subcluster", self.units_per_subcluster)
        if need_clusters:
            c = self.clusters
            if c is None or not isinstance(c, int | np.integer) or isinstance(c, bool):
                bad(
                    "clusters",
                    "power.clusters_missing",
                    f"`clusters` must be a whole number; got {c!r}.",
                    "Give the number of clusters.",
                )
            elif c <= int(g) + 2:
                bad(
                    "clusters",
                    "power.too_few_clusters",
                    f"`clusters` must exceed cluster covariates + 2 = {int(g) + 2}; got {c}.",
                    "df = clusters − cluster covariates − 2 must be at least 1.",
                )
        if self.outcome == "binary":
            if any(getattr(self, r) != 0 for r in ("r2_unit", "r2_subcluster", "r2_cluster")):
                bad(
                    "r2",
                    "power.binary_r2",
                    "`r2_*` must be 0 for binary outcomes on the proportion scale.",
                    "Covariate adjustment is not modelled for binary outcomes; drop the R² options.",
                )
            if self.proportions is None:
                bad(
                    "proportions",
                    "power.proportions_missing",
                    "`proportions` must be given for binary outcomes.",
                    "Give p_control,p_intervention (e.g. 0.3,0.45).",
                )
            else:
                p0, p1 = self.proportions
                if not finite(p0) or not 0 < p0 < 1:
                    bad(
                        "proportions",
                        "power.proportion_range",
                        f"`p_control` must be strictly between 0 and 1; got {p0!r}.",
                        "",
                    )
                if not (isinstance(p1, float) and math.isnan(p1)) and (
                    not finite(p1) or not 0 < p1 < 1
                ):
                    bad(
                        "proportions",
                        "power.proportion_range",
                        f"`p_intervention` must be strictly between 0 and 1; got {p1!r}.",
                        "",
                    )
        return out

    @staticmethod
    def _check_size(out: list[Problem], name: str, v: Any) -> None:
        if (
            v is None
            or not isinstance(v, int | float | np.integer | np.floating)
            or not (math.isfinite(float(v)) and float(v) >= 1.0)
        ):
            out.append(
                Problem(
                    path=name,
                    code="power.cluster_size",
                    message=f"`{name}` must be a number ≥ 1; got {v!r}.",
                    hint="Give the (mean) size at this level.",
                )
            )

    def validate(self, *, need_clusters: bool = True) -> CRTDesign:
        """Return ``self`` or raise :class:`PowerError` listing every problem."""
        probs = self.problems(need_clusters=need_clusters)
        if probs:
            raise PowerError(f"invalid design ({len(probs)} problem(s))", probs)
        return self

    # ---------------------------------------------------------------- derived
    @property
    def df(self) -> float:
        """Degrees of freedom ``clusters − g* − 2`` (``inf`` for a binary z-test)."""
        if self.outcome == "binary":
            return math.inf if self.test == "z" else float(self._k() - 2)
        return float(self._k() - self.cluster_covariates - 2)

    def _k(self) -> int:
        if self.clusters is None:
            raise PowerError.from_problem(
                path="clusters",
                code="power.clusters_missing",
                message="`clusters` must be given.",
                hint="",
            )
        return int(self.clusters)

    @property
    def units_per_top_cluster(self) -> float:
        """Mean number of units per randomised cluster."""
        if self.levels == 2:
            return float(self.units_per_cluster or 0)
        return float(self.subclusters_per_cluster or 0) * float(self.units_per_subcluster or 0)

    def with_clusters(self, clusters: int) -> CRTDesign:
        """A copy with another number of clusters."""
        return replace(self, clusters=int(clusters))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.proportions is not None:
            d["proportions"] = [_clean(float(p)) for p in self.proportions]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CRTDesign:
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        if kw.get("proportions") is not None:
            p = kw["proportions"]
            kw["proportions"] = (float(p[0]), float("nan") if p[1] is None else float(p[1]))
        return cls(**kw)


# ------------------------------------------------------------------ variance pieces
def _continuous_terms(d: CRTDesign) -> tuple[float, float]:
    """(top-level term, lower-level terms) of ``SE² · P(1−P)K`` for a continuous outcome."""
    if d.levels == 2:
        n = float(d.units_per_cluster)  # type: ignore[arg-type]
        top = d.icc_cluster * (1 - d.r2_cluster)
        low = (1 - d.icc_cluster) * (1 - d.r2_unit) / n
    else:
        j = float(d.subclusters_per_cluster)  # type: ignore[arg-type]
        n = float(d.units_per_subcluster)  # type: ignore[arg-type]
        top = d.icc_cluster * (1 - d.r2_cluster)
        low = d.icc_subcluster * (1 - d.r2_subcluster) / j + (
            1 - d.icc_cluster - d.icc_subcluster
        ) * (1 - d.r2_unit) / (j * n)
    return top, low


def _cv_factor(d: CRTDesign, top: float, low: float) -> float:
    """Multiplier of the per-cluster variance ``top + low`` for unequal cluster sizes."""
    if d.cv == 0 or top == 0:
        return 1.0
    if d.cv_method == "eldridge":
        return (top * (1 + d.cv**2) + low) / (top + low)
    lam = top / (top + low)
    re = 1 - d.cv**2 * lam * (1 - lam)
    if re <= 0:
        raise PowerError.from_problem(
            path="cv",
            code="power.cv_too_large",
            message=f"`cv` = {d.cv} makes van Breukelen's relative efficiency ≤ 0.",
            hint="The approximation holds for CV below about 1; use cv_method='eldridge'.",
        )
    return 1 / re


def _binary_design_effect(d: CRTDesign) -> float:
    if d.levels == 2:
        m = float(d.units_per_cluster)  # type: ignore[arg-type]
        top, rest = (m - 1) * d.icc_cluster, 0.0
        m_top = m
    else:
        j = float(d.subclusters_per_cluster)  # type: ignore[arg-type]
        n = float(d.units_per_subcluster)  # type: ignore[arg-type]
        m_top = j * n
        top, rest = (m_top - 1) * d.icc_cluster, (n - 1) * d.icc_subcluster
    if d.cv == 0:
        return 1 + top + rest
    if d.cv_method == "eldridge":
        # Eldridge: (m-1)ρ becomes ((CV²+1)m − 1)ρ at the top level.
        return 1 + ((d.cv**2 + 1) * m_top - 1) * d.icc_cluster + rest
    de = 1 + top + rest
    topv = m_top * d.icc_cluster
    lam = topv / de if de > 0 else 0.0
    re = 1 - d.cv**2 * lam * (1 - lam)
    if re <= 0:
        raise PowerError.from_problem(
            path="cv",
            code="power.cv_too_large",
            message=f"`cv` = {d.cv} makes van Breukelen's relative efficiency ≤ 0.",
            hint="Use cv_method='eldridge'.",
        )
    return de / re


def _binary_variance_factor(d: CRTDesign) -> float:
    """``Var(p̂₁ − p̂₀)`` per unit ``π(1−π)``-sum, i.e. ``DE/(m·J·P(1−P))`` pieces."""
    return _binary_design_effect(d) / (d.units_per_top_cluster * d._k())


def _binary_se(d: CRTDesign, p0: float, p1: float) -> float:
    base = _binary_variance_factor(d)
    p = d.treated_fraction
    return math.sqrt(base * (p1 * (1 - p1) / p + p0 * (1 - p0) / (1 - p)))


def standard_error(design: CRTDesign) -> float:
    """Standard error of the treatment effect estimate.

    Continuous outcomes: in SD units of the total outcome variance.  Binary
    outcomes: of the difference in proportions, at ``proportions``.

    Parameters
    ----------
    design : CRTDesign

    Returns
    -------
    float
    """
    d = design.validate()
    if d.outcome == "binary":
        p0, p1 = d.proportions  # type: ignore[misc]
        if math.isnan(p1):
            p1 = p0
        return _binary_se(d, p0, p1)
    top, low = _continuous_terms(d)
    f = _cv_factor(d, top, low)
    p = d.treated_fraction
    return math.sqrt((top + low) * f / (p * (1 - p) * d._k()))


# ----------------------------------------------------------------- distributions
def _critical(alpha: float, df: float, two_tailed: bool) -> float:
    q = 1 - alpha / 2 if two_tailed else 1 - alpha
    return float(stats.norm.isf(1 - q)) if math.isinf(df) else float(stats.t.isf(1 - q, df))


def power_from_noncentrality(
    lam: Any, df: float, *, alpha: float = 0.05, two_tailed: bool = True
) -> np.ndarray:
    """Power of the t (or z, ``df = inf``) test at noncentrality ``lam`` (array-valued).

    ``P(T_{df,λ} > c) + P(T_{df,λ} < −c)`` (the second term two-tailed only), ``c``
    the critical value; the formula :func:`analytic_power` uses.
    """
    lam = np.asarray(lam, dtype=float)
    c = _critical(alpha, df, two_tailed)
    if math.isinf(df):
        pw = stats.norm.sf(c - lam)
        if two_tailed:
            pw = pw + stats.norm.sf(c + lam)
        return np.asarray(pw, dtype=float)
    pw = stats.nct.sf(c, df, lam)
    if two_tailed:
        # P(T_{df,λ} < −c) = P(T_{df,−λ} > c): sf avoids the NaN of nct.cdf for large λ.
        pw = pw + stats.nct.sf(c, df, -lam)
    return np.asarray(pw, dtype=float)


def _power_from_lambda(lam: float, df: float, alpha: float, two_tailed: bool) -> float:
    return float(power_from_noncentrality(lam, df, alpha=alpha, two_tailed=two_tailed))


def _quantile(p: float, df: float) -> float:
    return float(stats.norm.ppf(p)) if math.isinf(df) else float(stats.t.ppf(p, df))


def _multiplier(power: float, alpha: float, df: float, two_tailed: bool, kind: str) -> float:
    c = _critical(alpha, df, two_tailed)
    if kind == "powerup":
        return c + _quantile(power, df)
    # exact: noncentrality giving the target power
    lo, hi = 0.0, max(1.0, 2 * (c + abs(_quantile(power, df))) + 1)
    while _power_from_lambda(hi, df, alpha, two_tailed) < power:
        hi *= 2
    return float(
        optimize.brentq(
            lambda lam: _power_from_lambda(lam, df, alpha, two_tailed) - power,
            lo,
            hi,
            xtol=1e-14,
            rtol=4 * np.finfo(float).eps,
            maxiter=500,
        )
    )


def _check_test(alpha: float, two_tailed: bool, power: float | None = None) -> None:
    probs: list[Problem] = []
    if not isinstance(alpha, int | float) or not 0 < alpha < 1 or (two_tailed and alpha >= 1):
        probs.append(
            Problem(
                path="alpha",
                code="power.alpha",
                message=f"`alpha` must be strictly between 0 and 1; got {alpha!r}.",
                hint="Usually 0.05.",
            )
        )
    elif power is not None:
        lo = alpha
        if not isinstance(power, int | float) or not lo < power < 1:
            probs.append(
                Problem(
                    path="power",
                    code="power.power_range",
                    message=f"`power` must be between alpha ({alpha}) and 1; got {power!r}.",
                    hint="Usually 0.8 or 0.9.",
                )
            )
    if probs:
        raise PowerError("invalid test settings", probs)


def _check_multiplier(m: str) -> None:
    if m not in ("exact", "powerup"):
        raise PowerError.from_problem(
            path="multiplier",
            code="power.multiplier",
            message=f"`multiplier` must be 'exact' or 'powerup'; got {m!r}.",
            hint="'exact' inverts the noncentral t; 'powerup' sums t quantiles.",
        )


# ------------------------------------------------------------------------ result
@dataclass(frozen=True, slots=True, kw_only=True)
class AnalyticResult:
    """Result of an analytic power, MDES or required-clusters calculation.

    Attributes
    ----------
    quantity : {"mdes", "power", "clusters"}
        What was solved for.
    design : CRTDesign
        The design (for ``clusters``, with the solution filled in).
    mdes, conf_low, conf_high : float
        MDES and its confidence interval (``NaN`` when not computed).  For binary
        outcomes the MDES is a difference in proportions.
    power : float
        Power at ``effect`` (or the target power for ``mdes``/``clusters``).
    effect : float
        Effect size used (``NaN`` for ``mdes``).
    clusters : int
    df : float
    standard_error : float
    multiplier : str
    multiplier_value : float
        ``M`` such that ``MDES = M·SE``.
    alpha : float
    two_tailed : bool
    """

    quantity: str
    design: CRTDesign
    mdes: float = float("nan")
    conf_low: float = float("nan")
    conf_high: float = float("nan")
    power: float = float("nan")
    effect: float = float("nan")
    clusters: int = 0
    df: float = float("nan")
    standard_error: float = float("nan")
    multiplier: str = "exact"
    multiplier_value: float = float("nan")
    alpha: float = 0.05
    two_tailed: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary with ``schema_version`` and ``trialkit_version``."""
        d: dict[str, Any] = {
            "schema_version": RESULT_SCHEMA_VERSION,
            "trialkit_version": __version__,
            "quantity": self.quantity,
            "design": self.design.to_dict(),
        }
        for f in fields(self):
            if f.name in ("quantity", "design"):
                continue
            v = getattr(self, f.name)
            if f.name == "notes":
                v = list(v)
            d[f.name] = _clean(v) if isinstance(v, float) else v
        return d

    def to_json_summary(self) -> dict[str, Any]:
        """The keys a program reads (``mdes``, ``conf_low``, ..., those that apply)."""
        keys = ["mdes", "conf_low", "conf_high"] if self.quantity == "mdes" else []
        keys += ["power", "clusters", "df", "standard_error", "multiplier"]
        if self.quantity != "mdes":
            keys.insert(0, "effect")
        return {k: _clean(getattr(self, k)) for k in keys}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AnalyticResult:
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            v = d[f.name]
            if f.name == "design":
                v = CRTDesign.from_dict(v)
            elif f.name == "notes":
                v = tuple(v)
            elif v is None:
                v = float("nan") if f.name != "df" else math.inf
            kw[f.name] = v
        return cls(**kw)

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy table."""
        row = {k: v for k, v in self.to_dict().items() if k not in ("design", "notes")}
        row.update(
            {f"design_{k}": v for k, v in self.design.to_dict().items() if k != "proportions"}
        )
        return pd.DataFrame([row])

    def summary(self) -> str:
        d = self.design
        tail = "two-tailed" if self.two_tailed else "one-tailed"
        scale = "difference in proportions" if d.outcome == "binary" else "SD units"
        lines = [
            f"{d.levels}-level cluster randomised design, {self.clusters} clusters, "
            f"{d.outcome} outcome ({scale})",
            f"alpha {self.alpha} ({tail}), df {self.df:g}, SE {self.standard_error:.6g}, "
            f"multiplier {self.multiplier} (M = {self.multiplier_value:.6g})",
        ]
        if self.quantity == "mdes":
            lines.append(
                f"MDES {self.mdes:.6g} [{self.conf_low:.6g}, {self.conf_high:.6g}] "
                f"at power {self.power:.6g}"
            )
        elif self.quantity == "power":
            lines.append(f"power {self.power:.6g} to detect {self.effect:.6g}")
        else:
            lines.append(
                f"{self.clusters} clusters give power {self.power:.6g} to detect {self.effect:.6g}"
            )
        lines.extend(self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"AnalyticResult(quantity={self.quantity!r}, mdes={self.mdes!r}, "
            f"power={self.power!r}, clusters={self.clusters!r}, df={self.df!r}, "
            f"multiplier={self.multiplier!r})"
        )


# ---------------------------------------------------------------------- solvers
def _binary_effect(d: CRTDesign, purpose: str) -> float:
    """``p_intervention − p_control`` of a binary design, or a PowerError if not given."""
    p0, p1 = d.proportions  # type: ignore[misc]
    if math.isnan(p1):
        raise PowerError.from_problem(
            path="proportions",
            code="power.proportions_missing",
            message=f"`p_intervention` must be given to {purpose} for a binary outcome.",
            hint="Give --proportions p_control,p_intervention.",
        )
    return float(p1 - p0)


def analytic_power(
    design: CRTDesign,
    *,
    effect: float | None = None,
    alpha: float = 0.05,
    two_tailed: bool = True,
    multiplier: Multiplier = "exact",
) -> AnalyticResult:
    """Power to detect ``effect`` (SD units; binary: taken from ``proportions``).

    Power uses the noncentral t with ``λ = effect/SE`` whatever the multiplier
    (as PowerUp! does); ``multiplier`` is only recorded.

    Parameters
    ----------
    design : CRTDesign
    effect : float
        Standardised effect (continuous outcomes).  Binary outcomes use
        ``p_intervention − p_control``.
    alpha : float
    two_tailed : bool
    multiplier : {"exact", "powerup"}

    Returns
    -------
    AnalyticResult

    Notes
    -----
    ``power = P(T_{df,λ} > c) + P(T_{df,λ} < −c)`` (Hedges & Rhoads 2010),
    ``c`` the critical value; the z analogue when ``df`` is infinite.
    """
    d = design.validate()
    _check_test(alpha, two_tailed)
    _check_multiplier(multiplier)
    if d.outcome == "binary":
        effect = _binary_effect(d, "compute power")
    elif effect is None or not math.isfinite(effect):
        raise PowerError.from_problem(
            path="effect",
            code="power.effect_missing",
            message=f"`effect` must be a finite number; got {effect!r}.",
            hint="Give the standardised effect size, e.g. 0.3.",
        )
    se = standard_error(d)
    df = d.df
    pw = _power_from_lambda(abs(effect) / se, df, alpha, two_tailed)
    return AnalyticResult(
        quantity="power",
        design=d,
        power=pw,
        effect=float(effect),
        clusters=d._k(),
        df=df,
        standard_error=se,
        multiplier=multiplier,
        multiplier_value=abs(effect) / se,
        alpha=alpha,
        two_tailed=two_tailed,
    )


def analytic_mdes(
    design: CRTDesign,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    two_tailed: bool = True,
    multiplier: Multiplier = "exact",
) -> AnalyticResult:
    """Minimum detectable effect size with its confidence interval.

    Parameters
    ----------
    design : CRTDesign
    power : float
        Target power.
    alpha : float
    two_tailed : bool
    multiplier : {"exact", "powerup"}
        ``exact`` inverts the noncentral t; ``powerup`` uses ``t_{1−α/2} + t_{power}``.

    Returns
    -------
    AnalyticResult
        ``mdes``, ``conf_low = mdes − c·SE``, ``conf_high = mdes + c·SE``.  For binary
        outcomes the MDES is the smallest increase ``p_intervention − p_control``
        (the variance depends on it, so it is solved numerically).

    Notes
    -----
    ``MDES = M·SE`` (Bloom 1995; Dong & Maynard 2013).
    """
    d = design.validate()
    _check_test(alpha, two_tailed, power)
    _check_multiplier(multiplier)
    df = d.df
    m = _multiplier(power, alpha, df, two_tailed, multiplier)
    c = _critical(alpha, df, two_tailed)
    notes: list[str] = []
    if d.outcome == "binary":
        p0 = d.proportions[0]  # type: ignore[index]

        def gap(delta: float) -> float:
            return delta - m * _binary_se(d, p0, p0 + delta)

        hi = 1 - p0 - 1e-12
        if gap(hi) < 0:
            raise PowerError.from_problem(
                path="proportions",
                code="power.binary_undetectable",
                message=f"no increase from p_control = {p0} is detectable with this design.",
                hint="Add clusters or units, or lower the target power.",
            )
        delta = float(optimize.brentq(gap, 0.0, hi, xtol=1e-14))
        se = _binary_se(d, p0, p0 + delta)
        d = replace(d, proportions=(p0, p0 + delta))
        notes.append(f"binary: MDES is the increase from p_control = {p0} to {p0 + delta:.6g}")
    else:
        se = standard_error(d)
        delta = m * se
    return AnalyticResult(
        quantity="mdes",
        design=d,
        mdes=delta,
        conf_low=delta - c * se,
        conf_high=delta + c * se,
        power=power,
        clusters=d._k(),
        df=df,
        standard_error=se,
        multiplier=multiplier,
        multiplier_value=m,
        alpha=alpha,
        two_tailed=two_tailed,
        notes=tuple(notes),
    )


def required_clusters(
    design: CRTDesign,
    *,
    effect: float | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
    two_tailed: bool = True,
    multiplier: Multiplier = "exact",
) -> AnalyticResult:
    """Smallest number of clusters giving at least ``power`` to detect ``effect``.

    With ``multiplier="exact"`` the criterion is the exact power; with
    ``"powerup"`` it is ``MDES(K) ≤ effect`` with the PowerUp! multiplier (as
    PowerUpR's ``mrss``).  ``design.clusters`` is ignored.

    Returns
    -------
    AnalyticResult
        With ``clusters`` set, ``power`` the exact power achieved there and ``mdes``
        the MDES at that size.
    """
    d = design.validate(need_clusters=False)
    _check_test(alpha, two_tailed, power)
    _check_multiplier(multiplier)
    if d.outcome == "binary":
        effect = _binary_effect(d, "find the clusters")
    if effect is None or not math.isfinite(effect) or effect == 0:
        raise PowerError.from_problem(
            path="effect",
            code="power.effect_missing",
            message=f"`effect` must be a non-zero number; got {effect!r}.",
            hint="Give the effect size to detect, e.g. 0.3.",
        )
    g = 0 if d.outcome == "binary" else d.cluster_covariates
    lo = g + 3

    def ok(k: int) -> bool:
        dk = d.with_clusters(k)
        if multiplier == "powerup":
            return (
                analytic_mdes(
                    dk, power=power, alpha=alpha, two_tailed=two_tailed, multiplier="powerup"
                ).mdes
                <= abs(effect) + 1e-12
            )
        return analytic_power(dk, effect=effect, alpha=alpha, two_tailed=two_tailed).power >= power

    if ok(lo):
        k = lo
    else:
        hi = lo
        while not ok(hi):
            if hi > _MAX_CLUSTERS:
                raise PowerError.from_problem(
                    path="effect",
                    code="power.clusters_unreachable",
                    message=f"no number of clusters up to {_MAX_CLUSTERS} reaches power {power}.",
                    hint="The cluster-level variance alone may make the effect undetectable; "
                    "check the ICC and effect.",
                )
            lo, hi = hi, hi * 2
        while hi - lo > 1:  # ok(hi) is True, ok(lo) False
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid
        k = hi
    dk = d.with_clusters(k)
    pw = analytic_power(dk, effect=effect, alpha=alpha, two_tailed=two_tailed)
    md = analytic_mdes(dk, power=power, alpha=alpha, two_tailed=two_tailed, multiplier=multiplier)
    return AnalyticResult(
        quantity="clusters",
        design=dk,
        mdes=md.mdes,
        conf_low=md.conf_low,
        conf_high=md.conf_high,
        power=pw.power,
        effect=float(effect),
        clusters=k,
        df=dk.df,
        standard_error=pw.standard_error,
        multiplier=multiplier,
        multiplier_value=md.multiplier_value,
        alpha=alpha,
        two_tailed=two_tailed,
    )


# ------------------------------------------------------------------ latent ICC helper
def binary_icc_from_latent(icc_latent: float, prevalence: float, *, link: str = "logit") -> float:
    """Convert an ICC on the latent (logit or probit) scale to the proportion scale.

    Parameters
    ----------
    icc_latent : float
        ``σ²_u/(σ²_u + σ²_e)`` with ``σ²_e = π²/3`` (logit) or 1 (probit).
    prevalence : float
        Overall proportion ``π`` (marginal mean of the outcome).
    link : {"logit", "probit"}

    Returns
    -------
    float
        ICC of the 0/1 outcome, ``ρ_P = Var(p_j)/(π(1−π))``, with ``p_j`` the
        cluster-specific probability.

    Notes
    -----
    The proportion-scale ICC is the variance of the cluster probabilities over
    ``π(1−π)`` (Eldridge, Ukoumunne & Carlin 2009, *Int Stat Rev* 77, 378–394).

    * probit: the threshold model gives ``ρ_P = [Φ₂(z, z; ρ_L) − π²]/(π(1−π))``,
      ``z = Φ⁻¹(π)``, ``Φ₂`` the bivariate normal CDF (two units in one cluster
      both exceed the threshold).
    * logit: ``p_j = expit(β₀ + u_j)``, ``u_j ~ N(0, σ²_u)``,
      ``σ²_u = (π²/3)ρ_L/(1 − ρ_L)``; ``β₀`` is solved so that ``E(p_j) = π`` and
      ``E(p_j)``, ``E(p_j²)`` are computed by 80-point Gauss–Hermite quadrature
      (the exact form of Goldstein, Browne & Rasbash's 2002 simulation method).
    """
    probs = []
    if not isinstance(icc_latent, int | float) or not 0 <= icc_latent < 1:
        probs.append(
            Problem(
                path="icc_latent",
                code="power.icc_range",
                message=f"`icc_latent` must be in [0, 1); got {icc_latent!r}.",
                hint="",
            )
        )
    if not isinstance(prevalence, int | float) or not 0 < prevalence < 1:
        probs.append(
            Problem(
                path="prevalence",
                code="power.proportion_range",
                message=f"`prevalence` must be strictly between 0 and 1; got {prevalence!r}.",
                hint="",
            )
        )
    if link not in ("logit", "probit"):
        probs.append(
            Problem(
                path="link",
                code="power.link",
                message=f"`link` must be 'logit' or 'probit'; got {link!r}.",
                hint="",
            )
        )
    if probs:
        raise PowerError("invalid latent ICC conversion", probs)
    if icc_latent == 0:
        return 0.0
    pi = float(prevalence)
    if link == "probit":
        z = float(stats.norm.ppf(pi))
        # Plackett (1954): dΦ₂(z, z; r)/dr = φ₂(z, z; r) = exp(−z²/(1+r))/(2π√(1−r²)),
        # so Φ₂(z, z; ρ) − π² = ∫₀^ρ φ₂(z, z; r) dr.
        extra, _ = integrate.quad(
            lambda r: math.exp(-(z**2) / (1 + r)) / (2 * math.pi * math.sqrt(1 - r * r)),
            0.0,
            float(icc_latent),
            epsabs=1e-15,
            epsrel=1e-13,
            limit=200,
        )
        return float(extra) / (pi * (1 - pi))
    s2 = (math.pi**2 / 3) * icc_latent / (1 - icc_latent)
    x, w = np.polynomial.hermite.hermgauss(80)
    u = math.sqrt(2 * s2) * x
    w = w / math.sqrt(math.pi)

    def mean_p(b0: float) -> float:
        return float(np.sum(w * special.expit(b0 + u)))

    b0 = float(optimize.brentq(lambda b: mean_p(b) - pi, -50, 50, xtol=1e-14))
    p = special.expit(b0 + u)
    var = float(np.sum(w * p**2)) - pi**2
    return var / (pi * (1 - pi))
