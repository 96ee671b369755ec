"""Cluster-level analyses of a cluster randomised trial (Hayes & Moulton 2017, ch. 9–10).

Each top-level cluster is reduced to one summary and the summaries are compared between arms
with a t-test, so inference rests on the number of clusters, not the number of people.
"""

from __future__ import annotations

import numpy as np

from trialkit.errors import ModelSpecError
from trialkit.methods import check_cluster_level_kind
from trialkit.models.design import ModelFrame
from trialkit.models.inference import t_term
from trialkit.models.results import ClusterLevelResult, Term
from trialkit.models.robust import frame_parts

__all__ = ["fit_cluster_level"]


def _cluster_means(v: np.ndarray, codes: np.ndarray, J: int) -> np.ndarray:
    sizes = np.bincount(codes, minlength=J)
    if v.ndim == 1:
        return np.bincount(codes, weights=v, minlength=J) / sizes
    return np.column_stack(
        [np.bincount(codes, weights=v[:, k], minlength=J) / sizes for k in range(v.shape[1])]
    )


def _ttest(means: np.ndarray, arm: np.ndarray, welch: bool) -> tuple[float, float, float]:
    """Difference treated − control, its SE and df (pooled: J − 2; Welch–Satterthwaite)."""
    a, b = means[arm == 1], means[arm == 0]
    n1, n0 = len(a), len(b)
    v1, v0 = float(np.var(a, ddof=1)), float(np.var(b, ddof=1))
    diff = float(np.mean(a) - np.mean(b))
    if welch:
        s1, s0 = v1 / n1, v0 / n0
        se = float(np.sqrt(s1 + s0))
        df = (s1 + s0) ** 2 / (s1**2 / (n1 - 1) + s0**2 / (n0 - 1))
    else:
        sp = ((n1 - 1) * v1 + (n0 - 1) * v0) / (n1 + n0 - 2)
        se = float(np.sqrt(sp * (1 / n1 + 1 / n0)))
        df = float(n1 + n0 - 2)
    return diff, se, df


def fit_cluster_level(
    frame: ModelFrame,
    *,
    kind: str = "means",
    alpha: float = 0.05,
    welch: bool = False,
) -> ClusterLevelResult:
    """Cluster-level analysis: t-test on cluster means, two-stage, or cluster-level ANCOVA.

    Parameters
    ----------
    frame : ModelFrame
        The model frame; the top cluster level is the unit of randomisation.
    kind : {"means", "two-stage", "ancova"}
        ``"means"``: two-sample t-test on the cluster means of the outcome (covariates
        ignored). ``"two-stage"``: regress the outcome on the covariates ignoring treatment
        (individual-level OLS), average the residuals by cluster and t-test them.
        ``"ancova"``: OLS of the cluster means of the outcome on treatment and the cluster
        means of the covariates (unweighted).
    alpha : float
        1 − confidence level.
    welch : bool
        Welch's unequal-variance t-test (``"means"`` and ``"two-stage"`` only).

    Returns
    -------
    ClusterLevelResult
        ``method="cluster-level"``; ``kind`` records the variant and
        ``cluster_summaries`` the per-cluster values.

    Notes
    -----
    Hayes & Moulton (2017), sections 9.2 and 10.3. Pooled t-test:
    t = (ȳ₁ − ȳ₀)/[s_p √(1/J₁ + 1/J₀)], df = J − 2 (Welch: Satterthwaite df).
    Two-stage: residuals e = y − X₋ₜβ̂ (X₋ₜ = design without the treatment column), cluster
    means ē_j, then the t-test on ē_j with df = J − 2 − g, where g is the number of
    cluster-level covariate columns (Hayes & Moulton recommend removing one df per
    cluster-level covariate). ANCOVA: ȳ_j = γ₀ + δ T_j + γ'x̄_j + ε_j by OLS, df = J − p.
    """
    check_cluster_level_kind(kind)
    fp = frame_parts(frame)
    X, y, ti = fp["X"], fp["y"], fp["treatment_index"]
    codes = fp["clusters"][0]
    J = int(codes.max()) + 1
    if not fp["cluster_level"][ti]:
        raise ModelSpecError.from_problem(
            path="treatment",
            code="fit.cluster_level.treatment_varies",
            message=(
                f"a cluster-level analysis needs treatment constant within each "
                f"{fp['cluster_names'][0]}; got clusters with both arms."
            ),
            hint="Use method='lmm' or 'ols-cr2' when treatment varies within clusters.",
        )
    arm = np.round(_cluster_means(X[:, ti], codes, J)).astype(int)
    n1, n0 = int(arm.sum()), int(J - arm.sum())
    if n1 < 2 or n0 < 2:
        raise ModelSpecError.from_problem(
            path="treatment",
            code="fit.cluster_level.too_few_clusters",
            message=f"each arm needs at least 2 clusters; got {n1} treated and {n0} control.",
            hint="A cluster-level analysis cannot estimate the between-cluster variance.",
        )
    others = [k for k in range(X.shape[1]) if k != ti]
    cl_flags = fp["cluster_level"]
    g = int(sum(1 for k in others if k != 0 and cl_flags[k]))
    label = fp["names"][ti]
    terms: list[Term]
    if kind == "means":
        summ = _cluster_means(y, codes, J)
        est, se, df = _ttest(summ, arm, welch)
        tr = t_term(label, est, se, df, alpha, "welch" if welch else "clusters-minus-2")
        terms = [tr]
    elif kind == "two-stage":
        X0 = X[:, others]
        b0, *_ = np.linalg.lstsq(X0, y, rcond=None)
        summ = _cluster_means(y - X0 @ b0, codes, J)
        est, se, df = _ttest(summ, arm, welch)
        if not welch:
            df = float(J - 2 - g)
        tr = t_term(
            label,
            est,
            se,
            df,
            alpha,
            "welch" if welch else "clusters-minus-2-minus-cluster-covariates",
        )
        terms = [tr]
    else:
        Xm = _cluster_means(X, codes, J)
        summ = _cluster_means(y, codes, J)
        bm, *_ = np.linalg.lstsq(Xm, summ, rcond=None)
        p = Xm.shape[1]
        if J - p < 1:
            raise ModelSpecError.from_problem(
                path="covariates",
                code="fit.cluster_level.too_many_covariates",
                message=f"cluster-level ANCOVA needs more clusters ({J}) than columns ({p}).",
                hint="Use fewer covariates or the two-stage analysis.",
            )
        r = summ - Xm @ bm
        s2 = float(r @ r) / (J - p)
        cov = s2 * np.linalg.inv(Xm.T @ Xm)
        terms = [
            t_term(nm, bm[k], float(np.sqrt(cov[k, k])), float(J - p), alpha, "clusters-minus-p")
            for k, nm in enumerate(fp["names"])
        ]
        tr = terms[ti]
    warnings = []
    if J < 10:
        warnings.append(f"only {J} clusters")
    return ClusterLevelResult(
        method="cluster-level",
        family="gaussian",
        outcome=fp["outcome"],
        treatment_column=fp["treatment"],
        treatment_term=label,
        treatment=tr,
        fixed_effects=tuple(terms),
        variance_components={},
        icc={},
        df_method=tr.df_method,
        n_obs=int(X.shape[0]),
        n_clusters=fp["n_clusters"],
        n_excluded=fp["n_excluded"],
        exclusions=fp["exclusions"],
        reml=False,
        formula=fp["formula"],
        data_hash=fp["data_hash"],
        warnings=tuple(warnings),
        kind=kind,
        welch=bool(welch),
        n_clusters_treated=n1,
        n_clusters_control=n0,
        cluster_summaries=tuple(float(v) for v in summ),
        cluster_arm=tuple(int(a) for a in arm),
    )
