"""The method and option vocabulary: every name a user may give a model, declared once.

This is a bottom-layer module (it imports only the standard library and
:mod:`trialkit.errors`) so that every package — the protocol model, the
estimators, power, the analysis plan and the command line — can read the same
names.  Each option has a checker that raises :class:`~trialkit.errors.ModelSpecError`
(invalid input, exit code 1) with a did-you-mean hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from trialkit.errors import ModelSpecError

__all__ = [
    "CLUSTER_LEVEL_KINDS",
    "CR_TYPES",
    "DF_METHODS",
    "FAMILIES",
    "FIT_METHODS",
    "GEE_CORR",
    "GEE_VCOV",
    "GLMM_DF_METHODS",
    "POWER_METHODS",
    "RESULT_METHODS",
    "VCOV_TYPES",
    "check_choice",
    "check_cluster_level_kind",
    "check_df_method",
    "check_family",
    "check_fit_method",
    "check_gee_corr",
    "check_glmm_df_method",
    "check_vcov",
]

#: Methods :func:`trialkit.fit` accepts (``"lmm"`` with a binomial family fits the GLMM).
FIT_METHODS: tuple[str, ...] = ("lmm", "ols-cr2", "cluster-level", "gee")
#: Methods a :class:`~trialkit.models.results.FitResult` records.
RESULT_METHODS: tuple[str, ...] = ("lmm", "glmm", "ols-cr2", "cluster-level", "gee")
#: Outcome families.
FAMILIES: tuple[str, ...] = ("gaussian", "binomial")
#: Denominator-df methods of the linear mixed model.
DF_METHODS: tuple[str, ...] = ("kenward-roger", "satterthwaite", "between-within", "residual")
#: Degrees of freedom of the logistic GLMM's Wald tests (``"z"``: the normal).
GLMM_DF_METHODS: tuple[str, ...] = ("between-within", "residual", "z")
#: Cluster-robust covariance types (OLS and the LMM's robust inference).
CR_TYPES: tuple[str, ...] = ("CR0", "CR1", "CR1S", "CR2", "CR3")
#: Small-sample corrected sandwich variances of the GEE.
GEE_VCOV: tuple[str, ...] = ("CR0", "CR2", "CR3")
#: ``vcov`` types per fit method.
VCOV_TYPES: dict[str, tuple[str, ...]] = {"lmm": CR_TYPES, "ols-cr2": CR_TYPES, "gee": GEE_VCOV}
#: GEE working correlation structures.
GEE_CORR: tuple[str, ...] = ("exchangeable", "independence")
#: Variants of the cluster-level analysis.
CLUSTER_LEVEL_KINDS: tuple[str, ...] = ("means", "two-stage", "ancova")
#: Analyses the power simulation can run on each replicate.
POWER_METHODS: tuple[str, ...] = ("cluster-level", "lmm")


def check_choice(
    value: object,
    choices: Sequence[str],
    *,
    path: str,
    code: str,
    hint: str = "",
) -> str:
    """Return ``value`` if it is one of ``choices``, else raise :class:`ModelSpecError`.

    Parameters
    ----------
    value : object
        The name the user gave.
    choices : sequence of str
        The allowed names.
    path, code : str
        Where the option is and the stable problem code.
    hint : str
        How to fix it; a "did you mean" suggestion is put first when a name is close.

    Raises
    ------
    ModelSpecError
        ``value`` is not one of ``choices``.
    """
    if isinstance(value, str) and value in choices:
        return value
    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.6)
    full_hint = f"did you mean {close[0]!r}? {hint}".strip() if close else hint
    raise ModelSpecError.from_problem(
        path=path,
        code=code,
        message=f"`{path}` must be one of {', '.join(choices)}; got {value!r}.",
        hint=full_hint,
    )


def check_fit_method(method: object) -> str:
    """Check a :func:`trialkit.fit` method name (code ``fit.method``)."""
    return check_choice(
        method, FIT_METHODS, path="method", code="fit.method", hint="lmm is the default."
    )


def check_family(family: object) -> str:
    """Check an outcome family (code ``fit.family``)."""
    return check_choice(
        family,
        FAMILIES,
        path="family",
        code="fit.family",
        hint="use binomial for 0/1 outcomes.",
    )


def check_df_method(df_method: object) -> str:
    """Check a linear mixed model df method (code ``fit.df_method``)."""
    return check_choice(
        df_method,
        DF_METHODS,
        path="df_method",
        code="fit.df_method",
        hint="kenward-roger is the default for continuous outcomes.",
    )


def check_glmm_df_method(df_method: object) -> str:
    """Check a logistic GLMM df method (code ``fit.glmm.df_method``)."""
    return check_choice(
        df_method,
        GLMM_DF_METHODS,
        path="df_method",
        code="fit.glmm.df_method",
        hint="between-within is recommended with few clusters (Li & Redden 2015).",
    )


def check_vcov(vcov: object, method: str = "ols-cr2") -> str:
    """Check a ``vcov`` type for ``method`` (codes ``fit.vcov`` and ``fit.gee.vcov``)."""
    return check_choice(
        vcov,
        VCOV_TYPES[method],
        path="vcov",
        code="fit.gee.vcov" if method == "gee" else "fit.vcov",
        hint="CR2 is recommended with few clusters.",
    )


def check_gee_corr(corr: object) -> str:
    """Check a GEE working correlation (code ``fit.gee.corr``)."""
    return check_choice(
        corr,
        GEE_CORR,
        path="corr",
        code="fit.gee.corr",
        hint="use 'exchangeable' or 'independence'.",
    )


def check_cluster_level_kind(kind: object) -> str:
    """Check a cluster-level analysis variant (code ``fit.cluster_level.kind``)."""
    return check_choice(
        kind,
        CLUSTER_LEVEL_KINDS,
        path="kind",
        code="fit.cluster_level.kind",
        hint="use kind='means', 'two-stage' or 'ancova'.",
    )
