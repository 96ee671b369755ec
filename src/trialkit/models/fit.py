"""``trialkit.fit``: one entry point for every outcome analysis.

:func:`fit` builds the :class:`~trialkit.models.design.ModelFrame` (complete
cases, coding, nested cluster ids) and dispatches on ``method`` and ``family`` (names from :mod:`trialkit.methods`):

============================  ==========================================================
``method="lmm"``, gaussian    linear mixed model, REML, Kenward–Roger df (``models.lmm``)
``method="lmm"``, binomial    random-intercept logistic GLMM (``models.glmm``)
``method="ols-cr2"``          OLS with CR2 cluster-robust variance (``models.robust``)
``method="cluster-level"``    cluster-level analyses (``models.cluster_level``)
``method="gee"``              GEE with small-sample corrected variance (``models.gee``)
============================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from trialkit.errors import ModelSpecError
from trialkit.methods import check_choice, check_family, check_fit_method, check_method_options
from trialkit.models.design import build_model_frame
from trialkit.models.results import FitResult

__all__ = ["fit"]

_OPTIONS = ("corr", "effect_sizes", "kind", "nagq", "vcov")


def fit(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str,
    covariates: Sequence[str] = (),
    clusters: Sequence[str] = (),
    family: str = "gaussian",
    df_method: str | None = None,
    method: str = "lmm",
    reml: bool = True,
    treatment_level: object | None = None,
    alpha: float = 0.05,
    **options: Any,
) -> FitResult:
    """Fit the outcome analysis of a cluster randomised trial.

    Parameters
    ----------
    data : DataFrame
        One row per individual.
    outcome, treatment : str
        Column names.  The treatment is 0/1, or two labels with
        ``treatment_level`` naming the treated arm.
    covariates : sequence of str
        Adjustment covariates; text/categorical columns are dummy-coded with the
        first (sorted) level as reference.
    clusters : sequence of str
        Cluster columns from the top of the nesting, e.g. ``["la", "keyworker"]``.
    family : {"gaussian", "binomial"}
    df_method : str, optional
        Mixed models only. Gaussian: ``"kenward-roger"`` (default), ``"satterthwaite"``,
        ``"between-within"``, ``"containment"`` (nlme), ``"residual"`` or ``"z"``;
        binomial GLMM: ``"between-within"`` (default), ``"residual"`` or ``"z"``
        (:data:`trialkit.methods.DF_METHODS`, :data:`~trialkit.methods.GLMM_DF_METHODS`).
    method : {"lmm", "ols-cr2", "cluster-level", "gee"}
    reml : bool
        REML (default) or ML for linear mixed models; with ML and Kenward–Roger or
        Satterthwaite df the inference uses the REML refit (as pbkrtest).
    treatment_level : optional
        Treated label when the treatment column is not 0/1.
    alpha : float
        1 - confidence level.
    **options
        Passed to the method: ``kind`` (cluster-level), ``corr``/``vcov`` (GEE),
        ``nagq`` (GLMM), ``vcov`` (OLS; for the LMM an additional cluster-robust
        covariance reported in ``LmmResult.robust``), ``effect_sizes`` (LMM).

    Returns
    -------
    FitResult
        The subclass of the model family: ``LmmResult``, ``GlmmResult``,
        ``RobustOlsResult``, ``ClusterLevelResult`` or ``GeeResult``.

    Raises
    ------
    UsageError
        An option the method does not use (``df_method``, ``kind``, ``corr``, ``nagq``,
        ``vcov``, ``reml=False``, a binomial family) was given (code
        ``fit.option_unused``, exit code 2).
    ModelSpecError
        Invalid input (exit code 1): unknown columns (``fit.column_missing``), bad
        treatment coding (``fit.treatment_levels``), no complete rows, rank-deficient
        design, unknown method/family/df method/option.
    FitError
        A valid model could not be fitted (exit code 3).

    Examples
    --------
    >>> from trialkit.simulate import simulate_trial  # doctest: +SKIP
    >>> res = fit(df, outcome="score", treatment="arm", treatment_level="intervention",
    ...           covariates=["baseline"], clusters=["la", "keyworker"])  # doctest: +SKIP
    >>> res.treatment.estimate, res.treatment.df  # doctest: +SKIP
    """
    check_fit_method(method)
    check_family(family)
    if not 0.0 < alpha < 1.0:
        raise ModelSpecError.from_problem(
            path="alpha",
            code="fit.alpha",
            message=f"alpha must be in (0, 1); got {alpha!r}.",
            hint="e.g. 0.05.",
        )
    for name in sorted(options):
        check_choice(
            name,
            _OPTIONS,
            path="options",
            code="fit.option",
            hint="check the spelling of the keyword arguments.",
        )
    given = [*options]
    given += ["df_method"] if df_method is not None else []
    given += ["reml"] if not reml else []
    given += ["family"] if family != "gaussian" else []
    check_method_options(method, family, given)
    frame = build_model_frame(
        data,
        outcome=outcome,
        treatment=treatment,
        covariates=covariates,
        clusters=clusters,
        treatment_level=treatment_level,
    )
    if method == "lmm" and family == "gaussian":
        from trialkit.models.lmm import fit_lmm_frame

        return fit_lmm_frame(
            frame,
            df_method=df_method or "kenward-roger",
            reml=reml,
            alpha=alpha,
            effect_sizes=bool(options.pop("effect_sizes", True)),
            vcov=options.pop("vcov", None),
        )
    if method == "lmm":
        from trialkit.models.glmm import fit_glmm

        return fit_glmm(
            frame,
            df_method=df_method or "between-within",
            nagq=int(options.pop("nagq", 1)),
            alpha=alpha,
        )
    if method == "ols-cr2":
        from trialkit.models.robust import fit_ols_cr

        return fit_ols_cr(frame, vcov=options.pop("vcov", "CR2"), alpha=alpha)
    if method == "cluster-level":
        from trialkit.models.cluster_level import fit_cluster_level

        return fit_cluster_level(frame, kind=options.pop("kind", "two-stage"), alpha=alpha)
    from trialkit.models.gee import fit_gee

    return fit_gee(
        frame,
        corr=options.pop("corr", "exchangeable"),
        vcov=options.pop("vcov", "CR2"),
        family=family,
        alpha=alpha,
    )
