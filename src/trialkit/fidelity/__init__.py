"""Fidelity against the logic model, contamination, keyworker dose and complier average effects.

* :func:`assess_fidelity` → :class:`FidelityReport` (indicator, component and
  overall adherence by LA, over time, keyworker dose, control-arm contamination);
* :func:`register_metric` adds an indicator metric to the registry;
* :func:`write_fidelity_outputs` writes tables, heatmap, JSON and the completed protocol;
* :func:`estimate_cace` / :func:`cace_sweep` → :class:`CaceResult` / :class:`CaceSweep`
  (2SLS with CR2 standard errors and Satterthwaite df);
* :func:`analyse_compliance` → :class:`ComplianceAnalysis` (the CACE of a trial's outcome at
  the protocol's threshold and across a sweep), written by :func:`write_compliance_outputs`.

See ``docs/fidelity.md``.
"""

from trialkit.fidelity.assess import adherence_ratio, assess_fidelity, band_of
from trialkit.fidelity.cace import (
    CaceResult,
    CaceSweep,
    cace_sweep,
    compliance_indicator,
    estimate_cace,
    iv_2sls,
)
from trialkit.fidelity.compliance import (
    ComplianceAnalysis,
    analyse_compliance,
    compliance_inputs,
    write_compliance_outputs,
)
from trialkit.fidelity.metrics import (
    Metric,
    MetricContext,
    MetricValue,
    available_metrics,
    get_metric,
    register_metric,
)
from trialkit.fidelity.outputs import write_fidelity_outputs
from trialkit.fidelity.report import FidelityReport
from trialkit.fidelity.writeback import tidier_texts, write_back

__all__ = [
    "CaceResult",
    "CaceSweep",
    "ComplianceAnalysis",
    "FidelityReport",
    "Metric",
    "MetricContext",
    "MetricValue",
    "adherence_ratio",
    "analyse_compliance",
    "assess_fidelity",
    "available_metrics",
    "band_of",
    "cace_sweep",
    "compliance_indicator",
    "compliance_inputs",
    "estimate_cace",
    "get_metric",
    "iv_2sls",
    "register_metric",
    "tidier_texts",
    "write_back",
    "write_compliance_outputs",
    "write_fidelity_outputs",
]
