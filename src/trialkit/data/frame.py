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

from trialkit.data.load import isin as _isin
from trialkit.data.load import to_object
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


def _s(x: pd.Series) -> pd.Series:
    return x.astype(object).where(x.notna(), None)


def _candidates(
    level: str, tables: Mapping[str, pd.DataFrame], arm_of: Mapping[str, str]
) -> pd.DataFrame:
    """Entities of ``level`` with ids, LA, keyworker, arm (first row per id)."""
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
    return out


def _outcome_values(
    oc: Outcome,
    tables: Mapping[str, pd.DataFrame],
    scores: pd.DataFrame,
    cand: pd.DataFrame,
    timepoint: str,
    end: dt.date | None,
) -> tuple[pd.Series, str]:
    """Values of the outcome at ``timepoint`` indexed like ``cand`` and the reason label for NaN."""
    if (
        oc.instrument == "binary"
        and oc.level.value == "keyworker"
        and not (scores["outcome_id"] == oc.id).any()
    ):
        ld = cand["leave_date"]
        if end is None:
            raise DataError.from_problem(
                path="trial.end",
                code="data.no_trial_end",
                message="retention needs the trial end date; got none",
                hint="set [trial] end in the protocol",
            )
        y = np.array([1.0 if v is None or v >= end else 0.0 for v in ld])
        return pd.Series(y, index=cand.index), "derived"
    s = scores[
        (scores["outcome_id"] == oc.id).to_numpy(dtype=bool, na_value=False)
        & (scores["timepoint"] == timepoint).to_numpy(dtype=bool, na_value=False)
    ]
    vals = pd.Series(s["value"].to_numpy(dtype=float), index=s["entity_id"].astype(object))
    vals = vals[~vals.index.duplicated()]
    return cand["entity_id"].map(vals).astype(float), "scored"


def _why(
    cand: pd.DataFrame, measured: pd.Series, timepoint: str, end: dt.date | None
) -> np.ndarray:
    """Reason each candidate has no value (vectorised; first matching reason wins)."""
    no_arm = cand["arm"].isna().to_numpy()
    cons = cand["consented"].to_numpy(dtype=bool)
    wd = cand["withdrawn"].to_numpy(dtype=bool)
    wreason = (
        "withdrawn: " + cand["withdrawal_reason"].fillna("reason not recorded").astype(str)
    ).to_numpy(dtype=object)
    if "leave_date" in cand.columns and end is not None:
        left = cand["leave_date"].map(lambda v: v is not None and v < end).to_numpy(dtype=bool)
    else:
        left = np.zeros(len(cand), dtype=bool)
    meas = measured.to_numpy(dtype=bool)
    return np.select(
        [no_arm, ~cons, wd, left, meas],
        [
            "LA not in allocation",
            "not consented",
            wreason,
            "left post",
            f"score missing at {timepoint} (too few items answered)",
        ],
        default=f"no measurement at {timepoint}",
    ).astype(object)


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
        vals = pd.Series(to_object(m[cov.name]), index=m[key].astype(object))
        col = frame[fkey].map(vals)
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
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    level = oc.level.value
    scores = scores[(scores["outcome_id"] == oc.id).to_numpy(dtype=bool)]
    if cache is not None and level in cache:
        cand = cache[level]
    else:
        cand = _candidates(level, tables, arm_of)
    y, how = _outcome_values(oc, tables, scores, cand, timepoint, end)
    s_oc = scores[(scores["outcome_id"] == oc.id).to_numpy(dtype=bool, na_value=False)]
    measured_ids = set(
        s_oc.loc[
            (s_oc["timepoint"] == timepoint).to_numpy(dtype=bool, na_value=False), "entity_id"
        ].astype(object)
    )
    measured = pd.Series(_isin(cand["entity_id"], measured_ids), index=cand.index)
    baseline = pd.Series(np.nan, index=cand.index)
    if oc.baseline_timepoint and oc.baseline_timepoint != timepoint and how == "scored":
        baseline, _ = _outcome_values(oc, tables, scores, cand, oc.baseline_timepoint, end)
    has_arm = cand["arm"].notna().to_numpy()
    keep = has_arm & y.notna().to_numpy()
    reasons = np.full(len(cand), None, dtype=object)
    if (~keep).any():
        reasons[~keep] = _why(cand[~keep], measured[~keep], timepoint, end)
    if require_baseline and oc.baseline_timepoint and how == "scored":
        nob = keep & baseline.isna().to_numpy()
        reasons[nob] = f"baseline missing ({oc.baseline_timepoint})"
        keep = keep & ~nob
    excl = pd.DataFrame(
        {
            "entity": level,
            "entity_id": cand.loc[~keep, "entity_id"].to_numpy(dtype=object),
            "reason": reasons[~keep],
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
    frame["y"] = y[keep].astype(float)
    frame["baseline"] = baseline[keep].astype(float)
    frame = _covariates(protocol, tables, frame, level)
    sort = ["la_id", "keyworker_id"] + (["family_id"] if level == "family" else [])
    frame = frame.sort_values(sort, kind="stable").reset_index(drop=True)
    excl = excl.sort_values(["entity_id"], kind="stable").reset_index(drop=True)
    return frame, excl, int(has_arm.sum())


def analysis_frame(
    trial_data: TrialData,
    protocol: Protocol,
    outcome_id: str,
    *,
    timepoint: str | None = None,
    require_baseline: bool | None = None,
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
    )
    return AnalysisFrame(
        outcome_id=oc.id,
        timepoint=tp,
        level=oc.level.value,
        frame=frame,
        exclusions=excl,
        n_candidates=n,
    )


def build_flow_and_exclusions(
    protocol: Protocol,
    tables: Mapping[str, pd.DataFrame],
    scores: pd.DataFrame,
    start: dt.date | None,
    end: dt.date | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CONSORT-cluster flow (``arm, level, stage, detail, n``) and the exclusions table."""
    alloc = tables.get("allocation")
    arm_of: dict[str, str] = {}
    if alloc is not None and not alloc.empty:
        arm_of = {
            str(a): str(b)
            for a, b in zip(_s(alloc["cluster"]), _s(alloc["arm"]), strict=True)
            if a is not None and b is not None
        }
    rows: list[dict[str, Any]] = []
    excl: list[pd.DataFrame] = []

    def add(arm: str, level: str, stage: str, detail: str, n: int) -> None:
        rows.append({"arm": arm, "level": level, "stage": stage, "detail": detail, "n": int(n)})

    arms = list(protocol.arm_ids) if arm_of else ["unallocated"]
    cl_ids = set(_s(tables["clusters"]["la_id"]).dropna()) if "clusters" in tables else set()
    cache = {lv: _candidates(lv, tables, arm_of) for lv in ("family", "keyworker")}
    fam = cache["family"].copy()
    kw = cache["keyworker"].copy()
    for c in (fam, kw):
        c["arm"] = c["arm"].where(c["arm"].notna(), "unallocated") if arm_of else "unallocated"
    meas = tables["measurements"]
    m_ent = pd.DataFrame(
        {
            "e": to_object(meas["entity_id"]),
            "l": meas["level"].astype("category"),
            "t": meas["timepoint"].astype("category"),
        }
    )
    measured_sets: dict[tuple[str, str], np.ndarray] = {}
    for (lv_, t_), grp in m_ent.groupby(["l", "t"], observed=True, sort=False):
        measured_sets[(str(lv_), str(t_))] = grp["e"].to_numpy(dtype=object)
    frames: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    if arm_of:
        for oc in protocol.outcomes:
            f_, e_, _ = _frame_for(
                protocol,
                oc,
                tables,
                scores,
                arm_of,
                oc.analysis_timepoint,
                start,
                end,
                protocol.analysis.adjust_for_baseline,
                cache,
            )
            frames[oc.id] = (f_, e_)
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
            left = k_arm["leave_date"].map(lambda v: v is not None and v < end)
            add(arm, "keyworker", "lost", "left post before trial end", int(left.sum()))
        for t in protocol.trial.timepoints:
            for level, ent in (("family", f_arm), ("keyworker", k_arm)):
                ids = measured_sets.get((level, t), np.array([], dtype=object))
                got = pd.Series(_isin(ent["entity_id"], ids), index=ent.index)
                add(arm, level, "measured", t, int(got.sum()))
                if level == "family":
                    add(arm, "la", f"measured ({level})", t, int(ent.loc[got, "la_id"].nunique()))
        for oc in protocol.outcomes:
            if arm_of:
                frame = frames[oc.id][0]
                sub = frame[frame["arm"] == arm]
                add(arm, oc.level.value, "analysed", oc.id, len(sub))
                add(arm, "la", "analysed", oc.id, int(sub["la_id"].nunique()))
                if oc.level.value == "family":
                    add(arm, "keyworker", "analysed", oc.id, int(sub["keyworker_id"].nunique()))
    # exclusions (entity level, before analysis)
    if len(fam):
        nc = fam[~fam["consented"]]
        excl.append(
            pd.DataFrame(
                {
                    "entity": "family",
                    "entity_id": nc["entity_id"],
                    "reason": "not consented",
                    "stage": "consent",
                }
            )
        )
        wd = fam[fam["consented"] & fam["withdrawn"]]
        excl.append(
            pd.DataFrame(
                {
                    "entity": "family",
                    "entity_id": wd["entity_id"],
                    "reason": "withdrawn: "
                    + wd["withdrawal_reason"].fillna("reason not recorded").astype(str),
                    "stage": "follow-up",
                }
            )
        )
    if len(kw) and end is not None:
        lf = kw[kw["leave_date"].map(lambda v: v is not None and v < end)]
        excl.append(
            pd.DataFrame(
                {
                    "entity": "keyworker",
                    "entity_id": lf["entity_id"],
                    "reason": "left post before trial end",
                    "stage": "follow-up",
                }
            )
        )
    for x in sorted(set(arm_of) - cl_ids):
        excl.append(
            pd.DataFrame(
                {
                    "entity": ["la"],
                    "entity_id": [x],
                    "reason": ["no data received"],
                    "stage": ["data"],
                }
            )
        )
    if len(scores):
        miss = scores[scores["value"].isna()]
        if len(miss):
            excl.append(
                pd.DataFrame(
                    {
                        "entity": miss["level"].astype(object),
                        "entity_id": miss["entity_id"].astype(object),
                        "reason": (
                            "score missing (too few items answered): "
                            + miss["outcome_id"].astype(str)
                            + " at "
                            + miss["timepoint"].astype(str)
                        ).astype(object),
                        "stage": "scoring",
                    }
                )
            )
    if arm_of:
        for oc in protocol.outcomes:
            excl.append(frames[oc.id][1])
    exclusions = (
        pd.concat([e for e in excl if len(e)], ignore_index=True)
        if any(len(e) for e in excl)
        else pd.DataFrame(columns=EXCLUSION_COLUMNS)
    )
    exclusions = (
        exclusions[EXCLUSION_COLUMNS]
        .astype(str)
        .sort_values(EXCLUSION_COLUMNS, kind="stable")
        .reset_index(drop=True)
    )
    flow = pd.DataFrame(rows, columns=["arm", "level", "stage", "detail", "n"])
    return flow, exclusions


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
