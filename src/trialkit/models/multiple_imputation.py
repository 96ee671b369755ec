"""Analysis after multilevel multiple imputation, δ-adjustment and the tipping point.

:func:`fit_imputed` imputes the missing outcome (and incomplete covariates and
auxiliaries) with :func:`trialkit.models.imputation.impute_multilevel`, fits the
completed-data analysis to each of the ``m`` completed datasets and pools every
fixed effect by Rubin's rules with the Barnard–Rubin df
(:func:`trialkit.models.pooling.pool`), taking as complete-data df the mean of
the ``m`` completed-data df (Kenward–Roger for the linear mixed model).  The
result is an :class:`MiResult`.

**δ-adjustment** (missing not at random; Carpenter & Kenward 2013, ch. 10;
Cro et al. 2020): the imputed outcome values of one arm (or both) are shifted by
``δ`` outcome standard deviations (the SD of the observed outcome values) before
the analysis; ``δ = 0`` is the MAR analysis.  The same ``m`` draws are shifted
for every δ, so the δ-grid varies only the departure from MAR.
:func:`tipping_point` runs the pooled analysis over a grid of δ and reports where
the conclusion (the interval excludes 0, and on which side) changes: between the
last grid point with the δ = 0 conclusion and the first without, the δ at which
the interval's nearer limit crosses zero, by linear interpolation.
:func:`plot_tipping_point` draws the pooled estimate and interval against δ.

References
----------
Carpenter JR, Kenward MG. Multiple Imputation and its Application. Wiley, 2013.
Cro S, Morris TP, Kenward MG, Carpenter JR. Sensitivity analysis for clinical
trials with missing continuous outcome data using controlled multiple imputation:
a practical guide. Stat Med 2020;39:2815–2842.
Ratitch B, O'Kelly M, Tosiello R. Missing data in clinical trials: from clinical
assumptions to statistical analysis using pattern mixture models. Pharm Stat
2013;12:337–347 (tipping-point analysis).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from trialkit.errors import ModelSpecError, TrialkitError, TrialkitWarning
from trialkit.models.imputation import Imputations, _arm_mask, impute_multilevel
from trialkit.models.pooling import DF_METHOD, PooledEstimate, pool
from trialkit.models.results import FitResult, _register
from trialkit.models.terms import Term, clean_float

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "MI_METHOD",
    "BatchedLmm",
    "MiResult",
    "TippingPoint",
    "fit_imputed",
    "impute_and_fit",
    "plot_tipping_point",
    "pool_fits",
    "tipping_point",
]

#: ``FitResult.method`` of a pooled multiple-imputation analysis.
MI_METHOD = "multilevel-mi"

Analyse = Callable[[pd.DataFrame], FitResult]


@_register(MI_METHOD)
@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class MiResult(FitResult):
    """Completed-data analyses pooled over ``m`` multilevel imputations.

    ``treatment`` and ``fixed_effects`` are pooled by Rubin's rules with the
    Barnard–Rubin df (``df_method = "barnard-rubin"``); ``variance_components`` and
    ``icc`` are averages over the completed-data fits; ``n_obs`` counts the
    completed rows (observed and imputed).

    Attributes
    ----------
    analysis_method : str
        The completed-data analysis (``"lmm"``, ...) and ``analysis_df_method`` its df.
    pooled : PooledEstimate
        The treatment effect's pooling details (``Ū``, ``B``, ``T``, RIV, FMI, ν_com).
    imputation : mapping
        Settings, counts and diagnostics of the imputation model
        (:meth:`~trialkit.models.imputation.Imputations.to_dict`), ``delta`` and
        ``delta_arm``.
    completed_estimates, completed_variances, completed_df : tuple of float
        The treatment effect, its squared SE and df in each completed dataset.
    """

    analysis_method: str
    analysis_df_method: str
    pooled: PooledEstimate
    imputation: Mapping[str, Any]
    completed_estimates: tuple[float, ...]
    completed_variances: tuple[float, ...]
    completed_df: tuple[float, ...]

    def _extra(self) -> dict[str, Any]:
        return {
            "analysis_method": self.analysis_method,
            "analysis_df_method": self.analysis_df_method,
            "pooled": self.pooled.to_dict(),
            "imputation": dict(self.imputation),
            "completed_estimates": list(self.completed_estimates),
            "completed_variances": list(self.completed_variances),
            "completed_df": [clean_float(float(v)) for v in self.completed_df],
        }

    @classmethod
    def _fields_from_extra(cls, extra: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "analysis_method": str(extra["analysis_method"]),
            "analysis_df_method": str(extra["analysis_df_method"]),
            "pooled": PooledEstimate.from_dict(extra["pooled"]),
            "imputation": dict(extra["imputation"]),
            "completed_estimates": tuple(float(v) for v in extra["completed_estimates"]),
            "completed_variances": tuple(float(v) for v in extra["completed_variances"]),
            "completed_df": tuple(
                math.inf if v is None else float(v) for v in extra["completed_df"]
            ),
        }

    def summary(self) -> str:
        """The base summary plus the pooling line (m, FMI, RIV, complete-data df)."""
        p = self.pooled
        return "\n".join(
            [
                FitResult.summary(self),
                f"multiple imputation: m = {p.m}, fraction of missing information "
                f"{p.fraction_missing_information:.4g}, relative increase in variance "
                f"{p.relative_increase_in_variance:.4g}; completed-data analysis "
                f"{self.analysis_method} ({self.analysis_df_method} df, mean "
                f"{p.df_complete:.4g}); Barnard-Rubin df {p.df:.4g}",
            ]
        )

    def imputation_summary(self) -> dict[str, Any]:
        """The ``imputation`` block of the CLI's JSON: m, FMI, RIV, df method and more."""
        p = self.pooled
        return {
            "m": p.m,
            "fraction_missing_information": clean_float(p.fraction_missing_information),
            "relative_increase_in_variance": clean_float(p.relative_increase_in_variance),
            "df_method": DF_METHOD,
            "df_complete": clean_float(p.df_complete),
            "within_variance": p.within_variance,
            "between_variance": p.between_variance,
            "analysis_method": self.analysis_method,
            "analysis_df_method": self.analysis_df_method,
            **{
                k: self.imputation[k]
                for k in (
                    "seed",
                    "imputed",
                    "n_missing",
                    "auxiliary",
                    "by_arm",
                    "prior",
                    "delta",
                    "delta_arm",
                    "outcome_sd",
                    "diagnostics",
                )
                if k in self.imputation
            },
        }


def _fail(code: str, path: str, message: str, hint: str) -> TrialkitError:
    return ModelSpecError.from_problem(path=path, code=code, message=message, hint=hint)


def pool_fits(
    fits: Sequence[FitResult],
    imputations: Imputations,
    *,
    delta: float = 0.0,
    delta_arm: str = "treated",
    auxiliary: Sequence[str] = (),
    alpha: float = 0.05,
) -> MiResult:
    """Pool completed-data fits (one per imputation, same model) into an :class:`MiResult`.

    Every fixed effect is pooled with :func:`~trialkit.models.pooling.pool`; its
    complete-data df is the mean of its ``m`` completed-data df.
    """
    if not fits:
        raise _fail("fit.mi_fits", "fits", "there are no completed-data fits.", "fit every one.")
    return _pool(
        fits[0],
        fits,
        imputations,
        delta=delta,
        delta_arm=delta_arm,
        auxiliary=auxiliary,
        alpha=alpha,
    )


def _pool(
    first: FitResult,
    fits: Sequence[_Completed],
    imputations: Imputations,
    *,
    delta: float,
    delta_arm: str,
    auxiliary: Sequence[str],
    alpha: float,
) -> MiResult:
    """Pool ``fits`` (fitted models or :class:`~trialkit.models.lmm.ResponseFit`); the model's
    description (outcome, terms, clusters, formula, ...) is taken from ``first``."""
    if len(fits) != imputations.m:
        raise _fail(
            "fit.mi_fits",
            "fits",
            f"there must be one fit per imputation ({imputations.m}); got {len(fits)}.",
            "fit every completed dataset.",
        )
    names = [t.term for t in first.fixed_effects]
    terms = []
    pooled_tr: PooledEstimate | None = None
    for k, name in enumerate(names):
        est = [f.fixed_effects[k].estimate for f in fits]
        var = [f.fixed_effects[k].std_error ** 2 for f in fits]
        dfs = np.array([f.fixed_effects[k].df for f in fits], dtype=float)
        p = pool(est, var, float(np.mean(dfs)), alpha=alpha)
        terms.append(p.to_term(name))
        if name == first.treatment_term:
            pooled_tr = p
    if pooled_tr is None:  # pragma: no cover - every fit has its treatment term
        raise _fail("fit.mi_fits", "fits", "the treatment term is missing.", "refit.")
    tr_idx = names.index(first.treatment_term)
    vc = {
        k: float(np.mean([f.variance_components[k] for f in fits]))
        for k in first.variance_components
    }
    icc = {k: float(np.mean([f.icc[k] for f in fits])) for k in first.icc}
    info = {
        **imputations.to_dict(),
        "auxiliary": list(auxiliary),
        "delta": float(delta),
        "delta_arm": delta_arm,
    }
    warn = [
        f"multiple imputation (m = {imputations.m}): "
        + ", ".join(f"{v} {k} value(s) imputed" for k, v in imputations.n_missing.items())
    ]
    if delta:
        warn.append(
            f"delta-adjusted (MNAR): imputed outcomes of the {delta_arm} arm(s) shifted by "
            f"{delta:g} SD = {delta * imputations.outcome_sd:.6g}"
        )
    counts: dict[str, int] = {}
    for f in fits:
        for w in dict.fromkeys(f.warnings):
            if not w.startswith("excluded "):
                counts[w] = counts.get(w, 0) + 1
    warn += [f"{n} of {len(fits)} completed-data fits: {w}" for w, n in sorted(counts.items())]
    return MiResult(
        method=MI_METHOD,
        family=first.family,
        outcome=first.outcome,
        treatment_column=first.treatment_column,
        treatment_term=first.treatment_term,
        treatment=terms[tr_idx],
        fixed_effects=tuple(terms),
        variance_components=vc,
        icc=icc,
        df_method=DF_METHOD,
        n_obs=int(first.n_obs),
        n_clusters=dict(first.n_clusters),
        n_excluded=int(first.n_excluded),
        exclusions=first.exclusions,
        singular=any(f.singular for f in fits),
        converged=all(f.converged for f in fits),
        loglik=float("nan"),
        reml=first.reml,
        formula=first.formula,
        data_hash=imputations.data_hash,
        warnings=tuple(warn),
        analysis_method=first.method,
        analysis_df_method=first.df_method,
        pooled=pooled_tr,
        imputation=info,
        completed_estimates=tuple(f.fixed_effects[tr_idx].estimate for f in fits),
        completed_variances=tuple(f.fixed_effects[tr_idx].std_error ** 2 for f in fits),
        completed_df=tuple(f.fixed_effects[tr_idx].df for f in fits),
    )


class _Completed(Protocol):
    """What pooling reads from each completed-data fit."""

    @property
    def fixed_effects(self) -> tuple[Term, ...]: ...
    @property
    def variance_components(self) -> Mapping[str, float]: ...
    @property
    def icc(self) -> Mapping[str, float]: ...
    @property
    def singular(self) -> bool: ...
    @property
    def converged(self) -> bool: ...
    @property
    def warnings(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchedLmm:
    """The completed-data linear mixed model (REML), declared so that the fits are batched.

    When only the outcome (and auxiliaries, which the analysis does not use) is
    imputed, the ``m`` completed datasets share the design matrix and the cluster
    layout and differ only in the outcome, so
    :func:`impute_and_fit` and :func:`tipping_point` fit all of them (and every δ of
    the grid: ``m × len(grid)`` responses) in one call of the engine
    (:func:`trialkit.models.lmm.fit_lmm_responses`) instead of one :func:`trialkit.fit`
    per dataset; the results equal the loop's to rounding error.  The arguments are
    those the ``analyse`` callable passes to :func:`trialkit.fit`.  With imputed
    covariates in the model the loop is used.
    """

    outcome: str
    treatment: str
    covariates: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    treatment_level: object | None = None
    df_method: str = "kenward-roger"

    def applies(self, imputations: Imputations) -> bool:
        """True when no column of this model but its outcome was imputed (imputed auxiliaries
        are not in the analysis), so that X and the cluster layout are shared."""
        used = {self.treatment, *self.covariates, *self.clusters}
        return (
            imputations.outcome == self.outcome
            and self.outcome not in used
            and not used & set(imputations.imputed)
            and bool(self.clusters)
        )


def _completed_outcomes(imp: Imputations, deltas: Sequence[float], delta_arm: str) -> np.ndarray:
    """The completed outcome column of every imputation, for each δ: (len(deltas)·m, n)."""
    y = imp.data[imp.outcome].to_numpy(dtype=float)
    rows = imp.missing_rows[imp.outcome]
    vals = imp.values[imp.outcome]
    mask = _arm_mask(imp.treated[rows], delta_arm)
    out = np.empty((len(deltas) * imp.m, len(y)))
    out[:] = y
    for j, d in enumerate(deltas):
        # as Imputations.completed, operation for operation (identical values)
        out[j * imp.m : (j + 1) * imp.m, rows] = (
            vals + d * imp.outcome_sd * mask if d != 0.0 else vals
        )
    return out


def _fit_all(
    imputations: Imputations,
    analyse: Analyse,
    deltas: Sequence[float],
    delta_arm: str,
    batched: BatchedLmm | None = None,
    alpha: float = 0.05,
) -> tuple[FitResult, list[list[_Completed]]]:
    """Fit every completed dataset for each δ: the first fit (the model's description) and
    the fits per δ.  Their warnings are kept on the results, not re-raised."""
    from trialkit.models.design import build_model_frame
    from trialkit.models.lmm import fit_lmm_responses

    m = imputations.m
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrialkitWarning)
        if batched is None or not batched.applies(imputations):
            per = [
                [analyse(imputations.completed(k, delta=d, delta_arm=delta_arm)) for k in range(m)]
                for d in deltas
            ]
            return per[0][0], per  # type: ignore[return-value]
        first = analyse(imputations.completed(0, delta=deltas[0], delta_arm=delta_arm))
        # the model frame once, its outcome the row positions: which rows it keeps, in order
        rows = imputations.data.copy()
        rows[batched.outcome] = np.arange(len(rows), dtype=float)
        frame = build_model_frame(
            rows,
            outcome=batched.outcome,
            treatment=batched.treatment,
            covariates=batched.covariates,
            clusters=batched.clusters,
            treatment_level=batched.treatment_level,
        )
        pos = frame.y.astype(np.int64)
        Y = _completed_outcomes(imputations, deltas, delta_arm)[:, pos]
        fits = fit_lmm_responses(frame, Y, df_method=batched.df_method, alpha=alpha)
    return first, [list(fits[j * m : (j + 1) * m]) for j in range(len(deltas))]


def impute_and_fit(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str,
    analyse: Analyse,
    covariates: Sequence[str] = (),
    clusters: Sequence[str] = (),
    auxiliary: Sequence[str] = (),
    treatment_level: object | None = None,
    imputations: int = 20,
    seed: int = 0,
    delta: float = 0.0,
    delta_arm: str = "treated",
    by_arm: bool = False,
    burn_in: int = 1000,
    thin: int = 20,
    prior: str = "default",
    alpha: float = 0.05,
    batched: BatchedLmm | None = None,
) -> tuple[FitResult, Imputations | None]:
    """Multilevel multiple imputation, the completed-data analysis and Rubin's rules.

    Parameters
    ----------
    data : DataFrame
        One row per individual; missing outcomes (and numeric covariates or
        auxiliaries) are NaN.
    outcome, treatment, covariates, clusters, treatment_level
        As for :func:`trialkit.fit`; every covariate is in the imputation model.
    analyse : callable
        ``analyse(completed_frame) -> FitResult``: the completed-data analysis
        (:func:`trialkit.fit` passes itself with the model options).
    auxiliary : sequence of str
        Columns in the imputation model only (e.g. the mid-point measurement).
    imputations : int
        ``m``.
    seed : int
        Same seed, same imputations and results.
    delta, delta_arm
        δ-adjustment of the imputed outcomes (outcome SD units) and the arm shifted
        (``"treated"``, ``"control"`` or ``"both"``).
    by_arm, burn_in, thin, prior
        Passed to :func:`~trialkit.models.imputation.impute_multilevel`.
    alpha : float
        1 - confidence level.
    batched : BatchedLmm, optional
        The completed-data model when ``analyse`` is a linear mixed model fit (REML):
        the ``m`` fits run in one engine call when only the outcome is imputed.

    Returns
    -------
    result : FitResult
        An :class:`MiResult`; when nothing is missing, the complete-data analysis
        itself (it equals the complete-case analysis) with a warning saying so.
    imputations : Imputations or None
        The draws (None when nothing was missing), e.g. for :func:`tipping_point`.
    """
    if not math.isfinite(float(delta)):
        raise _fail("fit.mi_delta", "delta", f"delta must be finite; got {delta!r}.", "e.g. -0.5.")
    cov = list(dict.fromkeys([*covariates, *auxiliary]))
    check = [outcome, *cov]
    absent = [c for c in check if c not in data.columns]
    if not absent and not data[check].isna().to_numpy().any():
        res = analyse(data)
        note = "multiple imputation: nothing to impute (no missing values); complete-case analysis"
        return dataclasses.replace(res, warnings=(*res.warnings, note)), None
    imp = impute_multilevel(
        data,
        outcome=outcome,
        treatment=treatment,
        clusters=clusters,
        predictors=cov,
        treatment_level=treatment_level,
        m=imputations,
        seed=seed,
        burn_in=burn_in,
        thin=thin,
        by_arm=by_arm,
        prior=prior,
    )
    first, fits = _fit_all(imp, analyse, [float(delta)], delta_arm, batched, alpha)
    pooled = _pool(
        first, fits[0], imp, delta=delta, delta_arm=delta_arm, auxiliary=auxiliary, alpha=alpha
    )
    return pooled, imp


def fit_imputed(data: pd.DataFrame, **kwargs: Any) -> FitResult:
    """:func:`impute_and_fit` returning the result only (same keyword arguments)."""
    return impute_and_fit(data, **kwargs)[0]


# ----------------------------------------------------------------------------- tipping point
@dataclass(frozen=True, slots=True, kw_only=True)
class TippingPoint:
    """Pooled treatment effect over a grid of δ (MNAR sensitivity analysis).

    Attributes
    ----------
    table : DataFrame
        One row per δ: ``delta, delta_outcome_units, estimate, std_error, df, conf_low,
        conf_high, p_value, fraction_missing_information, conclusion`` (``"favours
        treated"``, ``"favours control"`` or ``"no clear difference"`` at level α).
    conclusion_mar : str
        The conclusion at δ = 0.
    tipping_below, tipping_above : float or None
        The δ (SD units) nearest 0 below / above 0 at which the conclusion changes
        (interpolated), None when it does not change within the grid.
    delta_arm : str
    outcome_sd : float
        The SD unit of δ.
    alpha : float
    m : int
    """

    table: pd.DataFrame
    conclusion_mar: str
    tipping_below: float | None
    tipping_above: float | None
    delta_arm: str
    outcome_sd: float
    alpha: float
    m: int

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": [
                {k: clean_float(v) if isinstance(v, float) else v for k, v in r.items()}
                for r in self.table.to_dict(orient="records")
            ],
            "conclusion_mar": self.conclusion_mar,
            "tipping_below": self.tipping_below,
            "tipping_above": self.tipping_above,
            "delta_arm": self.delta_arm,
            "outcome_sd": self.outcome_sd,
            "alpha": self.alpha,
            "m": self.m,
        }

    def summary(self) -> str:
        def f(x: float | None) -> str:
            return "not within the grid" if x is None else f"{x:.3g} SD"

        return (
            f"tipping point ({self.delta_arm} arm shifted, m = {self.m}): at delta = 0 "
            f"{self.conclusion_mar}; the conclusion changes at delta {f(self.tipping_below)} "
            f"(below 0) and {f(self.tipping_above)} (above 0)"
        )


def _conclusion(lo: float, hi: float) -> str:
    if lo > 0:
        return "favours treated"
    if hi < 0:
        return "favours control"
    return "no clear difference"


def _crossing(t: pd.DataFrame, side: int, base: str) -> float | None:
    """Interpolated δ where the conclusion first differs from ``base`` moving away from 0."""
    sub = t[t["delta"] * side >= 0].sort_values("delta", key=lambda s: s.abs())
    prev = None
    for _, r in sub.iterrows():
        if r["conclusion"] != base and prev is not None:
            # the limit that decides the change: crossing zero between prev and r
            for col in ("conf_low", "conf_high"):
                a, b = float(prev[col]), float(r[col])
                if (a > 0) != (b > 0) and a != b:
                    d0, d1 = float(prev["delta"]), float(r["delta"])
                    return d0 + (0.0 - a) * (d1 - d0) / (b - a)
            return float(r["delta"])  # pragma: no cover - a conclusion changed without a crossing
        prev = r
    return None


def tipping_point(
    imputations: Imputations,
    analyse: Analyse,
    deltas: Sequence[float],
    *,
    delta_arm: str = "treated",
    alpha: float = 0.05,
    mar: MiResult | None = None,
    batched: BatchedLmm | None = None,
) -> TippingPoint:
    """The pooled treatment effect for each δ of a grid, and where the conclusion changes.

    Parameters
    ----------
    imputations : Imputations
        MAR imputations (:func:`~trialkit.models.imputation.impute_multilevel`).
    analyse : callable
        The completed-data analysis, ``analyse(frame) -> FitResult``.
    deltas : sequence of float
        Grid in outcome SD units; 0 is added when absent.
    delta_arm : {"treated", "control", "both"}
    alpha : float
    mar : MiResult, optional
        The pooled δ = 0 analysis of the same imputations, reused instead of refitted.
    batched : BatchedLmm, optional
        As for :func:`impute_and_fit`: the ``m × len(grid)`` completed datasets are
        fitted in one engine call.

    Returns
    -------
    TippingPoint
    """
    grid = sorted({0.0, *(float(d) for d in deltas)})
    if any(not math.isfinite(d) for d in grid):
        raise _fail(
            "fit.mi_delta", "delta", f"every δ must be finite; got {grid}.", "e.g. -1 to 1."
        )
    todo = [d for d in grid if not (d == 0.0 and mar is not None)]
    pooled: dict[float, MiResult] = {0.0: mar} if mar is not None else {}
    if todo:
        first, fits = _fit_all(imputations, analyse, todo, delta_arm, batched, alpha)
        for d, f in zip(todo, fits, strict=True):
            pooled[d] = _pool(
                first, f, imputations, delta=d, delta_arm=delta_arm, auxiliary=(), alpha=alpha
            )
    rows = []
    for d in grid:
        r = pooled[d]
        t = r.treatment
        rows.append(
            {
                "delta": d,
                "delta_outcome_units": d * imputations.outcome_sd,
                "estimate": t.estimate,
                "std_error": t.std_error,
                "df": t.df,
                "conf_low": t.conf_low,
                "conf_high": t.conf_high,
                "p_value": t.p_value,
                "fraction_missing_information": r.pooled.fraction_missing_information,
                "conclusion": _conclusion(t.conf_low, t.conf_high),
            }
        )
    table = pd.DataFrame(rows)
    base = str(table.loc[table["delta"] == 0.0, "conclusion"].iloc[0])
    return TippingPoint(
        table=table,
        conclusion_mar=base,
        tipping_below=_crossing(table, -1, base),
        tipping_above=_crossing(table, 1, base),
        delta_arm=delta_arm,
        outcome_sd=imputations.outcome_sd,
        alpha=alpha,
        m=imputations.m,
    )


def plot_tipping_point(tp: TippingPoint, *, title: str = "") -> Figure:
    """Pooled estimate and (1 - α) interval against δ, with the tipping point(s) marked.

    Drawn with the house style of :mod:`trialkit.plotting`; write it with
    :func:`trialkit.plotting.write_figure`.
    """
    from trialkit.plotting import OKABE_ITO, new_figure, style

    t = tp.table
    with style():
        fig = new_figure(5.5, 3.4)
        ax = fig.add_subplot(1, 1, 1)
        ax.fill_between(
            t["delta"],
            t["conf_low"],
            t["conf_high"],
            color=OKABE_ITO["sky_blue"],
            alpha=0.35,
            label=f"{100 * (1 - tp.alpha):g}% interval",
        )
        ax.plot(
            t["delta"], t["estimate"], marker="o", color=OKABE_ITO["blue"], label="pooled estimate"
        )
        ax.axhline(0.0, color=OKABE_ITO["black"], linewidth=0.8)
        for x in (tp.tipping_below, tp.tipping_above):
            if x is not None:
                ax.axvline(x, color=OKABE_ITO["vermillion"], linestyle="--", linewidth=1.0)
                ax.annotate(
                    f"tipping point {x:.2g} SD",
                    (x, ax.get_ylim()[1]),
                    fontsize=7,
                    ha="center",
                    va="top",
                    color=OKABE_ITO["vermillion"],
                )
        ax.set_xlabel(f"δ: shift of the imputed outcomes, {tp.delta_arm} arm (outcome SD units)")
        ax.set_ylabel("treatment effect")
        ax.set_title(title or f"Tipping-point analysis (m = {tp.m})")
        ax.grid(True)
        ax.legend(loc="best", frameon=False)
    return fig
