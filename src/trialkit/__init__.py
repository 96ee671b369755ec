"""trialkit: evaluate a cluster randomised pilot trial from protocol to report.

The public API is imported lazily so that ``import trialkit`` stays fast and
each stage only loads what it needs.
"""

from __future__ import annotations

import importlib
from typing import Any

from trialkit._version import __version__

# public name -> module that defines it
_API: dict[str, str] = {
    "load_protocol": "trialkit.protocol",
    "check_protocol": "trialkit.protocol",
    "Protocol": "trialkit.protocol",
    "CheckReport": "trialkit.protocol",
    "render_tidier": "trialkit.protocol",
    "protocol_json_schema": "trialkit.protocol",
    "randomise": "trialkit.randomise",
    "randtest": "trialkit.randomise",
    "verify": "trialkit.randomise",
    "write_allocation": "trialkit.randomise",
    "read_clusters": "trialkit.randomise",
    "Allocation": "trialkit.randomise",
    "RandomisationSettings": "trialkit.randomise",
    "RandTestResult": "trialkit.randomise",
    "VerificationReport": "trialkit.randomise",
    "validate": "trialkit.data",
    "TrialData": "trialkit.data",
    "save_validated": "trialkit.data",
    "analysis_frame": "trialkit.data",
    "AnalysisFrame": "trialkit.data",
    "score": "trialkit.data",
    "reliable_change": "trialkit.data",
    "simulate_trial": "trialkit.simulate.trial",
    "SyntheticTrial": "trialkit.simulate.trial",
    "assess_fidelity": "trialkit.fidelity",
    "FidelityReport": "trialkit.fidelity",
    "estimate_cace": "trialkit.fidelity",
    "cace_sweep": "trialkit.fidelity",
    "CaceResult": "trialkit.fidelity",
    "plan_definitive_trial": "trialkit.feasibility.planning",
    "DefinitiveTrialPlan": "trialkit.feasibility.planning",
    "fit": "trialkit.models",
    "FitResult": "trialkit.models",
    "LmmResult": "trialkit.models",
    "GlmmResult": "trialkit.models",
    "GeeResult": "trialkit.models",
    "RobustOlsResult": "trialkit.models",
    "ClusterLevelResult": "trialkit.models",
    "with_df_method": "trialkit.models",
    "contrast": "trialkit.models",
    "build_model_frame": "trialkit.models",
    "vcov_cr": "trialkit.models",
    "analytic_mdes": "trialkit.power",
    "analytic_power": "trialkit.power",
    "progression_sample_size": "trialkit.power",
    "ProgressionSampleSize": "trialkit.power",
    "required_clusters": "trialkit.power",
    "simulate_power": "trialkit.power",
    "simulate_power_grid": "trialkit.power",
    "AnalyticResult": "trialkit.power",
    "SimulationResult": "trialkit.power",
    "assess_feasibility": "trialkit.feasibility",
    "FeasibilityAssessment": "trialkit.feasibility",
    "analyse_trial": "trialkit.analyse",
    "TrialAnalysis": "trialkit.analyse",
    "write_analysis": "trialkit.analyse",
    "load_analysis": "trialkit.analyse",
    "run_demo": "trialkit.pipeline",
    "build_report": "trialkit.report",
    "write_report": "trialkit.report",
    "Report": "trialkit.report",
}

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str) -> Any:
    try:
        module = _API[name]
    except KeyError:
        raise AttributeError(f"module 'trialkit' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
