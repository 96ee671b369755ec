"""Randomise clusters reproducibly and prove later how the allocation arose.

Methods: complete (simple) randomisation with fixed arm sizes, stratified,
pair-matched and covariate-constrained randomisation (as R's cvcrand), with an
audit record that :func:`verify` re-derives, and a randomisation test
(:func:`randtest`, cvcrand's ``cptest`` statistic) with a confidence interval
by test inversion.
"""

from trialkit.randomise._coding import CovariateCoding
from trialkit.randomise.audit import VerificationReport, read_clusters, verify, write_allocation
from trialkit.randomise.core import Allocation, ConstrainedSpace, Validity, make_rng, randomise
from trialkit.randomise.randtest import RandTestResult, randtest
from trialkit.randomise.settings import RandomisationSettings

__all__ = [
    "Allocation",
    "ConstrainedSpace",
    "CovariateCoding",
    "RandTestResult",
    "RandomisationSettings",
    "Validity",
    "VerificationReport",
    "make_rng",
    "randomise",
    "randtest",
    "read_clusters",
    "verify",
    "write_allocation",
]
