"""Linear mixed model with nested random intercepts: from a ModelFrame to a FitResult.

The engine (:mod:`trialkit.models._engine`) fits the model by REML (or ML);
this module turns the fit into a :class:`~trialkit.models.results.LmmResult`
with small-sample inference (:mod:`trialkit.models.dfmethods`), variance
components, ICCs with intervals and Hedges' g (:mod:`trialkit.models.effect_sizes`).

The result stays data-free but keeps, in ``LmmResult.inference``, the small
matrices every df method needs (``β̂``, ``Φ``, ``X'Σ⁻¹G_rΣ⁻¹X``, ...), so that
:meth:`~trialkit.models.results.LmmResult.with_df_method` and
:meth:`~trialkit.models.results.LmmResult.contrast` work on a result alone, also
after ``FitResult.from_dict``.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

import trialkit.models._engine as _engine
from trialkit.errors import (
    ConvergenceWarning,
    FewClustersWarning,
    FitError,
    ModelSpecError,
    SingularFitWarning,
)
from trialkit.methods import check_df_method
from trialkit.models.design import ModelFrame
from trialkit.models.dfmethods import (
    _W,
    ContrastTest,
    Inference,
    coefficient_terms,
    column_strata,
)
from trialkit.models.effect_sizes import hedges_g, icc_intervals
from trialkit.models.inference import t_terms
from trialkit.models.results import (
    DeferredMapping,
    FitResult,
    LmmResult,
    RobustInference,
    Term,
)

__all__ = [
    "ResponseFit",
    "contrast",
    "fit_lmm_frame",
    "fit_lmm_responses",
    "fit_messages",
    "with_df_method",
]

SINGULAR_TOL = 1e-4  # lme4's isSingular() tolerance on θ
#: df methods whose inference needs the REML fit: with ``reml=False`` the model is refitted
#: by REML for them (pbkrtest's ``vcovAdj``/``KRmodcomp`` do the same with an ML ``lmer`` fit).
_REML_DF_METHODS = ("kenward-roger", "satterthwaite")


def fit_lmm_frame(
    frame: ModelFrame,
    *,
    df_method: str = "kenward-roger",
    reml: bool = True,
    alpha: float = 0.05,
    effect_sizes: bool = True,
    vcov: str | None = None,
) -> LmmResult:
    """Fit the linear mixed model for ``frame`` and return an :class:`LmmResult`.

    Parameters
    ----------
    frame : ModelFrame
        From :func:`trialkit.models.design.build_model_frame`; needs at least one
        cluster level.
    df_method : {"kenward-roger", "satterthwaite", "between-within", "containment", "residual", "z"}
    reml : bool
        REML (default) or maximum likelihood.  With ML and Kenward–Roger or
        Satterthwaite df the fixed effects and their inference come from a REML
        refit (``inference_source="reml-refit"``), as pbkrtest does for an ML
        ``lmer`` fit; the log-likelihood, variance components and θ stay those
        of the ML fit.
    alpha : float
        1 - confidence level of the intervals.
    effect_sizes : bool
        Also fit the unconditional model and report Hedges' g in ``effect_sizes``.
    vcov : {"CR0", "CR1", "CR1S", "CR2", "CR3"}, optional
        Also compute the cluster-robust covariance of the fixed effects (working
        model = the fitted marginal covariance, as ``clubSandwich::vcovCR`` on an
        ``lmer`` fit) with Satterthwaite df (Bell & McCaffrey 2002; Pustejovsky &
        Tipton 2018), reported in ``robust`` (term by term).

    Notes
    -----
    Formulas and sources: ``docs/methods-analysis.md`` and the module docstrings
    of :mod:`~trialkit.models._engine`, :mod:`~trialkit.models.dfmethods` and
    :mod:`~trialkit.models.effect_sizes`.
    """
    check_df_method(df_method)
    if not frame.clusters:
        raise ModelSpecError.from_problem(
            path="clusters",
            code="fit.no_clusters",
            message="a mixed model must have at least one cluster column; got none.",
            hint="pass clusters=[...] (top level first) or use method='ols-cr2'.",
        )
    lay = _engine.make_layout(frame.cluster_codes)
    st = _engine.make_stats(lay, frame.X, frame.y)  # the one pass over the rows
    fitted = _fit_or_fail(lay, st, reml=reml)
    refit = not reml and df_method in _REML_DF_METHODS
    inf_fit = _fit_or_fail(lay, st, reml=True) if refit else fitted
    inf = Inference.from_fitted(
        inf_fit,
        n_top=lay.C,
        cluster_level=frame.cluster_level_columns,
        stratum=column_strata(
            frame.X, frame.cluster_codes, within=_engine.within_sums_of_squares(lay, st)[:, :-1]
        ),
        n_groups=list(frame.n_clusters),
    )
    terms = coefficient_terms(inf, frame.column_names, df_method, alpha)
    theta = fitted.theta[0]
    psi = fitted.psi[0]
    singular = bool(np.any(theta < SINGULAR_TOL))
    converged = bool(fitted.converged[0])
    msgs: list[str] = []
    for msg, category in fit_messages(frame, theta, converged, df_method, refit):
        msgs.append(msg)
        if category is not None:
            warnings.warn(msg, category, stacklevel=3)

    vc = {c: float(psi[l]) for l, c in enumerate(frame.clusters)}
    vc["residual"] = float(psi[-1])
    total = float(psi.sum())
    icc = {c: float(psi[l] / total) for l, c in enumerate(frame.clusters)}
    tr = terms[frame.treatment_index]
    return LmmResult(
        method="lmm",
        family="gaussian",
        outcome=frame.outcome,
        treatment_column=frame.treatment,
        treatment_term=frame.treatment_term,
        treatment=tr,
        fixed_effects=tuple(terms),
        variance_components=vc,
        icc=icc,
        df_method=df_method,
        n_obs=frame.n_obs,
        n_clusters=frame.n_clusters_by_name,
        n_excluded=frame.n_excluded,
        exclusions=frame.exclusions,
        singular=singular,
        converged=converged,
        loglik=float(fitted.loglik[0]),
        reml=reml,
        formula=frame.formula,
        data_hash=frame.data_hash,
        warnings=tuple(msgs),
        theta=tuple(float(t) for t in theta),
        iterations=int(fitted.iterations[0]),
        treatment_labels=tuple(frame.treatment_labels),
        icc_intervals=icc_intervals(psi, _W(inf), frame.clusters, alpha=alpha),
        alpha=alpha,
        inference=inf,
        column_names=tuple(frame.column_names),
        effect_sizes=_deferred_effect_sizes(frame, lay, st, psi, tr, reml, alpha)
        if effect_sizes
        else None,
        robust=None if vcov is None else _robust_terms(frame, fitted.beta[0], psi, vcov, alpha),
        inference_source="reml-refit" if refit else "fit",
    )


def fit_messages(
    frame: ModelFrame, theta: np.ndarray, converged: bool, df_method: str, refit: bool
) -> list[tuple[str, type[Warning] | None]]:
    """The notes of one fit (singular fit, no convergence, ...) and the warning each raises."""
    out: list[tuple[str, type[Warning] | None]] = []
    if np.any(theta < SINGULAR_TOL):
        zero = [c for c, t in zip(frame.clusters, theta, strict=True) if t < SINGULAR_TOL]
        out.append(
            (
                "singular fit: the variance of "
                + ", ".join(zero)
                + " is estimated at (or next to) zero; fixed effects are still valid",
                SingularFitWarning,
            )
        )
    if not converged:
        out.append(("the REML optimiser did not converge", ConvergenceWarning))
    for n_upper, n_lower, name_u, name_l in zip(
        frame.n_clusters[:-1],
        frame.n_clusters[1:],
        frame.clusters[:-1],
        frame.clusters[1:],
        strict=True,
    ):
        if n_lower == n_upper:
            out.append(
                (
                    f"every {name_u} has a single {name_l}: the two variance components are not "
                    "separately identifiable (only their sum is); consider dropping one level",
                    SingularFitWarning,
                )
            )
    if df_method == "residual":
        out.append(
            (
                f"residual df (n - p = {frame.n_obs - frame.X.shape[1]}) ignore clustering and "
                "inflate type I error with few clusters; prefer kenward-roger",
                FewClustersWarning,
            )
        )
    if refit:
        out.append(
            (
                f"fitted by ML (log-likelihood and variance components of the ML fit); the fixed "
                f"effects and their {df_method} inference are from the REML refit, as pbkrtest "
                "computes Kenward-Roger for an ML fit",
                None,
            )
        )
    out += [(f"excluded {e.n_rows} row(s): {e.reason}", None) for e in frame.exclusions]
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseFit:
    """One response of a batched fit (:func:`fit_lmm_responses`): what pooling needs.

    The same attributes as a :class:`~trialkit.models.results.FitResult` of the model
    fitted to that response alone (fixed effects, variance components, ICCs, singular,
    converged, warnings).
    """

    fixed_effects: tuple[Term, ...]
    variance_components: dict[str, float]
    icc: dict[str, float]
    singular: bool
    converged: bool
    warnings: tuple[str, ...]


def fit_lmm_responses(
    frame: ModelFrame, Y: np.ndarray, *, df_method: str = "kenward-roger", alpha: float = 0.05
) -> list[ResponseFit]:
    """REML fits of ``R`` responses sharing ``frame``'s design and clusters, in one engine call.

    ``Y`` has shape (R, n) (rows as ``frame.y``), e.g. the ``m`` completed outcomes of
    multiple imputation; each :class:`ResponseFit` equals the corresponding part of
    :func:`fit_lmm_frame` on ``frame.with_outcome(Y[r])`` (the engine runs the
    replicates in lock step with per-replicate line searches).
    """
    check_df_method(df_method)
    Y = np.atleast_2d(np.asarray(Y, dtype=float))
    lay = _engine.make_layout(frame.cluster_codes)
    st = _engine.make_stats(lay, frame.X, Y)
    fitted = _fit_or_fail(lay, st, reml=True)
    stratum = column_strata(
        frame.X, frame.cluster_codes, within=_engine.within_sums_of_squares(lay, st)[:, :-1]
    )
    out = []
    for r in range(Y.shape[0]):
        inf = Inference.from_fitted(
            fitted,
            n_top=lay.C,
            cluster_level=frame.cluster_level_columns,
            r=r,
            stratum=stratum,
            n_groups=list(frame.n_clusters),
        )
        theta, psi = fitted.theta[r], fitted.psi[r]
        converged = bool(fitted.converged[r])
        total = float(psi.sum())
        vc = {c: float(psi[l]) for l, c in enumerate(frame.clusters)}
        vc["residual"] = float(psi[-1])
        out.append(
            ResponseFit(
                fixed_effects=tuple(coefficient_terms(inf, frame.column_names, df_method, alpha)),
                variance_components=vc,
                icc={c: float(psi[l] / total) for l, c in enumerate(frame.clusters)},
                singular=bool(np.any(theta < SINGULAR_TOL)),
                converged=converged,
                warnings=tuple(
                    m for m, _ in fit_messages(frame, theta, converged, df_method, False)
                ),
            )
        )
    return out


def _fit_or_fail(lay: _engine.Layout, st: _engine.Stats, *, reml: bool) -> Any:
    try:
        return _engine.fit_stats(lay, st, reml=reml)
    except np.linalg.LinAlgError as err:
        raise FitError.from_problem(
            path="model",
            code="fit.numerical",
            message=f"the mixed model could not be fitted: {err}.",
            hint="check for constant outcomes or extreme values.",
        ) from err


def _robust_terms(
    frame: ModelFrame, beta: np.ndarray, psi: np.ndarray, vcov: str, alpha: float
) -> RobustInference:
    """Cluster-robust (CR) inference for the LMM fixed effects via ``models.robust``."""
    from trialkit.models.robust import nested_intercept_blocks, vcov_cr_gls

    blocks = nested_intercept_blocks(frame.cluster_codes, psi[:-1].tolist(), float(psi[-1]))
    crv = vcov_cr_gls(frame.X, frame.y - frame.X @ beta, frame.cluster_codes[0], blocks, type=vcov)
    p = frame.X.shape[1]
    se = np.sqrt(np.diag(crv.vcov))
    df = np.array([crv.satterthwaite_df(np.eye(p)[j]) for j in range(p)])
    name = f"{vcov.lower()}-satterthwaite"
    terms = t_terms(frame.column_names, beta, se, df, alpha, name)
    return RobustInference(
        vcov_type=vcov,
        terms=tuple(terms),
        vcov=tuple(tuple(float(v) for v in row) for row in crv.vcov),
    )


def _deferred_effect_sizes(
    frame: ModelFrame,
    lay: _engine.Layout,
    st: _engine.Stats,
    psi: np.ndarray,
    tr: Term,
    reml: bool,
    alpha: float,
) -> DeferredMapping:
    """:func:`_effect_sizes`, computed when first read.

    It keeps only what is O(groups): the layout without its row index and the
    statistics of the intercept, treatment and outcome columns, not the frame.
    """
    small = dataclasses.replace(lay, lowest=np.empty(0, dtype=np.int64), row_starts=None)
    sub = st.select([0, frame.treatment_index])
    clusters = frame.clusters
    return DeferredMapping(
        lambda: _effect_sizes(clusters, small, sub, psi, tr, reml, alpha, treatment_index=1)
    )


def _effect_sizes(
    clusters: tuple[str, ...],
    lay: _engine.Layout,
    st: _engine.Stats,
    psi: np.ndarray,
    tr: Term,
    reml: bool,
    alpha: float,
    *,
    treatment_index: int,
) -> dict[str, Any]:
    """Hedges' g from the conditional and the unconditional model.

    The unconditional model (intercept and random effects only) is fitted from
    the intercept and outcome columns of the same sufficient statistics: no
    second pass over the rows and no second layout.
    """
    # rows and treatment mean of each top-level cluster, from the sufficient statistics
    sizes = lay.sizes[0]
    tmean = _engine.top_means(lay, st, treatment_index)
    if not np.all((tmean == 0) | (tmean == 1)):
        return {
            "note": "treatment varies within top-level clusters; Hedges' g for CRTs not computed"
        }
    treated = tmean == 1
    out: dict[str, Any] = {
        "conditional": hedges_g(
            tr.estimate,
            float(psi[:-1].sum()),
            float(psi[-1]),
            sizes=sizes,
            treated=treated,
            alpha=alpha,
        )
    }
    try:
        unc = _engine.fit_stats(lay, st.select([0]), reml=reml)
        upsi = unc.psi[0]
        out["unconditional"] = hedges_g(
            tr.estimate,
            float(upsi[:-1].sum()),
            float(upsi[-1]),
            sizes=sizes,
            treated=treated,
            alpha=alpha,
        )
        out["unconditional_variance_components"] = {
            **{c: float(upsi[l]) for l, c in enumerate(clusters)},
            "residual": float(upsi[-1]),
        }
    except np.linalg.LinAlgError:  # pragma: no cover - degenerate outcome
        out["unconditional"] = None
    return out


def _lmm_result(result: FitResult) -> LmmResult:
    if not isinstance(result, LmmResult):
        raise ModelSpecError.from_problem(
            path="result",
            code="fit.no_inference",
            message=(
                "this needs a linear mixed model result with stored inference; "
                f"got method {result.method!r}."
            ),
            hint="refit with trialkit.fit(..., method='lmm').",
        )
    return result


def with_df_method(result: FitResult, df_method: str) -> LmmResult:
    """The same linear mixed model fit with another df method; see :meth:`LmmResult.with_df_method`.

    Raises
    ------
    ModelSpecError
        ``result`` is not a linear mixed model result (``fit.no_inference``) or the
        df method is unknown (``fit.df_method``).
    """
    return _lmm_result(result).with_df_method(df_method)


def contrast(result: FitResult, L: Any, df_method: str | None = None) -> ContrastTest:
    """Test ``H0: Lβ = 0`` on a linear mixed model result; see :meth:`LmmResult.contrast`."""
    return _lmm_result(result).contrast(L, df_method)
