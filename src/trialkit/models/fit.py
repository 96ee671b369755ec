"""``trialkit.fit``: one entry point for every outcome analysis.

:func:`fit` builds the :class:`~trialkit.models.design.ModelFrame` (complete
cases, coding, nested cluster ids) and dispatches on ``method`` and ``family``:

============================  ==========================================================
``method="lmm"``, gaussian    linear mixed model, REML, Kenward–Roger df (this package)
``method="lmm"``, binomial    random-intercept logistic GLMM (``analysis.glmm``)
``method="ols-cr2"``          OLS with CR2 cluster-robust variance (``analysis.robust``)
``method="cluster-level"``    cluster-level analyses (``analysis.cluster_level``)
``method="gee"``              GEE with small-sample corrected variance (``analysis.gee``)
============================  ==========================================================
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import pandas as pd

from trialkit.errors import ModelSpecError, Problem
from trialkit.models.design import build_model_frame
from trialkit.models.result import FitResult

__all__ = ["FAMILIES", "METHODS", "fit"]

METHODS = ("lmm", "ols-cr2", "cluster-level", "gee")
FAMILIES = ("gaussian", "binomial")
_OPTIONS = {"effect_sizes", "nagq", "vcov", "kind", "corr"}


def _bad(path: str, code: str, message: str, hint: str) -> ModelSpecError:
    return ModelSpecError(message, [Problem(path=path, code=code, message=message, hint=hint)])


def _impl(module: str, name: str) -> Any:
    try:
        mod = importlib.import_module(f"trialkit.models.{module}")
        return getattr(mod, name)
    except (ImportError, AttributeError) as err:
        raise _bad(
            "method",
            "fit.method_unavailable",
            f"the analysis `{module}.{name}` is not available in this installation ({err}).",
            "use method='lmm' or update trialkit.",
        ) from err


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
    df_method : {"kenward-roger", "satterthwaite", "between-within", "residual"}, optional
        Default: Kenward–Roger for gaussian mixed models, between-within for
        binomial GLMMs.
    method : {"lmm", "ols-cr2", "cluster-level", "gee"}
    reml : bool
        REML (default) or ML for linear mixed models.
    treatment_level : optional
        Treated label when the treatment column is not 0/1.
    alpha : float
        1 - confidence level.
    **options
        Passed to the method: ``kind`` (cluster-level), ``corr``/``vcov`` (GEE),
        ``nagq`` (GLMM), ``vcov`` (OLS; for the LMM an additional cluster-robust
        covariance reported in ``extra["robust"]``), ``effect_sizes`` (LMM).

    Returns
    -------
    FitResult

    Raises
    ------
    ModelSpecError
        Unknown columns (``fit.column_missing``), bad treatment coding
        (``fit.treatment_levels``), no complete rows, rank-deficient design,
        unknown method, family or option.
    FitError
        A fit that failed on valid input.

    Examples
    --------
    >>> from trialkit.simulate import simulate_trial  # doctest: +SKIP
    >>> res = fit(df, outcome="score", treatment="arm", treatment_level="intervention",
    ...           covariates=["baseline"], clusters=["la", "keyworker"])  # doctest: +SKIP
    >>> res.treatment.estimate, res.treatment.df  # doctest: +SKIP
    """
    if method not in METHODS:
        raise _bad(
            "method",
            "fit.method",
            f"method must be one of {', '.join(METHODS)}; got {method!r}.",
            "lmm is the default primary analysis.",
        )
    if family not in FAMILIES:
        raise _bad(
            "family",
            "fit.family",
            f"family must be one of {', '.join(FAMILIES)}; got {family!r}.",
            "use binomial for 0/1 outcomes.",
        )
    if not 0.0 < alpha < 1.0:
        raise _bad("alpha", "fit.alpha", f"alpha must be in (0, 1); got {alpha!r}.", "e.g. 0.05.")
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise _bad(
            "options",
            "fit.option",
            f"options must be among {', '.join(sorted(_OPTIONS))}; got {', '.join(unknown)}.",
            "check the spelling of the keyword arguments.",
        )
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
        fn = _impl("glmm", "fit_glmm")
        return fn(
            frame,
            df_method=df_method or "between-within",
            nagq=int(options.pop("nagq", 1)),
            alpha=alpha,
        )
    if method == "ols-cr2":
        fn = _impl("robust", "fit_ols_cr")
        return fn(frame, vcov=options.pop("vcov", "CR2"), alpha=alpha)
    if method == "cluster-level":
        fn = _impl("cluster_level", "fit_cluster_level")
        return fn(frame, kind=options.pop("kind", "two-stage"), alpha=alpha)
    fn = _impl("gee", "fit_gee")
    return fn(
        frame,
        corr=options.pop("corr", "exchangeable"),
        vcov=options.pop("vcov", "CR2"),
        family=family,
        alpha=alpha,
    )
