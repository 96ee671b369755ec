"""Fidelity of delivery against the logic model (Carroll et al. 2007).

:func:`assess_fidelity` computes, for every LA, component and indicator of the
protocol's logic model: the intended value, the delivered value, the adherence
ratio, its band, the component and overall indices, the same over time, each
keyworker's dose, and contamination indicators in control LAs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from trialkit.errors import FidelityError, Problem
from trialkit.fidelity._tables import DeliveryTables, prepare_tables
from trialkit.fidelity.metrics import Metric, MetricContext, get_metric
from trialkit.fidelity.report import (
    COMPONENT_COLUMNS,
    CONTAMINATION_COLUMNS,
    INDICATOR_COLUMNS,
    OVER_TIME_COLUMNS,
    OVERALL_COLUMNS,
    FidelityReport,
    dose_columns,
)

__all__ = ["FidelityReport", "adherence_ratio", "assess_fidelity", "band_of"]

# positive delivery events per record type (for contamination record counts)
_POSITIVE = {
    "training": lambda t: t["attended"],
    "supervision_session": lambda t: pd.Series(True, index=t.index),
    "supervision_attendance": lambda t: t["attended"],
    "clinician_month": lambda t: t["fte"] > 0,
    "feedback": lambda t: t["administered"],
}


def adherence_ratio(delivered: float, intended: float, comparison: str = ">=") -> float:
    """Adherence of a delivered value to its intended value, in [0, 1].

    Parameters
    ----------
    delivered, intended : float
    comparison : {">=", "<=", "=="}
        ``">="`` (deliver at least the target): ``min(delivered / intended, 1)``;
        ``"<="`` (stay at or below a ceiling): 1 when ``delivered <= intended`` else
        ``intended / delivered``; ``"=="`` (hit the target): ``min(d/i, i/d)``.

    Notes
    -----
    NaN in gives NaN out (missing is never turned into zero here).  With an
    intended value of 0, ``">="`` gives 1, ``"<="`` gives 1 if nothing was
    delivered else 0 and ``"=="`` gives 1 only if nothing was delivered.
    """
    d, t = float(delivered), float(intended)
    if math.isnan(d) or math.isnan(t):
        return math.nan
    if comparison == ">=":
        return 1.0 if t <= 0 else max(0.0, min(d / t, 1.0))
    if comparison == "<=":
        if d <= t:
            return 1.0
        return 0.0 if t <= 0 else t / d
    if comparison == "==":
        if d == t:
            return 1.0
        if d <= 0 or t <= 0:
            return 0.0
        return min(d / t, t / d)
    raise ValueError(f"comparison must be '>=', '<=' or '=='; got {comparison!r}")


def band_of(value: float, bands: Sequence[float] = (0.5, 0.8)) -> str:
    """``"low"`` below ``bands[0]``, ``"moderate"`` below ``bands[1]``, else ``"high"``; NaN is ``"missing"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    lo, hi = bands
    if value < lo:
        return "low"
    if value < hi:
        return "moderate"
    return "high"


def _weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    ok = ~np.isnan(v)
    if not ok.any() or w[ok].sum() <= 0:
        return math.nan
    return float(np.sum(v[ok] * w[ok]) / np.sum(w[ok]))


# ------------------------------------------------------------------------- main
def assess_fidelity(
    protocol: Any,
    delivery: pd.DataFrame,
    keyworkers: pd.DataFrame,
    families: pd.DataFrame,
    allocation: pd.DataFrame,
    *,
    clusters: pd.DataFrame | None = None,
    bands: Sequence[float] | None = None,
    component_weights: Mapping[str, float] | None = None,
    missing_as_zero: bool | None = None,
    period: str | None = None,
    sources: Mapping[str, str] | None = None,
) -> FidelityReport:
    """Assess delivery against the protocol's logic model.

    Parameters
    ----------
    protocol : Protocol
        Its logic-model indicators give the metrics and targets; ``[fidelity]`` the
        bands, component weights, ``missing_as_zero`` and the over-time period.
    delivery : DataFrame
        Long delivery log with a ``record_type`` column (see ``docs/fidelity.md``).
    keyworkers, families : DataFrame
        ``keyworker_id, la_id, role, start_date`` and ``family_id, la_id, consent_date``.
    allocation : DataFrame
        Columns ``cluster, arm`` (as written by ``trialkit randomise``).
    clusters : DataFrame, optional
        Only used to warn about LAs that were not allocated.
    bands, component_weights, missing_as_zero, period
        Override the protocol's ``[fidelity]`` settings.
    sources : mapping, optional
        File names used in error messages, e.g. ``{"delivery": "delivery.csv"}``.

    Returns
    -------
    FidelityReport

    Raises
    ------
    FidelityError
        Listing every bad delivery record (file, row, column) or indicator.

    Notes
    -----
    For indicator *k* in LA *j* with delivered value :math:`d_{jk}` and intended
    value :math:`t_{jk}`, adherence is :math:`a_{jk} = \\min(d_{jk}/t_{jk}, 1)` for a
    ``>=`` target (see :func:`adherence_ratio` for ``<=`` and ``==``).  The
    component index is :math:`\\sum_k w_k a_{jk} / \\sum_k w_k` over the component's
    non-missing indicators (indicator ``weight``), and the overall index is the
    weighted mean of component indices with ``[fidelity.component_weights]``
    (weight 1 for components not listed).  An LA with no delivery records of the
    type a metric reads has *missing* delivery: NA and flagged, never zero,
    unless ``missing_as_zero``.  The adherence dimensions (content, frequency,
    duration, coverage) follow Carroll et al. (2007).

    References
    ----------
    Carroll C, Patterson M, Wood S, Booth A, Rick J, Balain S. A conceptual
    framework for implementation fidelity. Implementation Science 2007;2:40.
    """
    plan = protocol.fidelity
    bands_t = tuple(float(b) for b in (bands if bands is not None else plan.bands))
    if len(bands_t) != 2 or not (0 <= bands_t[0] <= bands_t[1]):
        raise FidelityError.from_problem(
            path="fidelity.bands",
            code="fidelity.settings.bands",
            message=f"bands must be two increasing thresholds, e.g. [0.5, 0.8]; got {list(bands_t)}",
            hint="give the lower limits of the moderate and high bands",
        )
    weights = dict(plan.component_weights)
    if component_weights is not None:
        weights.update({k: float(v) for k, v in component_weights.items()})
    as_zero = plan.missing_as_zero if missing_as_zero is None else bool(missing_as_zero)
    per = period or plan.period
    if per not in ("month", "quarter"):
        raise FidelityError.from_problem(
            path="fidelity.period",
            code="fidelity.settings.period",
            message=f"period must be 'month' or 'quarter'; got {per!r}",
            hint="use --period month or quarter",
        )

    indicators = list(protocol.logic_model.indicators())
    problems: list[Problem] = []
    metrics: dict[str, Metric] = {}
    for _node, ind in indicators:
        try:
            m = get_metric(ind.metric, ind.id)
        except FidelityError as err:
            problems.extend(err.problems)
            continue
        problems.extend(m.check_params(ind.id, ind.params, protocol))
        metrics[ind.id] = m
    if not indicators:
        problems.append(
            Problem(
                path="logic_model.nodes",
                code="fidelity.indicator.none",
                message="the logic model must declare at least one fidelity indicator",
                hint="add [[logic_model.nodes.indicators]] tables (see docs/fidelity.md)",
            )
        )
    if problems:
        raise FidelityError(f"{len(problems)} problem(s) with the fidelity indicators", problems)

    tables = prepare_tables(
        protocol, delivery, keyworkers, families, allocation, clusters=clusters, sources=sources
    )

    # targets -------------------------------------------------------------
    targets: dict[str, tuple[float, str]] = {}
    for _node, ind in indicators:
        m = metrics[ind.id]
        if ind.target is not None:
            targets[ind.id] = (float(ind.target), "logic_model indicator target")
            continue
        t = m.default_target(protocol, ind.params) if m.default_target else None
        if t is None:
            problems.append(
                Problem(
                    path=f"logic_model indicator {ind.id} target",
                    code="fidelity.indicator.no_target",
                    message=f"indicator '{ind.id}' must have a target (none given and none in TIDieR)",
                    hint="add target = ... to the indicator",
                )
            )
        else:
            targets[ind.id] = t
    if problems:
        raise FidelityError(f"{len(problems)} problem(s) with the fidelity indicators", problems)

    arms = tables.arms
    las = list(arms.index)
    roles = {k: a.role for k, a in protocol.arms.items()}
    present = {
        rt: set(tables.records_in(rt)["la_id"])
        for rt in (
            "training",
            "supervision_session",
            "supervision_attendance",
            "clinician_month",
            "feedback",
        )
    }
    ctx = MetricContext(tables, protocol)
    months_total = tables.window.months

    by_la = _split_by_la(tables, las)

    def evaluate(c: MetricContext, scale_target: float | None) -> list[dict[str, Any]]:
        rows = []
        for la in las:
            c_la = MetricContext(by_la[la], protocol, as_at=c.as_at)
            for node, ind in indicators:
                m = metrics[ind.id]
                has = any(la in present[rt] for rt in m.record_types)
                intended, source = targets[ind.id]
                if scale_target is not None and m.prorate:
                    intended = intended * scale_target
                if not has and not as_zero:
                    val = math.nan
                    num = den = math.nan
                    note = "no " + "/".join(m.record_types) + " records for this LA"
                    missing = True
                else:
                    mv = m.func(c_la, la, ind.params)
                    val, num, den, note = mv.delivered, mv.numerator, mv.denominator, mv.note
                    missing = False
                    if not has:
                        note = "no records; counted as zero (missing_as_zero)"
                a = adherence_ratio(val, intended, ind.comparison)
                rows.append(
                    {
                        "la_id": la,
                        "arm": arms[la],
                        "component": ind.component,
                        "indicator_id": ind.id,
                        "node_id": node.id,
                        "label": ind.label,
                        "level": str(ind.level),
                        "dimension": ind.dimension,
                        "metric": ind.metric,
                        "unit": "" if ind.unit is None else str(ind.unit),
                        "comparison": ind.comparison,
                        "intended": intended,
                        "target_source": source,
                        "delivered": val,
                        "numerator": num,
                        "denominator": den,
                        "adherence": a,
                        "band": band_of(a, bands_t),
                        "weight": float(ind.weight),
                        "missing": missing,
                        "note": note,
                    }
                )
        return rows

    ind_df = pd.DataFrame(evaluate(ctx, None), columns=INDICATOR_COLUMNS)
    comp_df, overall_df = _indices(ind_df, weights, bands_t)

    # over time ---------------------------------------------------------------
    over_rows: list[dict[str, Any]] = []
    w = tables.window
    undated = {
        "training": int(tables.training["date"].isna().sum()),
        "supervision_session": int(tables.sessions["date"].isna().sum()),
        "feedback": int(tables.feedback["date"].isna().sum()),
    }
    if w.start is not None and w.end is not None:
        freq = "M" if per == "month" else "Q"
        periods = pd.period_range(pd.Timestamp(w.start), pd.Timestamp(w.end), freq=freq)
        for p in periods:
            end = min(p.end_time.normalize(), pd.Timestamp(w.end))
            c = MetricContext(tables, protocol, as_at=end)
            scale = (
                c.months() / months_total if months_total and math.isfinite(months_total) else None
            )
            ti = pd.DataFrame(evaluate(c, scale), columns=INDICATOR_COLUMNS)
            tc, to = _indices(ti, weights, bands_t)
            label = str(p)
            for _, r in ti.iterrows():
                over_rows.append(
                    {
                        "period": label,
                        "period_end": end.date().isoformat(),
                        "la_id": r["la_id"],
                        "arm": r["arm"],
                        "scope": "indicator",
                        "id": r["indicator_id"],
                        "component": r["component"],
                        "intended": r["intended"],
                        "delivered": r["delivered"],
                        "adherence": r["adherence"],
                        "band": r["band"],
                        "missing": bool(r["missing"]),
                    }
                )
            for _, r in tc.iterrows():
                over_rows.append(
                    {
                        "period": label,
                        "period_end": end.date().isoformat(),
                        "la_id": r["la_id"],
                        "arm": r["arm"],
                        "scope": "component",
                        "id": r["component"],
                        "component": r["component"],
                        "intended": math.nan,
                        "delivered": math.nan,
                        "adherence": r["index"],
                        "band": r["band"],
                        "missing": bool(pd.isna(r["index"])),
                    }
                )
            for _, r in to.iterrows():
                over_rows.append(
                    {
                        "period": label,
                        "period_end": end.date().isoformat(),
                        "la_id": r["la_id"],
                        "arm": r["arm"],
                        "scope": "overall",
                        "id": "overall",
                        "component": "",
                        "intended": math.nan,
                        "delivered": math.nan,
                        "adherence": r["overall_index"],
                        "band": r["band"],
                        "missing": bool(pd.isna(r["overall_index"])),
                    }
                )
    over_df = pd.DataFrame(over_rows, columns=OVER_TIME_COLUMNS)

    dose_df = _keyworker_dose(protocol, tables)
    cont_df = _contamination(ind_df, tables, metrics, roles)

    settings = {
        "bands": list(bands_t),
        "component_weights": {c: float(weights.get(c, 1.0)) for c in comp_df["component"].unique()},
        "missing_as_zero": as_zero,
        "period": per,
        "window_start": None if w.start is None else w.start.isoformat(),
        "window_end": None if w.end is None else w.end.isoformat(),
        "delivery_months": months_total if math.isfinite(months_total) else None,
        "delivery_months_source": w.months_source,
        "adherence": "min(delivered/intended, 1) for '>='; 1 or intended/delivered for '<='; "
        "min(d/i, i/d) for '=='",
    }
    counts = {
        "n_las": len(las),
        "n_las_by_arm": {str(k): int(v) for k, v in arms.value_counts().sort_index().items()},
        "n_keyworkers": len(tables.keyworkers),
        "n_families": len(tables.families),
        "n_families_consented": int(tables.families["consented"].sum()),
        "records": {
            "training": len(tables.training),
            "supervision_session": len(tables.sessions),
            "supervision_attendance": len(tables.attendance),
            "clinician_month": len(tables.clinician),
            "feedback": len(tables.feedback),
        },
        "undated_records_excluded_from_over_time": undated,
        "n_missing_cells": int(ind_df["missing"].sum()),
    }
    return FidelityReport(
        indicators=ind_df,
        components=comp_df,
        overall=overall_df,
        over_time=over_df,
        keyworker_dose=dose_df,
        contamination=cont_df,
        settings=settings,
        counts=counts,
        intervention_arm=protocol.intervention_arm,
        control_arm=protocol.control_arm,
        warnings=tables.warnings,
    )


def _split_by_la(tables: DeliveryTables, las: Sequence[str]) -> dict[str, DeliveryTables]:
    """The records of each LA (metrics read only their LA's rows; this keeps them fast)."""

    def split(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
        groups = {str(k): g for k, g in frame.groupby("la_id", sort=False)}
        empty = frame.iloc[0:0]
        return {la: groups.get(la, empty) for la in las}

    parts = {
        name: split(getattr(tables, name))
        for name in (
            "training",
            "sessions",
            "attendance",
            "clinician",
            "feedback",
            "keyworkers",
            "families",
        )
    }
    out: dict[str, DeliveryTables] = {}
    for la in las:
        sub: dict[str, Any] = {name: parts[name][la] for name in parts}
        out[la] = dataclasses.replace(tables, **sub)
    return out


def _indices(
    ind_df: pd.DataFrame, weights: Mapping[str, float], bands: tuple[float, float]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    comp_rows = []
    for (la, comp), g in ind_df.groupby(["la_id", "component"], sort=False):
        idx = _weighted_mean(g["adherence"].tolist(), g["weight"].tolist())
        comp_rows.append(
            {
                "la_id": la,
                "arm": g["arm"].iloc[0],
                "component": comp,
                "index": idx,
                "band": band_of(idx, bands),
                "weight": float(weights.get(str(comp), 1.0)),
                "n_indicators": len(g),
                "n_missing": int(g["adherence"].isna().sum()),
            }
        )
    comp_df = pd.DataFrame(comp_rows, columns=COMPONENT_COLUMNS)
    overall_rows = []
    for la, g in comp_df.groupby("la_id", sort=False):
        g = g[g["weight"] > 0]
        avail = _weighted_mean(g["index"].tolist(), g["weight"].tolist())
        n_miss = int(g["index"].isna().sum())
        full = avail if n_miss == 0 else math.nan
        overall_rows.append(
            {
                "la_id": la,
                "arm": g["arm"].iloc[0] if len(g) else "",
                "overall_index": full,
                "band": band_of(full, bands),
                "overall_index_available": avail,
                "n_components": len(g),
                "n_components_missing": n_miss,
                "complete": n_miss == 0,
            }
        )
    return comp_df, pd.DataFrame(overall_rows, columns=OVERALL_COLUMNS)


#: intended training days when the protocol declares no ``<course>_days`` quantity: the
#: seed documents' 5 days of CPD for every keyworker and 10 Foundation days for champions
DEFAULT_COURSE_DAYS = {"cpd": 5.0, "foundation": 10.0}
_TRAINING_METRICS = ("share_completing_training", "training_days_delivered")


def _intended_days(protocol: Any, course: str) -> float:
    """TIDieR quantity ``<course>_days`` of the intervention arm, else the default (or 0)."""
    arm = protocol.arms[protocol.intervention_arm]
    for _k, q in arm.tidier.quantities():
        if q.id == f"{course}_days":
            return float(q.value)
    return DEFAULT_COURSE_DAYS.get(course, 0.0)


def _course_roles(protocol: Any, course: str) -> set[str] | None:
    """Roles a course is meant for: the ``role`` of its training indicators (None: everyone)."""
    roles = {
        str(ind.params["role"])
        for _node, ind in protocol.logic_model.indicators()
        if ind.metric in _TRAINING_METRICS
        and ind.params.get("course") == course
        and "role" in ind.params
    }
    return roles or None


def _keyworker_dose(protocol: Any, tables: DeliveryTables) -> pd.DataFrame:
    """Training and supervision dose per keyworker, for every course the protocol declares.

    A keyworker's training share is Σ_c min(days_c, intended_c) / Σ_c intended_c over the
    courses meant for their role (a course's training indicators name the role, e.g.
    Foundation for champions); the dose index is the mean of the training share and the
    supervision attendance share.
    """
    courses = list(protocol.data.courses)
    kw = tables.keyworkers
    tr = tables.training[tables.training["attended"]]
    days = tr.groupby(["keyworker_id", "course"])["day_key"].nunique()
    at = tables.attendance
    expected = at.groupby("keyworker_id").size()
    attended = at[at["attended"]].groupby("keyworker_id").size()
    plan = {c: (_intended_days(protocol, c), _course_roles(protocol, c)) for c in courses}
    rows = []
    for _, r in kw.iterrows():
        k = r["keyworker_id"]
        done = {c: float(days.get((k, c), 0)) for c in courses}
        meant = [c for c, (_d, roles) in plan.items() if roles is None or r["role"] in roles]
        intended = sum(plan[c][0] for c in meant)
        got = sum(min(done[c], plan[c][0]) for c in meant)
        share = got / intended if intended > 0 else math.nan
        exp = float(expected.get(k, 0))
        att = float(attended.get(k, 0))
        att_share = att / exp if exp > 0 else math.nan
        dose = _weighted_mean([share, att_share], [1.0, 1.0])
        rows.append(
            {
                "keyworker_id": k,
                "la_id": r["la_id"],
                "arm": tables.arms.get(r["la_id"], ""),
                "role": r["role"],
                **{f"{c}_days": done[c] for c in courses},
                "training_days": sum(done.values()),
                "training_days_intended": intended,
                "training_share": share,
                "supervision_expected": exp,
                "supervision_attended": att,
                "supervision_attendance": att_share,
                "dose_index": dose,
            }
        )
    return pd.DataFrame(rows, columns=dose_columns(courses))


def _contamination(
    ind_df: pd.DataFrame,
    tables: DeliveryTables,
    metrics: Mapping[str, Metric],
    roles: Mapping[str, str],
) -> pd.DataFrame:
    rows = []
    control = ind_df[ind_df["arm"].map(lambda a: roles.get(a) == "control")]
    for (la, comp), g in control.groupby(["la_id", "component"], sort=False):
        delivered = g[(g["delivered"].fillna(0) > 0)]
        rtypes = sorted({rt for i in g["indicator_id"] for rt in metrics[i].record_types})
        n_rec = 0
        for rt in rtypes:
            recs = tables.records_in(rt)
            recs = recs[recs["la_id"] == la]
            if len(recs):
                n_rec += int(_POSITIVE[rt](recs).fillna(False).astype(bool).sum())
        detail = "; ".join(
            f"{r['indicator_id']} delivered {r['delivered']:g}" for _, r in delivered.iterrows()
        )
        rows.append(
            {
                "la_id": la,
                "arm": g["arm"].iloc[0],
                "component": comp,
                "n_indicators_delivered": len(delivered),
                "n_records": n_rec,
                "contaminated": bool(len(delivered) > 0),
                "detail": detail,
            }
        )
    return pd.DataFrame(rows, columns=CONTAMINATION_COLUMNS)
