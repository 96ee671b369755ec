"""Run a protocol's statistical analysis plan on validated trial data.

:func:`analyse_trial` analyses every primary and secondary outcome with the
declared model and denominator-df method, runs the declared sensitivity analyses
(cluster-level, randomisation test over the kept allocation space, CR2,
Satterthwaite, GEE), reports Hedges' g and ICCs, adjusts the secondary outcomes
for multiplicity, assesses fidelity and estimates the CACE when delivery data
exist, and works out what a trial of this size could detect (MDES).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from trialkit._io import provenance
from trialkit.analyse.describe import baseline_balance, descriptives, exclusion_counts, la_counts
from trialkit.analyse.missing_data import analyse_missing_data, missing_data_outcomes
from trialkit.analyse.trial_analysis import TrialAnalysis
from trialkit.errors import TrialkitError
from trialkit.models.coding import code_categorical
from trialkit.models.results import FitResult, GeeResult, GlmmResult, LmmResult
from trialkit.protocol.model import TIDIER_LABELS, Outcome, Protocol
from trialkit.store import AllocationRecord, StageCheck

__all__ = ["RESULT_COLUMNS", "adjust_pvalues", "analyse_trial"]

#: Smallest LA-level ICC used for the MDES statement (pilot ICCs are imprecise).
MIN_PLANNING_ICC = 0.05

RESULT_COLUMNS = [
    "outcome_id",
    "label",
    "role",
    "level",
    "type",
    "better",
    "analysis",
    "method",
    "family",
    "scale",
    "estimate",
    "std_error",
    "df",
    "df_method",
    "distribution",
    "statistic",
    "p_value",
    "p_adjusted",
    "conf_low",
    "conf_high",
    "n_obs",
    "n_la",
    "n_keyworker",
    "n_excluded",
    "icc_la",
    "icc_la_low",
    "icc_la_high",
    "icc_keyworker",
    "icc_keyworker_low",
    "icc_keyworker_high",
    "g",
    "g_low",
    "g_high",
    "odds_ratio",
    "odds_ratio_low",
    "odds_ratio_high",
    "risk_difference",
    "risk_difference_low",
    "risk_difference_high",
    "singular",
    "converged",
    "formula",
    "note",
    "fallback",
]


#: trialkit's multiplicity names and statsmodels' ``multipletests`` methods.
_MULTIPLETESTS = {
    "none": "",
    "bonferroni": "bonferroni",
    "holm": "holm",
    "hochberg": "simes-hochberg",
}


def adjust_pvalues(p: np.ndarray, method: str = "holm") -> np.ndarray:
    """Family-wise adjusted p-values (Holm, Hochberg, Bonferroni or none).

    Notes
    -----
    Holm (1979): sort :math:`p_{(1)} \\le \\dots \\le p_{(m)}`, then
    :math:`\\tilde p_{(i)} = \\max_{j \\le i} \\min\\{1, (m-j+1) p_{(j)}\\}`.
    Hochberg (1988) is the step-up analogue with a running minimum from the top.
    NaN p-values are left NaN and do not count towards *m*.  The adjustment itself
    is ``statsmodels.stats.multitest.multipletests``.

    References
    ----------
    Holm S. A simple sequentially rejective multiple test procedure. Scand J Stat
    1979;6:65–70.  Hochberg Y. A sharper Bonferroni procedure for multiple tests of
    significance. Biometrika 1988;75:800–802.
    """
    p = np.asarray(p, dtype=float)
    if method not in _MULTIPLETESTS:
        raise ValueError(f"unknown multiplicity method {method!r}")
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    if len(q) == 0:
        return out
    if method == "none":
        adj = q.copy()
    else:
        from statsmodels.stats.multitest import multipletests

        adj = multipletests(q, method=_MULTIPLETESTS[method])[1]
    out[ok] = adj
    return out


def _term_row(res: FitResult, **base: Any) -> dict[str, Any]:
    t = res.treatment
    icc = dict(res.icc)
    ivals = dict(res.icc_intervals) if isinstance(res, LmmResult) else {}
    row = dict(base)
    row.update(
        method=res.method,
        family=res.family,
        estimate=t.estimate,
        std_error=t.std_error,
        df=t.df,
        df_method=t.df_method,
        distribution=t.distribution,
        statistic=t.statistic,
        p_value=t.p_value,
        conf_low=t.conf_low,
        conf_high=t.conf_high,
        n_obs=res.n_obs,
        n_la=dict(res.n_clusters).get("la_id", np.nan),
        n_keyworker=dict(res.n_clusters).get("keyworker_id", np.nan),
        n_excluded=res.n_excluded,
        icc_la=icc.get("la_id", np.nan),
        icc_keyworker=icc.get("keyworker_id", np.nan),
        icc_la_low=ivals.get("la_id", {}).get("conf_low", np.nan),
        icc_la_high=ivals.get("la_id", {}).get("conf_high", np.nan),
        icc_keyworker_low=ivals.get("keyworker_id", {}).get("conf_low", np.nan),
        icc_keyworker_high=ivals.get("keyworker_id", {}).get("conf_high", np.nan),
        singular=bool(res.singular),
        converged=bool(res.converged),
        formula=res.formula,
    )
    es = res.effect_sizes if isinstance(res, LmmResult) else None
    if isinstance(es, Mapping):
        u = es.get("unconditional", {})
        row.update(
            g=u.get("g_total"), g_low=u.get("g_total_conf_low"), g_high=u.get("g_total_conf_high")
        )
    effects = res.effects if isinstance(res, GlmmResult | GeeResult) else None
    if effects is not None:
        row.update(
            odds_ratio=effects.odds_ratio,
            odds_ratio_low=effects.odds_ratio_conf_low,
            odds_ratio_high=effects.odds_ratio_conf_high,
            risk_difference=effects.risk_difference,
            risk_difference_low=effects.risk_difference_conf_low,
            risk_difference_high=effects.risk_difference_conf_high,
        )
    if res.warnings:
        row["note"] = "; ".join(res.warnings)
    return row


def _fit_quiet(collected: list[str], **kw: Any) -> Any:
    from trialkit.models.fit import fit

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(**kw)
    for w in caught:
        msg = f"{kw.get('outcome_id', '')}{w.category.__name__}: {w.message}"
        if msg not in collected:
            collected.append(msg)
    return res


def _complete(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return frame.dropna(subset=cols).reset_index(drop=True)


def _analyse_outcome(
    oc: Outcome,
    frame: pd.DataFrame,
    protocol: Protocol,
    allocation: AllocationRecord | None,
    seed: int,
    notes: list[str],
    warn: list[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    plan = protocol.analysis
    binary = oc.type == "binary"
    family: Literal["gaussian", "binomial"] = "binomial" if binary else "gaussian"
    covariates: list[str] = []
    if plan.adjust_for_baseline and oc.baseline_timepoint and frame["baseline"].notna().any():
        covariates.append("baseline")
    covariates += [c for c in plan.covariates if c in frame.columns and c not in covariates]
    clusters = ["la_id", "keyworker_id"] if oc.level.value == "family" else ["la_id"]
    base = {
        "outcome_id": oc.id,
        "label": oc.label,
        "role": oc.role,
        "level": oc.level.value,
        "type": oc.type,
        "better": oc.better,
        "scale": "log odds ratio" if binary else "mean difference",
    }
    common = {
        "data": frame,
        "outcome": "y",
        "treatment": "treated",
        "covariates": covariates,
        "alpha": plan.alpha,
    }
    rows: list[dict[str, Any]] = []
    fixed: list[dict[str, Any]] = []
    # ---- primary
    primary = None
    fallback = ""
    try:
        if binary:
            primary = _fit_quiet(
                warn,
                **common,
                clusters=clusters,
                family=family,
                method="lmm",
                df_method=plan.binary_df_method,
            )
            if not primary.converged:
                raise RuntimeError("the GLMM did not converge")
            primary_note = f"random-intercept logistic GLMM (Laplace), {plan.binary_df_method} df"
        else:
            primary = _fit_quiet(
                warn,
                **common,
                clusters=clusters if plan.model in ("lmm", "gee") else ["la_id"],
                family=family,
                method=plan.model,
                **({"df_method": plan.df_method} if plan.model == "lmm" else {}),
            )
            primary_note = ""
    except (TrialkitError, RuntimeError, np.linalg.LinAlgError) as err:
        if not binary:
            raise
        notes.append(
            f"{oc.id}: the GLMM failed ({err}); the primary analysis is the cluster-level analysis"
        )
        primary = _fit_quiet(
            warn, **common, clusters=["la_id"], family=family, method="cluster-level"
        )
        primary_note = f"GLMM failed ({err}); cluster-level analysis used"
        base = {**base, "scale": "risk difference"}
        fallback = f"cluster-level analysis instead of the protocol's GLMM ({err})"
    row = _term_row(primary, **base, analysis="primary")
    # a visible flag on the row whenever the protocol's primary analysis was replaced
    row["fallback"] = fallback
    if primary_note:
        row["note"] = "; ".join(x for x in (primary_note, row.get("note")) if x)
    rows.append(row)
    for t in primary.fixed_effects:
        fixed.append({"outcome_id": oc.id, "analysis": "primary", **t.to_dict()})
    # ---- sensitivity analyses
    for sens in plan.sensitivity:
        try:
            if sens == "cluster-level":
                r = _fit_quiet(
                    warn, **common, clusters=["la_id"], family=family, method="cluster-level"
                )
                scale = "risk difference" if binary else "mean difference"
                rows.append(_term_row(r, **{**base, "scale": scale}, analysis="cluster-level"))
            elif sens == "cr2":
                r = _fit_quiet(warn, **common, clusters=["la_id"], method="ols-cr2")
                scale = "risk difference (linear probability)" if binary else "mean difference"
                rows.append(_term_row(r, **{**base, "scale": scale}, analysis="cr2"))
            elif sens == "satterthwaite":
                if binary:
                    continue
                r = _fit_quiet(
                    warn, **common, clusters=clusters, method="lmm", df_method="satterthwaite"
                )
                rows.append(_term_row(r, **base, analysis="satterthwaite"))
            elif sens == "gee":
                r = _fit_quiet(warn, **common, clusters=["la_id"], family=family, method="gee")
                rows.append(_term_row(r, **base, analysis="gee"))
            elif sens == "randomisation-test":
                if allocation is None:
                    notes.append(f"{oc.id}: randomisation test not run (no allocation record)")
                    continue
                from trialkit.randomise import randtest

                cc = _complete(frame, ["y", *covariates])
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    rt = randtest(
                        cc,
                        allocation,
                        outcome="y",
                        covariates=covariates,
                        cluster_column="la_id",
                        family=family,
                        conf_level=1 - plan.alpha,
                        seed=seed,
                    )
                warn += [f"{oc.id} randomisation test: {w.message}" for w in caught]
                rows.append(
                    {
                        **base,
                        "scale": "log odds ratio" if binary else "mean difference",
                        "analysis": "randomisation-test",
                        "method": "randomisation test",
                        "family": family,
                        "estimate": rt.estimate if rt.estimate is not None else np.nan,
                        "statistic": rt.statistic,
                        "p_value": rt.p_value,
                        "conf_low": rt.conf_low if rt.conf_low is not None else np.nan,
                        "conf_high": rt.conf_high if rt.conf_high is not None else np.nan,
                        "df_method": "randomisation",
                        "distribution": f"{rt.n_allocations} allocations ({rt.space})",
                        "n_obs": rt.n_obs,
                        "n_la": rt.n_clusters,
                        "n_excluded": len(frame) - len(cc),
                        "note": "; ".join(
                            x
                            for x in (
                                "estimate and interval by test inversion"
                                if rt.estimate is not None
                                else "p-value only (no test-inversion interval for binary "
                                "outcomes)",
                                rt.left_out_note(),
                            )
                            if x
                        ),
                    }
                )
            elif sens == "complete-case":
                notes.append(
                    f"{oc.id}: the primary analysis already uses complete cases; "
                    "no separate complete-case analysis"
                )
        except TrialkitError as err:
            notes.append(f"{oc.id}: sensitivity analysis {sens} failed: {err}")
    return rows, fixed, covariates


def _subgroups(
    protocol: Protocol,
    frames: Mapping[str, pd.DataFrame],
    formulas: Mapping[str, Mapping[str, Any]],
    notes: list[str],
    warn: list[str],
) -> pd.DataFrame:
    """Treatment × subgroup interactions for the primary outcomes.

    A numeric subgroup variable enters as is (effect modification per unit); a
    two-level one as the indicator of its non-reference level
    (:mod:`trialkit.models.coding`).  The interaction
    is estimated in the primary model with the primary df method.
    """
    plan = protocol.analysis
    rows: list[dict[str, Any]] = []
    for sg in plan.subgroups:
        for oc in protocol.outcomes:
            if oc.role != "primary" or oc.type != "continuous" or oc.id not in frames:
                continue
            fr = frames[oc.id]
            if sg.variable not in fr.columns:
                notes.append(
                    f"subgroup {sg.id}: variable {sg.variable!r} is not in the {oc.id} "
                    "analysis frame; not analysed"
                )
                continue
            x = fr[sg.variable]
            if pd.api.types.is_numeric_dtype(x) and x.dropna().nunique() > 2:
                z = pd.to_numeric(x, errors="coerce").astype(float)
                contrast = f"per unit of {sg.variable}"
            else:
                indicator, coding = code_categorical(x, sg.variable)
                if len(coding.levels) != 2:
                    notes.append(
                        f"subgroup {sg.id}: {sg.variable!r} must be numeric or have two "
                        f"levels; got {len(coding.levels)} levels; not analysed"
                    )
                    continue
                z = pd.Series(np.where(x.isna(), np.nan, indicator[:, 0]), index=fr.index)
                contrast = f"{coding.levels[1]} vs {coding.reference}"
            d = fr.copy()
            d["subgroup_level"] = z
            d["treated_x_subgroup"] = d["treated"] * z
            covs = [c for c in formulas[oc.id]["covariates"] if c != sg.variable]
            clusters = ["la_id", "keyworker_id"] if oc.level.value == "family" else ["la_id"]
            try:
                res = _fit_quiet(
                    warn,
                    data=d,
                    outcome="y",
                    treatment="treated",
                    covariates=[*covs, "subgroup_level", "treated_x_subgroup"],
                    clusters=clusters,
                    method="lmm",
                    df_method=plan.df_method,
                    alpha=plan.alpha,
                )
            except TrialkitError as err:
                notes.append(f"subgroup {sg.id} for {oc.id} failed: {err}")
                continue
            term = next((t for t in res.fixed_effects if t.term == "treated_x_subgroup"), None)
            if term is None:
                continue
            rows.append(
                {
                    "subgroup_id": sg.id,
                    "variable": sg.variable,
                    "description": sg.description,
                    "outcome_id": oc.id,
                    "contrast": contrast,
                    "estimate": term.estimate,
                    "std_error": term.std_error,
                    "df": term.df,
                    "df_method": term.df_method,
                    "p_value": term.p_value,
                    "conf_low": term.conf_low,
                    "conf_high": term.conf_high,
                    "n_obs": res.n_obs,
                }
            )
    return pd.DataFrame(rows)


def _mdes(
    protocol: Protocol,
    results: pd.DataFrame,
    frames: Mapping[str, pd.DataFrame],
    notes: list[str],
) -> pd.DataFrame:
    from trialkit.power import CRTDesign, analytic_mdes

    n_la_cov = 0
    for name in protocol.analysis.covariates:
        cov = protocol.data.covariate(name)
        if cov is not None and cov.level.value == "la":
            n_la_cov += max(1, len(cov.levels) - 1) if cov.type == "categorical" else 1
    rows: list[dict[str, Any]] = []
    for oc in protocol.outcomes:
        fr = frames.get(oc.id)
        prim = results[(results["outcome_id"] == oc.id) & (results["analysis"] == "primary")]
        if fr is None or not len(prim) or oc.type != "continuous":
            continue
        r = prim.iloc[0]
        n_la = int(fr["la_id"].nunique())
        observed = float(r["icc_la"]) if pd.notna(r["icc_la"]) else float("nan")
        # a pilot's ICC estimate is very imprecise; never plan with less than 0.05
        icc_la = observed if observed >= MIN_PLANNING_ICC else MIN_PLANNING_ICC
        icc_source = (
            "observed"
            if observed >= MIN_PLANNING_ICC
            else (f"planning floor {MIN_PLANNING_ICC} (observed {observed:.3g})")
        )
        try:
            if oc.level.value == "family":
                kw_per_la = fr.groupby("la_id")["keyworker_id"].nunique().mean()
                fam_per_kw = fr.groupby("keyworker_id").size().mean()
                icc_kw = float(r["icc_keyworker"]) if pd.notna(r["icc_keyworker"]) else 0.0
                design = CRTDesign(
                    levels=3,
                    clusters=n_la,
                    subclusters_per_cluster=float(kw_per_la),
                    units_per_subcluster=float(fam_per_kw),
                    icc_cluster=icc_la,
                    icc_subcluster=icc_kw,
                    cluster_covariates=n_la_cov,
                )
            else:
                design = CRTDesign(
                    levels=2,
                    clusters=n_la,
                    units_per_cluster=float(fr.groupby("la_id").size().mean()),
                    icc_cluster=icc_la,
                    cluster_covariates=n_la_cov,
                )
            res = analytic_mdes(design, power=0.8, alpha=protocol.analysis.alpha)
        except TrialkitError as exc:
            notes.append(f"MDES not computed for {oc.id}: {exc}")
            continue
        rows.append(
            {
                "outcome_id": oc.id,
                "role": oc.role,
                "n_la": n_la,
                "n_obs": len(fr),
                "icc_la": icc_la,
                "icc_source": icc_source,
                "power": 0.8,
                "alpha": protocol.analysis.alpha,
                "mdes": res.mdes,
                "mdes_conf_low": res.conf_low,
                "mdes_conf_high": res.conf_high,
                "df": res.df,
                "cluster_covariates": n_la_cov,
            }
        )
    return pd.DataFrame(rows)


def _logic_model(protocol: Protocol, ind: pd.DataFrame | None, arm: str) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for node in protocol.logic_model.nodes:
        base = {
            "node_id": node.id,
            "kind": node.kind if isinstance(node.kind, str) else str(node.kind),
            "node_label": node.label,
            "leads_to": " ".join(node.leads_to),
            "measured_by": " ".join(node.measured_by),
        }
        if not node.indicators:
            rows.append({**base, "indicator_id": "", "indicator_label": ""})
        for i in node.indicators:
            r = {
                **base,
                "indicator_id": i.id,
                "indicator_label": i.label,
                "component": i.component,
                "target": i.target,
                "unit": i.unit.value if i.unit is not None else "",
            }
            if ind is not None and len(ind):
                sub = ind[(ind["indicator_id"] == i.id) & (ind["arm"] == arm)]
                a = pd.to_numeric(sub["adherence"], errors="coerce").dropna()
                r.update(
                    achieved_mean=float(a.mean()) if len(a) else np.nan,
                    achieved_min=float(a.min()) if len(a) else np.nan,
                    achieved_max=float(a.max()) if len(a) else np.nan,
                    n_la=len(a),
                )
            rows.append(r)
    return pd.DataFrame(rows)


def _tidier(protocol: Protocol, actual: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for arm_id, arm in protocol.arms.items():
        for item, value in arm.tidier.items():
            text = value.text
            if value.quantities:
                text = (text + " " if text else "") + "; ".join(
                    f"{q.label}: {q.value:g} {q.unit.value}"
                    + (f" per {q.per}" if q.per else "")
                    + (" [illustrative]" if q.illustrative else "")
                    for q in value.quantities
                )
            if item in ("how_well_actual", "modifications") and actual.get(arm_id, {}).get(item):
                text = actual[arm_id][item]
            rows.append(
                {
                    "arm": arm_id,
                    "arm_label": arm.label,
                    "item": item,
                    "item_label": TIDIER_LABELS.get(item, item.replace("_", " ")),
                    "text": text,
                }
            )
    return pd.DataFrame(rows, columns=["arm", "arm_label", "item", "item_label", "text"])


def analyse_trial(
    protocol: Protocol,
    trial_data: Any,
    allocation: AllocationRecord | None = None,
    *,
    fidelity: Any = None,
    seed: int = 0,
    inputs: Mapping[str, str | os.PathLike[str]] | None = None,
    seeds: Mapping[str, int] | None = None,
    custody: Mapping[str, StageCheck] | None = None,
) -> TrialAnalysis:
    """Run the protocol's analysis plan.

    Parameters
    ----------
    protocol : Protocol
    trial_data : TrialData
        From :func:`trialkit.data.validate` (must have no errors).
    allocation : AllocationRecord, optional
        The allocation as read (and verified) by :func:`trialkit.store.read_allocation`
        with ``with_space=True``; needed for the randomisation test.  Its check
        (verified, or UNVERIFIED when read with ``allow_unverified``) is recorded in
        the provenance (``custody["allocation"]``).
    fidelity : FidelityReport, optional
        Assessed here from the delivery table when omitted and delivery data exist.
    seed : int
        Seed for Monte Carlo randomisation tests (exact tests ignore it).
    inputs : mapping role -> path, optional
        Files/directories hashed into the provenance record.
    seeds : mapping, optional
        Other seeds to record (randomisation, simulation).
    custody : mapping stage -> StageCheck, optional
        Checks of the other stage directories read (e.g. ``data``), recorded in the
        provenance beside the allocation's.

    Returns
    -------
    TrialAnalysis

    Notes
    -----
    Continuous outcomes: linear mixed model fitted by REML with random intercepts
    for LA (and keyworker within LA for family outcomes), adjusted for the baseline
    score and the plan's covariates; Kenward–Roger denominator df (Kenward & Roger
    1997).  Binary outcomes: random-intercept logistic GLMM with between-within df;
    if it fails, the cluster-level analysis (Hayes & Moulton 2017) is primary and the
    report says so.  Hedges' g uses the unconditional total variance (Hedges 2007).
    Secondary outcomes are adjusted for multiplicity (Holm 1979 by default).

    References
    ----------
    Kenward MG, Roger JH. Small sample inference for fixed effects from restricted
    maximum likelihood. Biometrics 1997;53:983–997.
    Hedges LV. Effect sizes in cluster-randomized designs. J Educ Behav Stat
    2007;32:341–370.
    Hayes RJ, Moulton LH. Cluster Randomised Trials, 2nd ed. CRC Press, 2017.
    """
    from trialkit.data import analysis_frame

    trial_data.raise_for_errors()
    if allocation is not None and not isinstance(allocation, AllocationRecord):
        raise TypeError(
            "allocation must be an AllocationRecord read by trialkit.store.read_allocation "
            f"(with_space=True); got {type(allocation).__name__}"
        )
    alloc = allocation
    notes: list[str] = []
    warn: list[str] = []
    rows: list[dict[str, Any]] = []
    fixed: list[dict[str, Any]] = []
    desc: list[dict[str, Any]] = []
    frames: dict[str, pd.DataFrame] = {}
    exclusions: list[pd.DataFrame] = []
    formulas: dict[str, dict[str, Any]] = {}
    mi_ids = {o.id for o in missing_data_outcomes(protocol)}
    mi_tables: dict[str, list[pd.DataFrame]] = {"imputation": [], "tipping_point": []}
    for oc in protocol.outcomes:
        af = analysis_frame(trial_data, protocol, oc.id)
        frame = af.frame
        frames[oc.id] = frame
        exclusions.append(af.exclusions)
        desc += descriptives(frame, oc.id, oc.type, af.timepoint, oc.baseline_timepoint)
        r, f, covs = _analyse_outcome(oc, frame, protocol, alloc, seed, notes, warn)
        if oc.id in mi_ids:  # declared sensitivity analysis: multilevel multiple imputation
            mi = analyse_missing_data(
                oc,
                trial_data,
                protocol,
                covariates=covs,
                clusters=["la_id", "keyworker_id"] if oc.level.value == "family" else ["la_id"],
                notes=notes,
            )
            if mi is not None:
                keep = ("outcome_id", "label", "role", "level", "type", "better", "scale")
                r.append(
                    _term_row(mi.result, **{k: r[0][k] for k in keep}, analysis="multilevel-mi")
                )
                mi_tables["imputation"].append(pd.DataFrame([mi.summary]))
                if mi.tipping is not None:
                    mi_tables["tipping_point"].append(
                        mi.tipping.to_frame().assign(outcome_id=oc.id)
                    )
        rows += r
        fixed += f
        formulas[oc.id] = {
            "formula": r[0].get("formula", ""),
            "covariates": covs,
            "timepoint": af.timepoint,
            "n_candidates": af.n_candidates,
        }
    results = pd.DataFrame(rows)
    for c in RESULT_COLUMNS:
        if c not in results.columns:
            results[c] = np.nan
    results = results[RESULT_COLUMNS]
    # multiplicity over the secondary outcomes' primary analyses
    mask = (results["analysis"] == "primary") & (results["role"] == "secondary")
    results["p_adjusted"] = np.nan
    results.loc[mask, "p_adjusted"] = adjust_pvalues(
        results.loc[mask, "p_value"].to_numpy(dtype=float), protocol.analysis.multiplicity
    )
    for c in (
        "note",
        "fallback",
        "formula",
        "distribution",
        "df_method",
        "method",
        "family",
        "scale",
    ):
        results[c] = results[c].where(results[c].notna(), "").astype(str)

    arms = {str(k): str(v) for k, v in trial_data.arms.items()}
    tables: dict[str, pd.DataFrame] = {
        "results": results,
        "fixed_effects": pd.DataFrame(fixed),
        "descriptives": pd.DataFrame(desc),
        "baseline_balance": baseline_balance(protocol, dict(trial_data.tables), arms, frames),
        "flow": trial_data.flow.astype({"n": "int64"}).reset_index(drop=True),
        # validation already records each outcome's analysis exclusions; an analysis
        # frame repeats them, so every (stage, entity, reason) is counted once
        "exclusions": exclusion_counts(
            pd.concat([trial_data.exclusions, *exclusions], ignore_index=True).drop_duplicates(
                ["stage", "entity", "entity_id", "reason"]
            )
        ),
        "la_counts": la_counts(dict(trial_data.tables), arms, trial_data.trial_end),
    }
    for c in ("arm", "level", "stage", "detail"):
        if c in tables["flow"].columns:
            tables["flow"][c] = tables["flow"][c].astype(str)

    # ---- fidelity and CACE
    actual: dict[str, dict[str, str]] = {}
    fidelity_status = "not assessed: no delivery data"
    delivery = trial_data.tables.get("delivery")
    if fidelity is None and delivery is not None and len(delivery):
        try:
            from trialkit.fidelity import assess_fidelity

            t = trial_data.tables
            alloc_frame = pd.DataFrame({"cluster": list(arms), "arm": list(arms.values())})
            fidelity = assess_fidelity(
                protocol,
                t["delivery"],
                t["keyworkers"],
                t["families"],
                alloc_frame,
                clusters=t.get("clusters"),
            )
        except ImportError:
            fidelity_status = "not assessed: trialkit.fidelity is not available"
        except TrialkitError as err:
            fidelity_status = f"not assessed: {err}"
    ind = None
    if fidelity is not None:
        fidelity_status = "assessed"
        tables["fidelity_indicators"] = fidelity.indicators.reset_index(drop=True)
        tables["fidelity_components"] = fidelity.components.reset_index(drop=True)
        tables["fidelity_overall"] = fidelity.overall.reset_index(drop=True)
        tables["contamination"] = fidelity.contamination.reset_index(drop=True)
        ind = fidelity.indicators
        try:
            from trialkit.fidelity import tidier_texts

            actual = tidier_texts(fidelity, protocol)
        except ImportError:
            pass
        cace_rows: list[pd.DataFrame] = []
        if protocol.analysis.compliance is not None:
            from trialkit.fidelity import estimate_cace

            for oc in protocol.outcomes:
                if oc.role != "primary" or oc.type not in ("continuous", "binary"):
                    continue
                fr = frames[oc.id]
                covs = formulas[oc.id]["covariates"]
                try:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        cres = estimate_cace(
                            _complete(fr, ["y", *covs]),
                            fidelity=fidelity,
                            protocol=protocol,
                            outcome="y",
                            outcome_type=oc.type,
                            covariates=covs,
                            outcome_id=oc.id,
                        )
                    warn += [f"{oc.id} CACE: {w.message}" for w in caught]
                except TrialkitError as err:
                    notes.append(f"{oc.id}: CACE not estimated: {err}")
                    continue
                cf = cres.to_frame()
                cf.insert(0, "outcome_id", oc.id)
                cf["scale"] = "risk difference" if oc.type == "binary" else "outcome units"
                cf["measure"] = cres.measure
                cf["threshold"] = cres.threshold
                cf["complier_share_intervention"] = float(
                    dict(cres.complier_share).get(protocol.intervention_arm, np.nan)
                )
                cace_rows.append(cf)
        if cace_rows:
            tables["cace"] = pd.concat(cace_rows, ignore_index=True)
    tables["tidier"] = _tidier(protocol, actual)
    tables["logic_model"] = _logic_model(protocol, ind, protocol.intervention_arm)
    try:
        tables["mdes"] = _mdes(protocol, results, frames, notes)
    except ImportError:
        notes.append("MDES not computed: trialkit.power is not available")
    if protocol.analysis.subgroups:
        tables["subgroups"] = _subgroups(protocol, frames, formulas, notes, warn)
    for name, parts in mi_tables.items():
        if parts:
            tables[name] = pd.concat(parts, ignore_index=True)
    for name, frame in tables.items():
        tables[name] = _arrow_safe(frame)

    methods = {
        "outcomes": formulas,
        "plan": protocol.analysis.model_dump(mode="json"),
        "fidelity": fidelity_status,
        "notes": notes,
        "hedges_g": "unconditional total variance (Hedges 2007), small-sample corrected",
        "multiplicity": protocol.analysis.multiplicity,
    }
    chain: dict[str, Any] = {k: v.to_dict() for k, v in (custody or {}).items()}
    if allocation is not None and allocation.check is not None:
        chain["allocation"] = allocation.check.to_dict()
    prov = provenance(
        inputs=inputs,
        seed=seed,
        extra={"seeds": dict(seeds or {}), "fidelity": fidelity_status, "custody": chain},
    )
    return TrialAnalysis(
        tables=tables,
        protocol=protocol.model_dump(mode="json"),
        methods=methods,
        provenance=prov,
        warnings=tuple(warn),
    )


def _arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns with mixed content become strings so Parquet can store them."""
    out = frame.reset_index(drop=True).copy()
    for c in out.columns:
        if out[c].dtype == object:
            vals = out[c].dropna()
            if len(vals) and not all(isinstance(v, str) for v in vals):
                if all(isinstance(v, (bool, np.bool_)) for v in vals):
                    continue
                if all(isinstance(v, (int, float, np.number)) for v in vals):
                    out[c] = pd.to_numeric(out[c], errors="coerce")
                    continue
                out[c] = out[c].map(lambda v: None if v is None else str(v))
    return out
