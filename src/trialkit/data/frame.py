"""Analysis frames (the contract with the analysis stage), flow counts and exclusions.

:func:`analysis_frame` returns one row per analysed entity for one outcome with
``la_id, keyworker_id, [family_id], arm, treated, y, baseline`` and the protocol's
covariates merged in at their levels, plus an exclusions table that accounts for
every randomised entity that is not analysed (nothing is dropped silently).

Retention (binary keyworker outcome with instrument ``binary`` and no
measurements of its own) is derived: ``y = 1`` when the keyworker's
``leave_date`` is empty or on/after the trial end date (``leave_date`` is the last
day in post), else 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from trialkit.data._columns import encoded
from trialkit.data.load import index_in, to_object
from trialkit.errors import DataError
from trialkit.protocol.model import Outcome, Protocol

if TYPE_CHECKING:
    from trialkit.data._result import TrialData

__all__ = ["AnalysisFrame", "analysis_frame", "build_flow_and_exclusions"]

EXCLUSION_COLUMNS = ["entity", "entity_id", "reason", "stage"]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class AnalysisFrame:
    """The analysable data for one outcome.

    Attributes
    ----------
    outcome_id, timepoint : str
    level : {"family", "keyworker"}
    frame : DataFrame
        One row per analysed entity (numpy-backed dtypes): ``la_id``,
        ``keyworker_id``, ``family_id`` (family outcomes), ``arm``, ``treated``
        (0/1), ``y``, ``baseline`` (NaN when not declared) and the covariates.
    exclusions : DataFrame
        ``entity, entity_id, reason, stage`` for every candidate not analysed.
    n_candidates : int
        Entities in randomised LAs (the ITT denominator).
    """

    outcome_id: str
    timepoint: str
    level: str
    frame: pd.DataFrame
    exclusions: pd.DataFrame
    n_candidates: int

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def exclusion_counts(self) -> pd.DataFrame:
        """Number excluded per reason."""
        return self.exclusions.groupby("reason", sort=True).size().rename("n").reset_index()

    def summary(self) -> str:
        return (
            f"{self.outcome_id} at {self.timepoint}: {len(self.frame)} of {self.n_candidates} "
            f"{self.level} entities analysed, {len(self.exclusions)} excluded"
        )

    def __repr__(self) -> str:
        return (
            f"AnalysisFrame(outcome_id={self.outcome_id!r}, timepoint={self.timepoint!r}, "
            f"n={len(self.frame)}, excluded={len(self.exclusions)})"
        )


def _text_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (``-1`` for missing) and distinct values of a text column."""
    enc = encoded(values)
    if enc is not None:
        return enc.codes, enc.uniques  # already factorised during validation
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = np.asarray(values.cat.categories, dtype=object)
        return np.asarray(values.cat.codes.to_numpy(), dtype=np.int64), cats
    codes, uniques = pd.factorize(to_object(values), use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=object)


def _code_in(uniques: np.ndarray, value: str) -> int:
    """Position of ``value`` among the distinct values; -2 (matching no row) when absent."""
    hit = np.flatnonzero(uniques == value)
    return int(hit[0]) if len(hit) else -2


def _s(x: pd.Series) -> pd.Series:
    if isinstance(x.dtype, pd.StringDtype):
        return pd.Series(to_object(x), index=x.index, dtype=object)
    return x.astype(object).where(x.notna(), None)


def _candidates(
    level: str,
    tables: Mapping[str, pd.DataFrame],
    arm_of: Mapping[str, str],
    end: dt.date | None = None,
) -> pd.DataFrame:
    """Entities of ``level`` with ids, LA, keyworker, arm (first row per id).

    ``reason`` holds why a candidate cannot be analysed whatever the outcome
    (:func:`_static_reasons`), None when nothing rules it out.
    """
    if level == "family":
        f = tables["families"]
        out = pd.DataFrame(
            {
                "entity_id": _s(f["family_id"]),
                "la_id": _s(f["la_id"]),
                "keyworker_id": _s(f["keyworker_id"]),
                "consented": f["consent_date"].notna().to_numpy(dtype=bool, na_value=False),
                "withdrawn": f["withdrawal_date"].notna().to_numpy(dtype=bool, na_value=False),
                "withdrawal_reason": _s(f["withdrawal_reason"]),
            }
        )
    else:
        k = tables["keyworkers"]
        out = pd.DataFrame(
            {
                "entity_id": _s(k["keyworker_id"]),
                "la_id": _s(k["la_id"]),
                "keyworker_id": _s(k["keyworker_id"]),
                "consented": True,
                "withdrawn": False,
                "withdrawal_reason": None,
                "leave_date": k["leave_date"].astype(object).where(k["leave_date"].notna(), None),
            }
        )
    out = out[out["entity_id"].notna()].drop_duplicates("entity_id").reset_index(drop=True)
    out["arm"] = out["la_id"].map(dict(arm_of))
    out["reason"] = pd.Series(_static_reasons(out, end), index=out.index, dtype=object)
    return out


def _left_post(cand: pd.DataFrame, end: dt.date | None) -> np.ndarray:
    """Candidates whose ``leave_date`` is before ``end`` (none without either)."""
    if "leave_date" not in cand.columns or end is None:
        return np.zeros(len(cand), dtype=bool)
    return np.asarray(
        cand["leave_date"].map(lambda v: v is not None and v < end).to_numpy(dtype=bool)
    )


def _static_reasons(cand: pd.DataFrame, end: dt.date | None) -> np.ndarray:
    """Why each candidate cannot be analysed for any outcome; None when nothing rules it out.

    In order, the first that applies: LA not in the allocation, not consented,
    withdrawn (with the reason), left post before ``end``.
    """
    out = np.full(len(cand), None, dtype=object)
    out[_left_post(cand, end)] = "left post"
    wd = cand["withdrawn"].to_numpy(dtype=bool)
    if wd.any():
        out[wd] = (
            "withdrawn: "
            + cand.loc[wd, "withdrawal_reason"].fillna("reason not recorded").astype(str)
        ).to_numpy(dtype=object)
    out[~cand["consented"].to_numpy(dtype=bool)] = "not consented"
    out[cand["arm"].isna().to_numpy()] = "LA not in allocation"
    return out


def _equal(values: pd.Series, value: str) -> np.ndarray:
    """``values == value`` as a bool array (by the codes of a categorical column)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.categories
        if value not in cats:
            return np.zeros(len(values), dtype=bool)
        return np.asarray(values.cat.codes.to_numpy() == cats.get_loc(value))
    return np.asarray((values == value).to_numpy(dtype=bool, na_value=False))


def _first_values(pos: np.ndarray, rows: np.ndarray, value: np.ndarray, n: int) -> np.ndarray:
    """Each candidate's value from its first row among ``rows`` (NaN for none).

    ``pos`` gives each score row's candidate (``-1`` for none): integer lookups,
    no object map.
    """
    at = pos[rows]
    found = at >= 0
    first_at, first = np.unique(at[found], return_index=True)
    y = np.full(n, np.nan)
    y[first_at] = value[rows][found][first]
    return y


def _retention(cand: pd.DataFrame, end: dt.date | None) -> np.ndarray:
    """Derived retention: 1 when ``leave_date`` is empty or on/after the trial end, else 0."""
    if end is None:
        raise DataError.from_problem(
            path="trial.end",
            code="data.no_trial_end",
            message="retention needs the trial end date; got none",
            hint="set [trial] end in the protocol",
        )
    return np.array([1.0 if v is None or v >= end else 0.0 for v in cand["leave_date"]])


def _positions(
    cand: pd.DataFrame,
    entity_id: pd.Series,
    coded: tuple[np.ndarray, np.ndarray] | None = None,
    arrow: dict[int, tuple[np.ndarray, pa.Array | None]] | None = None,
    keys: np.ndarray | None = None,
) -> np.ndarray:
    """Position in ``cand`` (unique ``entity_id``) of each score row's entity; -1 for none.

    The distinct ids are looked up once and spread to the rows by their codes
    (``coded``: the codes and distinct values of ``entity_id``, when the caller has
    them).  ``arrow`` keeps the pyarrow copies of the id arrays between calls, so
    that each is converted once; ``keys`` are the candidates' ids when the caller
    holds them (the same array for every call).
    """
    codes, uniques = coded if coded is not None else _text_codes(entity_id)
    values = np.asarray(uniques, dtype=object)
    if keys is None:
        keys = cand["entity_id"].to_numpy(dtype=object)
    if arrow is None:
        found = index_in(values, keys)
    else:
        v, k = _arrow_text(values, arrow), _arrow_text(keys, arrow)
        if v is None or k is None:
            found = index_in(values, keys)  # not all text: looked up as objects
        else:
            opts = pc.SetLookupOptions(value_set=k, skip_nulls=True)
            found = np.asarray(
                pc.index_in(v, options=opts).fill_null(-1).to_numpy(zero_copy_only=False),
                dtype=np.int64,
            )
    upos = np.append(found, -1)
    return np.asarray(upos[codes], dtype=np.int64)  # code -1 (missing) picks the final -1


def _arrow_text(
    values: np.ndarray, memo: dict[int, tuple[np.ndarray, pa.Array | None]]
) -> pa.Array | None:
    """``values`` as a pyarrow string array, converted once (None when not all text)."""
    hit = memo.get(id(values))
    if hit is None:
        try:
            arr: pa.Array | None = pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arr = None
        hit = memo[id(values)] = (values, arr)  # the array is kept: its id stays unique
    return hit[1]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class _Selection:
    """The candidates of one outcome and which of them are analysed."""

    cand: pd.DataFrame
    keep: np.ndarray
    reasons: np.ndarray
    y: np.ndarray
    baseline: np.ndarray
    has_arm: np.ndarray


def _select(
    oc: Outcome,
    tables: Mapping[str, pd.DataFrame],
    scores: pd.DataFrame,
    arm_of: Mapping[str, str],
    timepoint: str,
    end: dt.date | None,
    require_baseline: bool,
    cache: Mapping[str, pd.DataFrame] | None = None,
    include_missing: bool = False,
    positions: Mapping[str, np.ndarray] | None = None,
    memo: dict[tuple[str, str], np.ndarray] | None = None,
) -> _Selection:
    """Outcome values, baseline, kept candidates and the reason for each one left out.

    ``positions`` (by level) gives each row of ``scores`` its candidate, when the
    caller has looked them up for every outcome at once; ``memo`` keeps the
    comparisons of the score columns (and the values, under ``("value", "")``)
    between calls over the same ``scores``.
    """
    level = oc.level.value
    cand = cache[level] if cache is not None and level in cache else None
    if cand is None:
        cand = _candidates(level, tables, arm_of, end)
    memo = {} if memo is None else memo  # columns compared once for every outcome

    def equal(column: str, value: str) -> np.ndarray:
        if (column, value) not in memo:
            memo[(column, value)] = _equal(scores[column], value)
        return memo[(column, value)]

    if ("value", "") not in memo:
        memo[("value", "")] = scores["value"].to_numpy(dtype=float)
    is_oc = equal("outcome_id", oc.id)
    if positions is not None and level in positions:
        pos = positions[level][is_oc]
    else:
        pos = _positions(cand, scores["entity_id"][is_oc])
    value = memo[("value", "")][is_oc]
    at_t = equal("timepoint", timepoint)[is_oc]
    scored = not (oc.instrument == "binary" and level == "keyworker" and not is_oc.any())
    if scored:
        y = _first_values(pos, at_t, value, len(cand))
    else:
        y = _retention(cand, end)
    hit = pos[at_t]
    measured = np.zeros(len(cand), dtype=bool)
    measured[hit[hit >= 0]] = True
    baseline = np.full(len(cand), np.nan)
    if oc.baseline_timepoint and oc.baseline_timepoint != timepoint and scored:
        at_b = equal("timepoint", oc.baseline_timepoint)[is_oc]
        baseline = _first_values(pos, at_b, value, len(cand))
    has_arm = cand["arm"].notna().to_numpy()
    keep = has_arm & ~np.isnan(y)
    reasons = np.full(len(cand), None, dtype=object)
    if (~keep).any():
        reasons[~keep] = _why(cand, measured, timepoint, ~keep)
    if include_missing:
        # multiple imputation: every consented entity of an allocated LA stays (NaN outcome)
        keep = has_arm & cand["consented"].to_numpy(dtype=bool)
    elif require_baseline and oc.baseline_timepoint and scored:
        nob = keep & np.isnan(baseline)
        reasons[nob] = f"baseline missing ({oc.baseline_timepoint})"
        keep = keep & ~nob
    return _Selection(
        cand=cand, keep=keep, reasons=reasons, y=y, baseline=baseline, has_arm=has_arm
    )


def _why(cand: pd.DataFrame, measured: np.ndarray, timepoint: str, out: np.ndarray) -> np.ndarray:
    """Reason each candidate of ``out`` (a mask) has no value; first matching reason wins."""
    reasons = cand["reason"].to_numpy(dtype=object)[out]
    free = pd.isna(reasons)  # nothing rules it out: the score is the reason
    reasons[free] = np.where(
        measured[out][free],
        f"score missing at {timepoint} (too few items answered)",
        f"no measurement at {timepoint}",
    ).astype(object)
    return reasons


def _covariates(
    protocol: Protocol, tables: Mapping[str, pd.DataFrame], frame: pd.DataFrame, level: str
) -> pd.DataFrame:
    for cov in protocol.data.covariates:
        lv = cov.level.value
        if lv == "la":
            src, key, fkey = tables["clusters"], "la_id", "la_id"
        elif lv == "keyworker":
            src, key, fkey = tables["keyworkers"], "keyworker_id", "keyworker_id"
        elif lv == "family" and level == "family":
            src, key, fkey = tables["families"], "family_id", "family_id"
        else:
            continue
        if cov.name not in src.columns or cov.name in frame.columns:
            continue
        m = src[[key, cov.name]].drop_duplicates(key)
        vals = to_object(m[cov.name])
        at = pd.Index(m[key].astype(object)).get_indexer(frame[fkey].astype(object))
        taken = np.empty(len(at), dtype=object)
        taken[:] = np.nan  # as Series.map gives for a key it does not know
        taken[at >= 0] = vals[at[at >= 0]]
        col = pd.Series(taken, index=frame.index, dtype=object)
        if cov.type == "categorical":
            frame[cov.name] = (
                col.astype(object).where(col.notna(), None).astype("str").where(col.notna(), None)
            )
        else:
            frame[cov.name] = pd.to_numeric(col, errors="coerce").astype(float)
    return frame


def _frame_for(
    protocol: Protocol,
    oc: Outcome,
    tables: Mapping[str, pd.DataFrame],
    scores: pd.DataFrame,
    arm_of: Mapping[str, str],
    timepoint: str,
    start: dt.date | None,
    end: dt.date | None,
    require_baseline: bool,
    cache: dict[str, pd.DataFrame] | None = None,
    include_missing: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The analysis frame, the exclusions and the number of candidates of one outcome."""
    level = oc.level.value
    sel = _select(
        oc,
        tables,
        scores,
        arm_of,
        timepoint,
        end,
        require_baseline,
        cache,
        include_missing=include_missing,
    )
    cand, keep = sel.cand, sel.keep
    excl = pd.DataFrame(
        {
            "entity": level,
            "entity_id": cand.loc[~keep, "entity_id"].to_numpy(dtype=object),
            "reason": sel.reasons[~keep],
            "stage": f"analysis:{oc.id}",
        },
        columns=EXCLUSION_COLUMNS,
    )
    sub = cand[keep]
    arm = sub["arm"].astype(str)
    frame = pd.DataFrame(
        {"la_id": sub["la_id"].astype(str), "keyworker_id": sub["keyworker_id"].astype(str)}
    )
    if level == "family":
        frame["family_id"] = sub["entity_id"].astype(str)
    frame["arm"] = arm
    frame["treated"] = (arm == protocol.intervention_arm).astype("int64")
    frame["y"] = sel.y[keep].astype(float)
    frame["baseline"] = sel.baseline[keep].astype(float)
    frame = _covariates(protocol, tables, frame, level)
    sort = ["la_id", "keyworker_id"] + (["family_id"] if level == "family" else [])
    frame = frame.sort_values(sort, kind="stable").reset_index(drop=True)
    excl = excl.sort_values(["entity_id"], kind="stable").reset_index(drop=True)
    return frame, excl, int(sel.has_arm.sum())


def analysis_frame(
    trial_data: TrialData,
    protocol: Protocol,
    outcome_id: str,
    *,
    timepoint: str | None = None,
    require_baseline: bool | None = None,
    include_missing: bool = False,
) -> AnalysisFrame:
    """One row per analysed entity for ``outcome_id``.

    Parameters
    ----------
    trial_data : TrialData
        Result of :func:`trialkit.data.validate` (must have no errors and an allocation).
    protocol : Protocol
    outcome_id : str
    timepoint : str, optional
        Analysis timepoint; default the outcome's ``primary_timepoint`` (else last).
    require_baseline : bool, optional
        Exclude entities without a baseline score (reason recorded); default
        ``protocol.analysis.adjust_for_baseline``.
    include_missing : bool
        Keep every consented entity of an allocated LA, with ``y`` (and ``baseline``)
        NaN when not measured: the frame multiple imputation completes.  The
        exclusions then list only the entities outside that population.

    Returns
    -------
    AnalysisFrame
        ``.frame`` (numpy-backed dtypes) and ``.exclusions``.

    Raises
    ------
    DataError
        ``data.has_errors``, ``data.no_allocation``, ``data.unknown_outcome``,
        ``data.unknown_timepoint``.
    """
    if not trial_data.ok:
        raise DataError.from_problem(
            path="trial data",
            code="data.has_errors",
            message=f"analysis frames need valid data; got {len(trial_data.errors)} error(s)",
            hint="run trialkit validate and fix the errors first",
        )
    oc = _outcome_of(protocol, outcome_id)
    arm_of = trial_data.arms
    if not arm_of:
        raise DataError.from_problem(
            path="allocation",
            code="data.no_allocation",
            message="analysis frames need each LA's arm; no allocation was given",
            hint="validate with allocation_dir= (the output of trialkit randomise)",
        )
    tp = timepoint or oc.analysis_timepoint
    if tp not in oc.timepoints:
        raise DataError.from_problem(
            path=f"outcome {oc.id}",
            code="data.unknown_timepoint",
            message=f"timepoint must be one of {', '.join(oc.timepoints)}; got {tp!r}",
            hint="use a timepoint declared for the outcome",
        )
    rb = protocol.analysis.adjust_for_baseline if require_baseline is None else require_baseline
    frame, excl, n = _frame_for(
        protocol,
        oc,
        trial_data.tables,
        trial_data.scores,
        arm_of,
        tp,
        trial_data.trial_start,
        trial_data.trial_end,
        rb,
        include_missing=include_missing,
    )
    return AnalysisFrame(
        outcome_id=oc.id,
        timepoint=tp,
        level=oc.level.value,
        frame=frame,
        exclusions=excl,
        n_candidates=n,
    )


def _distinct_count(codes: np.ndarray) -> int:
    """Number of distinct codes, missing (``-1``) not counted (as ``nunique``)."""
    codes = codes[codes >= 0]
    if len(codes) == 0:
        return 0
    return int(np.count_nonzero(np.bincount(codes)))


def _text_labels(cand: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Codes of ``arm`` (with its distinct values), ``la_id`` and ``keyworker_id``.

    Missing values get ``-1``, as they are missing in an analysis frame's text
    columns, so counting distinct codes counts what ``nunique`` of the frame would.
    """

    def codes(c: str) -> tuple[np.ndarray, np.ndarray]:
        k, u = pd.factorize(cand[c].to_numpy(dtype=object), use_na_sentinel=True)
        return np.asarray(k, dtype=np.int64), np.asarray(u, dtype=object)

    arm_c, arm_u = codes("arm")
    return arm_c, arm_u, codes("la_id")[0], codes("keyworker_id")[0]


def build_flow_and_exclusions(
    protocol: Protocol,
    tables: Mapping[str, pd.DataFrame],
    scores: pd.DataFrame,
    start: dt.date | None,
    end: dt.date | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CONSORT-cluster flow (``arm, level, stage, detail, n``) and the exclusions table.

    Columnar: each level's candidates are found once, each score row's candidate
    is looked up once for every outcome, the measured entities come from the
    integer codes of the measurements' text columns, and the counts per arm are
    counts of codes.
    """
    alloc = tables.get("allocation")
    arm_of: dict[str, str] = {}
    if alloc is not None and not alloc.empty:
        arm_of = {
            str(a): str(b)
            for a, b in zip(_s(alloc["cluster"]), _s(alloc["arm"]), strict=True)
            if a is not None and b is not None
        }
    rows: list[dict[str, Any]] = []
    # exclusions as columns (entity, entity_id, reason, stage), assembled once at the end
    excl: list[tuple[_Coded, ...]] = []

    def add(arm: str, level: str, stage: str, detail: str, n: int) -> None:
        rows.append({"arm": arm, "level": level, "stage": stage, "detail": detail, "n": int(n)})

    arms = list(protocol.arm_ids) if arm_of else ["unallocated"]
    cl_ids = set(_s(tables["clusters"]["la_id"]).dropna()) if "clusters" in tables else set()
    cache = {lv: _candidates(lv, tables, arm_of, end) for lv in ("family", "keyworker")}
    fam = cache["family"].copy()
    kw = cache["keyworker"].copy()
    for c in (fam, kw):
        c["arm"] = c["arm"].where(c["arm"].notna(), "unallocated") if arm_of else "unallocated"
    meas = tables["measurements"]
    # measured[(level, t)]: which candidates of the level have a measurement at t
    # (one lookup of the distinct measured ids per level, then integer codes)
    lv_codes, lv_uniques = _text_codes(meas["level"])
    tp_codes, tp_uniques = _text_codes(meas["timepoint"])
    measured: dict[tuple[str, str], np.ndarray] = {}
    meas_coded = _text_codes(meas["entity_id"])
    # the candidates' ids as in the cache, so that each is converted to pyarrow once
    arrow: dict[int, tuple[np.ndarray, pa.Array | None]] = {}
    ids = {lv: c["entity_id"].to_numpy(dtype=object) for lv, c in cache.items()}
    for level, ent in (("family", fam), ("keyworker", kw)):
        row_pos = _positions(ent, meas["entity_id"], meas_coded, arrow, ids[level])
        is_lv = lv_codes == _code_in(lv_uniques, level)
        for t in protocol.trial.timepoints:
            at = row_pos[is_lv & (tp_codes == _code_in(tp_uniques, t))]
            seen = np.zeros(len(ent), dtype=bool)
            seen[at[at >= 0]] = True
            measured[(level, t)] = seen
    selections: dict[str, _Selection] = {}
    if arm_of:
        coded = _text_codes(scores["entity_id"])  # factorised once for both levels
        positions = {
            lv: _positions(cache[lv], scores["entity_id"], coded, arrow, ids[lv]) for lv in cache
        }
        memo: dict[tuple[str, str], np.ndarray] = {}
        for oc in protocol.outcomes:
            selections[oc.id] = _select(
                oc,
                tables,
                scores,
                arm_of,
                oc.analysis_timepoint,
                end,
                protocol.analysis.adjust_for_baseline,
                cache,
                positions=positions,
                memo=memo,
            )
    # the analysed frames' arm, la_id and keyworker_id (as text) by integer codes
    labels = {lv: _text_labels(c) for lv, c in cache.items()} if arm_of else {}
    for arm in arms:
        las = sorted(k for k, v in arm_of.items() if v == arm) if arm_of else sorted(cl_ids)
        add(arm, "la", "randomised", "", len(las))
        with_data = [x for x in las if x in cl_ids]
        add(arm, "la", "with data", "", len(with_data))
        if len(las) - len(with_data):
            add(arm, "la", "lost", "no data received", len(las) - len(with_data))
        k_arm = kw[kw["arm"] == arm]
        f_arm = fam[fam["arm"] == arm]
        add(arm, "keyworker", "randomised", "in randomised LAs", len(k_arm))
        add(arm, "family", "randomised", "referred in randomised LAs", len(f_arm))
        # not consenting is an exclusion at consent, before "consented", not a later loss
        add(arm, "family", "excluded", "not consented", int((~f_arm["consented"]).sum()))
        add(arm, "family", "consented", "", int(f_arm["consented"].sum()))
        wd = f_arm[f_arm["consented"] & f_arm["withdrawn"]]
        for reason, n in (
            wd["withdrawal_reason"]
            .fillna("reason not recorded")
            .value_counts()
            .sort_index()
            .items()
        ):
            add(arm, "family", "lost", f"withdrawn: {reason}", int(n))
        if end is not None:
            add(
                arm,
                "keyworker",
                "lost",
                "left post before trial end",
                int(_left_post(k_arm, end).sum()),
            )
        for t in protocol.trial.timepoints:
            for level, ent in (("family", f_arm), ("keyworker", k_arm)):
                got = measured[(level, t)][ent.index.to_numpy()]
                add(arm, level, "measured", t, int(got.sum()))
                if level == "family":
                    add(arm, "la", f"measured ({level})", t, int(ent.loc[got, "la_id"].nunique()))
        for oc in protocol.outcomes:
            if arm_of:
                level = oc.level.value
                arm_c, arm_u, la_c, kw_c = labels[level]
                sub = selections[oc.id].keep & (arm_c == _code_in(arm_u, arm))
                add(arm, level, "analysed", oc.id, int(sub.sum()))
                add(arm, "la", "analysed", oc.id, _distinct_count(la_c[sub]))
                if level == "family":
                    add(arm, "keyworker", "analysed", oc.id, _distinct_count(kw_c[sub]))
    # exclusions (entity level, before analysis); ids as positions among the candidates
    if len(fam):
        nc = np.flatnonzero(~fam["consented"].to_numpy(dtype=bool))
        excl.append(_part("family", (nc, ids["family"]), "not consented", "consent"))
        wd = fam[fam["consented"] & fam["withdrawn"]]
        excl.append(
            _part(
                "family",
                (np.flatnonzero((fam["consented"] & fam["withdrawn"]).to_numpy()), ids["family"]),
                (
                    "withdrawn: "
                    + wd["withdrawal_reason"].fillna("reason not recorded").astype(str)
                ).to_numpy(dtype=object),
                "follow-up",
            )
        )
    if len(kw) and end is not None:
        lf = np.flatnonzero(_left_post(kw, end))
        excl.append(
            _part("keyworker", (lf, ids["keyworker"]), "left post before trial end", "follow-up")
        )
    for x in sorted(set(arm_of) - cl_ids):
        excl.append(_part("la", np.array([x], dtype=object), "no data received", "data"))
    if len(scores):
        miss = scores[scores["value"].isna()]
        if len(miss):
            excl.append(
                _part(
                    miss["level"].astype(object).to_numpy(dtype=object),
                    miss["entity_id"].astype(object).to_numpy(dtype=object),
                    (
                        "score missing (too few items answered): "
                        + miss["outcome_id"].astype(str)
                        + " at "
                        + miss["timepoint"].astype(str)
                    )
                    .astype(object)
                    .to_numpy(dtype=object),
                    "scoring",
                )
            )
    for oc in protocol.outcomes if arm_of else ():
        sel = selections[oc.id]
        out = np.flatnonzero(~sel.keep)
        excl.append(
            _part(
                oc.level.value,
                (out, ids[oc.level.value]),
                sel.reasons[out],
                f"analysis:{oc.id}",
            )
        )
    flow = pd.DataFrame(rows, columns=["arm", "level", "stage", "detail", "n"])
    return flow, _exclusions_table(excl)


_Coded = tuple[np.ndarray, np.ndarray]
"""A text column as codes (``-1`` for missing) into a dictionary of distinct-or-not values."""


def _part(*columns: object) -> tuple[_Coded, ...]:
    """One block of exclusions, each column coded (see :data:`_Coded`).

    A column is given as one value for every row, as an array of values, or
    already coded (positions into an array of ids, e.g. the candidates').
    """
    n = next(
        len(c[0]) if isinstance(c, tuple) else len(np.asarray(c))
        for c in columns
        if not isinstance(c, str)
    )
    out: list[_Coded] = []
    for c in columns:
        if isinstance(c, tuple):
            out.append((np.asarray(c[0], dtype=np.int64), c[1]))
        elif isinstance(c, str):
            out.append((np.zeros(n, dtype=np.int64), np.array([c], dtype=object)))
        else:
            codes, uniques = pd.factorize(np.asarray(c, dtype=object), use_na_sentinel=True)
            out.append((np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=object)))
    return tuple(out)


def _exclusions_table(parts: list[tuple[_Coded, ...]]) -> pd.DataFrame:
    """The exclusions as text, sorted by every column (stable; missing last).

    Each column of each block is coded (:func:`_part`).  The dictionaries of a
    column are ranked once by their text (dense ranks), the rows are ordered by a
    stable ``lexsort`` of the ranks (the order of ``sort_values``) and each column
    is built by one ``take`` from its dictionary, so no row is hashed or compared
    as a Python string.
    """
    sizes = [len(p[0][0]) for p in parts]
    n = sum(sizes)
    if n == 0:
        return (
            pd.DataFrame(columns=EXCLUSION_COLUMNS)
            .astype(str)
            .sort_values(EXCLUSION_COLUMNS, kind="stable")
            .reset_index(drop=True)
        )
    coded: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for j, name in enumerate(EXCLUSION_COLUMNS):
        offsets: dict[int, int] = {}
        dictionaries: list[np.ndarray] = []
        codes = np.empty(n, dtype=np.int64)
        at, size = 0, 0
        for p, k in zip(parts, sizes, strict=True):
            local, dictionary = p[j]
            off = offsets.get(id(dictionary))
            if off is None:
                off = offsets[id(dictionary)] = size
                dictionaries.append(dictionary)
                size += len(dictionary)
            codes[at : at + k] = np.where(local >= 0, local + off, -1)
            at += k
        coded[name] = (codes, np.concatenate(dictionaries).astype(object))
    if any(
        pd.api.types.infer_dtype(d, skipna=False) not in ("string", "empty")
        for _, d in coded.values()
    ):
        # not all text: as written (str() of each value), sorted by pandas
        return (
            pd.DataFrame({c: np.append(d, np.array([None]))[k] for c, (k, d) in coded.items()})
            .astype(str)
            .sort_values(EXCLUSION_COLUMNS, kind="stable")
            .reset_index(drop=True)
        )
    ranks = []
    for name in reversed(EXCLUSION_COLUMNS):
        codes, dictionary = coded[name]
        by_text = np.argsort(dictionary, kind="stable")
        ordered = dictionary[by_text]
        step = np.ones(len(ordered), dtype=np.int64)
        step[1:] = ordered[1:] != ordered[:-1]
        dense = np.empty(len(ordered) + 1, dtype=np.int64)
        dense[by_text] = np.cumsum(step) - 1
        dense[-1] = len(ordered)  # missing (code -1) last
        ranks.append(dense[codes])
    order = np.lexsort(ranks)
    out: dict[str, pd.Series] = {}
    for name in EXCLUSION_COLUMNS:
        codes, dictionary = coded[name]
        taken = codes[order]
        text = pa.array(dictionary, type=pa.large_string()).take(pa.array(taken, mask=taken < 0))
        out[name] = pd.Series(pd.array(text, dtype=str))
    return pd.DataFrame(out)


def _outcome_of(protocol: Protocol, outcome_id: str) -> Outcome:
    oc = protocol.outcome(outcome_id)
    if oc is None:
        raise DataError.from_problem(
            path=f"outcome {outcome_id}",
            code="data.unknown_outcome",
            message=f"outcome must be one of {', '.join(o.id for o in protocol.outcomes)}; got {outcome_id!r}",
            hint="use an outcome id declared in the protocol",
        )
    return oc
