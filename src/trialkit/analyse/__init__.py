"""Run the protocol's statistical analysis plan and store the results.

* :func:`analyse_trial` → :class:`TrialAnalysis` (tidy tables: results of every
  outcome and sensitivity analysis, descriptives, baseline balance, flow,
  fidelity, CACE, MDES, TIDieR, logic model; provenance);
* :func:`write_analysis` / :func:`load_analysis` (Parquet + ``analysis.json``);
* :func:`adjust_pvalues` (Holm, Hochberg, Bonferroni).
"""

from trialkit.analyse.plan import adjust_pvalues, analyse_trial
from trialkit.analyse.trial_analysis import TABLES, TrialAnalysis, load_analysis, write_analysis

__all__ = [
    "TABLES",
    "TrialAnalysis",
    "adjust_pvalues",
    "analyse_trial",
    "load_analysis",
    "write_analysis",
]
