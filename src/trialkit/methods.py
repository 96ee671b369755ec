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

from trialkit.errors import ModelSpecError, TrialkitError, UsageError

__all__ = [
    "CLUSTER_LEVEL_KINDS",
    "CR_TYPES",
    "DF_METHODS",
    "DF_RULES",
    "FAMILIES",
    "FIT_METHODS",
    "GEE_CORR",
    "GEE_VCOV",
    "GLMM_DF_METHODS",
    "METHOD_OPTIONS",
    "MISSING_DATA_METHODS",
    "IMPUTE_CHOICES",
    "DELTA_ARMS",
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
    "check_method_options",
    "check_vcov",
]

#: Methods :func:`trialkit.fit` accepts (``"lmm"`` with a binomial family fits the GLMM).
FIT_METHODS: tuple[str, ...] = ("lmm", "ols-cr2", "cluster-level", "gee")
#: Methods a :class:`~trialkit.models.results.FitResult` records (``"multilevel-mi"``: analyses
#: of multiply imputed datasets pooled by Rubin's rules).
RESULT_METHODS: tuple[str, ...] = (
    "lmm",
    "glmm",
    "ols-cr2",
    "cluster-level",
    "gee",
    "multilevel-mi",
)
#: How :func:`trialkit.fit` handles missing outcomes and covariates (``missing=``).
MISSING_DATA_METHODS: tuple[str, ...] = ("complete-case", "multilevel-mi")
#: ``trialkit fit --impute`` choices and the ``missing=`` method each selects.
IMPUTE_CHOICES: dict[str, str] = {"multilevel": "multilevel-mi"}
#: Arms whose imputed outcomes a δ-adjustment shifts.
DELTA_ARMS: tuple[str, ...] = ("treated", "control", "both")
#: Outcome families.
FAMILIES: tuple[str, ...] = ("gaussian", "binomial")
#: Denominator-df methods of the linear mixed model (``"z"``: the normal, no small-sample df;
#: ``"containment"``: nlme's rule, each column's df from the level it varies within).
DF_METHODS: tuple[str, ...] = (
    "kenward-roger",
    "satterthwaite",
    "between-within",
    "containment",
    "residual",
    "z",
)
#: Degrees of freedom of the logistic GLMM's Wald tests (``"z"``: the normal).
GLMM_DF_METHODS: tuple[str, ...] = ("between-within", "residual", "z")
#: Cluster-robust covariance types (OLS and the LMM's robust inference).
CR_TYPES: tuple[str, ...] = ("CR0", "CR1", "CR1S", "CR2", "CR3")
#: Small-sample corrected sandwich variances of the GEE.
GEE_VCOV: tuple[str, ...] = ("CR0", "CR1", "CR2", "CR3")
#: ``vcov`` types per fit method.
VCOV_TYPES: dict[str, tuple[str, ...]] = {"lmm": CR_TYPES, "ols-cr2": CR_TYPES, "gee": GEE_VCOV}
#: GEE working correlation structures.
GEE_CORR: tuple[str, ...] = ("exchangeable", "independence")
#: Variants of the cluster-level analysis.
CLUSTER_LEVEL_KINDS: tuple[str, ...] = ("means", "two-stage", "ancova")
#: One-line description of each df rule, written beside the results (``df_rule`` in the JSON).
DF_RULES: dict[str, str] = {
    "kenward-roger": "Kenward-Roger (1997) adjusted covariance and df, from the REML fit",
    "satterthwaite": "Satterthwaite df from the REML deviance (lmerTest), from the REML fit",
    "between-within": (
        "two-tier between-within: columns constant within top-level clusters get J - r_b, "
        "all others n - J - (p - r_b) (SAS DDFM=BW; Li & Redden 2015)"
    ),
    "containment": (
        "containment (nlme::lme): each column gets the df of the innermost level it is "
        "constant within: groups at that level - groups at the level above - columns there"
    ),
    "residual": "residual df n - p (ignores clustering)",
    "z": "normal reference distribution (no small-sample df)",
    "barnard-rubin": (
        "Rubin's rules over the imputations with the Barnard-Rubin (1999) small-sample df, "
        "from the completed-data df"
    ),
}
#: Options that only some methods use: option -> (method, family) pairs that use it
#: (``"*"`` for any family).  Giving one to another method is a usage error.
METHOD_OPTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "df_method": (("lmm", "*"),),
    "reml": (("lmm", "*"),),  # the binomial GLMM is always fitted by ML
    "kind": (("cluster-level", "*"),),
    "corr": (("gee", "*"),),
    "nagq": (("lmm", "binomial"),),
    "vcov": (("lmm", "gaussian"), ("ols-cr2", "*"), ("gee", "*")),
    "effect_sizes": (("lmm", "gaussian"),),
    # a binomial family changes lmm (GLMM), gee (logit link) and cluster-level (proportions)
    "family": (("lmm", "*"), ("gee", "*"), ("cluster-level", "*")),
}
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


def check_method_options(method: str, family: str, given: Sequence[str]) -> None:
    """Refuse options that ``method`` (with ``family``) does not use (code ``fit.option_unused``).

    Parameters
    ----------
    method, family : str
        The checked method and family names.
    given : sequence of str
        Names of the options the user set (keys of :data:`METHOD_OPTIONS`; ``"family"``
        itself counts as given when it is not the default ``"gaussian"``).

    Raises
    ------
    UsageError
        An option is set that the method ignores: it would have no effect, so a result
        silently differing from the user's intent is refused.
    """
    for name in given:
        users = METHOD_OPTIONS.get(name)
        if users is None:
            continue
        if not any(m == method and f in ("*", family) for m, f in users):
            where = ", ".join(m if f == "*" else f"{m} ({f})" for m, f in users)
            raise _unused(name, method, family, f"it is used only by {where}")


def _unused(name: str, method: str, family: str, why: str) -> TrialkitError:
    option = "--" + name.replace("_", "-") if name != "reml" else "--ml (reml=False)"
    return UsageError.from_problem(
        path=name,
        code="fit.option_unused",
        message=(
            f"`{option}` must not be given with method {method!r} (family {family!r}); "
            f"got a value, but {why}."
        ),
        hint=f"drop {option}, or choose a method that uses it.",
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
