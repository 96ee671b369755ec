"""The small-matrix factorisations of the engine agree with numpy.linalg."""

from __future__ import annotations

import numpy as np
import pytest

from trialkit.models._small import cholesky_inverse, cholesky_solve


@pytest.mark.parametrize("R", [1, 3, 9])  # LAPACK one by one, and batched numpy
@pytest.mark.parametrize("q", [1, 2, 5])
def test_cholesky_inverse_and_solve(R: int, q: int) -> None:
    rng = np.random.default_rng(R * 10 + q)
    A = rng.normal(size=(R, q, q))
    S = A @ np.swapaxes(A, 1, 2) + q * np.eye(q)
    logdet, inv = cholesky_inverse(S)
    np.testing.assert_allclose(logdet, np.linalg.slogdet(S)[1], rtol=1e-12)
    np.testing.assert_allclose(inv, np.linalg.inv(S), rtol=1e-10, atol=1e-12)
    g = rng.normal(size=(R, q))
    np.testing.assert_allclose(
        cholesky_solve(S, g), np.linalg.solve(S, g[..., None])[..., 0], rtol=1e-10
    )


@pytest.mark.parametrize("R", [1, 9])
def test_not_positive_definite_raises(R: int) -> None:
    S = np.broadcast_to(np.array([[1.0, 2.0], [2.0, 1.0]]), (R, 2, 2)).copy()
    with pytest.raises(np.linalg.LinAlgError):
        cholesky_inverse(S)
    with pytest.raises(np.linalg.LinAlgError):
        cholesky_solve(S, np.ones((R, 2)))
