"""Run a protocol's statistical analysis plan on validated trial data.

:func:`analyse_trial` analyses every primary and secondary outcome with the
declared model and denominator-df method, runs the declared sensitivity analyses
(cluster-level, randomisation test over the kept allocation space, CR2,
Satterthwaite, GEE), reports Hedges' g and ICCs, adjusts the secondary outcomes
for multiplicity, assesses fidelity and estimates the CACE when delivery data
exist, assesses the protocol's progression criteria (:mod:`trialkit.feasibility`)
and works out what a trial of this size could detect (MDES).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from trialkit._io import provenance
from trialkit.analyse.accounting import (
    analysed_flow,
    complete_case_exclusions,
    entity_arms,
    exclusion_counts_by_arm,
    missing_outcomes,
)
from trialkit.analyse.describe import baseline_balance, descriptives, la_counts
from trialkit.analyse.missing_data import analyse_missing_data, missing_data_outcomes
from trialkit.analyse.trial_analysis import TrialAnalysis
from trialkit.errors import TrialkitError
from trialkit.models.coding import code_categorical
from trialkit.models.effect_sizes import standardised_effect, variance_explained
from trialkit.models.estimability import Estimability, check_design, check_term
from trialkit.models.glmm import null_glmm_variance
from trialkit.models.results import FitResult, GeeResult, GlmmResult, LmmResult
from trialkit.protocol.model import TIDIER_LABELS, Outcome, Protocol
from trialkit.store import AllocationRecord, StageCheck

__all__ = ["RESULT_COLUMNS", "adjust_pvalues", "analyse_trial"]

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
    "icc_la_unconditional",
    "icc_keyworker_unconditional",
    "icc_scale",
    "r2_la",
    "r2_keyworker",
    "r2_residual",
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
    "status",
    "reason",
]

#: ``status`` of a results row: every declared analysis keeps its row.
ESTIMATED, NOT_ESTIMABLE, NOT_RUN = "estimated", "not estimable", "not run"

#: Numbers of a results row that are blanked when the effect is not estimable.
_EFFECT_NUMBERS = (
    "estimate",
    "std_error",
    "statistic",
    "p_value",
    "conf_low",
    "conf_high",
    "g",
    "g_low",
    "g_high",
    "odds_ratio",
    "odds_ratio_low",
    "odds_ratio_high",
    "risk_difference",
    "risk_difference_low",
    "risk_difference_high",
)


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
    if isinstance(res, GlmmResult):
        row["icc_scale"] = "latent (logistic, π²/3)"
    elif isinstance(res, LmmResult):
        row["icc_scale"] = "outcome"
    es = res.effect_sizes if isinstance(res, LmmResult) else None
    uvc = es.get("unconditional_variance_components") if isinstance(es, Mapping) else None
    if isinstance(uvc, Mapping):
        # Hedges' g from the model's own interval, scaled by the unconditional total SD
        total = float(sum(uvc.values()))
        std = standardised_effect(t.estimate, t.conf_low, t.conf_high, total, n_obs=int(res.n_obs))
        row.update(g=std["g"], g_low=std["g_conf_low"], g_high=std["g_conf_high"])
        if total > 0:
            row.update(
                icc_la_unconditional=float(uvc.get("la_id", np.nan)) / total,
                icc_keyworker_unconditional=float(uvc.get("keyworker_id", np.nan)) / total,
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
    return _with_status(row, check_term(t))


def _with_status(
    row: dict[str, Any], est: Estimability, status: str = NOT_ESTIMABLE
) -> dict[str, Any]:
    """``row`` with its ``status`` and ``reason``; a not estimable row keeps no effect numbers."""
    if est.estimable:
        row.setdefault("status", ESTIMATED)
        row.setdefault("reason", "")
        return row
    for k in _EFFECT_NUMBERS:
        row[k] = np.nan
    row["status"] = status
    row["reason"] = est.reason
    return row


def _declared_row(
    base: Mapping[str, Any], analysis: str, status: str, reason: str
) -> dict[str, Any]:
    """The row of a declared analysis that could not run or has no estimable effect."""
    return _with_status(
        {**base, "analysis": analysis}, Estimability(estimable=False, reason=reason), status
    )


def _error_reason(err: BaseException) -> str:
    """The message of an error without its path and code (for a results row)."""
    problems = getattr(err, "problems", None)
    if problems:
        return "; ".join(p.message.rstrip(".") for p in problems)
    return str(err)


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
    # ---- is there anything to estimate? (constant outcome, one LA per arm)
    design = check_design(
        frame, outcome="y", treatment="treated", cluster="la_id", columns=covariates
    )
    if not design.estimable:
        warn.append(f"{oc.id}: not estimable: {design.reason}")
        rows.append(_declared_row(base, "primary", NOT_ESTIMABLE, design.reason))
        for sens in plan.sensitivity:
            rows.append(_declared_row(base, sens, NOT_ESTIMABLE, design.reason))
        return rows, fixed, covariates
    # ---- primary
    primary = None
    fallback = ""
    try:
        if binary:
            try:
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
                primary_note = (
                    f"random-intercept logistic GLMM (Laplace), {plan.binary_df_method} df"
                )
            except (TrialkitError, RuntimeError, np.linalg.LinAlgError) as err:
                reason = _error_reason(err)
                notes.append(
                    f"{oc.id}: the GLMM failed ({reason}); the primary analysis is the "
                    "cluster-level analysis"
                )
                warn.append(
                    f"{oc.id}: the protocol's GLMM failed ({reason}); the cluster-level "
                    "analysis replaces it as the primary analysis"
                )
                primary_note = f"GLMM failed ({reason}); cluster-level analysis used"
                base = {**base, "scale": "risk difference"}
                fallback = f"cluster-level analysis instead of the protocol's GLMM ({reason})"
                primary = _fit_quiet(
                    warn, **common, clusters=["la_id"], family=family, method="cluster-level"
                )
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
    except (TrialkitError, np.linalg.LinAlgError) as err:
        # valid data whose model is not identified (e.g. LA covariates collinear with the
        # arm) or cannot be fitted: the row says so instead of stopping the analysis
        reason = f"the model could not be fitted: {_error_reason(err)}"
        warn.append(f"{oc.id}: not estimable: {reason}")
        row = _declared_row(base, "primary", NOT_ESTIMABLE, reason)
        row["fallback"] = fallback
        rows.append(row)
        for sens in plan.sensitivity:
            rows.append(_declared_row(base, sens, NOT_ESTIMABLE, reason))
        return rows, fixed, covariates
    row = _term_row(primary, **base, analysis="primary")
    # a visible flag on the row whenever the protocol's primary analysis was replaced
    row["fallback"] = fallback
    if primary_note:
        row["note"] = "; ".join(x for x in (primary_note, row.get("note")) if x)
    if row["status"] != ESTIMATED:
        warn.append(f"{oc.id}: not estimable: {row['reason']}")
    if not binary and isinstance(primary, LmmResult):
        row.update(_variance_shares(primary, common, clusters, warn))
    if isinstance(primary, GlmmResult) and len(clusters) == 1:
        # the unconditional latent-scale ICC (intercept-only GLMM, same complete cases)
        cc = _complete(frame, ["y", *covariates])
        null = null_glmm_variance(cc["y"].to_numpy(dtype=float), pd.factorize(cc["la_id"])[0])
        row["icc_la_unconditional"] = null["icc_latent"]
    rows.append(row)
    for t in primary.fixed_effects:
        fixed.append({"outcome_id": oc.id, "analysis": "primary", **t.to_dict()})
    # ---- sensitivity analyses: every declared one keeps its row
    for sens in plan.sensitivity:
        try:
            if sens == "cluster-level":
                r = _fit_quiet(
                    warn, **common, clusters=["la_id"], family=family, method="cluster-level"
                )
                scale = "risk difference" if binary else "mean difference"
                srow = _term_row(r, **{**base, "scale": scale}, analysis="cluster-level")
            elif sens == "cr2":
                r = _fit_quiet(warn, **common, clusters=["la_id"], method="ols-cr2")
                scale = "risk difference (linear probability)" if binary else "mean difference"
                srow = _term_row(r, **{**base, "scale": scale}, analysis="cr2")
            elif sens == "satterthwaite":
                if binary:
                    srow = _declared_row(
                        base,
                        sens,
                        NOT_RUN,
                        "Satterthwaite df apply to the linear mixed model; this binary "
                        f"outcome's GLMM uses {plan.binary_df_method} df",
                    )
                else:
                    r = _fit_quiet(
                        warn, **common, clusters=clusters, method="lmm", df_method="satterthwaite"
                    )
                    srow = _term_row(r, **base, analysis="satterthwaite")
            elif sens == "gee":
                r = _fit_quiet(warn, **common, clusters=["la_id"], family=family, method="gee")
                srow = _term_row(r, **base, analysis="gee")
            elif sens == "randomisation-test":
                srow = _randomisation_row(
                    oc, frame, base, covariates, family, allocation, seed, plan.alpha, warn
                )
            elif sens == "complete-case":
                srow = _declared_row(
                    base,
                    sens,
                    NOT_RUN,
                    "the primary analysis already uses the complete cases; no separate analysis",
                )
            else:  # pragma: no cover - the protocol model only allows the names above
                srow = _declared_row(base, sens, NOT_RUN, f"unknown analysis {sens!r}")
        except (TrialkitError, np.linalg.LinAlgError) as err:
            reason = _error_reason(err)
            notes.append(f"{oc.id}: sensitivity analysis {sens} failed: {reason}")
            srow = _declared_row(base, sens, NOT_ESTIMABLE, f"the analysis failed: {reason}")
        if srow["status"] != ESTIMATED:
            warn.append(f"{oc.id} {sens}: {srow['status']}: {srow['reason']}")
        rows.append(srow)
    return rows, fixed, covariates


def _randomisation_row(
    oc: Outcome,
    frame: pd.DataFrame,
    base: Mapping[str, Any],
    covariates: list[str],
    family: Literal["gaussian", "binomial"],
    allocation: AllocationRecord | None,
    seed: int,
    alpha: float,
    warn: list[str],
) -> dict[str, Any]:
    """The randomisation test's row (test inversion over the kept allocation space)."""
    binary = family == "binomial"
    if allocation is None:
        return _declared_row(
            base,
            "randomisation-test",
            NOT_RUN,
            "no allocation record (the randomisation test needs the kept allocation space)",
        )
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
            conf_level=1 - alpha,
            seed=seed,
        )
    warn += [f"{oc.id} randomisation test: {w.message}" for w in caught]
    return {
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
        "status": ESTIMATED,
        "reason": "",
        "note": "; ".join(
            x
            for x in (
                "estimate and interval by test inversion"
                if rt.estimate is not None
                else "p-value only (no test-inversion interval for binary outcomes)",
                rt.left_out_note(),
            )
            if x
        ),
    }


def _variance_shares(
    primary: LmmResult,
    common: Mapping[str, Any],
    clusters: list[str],
    warn: list[str],
) -> dict[str, float]:
    """Share of each level's variance explained by the covariates (for the MDES).

    ``R²_l = 1 - ψ_l(adjusted model)/ψ_l(treatment-only model)``
    (:func:`trialkit.models.effect_sizes.variance_explained`): the treatment-only model
    has the same random effects and no covariates, so the shares credit the covariates
    alone, as the ``R²`` of the MDES formulas assume.
    """
    out = {"r2_la": 0.0, "r2_keyworker": 0.0, "r2_residual": 0.0}
    if not common["covariates"]:
        return out
    try:
        base = _fit_quiet(
            [], **{**common, "covariates": []}, clusters=clusters, method="lmm", effect_sizes=False
        )
    except (TrialkitError, np.linalg.LinAlgError) as err:
        warn.append(f"variance explained by the covariates not computed: {_error_reason(err)}")
        return {k: np.nan for k in out}
    names = [*clusters, "residual"]
    adj = [float(primary.variance_components[n]) for n in names]
    unc = [float(base.variance_components[n]) for n in names]
    shares = dict(zip(names, variance_explained(adj, unc), strict=True))
    return {
        "r2_la": shares["la_id"],
        "r2_keyworker": shares.get("keyworker_id", 0.0),
        "r2_residual": shares["residual"],
    }


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
    """MDES for the achieved sample, with and without credit for the covariates.

    Both use the **unconditional** ICCs (intercept-only model) and the coefficient of
    variation of the analysed LA sizes (Eldridge, Ashby & Kerry 2006); the adjusted
    variant also takes the share of each level's variance the primary model's
    covariates explain (``r2_*``).  Formulas: :mod:`trialkit.power.analytic`.
    """
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
        if r["status"] != ESTIMATED or not np.isfinite(_float(r["icc_la_unconditional"])):
            notes.append(
                f"MDES not computed for {oc.id}: the primary analysis gave no unconditional "
                f"ICC ({r['reason'] or 'not a linear mixed model'})"
            )
            continue
        used = fr.dropna(subset=["y"])
        sizes = used.groupby("la_id").size().to_numpy(dtype=float)
        cv = float(sizes.std(ddof=0) / sizes.mean())
        icc_la = _float(r["icc_la_unconditional"])
        icc_kw = _float(r["icc_keyworker_unconditional"])
        r2 = {k: min(_float(r[k]), _R2_MAX) for k in ("r2_la", "r2_keyworker", "r2_residual")}
        r2 = {k: v if np.isfinite(v) else 0.0 for k, v in r2.items()}
        if oc.level.value == "family":
            shape: dict[str, Any] = {
                "levels": 3,
                "subclusters_per_cluster": float(
                    used.groupby("la_id")["keyworker_id"].nunique().mean()
                ),
                "units_per_subcluster": float(used.groupby("keyworker_id").size().mean()),
                "icc_subcluster": icc_kw if np.isfinite(icc_kw) else 0.0,
            }
            credit: dict[str, Any] = {
                "r2_cluster": r2["r2_la"],
                "r2_subcluster": r2["r2_keyworker"],
                "r2_unit": r2["r2_residual"],
            }
        else:
            shape = {"levels": 2, "units_per_cluster": float(sizes.mean())}
            credit = {"r2_cluster": r2["r2_la"], "r2_unit": r2["r2_residual"]}
        common: dict[str, Any] = {
            **shape,
            "clusters": int(len(sizes)),
            "icc_cluster": icc_la,
            "cluster_covariates": n_la_cov,
            "cv": cv,
            "cv_method": "eldridge",
        }
        try:
            plain = analytic_mdes(CRTDesign(**common), power=0.8, alpha=protocol.analysis.alpha)
            adjusted = analytic_mdes(
                replace(CRTDesign(**common), **credit), power=0.8, alpha=protocol.analysis.alpha
            )
        except TrialkitError as exc:
            notes.append(f"MDES not computed for {oc.id}: {_error_reason(exc)}")
            continue
        rows.append(
            {
                "outcome_id": oc.id,
                "role": oc.role,
                "level": oc.level.value,
                "n_la": int(len(sizes)),
                "n_obs": len(used),
                "cv_cluster_size": cv,
                "units_per_la": float(sizes.mean()),
                "keyworkers_per_la": shape.get("subclusters_per_cluster", np.nan),
                "families_per_keyworker": shape.get("units_per_subcluster", np.nan),
                "icc_la": icc_la,
                "icc_keyworker": icc_kw,
                "icc_source": "unconditional (intercept-only model)",
                **r2,
                "power": 0.8,
                "alpha": protocol.analysis.alpha,
                "mdes": adjusted.mdes,
                "mdes_conf_low": adjusted.conf_low,
                "mdes_conf_high": adjusted.conf_high,
                "mdes_unadjusted": plain.mdes,
                "mdes_unadjusted_conf_low": plain.conf_low,
                "mdes_unadjusted_conf_high": plain.conf_high,
                "df": adjusted.df,
                "cluster_covariates": n_la_cov,
            }
        )
    return pd.DataFrame(rows)


#: Largest R² passed to the MDES formulas (they need R² < 1).
_R2_MAX = 1.0 - 1e-9


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


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


def _feasibility(
    protocol: Protocol,
    trial_data: Any,
    arms: Mapping[str, str],
    fidelity: Any,
    notes: list[str],
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The progression criteria (:func:`trialkit.feasibility.assess_feasibility`)."""
    from trialkit.feasibility import assess_feasibility

    try:
        fa = assess_feasibility(protocol, trial_data, dict(arms), fidelity)
    except TrialkitError as err:
        notes.append(f"progression criteria not assessed: {err}")
        return {}, {"status": f"not assessed: {err}"}
    notes.extend(f"feasibility: {w}" for w in fa.warnings)
    return {"feasibility": fa.to_frame()}, {
        "status": "assessed",
        "conf_level": fa.conf_level,
        "recommendation": fa.recommendation.to_dict(),
        "warnings": list(fa.warnings),
    }


def _planning(
    protocol: Protocol, trial_data: Any, notes: list[str]
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Planning the definitive trial (:func:`trialkit.feasibility.plan_definitive_trial`).

    ``planning`` has one row per continuous outcome (status ``planned`` or ``not planned``
    with the reason); when the whole plan fails it is one ``not planned`` row with the
    reason and ``planning_arms`` is left out.
    """
    from trialkit.feasibility.planning import NOT_PLANNED, PLAN_COLUMNS, plan_definitive_trial

    try:
        plan = plan_definitive_trial(protocol, trial_data)
    except TrialkitError as err:
        notes.append(f"definitive trial not planned: {err}")
        row = dict.fromkeys(PLAN_COLUMNS) | {"outcome_id": "", "status": NOT_PLANNED}
        row["reason"] = str(err)
        return {"planning": pd.DataFrame([row], columns=list(PLAN_COLUMNS))}, {
            "status": f"not planned: {err}"
        }
    notes.extend(f"planning: {k} not planned ({r})" for k, r in plan.not_planned)
    meta = plan.to_dict()
    return {"planning": plan.to_frame(), "planning_arms": plan.arms_frame()}, {
        "status": "planned",
        **{k: meta[k] for k in ("alpha", "power", "conf_level", "methods", "notes")},
        "not_planned": meta["not_planned"],
    }


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
    used: dict[str, pd.DataFrame] = {}
    formulas: dict[str, dict[str, Any]] = {}
    mi_ids = {o.id for o in missing_data_outcomes(protocol)}
    mi_tables: dict[str, list[pd.DataFrame]] = {
        "imputation": [],
        "tipping_point": [],
        "missingness_predictors": [],
    }
    for oc in protocol.outcomes:
        af = analysis_frame(trial_data, protocol, oc.id)
        frame = af.frame
        frames[oc.id] = frame
        exclusions.append(af.exclusions)
        desc += descriptives(frame, oc.id, oc.type, af.timepoint, oc.baseline_timepoint)
        r, f, covs = _analyse_outcome(oc, frame, protocol, alloc, seed, notes, warn)
        # rows the model drops for a missing covariate are exclusions with a reason
        used[oc.id], dropped = complete_case_exclusions(frame, covs, oc.id, oc.level.value)
        exclusions.append(dropped)
        if oc.id in mi_ids and r[0].get("status", ESTIMATED) != ESTIMATED:
            notes.append(
                f"{oc.id}: multilevel multiple imputation not run: the primary analysis is "
                f"{r[0].get('status')}"
            )
        elif oc.id in mi_ids:  # declared sensitivity analysis: multilevel multiple imputation
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
                mi_tables["missingness_predictors"].append(mi.predictors)
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
        "status",
        "reason",
        "icc_scale",
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
        "flow": analysed_flow(
            trial_data.flow.astype({"n": "int64"}).reset_index(drop=True),
            used,
            {oc.id: oc.level.value for oc in protocol.outcomes},
        ),
        # validation already records each outcome's analysis exclusions; an analysis
        # frame repeats them, so every (stage, entity, reason) is counted once, by arm
        "exclusions": exclusion_counts_by_arm(
            pd.concat([trial_data.exclusions, *exclusions], ignore_index=True).drop_duplicates(
                ["stage", "entity", "entity_id", "reason"]
            ),
            entity_arms(trial_data.tables, arms),
        ),
        "missing_outcomes": missing_outcomes(protocol, trial_data.tables, trial_data.scores),
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
                    reason = _error_reason(err)
                    notes.append(f"{oc.id}: CACE not estimated: {reason}")
                    warn.append(f"{oc.id} CACE: not estimable: {reason}")
                    cace_rows.append(_cace_missing(oc.id, NOT_ESTIMABLE, reason))
                    continue
                cf = cres.to_frame()
                cf.insert(0, "outcome_id", oc.id)
                cf["status"] = [
                    ESTIMATED if np.isfinite(_float(e)) else NOT_ESTIMABLE for e in cf["estimate"]
                ]
                cf["reason"] = ""
                cf["scale"] = "risk difference" if oc.type == "binary" else "outcome units"
                cf["measure"] = cres.measure
                cf["threshold"] = cres.threshold
                cf["complier_share_intervention"] = float(
                    dict(cres.complier_share).get(protocol.intervention_arm, np.nan)
                )
                cace_rows.append(cf)
        if cace_rows:
            tables["cace"] = pd.concat(cace_rows, ignore_index=True)
    elif protocol.analysis.compliance is not None:
        # the declared CACE keeps its rows, saying why it could not run
        missing = [
            _cace_missing(oc.id, NOT_RUN, f"fidelity {fidelity_status}")
            for oc in protocol.outcomes
            if oc.role == "primary" and oc.type in ("continuous", "binary")
        ]
        for oc_id in (m["outcome_id"].iloc[0] for m in missing):
            warn.append(f"{oc_id} CACE: not run: fidelity {fidelity_status}")
        if missing:
            tables["cace"] = pd.concat(missing, ignore_index=True)
    if protocol.progression:
        tables_f, methods_f = _feasibility(protocol, trial_data, arms, fidelity, notes)
        tables.update(tables_f)
    else:
        methods_f = {"status": "no progression criteria in the protocol"}
    if protocol.progression or any(o.target_effect is not None for o in protocol.outcomes):
        tables_p, methods_p = _planning(protocol, trial_data, notes)
        tables.update(tables_p)
    else:
        methods_p = {"status": "no progression criteria or target_effect in the protocol"}
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
        "feasibility": methods_f,
        "planning": methods_p,
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


def _cace_missing(outcome_id: str, status: str, reason: str) -> pd.DataFrame:
    """The CACE row of a primary outcome whose CACE could not be estimated or run."""
    return pd.DataFrame(
        [{"outcome_id": outcome_id, "term": "cace", "status": status, "reason": reason}]
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
