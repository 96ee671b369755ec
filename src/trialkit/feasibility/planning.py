"""Planning the definitive trial from the pilot: the parameters and the number of LAs it needs.

For every continuous outcome the pilot estimates what a definitive cluster
randomised trial is designed on, each with its uncertainty, and turns them into
the number of LAs needed for the outcome's ``target_effect`` three ways.

Notes
-----
**ICCs.**  The unconditional (null) model of the outcome at its analysis
timepoint, with random intercepts for LA and, for family outcomes, keyworker
(REML; :func:`trialkit.models.variance_components.fit_null_model`).  The
interval is the profile-likelihood interval of each ICC (likelihood-ratio test
inversion on the REML deviance; checked against R lme4's deviance function in
``tests/reference/planning/``).

**SD.**  The outcome's sample SD ``s`` on ``n − 1`` df with the chi-square
interval ``[s\\sqrt{(n−1)/χ^2_{1−α/2,n−1}},\\ s\\sqrt{(n−1)/χ^2_{α/2,n−1}}]``
(the basis of Sim & Lewis's 2012 upper-confidence-limit inflation).  It treats
the ``n`` individuals as independent, so with clustering it is too narrow; the
null model's total SD ``\\sqrt{ψ_{LA} + ψ_{KW} + σ^2}`` is given beside it.

**Baseline–follow-up correlation.**  Pearson's ``r`` over the individuals with
both, and Fisher's interval ``\\tanh(\\operatorname{atanh} r ± z_{1−α/2}/\\sqrt{n−3})``
(ignores clustering; as R's ``cor.test``).

**Cluster sizes.**  ``m̄`` the mean number of analysed individuals per LA and
``CV = s_m/m̄`` with ``s_m`` their SD (``n − 1`` divisor; Eldridge, Ashby & Kerry
2006); for family outcomes also the mean keyworkers per LA and families per
keyworker.

**Consent and attrition by arm.**  Families consented / referred, and among the
consented those without the primary family outcome at its timepoint (attrition);
keyworkers who left post before the trial end / keyworkers in randomised LAs.
Plain ratios: their cluster-adjusted intervals are the progression criteria's
(``feasibility`` core).

**LAs needed** for the outcome's ``target_effect`` (SD units, two-sided ``α``,
``power``, equal allocation, the pilot's cluster sizes and CV with Eldridge's
correction; :func:`trialkit.power.analytic.required_clusters`):

(a) *point*: the ICC point estimates;
(b) *upper limit*: the LA ICC at its upper confidence limit (keyworker ICC at
    its point estimate);
(c) *assurance*: the smallest ``K`` whose expected power over the LA ICC's
    uncertainty reaches the target,

.. math::

    A(K) = \\int_0^1 \\operatorname{power}\\bigl(K;\\ ρ,\\ ρ_{KW}(ρ)\\bigr)\\, π(ρ)\\, dρ,
    \\qquad π(ρ) ∝ \\exp\\{−\\tfrac12[D(ρ) − \\min D]\\},

where ``D`` is the profile REML deviance of the LA ICC (so ``π`` is the
normalised profile likelihood: the posterior under a flat prior, to the profile
approximation) and ``ρ_{KW}(ρ)`` the keyworker ICC at the constrained optimum.
The integral is a trapezoid sum over the stored profile grid (``D − min D`` up to
20).  Assurance in this sense is O'Hagan, Stevens & Campbell's (2005) expected
power; checked by simulating trials with ICCs drawn from ``π`` (slow test).

References
----------
Eldridge, S. M., Ashby, D. & Kerry, S. (2006). Sample size for cluster randomized
trials: effect of coefficient of variation of cluster size and analysis method.
*International Journal of Epidemiology* 35(5), 1292–1300.

O'Hagan, A., Stevens, J. W. & Campbell, M. J. (2005). Assurance in clinical trial
design. *Pharmaceutical Statistics* 4(3), 187–201.

Sim, J. & Lewis, M. (2012). The size of a pilot study for a clinical trial should
be calculated in relation to considerations of precision and efficiency.
*Journal of Clinical Epidemiology* 65(3), 301–308.

Eldridge, S. M., Costelloe, C. E., Kahan, B. C., Lancaster, G. A. & Kerry, S. M.
(2016). How big should the pilot study for my cluster randomised trial be?
*Statistical Methods in Medical Research* 25(3), 1039–1056.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from trialkit._version import __version__
from trialkit.data.frame import analysis_frame
from trialkit.errors import FeasibilityError, ModelSpecError
from trialkit.models.variance_components import NullModelFit, fit_null_model
from trialkit.power.analytic import (
    CRTDesign,
    power_from_noncentrality,
    required_clusters,
    standard_error,
)

if TYPE_CHECKING:
    from trialkit.data._result import TrialData
    from trialkit.protocol.model import Protocol

__all__ = [
    "ArmRetention",
    "DefinitiveTrialPlan",
    "OutcomePlan",
    "assurance",
    "plan_definitive_trial",
]

RESULT_SCHEMA_VERSION = 1
_MAX_LAS = 100_000


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomePlan:
    """The planning parameters of one continuous outcome and the LAs it needs.

    ICC, SD and correlation limits are ``1 − α`` intervals (see the module notes).
    ``las_*`` are ``None`` when the outcome has no target effect; ``power_*`` are
    the power (or assurance) reached at that number of LAs.
    """

    outcome_id: str
    label: str
    level: str
    timepoint: str
    role: str
    n_obs: int
    n_las: int
    n_keyworkers: int | None
    mean_cluster_size: float
    cluster_size_cv: float
    mean_keyworkers_per_la: float | None
    mean_per_keyworker: float | None
    icc_la: float
    icc_la_low: float
    icc_la_high: float
    icc_keyworker: float | None
    icc_keyworker_low: float | None
    icc_keyworker_high: float | None
    sd: float
    sd_low: float
    sd_high: float
    sd_null_model: float
    correlation: float | None
    correlation_low: float | None
    correlation_high: float | None
    n_pairs: int
    target_effect: float | None
    las_point: int | None
    las_upper: int | None
    las_assurance: int | None
    power_point: float | None
    power_upper: float | None
    assurance_at_las: float | None
    singular: bool
    null_model: NullModelFit = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            d[f.name] = v.to_dict() if f.name == "null_model" else _clean(v)
        return d


@dataclass(frozen=True, slots=True, kw_only=True)
class ArmRetention:
    """Consent and attrition in one arm (counts and plain ratios)."""

    arm: str
    families_referred: int
    families_consented: int
    consent_rate: float
    families_followed_up: int
    family_attrition: float
    followup_timepoint: str
    keyworkers: int
    keyworkers_left: int
    keyworker_attrition: float

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _clean(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class DefinitiveTrialPlan:
    """The planning table: one :class:`OutcomePlan` per continuous outcome, retention by arm."""

    outcomes: tuple[OutcomePlan, ...]
    arms: tuple[ArmRetention, ...]
    alpha: float
    power: float
    conf_level: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary, numbers unrounded."""
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "trialkit_version": __version__,
            "alpha": self.alpha,
            "power": self.power,
            "conf_level": self.conf_level,
            "methods": {
                "icc_interval": "profile likelihood (REML null model)",
                "sd_interval": "chi-square on n - 1 df (ignores clustering)",
                "correlation_interval": "Fisher z on n - 3 (ignores clustering)",
                "las_upper": "LA ICC at its upper confidence limit",
                "assurance": "expected power over the LA ICC's normalised profile likelihood",
                "design": "two-sided test, equal allocation, pilot cluster sizes and CV "
                "(Eldridge correction), exact noncentral t power",
            },
            "outcomes": [o.to_dict() for o in self.outcomes],
            "arms": [a.to_dict() for a in self.arms],
            "notes": list(self.notes),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per outcome (the planning table, without the null-model details)."""
        rows = []
        for o in self.outcomes:
            d = o.to_dict()
            d.pop("null_model")
            rows.append(d)
        return pd.DataFrame(rows)

    def summary(self) -> str:
        pct = f"{100 * self.conf_level:g}%"
        lines = [
            f"Planning the definitive trial (two-sided alpha {self.alpha:g}, power {self.power:g}; "
            f"{pct} intervals)"
        ]
        for o in self.outcomes:
            lines.append(
                f"{o.outcome_id} ({o.level}, {o.timepoint}): ICC LA {o.icc_la:.3g} "
                f"[{o.icc_la_low:.3g}, {o.icc_la_high:.3g}]"
                + (
                    f", keyworker {o.icc_keyworker:.3g} [{o.icc_keyworker_low:.3g}, "
                    f"{o.icc_keyworker_high:.3g}]"
                    if o.icc_keyworker is not None
                    else ""
                )
                + f"; SD {o.sd:.4g} [{o.sd_low:.4g}, {o.sd_high:.4g}]"
            )
            if o.target_effect is None:
                lines.append("  no target_effect in the protocol: LAs needed not computed")
            else:
                lines.append(
                    f"  LAs for {o.target_effect:g} SD: {o.las_point} (point ICC), "
                    f"{o.las_upper} (upper limit), {o.las_assurance} (assurance)"
                )
        for a in self.arms:
            lines.append(
                f"{a.arm}: consent {a.families_consented}/{a.families_referred}, family "
                f"attrition {a.family_attrition:.3g} at {a.followup_timepoint}, keyworkers "
                f"left {a.keyworkers_left}/{a.keyworkers}"
            )
        lines.extend(self.notes)
        return "\n".join(lines)


# ----------------------------------------------------------------------------- pieces
def _sd_interval(y: np.ndarray, alpha: float) -> tuple[float, float, float]:
    n = y.size
    s = float(np.std(y, ddof=1))
    lo = s * math.sqrt((n - 1) / float(stats.chi2.isf(alpha / 2, n - 1)))
    hi = s * math.sqrt((n - 1) / float(stats.chi2.ppf(alpha / 2, n - 1)))
    return s, lo, hi


def _correlation(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[float, float, float, int]:
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 4 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return math.nan, math.nan, math.nan, n
    r = float(np.corrcoef(x[ok], y[ok])[0, 1])
    z = math.atanh(r)
    h = float(stats.norm.isf(alpha / 2)) / math.sqrt(n - 3)
    return r, math.tanh(z - h), math.tanh(z + h), n


def _design(
    level: str, m_kw: float | None, m_unit: float, cv: float, icc: float, icc_kw: float | None
) -> CRTDesign:
    if level == "family":
        kw = float(icc_kw or 0.0)
        kw = min(kw, max(0.0, 1.0 - icc - 1e-9))
        return CRTDesign(
            levels=3,
            subclusters_per_cluster=max(float(m_kw or 1.0), 1.0),
            units_per_subcluster=max(m_unit, 1.0),
            icc_cluster=icc,
            icc_subcluster=kw,
            cv=cv,
        )
    return CRTDesign(levels=2, units_per_cluster=max(m_unit, 1.0), icc_cluster=icc, cv=cv)


def _weights(profile_icc: np.ndarray, profile_dev: np.ndarray) -> np.ndarray:
    """Trapezoid weights of the normalised profile likelihood on its grid."""
    lik = np.exp(-0.5 * profile_dev)
    dx = np.diff(profile_icc)
    w = np.zeros_like(lik)
    w[:-1] += 0.5 * dx * lik[:-1]
    w[1:] += 0.5 * dx * lik[1:]
    return w / w.sum()


def assurance(
    designs: list[CRTDesign], weights: np.ndarray, clusters: int, *, effect: float, alpha: float
) -> float:
    """``Σ_i w_i power(K; design_i)``: expected power over a weighted set of designs.

    The designs differ only in their ICCs; ``SE_i(K) = SE_i(K₀)·√(K₀/K)`` (every
    variance term of the CRT formulas is divided by ``K``) and the power is the
    noncentral t's at ``λ_i = effect/SE_i(K)`` on the design's df.
    """
    k0 = max(clusters, 3)
    se1 = np.array([standard_error(d.with_clusters(k0)) for d in designs]) * math.sqrt(k0)
    return _assurance_from_se(se1, designs[0], weights, clusters, effect=effect, alpha=alpha)


def _assurance_from_se(
    se1: np.ndarray,
    design: CRTDesign,
    weights: np.ndarray,
    clusters: int,
    *,
    effect: float,
    alpha: float,
) -> float:
    lam = abs(effect) * math.sqrt(clusters) / se1
    df = design.with_clusters(clusters).df
    return float(np.sum(weights * power_from_noncentrality(lam, df, alpha=alpha)))


def _las_for_assurance(
    designs: list[CRTDesign], weights: np.ndarray, *, effect: float, alpha: float, power: float
) -> tuple[int, float]:
    se1 = np.array([standard_error(d.with_clusters(3)) for d in designs]) * math.sqrt(3)

    def a(k: int) -> float:
        return _assurance_from_se(se1, designs[0], weights, k, effect=effect, alpha=alpha)

    lo = 3
    if a(lo) >= power:
        return lo, a(lo)
    hi = lo
    while a(hi) < power:
        if hi > _MAX_LAS:  # pragma: no cover - power cannot be reached
            raise FeasibilityError.from_problem(
                path="target_effect",
                code="planning.assurance_unreachable",
                message=f"no number of LAs up to {_MAX_LAS} reaches assurance {power}.",
                hint="check the target effect.",
            )
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a(mid) >= power:
            hi = mid
        else:
            lo = mid
    return hi, a(hi)


def _plan_outcome(
    protocol: Protocol,
    trial_data: TrialData,
    outcome_id: str,
    *,
    alpha: float,
    power: float,
    conf_alpha: float,
    target_effect: float | None,
) -> OutcomePlan:
    oc = protocol.outcome(outcome_id)
    assert oc is not None
    af = analysis_frame(trial_data, protocol, outcome_id, require_baseline=False)
    frame = af.frame[np.isfinite(af.frame["y"].to_numpy(dtype=float))]
    three = oc.level.value == "family"
    clusters = ["la_id", "keyworker_id"] if three else ["la_id"]
    nm = fit_null_model(frame, outcome="y", clusters=clusters, alpha=conf_alpha)
    y = frame["y"].to_numpy(dtype=float)
    sd, sd_lo, sd_hi = _sd_interval(y, conf_alpha)
    base = frame["baseline"].to_numpy(dtype=float)
    r, r_lo, r_hi, n_pairs = _correlation(base, y, conf_alpha)
    sizes = frame.groupby("la_id", sort=True).size().to_numpy(dtype=float)
    m_unit_la = float(sizes.mean())
    cv = float(sizes.std(ddof=1) / sizes.mean()) if sizes.size > 1 else 0.0
    m_kw: float | None = None
    m_per_kw: float | None = None
    n_kw: int | None = None
    if three:
        n_kw = int(frame["keyworker_id"].nunique())
        m_kw = n_kw / sizes.size
        m_per_kw = len(frame) / n_kw
    icc_la = nm.icc["la_id"]
    icc_kw = nm.icc.get("keyworker_id") if three else None
    m_unit = m_per_kw if m_per_kw is not None else m_unit_la
    las: dict[str, int | None] = {"point": None, "upper": None, "assurance": None}
    pw: dict[str, float | None] = {"point": None, "upper": None, "assurance": None}
    if target_effect is not None:
        kw: dict[str, Any] = {"effect": target_effect, "power": power, "alpha": alpha}
        for key, rho in (("point", icc_la), ("upper", nm.icc_conf_high["la_id"])):
            res = required_clusters(_design(oc.level.value, m_kw, m_unit, cv, rho, icc_kw), **kw)
            las[key], pw[key] = res.clusters, res.power
        prof = nm.profiles["la_id"]
        grid = np.asarray(prof.icc)
        w = _weights(grid, np.asarray(prof.deviance))
        others = prof.other_icc if three else (None,) * grid.size
        designs = [
            _design(oc.level.value, m_kw, m_unit, cv, float(g), o)
            for g, o in zip(grid, others, strict=True)
        ]
        las["assurance"], pw["assurance"] = _las_for_assurance(
            designs, w, effect=target_effect, alpha=alpha, power=power
        )
    ivc = nm.variance_components
    return OutcomePlan(
        outcome_id=oc.id,
        label=oc.label,
        level=oc.level.value,
        timepoint=af.timepoint,
        role=oc.role,
        n_obs=nm.n_obs,
        n_las=nm.n_groups["la_id"],
        n_keyworkers=n_kw,
        mean_cluster_size=m_unit_la,
        cluster_size_cv=cv,
        mean_keyworkers_per_la=m_kw,
        mean_per_keyworker=m_per_kw,
        icc_la=icc_la,
        icc_la_low=nm.icc_conf_low["la_id"],
        icc_la_high=nm.icc_conf_high["la_id"],
        icc_keyworker=icc_kw,
        icc_keyworker_low=nm.icc_conf_low.get("keyworker_id") if three else None,
        icc_keyworker_high=nm.icc_conf_high.get("keyworker_id") if three else None,
        sd=sd,
        sd_low=sd_lo,
        sd_high=sd_hi,
        sd_null_model=math.sqrt(sum(ivc.values())),
        correlation=None if math.isnan(r) else r,
        correlation_low=None if math.isnan(r_lo) else r_lo,
        correlation_high=None if math.isnan(r_hi) else r_hi,
        n_pairs=n_pairs,
        target_effect=target_effect,
        las_point=las["point"],
        las_upper=las["upper"],
        las_assurance=las["assurance"],
        power_point=pw["point"],
        power_upper=pw["upper"],
        assurance_at_las=pw["assurance"],
        singular=nm.singular,
        null_model=nm,
    )


def _flow_n(flow: pd.DataFrame, arm: str, level: str, stage: str, detail: str | None) -> int:
    sel = (flow["arm"] == arm) & (flow["level"] == level) & (flow["stage"] == stage)
    if detail is not None:
        sel &= flow["detail"] == detail
    return int(flow.loc[sel, "n"].sum())


def _retention(protocol: Protocol, flow: pd.DataFrame) -> tuple[ArmRetention, ...]:
    fam = [o for o in protocol.outcomes if o.level.value == "family"]
    primary = [o for o in fam if o.role == "primary"] or fam
    tp = primary[0].analysis_timepoint if primary else protocol.trial.timepoints[-1]
    out = []
    for arm in sorted(set(flow["arm"]) & set(protocol.arm_ids), key=protocol.arm_ids.index):
        ref = _flow_n(flow, arm, "family", "randomised", None)
        con = _flow_n(flow, arm, "family", "consented", None)
        fol = _flow_n(flow, arm, "family", "measured", tp)
        kws = _flow_n(flow, arm, "keyworker", "randomised", None)
        left = _flow_n(flow, arm, "keyworker", "lost", "left post before trial end")
        out.append(
            ArmRetention(
                arm=arm,
                families_referred=ref,
                families_consented=con,
                consent_rate=con / ref if ref else math.nan,
                families_followed_up=fol,
                family_attrition=1.0 - fol / con if con else math.nan,
                followup_timepoint=tp,
                keyworkers=kws,
                keyworkers_left=left,
                keyworker_attrition=left / kws if kws else math.nan,
            )
        )
    return tuple(out)


def plan_definitive_trial(
    protocol: Protocol,
    trial_data: TrialData,
    allocation: Any = None,
    *,
    alpha: float | None = None,
    power: float = 0.9,
    conf_level: float = 0.95,
    target_effects: Mapping[str, float] | None = None,
) -> DefinitiveTrialPlan:
    """The planning table for a definitive trial, from the pilot's data.

    Parameters
    ----------
    protocol : Protocol
    trial_data : TrialData
        Validated with the allocation (:func:`trialkit.data.validate`); its flow gives
        consent and attrition, its analysis frames the outcomes.
    allocation : AllocationRecord, optional
        Accepted for the same call as ``assess_feasibility``; the arms come from
        ``trial_data``.
    alpha : float, optional
        Two-sided level of the definitive trial's test (default the protocol's
        ``analysis.alpha``).
    power : float
        Target power (and assurance) of the definitive trial.
    conf_level : float
        Level of the intervals of the pilot's estimates.
    target_effects : mapping, optional
        Outcome id → standardised target effect, overriding the protocol's
        ``target_effect`` of that outcome.

    Returns
    -------
    DefinitiveTrialPlan

    Raises
    ------
    FeasibilityError
        A target effect that is not a positive number or names no continuous outcome,
        ``power``/``conf_level``/``alpha`` out of range (exit code 1).
    """
    del allocation  # the arms are in trial_data
    a = protocol.analysis.alpha if alpha is None else alpha
    for name, v, lo, hi in (
        ("alpha", a, 0.0, 0.5),
        ("power", power, 0.0, 1.0),
        ("conf_level", conf_level, 0.0, 1.0),
    ):
        if not isinstance(v, int | float) or not lo < v < hi:
            raise FeasibilityError.from_problem(
                path=name,
                code="planning.setting",
                message=f"`{name}` must be in ({lo:g}, {hi:g}); got {v!r}.",
                hint="e.g. alpha 0.05, power 0.9, conf_level 0.95.",
            )
    continuous = [o for o in protocol.outcomes if o.type == "continuous"]
    targets = dict(target_effects or {})
    for oid, eff in targets.items():
        if oid not in {o.id for o in continuous}:
            raise FeasibilityError.from_problem(
                path=f"target_effects.{oid}",
                code="planning.unknown_outcome",
                message=f"{oid!r} is not a continuous outcome of the protocol.",
                hint="continuous outcomes: " + ", ".join(o.id for o in continuous),
            )
        if not isinstance(eff, int | float) or not math.isfinite(eff) or eff <= 0:
            raise FeasibilityError.from_problem(
                path=f"target_effects.{oid}",
                code="planning.target_effect",
                message=f"the target effect must be a positive number (SD units); got {eff!r}.",
                hint="e.g. 0.3.",
            )
    plans = []
    notes: list[str] = []
    for oc in continuous:
        te = targets.get(oc.id, oc.target_effect)
        try:
            plans.append(
                _plan_outcome(
                    protocol,
                    trial_data,
                    oc.id,
                    alpha=float(a),
                    power=float(power),
                    conf_alpha=1.0 - float(conf_level),
                    target_effect=None if te is None else float(te),
                )
            )
        except ModelSpecError as exc:
            notes.append(f"{oc.id}: not planned ({exc.problems[0].message})")
    if any(p.singular for p in plans):
        notes.append(
            "a variance component estimated at zero (singular null model) gives an ICC of 0 "
            "with lower limit 0; plan on the upper limit or the assurance"
        )
    return DefinitiveTrialPlan(
        outcomes=tuple(plans),
        arms=_retention(protocol, trial_data.flow),
        alpha=float(a),
        power=float(power),
        conf_level=float(conf_level),
        notes=tuple(notes),
    )
