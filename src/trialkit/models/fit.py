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

``missing="multilevel-mi"`` runs the chosen analysis on ``imputations`` completed
datasets from a multilevel imputation model and pools them by Rubin's rules
(``models.multiple_imputation``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from trialkit.errors import ModelSpecError, UsageError
from trialkit.methods import (
    MISSING_DATA_METHODS,
    check_choice,
    check_family,
    check_fit_method,
    check_method_options,
)
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
    missing: str = "complete-case",
    auxiliary: Sequence[str] = (),
    imputations: int | None = None,
    seed: int | None = None,
    delta: float | None = None,
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
    missing : {"complete-case", "multilevel-mi"}
        Complete-case analysis (default), or multilevel multiple imputation of the
        missing outcomes and numeric covariates with random intercepts for the
        ``clusters`` (:func:`trialkit.models.multiple_imputation.fit_imputed`), the
        analysis run on each completed dataset and pooled by Rubin's rules with the
        Barnard–Rubin df (result: ``MiResult``, gaussian outcomes only).
    auxiliary : sequence of str
        ``multilevel-mi`` only: variables in the imputation model but not the analysis
        (the mid-point measurement, predictors of missingness).
    imputations : int, optional
        ``multilevel-mi`` only: number of imputations ``m`` (default 20).
    seed : int, optional
        ``multilevel-mi`` only: seed of the imputation (default 0; same seed, same result).
    delta : float, optional
        ``multilevel-mi`` only: δ-adjustment, the imputed outcomes of the treated arm
        shifted by ``delta`` outcome SDs (missing-not-at-random sensitivity analysis).
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
    check_choice(
        missing,
        MISSING_DATA_METHODS,
        path="missing",
        code="fit.missing",
        hint="complete-case is the default; multilevel-mi imputes.",
    )
    if missing == "multilevel-mi":
        return _fit_multiple_imputation(
            data,
            outcome=outcome,
            treatment=treatment,
            covariates=covariates,
            clusters=clusters,
            family=family,
            df_method=df_method,
            method=method,
            reml=reml,
            treatment_level=treatment_level,
            alpha=alpha,
            auxiliary=auxiliary,
            imputations=20 if imputations is None else imputations,
            seed=0 if seed is None else seed,
            delta=0.0 if delta is None else delta,
            options=options,
        )
    unused = [
        name
        for name, value in (
            ("auxiliary", list(auxiliary) or None),
            ("imputations", imputations),
            ("seed", seed),
            ("delta", delta),
        )
        if value is not None
    ]
    if unused:
        raise UsageError.from_problem(
            path=unused[0],
            code="fit.option_unused",
            message=(
                f"`{unused[0]}` must not be given with missing='complete-case'; got a value, "
                "but it is used only by multiple imputation."
            ),
            hint="add missing='multilevel-mi' (CLI: --impute multilevel), or drop it.",
        )
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


def _fit_multiple_imputation(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str,
    covariates: Sequence[str],
    clusters: Sequence[str],
    family: str,
    df_method: str | None,
    method: str,
    reml: bool,
    treatment_level: object | None,
    alpha: float,
    auxiliary: Sequence[str],
    imputations: int,
    seed: int,
    delta: float,
    options: dict[str, Any],
) -> FitResult:
    """Dispatch ``missing="multilevel-mi"``: each completed dataset goes through :func:`fit`."""
    from trialkit.models.multiple_imputation import BatchedLmm, fit_imputed

    if family != "gaussian":
        raise ModelSpecError.from_problem(
            path="family",
            code="fit.mi_family",
            message=(
                f"multilevel multiple imputation needs a continuous (gaussian) outcome; got "
                f"family {family!r}."
            ),
            hint="analyse binary outcomes complete-case, or impute them with a dedicated model.",
        )
    opts = {"effect_sizes": False, **options} if method == "lmm" else dict(options)

    def analyse(frame: pd.DataFrame) -> FitResult:
        return fit(
            frame,
            outcome=outcome,
            treatment=treatment,
            covariates=covariates,
            clusters=clusters,
            df_method=df_method,
            method=method,
            reml=reml,
            treatment_level=treatment_level,
            alpha=alpha,
            **opts,
        )

    return fit_imputed(
        data,
        outcome=outcome,
        treatment=treatment,
        analyse=analyse,
        covariates=covariates,
        clusters=clusters,
        auxiliary=auxiliary,
        treatment_level=treatment_level,
        imputations=imputations,
        seed=seed,
        delta=delta,
        alpha=alpha,
        batched=_batched_lmm(
            BatchedLmm,
            method=method,
            reml=reml,
            options=options,
            outcome=outcome,
            treatment=treatment,
            covariates=covariates,
            clusters=clusters,
            treatment_level=treatment_level,
            df_method=df_method,
        ),
    )


def _batched_lmm(
    cls: Any,
    *,
    method: str,
    reml: bool,
    options: dict[str, Any],
    outcome: str,
    treatment: str,
    covariates: Sequence[str],
    clusters: Sequence[str],
    treatment_level: object | None,
    df_method: str | None,
) -> Any:
    """The completed-data model for batched fits (a REML LMM without extra options), or None."""
    if method != "lmm" or not reml or not clusters or set(options) - {"effect_sizes"}:
        return None
    return cls(
        outcome=outcome,
        treatment=treatment,
        covariates=tuple(covariates),
        clusters=tuple(clusters),
        treatment_level=treatment_level,
        df_method=df_method or "kenward-roger",
    )
