"""Fast, vectorised hierarchical outcome generator for power simulation.

One *design* (the cluster structure, sizes and allocation) is fixed; each
replicate draws new random effects, covariates and residuals from its own seed,
so replicate ``r`` is the same whatever batch or worker it is generated in.
Outcomes come back as ``(R, n)`` arrays, one row per replicate.

Notes
-----
Continuous outcomes, in standard-deviation units of the total variance (3 levels;
drop the middle level for 2):

.. math::

    y_{kji} = β T_k + \\sqrt{ρ_3}\\,a_k + \\sqrt{ρ_2}\\,b_{kj}
             + \\sqrt{1-ρ_2-ρ_3}\\,c_{kji},

where each level's standard normal term is split into a covariate and a
residual, ``a_k = \\sqrt{R_3^2}\\,x^{(3)}_k + \\sqrt{1-R_3^2}\\,u_k`` (likewise
``b`` with ``R_2^2`` and ``c`` with ``R_1^2``), so the covariate ``x^{(l)}``
explains the share ``R_l^2`` of level ``l``'s variance, as in the PowerUp!
formulas.  The covariate columns are returned only for levels with ``R² > 0``.

Binary outcomes: ``y ~ Bernoulli(expit(logit(π_arm) + σ_3 u_k + σ_2 v_kj))``
with the latent variances chosen so that the *proportion-scale* ICCs match
those requested (inverting :func:`trialkit.power.analytic.binary_icc_from_latent`
at the mean prevalence).  The intercept is the conditional ``logit(π_arm)``, so
the marginal prevalence is pulled slightly towards 1/2 when the ICC is large.

Unequal cluster sizes: top-level cluster sizes (2 levels: units per cluster;
3 levels: units per subcluster within each cluster) are drawn once per design
from a gamma distribution with the requested mean and coefficient of variation,
rounded, at least 1 (2 per cluster in 2 levels).  The allocation puts
``round(P·K)`` clusters in the intervention arm, chosen at random once per design.

Random numbers: replicate ``r`` uses ``numpy.random.default_rng(child_r)``
with ``child_r = SeedSequence(seed).spawn(R)[r]`` (spawn key ``(r,)``); the
design (sizes, allocation) uses ``SeedSequence(seed, spawn_key=(2**31,))``,
which no replicate can share.  Each replicate draws its normals in one call,
in a fixed order, so its data do not depend on the batch it is generated in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

__all__ = [
    "DESIGN_SPAWN_KEY",
    "HierarchicalLayout",
    "SimulatedOutcomes",
    "make_layout",
    "replicate_seeds",
    "simulate_outcomes",
]

DESIGN_SPAWN_KEY = 2**31


def replicate_seeds(seed: int, reps: int) -> list[np.random.SeedSequence]:
    """Per-replicate seed sequences spawned from the master ``seed``."""
    return np.random.SeedSequence(int(seed)).spawn(int(reps))


@dataclass(frozen=True, slots=True, kw_only=True)
class HierarchicalLayout:
    """Fixed structure of a simulated trial (sorted by cluster, then subcluster).

    Attributes
    ----------
    levels : int
    cluster : ndarray of int, shape (n,)
        Top-level cluster index of every unit (0..K−1, non-decreasing).
    subcluster : ndarray of int, shape (n,)
        Global subcluster index (3 levels) or a copy of ``cluster`` (2 levels).
    treat_cluster : ndarray of float, shape (K,)
        1.0 for intervention clusters.
    cluster_start, subcluster_start : ndarray of int
        First unit of each cluster / subcluster (for ``np.add.reduceat``).
    subcluster_cluster : ndarray of int
        Cluster of each subcluster.
    """

    levels: int
    cluster: np.ndarray
    subcluster: np.ndarray
    treat_cluster: np.ndarray
    cluster_start: np.ndarray
    subcluster_start: np.ndarray
    subcluster_cluster: np.ndarray

    @property
    def n(self) -> int:
        return int(self.cluster.size)

    @property
    def n_clusters(self) -> int:
        return int(self.treat_cluster.size)

    @property
    def n_subclusters(self) -> int:
        return int(self.subcluster_start.size)

    @property
    def treat(self) -> np.ndarray:
        """Unit-level treatment indicator (float)."""
        return self.treat_cluster[self.cluster]

    @property
    def cluster_sizes(self) -> np.ndarray:
        return np.diff(np.append(self.cluster_start, self.n))


def _sizes(rng: np.random.Generator, k: int, mean: float, cv: float, minimum: int) -> np.ndarray:
    if cv <= 0:
        return np.full(k, max(minimum, int(round(mean))), dtype=np.int64)
    shape = 1.0 / cv**2
    draw = rng.gamma(shape, mean / shape, size=k)
    return np.maximum(minimum, np.rint(draw)).astype(np.int64)


def make_layout(
    *,
    levels: int,
    clusters: int,
    units_per_cluster: float | None = None,
    subclusters_per_cluster: float | None = None,
    units_per_subcluster: float | None = None,
    treated_fraction: float = 0.5,
    cv: float = 0.0,
    seed: int = 0,
) -> HierarchicalLayout:
    """Build the fixed cluster structure and allocation of a simulated design.

    Parameters
    ----------
    levels : {2, 3}
    clusters : int
    units_per_cluster : float
        2 levels: mean units per cluster.
    subclusters_per_cluster, units_per_subcluster : float
        3 levels: subclusters per cluster (rounded) and mean units per subcluster.
    treated_fraction : float
    cv : float
        Coefficient of variation of the cluster sizes (see module notes).
    seed : int
        Master seed; the design uses its own spawned child.

    Returns
    -------
    HierarchicalLayout
    """
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(DESIGN_SPAWN_KEY,)))
    k = int(clusters)
    n_treat = int(round(treated_fraction * k))
    n_treat = min(max(n_treat, 1), k - 1)
    treat_cluster = np.zeros(k)
    treat_cluster[rng.permutation(k)[:n_treat]] = 1.0
    if levels == 2:
        sizes = _sizes(rng, k, float(units_per_cluster or 1), cv, 2 if cv > 0 else 1)
        cluster = np.repeat(np.arange(k), sizes)
        sub = cluster.copy()
        sub_cluster = np.arange(k)
    else:
        j = max(1, int(round(float(subclusters_per_cluster or 1))))
        n_per = _sizes(rng, k, float(units_per_subcluster or 1), cv, 1)
        sub_sizes = np.repeat(n_per, j)
        sub_cluster = np.repeat(np.arange(k), j)
        sub = np.repeat(np.arange(k * j), sub_sizes)
        cluster = sub_cluster[sub]
    cstart = np.flatnonzero(np.r_[True, cluster[1:] != cluster[:-1]])
    sstart = np.flatnonzero(np.r_[True, sub[1:] != sub[:-1]])
    return HierarchicalLayout(
        levels=int(levels),
        cluster=cluster,
        subcluster=sub,
        treat_cluster=treat_cluster,
        cluster_start=cstart,
        subcluster_start=sstart,
        subcluster_cluster=sub_cluster,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedOutcomes:
    """A batch of simulated replicates of one design.

    Attributes
    ----------
    layout : HierarchicalLayout
    y : ndarray, shape (R, n)
        Outcomes, one row per replicate.
    covariates : dict of str -> ndarray, shape (R, n)
        ``x_unit``, ``x_subcluster``, ``x_cluster`` (only those with R² > 0).
    replicate : ndarray of int, shape (R,)
        Replicate indices (positions in the master seed's spawn).
    """

    layout: HierarchicalLayout
    y: np.ndarray
    covariates: dict[str, np.ndarray]
    replicate: np.ndarray

    def frame(self, i: int) -> pd.DataFrame:
        """Replicate ``i`` (row of the batch) as a tidy data frame for ``trialkit fit``.

        Columns: ``cluster``, ``subcluster`` (3 levels), ``unit``, ``treatment``
        (0/1), ``y`` and the covariate columns.
        """
        lay = self.layout
        data: dict[str, np.ndarray] = {"cluster": lay.cluster}
        if lay.levels == 3:
            data["subcluster"] = lay.subcluster
        data["unit"] = np.arange(lay.n)
        data["treatment"] = lay.treat.astype(np.int64)
        data["y"] = self.y[i]
        for name, arr in self.covariates.items():
            data[name] = arr[i]
        return pd.DataFrame(data)


def _latent_variance(icc_p: float, prevalence: float) -> float:
    """Latent logit-scale variance whose proportion-scale ICC is ``icc_p``."""
    from trialkit.power.analytic import binary_icc_from_latent

    if icc_p <= 0:
        return 0.0
    lat = optimize.brentq(
        lambda r: binary_icc_from_latent(r, prevalence) - icc_p, 0.0, 0.999, xtol=1e-12
    )
    return (math.pi**2 / 3) * lat / (1 - lat)


def simulate_outcomes(
    layout: HierarchicalLayout,
    seeds: Sequence[np.random.SeedSequence],
    *,
    effect: float = 0.0,
    icc_cluster: float = 0.0,
    icc_subcluster: float = 0.0,
    r2_unit: float = 0.0,
    r2_subcluster: float = 0.0,
    r2_cluster: float = 0.0,
    outcome: str = "continuous",
    proportions: tuple[float, float] | None = None,
    replicate: Sequence[int] | None = None,
) -> SimulatedOutcomes:
    """Simulate one replicate per seed on a fixed layout.

    Parameters
    ----------
    layout : HierarchicalLayout
    seeds : sequence of SeedSequence
        One per replicate (see :func:`replicate_seeds`).
    effect : float
        Treatment effect in SD units (continuous outcomes).
    icc_cluster, icc_subcluster : float
        Top- and middle-level ICCs (proportion scale for binary outcomes).
    r2_unit, r2_subcluster, r2_cluster : float
        Share of each level's variance explained by its covariate.
    outcome : {"continuous", "binary"}
    proportions : (float, float)
        Binary: control and intervention prevalences.
    replicate : sequence of int, optional
        Replicate indices to record (default ``0..R−1``).

    Returns
    -------
    SimulatedOutcomes
    """
    k, s, n = layout.n_clusters, layout.n_subclusters, layout.n
    three = layout.levels == 3
    reps = len(seeds)
    # one call per replicate: [u (k), v (s), e (n), xc (k), xs (s), xu (n)]
    width = 2 * (k + s + n)
    draws = np.empty((reps, width))
    unif = np.empty((reps, n)) if outcome == "binary" else None
    for i, ss in enumerate(seeds):
        rng = np.random.default_rng(ss)
        draws[i] = rng.standard_normal(width)
        if unif is not None:
            unif[i] = rng.random(n)
    o = 0
    u = draws[:, o : o + k]
    o += k
    v = draws[:, o : o + s]
    o += s
    e = draws[:, o : o + n]
    o += n
    xc = draws[:, o : o + k]
    o += k
    xs = draws[:, o : o + s]
    o += s
    xu = draws[:, o : o + n]
    cl, sc = layout.cluster, layout.subcluster
    cov: dict[str, np.ndarray] = {}
    if outcome == "binary":
        if proportions is None:
            raise ValueError("binary outcomes need proportions")
        p0, p1 = proportions
        pbar = 0.5 * (p0 + p1)
        s3 = math.sqrt(_latent_variance(icc_cluster, pbar))
        s2 = math.sqrt(_latent_variance(icc_subcluster, pbar)) if three else 0.0
        base = np.where(layout.treat_cluster > 0, special.logit(p1), special.logit(p0))
        eta = (base + s3 * u)[:, cl]
        if three:
            eta = eta + (s2 * v)[:, sc]
        y = (unif < special.expit(eta)).astype(float)  # type: ignore[operator]
    else:
        a = math.sqrt(r2_cluster) * xc + math.sqrt(1 - r2_cluster) * u
        c = math.sqrt(r2_unit) * xu + math.sqrt(1 - r2_unit) * e
        rho1 = 1 - icc_cluster - (icc_subcluster if three else 0.0)
        top = effect * layout.treat_cluster + math.sqrt(icc_cluster) * a
        y = top[:, cl] + math.sqrt(rho1) * c
        if three:
            b = math.sqrt(r2_subcluster) * xs + math.sqrt(1 - r2_subcluster) * v
            y = y + (math.sqrt(icc_subcluster) * b)[:, sc]
        if r2_unit > 0:
            cov["x_unit"] = xu
        if three and r2_subcluster > 0:
            cov["x_subcluster"] = xs[:, sc]
        if r2_cluster > 0:
            cov["x_cluster"] = xc[:, cl]
    rep = np.arange(reps) if replicate is None else np.asarray(replicate, dtype=np.int64)
    return SimulatedOutcomes(layout=layout, y=y, covariates=cov, replicate=rep)
