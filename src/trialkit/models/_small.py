"""Factorisations of many small symmetric positive definite matrices (private).

The mixed-model engine factorises a handful of ``q × q`` matrices (``q`` = fixed
effects + 1, often 3–8) per evaluation.  For such sizes ``numpy.linalg``'s
per-call checks cost several times the arithmetic, so one replicate (or a few)
goes straight to LAPACK's Cholesky routines (``dpotrf``/``dpotri``/``dpotrs``,
the same algorithm ``numpy.linalg.cholesky`` uses); many replicates use the
batched numpy calls.  Results agree to rounding error either way.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.linalg import lapack

__all__ = ["cholesky_inverse", "cholesky_solve"]

#: at most this many replicates are factorised one by one through LAPACK
_LOOP = 4


def cholesky_inverse(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log|S|`` (R,) and ``S⁻¹`` (R, q, q) of symmetric positive definite ``S`` (R, q, q).

    Raises
    ------
    numpy.linalg.LinAlgError
        A matrix is not positive definite.
    """
    R, q, _ = S.shape
    if R > _LOOP:
        C = np.linalg.cholesky(S)
        Ci = np.linalg.inv(C)
        logdet = 2.0 * np.log(np.diagonal(C, axis1=-2, axis2=-1)).sum(axis=-1)
        return logdet, np.swapaxes(Ci, -1, -2) @ Ci
    inv = np.empty_like(S)
    logdet = np.empty(R)
    lower = _strict_lower(q)
    for r in range(R):
        c, info = lapack.dpotrf(S[r], lower=1, clean=0)
        if info != 0:
            raise np.linalg.LinAlgError("Matrix is not positive definite")
        logdet[r] = 2.0 * float(np.log(c.diagonal()).sum())
        a, info = lapack.dpotri(c, lower=1)
        if info != 0:  # pragma: no cover - dpotrf succeeded
            raise np.linalg.LinAlgError("Matrix is singular")
        a[lower[1], lower[0]] = a[lower]  # dpotri fills the lower triangle only
        inv[r] = a
    return logdet, inv


@lru_cache(maxsize=32)
def _strict_lower(q: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tril_indices(q, -1)


def cholesky_solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``H⁻¹g`` for symmetric positive definite ``H`` (R, m, m) and ``g`` (R, m).

    Raises
    ------
    numpy.linalg.LinAlgError
        A matrix is not positive definite.
    """
    R = H.shape[0]
    if R > _LOOP:
        C = np.linalg.cholesky(H)
        z = np.linalg.solve(C, g[..., None])
        return np.linalg.solve(np.swapaxes(C, -1, -2), z)[..., 0]
    out = np.empty_like(g)
    for r in range(R):
        c, info = lapack.dpotrf(H[r], lower=1, clean=0)
        if info != 0:
            raise np.linalg.LinAlgError("Matrix is not positive definite")
        x, info = lapack.dpotrs(c, g[r], lower=1)
        out[r] = x
    return out
