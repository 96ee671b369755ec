"""Optimal non-bipartite pair matching.

The minimum-total-distance perfect matching of ``n`` (even) units is solved
exactly as an integer linear programme: one binary variable per unordered pair,
each unit in exactly one pair, minimise the summed distances.  scipy's HiGHS
branch-and-cut solver proves optimality, which is quick for the 12-50 units of a
cluster trial.  Ties between equally good matchings are resolved by the solver
deterministically for a given input (the canonical cluster order).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from trialkit.errors import ComputationError


def distances(z: np.ndarray, kind: str) -> np.ndarray:
    """Pairwise Mahalanobis (pseudo-inverse of the covariance of ``z``) or Euclidean distances."""
    diff = z[:, None, :] - z[None, :, :]
    if kind == "euclidean":
        d2 = (diff**2).sum(axis=2)
    else:
        cov = np.atleast_2d(np.cov(z, rowvar=False, ddof=1))
        inv = np.linalg.pinv(cov)
        d2 = np.einsum("ijk,kl,ijl->ij", diff, inv, diff)
    return np.sqrt(np.maximum(d2, 0.0))


def optimal_pairs(dist: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (i < j) of a minimum-total-distance perfect matching."""
    n = dist.shape[0]
    iu, ju = np.triu_indices(n, k=1)
    cost = dist[iu, ju]
    a = np.zeros((n, len(cost)))
    a[iu, np.arange(len(cost))] = 1.0
    a[ju, np.arange(len(cost))] = 1.0
    res = milp(
        c=cost,
        constraints=LinearConstraint(a, lb=1.0, ub=1.0),
        integrality=np.ones(len(cost)),
        bounds=Bounds(0, 1),
    )
    if not res.success or res.x is None:  # pragma: no cover - solver failure
        raise ComputationError(f"optimal matching failed: {res.message}")
    chosen = np.flatnonzero(res.x > 0.5)
    return sorted((int(iu[c]), int(ju[c])) for c in chosen)
