"""Sample size for progression criteria of a pilot trial (Lewis et al. 2021).

A progression criterion has a *red* limit (at or beyond it: stop) and a *green*
limit (at or beyond it: proceed).  Lewis et al. test ``H0: p ≤ R`` ("in the red
zone") against ``H1: p > R`` with a one-sided level ``α`` and choose the pilot
size ``n`` that gives power ``1 − β`` to reject ``H0`` when ``p = G`` ("green
holds").  When red lies above green (lower is better, e.g. contamination) the
test is ``H0: p ≥ R`` against ``p < R``; the sample size is the same function of
``|G − R|`` and the two variances.

Notes
-----
With ``Δ = |G − R|``, ``z_a = Φ⁻¹(1 − α)``, ``z_b = Φ⁻¹(1 − β)``:

Normal approximation without continuity correction (one-sample test of a
proportion; e.g. Machin et al. 2009, ch. 3):

.. math::

    n_0 = \\left[\\frac{z_a\\sqrt{R(1-R)} + z_b\\sqrt{G(1-G)}}{Δ}\\right]^2 .

With the continuity correction (the test statistic uses ``|X − nR| − ½``),
solving ``Δn − ½ = (z_a\\sqrt{R(1-R)} + z_b\\sqrt{G(1-G)})\\sqrt n`` exactly gives
Fleiss's form for one sample

.. math::

    n_{cc} = \\frac{n_0}{4}\\left[1 + \\sqrt{1 + \\frac{2}{n_0 Δ}}\\right]^2
           ≈ n_0 + \\frac{1}{Δ}.

Variants (``variant=``):

* ``"lewis-2021"`` (default): ``round(n_0 + 1/Δ)``, the continuity-corrected
  size to first order, rounded to the nearest whole number.  It is the variant
  that reproduces all three sizes of Lewis et al.'s case illustration (their
  Table 4; α = 0.05 one-sided, power 0.9): 50%/75% → 34 (n₀ + 1/Δ = 34.35),
  20%/35% → 78 (78.26), 65%/85% → 44 (43.57).  Rounding ``n_0`` up gives 31,
  72 and 39; rounding ``n_cc`` up gives 35, 79 and 44; rounding ``n_cc`` to the
  nearest gives 34, 78 and 43; none of these reproduces all three.
* ``"normal-cc"``: ``⌈n_cc⌉`` (the smallest size whose continuity-corrected
  normal power reaches the target; Machin et al. 2009; Ying et al. 2025).
* ``"normal"``: ``⌈n_0⌉`` (no correction; the size of Lewis et al.'s
  conference abstract: 40%/70% → 22).

A cluster pilot multiplies the size by the design effect
``DE = 1 + (m − 1)ρ`` (``m`` individuals per cluster, ICC ``ρ``):
``n = ⌈n_ind · DE⌉`` and the number of clusters is ``⌈n/m⌉``.

The exact binomial power of the individual-level size is reported alongside:
with ``c`` the smallest count whose one-sided exact p-value under ``R`` is at
most ``α``, the power is ``P(X ≥ c | n, G)`` (``P(X ≤ c | n, G)`` when lower is
better).  The continuity-corrected normal power is
``Φ((Δ√n − 1/(2√n) − z_a\\sqrt{R(1-R)})/\\sqrt{G(1-G)})``.

The "amber" cut-point of Lewis et al.'s four-tier scheme — the estimate at
which the test just rejects red — is ``R + z_a\\sqrt{R(1-R)/n}`` (``R − …``
when lower is better; their Table 5: 0.247 at n = 200 for R = 20%, 0.641 at
n = 34 for R = 50%, 0.745 at n = 68 for R = 65%).

References
----------
Lewis, M., Bromley, K., Sutton, C. J., McCray, G., Myers, H. L. & Lancaster,
G. A. (2021). Determining sample size for progression criteria for pragmatic
pilot RCTs: the hypothesis test strikes back! *Pilot and Feasibility Studies*
7, 40.

Machin, D., Campbell, M. J., Tan, S. B. & Tan, S. H. (2009). *Sample Size Tables
for Clinical Studies*, 3rd ed. Wiley-Blackwell.

Ying, X. et al. (2025). Determining sample size for pilot trials: a tutorial.
*BMJ* 390, e083405.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from scipy import stats

from trialkit._version import __version__
from trialkit.errors import PowerError, Problem

__all__ = [
    "PROGRESSION_VARIANTS",
    "ProgressionSampleSize",
    "amber_cut_point",
    "exact_binomial_power",
    "progression_power_cc",
    "progression_sample_size",
]

Variant = Literal["lewis-2021", "normal-cc", "normal"]
PROGRESSION_VARIANTS: tuple[str, ...] = ("lewis-2021", "normal-cc", "normal")
"""Names of the sample-size variants (see the module notes)."""

RESULT_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgressionSampleSize:
    """Pilot size for one progression criterion.

    Attributes
    ----------
    red, green : float
        The red and green limits (proportions).
    direction : {"higher", "lower"}
        Which way is better (green above red: higher).
    alpha, power : float
        One-sided level and target power.
    variant : str
        Sample-size variant (``PROGRESSION_VARIANTS``).
    n_normal, n_continuity_corrected : float
        Unrounded ``n₀`` and ``n_cc`` (module notes).
    n_unclustered : int
        Individual-level size of the variant.
    design_effect : float
        ``1 + (m − 1)ρ`` (1 without clustering).
    n : int
        Size after the design effect.
    icc, cluster_size : float or None
    n_clusters : int or None
        ``⌈n/m⌉`` when a cluster size is given.
    power_normal_cc, power_exact : float
        Continuity-corrected normal and exact binomial power at ``n_unclustered``.
    critical_count : int
        The exact test's critical count ``c`` at ``n_unclustered``.
    amber_cut_point : float
        Estimate at which the normal test just rejects red, at ``n_unclustered``.
    """

    red: float
    green: float
    direction: str
    alpha: float
    power: float
    variant: str
    n_normal: float
    n_continuity_corrected: float
    n_unclustered: int
    design_effect: float
    n: int
    icc: float | None
    cluster_size: float | None
    n_clusters: int | None
    power_normal_cc: float
    power_exact: float
    critical_count: int
    amber_cut_point: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (unrounded numbers)."""
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "trialkit_version": __version__,
            "red": self.red,
            "green": self.green,
            "direction": self.direction,
            "alpha": self.alpha,
            "power": self.power,
            "variant": self.variant,
            "n": self.n,
            "n_unclustered": self.n_unclustered,
            "design_effect": self.design_effect,
            "icc": self.icc,
            "cluster_size": self.cluster_size,
            "n_clusters": self.n_clusters,
            "n_normal": self.n_normal,
            "n_continuity_corrected": self.n_continuity_corrected,
            "power_normal_cc": self.power_normal_cc,
            "power_exact": self.power_exact,
            "critical_count": self.critical_count,
            "amber_cut_point": self.amber_cut_point,
        }

    def summary(self) -> str:
        better = "higher" if self.direction == "higher" else "lower"
        op = "≤" if self.direction == "higher" else "≥"
        lines = [
            f"Progression criterion: red {self.red:g}, green {self.green:g} ({better} is better)",
            f"H0: p {op} {self.red:g} (red), one-sided alpha {self.alpha:g}, "
            f"power {self.power:g} at p = {self.green:g}; variant {self.variant}",
            f"n = {self.n_unclustered} (n0 = {self.n_normal:.6g}, "
            f"continuity-corrected {self.n_continuity_corrected:.6g})",
            f"achieved power at n = {self.n_unclustered}: {self.power_normal_cc:.4g} "
            f"(normal, corrected), {self.power_exact:.4g} (exact binomial, reject at "
            f"{self.critical_count} events)",
        ]
        if self.design_effect != 1.0 or self.cluster_size is not None:
            lines.append(
                f"design effect {self.design_effect:.6g} (ICC {self.icc:g}, cluster size "
                f"{self.cluster_size:g}): n = {self.n}"
                + (f", {self.n_clusters} clusters" if self.n_clusters is not None else "")
            )
        return "\n".join(lines)


def _problems(
    red: Any, green: Any, alpha: Any, power: Any, icc: Any, cluster_size: Any, variant: Any
) -> list[Problem]:
    out: list[Problem] = []

    def num(x: Any) -> bool:
        return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)

    for name, v in (("red", red), ("green", green)):
        if not num(v) or not 0.0 < v < 1.0:
            out.append(
                Problem(
                    path=name,
                    code="power.progression_limit",
                    message=f"`{name}` must be a proportion strictly between 0 and 1; got {v!r}.",
                    hint="Give the limit as a proportion, e.g. 0.5 for 50%.",
                )
            )
    if num(red) and num(green) and red == green:
        out.append(
            Problem(
                path="red,green",
                code="power.progression_equal",
                message=f"`red` and `green` must differ; both are {red!r}.",
                hint="Green above red means higher is better; below, lower is better.",
            )
        )
    if not num(alpha) or not 0.0 < alpha < 0.5:
        out.append(
            Problem(
                path="alpha",
                code="power.alpha",
                message=f"`alpha` must be in (0, 0.5); got {alpha!r}.",
                hint="The test is one-sided; 0.05 is usual.",
            )
        )
    if not num(power) or not 0.5 <= power < 1.0:
        out.append(
            Problem(
                path="power",
                code="power.target",
                message=f"`power` must be in [0.5, 1); got {power!r}.",
                hint="e.g. 0.9.",
            )
        )
    if (icc is None) != (cluster_size is None):
        out.append(
            Problem(
                path="icc,cluster_size",
                code="power.progression_cluster",
                message="`icc` and `cluster_size` must be given together.",
                hint="Give both for a cluster pilot (design effect 1 + (m − 1)ρ), or neither.",
            )
        )
    if icc is not None and (not num(icc) or not 0.0 <= icc < 1.0):
        out.append(
            Problem(
                path="icc",
                code="power.icc_range",
                message=f"`icc` must be in [0, 1); got {icc!r}.",
                hint="",
            )
        )
    if cluster_size is not None and (not num(cluster_size) or cluster_size < 1):
        out.append(
            Problem(
                path="cluster_size",
                code="power.cluster_size",
                message=f"`cluster_size` must be a number ≥ 1; got {cluster_size!r}.",
                hint="The mean number of individuals per cluster contributing to the criterion.",
            )
        )
    if variant not in PROGRESSION_VARIANTS:
        out.append(
            Problem(
                path="variant",
                code="power.progression_variant",
                message=f"`variant` must be one of {', '.join(PROGRESSION_VARIANTS)}; "
                f"got {variant!r}.",
                hint="",
            )
        )
    return out


def _z_sum(red: float, green: float, alpha: float, power: float) -> float:
    za = float(stats.norm.isf(alpha))
    zb = float(stats.norm.ppf(power))
    return za * math.sqrt(red * (1 - red)) + zb * math.sqrt(green * (1 - green))


def progression_power_cc(n: float, red: float, green: float, alpha: float) -> float:
    """Continuity-corrected normal power of the one-sided test of red at size ``n``.

    ``Φ((Δ√n − 1/(2√n) − z_a√(R(1−R)))/√(G(1−G)))`` with ``Δ = |G − R|``.
    """
    d = abs(green - red)
    za = float(stats.norm.isf(alpha))
    num = d * math.sqrt(n) - 0.5 / math.sqrt(n) - za * math.sqrt(red * (1 - red))
    return float(stats.norm.cdf(num / math.sqrt(green * (1 - green))))


def exact_binomial_power(n: int, red: float, green: float, alpha: float) -> tuple[float, int]:
    """Exact binomial power of the one-sided test of red, and its critical count.

    Higher is better (``green > red``): ``c`` is the smallest count with
    ``P(X ≥ c | n, R) ≤ α`` and the power is ``P(X ≥ c | n, G)``.  Lower is better:
    ``c`` is the largest count with ``P(X ≤ c | n, R) ≤ α`` and the power is
    ``P(X ≤ c | n, G)``.  When no count rejects, the power is 0 and ``c`` is
    ``n + 1`` (higher) or ``−1`` (lower).
    """
    if green > red:
        # P(X >= c | R) = sf(c - 1); decreasing in c
        c = int(stats.binom.isf(alpha, n, red)) + 1
        while c > 0 and stats.binom.sf(c - 2, n, red) <= alpha:
            c -= 1
        while c <= n and stats.binom.sf(c - 1, n, red) > alpha:
            c += 1
        if c > n:
            return 0.0, n + 1
        return float(stats.binom.sf(c - 1, n, green)), c
    c = int(stats.binom.ppf(alpha, n, red))
    while c >= 0 and stats.binom.cdf(c, n, red) > alpha:
        c -= 1
    while c + 1 <= n and stats.binom.cdf(c + 1, n, red) <= alpha:
        c += 1
    if c < 0:
        return 0.0, -1
    return float(stats.binom.cdf(c, n, green)), c


def amber_cut_point(n: float, red: float, alpha: float, *, higher_is_better: bool = True) -> float:
    """Estimate at which the one-sided normal test of red just rejects: ``R ± z_a√(R(1−R)/n)``."""
    za = float(stats.norm.isf(alpha))
    step = za * math.sqrt(red * (1 - red) / n)
    return red + step if higher_is_better else red - step


def progression_sample_size(
    red: float,
    green: float,
    *,
    alpha: float = 0.05,
    power: float = 0.9,
    icc: float | None = None,
    cluster_size: float | None = None,
    variant: Variant = "lewis-2021",
) -> ProgressionSampleSize:
    """Pilot size giving ``power`` to reject "red" when "green" holds (Lewis et al. 2021).

    Parameters
    ----------
    red, green : float
        Red and green limits, proportions in (0, 1).  Green above red: higher is
        better (``H0: p ≤ red``); green below red: lower is better (``H0: p ≥ red``).
    alpha : float
        One-sided significance level.
    power : float
        Target power at ``p = green``.
    icc, cluster_size : float, optional
        Cluster pilot: ICC ``ρ`` and mean cluster size ``m``; the size is multiplied
        by ``1 + (m − 1)ρ`` and the number of clusters ``⌈n/m⌉`` is reported.
    variant : {"lewis-2021", "normal-cc", "normal"}
        See the module notes; ``"lewis-2021"`` reproduces the paper's worked examples.

    Returns
    -------
    ProgressionSampleSize

    Raises
    ------
    PowerError
        Limits outside (0, 1) or equal, ``alpha``/``power`` out of range, an ICC
        without a cluster size (or the reverse), an unknown variant (exit code 1).

    Examples
    --------
    >>> progression_sample_size(0.5, 0.75).n
    34
    >>> progression_sample_size(0.4, 0.7, variant="normal").n
    22
    """
    probs = _problems(red, green, alpha, power, icc, cluster_size, variant)
    if probs:
        raise PowerError(f"invalid progression criterion ({len(probs)} problem(s))", probs)
    red, green, alpha, power = float(red), float(green), float(alpha), float(power)
    d = abs(green - red)
    z = _z_sum(red, green, alpha, power)
    n0 = (z / d) ** 2
    ncc = n0 / 4.0 * (1.0 + math.sqrt(1.0 + 2.0 / (n0 * d))) ** 2
    if variant == "lewis-2021":
        n_ind = max(1, math.floor(n0 + 1.0 / d + 0.5))
    elif variant == "normal-cc":
        n_ind = math.ceil(ncc - 1e-9)
    else:
        n_ind = math.ceil(n0 - 1e-9)
    de = 1.0
    n_total = n_ind
    n_clusters: int | None = None
    if icc is not None and cluster_size is not None:
        de = 1.0 + (float(cluster_size) - 1.0) * float(icc)
        n_total = math.ceil(n_ind * de - 1e-9)
        n_clusters = math.ceil(n_total / float(cluster_size) - 1e-9)
    pw_exact, crit = exact_binomial_power(n_ind, red, green, alpha)
    return ProgressionSampleSize(
        red=red,
        green=green,
        direction="higher" if green > red else "lower",
        alpha=alpha,
        power=power,
        variant=variant,
        n_normal=n0,
        n_continuity_corrected=ncc,
        n_unclustered=n_ind,
        design_effect=de,
        n=n_total,
        icc=None if icc is None else float(icc),
        cluster_size=None if cluster_size is None else float(cluster_size),
        n_clusters=n_clusters,
        power_normal_cc=progression_power_cc(n_ind, red, green, alpha),
        power_exact=pw_exact,
        critical_count=crit,
        amber_cut_point=amber_cut_point(n_ind, red, alpha, higher_is_better=green > red),
    )
