"""The registry of feasibility metrics and what a metric reads and returns.

:func:`register_feasibility_metric` adds a metric (a function ``f(ctx, params, arm) ->
MetricCounts``) under a name a ``[[progression]]`` criterion can use; the built-in metrics
are in :mod:`trialkit.feasibility.metrics` and the protocol check against the registry in
:mod:`trialkit.feasibility.checks`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from trialkit.errors import FeasibilityError, Problem

__all__ = [
    "FeasibilityContext",
    "FeasibilityMetric",
    "MetricCounts",
    "available_metrics",
    "get_metric",
    "register_feasibility_metric",
    "registry",
]

Kind = Literal["pooled", "la", "mean"]
Scope = Literal["any", "intervention", "control", "trial"]


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


def registry() -> dict[str, FeasibilityMetric]:
    """The registered metrics by name (a copy)."""
    return dict(_REGISTRY)
