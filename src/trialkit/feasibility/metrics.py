"""The registry of feasibility metrics: how a progression criterion's outcome is counted.

A ``[[progression]]`` entry of the protocol names a ``metric`` and its ``params``::

    [[progression]]
    id = "consent"
    label = "Families consenting, of those referred"
    metric = "family_consent"
    green = 0.7
    red = 0.5

Each metric turns the validated trial data (and, for fidelity and contamination, the
fidelity assessment) into counts per LA.  Its ``kind`` decides the estimator
(:mod:`trialkit.models.proportion`):

* ``"pooled"`` — units within LAs (families, keyworkers, records): the pooled ratio
  Σy/Σn with a design-based interval clustered by LA;
* ``"la"`` — LAs themselves (one 0/1 per LA, or LAs randomised of LAs approached): an
  exact Clopper–Pearson interval;
* ``"mean"`` — one value per LA (the fidelity index): the mean with a *t* interval.

Built-in metrics:

=======================  =================================================================
``la_recruitment``       LAs randomised / LAs approached (``trial.approached``)
``family_consent``       families consented / families referred (in randomised LAs)
``family_retention``     consented families with ``outcome`` measured at ``timepoint``
                         (default: the primary family outcome at its primary timepoint) /
                         families consented
``keyworker_retention``  keyworkers with ``outcome`` measured at ``timepoint`` (default: the
                         primary keyworker outcome; a derived in-post outcome such as
                         ``keyworker_retention`` counts those in post at the trial end) /
                         keyworkers recruited
``data_completeness``    entities with a usable (scored) ``outcome`` at ``timepoint`` /
                         consented entities (all keyworkers for keyworker outcomes)
``fidelity``             ``statistic = "share"`` (default): intervention LAs whose overall
                         fidelity index is at or above ``band`` (``"high"`` by default, or
                         ``"moderate"``; or a number ``threshold``) / intervention LAs;
                         ``statistic = "mean"``: the mean index over intervention LAs
``contamination``        control LAs with any intervention component delivered (with
                         ``min_index``: a component whose fidelity index reaches it) /
                         control LAs (lower is better)
``ratio``                rows of data ``table`` with ``numerator`` present / rows with
                         ``denominator`` present (all rows when omitted); ``record_type``
                         restricts the delivery table
=======================  =================================================================

:func:`~trialkit.feasibility.checks.check_progression` checks every criterion against the
registry (:mod:`trialkit.feasibility.registry`); importing this module registers it with
:mod:`trialkit.protocol.hooks`, so ``trialkit check`` runs it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from trialkit.errors import FeasibilityError
from trialkit.feasibility.checks import (
    check_contamination_params,
    check_fidelity_params,
    check_outcome_params,
    check_ratio_params,
    check_recruitment,
    default_outcome,
)
from trialkit.feasibility.registry import (
    FeasibilityContext,
    MetricCounts,
    register_feasibility_metric,
)

__all__: list[str] = []


# ----------------------------------------------------------------------- helpers
def _outcome(protocol: Any, params: Mapping[str, Any], level: str | None) -> Any:
    oid = params.get("outcome")
    oc = protocol.outcome(str(oid)) if oid is not None else default_outcome(protocol, level)
    if oc is None or (level is not None and oc.level.value != level):
        raise FeasibilityError.from_problem(
            path="params.outcome",
            code="feasibility.progression.param_value",
            message=f"outcome must be a declared {level or ''} outcome; got {oid!r}",
            hint="run `trialkit check` on the protocol",
        )
    return oc


def _ids(s: pd.Series) -> np.ndarray:
    return s.astype(object).where(s.notna(), None).to_numpy(dtype=object)


def _per_la(
    ctx: FeasibilityContext, la_col: np.ndarray, hit: np.ndarray, arm: str | None, unit: str,
    note: str = "",
) -> MetricCounts:  # fmt: skip
    """Counts per randomised LA (of ``arm``): rows and rows with ``hit``."""
    las = ctx.las(arm)
    frame = pd.DataFrame({"la": la_col, "hit": hit.astype(bool)})
    frame = frame[frame["la"].isin(las)]
    n = frame.groupby("la").size().reindex(las, fill_value=0)
    y = frame.groupby("la")["hit"].sum().reindex(las, fill_value=0)
    return MetricCounts(
        la_id=tuple(las),
        numerator=y.to_numpy(dtype=float),
        denominator=n.to_numpy(dtype=float),
        unit=unit,
        note=note,
    )


def _families(ctx: FeasibilityContext) -> pd.DataFrame:
    f = ctx.tables["families"]
    out = pd.DataFrame(
        {
            "entity_id": _ids(f["family_id"]),
            "la_id": _ids(f["la_id"]),
            "consented": f["consent_date"].notna().to_numpy(dtype=bool, na_value=False)
            if "consent_date" in f.columns
            else np.ones(len(f), dtype=bool),
        }
    )
    return out[out["entity_id"].notna()].drop_duplicates("entity_id").reset_index(drop=True)


def _keyworkers(ctx: FeasibilityContext) -> pd.DataFrame:
    k = ctx.tables["keyworkers"]
    out = pd.DataFrame(
        {
            "entity_id": _ids(k["keyworker_id"]),
            "la_id": _ids(k["la_id"]),
            "leave_date": k["leave_date"].astype(object).where(k["leave_date"].notna(), None)
            if "leave_date" in k.columns
            else None,
        }
    )
    return out[out["entity_id"].notna()].drop_duplicates("entity_id").reset_index(drop=True)


def _scored(ctx: FeasibilityContext, outcome_id: str, timepoint: str, usable: bool) -> set[Any]:
    s = ctx.scores
    if s is None or not len(s):
        return set()
    m = (s["outcome_id"].astype(object) == outcome_id) & (
        s["timepoint"].astype(object) == timepoint
    )
    if usable:
        m &= pd.to_numeric(s["value"], errors="coerce").notna()
    return set(s.loc[m.to_numpy(dtype=bool, na_value=False), "entity_id"].astype(object))


def _entities_with(
    ctx: FeasibilityContext, oc: Any, timepoint: str, usable: bool
) -> tuple[pd.DataFrame, np.ndarray, str]:
    """Denominator entities of ``oc``'s level and whether each has the outcome at ``timepoint``."""
    level = oc.level.value
    if level == "family":
        ent = _families(ctx)
        ent = ent[ent["consented"]].reset_index(drop=True)
        unit = "families"
    else:
        ent = _keyworkers(ctx)
        unit = "keyworkers"
    derived = (
        oc.instrument == "binary"
        and level == "keyworker"
        and not (ctx.scores["outcome_id"].astype(object) == oc.id).any()
    )
    if derived:
        end = ctx.trial_end
        if end is None:
            raise FeasibilityError.from_problem(
                path="trial.end",
                code="feasibility.no_trial_end",
                message=f"keyworkers in post ({oc.id}) need the trial end date; got none",
                hint="set [trial] end in the protocol",
            )
        hit = np.array([v is None or v >= end for v in ent["leave_date"]], dtype=bool)
        return ent, hit, unit
    ids = _scored(ctx, oc.id, timepoint, usable)
    return ent, ent["entity_id"].isin(ids).to_numpy(dtype=bool), unit


# ----------------------------------------------------------------------- built-ins
@register_feasibility_metric(
    "la_recruitment",
    kind="la",
    scope="trial",
    check=check_recruitment,
    description="LAs randomised / LAs approached",
    direction="higher",
)
def _la_recruitment(
    ctx: FeasibilityContext, params: Mapping[str, Any], arm: str | None
) -> MetricCounts:
    approached = ctx.protocol.trial.approached
    if approached is None:
        raise FeasibilityError.from_problem(
            path="trial.approached",
            code="feasibility.progression.approached",
            message="LA recruitment needs trial.approached, the number of LAs approached; got none",
            hint="add approached = <number of LAs invited> to [trial]",
        )
    las = ctx.las()
    if len(las) > approached:
        raise FeasibilityError.from_problem(
            path="trial.approached",
            code="feasibility.progression.approached",
            message=f"trial.approached must be at least the {len(las)} LAs randomised; "
            f"got {approached}",
            hint="count every LA invited to take part, including those randomised",
        )
    return MetricCounts(
        la_id=tuple(las),
        numerator=np.ones(len(las)),
        denominator=np.ones(len(las)),
        unit="LAs",
        total_denominator=float(approached),
    )


@register_feasibility_metric(
    "family_consent",
    kind="pooled",
    description="families consented / families referred",
    direction="higher",
)
def _family_consent(
    ctx: FeasibilityContext, params: Mapping[str, Any], arm: str | None
) -> MetricCounts:
    f = _families(ctx)
    return _per_la(
        ctx, f["la_id"].to_numpy(dtype=object), f["consented"].to_numpy(), arm, "families"
    )


@register_feasibility_metric(
    "family_retention",
    kind="pooled",
    optional_params=("outcome", "timepoint"),
    check=check_outcome_params("family", required=False),
    description="consented families with the outcome measured at the final timepoint / "
    "families consented",
    direction="higher",
)
def _family_retention(
    ctx: FeasibilityContext, params: Mapping[str, Any], arm: str | None
) -> MetricCounts:
    oc = _outcome(ctx.protocol, params, "family")
    tp = str(params.get("timepoint", oc.analysis_timepoint))
    ent, hit, unit = _entities_with(ctx, oc, tp, usable=False)
    return _per_la(ctx, ent["la_id"].to_numpy(dtype=object), hit, arm, unit,
                   note=f"{oc.id} measured at {tp}")  # fmt: skip


@register_feasibility_metric(
    "keyworker_retention",
    kind="pooled",
    optional_params=("outcome", "timepoint"),
    check=check_outcome_params("keyworker", required=False),
    description="keyworkers with the outcome measured at the final timepoint (or in post at "
    "the trial end) / keyworkers recruited",
    direction="higher",
)
def _keyworker_retention(
    ctx: FeasibilityContext, params: Mapping[str, Any], arm: str | None
) -> MetricCounts:
    oc = _outcome(ctx.protocol, params, "keyworker")
    tp = str(params.get("timepoint", oc.analysis_timepoint))
    ent, hit, unit = _entities_with(ctx, oc, tp, usable=False)
    return _per_la(ctx, ent["la_id"].to_numpy(dtype=object), hit, arm, unit,
                   note=f"{oc.id} at {tp}")  # fmt: skip


@register_feasibility_metric(
    "data_completeness",
    kind="pooled",
    required_params=("outcome",),
    optional_params=("timepoint",),
    check=check_outcome_params(None, required=True),
    description="entities with a usable score of the outcome at the timepoint / consented entities",
    direction="higher",
)
def _data_completeness(
    ctx: FeasibilityContext, params: Mapping[str, Any], arm: str | None
) -> MetricCounts:
    oc = _outcome(ctx.protocol, params, None)
    tp = str(params.get("timepoint", oc.analysis_timepoint))
    ent, hit, unit = _entities_with(ctx, oc, tp, usable=True)
    return _per_la(ctx, ent["la_id"].to_numpy(dtype=object), hit, arm, unit,
                   note=f"{oc.id} scored at {tp}")  # fmt: skip


def _fidelity_threshold(protocol: Any, params: Mapping[str, Any]) -> tuple[float, str]:
    if "threshold" in params:
        t = float(params["threshold"])
        return t, f"index at or above {t:g}"
    bands = list(protocol.fidelity.bands)
    band = str(params.get("band", "high"))
    t = float(bands[1] if band == "high" else bands[0])
    return t, f"{band} fidelity (index at or above {t:g})"


@register_feasibility_metric(
    "fidelity",
    kind="la",
    scope="intervention",
    optional_params=("statistic", "band", "threshold"),
    check=check_fidelity_params,
    needs_fidelity=True,
    description="intervention LAs at or above a fidelity band / intervention LAs (or the mean "
    "index)",
    direction="higher",
)
def _fidelity(ctx: FeasibilityContext, params: Mapping[str, Any], arm: str | None) -> MetricCounts:
    arm_i = ctx.protocol.intervention_arm
    las = ctx.las(arm_i)
    ov = ctx.fidelity.overall
    index = pd.Series(
        pd.to_numeric(ov["overall_index"], errors="coerce").to_numpy(dtype=float),
        index=ov["la_id"].astype(str).to_numpy(),
    )
    index = index[~index.index.duplicated()]
    vals = np.array([float(index.get(la, math.nan)) for la in las], dtype=float)
    missing = [la for la, v in zip(las, vals, strict=True) if not math.isfinite(v)]
    if str(params.get("statistic", "share")) == "mean":
        note = (
            f"mean of the overall fidelity index; {len(missing)} LA(s) without an index left out "
            f"({', '.join(missing)})"
            if missing
            else "mean of the overall fidelity index"
        )
        ok = np.isfinite(vals)
        return MetricCounts(
            la_id=tuple(las),
            numerator=np.where(ok, vals, 0.0),
            denominator=ok.astype(float),
            unit="LAs",
            values=vals,
            note=note,
        )
    t, what = _fidelity_threshold(ctx.protocol, params)
    hit = np.array([math.isfinite(v) and v >= t - 1e-12 for v in vals], dtype=float)
    note = what + (
        f"; {len(missing)} LA(s) without an overall index counted as below ({', '.join(missing)})"
        if missing
        else ""
    )
    return MetricCounts(
        la_id=tuple(las), numerator=hit, denominator=np.ones(len(las)), unit="LAs", note=note
    )


@register_feasibility_metric(
    "contamination",
    kind="la",
    scope="control",
    optional_params=("min_index",),
    check=check_contamination_params,
    needs_fidelity=True,
    description="control LAs with any intervention component delivered (or one delivered at "
    "min_index or more of its intended level) / control LAs",
    direction="lower",
)
def _contamination(
    ctx: FeasibilityContext, params: Mapping[str, Any], arm: str | None
) -> MetricCounts:
    las = ctx.las(ctx.protocol.control_arm)
    if "min_index" in params:
        t = float(params["min_index"])
        comp = ctx.fidelity.components
        idx = pd.to_numeric(comp["index"], errors="coerce").to_numpy(dtype=float)
        hit_las = set(comp.loc[idx >= t - 1e-12, "la_id"].astype(str))
        note = f"a component of the intervention delivered at fidelity index {t:g} or more"
    else:
        c = ctx.fidelity.contamination
        hit_las = set(c.loc[c["contaminated"].astype(bool).to_numpy(), "la_id"].astype(str))
        note = "any component of the intervention recorded in the control LA's delivery log"
    hit = np.array([la in hit_las for la in las], dtype=float)
    return MetricCounts(
        la_id=tuple(las), numerator=hit, denominator=np.ones(len(las)), unit="LAs", note=note
    )


def _present(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s):
        return s.fillna(False).to_numpy(dtype=bool)
    return s.notna().to_numpy(dtype=bool)


@register_feasibility_metric(
    "ratio",
    kind="pooled",
    required_params=("table", "numerator"),
    optional_params=("denominator", "record_type"),
    check=check_ratio_params,
    description="rows of a data table with the numerator column present / rows with the "
    "denominator column present",
)
def _ratio(ctx: FeasibilityContext, params: Mapping[str, Any], arm: str | None) -> MetricCounts:
    name = str(params["table"])
    t = ctx.tables.get(name)
    if t is None:
        raise FeasibilityError.from_problem(
            path="params.table",
            code="feasibility.ratio.no_table",
            message=f"the trial data must include the {name} table for a ratio criterion; got none",
            hint=f"add {name}.csv to the data directory",
        )
    if "record_type" in params:
        t = t[(t["record_type"].astype(object) == str(params["record_type"])).to_numpy(
            dtype=bool, na_value=False)]  # fmt: skip
    for key in ("numerator", "denominator"):
        col = params.get(key)
        if col is not None and str(col) not in t.columns:
            raise FeasibilityError.from_problem(
                path=f"params.{key}",
                code="feasibility.ratio.no_column",
                message=f"the {name} table must have column {col!r} for a ratio criterion; "
                "got none",
                hint=f"columns present: {', '.join(map(str, t.columns))}",
            )
    if "denominator" in params:
        t = t[_present(t[str(params["denominator"])])]
    hit = _present(t[str(params["numerator"])])
    unit = "records" if name == "delivery" else name
    return _per_la(ctx, _ids(t["la_id"]), hit, arm, unit,
                   note=f"{name}: {params['numerator']} present"
                   + (f" among rows with {params['denominator']}" if "denominator" in params
                      else ""))  # fmt: skip
