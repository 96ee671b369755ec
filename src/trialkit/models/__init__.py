"""Outcome analysis: mixed models, small-sample inference, robust variance, effect sizes.

``fit`` is the single entry point (``trialkit.fit``); it dispatches to the linear
mixed model (REML/ML with Kenward–Roger, Satterthwaite, between-within or
residual df), OLS with CR2, cluster-level analyses, the binary GLMM and GEE, and
returns the result class of that model family (a :class:`FitResult` subclass).
"""

from trialkit.models.design import ModelFrame, build_model_frame
from trialkit.models.fit import fit
from trialkit.models.imputation import ImputationDiagnostics, Imputations, impute_multilevel
from trialkit.models.inference import t_term
from trialkit.models.lmm import contrast, with_df_method
from trialkit.models.multiple_imputation import (
    BatchedLmm,
    MiResult,
    TippingPoint,
    fit_imputed,
    impute_and_fit,
    plot_tipping_point,
    pool_fits,
    tipping_point,
)
from trialkit.models.pooling import PooledEstimate, pool
from trialkit.models.results import (
    BinaryEffects,
    ClusterLevelResult,
    Exclusion,
    FitResult,
    GeeResult,
    GlmmResult,
    LmmResult,
    RobustInference,
    RobustOlsResult,
    Term,
)
from trialkit.models.robust import CRVariance, vcov_cr, vcov_cr_gls

__all__ = [
    "BinaryEffects",
    "CRVariance",
    "ClusterLevelResult",
    "Exclusion",
    "FitResult",
    "GeeResult",
    "GlmmResult",
    "ImputationDiagnostics",
    "Imputations",
    "LmmResult",
    "MiResult",
    "ModelFrame",
    "PooledEstimate",
    "RobustInference",
    "RobustOlsResult",
    "Term",
    "TippingPoint",
    "build_model_frame",
    "contrast",
    "fit",
    "fit_imputed",
    "impute_and_fit",
    "BatchedLmm",
    "impute_multilevel",
    "plot_tipping_point",
    "pool",
    "pool_fits",
    "t_term",
    "tipping_point",
    "vcov_cr",
    "vcov_cr_gls",
    "with_df_method",
]
