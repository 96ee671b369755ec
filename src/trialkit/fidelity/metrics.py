"""The registry of fidelity metrics: how an indicator's value is computed from delivery records.

An indicator in the protocol's logic model names a ``metric`` and its ``params``::

    [[logic_model.nodes.indicators]]
    id = "ind.cpd_completion"
    metric = "share_completing_training"
    params = { course = "cpd", min_days = 4 }
    target = 1.0

Each metric is a function ``f(ctx, la_id, params) -> MetricValue`` registered with
:func:`register_metric`; a project adds its own metric the same way, before
calling :func:`~trialkit.fidelity.assess_fidelity`.  Built-in metrics:

=================================  ==========================================================
``training_days_delivered``        distinct days of course ``course`` held in the LA (a day is
                                   held when at least one keyworker attended it)
``share_completing_training``      share of the LA's keyworkers (of ``role``, if given)
                                   attending at least ``min_days`` days of ``course``
``supervision_sessions_per_month`` sessions held per supervision group per month (sessions
                                   held in the LA / (groups x months of delivery))
``clinician_fte_months``           sum of ``fte`` over the LA's clinician_month records
``share_sessions_with_genogram``   sessions with ``genogram_used`` / sessions held
``supervision_attendance``         attended / expected keyworker–session pairs (one
                                   ``supervision_attendance`` row per expected pair)
``share_families_with_feedback``   share of the LA's consented families with at least one
                                   administered feedback record at ``timepoint``
=================================  ==========================================================

Over time the assessment recomputes each metric "as at" the end of each month or
quarter (records dated up to then, keyworkers and families present by then); see
:class:`MetricContext`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from trialkit.data.schema import ROLES, register_delivery_needs
from trialkit.errors import FidelityError, Problem
from trialkit.fidelity._tables import DeliveryTables, month_count
from trialkit.protocol.hooks import register_check

__all__ = [
    "Metric",
    "MetricContext",
    "MetricValue",
    "available_metrics",
    "check_indicators",
    "get_metric",
    "register_metric",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricValue:
    """Value of a metric in one LA.

    ``delivered`` is NaN when it cannot be computed (``note`` says why, e.g. no
    eligible keyworkers); ``numerator``/``denominator`` are reported where the
    metric is a ratio (NaN otherwise).
    """

    delivered: float
    numerator: float = math.nan
    denominator: float = math.nan
    note: str = ""


@dataclass(frozen=True, slots=True)
class MetricContext:
    """Delivery records a metric reads, optionally restricted to "as at" a date.

    Attributes
    ----------
    tables : DeliveryTables
        Typed records (``training``, ``sessions``, ``attendance``, ``clinician``,
        ``feedback``, ``keyworkers``, ``families``).
    protocol : Protocol
    as_at : pandas.Timestamp or None
        When set, only records dated on or before it count (undated records are
        excluded and counted), keyworkers must have started and families consented
        by then, and the delivery period runs from the trial start to ``as_at``.
    """

    tables: DeliveryTables
    protocol: Any
    as_at: pd.Timestamp | None = None

    def months(self) -> float:
        """Months of delivery up to ``as_at`` (all of them when ``as_at`` is None)."""
        w = self.tables.window
        if self.as_at is None or w.start is None:
            return w.months
        end = min(self.as_at.date(), w.end) if w.end is not None else self.as_at.date()
        return float(max(month_count(w.start, end), 0))

    def dated(self, frame: pd.DataFrame, col: str = "date") -> pd.DataFrame:
        if self.as_at is None:
            return frame
        return frame[frame[col].notna() & (frame[col] <= self.as_at)]

    def keyworkers(self, la_id: str, role: str | None = None) -> pd.DataFrame:
        kw = self.tables.keyworkers
        kw = kw[kw["la_id"] == la_id]
        if role is not None:
            kw = kw[kw["role"] == role]
        if self.as_at is not None:
            kw = kw[kw["start_date"].isna() | (kw["start_date"] <= self.as_at)]
        return kw

    def families(self, la_id: str) -> pd.DataFrame:
        fam = self.tables.families
        fam = fam[(fam["la_id"] == la_id) & fam["consented"]]
        if self.as_at is not None:
            fam = fam[fam["consent_date"].isna() | (fam["consent_date"] <= self.as_at)]
        return fam


MetricFunc = Callable[[MetricContext, str, Mapping[str, Any]], MetricValue]
TargetFunc = Callable[[Any, Mapping[str, Any]], "tuple[float, str] | None"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """A registered metric.

    Attributes
    ----------
    name : str
    func : callable
        ``func(ctx, la_id, params) -> MetricValue``.
    record_types : tuple of str
        Delivery record types the metric reads; an LA with none of them has
        *missing* delivery (reported NA, not zero, unless ``missing_as_zero``).
    required_params, optional_params : tuple of str
    param_kinds : mapping of str to str
        What each parameter's value must be, checked against the protocol by
        ``trialkit check``: ``course`` (one of ``data.courses``), ``role`` (a
        keyworker role), ``timepoint`` (one of ``trial.timepoints``), ``quantity``
        (an intervention TIDieR quantity id), ``positive`` (a number > 0) or
        ``text``.
    default_target : callable, optional
        ``f(protocol, params) -> (value, source)`` used when the indicator gives no
        ``target`` (e.g. from the TIDieR ``when_and_how_much`` quantities).
    cumulative : bool
        True for totals (days, FTE-months) that accumulate over the trial; over
        time they are compared with the full target except when ``prorate``.
    prorate : bool
        Over time, scale the target by elapsed months / delivery months.
    description : str
    """

    name: str
    func: MetricFunc
    record_types: tuple[str, ...]
    required_params: tuple[str, ...] = ()
    optional_params: tuple[str, ...] = ()
    default_target: TargetFunc | None = None
    cumulative: bool = False
    prorate: bool = False
    description: str = ""
    contamination: str = field(default="")
    param_kinds: Mapping[str, str] = field(default_factory=dict)

    def check_params(
        self,
        indicator_id: str,
        params: Mapping[str, Any],
        protocol: Any = None,
        path: str | None = None,
    ) -> list[Problem]:
        """Problems with an indicator's ``params``: names, and values when ``protocol`` is given.

        Codes ``fidelity.indicator.missing_param``, ``fidelity.indicator.unknown_param``
        (with a did-you-mean hint) and ``fidelity.indicator.param_value``.
        """
        import difflib

        base = path or f"logic_model indicator {indicator_id} params"
        problems = []
        allowed = set(self.required_params) | set(self.optional_params) | {"target_quantity"}
        for p in self.required_params:
            if p not in params:
                problems.append(
                    Problem(
                        path=base,
                        code="fidelity.indicator.missing_param",
                        message=f"params of metric '{self.name}' must include '{p}'; "
                        f"got {', '.join(sorted(params)) or 'none'}",
                        hint=f"add params = {{ {p} = ... }} to the indicator",
                    )
                )
        for p in params:
            if p not in allowed:
                close = difflib.get_close_matches(p, sorted(allowed), n=1)
                problems.append(
                    Problem(
                        path=f"{base}.{p}",
                        code="fidelity.indicator.unknown_param",
                        message=f"parameter of metric '{self.name}' must be one of "
                        f"{', '.join(sorted(allowed))}; got '{p}'",
                        hint=(f"did you mean '{close[0]}'? " if close else "")
                        + f"parameters: {', '.join(sorted(allowed))}",
                    )
                )
        if protocol is None:
            return problems
        kinds = {"target_quantity": "quantity", **self.param_kinds}
        for p, value in params.items():
            if p not in allowed or p not in kinds:
                continue
            bad = _param_value_problem(kinds[p], value, protocol)
            if bad is None:
                continue
            rule, options = bad
            close = difflib.get_close_matches(str(value), options, n=1)
            problems.append(
                Problem(
                    path=f"{base}.{p}",
                    code="fidelity.indicator.param_value",
                    message=f"parameter '{p}' of metric '{self.name}' must be {rule}; "
                    f"got {value!r}",
                    hint=f"did you mean {close[0]!r}?"
                    if close
                    else f"use {rule} (declared in the protocol)",
                )
            )
        return problems


def _param_value_problem(kind: str, value: Any, protocol: Any) -> tuple[str, list[str]] | None:
    """``(rule, options)`` when ``value`` breaks the rule of ``kind``; None when it is fine."""
    if kind == "positive":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        return None if ok and math.isfinite(float(value)) else ("a number greater than 0", [])
    options: list[str]
    if kind == "course":
        options = list(protocol.data.courses)
        what = "a course in data.courses"
    elif kind == "role":
        options = list(ROLES)
        what = "a keyworker role"
    elif kind == "timepoint":
        options = list(protocol.trial.timepoints)
        what = "a timepoint in trial.timepoints"
    elif kind == "quantity":
        options = [q.id for _k, q in protocol.arms[protocol.intervention_arm].tidier.quantities()]
        what = "a TIDieR quantity id of the intervention arm"
    else:
        return None if isinstance(value, str) and value.strip() else ("a non-empty text", [])
    if isinstance(value, str) and value in options:
        return None
    return f"{what} ({', '.join(options)})", options


_REGISTRY: dict[str, Metric] = {}


def register_metric(
    name: str,
    *,
    record_types: tuple[str, ...],
    required_params: tuple[str, ...] = (),
    optional_params: tuple[str, ...] = (),
    default_target: TargetFunc | None = None,
    cumulative: bool = False,
    prorate: bool = False,
    description: str = "",
    replace: bool = False,
    columns: tuple[str, ...] = (),
    param_kinds: Mapping[str, str] | None = None,
) -> Callable[[MetricFunc], MetricFunc]:
    """Register a metric function under ``name`` (decorator).

    The record types (and any ``columns`` the metric reads beyond each record
    type's required ones) are declared to the data stage
    (:func:`trialkit.data.schema.register_delivery_needs`), so ``trialkit
    validate`` checks the delivery log for them whenever an indicator uses the
    metric.  ``param_kinds`` declares what each parameter's value must be (see
    :class:`Metric`); ``trialkit check`` checks the protocol's values against it.

    Examples
    --------
    >>> @register_metric("sessions_held", record_types=("supervision_session",),
    ...                  cumulative=True, replace=True)
    ... def sessions_held(ctx, la_id, params):
    ...     s = ctx.dated(ctx.tables.sessions)
    ...     return MetricValue(delivered=float((s["la_id"] == la_id).sum()))
    """

    def deco(func: MetricFunc) -> MetricFunc:
        if name in _REGISTRY and not replace:
            raise ValueError(f"metric {name!r} is already registered; pass replace=True")
        register_delivery_needs(name, record_types, columns)
        _REGISTRY[name] = Metric(
            name=name,
            func=func,
            record_types=record_types,
            required_params=required_params,
            optional_params=optional_params,
            default_target=default_target,
            cumulative=cumulative,
            prorate=prorate,
            description=description or (func.__doc__ or "").strip().split("\n")[0],
            param_kinds=dict(param_kinds or {}),
        )
        return func

    return deco


def get_metric(name: str, indicator_id: str = "") -> Metric:
    """Return the registered metric ``name`` or raise FidelityError listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FidelityError.from_problem(
            path=f"logic_model indicator {indicator_id} metric" if indicator_id else "metric",
            code="fidelity.indicator.unknown_metric",
            message=f"'metric' must be a registered fidelity metric; got {name!r}",
            hint=f"known metrics: {', '.join(sorted(_REGISTRY))} (or register one with "
            "trialkit.fidelity.register_metric)",
        ) from None


def available_metrics() -> dict[str, Metric]:
    """Registered metrics by name."""
    return dict(_REGISTRY)


def check_indicators(protocol: Any, stage: str = "protocol") -> list[Problem]:
    """Check every fidelity indicator of ``protocol`` against the metric registry.

    The metric must be registered (``fidelity.indicator.unknown_metric``, with a
    did-you-mean hint), its parameters named (``missing_param``, ``unknown_param``)
    and their values valid for this protocol (``param_value``: a course of
    ``data.courses``, a timepoint, a role, a TIDieR quantity id, a positive number).
    Registered with :mod:`trialkit.protocol.hooks`, so ``trialkit check`` and
    :func:`~trialkit.protocol.check_protocol` run it once this module is imported.
    """
    import difflib

    del stage
    out: list[Problem] = []
    for i, node in enumerate(protocol.logic_model.nodes):
        for j, ind in enumerate(node.indicators):
            path = f"logic_model.nodes[{i}].indicators[{j}]"
            metric = _REGISTRY.get(ind.metric)
            if metric is None:
                close = difflib.get_close_matches(ind.metric, sorted(_REGISTRY), n=1)
                out.append(
                    Problem(
                        path=f"{path}.metric",
                        code="fidelity.indicator.unknown_metric",
                        message=f"metric of indicator '{ind.id}' must be a registered fidelity "
                        f"metric; got {ind.metric!r}",
                        hint=(f"did you mean '{close[0]}'? " if close else "")
                        + f"known metrics: {', '.join(sorted(_REGISTRY))}",
                    )
                )
                continue
            out += metric.check_params(ind.id, ind.params, protocol, path=f"{path}.params")
    return out


# ----------------------------------------------------------------------- targets
def _quantity(protocol: Any, qid: str) -> Any:
    arm = protocol.arms[protocol.intervention_arm]
    for _key, q in arm.tidier.quantities():
        if q.id == qid:
            return q
    return None


def _target_from_quantity(qid_of: Callable[[Mapping[str, Any]], str]) -> TargetFunc:
    def f(protocol: Any, params: Mapping[str, Any]) -> tuple[float, str] | None:
        qid = str(params.get("target_quantity", qid_of(params)))
        q = _quantity(protocol, qid)
        if q is None:
            return None
        return float(q.value), f"tidier quantity {qid}"

    return f


def _target_one(protocol: Any, params: Mapping[str, Any]) -> tuple[float, str]:
    return 1.0, "default (every eligible unit)"


def _target_fte_months(protocol: Any, params: Mapping[str, Any]) -> tuple[float, str] | None:
    q = _quantity(protocol, str(params.get("target_quantity", "clinician_fte")))
    if q is None:
        return None
    from trialkit.fidelity._tables import delivery_window

    months = delivery_window(protocol).months
    if not math.isfinite(months):
        return None
    return float(q.value) * months, f"tidier quantity {q.id} x {months:g} delivery months"


# ----------------------------------------------------------------------- built-ins
def _ratio(num: float, den: float, what: str) -> MetricValue:
    if den <= 0:
        return MetricValue(delivered=math.nan, numerator=num, denominator=den, note=f"no {what}")
    return MetricValue(delivered=num / den, numerator=num, denominator=den)


@register_metric(
    "training_days_delivered",
    record_types=("training",),
    required_params=("course",),
    param_kinds={"course": "course"},
    default_target=_target_from_quantity(lambda p: f"{p.get('course', '')}_days"),
    cumulative=True,
    description="Distinct days of the course held in the LA (a day with at least one attendee).",
)
def training_days_delivered(
    ctx: MetricContext, la_id: str, params: Mapping[str, Any]
) -> MetricValue:
    """Distinct days of course ``course`` held in the LA (≥ 1 keyworker attended)."""
    tr = ctx.tables.training
    tr = tr[(tr["la_id"] == la_id) & (tr["course"] == str(params["course"])) & tr["attended"]]
    tr = ctx.dated(tr)
    return MetricValue(delivered=float(tr["day_key"].nunique()))


@register_metric(
    "share_completing_training",
    record_types=("training",),
    required_params=("course", "min_days"),
    optional_params=("role",),
    param_kinds={"course": "course", "min_days": "positive", "role": "role"},
    default_target=_target_one,
    description="Share of the LA's keyworkers (of the role) attending at least min_days days.",
)
def share_completing_training(
    ctx: MetricContext, la_id: str, params: Mapping[str, Any]
) -> MetricValue:
    """Share of the LA's keyworkers (of ``role``) attending ≥ ``min_days`` days of ``course``."""
    role = params.get("role")
    kws = ctx.keyworkers(la_id, None if role is None else str(role))
    tr = ctx.tables.training
    tr = tr[(tr["la_id"] == la_id) & (tr["course"] == str(params["course"])) & tr["attended"]]
    tr = ctx.dated(tr)
    days = tr.groupby("keyworker_id")["day_key"].nunique()
    per_kw = days.reindex(kws["keyworker_id"]).fillna(0)
    num = float((per_kw >= float(params["min_days"])).sum())
    return _ratio(num, float(len(kws)), f"keyworkers with role {role!r}" if role else "keyworkers")


@register_metric(
    "supervision_sessions_per_month",
    record_types=("supervision_session",),
    default_target=_target_from_quantity(lambda p: "supervision_frequency"),
    description="Supervision sessions per group per month: sessions held in the LA divided by "
    "(supervision groups x months of delivery).",
)
def supervision_sessions_per_month(
    ctx: MetricContext, la_id: str, params: Mapping[str, Any]
) -> MetricValue:
    r"""Sessions held per supervision group per month of delivery, averaged over the LA's groups.

    For LA *j* with supervision groups g = 1, …, G_j (the distinct ``group_id`` of its
    ``supervision_session`` records over the whole trial) and M months of delivery up to
    ``as_at``, group g held s_g sessions, so its frequency is f_g = s_g / M and

    .. math:: d_j = \frac{1}{G_j} \sum_g f_g = \frac{\sum_g s_g}{G_j M},

    the mean frequency over the LA's groups (numerator Σ s_g, denominator G_j M
    group-months).  The protocol's frequency (TIDieR ``supervision_frequency``) is per
    group, so an LA running two groups must hold twice the sessions of an LA with one.
    Records without a ``group_id`` in an LA that has none count as one group (the note
    says so; ``trialkit validate`` warns with ``delivery.no_group_id``).  A group is seen
    only through its session records: a group that never met cannot be counted.
    """
    ss_la = ctx.tables.sessions[ctx.tables.sessions["la_id"] == la_id]
    groups = ss_la["group_id"].dropna().nunique() if "group_id" in ss_la.columns else 0
    note = "" if groups else "no group_id recorded: the LA's sessions counted as one group"
    n_groups = max(int(groups), 1)
    ss = ctx.dated(ss_la)
    n = float(len(ss))
    months = ctx.months()
    if not math.isfinite(months):
        return MetricValue(
            delivered=math.nan, numerator=n, note="delivery period unknown (no trial dates)"
        )
    value = _ratio(n, n_groups * months, "delivery months")
    if not note:
        return value
    return MetricValue(
        delivered=value.delivered,
        numerator=value.numerator,
        denominator=value.denominator,
        note="; ".join(x for x in (value.note, note) if x),
    )


@register_metric(
    "clinician_fte_months",
    record_types=("clinician_month",),
    default_target=_target_fte_months,
    cumulative=True,
    prorate=True,
    description="Sum of the clinician FTE over the LA's clinician_month records.",
)
def clinician_fte_months(ctx: MetricContext, la_id: str, params: Mapping[str, Any]) -> MetricValue:
    """Sum of ``fte`` over the LA's clinician_month records (months up to ``as_at``)."""
    cm = ctx.tables.clinician
    cm = cm[cm["la_id"] == la_id]
    cm = ctx.dated(cm, "month_start")
    return MetricValue(delivered=float(cm["fte"].sum()), numerator=float(len(cm)))


@register_metric(
    "share_sessions_with_genogram",
    record_types=("supervision_session",),
    columns=("genogram_used",),
    default_target=_target_one,
    description="Share of the LA's supervision sessions in which a genogram was used.",
)
def share_sessions_with_genogram(
    ctx: MetricContext, la_id: str, params: Mapping[str, Any]
) -> MetricValue:
    """Sessions with ``genogram_used`` true ÷ sessions held (unrecorded use counts as not used)."""
    ss = ctx.dated(ctx.tables.sessions)
    ss = ss[ss["la_id"] == la_id]
    num = float(ss["genogram_used"].fillna(False).astype(bool).sum())
    return _ratio(num, float(len(ss)), "supervision sessions held")


@register_metric(
    "supervision_attendance",
    record_types=("supervision_attendance",),
    default_target=_target_one,
    description="Attended / expected keyworker-session pairs.",
)
def supervision_attendance(
    ctx: MetricContext, la_id: str, params: Mapping[str, Any]
) -> MetricValue:
    """Attended ÷ expected keyworker–session pairs (one attendance row per expected pair)."""
    at = ctx.dated(ctx.tables.attendance)
    at = at[at["la_id"] == la_id]
    return _ratio(float(at["attended"].sum()), float(len(at)), "expected attendances")


@register_metric(
    "share_families_with_feedback",
    record_types=("feedback",),
    required_params=("timepoint",),
    optional_params=("instrument",),
    param_kinds={"timepoint": "timepoint", "instrument": "text"},
    default_target=_target_one,
    description="Share of consented families with an administered feedback record at the timepoint.",
)
def share_families_with_feedback(
    ctx: MetricContext, la_id: str, params: Mapping[str, Any]
) -> MetricValue:
    """Share of the LA's consented families with ≥ 1 administered feedback record at ``timepoint``."""
    fam = ctx.families(la_id)
    fb = ctx.tables.feedback
    fb = fb[
        (fb["la_id"] == la_id) & (fb["timepoint"] == str(params["timepoint"])) & fb["administered"]
    ]
    if "instrument" in params and "instrument" in fb.columns:
        fb = fb[fb["instrument"].astype("object") == str(params["instrument"])]
    fb = ctx.dated(fb)
    num = float(fam["family_id"].isin(set(fb["family_id"])).sum())
    return _ratio(num, float(len(fam)), "consented families")


register_check("fidelity.indicators", check_indicators)
