"""Feasibility outcomes and progression criteria of a pilot trial.

* :func:`assess_feasibility` → :class:`FeasibilityAssessment`: each ``[[progression]]``
  criterion's estimate with a cluster-adjusted interval, its traffic-light zone, the
  one-sided test against its red limit, and the recommendation (proceed / amend / stop);
* :func:`register_feasibility_metric` adds a metric to the registry
  (:mod:`trialkit.feasibility.metrics` lists the built-in ones; the protocol check against
  the registry is :mod:`trialkit.feasibility.checks`).

See ``docs/howto-progression.md``.
"""

from trialkit.feasibility.assess import RECOMMENDATION_RULE, assess_feasibility, recommend, zone_of
from trialkit.feasibility.checks import check_progression
from trialkit.feasibility.registry import (
    FeasibilityContext,
    FeasibilityMetric,
    MetricCounts,
    available_metrics,
    get_metric,
    register_feasibility_metric,
)
from trialkit.feasibility.result import (
    CRITERION_COLUMNS,
    CriterionResult,
    FeasibilityAssessment,
    Recommendation,
)

__all__ = [
    "CRITERION_COLUMNS",
    "RECOMMENDATION_RULE",
    "CriterionResult",
    "FeasibilityAssessment",
    "FeasibilityContext",
    "FeasibilityMetric",
    "MetricCounts",
    "Recommendation",
    "assess_feasibility",
    "available_metrics",
    "check_progression",
    "get_metric",
    "recommend",
    "register_feasibility_metric",
    "zone_of",
]
