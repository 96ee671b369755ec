"""Assess a pilot's progression criteria: estimates, zones, the test against red, a recommendation.

:func:`assess_feasibility` computes every ``[[progression]]`` criterion of the protocol
from validated trial data (and the fidelity assessment for fidelity and contamination),
puts each in its traffic-light zone, tests it against its red limit and combines them
into a recommendation: proceed, amend or stop.

References
----------
Eldridge SM et al. CONSORT 2010 statement: extension to randomised pilot and
feasibility trials. BMJ 2016;355:i5239 (item 6c: progression criteria).
Avery KNL et al. Informing efficient randomised controlled trials: exploration of
challenges in developing progression criteria for internal pilot studies. BMJ Open
2017;7:e013537.
Lewis M et al. Determining sample size for progression criteria for pragmatic pilot
RCTs: the hypothesis test strikes back! Pilot Feasibility Stud 2021;7:40.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

import trialkit.feasibility.metrics  # noqa: F401  (registers the built-in metrics)
from trialkit.errors import FeasibilityError, TrialkitError
from trialkit.feasibility.registry import FeasibilityContext, MetricCounts, get_metric
from trialkit.feasibility.result import (
    CriterionResult,
    FeasibilityAssessment,
    Recommendation,
    Zone,
)
from trialkit.models.proportion import (
    ProportionEstimate,
    cluster_mean,
    clustered_proportion,
    compare_with_limit,
    exact_proportion,
)

__all__ = ["RECOMMENDATION_RULE", "assess_feasibility", "recommend", "zone_of"]

RECOMMENDATION_RULE = (
    "stop if any criterion's estimate is in its red zone; otherwise amend if any is amber or "
    "could not be assessed, or if its one-sided test at level alpha does not rule out the red "
    "zone (p >= alpha: the pilot cannot exclude that the true value is red); proceed when "
    "every criterion is green and each test rules out red"
)
"""The rule :func:`recommend` applies, stated in every assessment."""


def zone_of(estimate: float, green: float, red: float) -> Zone:
    """Traffic-light zone of a point estimate.

    Green above red (higher is better): green when ``estimate >= green``, red when
    ``estimate <= red``, amber in between; reversed when green is below red.  NaN is
    ``"not assessed"``.
    """
    if not math.isfinite(estimate):
        return "not assessed"
    if green > red:
        if estimate >= green:
            return "green"
        return "red" if estimate <= red else "amber"
    if estimate <= green:
        return "green"
    return "red" if estimate >= red else "amber"


def recommend(criteria: Sequence[CriterionResult]) -> Recommendation:
    """Combine the criteria into proceed / amend / stop by :data:`RECOMMENDATION_RULE`."""
    reasons: list[str] = []
    red, amber = [], []
    for c in criteria:
        name = c.label + (f" ({c.arm})" if c.arm else "")
        if c.zone == "red":
            red.append(c)
            reasons.append(f"{name}: red (at or beyond the red limit {c.red:g})")
        elif c.zone == "not assessed":
            amber.append(c)
            reasons.append(f"{name}: could not be assessed ({c.note or 'no data'})")
        elif c.zone == "amber":
            amber.append(c)
            reasons.append(
                f"{name}: amber (between red {c.red:g} and green {c.green:g})"
                + (f"; action: {c.action}" if c.action else "")
            )
        elif c.rules_out_red is not True:
            amber.append(c)
            reasons.append(
                f"{name}: green, but the one-sided test at level {c.alpha:g} does not rule out "
                f"the red zone (red limit {c.red:g})"
                + (f"; action: {c.action}" if c.action else "")
            )
    if red:
        decision = "stop"
    elif amber:
        decision = "amend"
    else:
        decision = "proceed"
        reasons.append("every criterion is green and rules out its red zone")
    if not criteria:
        decision = "amend"
        reasons = ["the protocol has no progression criteria"]
    return Recommendation(decision=decision, rule=RECOMMENDATION_RULE, reasons=tuple(reasons))  # type: ignore[arg-type]


def _arm_map(allocation: Any, trial_data: Any) -> dict[str, str]:
    if allocation is None:
        arms = dict(trial_data.arms)
    else:
        frame = getattr(allocation, "frame", allocation)
        if isinstance(frame, Mapping):
            arms = {str(k): str(v) for k, v in frame.items()}
        elif isinstance(frame, pd.DataFrame) and {"cluster", "arm"} <= set(frame.columns):
            arms = dict(zip(frame["cluster"].astype(str), frame["arm"].astype(str), strict=True))
        else:
            raise FeasibilityError.from_problem(
                path="allocation",
                code="feasibility.allocation",
                message="allocation must be an AllocationRecord, a table with columns cluster "
                f"and arm, or a mapping LA -> arm; got {type(allocation).__name__}",
                hint="read it with trialkit.store.read_allocation",
            )
    if not arms:
        raise FeasibilityError.from_problem(
            path="allocation",
            code="feasibility.allocation",
            message="the allocation must list the randomised LAs; got none",
            hint="pass the allocation directory written by `trialkit randomise`",
        )
    return arms


def _fidelity_for(protocol: Any, trial_data: Any, arms: Mapping[str, str]) -> tuple[Any, str]:
    """Assess fidelity from the delivery table when the caller did not pass it."""
    delivery = trial_data.tables.get("delivery")
    if delivery is None or not len(delivery):
        return None, "no delivery data, so fidelity and contamination cannot be assessed"
    from trialkit.fidelity import assess_fidelity

    t = trial_data.tables
    alloc = pd.DataFrame({"cluster": list(arms), "arm": list(arms.values())})
    try:
        rep = assess_fidelity(
            protocol, t["delivery"], t["keyworkers"], t["families"], alloc,
            clusters=t.get("clusters"),
        )  # fmt: skip
    except TrialkitError as err:
        return None, f"fidelity could not be assessed: {err}"
    return rep, ""


def _estimate(kind: str, counts: MetricCounts, conf_level: float) -> ProportionEstimate:
    if kind == "pooled":
        return clustered_proportion(counts.numerator, counts.denominator, conf_level=conf_level)
    if kind == "mean":
        vals = counts.values if counts.values is not None else counts.numerator
        return cluster_mean(vals, conf_level=conf_level)
    x = float(counts.numerator.sum())
    n = (
        float(counts.total_denominator)
        if counts.total_denominator is not None
        else float(counts.denominator.sum())
    )
    return exact_proportion(x, n, conf_level=conf_level)


def _missing(c: Any, arm: str, note: str) -> CriterionResult:
    return CriterionResult(
        id=c.id, label=c.label, metric=c.metric, arm=arm, numerator=math.nan,
        denominator=math.nan, clusters=0, unit="", estimate=math.nan, std_error=math.nan,
        df=math.nan, conf_low=math.nan, conf_high=math.nan, conf_level=math.nan, method="",
        green=c.green, red=c.red, higher_is_better=c.higher_is_better, zone="not assessed",
        statistic=math.nan, test_df=math.nan, p_value=math.nan, test_method="", alpha=c.alpha,
        rules_out_red=None, action=c.action, note=note,
    )  # fmt: skip


def assess_feasibility(
    protocol: Any,
    trial_data: Any,
    allocation: Any = None,
    fidelity: Any = None,
    *,
    conf_level: float = 0.95,
) -> FeasibilityAssessment:
    """Assess the protocol's progression criteria on the pilot's data.

    Parameters
    ----------
    protocol : Protocol
        Its ``[[progression]]`` criteria (and ``trial.approached`` for LA recruitment).
    trial_data : TrialData
        Validated data (:func:`trialkit.data.validate`); must have no errors.
    allocation : AllocationRecord, DataFrame or mapping, optional
        The randomised LAs and their arms (``cluster, arm``); default the allocation
        held in ``trial_data``.
    fidelity : FidelityReport, optional
        For the ``fidelity`` and ``contamination`` metrics; assessed from the delivery
        table when omitted and delivery data exist.
    conf_level : float
        Two-sided level of the reported intervals (default 0.95).

    Returns
    -------
    FeasibilityAssessment

    Notes
    -----
    *Estimates.*  A proportion of units within LAs (families, keyworkers, records) is the
    pooled ratio :math:`\\hat p = \\sum_j y_j / \\sum_j n_j` over the :math:`J` randomised LAs
    with units, with the design-based (Taylor-linearisation) variance of a one-stage
    cluster sample with LAs as clusters,
    :math:`\\widehat V(\\hat p) = \\frac{J}{J-1} \\sum_j (y_j - \\hat p n_j)^2 / N^2`, and the
    interval :math:`\\operatorname{expit}(\\operatorname{logit}\\hat p \\pm t_{J-1}\\,
    \\widehat{\\mathrm{se}}(\\hat p) / \\{\\hat p (1-\\hat p)\\})` — R's
    ``survey::svyciprop(method = "logit", df = degf(design))``.  A proportion of LAs
    (recruited of approached; intervention LAs at a fidelity band; control LAs
    contaminated) has the exact Clopper–Pearson interval; the mean fidelity index a *t*
    interval on :math:`J - 1` df.  See :mod:`trialkit.models.proportion`.

    *Zones.*  Green at or beyond the green limit, red at or beyond the red limit, amber
    in between; the direction follows the order of the limits (Avery et al. 2017).

    *Test against red.*  Lewis et al. (2021) test :math:`H_0: \\pi \\le R` (the true
    value is red) against :math:`H_1: \\pi > R`, one-sided (reversed when lower is
    better).  Adapted to clustering, the statistic is
    :math:`t = (\\operatorname{logit}\\hat p - \\operatorname{logit} R) /
    \\widehat{\\mathrm{se}}(\\operatorname{logit}\\hat p)` on :math:`J - 1` df with the
    design-based SE (the test dual to the interval); for LA counts the exact binomial
    tail; for the mean index :math:`t = (\\bar x - R)/(s/\\sqrt J)` on :math:`J - 1` df.

    *Recommendation.*  :data:`RECOMMENDATION_RULE`.
    """
    trial_data.raise_for_errors()
    arms = _arm_map(allocation, trial_data)
    warnings: list[str] = []
    fid_note = ""
    if fidelity is None and any(get_metric(c.metric).needs_fidelity for c in protocol.progression):
        fidelity, fid_note = _fidelity_for(protocol, trial_data, arms)
        if fid_note:
            warnings.append(fid_note)
    ctx = FeasibilityContext(
        protocol=protocol,
        tables=dict(trial_data.tables),
        scores=trial_data.scores,
        arm_of=arms,
        fidelity=fidelity,
        trial_end=trial_data.trial_end or protocol.trial.end,
    )
    results: list[CriterionResult] = []
    for c in protocol.progression:
        metric = get_metric(c.metric)
        kind = metric.kind_for(c.params)
        arm_list: list[str | None] = (
            [a for a in protocol.arm_ids if a in set(arms.values())] if c.by_arm else [None]
        )
        scoped = {
            "intervention": protocol.intervention_arm,
            "control": protocol.control_arm,
        }.get(metric.scope, "")
        for arm in arm_list:
            label_arm = arm or scoped
            if metric.needs_fidelity and fidelity is None:
                results.append(_missing(c, label_arm, fid_note))
                continue
            counts = metric.func(ctx, c.params, arm)
            est = _estimate(kind, counts, conf_level)
            test = compare_with_limit(est, c.red, higher_is_better=c.higher_is_better)
            p = test.p_value
            notes = [n for n in (counts.note, est.note) if n]
            results.append(
                CriterionResult(
                    id=c.id,
                    label=c.label,
                    metric=c.metric,
                    arm=label_arm,
                    numerator=est.numerator,
                    denominator=est.denominator,
                    clusters=est.clusters if kind != "la" else len(counts.la_id),
                    unit=counts.unit,
                    estimate=est.estimate,
                    std_error=est.std_error,
                    df=est.df,
                    conf_low=est.conf_low,
                    conf_high=est.conf_high,
                    conf_level=conf_level,
                    method=est.method,
                    green=c.green,
                    red=c.red,
                    higher_is_better=c.higher_is_better,
                    zone=zone_of(est.estimate, c.green, c.red),
                    statistic=test.statistic,
                    test_df=test.df,
                    p_value=p,
                    test_method=test.method,
                    alpha=c.alpha,
                    rules_out_red=None if not math.isfinite(p) else bool(p < c.alpha),
                    action=c.action,
                    note="; ".join(notes),
                )
            )
    return FeasibilityAssessment(
        criteria=tuple(results),
        recommendation=recommend(results),
        conf_level=conf_level,
        warnings=tuple(warnings),
    )
