"""Feasibility outcomes, progression criteria and planning the definitive trial.

* :func:`assess_feasibility` → :class:`FeasibilityAssessment`: each ``[[progression]]``
  criterion's estimate with a cluster-adjusted interval, its traffic-light zone, the
  one-sided test against its red limit, and the recommendation (proceed / amend / stop);
* :func:`plan_definitive_trial` → :class:`DefinitiveTrialPlan`: the pilot's variance
  components, SDs, correlations, cluster sizes, consent and attrition, and the number of LAs a
  definitive trial needs (point ICC, upper confidence limit, assurance);
* :func:`register_feasibility_metric` adds a metric to the registry
  (:mod:`trialkit.feasibility.metrics` lists the built-in ones; the protocol check against
  the registry is :mod:`trialkit.feasibility.checks`).

See ``docs/howto-progression.md``.
"""

from trialkit.feasibility.assess import RECOMMENDATION_RULE, assess_feasibility, recommend, zone_of
from trialkit.feasibility.checks import check_progression
from trialkit.feasibility.planning import (
    ArmRetention,
    DefinitiveTrialPlan,
    OutcomePlan,
    plan_definitive_trial,
)
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
    "ArmRetention",
    "CriterionResult",
    "DefinitiveTrialPlan",
    "FeasibilityAssessment",
    "FeasibilityContext",
    "FeasibilityMetric",
    "MetricCounts",
    "OutcomePlan",
    "Recommendation",
    "assess_feasibility",
    "available_metrics",
    "check_progression",
    "get_metric",
    "plan_definitive_trial",
    "recommend",
    "register_feasibility_metric",
    "zone_of",
]
