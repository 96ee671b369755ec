"""Power by simulation: generate replicates, analyse each, count rejections.

Each replicate ``r`` has its own seed, the ``r``-th child spawned from the
master seed (:func:`numpy.random.SeedSequence.spawn`), so results are identical
whatever the backend, worker count or chunking.  Every scenario of a grid uses
the same master seed (common random numbers: curves are smoother and
differences between scenarios are estimated more precisely).  Replicates are
analysed in aligned blocks of ``ANALYSIS_BLOCK`` (125) and tasks hold whole
blocks, so even the rounding of the batched fits is the same on every backend
(given the same numpy/BLAS build on every worker).

Analyses (``method``):

``cluster-level``
    t-test on the unweighted cluster means of the top-level clusters with
    ``K − 2`` df (Hayes & Moulton 2017), computed batched over replicates; this
    is the cluster-means analysis of ``trialkit fit --method cluster-level``
    without covariates.  With covariates it is the cluster-level ANCOVA
    (cluster means regressed on treatment and the cluster means of the
    covariates, ``K − 2 − g`` df).
``lmm``
    REML linear mixed model with nested random intercepts and Kenward–Roger
    (default) or other denominator df, through the batched engine of
    :mod:`trialkit.models` (the same code path as ``trialkit fit``).

Failed fits (non-finite estimate, SE or p-value) and singular fits are kept:
they count as replicates, a failed fit counts as "not rejected", and both are
reported on the result and in its summary.
"""

from __future__ import annotations

import itertools
import math
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from trialkit._version import __version__
from trialkit.errors import PowerError, Problem
from trialkit.methods import DF_METHODS, POWER_METHODS
from trialkit.models.inference import t_inference
from trialkit.power.analytic import CRTDesign, _clean, analytic_power
from trialkit.power.backends import LocalBackend, Progress, chunk_indices
from trialkit.power.dgp import (
    HierarchicalLayout,
    SimulatedOutcomes,
    make_layout,
    replicate_seeds,
    simulate_outcomes,
)

RESULT_SCHEMA_VERSION = 1
#: Replicates are analysed in aligned blocks of this many (replicates 0–124, 125–249, ...).
#: A batched fit's rounding can depend on which replicates share the batch, so fixing the
#: blocks makes every result bit-for-bit independent of chunk size, backend and workers.
ANALYSIS_BLOCK = 125

__all__ = [
    "PowerSimulation",
    "Scenario",
    "SimulationResult",
    "analyse_batch",
    "load_scenarios",
    "simulate_power",
    "simulate_power_grid",
]


# ---------------------------------------------------------------------- scenario
@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One simulation scenario.

    Parameters
    ----------
    design : CRTDesign
        Design and outcome parameters (as for the analytic functions).
    effect : float
        True effect in SD units (continuous); binary outcomes use the proportions.
    reps : int
    seed : int
        Master seed.
    method : {"auto", "lmm", "cluster-level"}
        ``lmm`` (the primary analysis of ``trialkit fit``) or ``cluster-level`` (the
        only choice for binary outcomes); ``auto`` (default) picks ``lmm`` for
        continuous and ``cluster-level`` for binary outcomes.
    df_method : str
        Denominator df for ``lmm`` (default Kenward–Roger).
    alpha : float
    two_tailed : bool
    name : str
    """

    design: CRTDesign
    effect: float = 0.0
    reps: int = 1000
    seed: int = 1
    method: str = "auto"
    df_method: str = "kenward-roger"
    alpha: float = 0.05
    two_tailed: bool = True
    name: str = ""

    def __post_init__(self) -> None:
        if self.method in ("auto", "", None):
            auto = "cluster-level" if self.design.outcome == "binary" else "lmm"
            object.__setattr__(self, "method", auto)

    @property
    def true_effect(self) -> float:
        if self.design.outcome == "binary":
            p0, p1 = self.design.proportions  # type: ignore[misc]
            return float(p1 - p0)
        return float(self.effect)

    def problems(self) -> list[Problem]:
        out = list(self.design.problems())
        if self.design.outcome == "binary" and self.design.proportions is not None:
            if math.isnan(self.design.proportions[1]):
                out.append(
                    Problem(
                        path="proportions",
                        code="power.proportions_missing",
                        message="`p_intervention` must be given to simulate.",
                        hint="",
                    )
                )
        if not isinstance(self.reps, int) or self.reps < 1:
            out.append(
                Problem(
                    path="reps",
                    code="power.reps",
                    message=f"`reps` must be a whole number ≥ 1; got {self.reps!r}.",
                    hint="1,000 replicates give a Monte Carlo SE of at most 0.016.",
                )
            )
        if not isinstance(self.seed, int) or self.seed < 0:
            out.append(
                Problem(
                    path="seed",
                    code="power.seed",
                    message=f"`seed` must be a whole number ≥ 0; got {self.seed!r}.",
                    hint="",
                )
            )
        if self.method not in POWER_METHODS:
            out.append(
                Problem(
                    path="method",
                    code="power.method",
                    message=f"`method` must be one of {', '.join(POWER_METHODS)}; got {self.method!r}.",
                    hint="",
                )
            )
        if self.df_method not in DF_METHODS:
            out.append(
                Problem(
                    path="df_method",
                    code="power.df_method",
                    message=f"`df_method` must be one of {', '.join(DF_METHODS)}; "
                    f"got {self.df_method!r}.",
                    hint="",
                )
            )
        if not isinstance(self.effect, int | float) or not math.isfinite(self.effect):
            out.append(
                Problem(
                    path="effect",
                    code="power.effect_missing",
                    message=f"`effect` must be a finite number; got {self.effect!r}.",
                    hint="",
                )
            )
        if not isinstance(self.alpha, int | float) or not 0 < self.alpha < 1:
            out.append(
                Problem(
                    path="alpha",
                    code="power.alpha",
                    message=f"`alpha` must be strictly between 0 and 1; got {self.alpha!r}.",
                    hint="",
                )
            )
        return [replace(p, path=f"{self.name}.{p.path}" if self.name else p.path) for p in out]

    def validate(self) -> Scenario:
        probs = self.problems()
        if probs:
            raise PowerError(
                f"invalid scenario {self.name or ''} ({len(probs)} problem(s))".replace("  ", " "),
                probs,
            )
        return self

    def layout(self) -> HierarchicalLayout:
        d = self.design
        return make_layout(
            levels=d.levels,
            clusters=int(d.clusters or 0),
            units_per_cluster=d.units_per_cluster,
            subclusters_per_cluster=d.subclusters_per_cluster,
            units_per_subcluster=d.units_per_subcluster,
            treated_fraction=d.treated_fraction,
            cv=d.cv,
            seed=self.seed,
        )

    def generate(self, replicates: Sequence[int]) -> SimulatedOutcomes:
        """Simulate the given replicate indices (seeds spawned from ``seed``)."""
        seeds = replicate_seeds(self.seed, self.reps)
        d = self.design
        return simulate_outcomes(
            self.layout(),
            [seeds[i] for i in replicates],
            effect=self.effect,
            icc_cluster=d.icc_cluster,
            icc_subcluster=d.icc_subcluster,
            r2_unit=d.r2_unit,
            r2_subcluster=d.r2_subcluster,
            r2_cluster=d.r2_cluster,
            outcome=d.outcome,
            proportions=d.proportions,
            replicate=list(replicates),
        )

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["design"] = self.design.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scenario:
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        kw["design"] = CRTDesign.from_dict(d["design"])
        return cls(**kw)


# ---------------------------------------------------------------------- analysis
def _cluster_means(lay: HierarchicalLayout, a: np.ndarray) -> np.ndarray:
    return np.add.reduceat(a, lay.cluster_start, axis=1) / lay.cluster_sizes


def _cluster_level(
    batch: SimulatedOutcomes, alpha: float, two_tailed: bool
) -> dict[str, np.ndarray]:
    lay = batch.layout
    ybar = _cluster_means(lay, batch.y)  # (R, K)
    t = lay.treat_cluster
    k = t.size
    xcols = [_cluster_means(lay, batch.covariates[c]) for c in sorted(batch.covariates)]
    if not xcols:
        # Welch-free pooled two-sample t-test on cluster means, K − 2 df.
        n1, n0 = t.sum(), k - t.sum()
        m1 = ybar[:, t > 0].mean(axis=1)
        m0 = ybar[:, t == 0].mean(axis=1)
        ss = ((ybar[:, t > 0] - m1[:, None]) ** 2).sum(axis=1) + (
            (ybar[:, t == 0] - m0[:, None]) ** 2
        ).sum(axis=1)
        df = float(k - 2)
        est = m1 - m0
        se = np.sqrt(ss / df * (1 / n1 + 1 / n0))
    else:
        reps = ybar.shape[0]
        x = np.empty((reps, k, 2 + len(xcols)))
        x[:, :, 0] = 1.0
        x[:, :, 1] = t
        for j, c in enumerate(xcols):
            x[:, :, 2 + j] = c
        df = float(k - x.shape[2])
        xtx = np.einsum("rki,rkj->rij", x, x)
        xty = np.einsum("rki,rk->ri", x, ybar)
        beta = np.linalg.solve(xtx, xty[:, :, None])[:, :, 0]
        resid = ybar - np.einsum("rkj,rj->rk", x, beta)
        s2 = (resid**2).sum(axis=1) / df
        inv = np.linalg.inv(xtx)
        est = beta[:, 1]
        se = np.sqrt(s2 * inv[:, 1, 1])
    _stat, p, low, high = t_inference(est, se, df, alpha, two_sided=two_tailed)
    return {
        "estimate": est,
        "std_error": se,
        "df": np.full(est.shape, df),
        "p_value": p,
        "conf_low": low,
        "conf_high": high,
        "singular": np.zeros(est.shape, dtype=bool),
    }


def _model_frame(batch: SimulatedOutcomes) -> Any:
    """``trialkit fit``'s model frame for replicate 0 (layout, columns, cluster codes)."""
    from trialkit.models.design import build_model_frame

    clusters = ["cluster", "subcluster"] if batch.layout.levels == 3 else ["cluster"]
    return build_model_frame(
        batch.frame(0),
        outcome="y",
        treatment="treatment",
        covariates=sorted(batch.covariates),
        clusters=clusters,
    )


def _lmm(batch: SimulatedOutcomes, scenario: Scenario) -> dict[str, np.ndarray]:
    """REML mixed model for every replicate through the analysis engine's batched path.

    The model frame (fixed-effects columns, nested cluster codes, cluster-level
    columns) is built by :func:`trialkit.models.design.build_model_frame`, as
    ``trialkit fit`` builds it; the replicates share its layout and are fitted
    together by :func:`trialkit.models._engine.fit_lmm_batch`, whose results
    equal one-at-a-time fits (tested in ``tests/power/test_simulation.py``).
    If the batch as a whole raises, each replicate is refitted alone and the
    ones that still fail are counted as failed.
    """
    if scenario.design.outcome == "binary":
        raise PowerError.from_problem(
            path="method",
            code="power.lmm_binary",
            message="`method = 'lmm'` is for continuous outcomes; the outcome is binary.",
            hint="Use method = 'cluster-level' for binary outcomes.",
        )
    try:
        from trialkit.models import _engine
    except ImportError as exc:  # pragma: no cover - the analysis package ships with trialkit
        raise PowerError.from_problem(
            path="method",
            code="power.lmm_unavailable",
            message="`method = 'lmm'` needs trialkit's mixed-model engine, which is missing.",
            hint="Use method = 'cluster-level'.",
        ) from exc
    frame = _model_frame(batch)
    n = batch.layout.n
    if frame.n_obs != n:  # pragma: no cover - simulated data have no missing values
        raise PowerError.from_problem(
            path="data", code="power.frame_rows", message="model frame dropped rows."
        )
    lay = _engine.make_layout(frame.cluster_codes)
    names = list(frame.column_names)
    covs = sorted(batch.covariates)
    if covs:
        reps = batch.y.shape[0]
        X = np.empty((reps, n, len(names)))
        X[:] = frame.X
        for name in covs:
            X[:, :, names.index(name)] = batch.covariates[name]
    else:
        X = frame.X
    kw: dict[str, Any] = {
        "df_method": scenario.df_method,
        "alpha": scenario.alpha,
        "cluster_level_rank": int(sum(frame.cluster_level_columns)),
    }
    keys = ("estimate", "std_error", "df", "statistic", "p_value", "conf_low", "conf_high")
    try:
        with np.errstate(all="ignore"):
            res = _engine.fit_lmm_batch(lay, X, batch.y, contrast=frame.treatment_index, **kw)
        out = {k: np.asarray(res[k], dtype=float) for k in keys}
        out["singular"] = np.asarray(res["singular"], dtype=bool)
        out["failed"] = ~np.asarray(res["converged"], dtype=bool)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError):
        out = _lmm_one_by_one(_engine, lay, X, batch.y, frame.treatment_index, kw)
    if not scenario.two_tailed:
        out["p_value"] = t_inference(
            out["estimate"], out["std_error"], out["df"], scenario.alpha, two_sided=False
        )[1]
    return out


def _lmm_one_by_one(
    engine: Any, lay: Any, X: np.ndarray, Y: np.ndarray, contrast: int, kw: dict[str, Any]
) -> dict[str, np.ndarray]:
    reps = Y.shape[0]
    keys = ("estimate", "std_error", "df", "statistic", "p_value", "conf_low", "conf_high")
    out = {k: np.full(reps, np.nan) for k in keys}
    out["singular"] = np.zeros(reps, dtype=bool)
    out["failed"] = np.zeros(reps, dtype=bool)
    for r in range(reps):
        xr = X[r : r + 1] if X.ndim == 3 else X
        try:
            with np.errstate(all="ignore"):
                res = engine.fit_lmm_batch(lay, xr, Y[r : r + 1], contrast=contrast, **kw)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            out["failed"][r] = True
            continue
        for k in keys:
            out[k][r] = float(res[k][0])
        out["singular"][r] = bool(res["singular"][0])
        out["failed"][r] = not bool(res["converged"][0])
    return out


def analyse_batch(batch: SimulatedOutcomes, scenario: Scenario) -> dict[str, np.ndarray]:
    """Analyse every replicate of ``batch`` with the scenario's method.

    Returns
    -------
    dict of str -> ndarray
        ``estimate``, ``std_error``, ``df``, ``p_value``, ``conf_low``, ``conf_high``,
        ``singular`` (bool) and ``failed`` (bool), one entry per replicate.
    """
    if scenario.method == "lmm":
        out = _lmm(batch, scenario)
    else:
        out = _cluster_level(batch, scenario.alpha, scenario.two_tailed)
    failed = ~(
        np.isfinite(out["estimate"]) & np.isfinite(out["std_error"]) & np.isfinite(out["p_value"])
    )
    out["failed"] = failed | out.get("failed", np.zeros(failed.shape, dtype=bool))
    return out


def _run_chunk(job: tuple[Scenario, range]) -> dict[str, np.ndarray]:
    """Generate and analyse one chunk, block by aligned block of ``ANALYSIS_BLOCK``."""
    scenario, idx = job
    batch = scenario.generate(list(idx))
    parts = []
    for a in range(0, len(idx), ANALYSIS_BLOCK):
        # chunks start at multiples of ANALYSIS_BLOCK, so block (start + a) is aligned
        sl = slice(a, a + ANALYSIS_BLOCK)
        sub = SimulatedOutcomes(
            layout=batch.layout,
            y=batch.y[sl],
            covariates={k: v[sl] for k, v in batch.covariates.items()},
            replicate=batch.replicate[sl],
        )
        parts.append(analyse_batch(sub, scenario))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _aligned_chunks(reps: int, chunk_size: int) -> list[range]:
    """Chunks whose size is a multiple of ``ANALYSIS_BLOCK`` (so results never depend on it)."""
    size = max(1, -(-int(chunk_size) // ANALYSIS_BLOCK)) * ANALYSIS_BLOCK
    return chunk_indices(reps, size)


# ------------------------------------------------------------------------ result
@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationResult:
    """Simulated power of one scenario.

    Attributes
    ----------
    scenario : Scenario
    reps : int
    rejections : int
        Replicates with p < alpha (failed fits count as not rejected).
    power, mc_se, conf_low, conf_high : float
        Rejection rate, its Monte Carlo SE ``√(p(1−p)/R)`` and exact
        Clopper–Pearson 95% interval.
    singular, failed : int
        Singular fits (kept) and failed fits (kept, counted as not rejected).
    mean_estimate, bias, coverage : float
        Over the replicates that did not fail; coverage of the (1 − α) CI.
    mean_std_error, mean_df : float
    analytic_power : float
        The analytic power of the same design (``NaN`` when not applicable).
    seconds : float
        Wall-clock time (not part of ``repr``).
    """

    scenario: Scenario
    reps: int
    rejections: int
    power: float
    mc_se: float
    conf_low: float
    conf_high: float
    singular: int
    failed: int
    mean_estimate: float
    bias: float
    coverage: float
    mean_std_error: float
    mean_df: float
    analytic_power: float = float("nan")
    seconds: float = float("nan")
    backend: str = "local"
    warnings: tuple[str, ...] = field(default_factory=tuple)

    _KEYS = (
        "power",
        "mc_se",
        "conf_low",
        "conf_high",
        "reps",
        "singular",
        "failed",
        "coverage",
        "seconds",
    )

    def to_json_summary(self) -> dict[str, Any]:
        """The keys a program reads for one scenario."""
        d = {k: _clean(getattr(self, k)) for k in self._KEYS}
        d.update(
            mean_estimate=_clean(self.mean_estimate),
            bias=_clean(self.bias),
            analytic_power=_clean(self.analytic_power),
            name=self.scenario.name,
            warnings=list(self.warnings),
        )
        return d

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schema_version": RESULT_SCHEMA_VERSION,
            "trialkit_version": __version__,
        }
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "scenario":
                v = v.to_dict()
            elif f.name == "warnings":
                v = list(v)
            d[f.name] = _clean(v) if isinstance(v, float) else v
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SimulationResult:
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name.startswith("_") or f.name not in d:
                continue
            v = d[f.name]
            if f.name == "scenario":
                v = Scenario.from_dict(v)
            elif f.name == "warnings":
                v = tuple(v)
            elif v is None:
                v = float("nan")
            kw[f.name] = v
        return cls(**kw)

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy table (scenario settings prefixed ``design_``)."""
        row: dict[str, Any] = {"name": self.scenario.name}
        row.update(
            {
                k: v
                for k, v in self.to_dict().items()
                if k not in ("scenario", "warnings", "schema_version", "trialkit_version")
            }
        )
        row["warnings"] = "; ".join(self.warnings)
        s = self.scenario
        row.update(
            effect=s.effect, method=s.method, df_method=s.df_method, alpha=s.alpha, seed=s.seed
        )
        for k, v in s.design.to_dict().items():
            if k != "proportions":
                row[f"design_{k}"] = v
        return pd.DataFrame([row])

    def summary(self) -> str:
        s = self.scenario
        lines = [
            f"scenario {s.name or '(unnamed)'}: {s.method} analysis, effect {s.true_effect:g}, "
            f"{self.reps} replicates, seed {s.seed}",
            f"power {self.power:.4f} (MC SE {self.mc_se:.4f}; 95% CI "
            f"{self.conf_low:.4f} to {self.conf_high:.4f}); analytic {self.analytic_power:.4f}",
            f"mean estimate {self.mean_estimate:.4g} (bias {self.bias:.3g}), "
            f"CI coverage {self.coverage:.4f}",
            f"singular fits {self.singular}, failed fits {self.failed}",
        ]
        lines += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"SimulationResult(name={self.scenario.name!r}, reps={self.reps}, "
            f"power={self.power!r}, singular={self.singular}, failed={self.failed})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerSimulation:
    """Results of a grid of scenarios (in the order given)."""

    results: tuple[SimulationResult, ...]
    seconds: float = float("nan")

    def to_frame(self) -> pd.DataFrame:
        return pd.concat([r.to_frame() for r in self.results], ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "trialkit_version": __version__,
            "seconds": _clean(self.seconds),
            "scenarios": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PowerSimulation:
        return cls(
            results=tuple(SimulationResult.from_dict(r) for r in d["scenarios"]),
            seconds=float("nan") if d.get("seconds") is None else float(d["seconds"]),
        )

    def summary(self) -> str:
        return "\n\n".join(r.summary() for r in self.results)

    def __repr__(self) -> str:
        return f"PowerSimulation(scenarios={len(self.results)})"


def _aggregate(
    scenario: Scenario, out: dict[str, np.ndarray], seconds: float, backend: str
) -> SimulationResult:
    reps = int(out["estimate"].size)
    failed = out["failed"]
    ok = ~failed
    rej = int(np.sum(ok & (out["p_value"] < scenario.alpha)))
    p = rej / reps
    lo = 0.0 if rej == 0 else float(stats.beta.ppf(0.025, rej, reps - rej + 1))
    hi = 1.0 if rej == reps else float(stats.beta.ppf(0.975, rej + 1, reps - rej))
    truth = scenario.true_effect
    n_ok = int(ok.sum())
    if n_ok:
        mean_est = float(np.mean(out["estimate"][ok]))
        cover = float(np.mean((out["conf_low"][ok] <= truth) & (truth <= out["conf_high"][ok])))
        mse = float(np.mean(out["std_error"][ok]))
        mdf = float(np.mean(out["df"][ok]))
    else:
        mean_est = cover = mse = mdf = float("nan")
    warn: list[str] = []
    n_fail = int(failed.sum())
    n_sing = int(np.sum(out["singular"]))
    if n_fail:
        warn.append(f"{n_fail} of {reps} fits FAILED; they are kept and counted as not rejected")
    if n_sing:
        warn.append(f"{n_sing} of {reps} fits were singular (a variance at zero); kept")
    try:
        ap = analytic_power(
            scenario.design,
            effect=scenario.effect,
            alpha=scenario.alpha,
            two_tailed=scenario.two_tailed,
        ).power
    except PowerError:
        ap = float("nan")
    return SimulationResult(
        scenario=scenario,
        reps=reps,
        rejections=rej,
        power=p,
        mc_se=math.sqrt(p * (1 - p) / reps),
        conf_low=lo,
        conf_high=hi,
        singular=n_sing,
        failed=n_fail,
        mean_estimate=mean_est,
        bias=mean_est - truth,
        coverage=cover,
        mean_std_error=mse,
        mean_df=mdf,
        analytic_power=ap,
        seconds=seconds,
        backend=backend,
        warnings=tuple(warn),
    )


def simulate_power(
    scenario: Scenario,
    *,
    backend: Any = None,
    chunk_size: int = 250,
    progress: bool | None = None,
) -> SimulationResult:
    """Estimate power for one scenario by simulation.

    Parameters
    ----------
    scenario : Scenario
    backend : LocalBackend or DaskBackend, optional
        Default: :class:`~trialkit.power.backends.LocalBackend` (worker
        processes on every core when there is more than one chunk).
    chunk_size : int
        Replicates per task, rounded up to a multiple of ``ANALYSIS_BLOCK`` (125);
        results do not depend on it.
    progress : bool, optional
        Show a progress line on stderr (default: only on a terminal).

    Returns
    -------
    SimulationResult
        ``seconds`` is the time spent generating and analysing its replicates,
        summed over its chunks (the same on any backend, up to timing noise).
    """
    scenario.validate()
    return simulate_power_grid(
        [scenario], backend=backend, chunk_size=chunk_size, progress=progress
    ).results[0]


def _run_timed(job: tuple[Scenario, range]) -> tuple[dict[str, np.ndarray], float]:
    t0 = time.perf_counter()
    out = _run_chunk(job)
    return out, time.perf_counter() - t0


def simulate_power_grid(
    scenarios: Sequence[Scenario],
    *,
    backend: Any = None,
    chunk_size: int = 250,
    progress: bool | None = None,
) -> PowerSimulation:
    """Estimate power for every scenario of a grid (all validated first).

    Every (scenario, chunk) task is submitted to the backend in one map, so the
    workers of a local pool or a Dask cluster of any size stay busy across
    scenarios; results are assembled per scenario in replicate order and do
    not depend on the backend, the number of workers or ``chunk_size``.
    """
    probs = [p for s in scenarios for p in s.problems()]
    if probs:
        raise PowerError(f"invalid scenarios ({len(probs)} problem(s))", probs)
    be = backend if backend is not None else LocalBackend()
    t0 = time.perf_counter()
    jobs: list[tuple[Scenario, range]] = []
    owner: list[int] = []
    for i, s in enumerate(scenarios):
        for r in _aligned_chunks(s.reps, chunk_size):
            jobs.append((s, r))
            owner.append(i)
    if not scenarios:
        return PowerSimulation(results=(), seconds=0.0)
    label = (scenarios[0].name or "simulate") if len(scenarios) == 1 else "power grid"
    bar = Progress(sum(s.reps for s in scenarios), label=label, enabled=progress)
    parts = be.map(_run_timed, jobs, bar)
    bar.close()
    results = []
    for i, s in enumerate(scenarios):
        mine = [parts[j] for j in range(len(jobs)) if owner[j] == i]
        out = {k: np.concatenate([p[0][k] for p in mine]) for k in mine[0][0]}
        results.append(_aggregate(s, out, sum(p[1] for p in mine), be.name))
    return PowerSimulation(results=tuple(results), seconds=time.perf_counter() - t0)


# -------------------------------------------------------------------- TOML config
_DESIGN_KEYS = {f.name for f in fields(CRTDesign)}
_SCENARIO_KEYS = {f.name for f in fields(Scenario)} - {"design"}


def _scenario_from_mapping(d: Mapping[str, Any], path: str) -> Scenario:
    unknown = sorted(set(d) - _DESIGN_KEYS - _SCENARIO_KEYS)
    if unknown:
        raise PowerError.from_problem(
            path=path,
            code="power.config_key",
            message=f"unknown setting(s) {', '.join(unknown)}.",
            hint=f"Allowed: {', '.join(sorted(_DESIGN_KEYS | _SCENARIO_KEYS))}.",
        )
    dk = {k: v for k, v in d.items() if k in _DESIGN_KEYS}
    if "proportions" in dk and dk["proportions"] is not None:
        dk["proportions"] = tuple(float(x) for x in dk["proportions"])
    sk = {k: v for k, v in d.items() if k in _SCENARIO_KEYS}
    if dk.get("outcome") == "binary" and "method" not in sk:
        sk["method"] = "cluster-level"
    try:
        return Scenario(design=CRTDesign(**dk), **sk)
    except TypeError as exc:  # pragma: no cover - guarded by the key check
        raise PowerError.from_problem(path=path, code="power.config_key", message=str(exc)) from exc


def scenarios_from_config(cfg: Mapping[str, Any], source: str = "config") -> list[Scenario]:
    """Scenarios from a parsed config: ``[defaults]``, ``[grid]`` and ``[[scenarios]]``.

    ``[grid]`` maps settings to lists; every combination (in the order given,
    last key fastest) becomes a scenario.  ``[[scenarios]]`` entries are added
    after the grid.  Each scenario is ``defaults`` updated by its own settings.
    """
    defaults = dict(cfg.get("defaults", {}))
    grid = cfg.get("grid", {})
    explicit = cfg.get("scenarios", [])
    unknown = sorted(set(cfg) - {"defaults", "grid", "scenarios", "title", "description"})
    if unknown:
        raise PowerError.from_problem(
            path=source,
            code="power.config_key",
            message=f"unknown table(s) {', '.join(unknown)}.",
            hint="Use [defaults], [grid] and [[scenarios]].",
        )
    out: list[Scenario] = []
    if grid:
        keys = list(grid)
        for combo in itertools.product(
            *(grid[k] if isinstance(grid[k], list) else [grid[k]] for k in keys)
        ):
            d = {**defaults, **dict(zip(keys, combo, strict=True))}
            if "name" not in dict(zip(keys, combo, strict=True)):
                d["name"] = ",".join(f"{k}={v}" for k, v in zip(keys, combo, strict=True))
            out.append(_scenario_from_mapping(d, f"{source} [grid]"))
    for i, sc in enumerate(explicit):
        d = {**defaults, **sc}
        d.setdefault("name", f"scenario{i + 1}")
        out.append(_scenario_from_mapping(d, f"{source} scenarios[{i}]"))
    if not out:
        out.append(_scenario_from_mapping({"name": "default", **defaults}, source))
    return out


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Read scenarios from a TOML file (see :func:`scenarios_from_config`)."""
    p = Path(path)
    try:
        cfg = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PowerError.from_problem(
            path=p.name,
            code="power.config_toml",
            message=f"is not valid TOML: {exc}.",
            hint="Check the file against the examples in simulations/.",
        ) from exc
    return scenarios_from_config(cfg, p.name)
