"""The protocol check of ``[[progression]]`` criteria against the feasibility metric registry.

:func:`check_progression` is registered with :mod:`trialkit.protocol.hooks` when this module
is imported (``trialkit check`` imports it), so :func:`~trialkit.protocol.check_protocol`
runs it; each built-in metric's parameter check lives here too.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from trialkit.data.schema import COLUMNS, RECORD_TYPES
from trialkit.errors import Problem
from trialkit.feasibility.registry import FeasibilityMetric, ParamCheck, registry
from trialkit.protocol.hooks import register_check

__all__ = [
    "FIDELITY_BANDS",
    "RATIO_TABLES",
    "check_contamination_params",
    "check_fidelity_params",
    "check_outcome_params",
    "check_progression",
    "check_ratio_params",
    "check_recruitment",
    "default_outcome",
]

FIDELITY_BANDS: tuple[str, ...] = ("moderate", "high")
"""Bands a fidelity criterion may name: the lower and upper limits of ``[fidelity] bands``."""

RATIO_TABLES: tuple[str, ...] = ("families", "keyworkers", "delivery")
"""Data tables a ``ratio`` criterion may count rows of (each has an ``la_id`` column)."""


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
        metric = registry().get(c.metric)
        if metric is None:
            close = difflib.get_close_matches(c.metric, sorted(registry()), n=1)
            out.append(
                _problem(
                    f"{path}.metric",
                    "feasibility.progression.unknown_metric",
                    f"metric of criterion '{c.id}' must be a registered feasibility metric; "
                    f"got {c.metric!r}",
                    (f"did you mean '{close[0]}'? " if close else "")
                    + f"known metrics: {', '.join(sorted(registry()))}",
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


def check_outcome_params(level: str | None, required: bool) -> ParamCheck:
    def check(protocol: Any, params: Mapping[str, Any], path: str, cid: str) -> list[Problem]:
        out: list[Problem] = []
        ids = [o.id for o in protocol.outcomes if level is None or o.level.value == level]
        oid = params.get("outcome")
        oc = None
        if oid is None:
            if not required and default_outcome(protocol, level) is None:
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
            oc = default_outcome(protocol, level)
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


def check_fidelity_params(
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


def check_ratio_params(
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


def check_recruitment(
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


def check_contamination_params(
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


def default_outcome(protocol: Any, level: str | None) -> Any:
    """The first primary (else secondary) outcome at ``level`` (any level when None)."""
    for role in ("primary", "secondary"):
        for o in protocol.outcomes:
            if o.role == role and (level is None or o.level.value == level):
                return o
    return None


register_check("feasibility.progression", check_progression)
