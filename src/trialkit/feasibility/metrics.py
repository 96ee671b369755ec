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

:func:`check_progression` checks every criterion against this registry; it is
registered with :mod:`trialkit.protocol.hooks`, so ``trialkit check`` runs it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from trialkit.data.schema import COLUMNS, RECORD_TYPES
from trialkit.errors import FeasibilityError, Problem
from trialkit.protocol.hooks import register_check

__all__ = [
    "FeasibilityContext",
    "FeasibilityMetric",
    "MetricCounts",
    "available_metrics",
    "check_progression",
    "get_metric",
    "register_feasibility_metric",
]

Kind = Literal["pooled", "la", "mean"]
Scope = Literal["any", "intervention", "control", "trial"]

FIDELITY_BANDS: tuple[str, ...] = ("moderate", "high")
"""Bands a fidelity criterion may name: the lower and upper limits of ``[fidelity] bands``."""

RATIO_TABLES: tuple[str, ...] = ("families", "keyworkers", "delivery")
"""Data tables a ``ratio`` criterion may count rows of (each has an ``la_id`` column)."""


@dataclass(frozen=True, slots=True)
class FeasibilityContext:
    """What a metric reads.

    Attributes
    ----------
    protocol : Protocol
    tables : mapping of str -> DataFrame
        Validated data tables (``families``, ``keyworkers``, ``delivery``, ...).
    scores : DataFrame
        ``outcome_id, entity_id, level, timepoint, value`` (value NaN when unscorable).
    arm_of : mapping of str -> str
        Randomised LA -> arm.
    fidelity : FidelityReport or None
    trial_end : date or None
    """

    protocol: Any
    tables: Mapping[str, pd.DataFrame]
    scores: pd.DataFrame
    arm_of: Mapping[str, str]
    fidelity: Any = None
    trial_end: Any = None

    def las(self, arm: str | None = None) -> list[str]:
        """Randomised LAs (of ``arm``), sorted."""
        return sorted(k for k, v in self.arm_of.items() if arm is None or v == arm)


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricCounts:
    """Counts per LA behind one criterion.

    ``numerator``/``denominator`` hold one entry per LA of ``la_id`` (for a ``"mean"``
    metric ``values`` holds the LA values and the counts are 1 per LA with a value);
    ``total_denominator`` overrides Σ denominator (LAs approached); ``unit`` names what
    is counted; ``note`` records choices the reader should know.
    """

    la_id: tuple[str, ...]
    numerator: np.ndarray
    denominator: np.ndarray
    unit: str
    values: np.ndarray | None = None
    total_denominator: float | None = None
    note: str = ""


MetricFunc = Callable[[FeasibilityContext, Mapping[str, Any], "str | None"], MetricCounts]
ParamCheck = Callable[[Any, Mapping[str, Any], str, str], list[Problem]]


@dataclass(frozen=True, slots=True, kw_only=True)
class FeasibilityMetric:
    """A registered feasibility metric.

    Attributes
    ----------
    name : str
    func : callable
        ``func(ctx, params, arm) -> MetricCounts`` (``arm`` None: every randomised LA).
    kind : {"pooled", "la", "mean"}
        The estimator (see the module docstring); ``fidelity`` switches to ``"mean"``
        with ``statistic = "mean"`` (:meth:`kind_for`).
    scope : {"any", "intervention", "control", "trial"}
        The LAs it covers; only ``"any"`` may be assessed ``by_arm``.
    required_params, optional_params : tuple of str
    check : callable or None
        ``check(protocol, params, path, criterion_id) -> problems`` for parameter values.
    needs_fidelity : bool
    description : str
    """

    name: str
    func: MetricFunc
    kind: Kind
    scope: Scope = "any"
    required_params: tuple[str, ...] = ()
    optional_params: tuple[str, ...] = ()
    check: ParamCheck | None = None
    needs_fidelity: bool = False
    description: str = ""
    direction: Literal["higher", "lower", "either"] = "either"

    def kind_for(self, params: Mapping[str, Any]) -> Kind:
        if self.name == "fidelity" and str(params.get("statistic", "share")) == "mean":
            return "mean"
        return self.kind


_REGISTRY: dict[str, FeasibilityMetric] = {}


def register_feasibility_metric(
    name: str,
    *,
    kind: Kind,
    scope: Scope = "any",
    required_params: tuple[str, ...] = (),
    optional_params: tuple[str, ...] = (),
    check: ParamCheck | None = None,
    needs_fidelity: bool = False,
    description: str = "",
    direction: Literal["higher", "lower", "either"] = "either",
) -> Callable[[MetricFunc], MetricFunc]:
    """Decorator registering ``func(ctx, params, arm) -> MetricCounts`` as metric ``name``.

    A project adds its own metric the same way before calling
    :func:`~trialkit.feasibility.assess_feasibility`; the latest registration wins.
    """

    def deco(func: MetricFunc) -> MetricFunc:
        _REGISTRY[name] = FeasibilityMetric(
            name=name,
            func=func,
            kind=kind,
            scope=scope,
            required_params=required_params,
            optional_params=optional_params,
            check=check,
            needs_fidelity=needs_fidelity,
            description=description,
            direction=direction,
        )
        return func

    return deco


def available_metrics() -> list[str]:
    """Names of the registered metrics, sorted."""
    return sorted(_REGISTRY)


def get_metric(name: str) -> FeasibilityMetric:
    """The metric ``name``; :class:`FeasibilityError` (``feasibility.unknown_metric``) if unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, sorted(_REGISTRY), n=1)
        raise FeasibilityError.from_problem(
            path="metric",
            code="feasibility.unknown_metric",
            message=f"metric must be a registered feasibility metric; got {name!r}",
            hint=(f"did you mean '{close[0]}'? " if close else "")
            + f"known metrics: {', '.join(sorted(_REGISTRY))}",
        ) from None


# ----------------------------------------------------------------------- protocol check
def _problem(path: str, code: str, message: str, hint: str, severity: str = "error") -> Problem:
    return Problem(path=path, code=code, message=message, hint=hint, severity=severity)  # type: ignore[arg-type]


def check_progression(protocol: Any, stage: str = "protocol") -> list[Problem]:
    """Check every ``[[progression]]`` criterion against the metric registry.

    Codes: ``feasibility.progression.unknown_metric`` (with a did-you-mean hint),
    ``missing_param``, ``unknown_param``, ``param_value`` (an outcome, timepoint, band,
    table, column or record type this protocol does not have), ``by_arm`` (the metric
    covers one arm or the whole trial), ``limits`` (a limit outside [0, 1], or a red
    limit of 0 or 1 that no estimate can be tested against), ``approached`` (LA
    recruitment without ``trial.approached``) and the warning ``direction``
    (contamination with green above red).
    """
    del stage
    out: list[Problem] = []
    for i, c in enumerate(protocol.progression):
        path = f"progression[{i}]"
        metric = _REGISTRY.get(c.metric)
        if metric is None:
            close = difflib.get_close_matches(c.metric, sorted(_REGISTRY), n=1)
            out.append(
                _problem(
                    f"{path}.metric",
                    "feasibility.progression.unknown_metric",
                    f"metric of criterion '{c.id}' must be a registered feasibility metric; "
                    f"got {c.metric!r}",
                    (f"did you mean '{close[0]}'? " if close else "")
                    + f"known metrics: {', '.join(sorted(_REGISTRY))}",
                )
            )
            continue
        allowed = set(metric.required_params) | set(metric.optional_params)
        for name in metric.required_params:
            if name not in c.params:
                out.append(
                    _problem(
                        f"{path}.params",
                        "feasibility.progression.missing_param",
                        f"criterion '{c.id}' (metric {c.metric}) must set params.{name}",
                        f"add {name} = ... to its params table",
                    )
                )
        for name in c.params:
            if name not in allowed:
                out.append(
                    _problem(
                        f"{path}.params.{name}",
                        "feasibility.progression.unknown_param",
                        f"metric {c.metric} of criterion '{c.id}' takes "
                        + (f"params {', '.join(sorted(allowed))}" if allowed else "no params")
                        + f"; got {name!r}",
                        "remove or rename the parameter",
                    )
                )
        if c.by_arm and metric.scope != "any":
            out.append(
                _problem(
                    f"{path}.by_arm",
                    "feasibility.progression.by_arm",
                    f"criterion '{c.id}' must not set by_arm: metric {c.metric} covers "
                    + (
                        "the whole trial" if metric.scope == "trial" else f"{metric.scope} LAs only"
                    ),
                    "remove by_arm = true",
                )
            )
        out += _check_limits(c, metric, path)
        if metric.check is not None and not any(
            p.code == "feasibility.progression.missing_param" and p.path == f"{path}.params"
            for p in out
        ):
            out += metric.check(protocol, c.params, f"{path}.params", c.id)
    return out


def _check_limits(c: Any, metric: FeasibilityMetric, path: str) -> list[Problem]:
    out: list[Problem] = []
    for name in ("green", "red"):
        v = float(getattr(c, name))
        if not 0.0 <= v <= 1.0:
            out.append(
                _problem(
                    f"{path}.{name}",
                    "feasibility.progression.limits",
                    f"{name} limit of criterion '{c.id}' must be a proportion between 0 and 1; "
                    f"got {v:g}",
                    "write 70% as 0.7",
                )
            )
    if c.red in (0.0, 1.0) and metric.kind_for(c.params) != "mean":
        out.append(
            _problem(
                f"{path}.red",
                "feasibility.progression.limits",
                f"red limit of criterion '{c.id}' must lie strictly between 0 and 1; got {c.red:g}",
                "a red zone that ends at 0 or 1 cannot be ruled out by any estimate",
            )
        )
    if metric.direction == "lower" and c.green > c.red:
        out.append(
            _problem(
                f"{path}.green",
                "feasibility.progression.direction",
                f"criterion '{c.id}' treats higher {c.metric} as better (green {c.green:g} "
                f"above red {c.red:g}); for {c.metric} lower is usually better",
                "check the limits: green below red means lower is better",
                severity="warning",
            )
        )
    return out


def _problem_value(path: str, cid: str, name: str, message: str, hint: str) -> Problem:
    return _problem(
        f"{path}.{name}",
        "feasibility.progression.param_value",
        f"params.{name} of criterion '{cid}' {message}",
        hint,
    )


def _check_outcome_params(level: str | None, required: bool) -> ParamCheck:
    def check(protocol: Any, params: Mapping[str, Any], path: str, cid: str) -> list[Problem]:
        out: list[Problem] = []
        ids = [o.id for o in protocol.outcomes if level is None or o.level.value == level]
        oid = params.get("outcome")
        oc = None
        if oid is None:
            if not required and _default_outcome(protocol, level) is None:
                out.append(
                    _problem_value(
                        path, cid, "outcome",
                        f"must be given: the protocol has no primary {level}-level outcome",
                        f"set outcome to one of {', '.join(ids) or '(none declared)'}",
                    )
                )  # fmt: skip
        else:
            oc = protocol.outcome(str(oid))
            if oc is None or (level is not None and oc.level.value != level):
                close = difflib.get_close_matches(str(oid), ids, n=1)
                out.append(
                    _problem_value(
                        path, cid, "outcome",
                        f"must name a declared {level + '-level ' if level else ''}outcome; "
                        f"got {oid!r}",
                        (f"did you mean '{close[0]}'? " if close else "")
                        + f"outcomes: {', '.join(ids) or '(none)'}",
                    )
                )  # fmt: skip
                oc = None
        if oc is None and oid is None:
            oc = _default_outcome(protocol, level)
        tp = params.get("timepoint")
        if tp is not None and oc is not None and str(tp) not in oc.timepoints:
            out.append(
                _problem_value(
                    path, cid, "timepoint",
                    f"must be a timepoint of outcome '{oc.id}'; got {tp!r}",
                    f"timepoints of {oc.id}: {', '.join(oc.timepoints)}",
                )
            )  # fmt: skip
        return out

    return check


def _check_fidelity_params(
    protocol: Any, params: Mapping[str, Any], path: str, cid: str
) -> list[Problem]:
    out: list[Problem] = []
    stat = str(params.get("statistic", "share"))
    if stat not in ("share", "mean"):
        out.append(
            _problem_value(path, cid, "statistic", f"must be 'share' or 'mean'; got {stat!r}",
                           "share: LAs at or above a band; mean: the mean fidelity index")
        )  # fmt: skip
    if "band" in params and "threshold" in params:
        out.append(
            _problem_value(path, cid, "band", "and params.threshold must not both be set",
                           "give a band name or a number, not both")
        )  # fmt: skip
    if "band" in params and str(params["band"]) not in FIDELITY_BANDS:
        out.append(
            _problem_value(path, cid, "band",
                           f"must be one of {', '.join(FIDELITY_BANDS)}; got {params['band']!r}",
                           "bands are the limits of [fidelity] bands")
        )  # fmt: skip
    if "threshold" in params:
        t = params["threshold"]
        if isinstance(t, str) or not 0.0 <= float(t) <= 1.0:
            out.append(
                _problem_value(path, cid, "threshold",
                               f"must be a number between 0 and 1; got {t!r}",
                               "the fidelity index runs from 0 to 1")
            )  # fmt: skip
    if stat == "mean" and ("band" in params or "threshold" in params):
        out.append(
            _problem_value(path, cid, "statistic",
                           "is 'mean', which takes no band or threshold",
                           "remove band/threshold, or use statistic = 'share'")
        )  # fmt: skip
    return out


def _check_ratio_params(
    protocol: Any, params: Mapping[str, Any], path: str, cid: str
) -> list[Problem]:
    out: list[Problem] = []
    table = str(params.get("table", ""))
    if table not in RATIO_TABLES:
        return [
            _problem_value(path, cid, "table",
                           f"must be one of {', '.join(RATIO_TABLES)}; got {table!r}",
                           "a ratio counts rows of a data table with an la_id column")
        ]  # fmt: skip
    cols = COLUMNS[table]
    for name in ("numerator", "denominator"):
        if name in params and str(params[name]) not in cols:
            close = difflib.get_close_matches(str(params[name]), list(cols), n=1)
            out.append(
                _problem_value(path, cid, name,
                               f"must be a column of the {table} table; got {params[name]!r}",
                               (f"did you mean '{close[0]}'? " if close else "")
                               + f"columns: {', '.join(cols)}")
            )  # fmt: skip
    if "record_type" in params:
        if table != "delivery":
            out.append(
                _problem_value(path, cid, "record_type", "applies only to table = 'delivery'",
                               "remove record_type or count the delivery table")
            )  # fmt: skip
        elif str(params["record_type"]) not in RECORD_TYPES:
            out.append(
                _problem_value(path, cid, "record_type",
                               f"must be one of {', '.join(RECORD_TYPES)}; got "
                               f"{params['record_type']!r}",
                               "see docs/data-spec.md for delivery record types")
            )  # fmt: skip
    return out


def _check_recruitment(
    protocol: Any, params: Mapping[str, Any], path: str, cid: str
) -> list[Problem]:
    if protocol.trial.approached is None:
        return [
            _problem(
                "trial.approached",
                "feasibility.progression.approached",
                f"criterion '{cid}' (la_recruitment) needs trial.approached, the number of "
                "LAs approached; got none",
                "add approached = <number of LAs invited> to [trial]",
            )
        ]
    return []


register_check("feasibility.progression", check_progression)


# ----------------------------------------------------------------------- helpers
def _default_outcome(protocol: Any, level: str | None) -> Any:
    for role in ("primary", "secondary"):
        for o in protocol.outcomes:
            if o.role == role and (level is None or o.level.value == level):
                return o
    return None


def _outcome(protocol: Any, params: Mapping[str, Any], level: str | None) -> Any:
    oid = params.get("outcome")
    oc = protocol.outcome(str(oid)) if oid is not None else _default_outcome(protocol, level)
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
    check=_check_recruitment,
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
    check=_check_outcome_params("family", required=False),
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
    check=_check_outcome_params("keyworker", required=False),
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
    check=_check_outcome_params(None, required=True),
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
    check=_check_fidelity_params,
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


def _check_contamination_params(
    protocol: Any, params: Mapping[str, Any], path: str, cid: str
) -> list[Problem]:
    t = params.get("min_index")
    if t is not None and (isinstance(t, str) or not 0.0 < float(t) <= 1.0):
        return [
            _problem_value(path, cid, "min_index",
                           f"must be a number above 0 and at most 1; got {t!r}",
                           "a control LA counts as contaminated when a component's fidelity "
                           "index reaches it")
        ]  # fmt: skip
    return []


@register_feasibility_metric(
    "contamination",
    kind="la",
    scope="control",
    optional_params=("min_index",),
    check=_check_contamination_params,
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
    check=_check_ratio_params,
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
