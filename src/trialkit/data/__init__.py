"""Trial data: the data contract, loading, validation, scoring and analysis frames.

Public API
----------
validate(protocol, data_dir, allocation_dir=None) -> TrialData
save_validated(trial_data, out_dir)
analysis_frame(trial_data, protocol, outcome_id, timepoint=None) -> AnalysisFrame
score(measurements, instrument, ...) -> DataFrame
reliable_change, clinical_cutoff, rcads_tscores, swemwbs_metric, Instrument, Scale
"""

from __future__ import annotations

from trialkit.data.frame import AnalysisFrame, analysis_frame
from trialkit.data.schema import DataProblem
from trialkit.data.scoring import (
    INSTRUMENTS,
    Instrument,
    Scale,
    clinical_cutoff,
    rcads_tscores,
    reliable_change,
    score,
    swemwbs_metric,
)
from trialkit.data.validate import TrialData, save_validated, validate

__all__ = [
    "INSTRUMENTS",
    "AnalysisFrame",
    "DataProblem",
    "Instrument",
    "Scale",
    "TrialData",
    "analysis_frame",
    "clinical_cutoff",
    "rcads_tscores",
    "reliable_change",
    "save_validated",
    "score",
    "swemwbs_metric",
    "validate",
]
