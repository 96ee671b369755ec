"""The unconditional (null) model: variance components and ICCs with profile-likelihood intervals.

The null model has an intercept and nested random intercepts only,

.. math::

    y_{i} = μ + u^{(1)}_{c_1(i)} + … + u^{(L)}_{c_L(i)} + e_i,\\qquad
    u^{(l)} \\sim N(0, ψ_l),\\; e \\sim N(0, σ^2),

fitted by REML with the engine every linear mixed model in trialkit uses.  The
ICC of level ``l`` is ``ρ_l = ψ_l/(ψ_1 + … + ψ_L + σ²)``; in the engine's
parameters ``θ_l = \\sqrt{ψ_l}/σ`` (lme4's relative standard deviations) it is
``ρ_l = θ_l^2/(1 + Σ_k θ_k^2)``, free of ``σ²``.

Profile-likelihood interval of an ICC
-------------------------------------
``d(θ)`` is the REML deviance profiled over ``σ²`` (and ``μ``).  For a value
``r`` of ``ρ_l`` the constraint fixes ``θ_l^2 = r(1 + Σ_{k≠l} θ_k^2)/(1 − r)``, so
the profile deviance is ``D_l(r) = \\min_{θ_{-l} ≥ 0} d(θ)`` under it (a
one-dimensional minimisation for two levels, none for one).  The ``1 − α``
interval is ``{r : D_l(r) − \\min d ≤ χ^2_{1,1−α}}`` (likelihood-ratio test
inversion; Pawitan 2001, ch. 2–3); when ``D_l(0)`` is within the bound the lower
limit is 0.  The same profile serves as an approximate likelihood for ``ρ_l``
(``exp{−(D_l(r) − \\min d)/2}``), stored on a grid for planning.

References
----------
Pawitan, Y. (2001). *In All Likelihood: Statistical Modelling and Inference Using
Likelihood*. Oxford University Press.

Bates, D., Mächler, M., Bolker, B. & Walker, S. (2015). Fitting linear
mixed-effects models using lme4. *Journal of Statistical Software* 67(1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

import trialkit.models._engine as _engine
from trialkit.errors import FitError, ModelSpecError

__all__ = ["IccProfile", "NullModelFit", "fit_null_model"]

_GRID = 121
_TAIL = 20.0  # profile grid reaches D − min d = 20 (likelihood ratio e^-10)


@dataclass(frozen=True, slots=True, kw_only=True)
class IccProfile:
    """Profile deviance of one level's ICC on a grid.

    ``icc``: grid of ``r`` from 0 up to where ``D(r) − min d`` reaches 20 (or
    close to 1); ``deviance``: ``D(r) − min d``; ``other_icc``: the other level's
    ICC at the constrained optimum (empty for one level).
    """

    level: str
    icc: tuple[float, ...]
    deviance: tuple[float, ...]
    other_icc: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "icc": list(self.icc),
            "deviance": list(self.deviance),
            "other_icc": list(self.other_icc),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NullModelFit:
    """Variance components and ICCs of the unconditional model (no raw data).

    Attributes
    ----------
    outcome : str
    levels : tuple of str
        Cluster columns, top level first.
    n_obs : int
    n_groups : dict
        Number of groups per level.
    intercept : float
    variance_components : dict
        ``ψ_l`` per level and ``residual``.
    icc : dict
        ``ρ_l`` per level.
    icc_conf_low, icc_conf_high : dict
        Profile-likelihood limits per level.
    conf_level : float
    theta : tuple of float
    deviance : float
        Minimum REML deviance (lme4's ``REMLcrit``).
    singular, converged : bool
    profiles : dict
        :class:`IccProfile` of the top level (empty with ``profile_grid=0``).
    """

    outcome: str
    levels: tuple[str, ...]
    n_obs: int
    n_groups: dict[str, int]
    intercept: float
    variance_components: dict[str, float]
    icc: dict[str, float]
    icc_conf_low: dict[str, float]
    icc_conf_high: dict[str, float]
    conf_level: float
    theta: tuple[float, ...]
    deviance: float
    singular: bool
    converged: bool
    profiles: dict[str, IccProfile]

    @property
    def total_variance(self) -> float:
        return float(sum(self.variance_components.values()))

    def to_dict(self, *, profiles: bool = False) -> dict[str, Any]:
        """JSON-ready dictionary; the profile grids only when ``profiles``."""
        d: dict[str, Any] = {
            "outcome": self.outcome,
            "levels": list(self.levels),
            "n_obs": self.n_obs,
            "n_groups": dict(self.n_groups),
            "intercept": self.intercept,
            "variance_components": dict(self.variance_components),
            "icc": dict(self.icc),
            "icc_conf_low": dict(self.icc_conf_low),
            "icc_conf_high": dict(self.icc_conf_high),
            "icc_interval": "profile likelihood (REML)",
            "conf_level": self.conf_level,
            "theta": list(self.theta),
            "deviance": self.deviance,
            "singular": self.singular,
            "converged": self.converged,
        }
        if profiles:
            d["profiles"] = {k: v.to_dict() for k, v in self.profiles.items()}
        return d


def _codes(data: pd.DataFrame, clusters: Sequence[str]) -> list[np.ndarray]:
    """Nested integer codes, top level first (a lower id is unique within its parent)."""
    out = []
    key = pd.Series([""] * len(data), index=data.index, dtype=object)
    for c in clusters:
        key = key + "\x1f" + data[c].astype(str)
        out.append(pd.factorize(key, sort=True)[0].astype(np.int64))
    return out


class _Profiler:
    """Profile deviance of the ICCs for one fitted null model."""

    def __init__(self, lay: _engine.Layout, st: _engine.Stats, theta_hat: np.ndarray) -> None:
        self.lay = lay
        self.st = st
        self.L = lay.L
        self.dmin = float(self.dev(theta_hat[None, :])[0])
        self.tmax = float(max(5.0, 20.0 * float(np.max(theta_hat, initial=0.0))))

    def dev(self, theta: np.ndarray) -> np.ndarray:
        """REML deviance at each row of ``theta`` (the one outcome, replicated)."""
        theta = np.atleast_2d(theta)
        R = theta.shape[0]
        st = _engine.Stats(
            p=self.st.p,
            W=np.broadcast_to(self.st.W, (R, *self.st.W.shape[1:])),
            xbar=np.broadcast_to(self.st.xbar, (R, *self.st.xbar.shape[1:])),
        )
        return _engine.evaluate(self.lay, st, theta, reml=True).dev

    def _theta_at(self, level: int, r: float, t_other: np.ndarray) -> np.ndarray:
        th = np.zeros((t_other.size, self.L))
        if self.L == 2:
            th[:, 1 - level] = t_other
        th[:, level] = np.sqrt(r * (1.0 + (t_other**2 if self.L == 2 else 0.0)) / (1.0 - r))
        return th

    def profile(self, level: int, r: float) -> tuple[float, float]:
        """``(D(r) − min d, other level's θ at the optimum)``."""
        if self.L == 1:
            return float(self.dev(self._theta_at(0, r, np.zeros(1)))[0]) - self.dmin, 0.0
        grid = self.tmax * np.linspace(0.0, 1.0, 41) ** 2
        d = self.dev(self._theta_at(level, r, grid))
        i = int(np.argmin(d))
        lo = grid[max(i - 1, 0)]
        hi = grid[min(i + 1, grid.size - 1)]
        best_t, best_d = float(grid[i]), float(d[i])
        if hi > lo:
            res = optimize.minimize_scalar(
                lambda t: float(self.dev(self._theta_at(level, r, np.array([t])))[0]),
                bounds=(lo, hi),
                method="bounded",
                options={"xatol": 1e-10},
            )
            if float(res.fun) < best_d:
                best_t, best_d = float(res.x), float(res.fun)
        return best_d - self.dmin, best_t

    def other_icc(self, level: int, r: float, t_other: float) -> float:
        if self.L == 1:
            return float("nan")
        th = self._theta_at(level, r, np.array([t_other]))[0]
        return float(th[1 - level] ** 2 / (1.0 + np.sum(th**2)))

    def profile_grid(self, level: int, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``D(r) − min d`` and the other level's ICC on a grid of ``r`` (one batch).

        The inner minimisation is a grid over the other θ (61 points, denser near 0)
        refined by the parabola through the best point and its neighbours.
        """
        G = grid.size
        if self.L == 1:
            th = np.sqrt(grid / (1.0 - grid))[:, None]
            return self.dev(th) - self.dmin, np.full(G, np.nan)
        t = self.tmax * np.linspace(0.0, 1.0, 61) ** 2
        T = t.size
        th = np.zeros((G, T, 2))
        th[:, :, 1 - level] = t[None, :]
        th[:, :, level] = np.sqrt(grid[:, None] * (1.0 + t[None, :] ** 2) / (1.0 - grid[:, None]))
        d = self.dev(th.reshape(G * T, 2)).reshape(G, T)
        i = np.clip(np.argmin(d, axis=1), 1, T - 2)
        rows = np.arange(G)
        x0, x1, x2 = t[i - 1], t[i], t[i + 1]
        y0, y1, y2 = d[rows, i - 1], d[rows, i], d[rows, i + 1]
        best = np.minimum(np.minimum(y0, y1), y2)
        t_best = np.choose(np.argmin(np.stack([y0, y1, y2]), axis=0), [x0, x1, x2])
        # vertex of the parabola through the three points (when it opens upwards)
        den = (x0 - x1) * (x0 - x2) * (x1 - x2)
        a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / den
        b = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / den
        up = a > 0
        xv = np.where(up, np.clip(-b / np.where(up, 2 * a, 1.0), x0, x2), x1)
        thv = np.zeros((G, 2))
        thv[:, 1 - level] = xv
        thv[:, level] = np.sqrt(grid * (1.0 + xv**2) / (1.0 - grid))
        dv = self.dev(thv)
        better = up & (dv < best)
        best = np.where(better, dv, best)
        t_best = np.where(better, xv, t_best)
        other = np.array(
            [self.other_icc(level, float(r), float(tb)) for r, tb in zip(grid, t_best, strict=True)]
        )
        return np.maximum(best - self.dmin, 0.0), other

    def interval(self, level: int, r_hat: float, crit: float) -> tuple[float, float]:
        def f(r: float) -> float:
            return self.profile(level, r)[0] - crit

        lo = 0.0 if f(0.0) <= 0 else float(optimize.brentq(f, 0.0, r_hat, xtol=1e-12))
        top = r_hat
        for _ in range(60):
            top = 1.0 - (1.0 - top) / 2.0
            if f(top) > 0:
                break
        else:  # pragma: no cover - likelihood flat up to 1
            return lo, 1.0
        return lo, float(optimize.brentq(f, r_hat, top, xtol=1e-12))


def fit_null_model(
    data: pd.DataFrame,
    *,
    outcome: str,
    clusters: Sequence[str],
    alpha: float = 0.05,
    profile_grid: int = _GRID,
) -> NullModelFit:
    """Fit the unconditional model by REML; ICCs with profile-likelihood intervals.

    Parameters
    ----------
    data : DataFrame
        One row per individual; rows with a missing outcome are left out.
    outcome : str
        Outcome column.
    clusters : sequence of str
        One or two nested cluster columns, top level first (e.g.
        ``["la_id", "keyworker_id"]``).
    alpha : float
        1 − confidence level of the intervals.
    profile_grid : int
        Points of the top level's stored profile (0: none).

    Returns
    -------
    NullModelFit

    Raises
    ------
    ModelSpecError
        Unknown columns, not one or two cluster levels, fewer than two top-level
        clusters or no variation in the outcome (exit code 1).
    FitError
        The REML fit failed (exit code 3).
    """
    missing = [c for c in (outcome, *clusters) if c not in data.columns]
    if missing:
        raise ModelSpecError.from_problem(
            path="data",
            code="fit.column_missing",
            message=f"column {missing[0]!r} is not in the data.",
            hint=f"columns present: {', '.join(map(str, data.columns))}.",
        )
    if not 1 <= len(clusters) <= 2:
        raise ModelSpecError.from_problem(
            path="clusters",
            code="fit.null_levels",
            message=f"the null model takes one or two cluster levels; got {len(clusters)}.",
            hint="e.g. clusters=['la_id', 'keyworker_id'].",
        )
    if not 0.0 < alpha < 1.0:
        raise ModelSpecError.from_problem(
            path="alpha", code="fit.alpha", message=f"alpha must be in (0, 1); got {alpha!r}."
        )
    y_all = pd.to_numeric(data[outcome], errors="coerce")
    keep = y_all.notna() & data[list(clusters)].notna().all(axis=1)
    df = data.loc[keep]
    y = y_all[keep].to_numpy(dtype=float)
    codes = _codes(df, clusters)
    n_top = int(codes[0].max()) + 1 if y.size else 0
    if n_top < 2 or y.size < 3 or float(np.ptp(y)) == 0.0:
        raise ModelSpecError.from_problem(
            path=outcome,
            code="fit.null_degenerate",
            message=(
                f"the null model of {outcome!r} needs at least two {clusters[0]} groups and "
                f"a varying outcome; got {y.size} rows in {n_top} groups."
            ),
            hint="check the outcome has data at this timepoint.",
        )
    lay = _engine.make_layout(codes)
    X = np.ones((y.size, 1))
    try:
        fitted = _engine.fit_lmm(lay, X, y, reml=True)
    except (np.linalg.LinAlgError, ValueError) as exc:  # pragma: no cover - degenerate data
        raise FitError.from_problem(
            path=outcome,
            code="fit.null_failed",
            message=f"the null model of {outcome!r} could not be fitted: {exc}",
            hint="",
        ) from exc
    theta = np.asarray(fitted.theta[0], dtype=float)
    psi = np.asarray(fitted.psi[0], dtype=float)
    total = float(psi.sum())
    names = list(clusters)
    prof = _Profiler(lay, _engine.make_stats(lay, X, y), theta)
    crit = float(stats.chi2.isf(alpha, 1))
    icc = {c: float(psi[l] / total) for l, c in enumerate(names)}
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    profiles: dict[str, IccProfile] = {}
    for l, c in enumerate(names):
        lo[c], hi[c] = prof.interval(l, icc[c], crit)
    if profile_grid:  # the top level's profile, for planning
        top = names[0]
        _, r_top = prof.interval(0, icc[top], _TAIL)
        grid = np.linspace(0.0, min(r_top, 1.0 - 1e-9), profile_grid)
        devs, others = prof.profile_grid(0, grid)
        profiles[top] = IccProfile(
            level=top,
            icc=tuple(float(v) for v in grid),
            deviance=tuple(float(v) for v in devs),
            other_icc=tuple(float(v) for v in others) if len(names) == 2 else (),
        )
    vc = {c: float(psi[l]) for l, c in enumerate(names)}
    vc["residual"] = float(psi[-1])
    return NullModelFit(
        outcome=outcome,
        levels=tuple(names),
        n_obs=int(y.size),
        n_groups={c: int(codes[l].max()) + 1 for l, c in enumerate(names)},
        intercept=float(fitted.beta[0][0]),
        variance_components=vc,
        icc=icc,
        icc_conf_low=lo,
        icc_conf_high=hi,
        conf_level=1.0 - alpha,
        theta=tuple(float(t) for t in theta),
        deviance=prof.dmin,
        singular=bool(np.any(theta < 1e-4)),
        converged=bool(fitted.converged[0]),
        profiles=profiles,
    )
