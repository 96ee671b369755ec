"""Power and minimum detectable effect sizes: analytic formulas and fast simulation."""

from trialkit.power.analytic import (
    AnalyticResult,
    CRTDesign,
    analytic_mdes,
    analytic_power,
    binary_icc_from_latent,
    required_clusters,
    standard_error,
)
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
    "Scenario",
    "SimulationResult",
    "analytic_mdes",
    "analytic_power",
    "binary_icc_from_latent",
    "load_scenarios",
    "required_clusters",
    "simulate_power",
    "simulate_power_grid",
    "standard_error",
]
