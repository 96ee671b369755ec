"""Outcome analysis: mixed models, small-sample inference, robust variance, effect sizes.

``fit`` is the single entry point (``trialkit.fit``); it dispatches to the linear
mixed model (REML/ML with Kenward–Roger, Satterthwaite, between-within or
residual df), OLS with CR2, cluster-level analyses, the binary GLMM and GEE, and
returns the result class of that model family (a :class:`FitResult` subclass).
"""

from trialkit.models.design import ModelFrame, build_model_frame
from trialkit.models.fit import fit
from trialkit.models.inference import t_term
from trialkit.models.lmm import contrast, with_df_method
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
    "LmmResult",
    "ModelFrame",
    "RobustInference",
    "RobustOlsResult",
    "Term",
    "build_model_frame",
    "contrast",
    "fit",
    "t_term",
    "vcov_cr",
    "vcov_cr_gls",
    "with_df_method",
]
