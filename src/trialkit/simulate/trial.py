"""Simulate a whole synthetic trial: the five data tables, the allocation and the truth.

:func:`simulate_trial` generates keyworkers, families, item-level questionnaire
responses, retention and delivery (fidelity) records for a set of LAs with a
given allocation, with known treatment effects, ICCs and per-LA fidelity.  The
output passes :func:`trialkit.data.validate` without errors and feeds the demo,
tests and benchmarks.  Deterministic for a seed (``numpy.random.default_rng``
seeded with ``SeedSequence(seed)``; record the numpy version, in ``truth.json``).

Notes
-----
Latent outcome of entity *i* (keyworker *j*, LA *k*) at timepoint *t* (index
:math:`t = 0..T-1`), in SD units:

.. math::

    z_{it} = \\sqrt{ρ_{LA}}\\,a_k + \\sqrt{ρ_{KW}}\\,b_j
           + \\sqrt{1-ρ_{LA}-ρ_{KW}}\\,(\\sqrt{r}\\,s_i + \\sqrt{1-r}\\,ε_{it})
           + δ\\,T_k\\,t/(T-1),

with standard normal terms, so the ICCs at each occasion are :math:`ρ_{LA}`,
:math:`ρ_{KW}` and the within-person correlation of the residual part is *r*.
Item *m* is ``low + (high − low)·Φ(α + 0.8 z + 0.6 u_m)`` rounded to the response
grid (``u_m`` standard normal), then reversed for reverse-scored items, so
higher *z* means a higher scored scale.  The effect a user gives is in the outcome's
``better`` direction (positive = benefit): δ = effect for ``better = "higher"`` and
δ = −effect for ``better = "lower"``.  ``truth.json`` holds both (``effect_smd``, the
benefit, and ``latent_smd`` = δ, in the direction of the scale), and the
realised *sample average treatment effect on the scale score* of the treated at
the analysis timepoint (both potential outcomes scored with the same item noise).

Retention: ``P(in post) = expit(logit(p0) + β T_k + σ u_k)`` with σ² from the
latent-scale ICC, ``σ² = ρ π²/3 / (1−ρ)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import special, stats

from trialkit import store
from trialkit._io import provenance
from trialkit.data.schema import DELIVERY_COLUMNS
from trialkit.data.scoring import (
    INSTRUMENTS,
    MAX_ITEMS,
    Instrument,
    entered_instrument,
    score_matrix,
)
from trialkit.errors import DataError, Problem, UsageError
from trialkit.protocol.model import Protocol

__all__ = ["SyntheticTrial", "random_allocation", "simulate_trial"]

_ALPHA = {
    "SCORE-15": -0.3,
    "WEMWBS": 0.1,
    "SWEMWBS": 0.1,
    "CBI": -0.1,
    "RCADS": -0.6,
    "ORS": 0.1,
    "SRS": 0.8,
}
_WITHDRAWAL_REASONS = (
    "family withdrew",
    "moved out of area",
    "case closed early",
    "declined further contact",
)

DEFAULT_MISSINGNESS: dict[str, float] = {
    "not_consented": 0.25,
    "withdrawn_intervention": 0.12,
    "withdrawn_control": 0.15,
    "timepoint_missing": 0.12,
    "item": 0.02,
    "rcads_eligible": 0.7,
    "ors_total_only": 0.2,
    "keyworker_missing": 0.08,
}


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SyntheticTrial:
    """A simulated trial: ``tables`` (the five data tables), ``allocation`` and ``truth``."""

    tables: Mapping[str, pd.DataFrame]
    allocation: pd.DataFrame
    truth: Mapping[str, Any]
    seed: int

    def row_counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.tables.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "row_counts": self.row_counts(), "truth": dict(self.truth)}

    def summary(self) -> str:
        rc = ", ".join(f"{k} {v}" for k, v in self.row_counts().items())
        return f"Synthetic trial (seed {self.seed}): {rc}"

    def __repr__(self) -> str:
        return f"SyntheticTrial(seed={self.seed}, rows={self.row_counts()})"

    def save(
        self,
        out_dir: str | os.PathLike[str],
        *,
        fmt: str = "parquet",
        inputs: Mapping[str, str | os.PathLike[str]] | None = None,
    ) -> Path:
        """Write ``<table>.<fmt>``, ``allocation.csv``, ``truth.json`` and the manifest to a new directory."""
        if fmt not in ("parquet", "csv"):
            raise DataError.from_problem(
                path="format",
                code="simulate.format",
                message=f"format must be parquet or csv; got {fmt!r}",
                hint="",
            )
        record = dict(self.truth)
        record["provenance"] = provenance(inputs=inputs, seed=self.seed)
        return store.write_trial_data(
            out_dir,
            tables=self.tables,
            fmt=fmt,
            allocation=self.allocation,
            truth=record,
            inputs=store.hash_inputs(inputs),
            seed=self.seed,
        )


def _date_col(days: np.ndarray) -> pd.Series:
    d = np.asarray(days, dtype="datetime64[D]")
    return pd.Series(pd.arrays.ArrowExtensionArray(pa.array(d, type=pa.date32(), from_pandas=True)))


def _str_col(x: np.ndarray | list[Any]) -> pd.Series:
    return pd.Series(np.asarray(x, dtype=object), dtype=pd.StringDtype("pyarrow"))


def _gamma_sizes(
    rng: np.random.Generator, n: int, mean: float, cv: float, minimum: int
) -> np.ndarray:
    if cv <= 0:
        return np.full(n, max(minimum, round(mean)), dtype=int)
    shape = 1.0 / cv**2
    return np.maximum(minimum, np.round(rng.gamma(shape, mean / shape, size=n))).astype(int)


def _items(z: np.ndarray, u: np.ndarray, inst: Instrument, alpha: float) -> np.ndarray:
    """Item responses on the instrument's grid from latent ``z`` (n,) and noise ``u`` (n, k)."""
    p = stats.norm.cdf(alpha + 0.8 * z[:, None] + 0.6 * u)
    if inst.id == "CBI":
        x = np.round(p * 4.0) * 25.0
    elif inst.integer:
        x = np.round(inst.low + (inst.high - inst.low) * p)
    else:
        x = np.round(inst.low + (inst.high - inst.low) * p, 1)
    for i in inst.reversed_items:
        x[:, i - 1] = inst.low + inst.high - x[:, i - 1]
    return x


def random_allocation(protocol: Protocol, cluster_ids: Any, *, seed: int) -> pd.DataFrame:
    """Allocate LAs 1:1 by simple randomisation (for a synthetic trial without an allocation).

    The arms alternate intervention, control, ... over the LAs and are then permuted with
    ``numpy.random.default_rng(SeedSequence([seed, 1]))``; with an odd number of LAs the
    intervention arm has one more.  A real trial is allocated by :func:`trialkit.randomise`.

    Parameters
    ----------
    protocol : Protocol
        Gives the intervention and control arm ids.
    cluster_ids : sequence
        The LA ids.
    seed : int
        Non-negative random seed.

    Returns
    -------
    DataFrame
        ``cluster``, ``arm``.
    """
    _check_seed(seed)
    ids = np.asarray([str(x) for x in cluster_ids], dtype=object)
    arms = np.array(
        [protocol.intervention_arm, protocol.control_arm] * (len(ids) // 2 + 1), dtype=object
    )[: len(ids)]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1]))
    return pd.DataFrame({"cluster": ids, "arm": rng.permutation(arms)})


def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise UsageError.from_problem(
            path="seed",
            code="simulate.invalid_parameter",
            message=f"`seed` must be a non-negative integer; got {seed!r}.",
            hint="pass --seed 0 or another whole number >= 0",
        )


def _in_range(
    value: Any, low: float, high: float, *, open_low: bool = False, open_high: bool = False
) -> bool:
    if isinstance(value, bool):
        return False
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False
    if not math.isfinite(v):
        return False
    return (v > low if open_low else v >= low) and (v < high if open_high else v <= high)


def _check_parameters(
    protocol: Protocol,
    *,
    seed: int,
    effects: Mapping[str, float] | None,
    fidelity: Mapping[str, float] | float | None,
    contamination: float,
    n_keyworkers: float | None,
    keyworker_cv: float,
    families_per_keyworker: float,
    families_cv: float,
    icc: Mapping[str, tuple[float, float]] | None,
    baseline_correlation: float,
    retention_control: float,
    retention_icc: float,
    missingness: Mapping[str, float] | None,
) -> None:
    """Raise :class:`UsageError` listing every simulation setting out of its range."""
    _check_seed(seed)
    problems: list[Problem] = []

    def bad(path: str, rule: str, got: Any, hint: str) -> None:
        problems.append(
            Problem(
                path=path,
                code="simulate.invalid_parameter",
                message=f"`{path}` must be {rule}; got {got!r}.",
                hint=hint,
            )
        )

    if n_keyworkers is not None and not _in_range(n_keyworkers, 0, 10_000, open_low=True):
        bad(
            "n_keyworkers",
            "a positive number (at most 10000)",
            n_keyworkers,
            "give the mean number of keyworkers per LA, e.g. --keyworkers 8",
        )
    if not _in_range(families_per_keyworker, 0, 1000):
        bad(
            "families_per_keyworker",
            "a number in [0, 1000]",
            families_per_keyworker,
            "give the mean families per keyworker, e.g. --families-per-keyworker 5",
        )
    for name, value in (("keyworker_cv", keyworker_cv), ("families_cv", families_cv)):
        if not _in_range(value, 0, 10):
            bad(name, "a number in [0, 10]", value, "a coefficient of variation such as 0.3")
    for name, value in (
        ("contamination", contamination),
        ("baseline_correlation", baseline_correlation),
    ):
        if not _in_range(value, 0, 1):
            bad(name, "a number in [0, 1]", value, "a probability such as 0.05")
    if not _in_range(retention_control, 0, 1, open_low=True, open_high=True):
        bad("retention_control", "a number in (0, 1)", retention_control, "e.g. 0.75")
    if not _in_range(retention_icc, 0, 1, open_high=True):
        bad("retention_icc", "a number in [0, 1)", retention_icc, "e.g. 0.05")
    fids: dict[str, Any] = (
        {str(k): v for k, v in fidelity.items()}
        if isinstance(fidelity, Mapping)
        else ({} if fidelity is None else {"": fidelity})
    )
    for la, value in fids.items():
        if not _in_range(value, 0, 1):
            bad(
                f"fidelity[{la}]" if la else "fidelity",
                "a number in [0, 1] (the share of the model delivered)",
                value,
                "e.g. --fidelity 0.8 for 80% of the intervention delivered",
            )
    for key, value in (missingness or {}).items():
        if key not in DEFAULT_MISSINGNESS:
            bad("missingness", f"keyed by {sorted(DEFAULT_MISSINGNESS)}", key, "fix the key")
        elif not _in_range(value, 0, 1):
            bad(f"missingness[{key}]", "a number in [0, 1]", value, "a probability")
    known = [o.id for o in protocol.outcomes]
    for oid, value in (effects or {}).items():
        if oid not in known:
            import difflib

            close = difflib.get_close_matches(str(oid), known, n=1)
            problems.append(
                Problem(
                    path=f"effects[{oid}]",
                    code="simulate.unknown_outcome",
                    message="the outcome of an effect must be one of the protocol's outcomes "
                    f"({', '.join(known)}); got {oid!r}.",
                    hint=f"did you mean '{close[0]}'?"
                    if close
                    else "use an outcome id from the protocol's [[outcomes]]",
                )
            )
        elif not _in_range(value, -10, 10):
            bad(
                f"effects[{oid}]",
                "a number in [-10, 10] (SD units; log odds ratio for a binary outcome)",
                value,
                "e.g. 0.3 for a benefit of 0.3 SD",
            )
    for oid, pair in (icc or {}).items():
        ok = (
            isinstance(pair, tuple | list)
            and len(pair) == 2
            and all(_in_range(v, 0, 1) for v in pair)
            and float(pair[0]) + float(pair[1]) <= 1
        )
        if not ok:
            bad(
                f"icc[{oid}]",
                "a pair (icc_la, icc_keyworker) of numbers in [0, 1] summing to at most 1",
                pair,
                "e.g. (0.05, 0.10)",
            )
    if len(problems) == 1:
        raise UsageError(f"{problems[0].path}: {problems[0].message}", problems)
    if problems:
        raise UsageError(f"{len(problems)} simulation settings are out of range", problems)


def simulate_trial(
    protocol: Protocol,
    clusters: pd.DataFrame,
    allocation: pd.DataFrame | None = None,
    *,
    seed: int,
    effects: Mapping[str, float] | None = None,
    fidelity: Mapping[str, float] | float | None = None,
    contamination: float = 0.05,
    n_keyworkers: float | None = None,
    keyworker_cv: float = 0.3,
    families_per_keyworker: float = 5.0,
    families_cv: float = 0.5,
    icc: Mapping[str, tuple[float, float]] | None = None,
    baseline_correlation: float = 0.5,
    retention_control: float = 0.75,
    retention_icc: float = 0.05,
    missingness: Mapping[str, float] | None = None,
) -> SyntheticTrial:
    """Generate a complete synthetic trial.

    Parameters
    ----------
    protocol : Protocol
    clusters : DataFrame
        ``la_id`` plus LA covariates (copied into the ``clusters`` table); a
        ``keyworkers`` column, when present and ``n_keyworkers`` is None, gives each
        LA's number of keyworkers.
    allocation : DataFrame, optional
        ``cluster``, ``arm`` (from ``trialkit randomise``); without it the LAs are
        allocated by :func:`random_allocation` with ``seed``.
    seed : int
        Non-negative.
    effects : mapping outcome_id -> float, optional
        Treatment effect in latent SD units, **positive = benefit** (in the outcome's
        ``better`` direction, so 0.3 lowers a ``better = "lower"`` score); for the
        binary keyworker retention outcome a log odds ratio, positive = more retained
        when ``better = "higher"``.  Default 0.3 SD benefit on each outcome (retention
        0.5).  Every key must be an outcome id of the protocol.
    fidelity : float or mapping la_id -> float, optional
        Delivered fidelity (in [0, 1]) of each intervention LA; default drawn U(0.6, 1).
    contamination : float
        Probability that a control LA delivers each intervention element.
    n_keyworkers : float, optional
        Mean keyworkers per LA (gamma, CV ``keyworker_cv``, at least 3).
    families_per_keyworker : float
        Mean families per keyworker (gamma, CV ``families_cv``).
    icc : mapping outcome_id -> (icc_la, icc_keyworker), optional
        Default (0.05, 0.10) for family outcomes and (0.05, 0) for keyworker outcomes.
    baseline_correlation : float
        Within-person correlation *r* of the non-cluster part across timepoints.
    retention_control, retention_icc : float
        Control-arm probability of being in post at the end; latent-scale ICC.
    missingness : mapping, optional
        Overrides of ``DEFAULT_MISSINGNESS``.

    Returns
    -------
    SyntheticTrial
        Every date it holds lies in the protocol's trial window (``start``–``end``), so
        the tables pass :func:`trialkit.data.validate`.

    Raises
    ------
    UsageError
        A setting out of its range or an effect for an outcome the protocol lacks
        (code ``simulate.invalid_parameter`` or ``simulate.unknown_outcome``).
    """
    _check_parameters(
        protocol,
        seed=seed,
        effects=effects,
        fidelity=fidelity,
        contamination=contamination,
        n_keyworkers=n_keyworkers,
        keyworker_cv=keyworker_cv,
        families_per_keyworker=families_per_keyworker,
        families_cv=families_cv,
        icc=icc,
        baseline_correlation=baseline_correlation,
        retention_control=retention_control,
        retention_icc=retention_icc,
        missingness=missingness,
    )
    start = np.datetime64(protocol.trial.start or "2024-09-01", "D")
    end = np.datetime64(protocol.trial.end or "2025-12-31", "D")
    span = int((end - start).astype(int))
    miss = dict(DEFAULT_MISSINGNESS)
    miss.update(missingness or {})
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    tps = list(protocol.trial.timepoints)
    T = len(tps)
    frac = {t: (i / (T - 1) if T > 1 else 1.0) for i, t in enumerate(tps)}
    offsets = {t: int(round(240 * frac[t])) for t in tps}

    # ---------------------------------------------------------------- LAs
    if "la_id" not in clusters.columns:
        raise DataError.from_problem(
            path="clusters",
            code="simulate.missing_column",
            message="clusters must have a 'la_id' column",
            hint="",
        )
    cl = clusters.copy()
    cl["la_id"] = cl["la_id"].astype(str)
    la_ids = cl["la_id"].to_numpy(dtype=object)
    K = len(la_ids)
    if allocation is None:
        allocation = random_allocation(protocol, la_ids, seed=seed)
    amap = dict(zip(allocation["cluster"].astype(str), allocation["arm"].astype(str), strict=True))
    missing = [x for x in la_ids if x not in amap]
    if missing:
        raise DataError.from_problem(
            path="allocation",
            code="simulate.la_not_allocated",
            message=f"every LA must be in the allocation; missing {missing[:5]}",
            hint="randomise the same clusters file",
        )
    arm_la = np.array([amap[x] for x in la_ids], dtype=object)
    treat_la = (arm_la == protocol.intervention_arm).astype(float)
    if fidelity is None:
        fid = rng.uniform(0.6, 1.0, size=K)
    elif isinstance(fidelity, Mapping):
        fid = np.array([float(fidelity.get(x, 0.8)) for x in la_ids])
    else:
        fid = np.full(K, float(fidelity))
    fid = np.where(treat_la == 1, np.clip(fid, 0, 1), 0.0)
    level_la = np.where(treat_la == 1, fid, contamination)  # probability of delivering each element

    # ---------------------------------------------------------------- keyworkers
    if n_keyworkers is None and "keyworkers" in cl.columns:
        nkw = np.maximum(
            3, pd.to_numeric(cl["keyworkers"], errors="coerce").fillna(8).to_numpy().astype(int)
        )
    else:
        nkw = _gamma_sizes(rng, K, float(n_keyworkers or 8), keyworker_cv, 3)
    kw_la = np.repeat(np.arange(K), nkw)
    n_kw = len(kw_la)
    within = np.concatenate([np.arange(n) for n in nkw])
    kw_ids = np.array(
        [f"{la_ids[k]}-K{j + 1:03d}" for k, j in zip(kw_la, within, strict=True)], dtype=object
    )
    champions = 2
    for _key, q in protocol.arms[protocol.intervention_arm].tidier.quantities():
        if q.id == "champions":
            champions = int(q.value)
    role = np.where(within < np.minimum(champions, nkw[kw_la] - 1), "champion", "keyworker")
    years = np.round(rng.gamma(2.0, 3.0, size=n_kw), 1)
    start_kw = start - rng.integers(30, 3650, size=n_kw).astype("timedelta64[D]")
    effect_ret = float((effects or {}).get("keyworker_retention", 0.5))
    better = {o.id: o.better for o in protocol.outcomes}
    beta_ret = _scale_direction(effect_ret, better.get("keyworker_retention", "higher"))
    sig = (
        math.sqrt(retention_icc * math.pi**2 / 3 / (1 - retention_icc))
        if retention_icc > 0
        else 0.0
    )
    u_la = rng.standard_normal(K)
    p_in = special.expit(
        special.logit(retention_control) + beta_ret * treat_la[kw_la] + sig * u_la[kw_la]
    )
    retained = rng.random(n_kw) < p_in
    leave = np.full(n_kw, np.datetime64("NaT"), dtype="datetime64[D]")
    n_left = int((~retained).sum())
    leave[~retained] = np.minimum(
        start + rng.integers(30, max(31, span - 1), size=n_left).astype("timedelta64[D]"), end
    )

    # ---------------------------------------------------------------- families
    nfam = _gamma_sizes(rng, n_kw, families_per_keyworker, families_cv, 0)
    fam_kw = np.repeat(np.arange(n_kw), nfam)
    n_f = len(fam_kw)
    fam_la = kw_la[fam_kw]
    fwithin = np.concatenate([np.arange(n) for n in nfam]) if n_f else np.array([], dtype=int)
    fam_ids = np.array(
        [f"{kw_ids[j]}-F{i + 1:03d}" for j, i in zip(fam_kw, fwithin, strict=True)], dtype=object
    )
    last_ref = max(1, span - 240 - 30)
    referral = start + rng.integers(0, last_ref, size=n_f).astype("timedelta64[D]")
    consented = rng.random(n_f) >= miss["not_consented"]
    consent = np.where(
        consented,
        referral + rng.integers(1, 29, size=n_f).astype("timedelta64[D]"),
        np.datetime64("NaT"),
    )
    wrate = np.where(
        treat_la[fam_la] == 1, miss["withdrawn_intervention"], miss["withdrawn_control"]
    )
    withdrawn = consented & (rng.random(n_f) < wrate)
    wdate = np.full(n_f, np.datetime64("NaT"), dtype="datetime64[D]")
    wd_off = rng.integers(20, 230, size=n_f).astype("timedelta64[D]")
    wdate[withdrawn] = np.minimum(consent[withdrawn] + wd_off[withdrawn], end - 1)
    reason = np.full(n_f, None, dtype=object)
    reason[withdrawn] = rng.choice(
        np.array(_WITHDRAWAL_REASONS, dtype=object), size=int(withdrawn.sum())
    )
    fam_base = consent + rng.integers(0, 15, size=n_f).astype("timedelta64[D]")

    # ---------------------------------------------------------------- measurements
    eff = dict(effects or {})
    icc_map = dict(icc or {})
    blocks: list[dict[str, Any]] = []
    truth_outcomes: dict[str, Any] = {}
    done: set[tuple[str, str]] = set()
    kw_base = start + rng.integers(0, 30, size=n_kw).astype("timedelta64[D]")
    kw_end = end - rng.integers(0, 30, size=n_kw).astype("timedelta64[D]")
    for oc in protocol.outcomes:
        if oc.instrument not in INSTRUMENTS:
            if oc.instrument == "binary" and oc.level.value == "keyworker":
                truth_outcomes[oc.id] = {
                    "effect_log_odds_ratio": effect_ret,
                    "log_odds_ratio": beta_ret,
                    "control_probability": retention_control,
                    "icc_latent": retention_icc,
                    "realised_proportion": {
                        a: float(retained[arm_la[kw_la] == a].mean())
                        for a in protocol.arm_ids
                        if (arm_la[kw_la] == a).any()
                    },
                }
            continue
        key = (oc.instrument, oc.level.value)
        if key in done:
            continue
        done.add(key)
        # items are written as the protocol says they are entered: SCORE-15 in its
        # declared reverse-coding direction; CBI as 0/25/50/75/100 or as codes 1-5
        inst = entered_instrument(oc.instrument, score15_reverse=protocol.scoring.score15_reverse)
        cbi_codes = inst.id == "CBI" and protocol.scoring.cbi_coding == "1-5"
        benefit = float(eff.get(oc.id, 0.3))
        delta = _scale_direction(benefit, oc.better)
        fam_level = oc.level.value == "family"
        rho_la, rho_kw = icc_map.get(oc.id, (0.05, 0.10) if fam_level else (0.05, 0.0))
        resid = max(0.0, 1.0 - rho_la - rho_kw)
        a = rng.standard_normal(K)
        if fam_level:
            n_e, e_la, e_kw = n_f, fam_la, fam_kw
            ids = fam_ids
        else:
            n_e, e_la, e_kw = n_kw, kw_la, np.arange(n_kw)
            ids = kw_ids
        b = rng.standard_normal(n_kw)
        s = rng.standard_normal(n_e)
        eligible = np.ones(n_e, dtype=bool)
        if oc.instrument == "RCADS":
            eligible = rng.random(n_e) < miss["rcads_eligible"]
        alpha = _ALPHA.get(oc.instrument, 0.0)
        an_tp = oc.analysis_timepoint
        sate = None
        for t in oc.timepoints:
            if fam_level:
                date = fam_base + np.timedelta64(offsets.get(t, 0), "D")
                avail = consented & eligible & (date <= end) & (np.isnat(wdate) | (date <= wdate))
            else:
                date = (
                    kw_base
                    if frac.get(t, 0) == 0
                    else (kw_end if frac.get(t, 0) == 1 else start + np.timedelta64(span // 2, "D"))
                )
                avail = np.isnat(leave) | (leave >= date)
                avail = avail & (rng.random(n_e) >= miss["keyworker_missing"])
            if frac.get(t, 0) > 0 and fam_level:
                avail = avail & (rng.random(n_e) >= miss["timepoint_missing"])
            eps = rng.standard_normal(n_e)
            z0 = (
                math.sqrt(rho_la) * a[e_la]
                + math.sqrt(rho_kw) * b[e_kw]
                + math.sqrt(resid)
                * (math.sqrt(baseline_correlation) * s + math.sqrt(1 - baseline_correlation) * eps)
            )
            shift = delta * treat_la[e_la] * frac.get(t, 1.0)
            u = rng.standard_normal((n_e, inst.n_items))
            rows = np.flatnonzero(avail)
            x = _items(z0[rows] + shift[rows], u[rows], inst, alpha)
            if t == an_tp:
                tr = rows[treat_la[e_la[rows]] == 1]
                if len(tr):
                    x1 = _items(z0[tr] + shift[tr], u[tr], inst, alpha)
                    x0 = _items(z0[tr], u[tr], inst, alpha)
                    sc = oc.score
                    s1 = score_matrix(x1, inst)[sc]
                    s0 = score_matrix(x0, inst)[sc]
                    sate = float(np.mean(s1 - s0))
            item_mask = rng.random(x.shape) < miss["item"]
            x[item_mask] = np.nan
            total = np.full(len(rows), np.nan)
            if inst.total_given:
                only = rng.random(len(rows)) < miss["ors_total_only"]
                full = np.round(_items(z0[rows] + shift[rows], u[rows], inst, alpha).sum(axis=1), 1)
                total[only] = full[only]
                x[only] = np.nan
                x[~only] = _items(z0[rows] + shift[rows], u[rows], inst, alpha)[~only]
            if cbi_codes:
                x = x / 25.0 + 1.0
            blocks.append(
                {
                    "entity_id": ids[rows],
                    "level": oc.level.value,
                    "instrument": inst.id,
                    "timepoint": t,
                    "date": date[rows] if np.ndim(date) else np.full(len(rows), date),
                    "items": x,
                    "total": total,
                }
            )
        truth_outcomes[oc.id] = {
            "instrument": inst.id,
            "score": oc.score,
            "level": oc.level.value,
            "effect_smd": benefit,
            "latent_smd": delta,
            "icc_la": rho_la,
            "icc_keyworker": rho_kw,
            "baseline_correlation": baseline_correlation,
            "analysis_timepoint": an_tp,
            "scale_sate_treated": sate,
        }
    n_m = sum(len(bk["entity_id"]) for bk in blocks)
    item_cols = {}
    for j in range(MAX_ITEMS):
        parts = [
            bk["items"][:, j] if bk["items"].shape[1] > j else np.full(len(bk["entity_id"]), np.nan)
            for bk in blocks
        ]
        v = np.concatenate(parts) if parts else np.array([], dtype=float)
        if np.isnan(v).all():
            continue
        item_cols[f"item_{j + 1}"] = pd.Series(
            pd.arrays.ArrowExtensionArray(pa.array(v, mask=np.isnan(v)))
        )

    def cat(k):
        return (
            np.concatenate(
                [
                    np.broadcast_to(np.asarray(bk[k], dtype=object), len(bk["entity_id"]))
                    for bk in blocks
                ]
            )
            if blocks
            else np.array([], dtype=object)
        )

    tot = np.concatenate([bk["total"] for bk in blocks]) if blocks else np.array([], dtype=float)
    meas = pd.DataFrame(
        {
            "entity_id": _str_col(cat("entity_id")),
            "level": _str_col(cat("level")),
            "instrument": _str_col(cat("instrument")),
            "timepoint": _str_col(cat("timepoint")),
            "date": _date_col(
                np.concatenate([np.asarray(bk["date"], dtype="datetime64[D]") for bk in blocks])
                if blocks
                else np.array([], dtype="datetime64[D]")
            ),
            **item_cols,
            "total": pd.Series(pd.arrays.ArrowExtensionArray(pa.array(tot, mask=np.isnan(tot)))),
        }
    )
    del n_m

    # ---------------------------------------------------------------- delivery
    delivery, realised = _delivery(
        rng,
        protocol,
        la_ids,
        treat_la,
        level_la,
        kw_la,
        kw_ids,
        role,
        leave,
        fam_ids,
        fam_la,
        fam_kw,
        consented,
        fam_base,
        wdate,
        offsets,
        tps,
        start,
        end,
    )

    # ---------------------------------------------------------------- tables
    clusters_out = cl.drop(columns=[c for c in ("arm",) if c in cl.columns]).reset_index(drop=True)
    keyworkers = pd.DataFrame(
        {
            "keyworker_id": _str_col(kw_ids),
            "la_id": _str_col(la_ids[kw_la]),
            "role": _str_col(role.astype(object)),
            "start_date": _date_col(start_kw),
            "leave_date": _date_col(leave),
            "years_experience": pd.Series(pd.arrays.ArrowExtensionArray(pa.array(years))),
        }
    )
    families = pd.DataFrame(
        {
            "family_id": _str_col(fam_ids),
            "keyworker_id": _str_col(kw_ids[fam_kw]),
            "la_id": _str_col(la_ids[fam_la]),
            "referral_date": _date_col(referral),
            "consent_date": _date_col(consent),
            "withdrawal_date": _date_col(wdate),
            "withdrawal_reason": _str_col(reason),
        }
    )
    alloc_out = pd.DataFrame({"cluster": la_ids, "arm": arm_la}).astype(str)
    truth = {
        "seed": int(seed),
        "generator": "numpy.random.default_rng(SeedSequence(seed)) (PCG64)",
        "numpy": np.__version__,
        "n_la": K,
        "n_keyworkers": n_kw,
        "n_families": n_f,
        "n_consented": int(consented.sum()),
        "n_withdrawn": int(withdrawn.sum()),
        "n_keyworkers_left": n_left,
        "n_measurements": len(meas),
        "arms": {str(k): str(v) for k, v in zip(la_ids, arm_la, strict=True)},
        "fidelity": {str(k): float(v) for k, v in zip(la_ids, fid, strict=True)},
        "contamination": contamination,
        "realised_delivery": realised,
        "outcomes": truth_outcomes,
        "missingness": miss,
        "parameters": {
            "n_keyworkers": n_keyworkers,
            "keyworker_cv": keyworker_cv,
            "families_per_keyworker": families_per_keyworker,
            "families_cv": families_cv,
            "baseline_correlation": baseline_correlation,
            "retention_control": retention_control,
            "retention_icc": retention_icc,
        },
    }
    return SyntheticTrial(
        tables={
            "clusters": clusters_out,
            "keyworkers": keyworkers,
            "families": families,
            "measurements": meas,
            "delivery": delivery,
        },
        allocation=alloc_out,
        truth=truth,
        seed=int(seed),
    )


def _scale_direction(benefit: float, better: str) -> float:
    """The latent shift of a benefit of ``benefit`` SD: its sign follows ``better``."""
    return benefit if better == "higher" else -benefit


#: intended days of a course the protocol gives no ``<course>_days`` quantity for
_DEFAULT_COURSE_DAYS = {"cpd": 5, "foundation": 10}


def _course_plan(protocol: Protocol) -> dict[str, tuple[int, frozenset[str] | None]]:
    """Intended days and roles (None: every keyworker) of each course in ``data.courses``.

    Intended days: the intervention arm's TIDieR quantity ``<course>_days`` (else 5 for
    an unknown course); roles: the ``role`` params of the course's training indicators,
    as the fidelity stage reads them.
    """
    quantities = {
        q.id: q.value for _k, q in protocol.arms[protocol.intervention_arm].tidier.quantities()
    }
    plan: dict[str, tuple[int, frozenset[str] | None]] = {}
    for course in protocol.data.courses:
        days = quantities.get(f"{course}_days", _DEFAULT_COURSE_DAYS.get(course, 5))
        roles = frozenset(
            str(ind.params["role"])
            for _node, ind in protocol.logic_model.indicators()
            if ind.params.get("course") == course and "role" in ind.params
        )
        plan[course] = (int(round(float(days))), roles or None)
    return plan


def _delivery(
    rng: np.random.Generator,
    protocol: Protocol,
    la_ids: np.ndarray,
    treat_la: np.ndarray,
    p_la: np.ndarray,
    kw_la: np.ndarray,
    kw_ids: np.ndarray,
    role: np.ndarray,
    leave: np.ndarray,
    fam_ids: np.ndarray,
    fam_la: np.ndarray,
    fam_kw: np.ndarray,
    consented: np.ndarray,
    fam_base: np.ndarray,
    wdate: np.ndarray,
    offsets: Mapping[str, int],
    tps: list[str],
    start: np.datetime64,
    end: np.datetime64,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    recs: dict[str, list[Any]] = {c: [] for c in DELIVERY_COLUMNS}
    realised: dict[str, dict[str, float]] = {}
    months = pd.period_range(pd.Timestamp(start), pd.Timestamp(end), freq="M")
    K = len(la_ids)
    plan = _course_plan(protocol)

    def add(n: int, **cols: Any) -> None:
        for c in recs:
            v = cols.get(c)
            recs[c].append(
                np.broadcast_to(np.asarray(v, dtype=object), n)
                if v is not None
                else np.full(n, None, dtype=object)
            )

    for k in range(K):
        la = la_ids[k]
        p = float(p_la[k])
        kws = np.flatnonzero(kw_la == k)
        # each declared course: round(p x intended days) held in an intervention LA; a
        # control LA holds Binomial(intended, p) days of a course meant for everyone
        # (contamination) and none of a course meant for one role
        held_days: dict[str, int] = {}
        for course, (intended, roles) in plan.items():
            if treat_la[k] == 1:
                held_days[course] = int(round(intended * p))
            else:
                held_days[course] = int(rng.binomial(intended, p)) if roles is None else 0
        att_p = 0.6 + 0.4 * p
        for i, (course, (_intended, roles)) in enumerate(plan.items()):
            ndays = held_days[course]
            who = kws if roles is None else kws[np.isin(role[kws], sorted(roles))]
            base = 14 if i == 0 else 90 + 80 * (i - 1)
            for d in range(1, ndays + 1):
                n = len(who)
                day_date = start + np.timedelta64(base + 7 * d, "D")
                if n == 0 or day_date > end:
                    continue
                add(
                    n,
                    record_type="training",
                    la_id=la,
                    keyworker_id=kw_ids[who],
                    course=course,
                    day=d,
                    date=str(day_date),
                    attended=rng.random(n) < att_p,
                )
        fte = round(float(p) * 1.0, 2) if treat_la[k] == 1 else (0.2 if rng.random() < p else 0.0)
        if fte > 0:
            add(
                len(months),
                record_type="clinician_month",
                la_id=la,
                month=np.array([str(m) for m in months]),
                fte=fte,
            )
        groups = max(1, math.ceil(len(kws) / 6))
        held_n = 0
        gen_n = 0
        for g in range(groups):
            members = kws[g::groups]
            held = rng.random(len(months)) < p
            for mi in np.flatnonzero(held):
                day = np.datetime64(months[mi].start_time.date(), "D") + np.timedelta64(  # type: ignore[call-overload]
                    int(rng.integers(0, 27)), "D"
                )
                if day < start or day > end:  # every date lies in the trial window
                    continue
                sid = f"{la}-S{g + 1:02d}-{months[mi]}"  # type: ignore[call-overload]
                gen = bool(rng.random() < p)
                held_n += 1
                gen_n += int(gen)
                add(
                    1,
                    record_type="supervision_session",
                    la_id=la,
                    session_id=sid,
                    group_id=f"{la}-G{g + 1:02d}",
                    date=str(day),
                    genogram_used=gen,
                    duration_minutes=90.0,
                )
                inpost = members[np.isnat(leave[members]) | (leave[members] >= day)]
                if len(inpost):
                    add(
                        len(inpost),
                        record_type="supervision_attendance",
                        la_id=la,
                        session_id=sid,
                        keyworker_id=kw_ids[inpost],
                        attended=rng.random(len(inpost)) < 0.5 + 0.5 * p,
                    )
        fams = np.flatnonzero((fam_la == k) & consented)
        shares = {}
        for t in tps:
            date = fam_base[fams] + np.timedelta64(offsets[t], "D")
            ok = (date <= end) & (np.isnat(wdate[fams]) | (date <= wdate[fams]))
            sel = fams[ok]
            adm = rng.random(len(sel)) < p
            shares[t] = float(adm.mean()) if len(sel) else float("nan")
            if len(sel):
                add(
                    len(sel),
                    record_type="feedback",
                    la_id=la,
                    keyworker_id=kw_ids[fam_kw[sel]],
                    family_id=fam_ids[sel],
                    timepoint=t,
                    instrument="SCORE-15",
                    administered=adm,
                    date=np.datetime_as_string(date[ok], unit="D"),
                )
        realised[str(la)] = {
            **{f"{c}_days_delivered": float(n) for c, n in held_days.items()},
            "clinician_fte_months": float(fte * len(months)),
            "supervision_sessions_per_group_month": held_n / (groups * len(months)),
            "share_sessions_with_genogram": gen_n / held_n if held_n else float("nan"),
            **{f"share_families_with_feedback_{t}": v for t, v in shares.items()},
        }
        realised[str(la)] = {
            k2: (None if isinstance(v2, float) and math.isnan(v2) else v2)  # type: ignore[misc]
            for k2, v2 in realised[str(la)].items()
        }
    cols = {c: (np.concatenate(v) if v else np.array([], dtype=object)) for c, v in recs.items()}
    out = pd.DataFrame(
        {
            c: _str_col(cols[c])
            for c in (
                "record_type",
                "la_id",
                "keyworker_id",
                "family_id",
                "session_id",
                "group_id",
                "course",
            )
        }
    )
    out["day"] = pd.array(  # type: ignore[call-overload]
        pd.to_numeric(pd.Series(cols["day"]), errors="coerce").to_numpy(), dtype="int64[pyarrow]"
    )
    out["date"] = _date_col(
        np.array(
            [
                np.datetime64(x, "D") if x is not None else np.datetime64("NaT")
                for x in cols["date"]
            ],
            dtype="datetime64[D]",
        )
    )
    out["month"] = _str_col(cols["month"])
    for c in ("attended", "genogram_used", "administered"):
        out[c] = pd.array([None if x is None else bool(x) for x in cols[c]], dtype="bool[pyarrow]")
    for c in ("duration_minutes", "fte"):
        out[c] = pd.array(  # type: ignore[call-overload]
            pd.to_numeric(pd.Series(cols[c]), errors="coerce").to_numpy(), dtype="double[pyarrow]"
        )
    out["timepoint"] = _str_col(cols["timepoint"])
    out["instrument"] = _str_col(cols["instrument"])
    return out, realised
