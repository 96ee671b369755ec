"""Accounting for every eligible entity: who was analysed, who was not and why.

Each analysis of an outcome starts from the *eligible* entities of its level (every
family referred in an allocated LA for a family outcome, every keyworker of an allocated
LA for a keyworker outcome).  Each eligible entity is either analysed by the primary
model or excluded with exactly one reason (:mod:`trialkit.data.frame` gives the reasons
up to the analysis frame; :func:`complete_case_exclusions` adds the rows the model
drops for a missing covariate).  :func:`accounting_gaps` checks, from the stored
tables alone, that per analysis and per arm

    analysed + excluded = eligible,

that the analysed count equals the primary model's ``n_obs``, and that the flow's
per-arm losses add up; the report refuses an analysis with a gap
(:func:`trialkit.report.build_report`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from trialkit.data.missingness import missing_outcome_shares, missingness_flags
from trialkit.protocol.model import Protocol

__all__ = [
    "MISSING_COLUMNS",
    "accounting_gaps",
    "analysed_flow",
    "complete_case_exclusions",
    "entity_arms",
    "exclusion_counts_by_arm",
    "missing_outcomes",
]

EXCLUSION_COUNT_COLUMNS = ["stage", "entity", "reason", "arm", "n"]
MISSING_COLUMNS = [
    "outcome_id",
    "level",
    "timepoint",
    "arm",
    "n_eligible",
    "n_missing",
    "share_missing",
    "warnings",
]


def complete_case_exclusions(
    frame: pd.DataFrame, covariates: Sequence[str], outcome_id: str, level: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split an analysis frame into the rows the model uses and exclusions for the rest.

    A row with a missing outcome or covariate is dropped by the model (complete-case
    analysis); it is recorded here with the reason ``covariate missing: <name>`` (the
    first missing column), so that it is counted once, not lost.

    Returns
    -------
    used : DataFrame
        The rows with ``y`` and every covariate present.
    excluded : DataFrame
        ``entity, entity_id, reason, stage`` for the dropped rows.
    """
    cols = [c for c in ("y", *covariates) if c in frame.columns]
    miss = frame[cols].isna().to_numpy() if cols else np.zeros((len(frame), 0), dtype=bool)
    dropped = np.asarray(miss.any(axis=1), dtype=bool)
    id_col = "family_id" if level == "family" else "keyworker_id"
    reasons = [
        "outcome missing"
        if cols[int(np.argmax(m))] == "y"
        else f"covariate missing: {cols[int(np.argmax(m))]}"
        for m in miss[dropped]
    ]
    excluded = pd.DataFrame(
        {
            "entity": level,
            "entity_id": frame[id_col].astype(str).to_numpy(dtype=object)[dropped],
            "reason": reasons,
            "stage": f"analysis:{outcome_id}",
        },
        columns=["entity", "entity_id", "reason", "stage"],
    )
    used = pd.DataFrame(frame.loc[~dropped]).reset_index(drop=True)
    return used, excluded


def entity_arms(
    tables: Mapping[str, pd.DataFrame], arms: Mapping[str, str]
) -> dict[tuple[str, str], str]:
    """Arm of every family, keyworker and LA, keyed by ``(entity, entity_id)``."""
    out: dict[tuple[str, str], str] = {("la", str(k)): str(v) for k, v in arms.items()}
    for entity, table, id_col in (
        ("family", "families", "family_id"),
        ("keyworker", "keyworkers", "keyworker_id"),
    ):
        t = tables.get(table)
        if t is None or id_col not in t.columns:
            continue
        for eid, la in zip(t[id_col].astype(object), t["la_id"].astype(object), strict=True):
            if eid is None or eid is pd.NA or la is None or la is pd.NA:
                continue
            arm = arms.get(str(la))
            if arm is not None:
                out.setdefault((entity, str(eid)), str(arm))
    return out


def exclusion_counts_by_arm(
    exclusions: pd.DataFrame, arm_of: Mapping[tuple[str, str], str]
) -> pd.DataFrame:
    """Exclusions counted by stage, entity, reason and arm (``unallocated`` without an arm)."""
    if not len(exclusions):
        return pd.DataFrame(columns=EXCLUSION_COUNT_COLUMNS)
    ex = exclusions.astype({"stage": str, "entity": str, "reason": str, "entity_id": str})
    ex = ex.assign(
        arm=[
            arm_of.get((e, i), "unallocated")
            for e, i in zip(ex["entity"], ex["entity_id"], strict=True)
        ]
    )
    return (
        ex.groupby(["stage", "entity", "reason", "arm"], sort=True)
        .size()
        .rename("n")
        .reset_index()[EXCLUSION_COUNT_COLUMNS]
    )


def analysed_flow(
    flow: pd.DataFrame, used: Mapping[str, pd.DataFrame], levels: Mapping[str, str]
) -> pd.DataFrame:
    """The validated flow with each outcome's ``analysed`` rows taken from the model's data.

    ``used`` maps outcome id to the rows the primary model used (after complete-case
    exclusions); the LA, keyworker and entity counts per arm are recounted from them.
    """
    out = flow.copy()
    for oid, frame in used.items():
        level = levels[oid]
        sel = (out["stage"] == "analysed") & (out["detail"] == oid)
        for idx in out.index[sel.to_numpy(dtype=bool)]:
            arm = out.at[idx, "arm"]
            lv = out.at[idx, "level"]
            sub = frame[frame["arm"] == arm]
            if lv == "la":
                n = sub["la_id"].nunique()
            elif lv == "keyworker" and level == "family":
                n = sub["keyworker_id"].nunique()
            else:
                n = len(sub)
            out.at[idx, "n"] = int(n)
    return out


def missing_outcomes(
    protocol: Protocol, tables: Mapping[str, pd.DataFrame], scores: pd.DataFrame
) -> pd.DataFrame:
    """Missing-outcome shares by outcome, timepoint and arm, with validation's warning codes.

    The shares and warnings are those of :mod:`trialkit.data.missingness`, the
    computation behind ``trialkit validate``'s missing-data warnings; ``warnings`` lists
    the codes raised for the outcome and timepoint (``; ``-separated, empty for none).
    """
    shares = missing_outcome_shares(protocol, tables, scores)
    flags = missingness_flags(shares)
    codes: dict[tuple[str, str], list[str]] = {}
    for oid, t, code in zip(flags["outcome_id"], flags["timepoint"], flags["code"], strict=True):
        codes.setdefault((str(oid), str(t)), []).append(str(code).split(".", 1)[-1])
    out = shares.drop(columns=["has_scores"]).assign(
        warnings=[
            "; ".join(codes.get((str(o), str(t)), []))
            for o, t in zip(shares["outcome_id"], shares["timepoint"], strict=True)
        ]
    )
    return out[MISSING_COLUMNS].reset_index(drop=True)


def _n(flow: pd.DataFrame, arm: str, level: str, stage: str, detail: str | None = None) -> int:
    s = flow[(flow["arm"] == arm) & (flow["level"] == level) & (flow["stage"] == stage)]
    if detail is not None:
        s = s[s["detail"] == detail]
    return int(s["n"].sum()) if len(s) else 0


def accounting_gaps(
    results: pd.DataFrame,
    exclusions: pd.DataFrame,
    flow: pd.DataFrame,
    arms: Sequence[str],
) -> list[str]:
    """Every place where the analysis does not account for its entities; empty when it closes.

    Checks, for each outcome's primary analysis and each arm:

    * analysed (flow) + excluded (exclusions at stage ``analysis:<outcome>``) = eligible
      (the flow's ``randomised`` count of the outcome's level);
    * Σ over arms of analysed = the primary model's ``n_obs``;
    * the excluded entities of each analysis are at the outcome's level;

    and, per arm, that families consented = referred − not consented and that the
    flow's LA counts close (randomised = with data + no data received).

    Parameters
    ----------
    results, exclusions, flow : DataFrame
        The analysis's tables (``exclusions`` with an ``arm`` column, as written by
        :func:`exclusion_counts_by_arm`).
    arms : sequence of str
        The protocol's arm ids.

    Returns
    -------
    list of str
        One sentence per gap, naming the analysis, arm and the numbers that differ.
    """
    gaps: list[str] = []
    if not len(flow):
        return ["the flow table is empty: nothing accounts for the randomised entities"]
    has_arm = "arm" in exclusions.columns
    for arm in arms:
        referred = _n(flow, arm, "family", "randomised")
        consented = _n(flow, arm, "family", "consented")
        not_consented = _n(flow, arm, "family", "excluded", "not consented")
        if referred - not_consented != consented:
            gaps.append(
                f"flow, arm {arm}: families referred ({referred}) − not consented "
                f"({not_consented}) = {referred - not_consented}, but {consented} consented"
            )
        las = _n(flow, arm, "la", "randomised")
        with_data = _n(flow, arm, "la", "with data")
        no_data = _n(flow, arm, "la", "lost", "no data received")
        if las - no_data != with_data:
            gaps.append(
                f"flow, arm {arm}: LAs randomised ({las}) − no data received ({no_data}) = "
                f"{las - no_data}, but {with_data} with data"
            )
    primary = results[results["analysis"] == "primary"] if len(results) else results
    for row in primary.itertuples(index=False):
        oid = str(row.outcome_id)
        level = str(row.level)
        stage = (
            exclusions[exclusions["stage"] == f"analysis:{oid}"] if len(exclusions) else exclusions
        )
        other = sorted(set(stage["entity"].astype(str)) - {level}) if len(stage) else []
        if other:
            gaps.append(
                f"analysis of {oid}: exclusions of {', '.join(other)} entities in a "
                f"{level}-level analysis"
            )
        total = 0
        for arm in arms:
            eligible = _n(flow, arm, level, "randomised")
            analysed = _n(flow, arm, level, "analysed", oid)
            total += analysed
            if has_arm:
                excluded = int(stage.loc[stage["arm"] == arm, "n"].sum()) if len(stage) else 0
                if analysed + excluded != eligible:
                    gaps.append(
                        f"analysis of {oid}, arm {arm}: {analysed} analysed + {excluded} "
                        f"excluded = {analysed + excluded}, but {eligible} {level} entities "
                        f"were eligible (gap {eligible - analysed - excluded})"
                    )
        try:
            n_obs = float(row.n_obs)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            n_obs = float("nan")
        if np.isfinite(n_obs) and int(n_obs) != total:
            gaps.append(
                f"analysis of {oid}: the primary model used {int(n_obs)} {level} entities, "
                f"but the flow counts {total} analysed"
            )
        if not has_arm:
            # an analysis written before exclusions were counted by arm: check the totals
            eligible_all = sum(_n(flow, a, level, "randomised") for a in arms)
            allocated = stage[stage["reason"] != "LA not in allocation"] if len(stage) else stage
            excluded_all = int(allocated["n"].sum()) if len(allocated) else 0
            if total + excluded_all != eligible_all:
                gaps.append(
                    f"analysis of {oid}: {total} analysed + {excluded_all} excluded = "
                    f"{total + excluded_all}, but {eligible_all} {level} entities were eligible"
                )
    return gaps
