"""The declared missing-data sensitivity analysis: multilevel MI and the tipping point.

For each outcome ``[analysis.missing_data]`` applies to (its ``outcomes``, or every
continuous primary outcome), :func:`analyse_missing_data` builds the
intention-to-treat frame (every consented entity of an allocated LA, the
outcome NaN where it was not measured;
:func:`trialkit.data.analysis_frame` with ``include_missing=True``), adds the
auxiliary variables (an outcome timepoint such as ``"mid"`` becomes the column
``aux_<timepoint>``), imputes with random intercepts for the primary analysis's
clusters, fits the primary model to every completed dataset, pools (Rubin's rules,
Barnard–Rubin df) and runs the δ-grid of the tipping-point analysis.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trialkit.errors import TrialkitError, TrialkitWarning
from trialkit.models.multiple_imputation import (
    BatchedLmm,
    MiResult,
    TippingPoint,
    impute_and_fit,
    tipping_point,
)
from trialkit.models.results import FitResult
from trialkit.protocol.model import MissingDataPlan, Outcome, Protocol

__all__ = [
    "THIRDS",
    "MissingDataAnalysis",
    "analyse_missing_data",
    "missing_data_outcomes",
    "missingness_predictors",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class MissingDataAnalysis:
    """MI result, tipping point and summary of one outcome (``missing``: missing outcomes by
    arm and LA in the imputed population)."""

    outcome_id: str
    result: FitResult
    tipping: TippingPoint | None
    summary: dict[str, Any]
    missing: pd.DataFrame = field(repr=False)
    predictors: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)


#: Labels of the thirds of a score (:func:`missingness_predictors`).
THIRDS = ("lowest third", "middle third", "highest third")


def missingness_predictors(
    frame: pd.DataFrame, outcome_id: str, scores: dict[str, str]
) -> pd.DataFrame:
    """Missing outcomes by arm, and by arm within thirds of each score (what predicts them).

    Parameters
    ----------
    frame : DataFrame
        The intention-to-treat frame (``y`` NaN where missing, ``arm``, ``la_id``).
    outcome_id : str
    scores : mapping column -> label
        Scores whose thirds (cut at the tertiles of the observed values, both arms
        together) are compared, e.g. ``{"baseline": "baseline score", "aux_mid":
        "mid-point score"}``; a row without the score is in the level ``"not measured"``.

    Returns
    -------
    DataFrame
        ``outcome_id, factor, level, arm, n, n_missing`` with ``factor`` one of ``"arm"``,
        a score's label, or ``"la"`` (``level`` the LA id: counts per LA, for the report
        to coarsen).
    """
    miss = frame["y"].isna()
    parts = []

    def count(keys: pd.Series, factor: str) -> pd.DataFrame:
        g = pd.DataFrame({"level": keys, "arm": frame["arm"], "m": miss})
        out = g.groupby(["level", "arm"], sort=False, observed=True)["m"].agg(
            n="size", n_missing="sum"
        )
        return out.reset_index().assign(factor=factor)

    parts.append(count(frame["arm"].astype(str), "arm"))
    for col, label in scores.items():
        if col not in frame.columns:
            continue
        x = frame[col].astype(float)
        obs = x.dropna()
        if obs.nunique() < 3:
            continue
        cuts = np.quantile(obs.to_numpy(), [1 / 3, 2 / 3])
        idx = np.searchsorted(cuts, x.to_numpy(), side="right")
        lev = pd.Series(np.asarray(THIRDS, dtype=object)[np.minimum(idx, 2)], index=frame.index)
        lev[x.isna()] = "not measured"
        t = count(lev, label)
        rank = t["level"].map({k: i for i, k in enumerate([*THIRDS, "not measured"])})
        parts.append(t.assign(_rank=rank).sort_values(["arm", "_rank"]).drop(columns="_rank"))
    parts.append(count(frame["la_id"].astype(str), "la").sort_values(["arm", "level"]))
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "outcome_id", outcome_id)
    out["n"] = out["n"].astype(np.int64)
    out["n_missing"] = out["n_missing"].astype(np.int64)
    return out[["outcome_id", "factor", "level", "arm", "n", "n_missing"]]


def missing_data_outcomes(protocol: Protocol) -> list[Outcome]:
    """The outcomes the plan's missing-data analysis applies to."""
    md = protocol.analysis.missing_data
    if md is None:
        return []
    if md.outcomes:
        return [o for o in protocol.outcomes if o.id in md.outcomes and o.type == "continuous"]
    return [o for o in protocol.outcomes if o.role == "primary" and o.type == "continuous"]


def _frame(
    trial_data: Any, protocol: Protocol, oc: Outcome, md: MissingDataPlan, notes: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    from trialkit.data import analysis_frame

    af = analysis_frame(trial_data, protocol, oc.id, include_missing=True)
    frame = af.frame
    key = "family_id" if oc.level.value == "family" else "keyworker_id"
    aux: list[str] = []
    for a in md.auxiliary:
        if a in oc.timepoints and a != af.timepoint:
            other = analysis_frame(trial_data, protocol, oc.id, timepoint=a, require_baseline=False)
            vals = pd.Series(other.frame["y"].to_numpy(), index=other.frame[key].to_numpy())
            name = f"aux_{a}"
            frame[name] = frame[key].map(vals).astype(float)
            aux.append(name)
        elif a in frame.columns and a not in ("y", "treated", "arm"):
            aux.append(a)
        else:
            notes.append(f"{oc.id}: auxiliary {a!r} is not available for this outcome; left out")
    return frame, aux


def analyse_missing_data(
    oc: Outcome,
    trial_data: Any,
    protocol: Protocol,
    *,
    covariates: list[str],
    clusters: list[str],
    notes: list[str],
) -> MissingDataAnalysis | None:
    """Multilevel MI of ``oc`` (primary model, pooled) and its tipping-point analysis.

    Returns None (with a note) when the analysis cannot run.
    """
    from trialkit.models.fit import fit

    md = protocol.analysis.missing_data
    if md is None:
        return None
    plan = protocol.analysis
    frame, aux = _frame(trial_data, protocol, oc, md, notes)
    method = plan.model
    use_clusters = clusters if method in ("lmm", "gee") else clusters[:1]
    opts: dict[str, Any] = {"df_method": plan.df_method} if method == "lmm" else {}
    if method == "lmm":
        opts["effect_sizes"] = False
    # a covariate constant in every row adds nothing to the imputation model
    covs = [c for c in covariates if c in frame.columns]

    def analyse(data: pd.DataFrame) -> FitResult:
        return fit(
            data,
            outcome="y",
            treatment="treated",
            covariates=covs,
            clusters=use_clusters,
            method=method,
            alpha=plan.alpha,
            **opts,
        )

    batched = (
        BatchedLmm(
            outcome="y",
            treatment="treated",
            covariates=tuple(covs),
            clusters=tuple(use_clusters),
            df_method=plan.df_method,
        )
        if method == "lmm"
        else None
    )
    missing = (
        frame.assign(missing=frame["y"].isna())
        .groupby(["arm", "la_id"], sort=True)["missing"]
        .agg(n="size", n_missing="sum")
        .reset_index()
    )
    missing.insert(0, "outcome_id", oc.id)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TrialkitWarning)
            res, imp = impute_and_fit(
                frame,
                outcome="y",
                treatment="treated",
                analyse=analyse,
                covariates=covs,
                clusters=use_clusters,
                auxiliary=aux,
                imputations=md.imputations,
                seed=md.seed,
                by_arm=md.by_arm,
                burn_in=md.burn_in,
                thin=md.thin,
                alpha=plan.alpha,
                batched=batched,
            )
            tp = None
            if imp is not None and isinstance(res, MiResult) and md.delta:
                tp = tipping_point(
                    imp,
                    analyse,
                    md.delta,
                    delta_arm=md.delta_arm,
                    alpha=plan.alpha,
                    mar=res,
                    batched=batched,
                )
    except TrialkitError as err:
        notes.append(f"{oc.id}: multilevel multiple imputation failed: {err}")
        return None
    summary: dict[str, Any] = {
        "outcome_id": oc.id,
        "method": md.method,
        "n_rows": int(len(frame)),
        "n_missing_outcome": int(frame["y"].isna().sum()),
        "auxiliary": " ".join(aux),
        "covariates": " ".join(covs),
        "imputations": md.imputations,
        "seed": md.seed,
        "by_arm": md.by_arm,
        "delta_arm": md.delta_arm,
    }
    if isinstance(res, MiResult):
        p = res.pooled
        diag = res.imputation.get("diagnostics", {})
        rhat = [v for v in diag.get("split_rhat", {}).values() if v is not None]
        summary.update(
            estimate=p.estimate,
            std_error=p.std_error,
            df=p.df,
            df_complete=p.df_complete,
            fraction_missing_information=p.fraction_missing_information,
            relative_increase_in_variance=p.relative_increase_in_variance,
            within_variance=p.within_variance,
            between_variance=p.between_variance,
            outcome_sd=res.imputation.get("outcome_sd", np.nan),
            burn_in=diag.get("burn_in"),
            thin=diag.get("thin"),
            max_split_rhat=max(rhat) if rhat else np.nan,
        )
    else:
        summary["note"] = "nothing to impute"
    if tp is not None:
        summary.update(
            conclusion_mar=tp.conclusion_mar,
            tipping_below=np.nan if tp.tipping_below is None else tp.tipping_below,
            tipping_above=np.nan if tp.tipping_above is None else tp.tipping_above,
        )
    scores = {"baseline": "baseline score"} if "baseline" in frame.columns else {}
    scores.update({a: f"{a.removeprefix('aux_')}-point score" for a in aux if a.startswith("aux_")})
    return MissingDataAnalysis(
        outcome_id=oc.id,
        result=res,
        tipping=tp,
        summary=summary,
        missing=missing,
        predictors=missingness_predictors(frame, oc.id, scores),
    )
