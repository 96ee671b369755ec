"""Allocate clusters to arms: complete, stratified, pair-matched and constrained.

Every method starts from the clusters in canonical order (ids sorted as strings)
and draws from ``numpy.random.Generator(numpy.random.PCG64(seed))``, so the same
inputs and seed give the same allocation whatever the row order of the file.

Random draws, in order (recorded so an auditor can re-derive them):

* simple: ``rng.permutation(n)``; position ``p`` of the permuted canonical order
  goes to the arm whose block (arm sizes in declared order) contains ``p``;
* stratified: strata in sorted label order, each ``rng.permutation(n_s)`` of its
  clusters; the first positions fill each arm's whole share of the stratum
  (``floor(n_s r_a / R)`` clusters, arms in declared order), the remaining
  positions are the stratum's left-over clusters.  The left-over clusters of
  every stratum (``odd_stratum = "random-extra"``), in canonical order, are then
  allocated together as one block by *simple* with the trial's arm sizes minus
  the arms' whole shares, so the trial-level ratio is kept (16 clusters in 1:1
  always give 8:8, as blockTools and randomizr do);
* matched: pairs in order of their smallest canonical position; one
  ``rng.integers(2)`` per pair, 0 putting the first cluster in the first arm;
* constrained: when the space is sampled, the sampling draws come first; then
  one ``rng.integers(M)`` picks the allocation from the kept set ordered by
  (score, code).

References
----------
Raab GM, Butcher I. Balance in cluster randomized trials. Stat Med 2001;20:351-65.
Li F, Lokhnygina Y, Murray DM, Heagerty PJ, DeLong ER. An evaluation of
constrained randomization for the design and analysis of group-randomized
trials. Stat Med 2016;35:1565-79.
Gallis JA, Li F, Yu H, Turner EL. cvcrand and cptest: commands for efficient
design and analysis of cluster randomized trials using constrained randomization
and permutation tests. Stata J 2018;18:357-78.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from trialkit._version import __version__
from trialkit.errors import Problem, RandomisationError, TrialkitWarning
from trialkit.models.coding import is_categorical, observed_levels
from trialkit.randomise import _space
from trialkit.randomise._coding import (
    ColumnReading,
    CovariateCoding,
    code_covariates,
    prepare_clusters,
)
from trialkit.randomise._matching import distances, optimal_pairs
from trialkit.randomise.settings import RandomisationSettings

BIT_GENERATOR = "PCG64"
SCHEMA_VERSION = 1


def make_rng(seed: int) -> np.random.Generator:
    """The generator every draw uses: ``Generator(PCG64(seed))``."""
    return np.random.Generator(np.random.PCG64(seed))


def _json_float(x: Any) -> Any:
    """JSON-safe value: non-finite floats become ``None``."""
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def _from_json_float(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _same(a: Any, b: Any) -> bool:
    """Value equality that treats NaN as equal to NaN and compares arrays elementwise."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and type(a) is type(b):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _bad_dict(what: str, key: str, message: str) -> RandomisationError:
    how = f"{what}.to_dict(full=True)" if what == "Allocation" else f"{what}.to_dict()"
    return RandomisationError(
        f"cannot rebuild {what} from a dictionary",
        [
            Problem(
                path=f"{what}.{key}",
                code="randomise.from_dict.invalid",
                message=message,
                hint=f"pass a dictionary written by {how}",
            )
        ],
    )


def _require(d: Mapping[str, Any], keys: tuple[str, ...], what: str) -> None:
    missing = [k for k in keys if k not in d]
    if missing:
        raise RandomisationError(
            f"{what} dictionary is incomplete",
            [
                Problem(
                    path=f"{what}.{k}",
                    code="randomise.from_dict.missing_key",
                    message=f"`{k}` must be present; got keys {sorted(d)}.",
                    hint=f"pass a dictionary written by {what}.to_dict"
                    + ("(full=True)" if what == "Allocation" else "()"),
                )
                for k in missing
            ],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Validity:
    """Pairwise co-allocation in the kept set (Li et al. 2016 validity check).

    Attributes
    ----------
    clusters : tuple of str
    together : tuple of tuple of float
        Share of kept allocations putting clusters i and j in the same arm.
    always, never, flagged : tuple of (str, str)
        Pairs always together, never together, or outside ``warn_range``, among
        the pairs the design leaves free.
    warn_range : tuple of float
    by_design : tuple of (str, str)
        Pairs whose co-allocation the stratification fixes before any constraint
        (two clusters forming a 1:1 stratum are never together in any allocation
        of the stratified space); they are not signs of over-constraint and are
        left out of ``always``, ``never`` and ``flagged``.

    Notes
    -----
    The check is conditional on the design: a pair counts as over-constrained
    only when the kept set puts it always (never) together while the whole
    stratified space does not.  The share of the whole space is exact: with
    stratum sizes :math:`m_s` and treated counts :math:`t_s` (one vector
    :math:`t` per allowed split, weighted by :math:`\\prod_s \\binom{m_s}{t_s}`),
    two clusters of stratum :math:`s` are together with probability
    :math:`[t_s(t_s-1) + (m_s-t_s)(m_s-t_s-1)] / [m_s(m_s-1)]` and clusters of
    strata :math:`s \\ne r` with :math:`p_s p_r + (1-p_s)(1-p_r)`,
    :math:`p_s = t_s/m_s`.
    """

    clusters: tuple[str, ...]
    together: tuple[tuple[float, ...], ...]
    always: tuple[tuple[str, str], ...]
    never: tuple[tuple[str, str], ...]
    flagged: tuple[tuple[str, str], ...]
    warn_range: tuple[float, float]
    by_design: tuple[tuple[str, str], ...] = ()

    @property
    def valid(self) -> bool:
        return not self.always and not self.never

    def to_frame(self) -> pd.DataFrame:
        rows = []
        n = len(self.clusters)
        for i in range(n):
            for j in range(i + 1, n):
                rows.append(
                    {
                        "cluster_1": self.clusters[i],
                        "cluster_2": self.clusters[j],
                        "share_together": self.together[i][j],
                    }
                )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clusters": list(self.clusters),
            "together": [list(r) for r in self.together],
            "always": [list(p) for p in self.always],
            "never": [list(p) for p in self.never],
            "flagged": [list(p) for p in self.flagged],
            "warn_range": list(self.warn_range),
        } | ({"by_design": [list(p) for p in self.by_design]} if self.by_design else {})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Validity:
        """Rebuild the diagnostics saved with :meth:`to_dict`."""
        _require(
            d, ("clusters", "together", "always", "never", "flagged", "warn_range"), "Validity"
        )
        return cls(
            clusters=tuple(str(c) for c in d["clusters"]),
            together=tuple(tuple(float(x) for x in r) for r in d["together"]),
            always=tuple((str(a), str(b)) for a, b in d["always"]),
            never=tuple((str(a), str(b)) for a, b in d["never"]),
            flagged=tuple((str(a), str(b)) for a, b in d["flagged"]),
            warn_range=(float(d["warn_range"][0]), float(d["warn_range"][1])),
            by_design=tuple((str(a), str(b)) for a, b in d.get("by_design", ())),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConstrainedSpace:
    """The kept (constrained) set of two-arm allocations.

    Attributes
    ----------
    n_possible : int
        Number of allocations in the full space.
    n_considered : int
        Number enumerated (= ``n_possible``) or distinct ones sampled.
    enumerated : bool
    rule : str
        ``"cutoff"``, ``"keep"``, ``"limits"`` or ``"all"``.
    target : int
        Requested number kept (ties at the cutoff are all kept, so ``n_kept >= target``).
    cutoff_score : float
        Largest kept score.
    codes, scores : ndarray
        Kept allocations (bit ``i`` set = canonical cluster ``i`` in the first arm),
        ordered by (score, code).
    chosen_index : int
        Row of ``codes`` chosen.
    score_summary : dict
        Distribution of scores over the considered space and over the kept set.

    Notes
    -----
    Equality compares values: ``codes`` and ``scores`` elementwise and NaN equal
    to NaN in ``score_summary`` (the generated dataclass equality cannot compare
    arrays).  :meth:`to_dict` holds the whole kept set and round-trips through
    JSON; :meth:`summary_dict` is the short form recorded in ``audit.json``.
    Codes are integers below :math:`2^{63}` (exact in Python's ``json``; above
    :math:`2^{53}`, i.e. with more than 53 clusters, a JavaScript reader would
    round them).
    """

    n_possible: int
    n_considered: int
    enumerated: bool
    rule: str
    target: int
    cutoff_score: float
    codes: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)
    chosen_index: int
    score_summary: dict[str, float]

    @property
    def n_kept(self) -> int:
        return len(self.codes)

    def to_frame(self, clusters: tuple[str, ...], arms: tuple[str, ...]) -> pd.DataFrame:
        """One row per kept allocation: a column per cluster holding its arm, ``score``, ``chosen``."""
        bits = _space.bits_of(self.codes, len(clusters))
        names = np.array(arms[:2], dtype=object)
        data: dict[str, Any] = {"rank": np.arange(1, len(self.codes) + 1)}
        for i, c in enumerate(clusters):
            data[c] = names[1 - bits[:, i]]
        data["score"] = self.scores
        data["chosen"] = np.arange(len(self.codes)) == self.chosen_index
        return pd.DataFrame(data)

    def summary_dict(self) -> dict[str, Any]:
        return {
            "n_possible": self.n_possible,
            "n_considered": self.n_considered,
            "enumerated": self.enumerated,
            "rule": self.rule,
            "target": self.target,
            "n_kept": self.n_kept,
            "cutoff_score": self.cutoff_score,
            "chosen_index": self.chosen_index,
            "chosen_code": int(self.codes[self.chosen_index]),
            "score_summary": dict(self.score_summary),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary of the whole kept set.

        The keys of :meth:`summary_dict` plus ``codes`` (integers) and ``scores``
        (floats), both in kept order; non-finite summary values become ``None``.
        """
        d = self.summary_dict()
        d["score_summary"] = {k: _json_float(v) for k, v in self.score_summary.items()}
        d["cutoff_score"] = _json_float(self.cutoff_score)
        d["codes"] = [int(c) for c in self.codes]
        d["scores"] = [float(x) for x in self.scores]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConstrainedSpace:
        """Rebuild the kept set saved with :meth:`to_dict`.

        Raises
        ------
        RandomisationError
            A key is missing (``summary_dict`` output has no ``codes``/``scores``),
            ``codes`` and ``scores`` differ in length, or ``chosen_index`` is
            outside the kept set.
        """
        what = "ConstrainedSpace"
        _require(
            d,
            (
                "n_possible",
                "n_considered",
                "enumerated",
                "rule",
                "target",
                "cutoff_score",
                "codes",
                "scores",
                "chosen_index",
                "score_summary",
            ),
            what,
        )
        codes = np.array([int(c) for c in d["codes"]], dtype=np.uint64)
        scores = np.array([_from_json_float(x) for x in d["scores"]], dtype=np.float64)
        if len(codes) != len(scores) or len(codes) == 0:
            raise _bad_dict(
                what,
                "codes",
                f"`codes` and `scores` must be non-empty and of equal length; "
                f"got {len(codes)} and {len(scores)}.",
            )
        chosen = int(d["chosen_index"])
        if not 0 <= chosen < len(codes):
            raise _bad_dict(
                what,
                "chosen_index",
                f"`chosen_index` must be in [0, {len(codes) - 1}]; got {chosen}.",
            )
        return cls(
            n_possible=int(d["n_possible"]),
            n_considered=int(d["n_considered"]),
            enumerated=bool(d["enumerated"]),
            rule=str(d["rule"]),
            target=int(d["target"]),
            cutoff_score=_from_json_float(d["cutoff_score"]),
            codes=codes,
            scores=scores,
            chosen_index=chosen,
            score_summary={
                str(k): _from_json_float(v) for k, v in dict(d["score_summary"]).items()
            },
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConstrainedSpace):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    """The result of :func:`randomise`.

    Holds the settings, seed and generator, the cluster ids in canonical order
    and their arms, strata/pairs where used, the covariate coding, the kept
    space and validity diagnostics of constrained designs, a balance table and
    how each column was read (``reading``: types, and every cell read
    differently from how it was written); never the input data themselves.

    Notes
    -----
    ``to_dict(full=True)`` holds everything, and
    ``Allocation.from_dict(json.loads(json.dumps(a.to_dict(full=True)))) == a``.
    Equality compares values field by field, with NaN equal to NaN (balance rows
    of an arm with one cluster have NaN sds) and the kept space compared
    elementwise.
    """

    method: str
    settings: RandomisationSettings
    seed: int
    bit_generator: str
    clusters: tuple[str, ...]
    arms: tuple[str, ...]
    stratum: tuple[str, ...] | None = None
    pair: tuple[str, ...] | None = None
    coding: CovariateCoding | None = None
    space: ConstrainedSpace | None = None
    validity: Validity | None = None
    balance: tuple[dict[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()
    reading: ColumnReading | None = None

    def to_frame(self) -> pd.DataFrame:
        """``cluster, arm`` (plus ``stratum``/``pair``) in canonical order."""
        data: dict[str, Any] = {"cluster": list(self.clusters), "arm": list(self.arms)}
        if self.stratum is not None:
            data["stratum"] = list(self.stratum)
        if self.pair is not None:
            data["pair"] = list(self.pair)
        return pd.DataFrame(data)

    def balance_frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.balance))

    def arm_sizes(self) -> dict[str, int]:
        return {a: sum(1 for x in self.arms if x == a) for a in self.settings.arms}

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        """JSON-safe dictionary.

        Parameters
        ----------
        full : bool, default False
            Include the whole kept space (``space`` as
            :meth:`ConstrainedSpace.to_dict` rather than its summary) and the
            ``balance`` rows (non-finite values as ``None``), so that
            :meth:`from_dict` can rebuild the allocation.  The default output is
            the short form.
        """
        d = self._short_dict()
        if full:
            d["space"] = None if self.space is None else self.space.to_dict()
            d["balance"] = [{k: _json_float(v) for k, v in row.items()} for row in self.balance]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Allocation:
        """Rebuild an allocation saved with ``to_dict(full=True)``.

        Raises
        ------
        RandomisationError
            The dictionary is of another schema version, lacks a key, or is the
            short form of :meth:`to_dict` (no ``balance``, or a space summary
            without ``codes``), from which the kept space cannot be rebuilt.
        """
        what = "Allocation"
        if d.get("schema_version") != SCHEMA_VERSION:
            raise _bad_dict(
                what,
                "schema_version",
                f"`schema_version` must be {SCHEMA_VERSION}; got {d.get('schema_version')!r}.",
            )
        _require(
            d,
            (
                "method",
                "settings",
                "seed",
                "bit_generator",
                "clusters",
                "arms",
                "stratum",
                "pair",
                "coding",
                "space",
                "validity",
                "balance",
                "warnings",
            ),
            what,
        )
        space = d["space"]
        if space is not None and "codes" not in space:
            raise _bad_dict(
                what,
                "space",
                "`space` must hold the kept allocations (`codes`, `scores`); got only its summary.",
            )
        text_keys = ("covariate", "level", "statistic")
        balance = tuple(
            {
                str(k): (v if k in text_keys or v is not None else float("nan"))
                for k, v in dict(row).items()
            }
            for row in d["balance"]
        )
        return cls(
            method=str(d["method"]),
            settings=RandomisationSettings.from_mapping(d["settings"]),
            seed=int(d["seed"]),
            bit_generator=str(d["bit_generator"]),
            clusters=tuple(str(c) for c in d["clusters"]),
            arms=tuple(str(a) for a in d["arms"]),
            stratum=None if d["stratum"] is None else tuple(str(x) for x in d["stratum"]),
            pair=None if d["pair"] is None else tuple(str(x) for x in d["pair"]),
            coding=None if d["coding"] is None else CovariateCoding.from_dict(d["coding"]),
            space=None if space is None else ConstrainedSpace.from_dict(space),
            validity=None if d["validity"] is None else Validity.from_dict(d["validity"]),
            balance=balance,
            warnings=tuple(str(w) for w in d["warnings"]),
            reading=None if d.get("reading") is None else ColumnReading.from_dict(d["reading"]),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Allocation):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))

    def _short_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "trialkit_version": __version__,
            "method": self.method,
            "settings": self.settings.to_dict(),
            "seed": self.seed,
            "bit_generator": self.bit_generator,
            "clusters": list(self.clusters),
            "arms": list(self.arms),
            "stratum": None if self.stratum is None else list(self.stratum),
            "pair": None if self.pair is None else list(self.pair),
            "coding": None if self.coding is None else self.coding.to_dict(),
            "space": None if self.space is None else self.space.summary_dict(),
            "validity": None if self.validity is None else self.validity.to_dict(),
            "warnings": list(self.warnings),
            "reading": None if self.reading is None else self.reading.to_dict(),
        }

    def summary(self) -> str:
        sizes = ", ".join(f"{a}: {k}" for a, k in self.arm_sizes().items())
        lines = [
            f"{self.method} randomisation of {len(self.clusters)} clusters ({sizes}); seed {self.seed} ({self.bit_generator})"
        ]
        if self.space is not None:
            s = self.space
            lines.append(
                f"space: {s.n_kept} kept of {s.n_considered} {'enumerated' if s.enumerated else 'sampled'} "
                f"({s.n_possible} possible), rule {s.rule}, cutoff score {s.cutoff_score:.6g}"
            )
        for a in self.settings.arms:
            members = [c for c, x in zip(self.clusters, self.arms, strict=True) if x == a]
            lines.append(f"{a}: {', '.join(members)}")
        if self.reading is not None and self.reading.types:
            lines.append(self.reading.summary())
            lines.extend(f"read: {note}" for note in self.reading.notes)
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Allocation(method={self.method!r}, n_clusters={len(self.clusters)}, seed={self.seed}, arms={self.arm_sizes()})"


def _split(n: int, ratio: tuple[int, ...]) -> tuple[list[int], int]:
    total = sum(ratio)
    base = [n * r // total for r in ratio]
    return base, n - sum(base)


def _assign_block(
    rng: np.random.Generator, n: int, settings: RandomisationSettings, where: str
) -> list[int]:
    """Arm index for each of ``n`` units (in the given order) by complete randomisation."""
    base, extra = _split(n, settings.ratio)
    if extra and settings.odd_stratum == "error":
        raise RandomisationError.from_problem(
            path=where,
            code="randomise.input.odd_stratum",
            message=f"{n} clusters cannot be split exactly in the ratio {':'.join(map(str, settings.ratio))}.",
            hint="set odd_stratum = 'random-extra' to give left-over clusters to arms at random",
        )
    perm = rng.permutation(n)
    sizes = list(base)
    if extra:
        for a in rng.permutation(len(sizes))[:extra]:
            sizes[int(a)] += 1
    labels = np.repeat(np.arange(len(sizes)), sizes)
    out = [0] * n
    for pos, unit in enumerate(perm):
        out[int(unit)] = int(labels[pos])
    return out


def _assign_strata(
    rng: np.random.Generator, stratum: tuple[str, ...], settings: RandomisationSettings
) -> list[int]:
    """Arm index of each cluster of a stratified design (draws in the module docstring).

    Each stratum fills every arm's whole share at random; the left-over clusters
    of all strata form one block allocated at random so that the trial's arm
    sizes are those of complete randomisation of all clusters.
    """
    n = len(stratum)
    out = [-1] * n
    whole = [0] * len(settings.ratio)
    leftovers: list[int] = []
    for lab in sorted(set(stratum)):
        pos = [i for i, s in enumerate(stratum) if s == lab]
        base, extra = _split(len(pos), settings.ratio)
        if extra and settings.odd_stratum == "error":
            raise RandomisationError.from_problem(
                path=f"clusters stratum {lab}",
                code="randomise.input.odd_stratum",
                message=f"{len(pos)} clusters cannot be split exactly in the ratio "
                f"{':'.join(map(str, settings.ratio))}.",
                hint="set odd_stratum = 'random-extra' to allocate left-over clusters at random",
            )
        labels = np.repeat(np.arange(len(base)), base)
        for k, unit in enumerate(rng.permutation(len(pos))):
            if k < len(labels):
                out[pos[int(unit)]] = int(labels[k])
            else:
                leftovers.append(pos[int(unit)])
        whole = [w + b for w, b in zip(whole, base, strict=True)]
    if leftovers:
        leftovers.sort()
        sizes, extra = _split(n, settings.ratio)
        if extra:
            for a in rng.permutation(len(sizes))[:extra]:
                sizes[int(a)] += 1
        sizes = [s - w for s, w in zip(sizes, whole, strict=True)]
        labels = np.repeat(np.arange(len(sizes)), sizes)
        for k, unit in enumerate(rng.permutation(len(leftovers))):
            out[leftovers[int(unit)]] = int(labels[k])
    return out


def _strata_labels(frame: pd.DataFrame, strata: tuple[str, ...]) -> list[str]:
    return ["|".join(str(frame[c].iloc[i]) for c in strata) for i in range(len(frame))]


def _balance(
    frame: pd.DataFrame, covariates: list[str], arms_of: list[str], arms: tuple[str, ...]
) -> tuple[dict[str, Any], ...]:
    rows: list[dict[str, Any]] = []
    arm_arr = np.array(arms_of, dtype=object)
    for cov in covariates:
        s = frame[cov]
        if is_categorical(s):
            for lev in observed_levels(s):
                x = (s == lev).to_numpy(dtype=float)
                rows.append(_balance_row(cov, str(lev), x, arm_arr, arms, kind="proportion"))
        else:
            rows.append(_balance_row(cov, "", s.to_numpy(dtype=float), arm_arr, arms, kind="mean"))
    return tuple(rows)


def _balance_row(
    cov: str, level: str, x: np.ndarray, arm_arr: np.ndarray, arms: tuple[str, ...], *, kind: str
) -> dict[str, Any]:
    row: dict[str, Any] = {"covariate": cov, "level": level, "statistic": kind}
    sd_all = float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")
    for a in arms:
        xa = x[arm_arr == a]
        row[f"n_{a}"] = int(len(xa))
        row[f"mean_{a}"] = float(xa.mean()) if len(xa) else float("nan")
        row[f"sd_{a}"] = float(xa.std(ddof=1)) if len(xa) > 1 else float("nan")
    m0, m1 = row[f"mean_{arms[0]}"], row[f"mean_{arms[1]}"]
    row["difference"] = m0 - m1
    row["std_difference"] = (m0 - m1) / sd_all if sd_all > 0 else float("nan")
    return row


def _validity(
    codes: np.ndarray,
    clusters: tuple[str, ...],
    warn: tuple[float, float],
    design: np.ndarray | None = None,
) -> Validity:
    """Pairwise co-allocation of the kept set, judged against the design's shares ``design``."""
    n = len(clusters)
    share = _space.pair_together(codes, n)
    always, never, flagged, fixed = [], [], [], []
    tol = 1e-12
    for i in range(n):
        for j in range(i + 1, n):
            v = share[i, j]
            p = (clusters[i], clusters[j])
            if design is not None and (design[i, j] <= tol or design[i, j] >= 1 - tol):
                fixed.append(p)
            elif v >= 1 - tol:
                always.append(p)
            elif v <= tol:
                never.append(p)
            elif v < warn[0] or v > warn[1]:
                flagged.append(p)
    return Validity(
        clusters=clusters,
        together=tuple(tuple(float(x) for x in r) for r in share),
        always=tuple(always),
        never=tuple(never),
        flagged=tuple(flagged),
        warn_range=warn,
        by_design=tuple(fixed),
    )


def _summary(scores: np.ndarray) -> dict[str, float]:
    """Mean, sd (n - 1) and quantiles (R type 7) as cvcrand's ``Bscores`` summary."""
    probs = [0.0, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 0.9, 0.95, 1.0]
    names = ["min", "q05", "q10", "q20", "q25", "q30", "median", "q75", "q90", "q95", "max"]
    q = np.quantile(scores, probs)
    out = {name: float(v) for name, v in zip(names, q, strict=True)}
    out["mean"] = float(scores.mean())
    out["sd"] = float(scores.std(ddof=1)) if len(scores) > 1 else float("nan")
    return out


def stratified_design(
    groups: list[np.ndarray], settings: RandomisationSettings
) -> tuple[list[list[int]], list[tuple[int, ...]], int]:
    """Allowed treated counts per stratum, every admissible vector of them, and the total.

    A stratum splits exactly in the ratio or takes one of the two nearest
    counts; left-over clusters are shared so that the trial's split is as close
    to the ratio as possible.
    """
    n = sum(len(g) for g in groups)
    r0, r1 = settings.ratio[:2]
    allowed: list[list[int]] = []
    for g in groups:
        base = len(g) * r0 // (r0 + r1)
        exact = len(g) * r0 % (r0 + r1) == 0
        if not exact and settings.odd_stratum == "error":
            raise RandomisationError.from_problem(
                path="clusters",
                code="randomise.input.odd_stratum",
                message=f"a stratum of {len(g)} clusters cannot be split exactly in the ratio {r0}:{r1}.",
                hint="set odd_stratum = 'random-extra'",
            )
        allowed.append([base] if exact else [base, base + 1])
    total_t = sum(a[0] for a in allowed)
    n_extra = sum(len(a) - 1 for a in allowed)
    if n_extra:
        # Left-over clusters are shared so the overall split is as close to the ratio as possible.
        total_t = n * r0 // (r0 + r1)
        total_t = max(min(total_t, sum(a[-1] for a in allowed)), sum(a[0] for a in allowed))
    combos = _space.stratified_sizes([len(g) for g in groups], total_t, allowed)
    if _space.count_stratified(groups, combos) == 0 or total_t == 0 or total_t == n:
        raise RandomisationError.from_problem(
            path="randomisation.ratio",
            code="randomise.input.impossible_ratio",
            message=f"no allocation of {n} clusters fits the ratio {r0}:{r1}.",
            hint="check the ratio and the strata sizes",
        )
    return allowed, combos, total_t


def build_space(
    z: np.ndarray,
    coding: CovariateCoding,
    settings: RandomisationSettings,
    rng: np.random.Generator,
    groups: list[np.ndarray],
    *,
    keep_all: bool = False,
) -> ConstrainedSpace:
    """Enumerate or sample the two-arm space, score it and select the kept set.

    ``groups`` are the canonical positions of each stratum (one group when
    unstratified).  With ``keep_all`` every considered allocation is kept (the
    reference space of a simple or stratified design for a randomisation test).
    """
    n = z.shape[0]
    if n > _space.MAX_CLUSTERS:
        raise RandomisationError.from_problem(
            path="clusters",
            code="randomise.input.too_many_clusters",
            message=f"constrained randomisation supports at most {_space.MAX_CLUSTERS} clusters; got {n}.",
            hint="stratify first or use stratified randomisation",
        )
    allowed, combos, total_t = stratified_design(groups, settings)
    n_possible = _space.count_stratified(groups, combos)
    n_t, n_c = total_t, n - total_t
    w = np.asarray(coding.weights, dtype=float)
    scale = 1.0 / n_t + 1.0 / n_c
    limits = None
    if settings.limits and not keep_all:
        unknown = sorted(set(settings.limits) - set(coding.source))
        if unknown:
            raise RandomisationError.from_problem(
                path="randomisation.limits",
                code="randomise.settings.limit_unknown",
                message=f"limits given for {unknown}, which are not covariates.",
                hint=f"covariates are {sorted(set(coding.source))}",
            )
        limits = np.array([settings.limits.get(src, np.inf) / scale for src in coding.source])
    enumerated = n_possible <= settings.enumerate_limit or n_possible <= settings.samples
    feasible = None
    if enumerated and len(groups) == 1:
        codes, raw, feasible = _space.enumerate_scores(z, w, n_t, settings.metric, limits)
    else:
        if enumerated:
            codes = _space.enumerate_stratified(groups, combos)
        else:
            codes = _space.sample_codes(rng, groups, allowed, n_t, n, settings.samples)
        raw, sums = _space.score_codes(codes, z, w, settings.metric)
        if limits is not None:
            feasible = np.all(np.abs(sums) <= limits, axis=1)
    ref = float(w.sum()) * n_t * n_c / n
    scores = _space.quantise(raw, ref)
    if keep_all:
        idx, cut, target = _space.select(codes, scores, keep=len(codes), cutoff=None, feasible=None)
        rule = "all"
    else:
        keep = settings.keep
        idx, cut, target = _space.select(
            codes,
            scores,
            keep=keep,
            cutoff=settings.cutoff if keep is None else None,
            feasible=feasible,
        )
        rule = "limits" if feasible is not None else ("keep" if keep is not None else "cutoff")
        if len(idx) == 0:
            raise RandomisationError.from_problem(
                path="randomisation.limits",
                code="randomise.space.empty",
                message="no allocation satisfies every covariate limit.",
                hint="relax the limits",
            )
    kept_codes = codes[idx]
    kept_scores = scores[idx]
    summary = {f"all_{k}": v for k, v in _summary(scores).items()}
    summary.update({f"kept_{k}": v for k, v in _summary(kept_scores).items()})
    chosen = int(rng.integers(len(kept_codes)))
    return ConstrainedSpace(
        n_possible=int(n_possible),
        n_considered=len(codes),
        enumerated=bool(enumerated),
        rule=rule,
        target=int(target),
        cutoff_score=float(cut),
        codes=kept_codes,
        scores=kept_scores,
        chosen_index=chosen,
        score_summary=summary,
    )


def randomise(
    clusters: pd.DataFrame,
    settings: RandomisationSettings | None = None,
    *,
    seed: int,
    **options: Any,
) -> Allocation:
    """Randomise clusters to arms.

    Parameters
    ----------
    clusters : DataFrame
        One row per cluster: the id column plus covariates/strata/pairs columns,
        as read from the file (:func:`~trialkit.randomise.read_clusters`).
        Columns are read by the data stage's rules (:mod:`trialkit.data.parse`):
        with the declared types and levels of ``settings`` (``declared_types``,
        ``levels``), otherwise inferred — a number when every cell reads as one
        (``1,412`` included), a category when none does; see
        :func:`trialkit.randomise._coding.prepare_clusters`.
    settings : RandomisationSettings, optional
        All settings; alternatively pass them as keyword ``options``
        (``method="constrained", covariates=("region", "imd_score")``...).
    seed : int
        Seed of ``numpy.random.Generator(PCG64(seed))``.

    Returns
    -------
    Allocation

    Raises
    ------
    RandomisationError
        Bad input (duplicate or missing ids, missing covariate values, text in a
        number, a level not declared or spelt two ways, a row count other than
        ``n_clusters``, constant covariates, more arms than clusters, a stratum
        too small, an impossible ratio) or an over-constrained space (pairs
        always/never together that the stratification leaves free).  Rows are
        1-based data rows, header not counted.

    Notes
    -----
    Constrained randomisation (Raab & Butcher 2001; cvcrand): covariates are
    dummy-coded (reference level = first sorted level, no column) and
    standardised with the n - 1 sd; the score of allocation A is
    :math:`l_2(A) = \\sum_k w_k (\\sum_{i\\in A} z_{ik})^2` or
    :math:`l_1(A) = \\sum_k w_k |\\sum_{i\\in A} z_{ik}|`, a constant multiple of
    cvcrand's score for fixed arm sizes, so the ranking is the same.  Every
    allocation is enumerated when there are at most ``enumerate_limit``;
    otherwise ``samples`` distinct allocations are drawn uniformly.  Allocations
    are ranked by (score rounded to 12 significant digits, code); with target
    m = keep or max(1, round(cutoff N)) (halves to even, as cvcrand), all allocations scoring at most the m-th
    smallest score are kept (ties at the cutoff are kept together).  Over all
    :math:`\\binom{n}{n_T}` allocations the mean of :math:`l_2` with unit weights
    is exactly :math:`K n_T n_C / n`.
    """
    if settings is None:
        settings = RandomisationSettings(**options)
    elif options:
        raise RandomisationError("pass either settings or keyword options, not both")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise RandomisationError.from_problem(
            path="seed",
            code="randomise.settings.seed",
            message=f"`seed` must be a non-negative integer; got {seed!r}.",
        )
    seed = int(seed)
    needed = list(settings.strata) + list(settings.covariates)
    if settings.pairs_column:
        needed.append(settings.pairs_column)
    labels = [*settings.strata, *([settings.pairs_column] if settings.pairs_column else [])]
    frame, reading = prepare_clusters(
        clusters,
        settings.id_column,
        needed,
        labels=tuple(labels),
        declared_types=settings.declared_types,
        levels=settings.levels,
        n_clusters=settings.n_clusters,
    )
    ids = tuple(frame.index)
    n = len(ids)
    n_arms = len(settings.arms)
    if n < n_arms:
        raise RandomisationError.from_problem(
            path="clusters",
            code="randomise.input.too_few_clusters",
            message=f"there must be at least as many clusters as arms; got {n} clusters for {n_arms} arms.",
            hint="check the clusters file",
        )
    base, _ = _split(n, settings.ratio)
    if settings.method in ("simple", "constrained") and min(base) == 0:
        raise RandomisationError.from_problem(
            path="randomisation.ratio",
            code="randomise.input.impossible_ratio",
            message=f"ratio {':'.join(map(str, settings.ratio))} leaves an arm empty with {n} clusters.",
            hint="use a ratio the number of clusters can honour",
        )
    rng = make_rng(seed)
    stratum: tuple[str, ...] | None = None
    pair: tuple[str, ...] | None = None
    coding: CovariateCoding | None = None
    space: ConstrainedSpace | None = None
    validity: Validity | None = None
    notes: list[str] = []
    arms = settings.arms
    if settings.strata:
        labels = _strata_labels(frame, settings.strata)
        stratum = tuple(labels)
        small = []
        for lab in sorted(set(labels)):
            size = labels.count(lab)
            if (
                settings.method == "stratified"
                and size < n_arms
                and settings.odd_stratum == "error"
            ):
                small.append(
                    Problem(
                        path=f"clusters stratum {lab}",
                        code="randomise.input.small_stratum",
                        message=f"stratum `{lab}` must have at least {n_arms} clusters; got {size}.",
                        hint="merge strata or set odd_stratum = 'random-extra'",
                    )
                )
        if small:
            raise RandomisationError("strata too small", small)
    if settings.method == "simple":
        idx = _assign_block(rng, n, settings, "clusters")
        arm_of = [arms[i] for i in idx]
    elif settings.method == "stratified":
        assert stratum is not None
        arm_of = [arms[a] for a in _assign_strata(rng, stratum, settings)]
    elif settings.method == "matched":
        arm_of, pair = _matched(frame, settings, rng)
        if settings.covariates:
            _, coding = code_covariates(frame, list(settings.covariates), dict(settings.weights))
    else:
        z, coding = code_covariates(frame, list(settings.covariates), dict(settings.weights))
        groups = _space.group_positions(stratum, n)
        space = build_space(z, coding, settings, rng, groups)
        chosen = int(space.codes[space.chosen_index])
        arm_of = [arms[0] if (chosen >> i) & 1 else arms[1] for i in range(n)]
        design = None
        if stratum is not None:
            _, combos, _ = stratified_design(groups, settings)
            design = _space.design_together(groups, combos, n)
        validity = _validity(space.codes, ids, tuple(settings.validity_warn), design)  # type: ignore[arg-type]
        _check_validity(validity, notes)
    balance_covs = list(dict.fromkeys(list(settings.covariates) + list(settings.strata)))
    balance = _balance(frame, balance_covs, arm_of, arms) if balance_covs else ()
    return Allocation(
        method=settings.method,
        settings=settings,
        seed=seed,
        bit_generator=BIT_GENERATOR,
        clusters=ids,
        arms=tuple(arm_of),
        stratum=stratum,
        pair=pair,
        coding=coding,
        space=space,
        validity=validity,
        balance=balance,
        warnings=tuple(notes),
        reading=reading,
    )


def _check_validity(validity: Validity, notes: list[str]) -> None:
    problems = [
        Problem(
            path=f"clusters {a} and {b}",
            code="randomise.validity.always_together",
            message=f"clusters `{a}` and `{b}` are in the same arm in every kept allocation.",
            hint="the space is over-constrained: raise the cutoff/keep or relax the limits",
        )
        for a, b in validity.always
    ] + [
        Problem(
            path=f"clusters {a} and {b}",
            code="randomise.validity.never_together",
            message=f"clusters `{a}` and `{b}` are never in the same arm in the kept allocations.",
            hint="the space is over-constrained: raise the cutoff/keep or relax the limits",
        )
        for a, b in validity.never
    ]
    if problems:
        raise RandomisationError("the constrained space is not valid (over-constrained)", problems)
    if validity.flagged:
        lo, hi = validity.warn_range
        msg = (
            f"{len(validity.flagged)} pair(s) of clusters are together in fewer than {lo:.0%} or more than "
            f"{hi:.0%} of kept allocations: "
            + ", ".join(f"{a}-{b}" for a, b in validity.flagged[:10])
            + (" ..." if len(validity.flagged) > 10 else "")
        )
        notes.append(msg)
        warnings.warn(msg, TrialkitWarning, stacklevel=3)


def _matched(
    frame: pd.DataFrame, settings: RandomisationSettings, rng: np.random.Generator
) -> tuple[list[str], tuple[str, ...]]:
    n = len(frame)
    ids = list(frame.index)
    if settings.pairs_column:
        labels = [str(v) for v in frame[settings.pairs_column]]
        problems = []
        for lab in sorted(set(labels)):
            members = [ids[i] for i, x in enumerate(labels) if x == lab]
            if len(members) != 2:
                problems.append(
                    Problem(
                        path=f"clusters column {settings.pairs_column}",
                        code="randomise.input.bad_pair",
                        message=f"pair `{lab}` must have exactly 2 clusters; got {len(members)} ({', '.join(members)}).",
                        hint="give every pair label to exactly two clusters",
                    )
                )
        if problems:
            raise RandomisationError("pairs are not pairs", problems)
        pairs_idx = []
        for lab in set(labels):
            i, j = (k for k, x in enumerate(labels) if x == lab)
            pairs_idx.append((min(i, j), max(i, j), lab))
        pairs_idx.sort()
        pair_label = labels
    else:
        if n % 2:
            raise RandomisationError.from_problem(
                path="clusters",
                code="randomise.input.odd_pairs",
                message=f"pair matching needs an even number of clusters; got {n}.",
                hint="drop a cluster by design, or use stratified randomisation",
            )
        z, _ = code_covariates(frame, list(settings.covariates), dict(settings.weights))
        z = z * np.sqrt(
            np.asarray([settings.weights.get(c, 1.0) for c in _sources(frame, settings)])
        )
        pairs = optimal_pairs(distances(z, settings.match_distance))
        width = len(str(len(pairs)))
        pairs_idx = [(i, j, f"P{k + 1:0{width}d}") for k, (i, j) in enumerate(pairs)]
        pair_label = [""] * n
        for i, j, lab in pairs_idx:
            pair_label[i] = pair_label[j] = lab
    arm_of = [""] * n
    a0, a1 = settings.arms
    for i, j, _lab in pairs_idx:
        flip = int(rng.integers(2))
        arm_of[i], arm_of[j] = (a0, a1) if flip == 0 else (a1, a0)
    return arm_of, tuple(pair_label)


def _sources(frame: pd.DataFrame, settings: RandomisationSettings) -> list[str]:
    out = []
    for cov in settings.covariates:
        s = frame[cov]
        if is_categorical(s):
            out.extend([cov] * (len(observed_levels(s)) - 1))
        else:
            out.append(cov)
    return out


def n_allocations(n: int, n_treated: int) -> int:
    """Number of two-arm allocations, C(n, n_T)."""
    return math.comb(n, n_treated)
