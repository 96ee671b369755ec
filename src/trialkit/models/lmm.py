"""Linear mixed model with nested random intercepts: from a ModelFrame to a FitResult.

The engine (:mod:`trialkit.models._engine`) fits the model by REML (or ML);
this module turns the fit into a :class:`~trialkit.models.result.FitResult`
with small-sample inference (:mod:`trialkit.models.dfmethods`), variance
components, ICCs with intervals and Hedges' g (:mod:`trialkit.models.effect_sizes`).

The result stays data-free but keeps, in ``extra["inference"]``, the small
matrices every df method needs (``β̂``, ``Φ``, ``X'Σ⁻¹G_rΣ⁻¹X``, ...), so that
:func:`with_df_method` and :func:`contrast` work on a result alone, also after
``FitResult.from_dict``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from trialkit.errors import (
    ConvergenceWarning,
    FewClustersWarning,
    FitError,
    SingularFitWarning,
)
from trialkit.models import _engine
from trialkit.models.design import ModelFrame
from trialkit.models.dfmethods import (
    _W,
    ContrastTest,
    Inference,
    _pinv_safe,
    between_within_df,
    check_df_method,
    kr_adjusted_vcov,
    test_contrast,
)
from trialkit.models.effect_sizes import hedges_g, icc_intervals
from trialkit.models.result import FitResult, Term

__all__ = ["contrast", "fit_lmm_frame", "with_df_method"]

SINGULAR_TOL = 1e-4  # lme4's isSingular() tolerance on θ


def _terms(inf: Inference, names: Sequence[str], df_method: str, alpha: float) -> list[Term]:
    """Inference for every coefficient (vectorised over coefficients)."""
    p = inf.p
    beta = inf.beta
    Phi = inf.Phi
    v = np.diag(Phi).copy()
    if df_method == "kenward-roger":
        PhiA = kr_adjusted_vcov(inf)
        W = _W(inf)
        # g_rj = (Φ P_r Φ)_jj
        g = np.einsum("ij,rjk,ki->ri", Phi, inf.P, Phi)
        df = 2.0 * v**2 / np.einsum("rj,rs,sj->j", g, W, g)
        var = np.diag(PhiA).copy()
    elif df_method == "satterthwaite":
        g = np.einsum("ij,rjk,ki->ri", Phi, inf.P, Phi)
        gvp = np.einsum("ra,rj->aj", inf.J_vp, g)
        A = 2.0 * _pinv_safe(inf.H_vp)  # pseudo-inverse if the Hessian is singular
        df = 2.0 * v**2 / np.einsum("aj,ab,bj->j", gvp, A, gvp)
        var = v
    elif df_method == "between-within":
        df = np.array([between_within_df(inf, np.eye(p)[j]) for j in range(p)])
        var = v
    else:
        df = np.full(p, float(inf.n - p))
        var = v
    return _t_terms(names, beta, np.sqrt(var), df, alpha, df_method)


def _t_terms(
    names: Sequence[str],
    beta: np.ndarray,
    se: np.ndarray,
    df: np.ndarray,
    alpha: float,
    df_method: str,
) -> list[Term]:
    """t statistics, two-sided p-values and (1 − α) intervals, vectorised over coefficients."""
    t = beta / se
    pv = 2.0 * stats.t.sf(np.abs(t), df)
    q = stats.t.ppf(1.0 - alpha / 2.0, df)
    return [
        Term(
            term=names[j],
            estimate=float(beta[j]),
            std_error=float(se[j]),
            df=float(df[j]),
            statistic=float(t[j]),
            p_value=float(pv[j]),
            conf_low=float(beta[j] - q[j] * se[j]),
            conf_high=float(beta[j] + q[j] * se[j]),
            df_method=df_method,
            distribution=f"t({df[j]:.6g})",
        )
        for j in range(len(names))
    ]


def fit_lmm_frame(
    frame: ModelFrame,
    *,
    df_method: str = "kenward-roger",
    reml: bool = True,
    alpha: float = 0.05,
    effect_sizes: bool = True,
    vcov: str | None = None,
) -> FitResult:
    """Fit the linear mixed model for ``frame`` and return a :class:`FitResult`.

    Parameters
    ----------
    frame : ModelFrame
        From :func:`trialkit.models.design.build_model_frame`; needs at least one
        cluster level.
    df_method : {"kenward-roger", "satterthwaite", "between-within", "residual"}
    reml : bool
        REML (default) or maximum likelihood.
    alpha : float
        1 - confidence level of the intervals.
    effect_sizes : bool
        Also fit the unconditional model and report Hedges' g in ``extra``.
    vcov : {"CR0", "CR1", "CR1S", "CR2", "CR3"}, optional
        Also compute the cluster-robust covariance of the fixed effects (working
        model = the fitted marginal covariance, as ``clubSandwich::vcovCR`` on an
        ``lmer`` fit) with Satterthwaite df (Bell & McCaffrey 2002; Pustejovsky &
        Tipton 2018), reported in ``extra["robust"]`` (term by term).

    Notes
    -----
    Formulas and sources: ``docs/methods-analysis.md`` and the module docstrings
    of :mod:`~trialkit.models._engine`, :mod:`~trialkit.models.dfmethods` and
    :mod:`~trialkit.models.effect_sizes`.
    """
    check_df_method(df_method)
    if not frame.clusters:
        raise FitError.from_problem(
            path="clusters",
            code="fit.no_clusters",
            message="a mixed model must have at least one cluster column; got none.",
            hint="pass clusters=[...] (top level first) or use method='ols-cr2'.",
        )
    lay = _engine.make_layout(frame.cluster_codes)
    try:
        fitted = _engine.fit_lmm(lay, frame.X, frame.y, reml=reml)
    except np.linalg.LinAlgError as err:
        raise FitError.from_problem(
            path="model",
            code="fit.numerical",
            message=f"the mixed model could not be fitted: {err}.",
            hint="check for constant outcomes or extreme values.",
        ) from err
    inf = Inference.from_fitted(fitted, n_top=lay.C, cluster_level=frame.cluster_level_columns)
    terms = _terms(inf, frame.column_names, df_method, alpha)
    theta = fitted.theta[0]
    psi = fitted.psi[0]
    singular = bool(np.any(theta < SINGULAR_TOL))
    converged = bool(fitted.converged[0])
    msgs: list[str] = []
    if singular:
        zero = [c for c, t in zip(frame.clusters, theta, strict=True) if t < SINGULAR_TOL]
        msg = (
            "singular fit: the variance of "
            + ", ".join(zero)
            + " is estimated at (or next to) zero; fixed effects are still valid"
        )
        msgs.append(msg)
        warnings.warn(msg, SingularFitWarning, stacklevel=3)
    if not converged:
        msg = "the REML optimiser did not converge"
        msgs.append(msg)
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    for upper, lower, name_u, name_l in zip(
        frame.cluster_codes[:-1],
        frame.cluster_codes[1:],
        frame.clusters[:-1],
        frame.clusters[1:],
        strict=True,
    ):
        if len(np.unique(lower)) == len(np.unique(upper)):
            msg = (
                f"every {name_u} has a single {name_l}: the two variance components are not "
                "separately identifiable (only their sum is); consider dropping one level"
            )
            msgs.append(msg)
            warnings.warn(msg, SingularFitWarning, stacklevel=3)
    if df_method == "residual":
        msg = (
            f"residual df (n - p = {frame.n_obs - frame.X.shape[1]}) ignore clustering and "
            "inflate type I error with few clusters; prefer kenward-roger"
        )
        msgs.append(msg)
        warnings.warn(msg, FewClustersWarning, stacklevel=3)
    for e in frame.exclusions:
        msgs.append(f"excluded {e.n_rows} row(s): {e.reason}")

    vc = {c: float(psi[l]) for l, c in enumerate(frame.clusters)}
    vc["residual"] = float(psi[-1])
    total = float(psi.sum())
    icc = {c: float(psi[l] / total) for l, c in enumerate(frame.clusters)}
    W = _W(inf)
    extra: dict[str, Any] = {
        "theta": [float(t) for t in theta],
        "iterations": int(fitted.iterations[0]),
        "treatment_labels": list(frame.treatment_labels),
        "icc_intervals": icc_intervals(psi, W, frame.clusters, alpha=alpha),
        "alpha": alpha,
        "inference": inf.to_dict(),
        "column_names": list(frame.column_names),
    }
    if effect_sizes:
        extra["effect_sizes"] = _effect_sizes(
            frame, lay, psi, terms[frame.treatment_index], reml, alpha
        )
    if vcov is not None:
        extra["robust"] = _robust_terms(frame, fitted.beta[0], psi, vcov, alpha)
    tr = terms[frame.treatment_index]
    return FitResult(
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
        extra=extra,
    )


def _robust_terms(
    frame: ModelFrame, beta: np.ndarray, psi: np.ndarray, vcov: str, alpha: float
) -> dict[str, Any]:
    """Cluster-robust (CR) inference for the LMM fixed effects via ``analysis.robust``."""
    from trialkit.models.robust import nested_intercept_blocks, vcov_cr_gls

    blocks = nested_intercept_blocks(frame.cluster_codes, psi[:-1].tolist(), float(psi[-1]))
    crv = vcov_cr_gls(frame.X, frame.y - frame.X @ beta, frame.cluster_codes[0], blocks, type=vcov)
    p = frame.X.shape[1]
    se = np.sqrt(np.diag(crv.vcov))
    df = np.array([crv.satterthwaite_df(np.eye(p)[j]) for j in range(p)])
    name = f"{vcov.lower()}-satterthwaite"
    terms = [t.to_dict() for t in _t_terms(frame.column_names, beta, se, df, alpha, name)]
    return {"vcov_type": vcov, "terms": terms, "vcov": crv.vcov.tolist()}


def _effect_sizes(
    frame: ModelFrame, lay: _engine.Layout, psi: np.ndarray, tr: Term, reml: bool, alpha: float
) -> dict[str, Any]:
    top = frame.cluster_codes[0]
    sizes = np.bincount(top, minlength=lay.C).astype(float)
    tcol = frame.X[:, frame.treatment_index]
    tmean = np.bincount(top, weights=tcol, minlength=lay.C) / sizes
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
        unc = _engine.fit_lmm(lay, np.ones((frame.n_obs, 1)), frame.y, reml=reml)
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
            **{c: float(upsi[l]) for l, c in enumerate(frame.clusters)},
            "residual": float(upsi[-1]),
        }
    except np.linalg.LinAlgError:  # pragma: no cover - degenerate outcome
        out["unconditional"] = None
    return out


def _inference_of(result: FitResult) -> Inference:
    d = result.extra.get("inference") if result.extra else None
    if result.method != "lmm" or d is None:
        raise FitError.from_problem(
            path="result",
            code="fit.no_inference",
            message=f"this needs a linear mixed model result with stored inference; got method {result.method!r}.",
            hint="refit with trialkit.fit(..., method='lmm').",
        )
    return Inference.from_dict(d)


def with_df_method(result: FitResult, df_method: str) -> FitResult:
    """The same fit with another denominator-df method (a new result; no refit)."""
    check_df_method(df_method)
    inf = _inference_of(result)
    names = result.extra.get("column_names") or [t.term for t in result.fixed_effects]
    alpha = float(result.extra.get("alpha", 0.05))
    terms = _terms(inf, names, df_method, alpha)
    idx = [t.term for t in result.fixed_effects].index(result.treatment_term)
    return dataclasses.replace(
        result, fixed_effects=tuple(terms), treatment=terms[idx], df_method=df_method
    )


def contrast(result: FitResult, L: Any, df_method: str | None = None) -> ContrastTest:
    """Test ``H0: Lβ = 0`` on a linear mixed model result.

    ``L`` is a vector (one contrast: t test) or a matrix (several rows: F test;
    Kenward–Roger uses the full KR F approximation).  Columns follow
    ``result.fixed_effects``.  ``df_method`` defaults to the result's.
    """
    inf = _inference_of(result)
    return test_contrast(inf, L, df_method or result.df_method)
