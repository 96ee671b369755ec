"""Power and minimum detectable effect sizes: analytic formulas and fast simulation.

Also the pilot size for progression criteria (:mod:`trialkit.power.progression`).
"""

from trialkit.power.analytic import (
    AnalyticResult,
    CRTDesign,
    analytic_mdes,
    analytic_power,
    binary_icc_from_latent,
    required_clusters,
    standard_error,
)
from trialkit.power.progression import ProgressionSampleSize, progression_sample_size
from trialkit.power.simulation import (
    PowerSimulation,
    Scenario,
    SimulationResult,
    load_scenarios,
    simulate_power,
    simulate_power_grid,
)

__all__ = [
    "AnalyticResult",
    "CRTDesign",
    "PowerSimulation",
    "ProgressionSampleSize",
    "Scenario",
    "SimulationResult",
    "analytic_mdes",
    "analytic_power",
    "binary_icc_from_latent",
    "load_scenarios",
    "progression_sample_size",
    "required_clusters",
    "simulate_power",
    "simulate_power_grid",
    "standard_error",
]
