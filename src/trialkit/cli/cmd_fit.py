"""``trialkit fit``: fit the outcome analysis (mixed model by default) to a data file."""

from __future__ import annotations

import argparse
from typing import Any

from trialkit.cli._common import add_alpha, add_format, emit

NAME = "fit"
HELP = (
    "Fit the outcome analysis (linear mixed model with Kenward-Roger df by default) "
    "to a CSV or Parquet file."
)
EXAMPLE = [
    "trialkit fit outcomes.csv --outcome score --treatment arm --treatment-level intervention "
    "--covariates baseline,imd --clusters la,keyworker",
    "trialkit fit outcomes.parquet --outcome retained --treatment arm --treatment-level intervention "
    "--clusters la --family binomial --format json",
    "trialkit fit outcomes.csv --outcome score --treatment arm --treatment-level intervention "
    "--covariates baseline --clusters la,keyworker --impute multilevel --auxiliary score_mid "
    "--imputations 50 --seed 1 [--delta -0.2]",
]


def _split(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _df_choices() -> list[str]:
    from trialkit.methods import DF_METHODS, GLMM_DF_METHODS

    return [*DF_METHODS, *(m for m in GLMM_DF_METHODS if m not in DF_METHODS)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trialkit.methods import (
        CLUSTER_LEVEL_KINDS,
        CR_TYPES,
        FAMILIES,
        FIT_METHODS,
        GEE_CORR,
        GLMM_DF_METHODS,
        IMPUTE_CHOICES,
        VCOV_TYPES,
    )

    parser.add_argument("data", metavar="DATA", help="one row per individual (.csv or .parquet)")
    parser.add_argument("--outcome", required=True, help="outcome column")
    parser.add_argument("--treatment", required=True, help="treatment column (0/1 or two labels)")
    parser.add_argument("--treatment-level", help="label of the treated arm (when not 0/1)")
    parser.add_argument("--covariates", default="", help="comma-separated adjustment covariates")
    parser.add_argument(
        "--clusters", default="", help="comma-separated cluster columns, top of the nesting first"
    )
    parser.add_argument(
        "--family",
        choices=FAMILIES,
        help="outcome family (default gaussian); binomial for lmm (logistic GLMM), gee and "
        "cluster-level",
    )
    parser.add_argument("--method", choices=FIT_METHODS, default="lmm")
    parser.add_argument(
        "--df-method",
        choices=_df_choices(),
        help="denominator df, lmm only (default kenward-roger; between-within for binomial GLMMs, "
        f"which take {', '.join(GLMM_DF_METHODS)}); containment = nlme's rule; z = normal",
    )
    vcov_help = "; ".join(f"{m}: {', '.join(t)}" for m, t in VCOV_TYPES.items())
    parser.add_argument(
        "--vcov",
        choices=CR_TYPES,
        help="cluster-robust variance: for lmm reported beside the model-based result "
        f"(extra robust inference); for ols-cr2 and gee the variance used (default CR2) ({vcov_help})",
    )
    parser.add_argument(
        "--kind",
        choices=CLUSTER_LEVEL_KINDS,
        help="cluster-level only: t-test on cluster means, two-stage (default) or ANCOVA",
    )
    parser.add_argument("--corr", choices=GEE_CORR, help="gee only: working correlation")
    parser.add_argument(
        "--nagq", type=int, help="binomial GLMM only: 1 = Laplace (default), >1 adaptive quadrature"
    )
    parser.add_argument(
        "--ml",
        action="store_true",
        help="lmm only: maximum likelihood instead of REML (Kenward-Roger and Satterthwaite df "
        "then use the REML refit, as pbkrtest)",
    )
    parser.add_argument(
        "--impute",
        choices=sorted(IMPUTE_CHOICES),
        help="multiple imputation of missing outcomes and numeric covariates: multilevel = "
        "random intercepts for every cluster column, pooled by Rubin's rules with Barnard-Rubin df "
        "(default: complete-case analysis)",
    )
    parser.add_argument(
        "--auxiliary",
        default="",
        help="--impute only: comma-separated variables in the imputation model but not the "
        "analysis (e.g. the mid-point measurement)",
    )
    parser.add_argument(
        "--imputations", type=int, help="--impute only: number of imputations m (default 20)"
    )
    parser.add_argument("--seed", type=int, help="--impute only: imputation seed (default 0)")
    parser.add_argument(
        "--delta",
        type=float,
        help="--impute only: shift the treated arm's imputed outcomes by DELTA outcome SDs "
        "(missing-not-at-random sensitivity analysis)",
    )
    add_alpha(parser, default=0.05, help="1 - confidence level")
    add_format(parser, help=None)


def _read(path: str, columns: list[str]) -> Any:
    """Read DATA through the store's one table reader (cluster ids kept as text)."""
    from trialkit.errors import DataError
    from trialkit.store import read_table

    if not path.lower().endswith((".parquet", ".csv")):
        raise DataError.from_problem(
            path=path,
            code="fit.data_format",
            message=f"DATA must be a .csv or .parquet file; got {path!r}.",
            hint="convert the data to CSV or Parquet.",
        )
    return read_table(path, id_columns=tuple(columns), code_prefix="fit.data_")


def _json_payload(result: Any) -> dict[str, Any]:
    from trialkit.methods import DF_RULES

    d = result.to_dict()
    keep = ("estimate", "std_error", "df", "statistic", "p_value", "conf_low", "conf_high")
    tr = d["treatment"]
    out = {
        "treatment": {"term": tr["term"], **{k: tr[k] for k in keep}},
        "fixed_effects": [
            {"term": t["term"], **{k: t[k] for k in keep}} for t in d["fixed_effects"]
        ],
        "variance_components": d["variance_components"],
        "icc": d["icc"],
        "n_obs": d["n_obs"],
        "n_clusters": d["n_clusters"],
        "n_excluded": d["n_excluded"],
        "exclusions": d["exclusions"],
        "singular": d["singular"],
        "converged": d["converged"],
        "loglik": d["loglik"],
        "reml": d["reml"],
        "method": d["method"],
        "df_method": d["df_method"],
        "df_rule": DF_RULES.get(d["df_method"], d["df_method"]),
        "family": d["family"],
        "formula": d["formula"],
        "data_hash": d["data_hash"],
        "warnings": d["warnings"],
        "trialkit_version": d["trialkit_version"],
    }
    extra = d["extra"]
    if "inference_source" in extra:
        out["inference_source"] = extra["inference_source"]
    for key in ("robust", "effect_sizes"):
        if extra.get(key) is not None:
            out[key] = extra[key]
    effects = getattr(result, "effects", None)
    if effects is not None:  # binary outcomes: odds ratio, risk difference, their intervals
        out["effects"] = effects.to_dict()
    summary = getattr(result, "imputation_summary", None)
    if summary is not None:  # multiple imputation: m, FMI, RIV, df method, diagnostics
        out["imputation"] = summary()
    return out


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Method options given on the command line (absent ones keep the library defaults)."""
    names = ("vcov", "kind", "corr", "nagq")
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}


def _missing(args: argparse.Namespace) -> dict[str, Any]:
    """The missing-data keywords of ``fit``: only those given (the library refuses stray ones)."""
    from trialkit.methods import IMPUTE_CHOICES

    out: dict[str, Any] = {}
    if args.impute is not None:
        out["missing"] = IMPUTE_CHOICES[args.impute]
    if _split(args.auxiliary):
        out["auxiliary"] = _split(args.auxiliary)
    for name in ("imputations", "seed", "delta"):
        if getattr(args, name) is not None:
            out[name] = getattr(args, name)
    return out


def run(args: argparse.Namespace) -> int:
    import warnings

    from trialkit._io import sha256_file
    from trialkit.errors import TrialkitWarning
    from trialkit.models.fit import fit

    clusters = _split(args.clusters)
    data = _read(str(args.data), clusters)
    with warnings.catch_warnings():
        # warnings are recorded on the result and printed below
        warnings.simplefilter("ignore", TrialkitWarning)
        result = fit(
            data,
            outcome=args.outcome,
            treatment=args.treatment,
            treatment_level=args.treatment_level,
            covariates=_split(args.covariates),
            clusters=clusters,
            family=args.family or "gaussian",
            method=args.method,
            df_method=args.df_method,
            reml=not args.ml,
            alpha=args.alpha,
            **_missing(args),
            **_options(args),
        )
    payload = {**_json_payload(result), "input_sha256": sha256_file(args.data)}
    emit(payload, result.summary(), args.format)
    return 0
