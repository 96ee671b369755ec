"""Second-order jets: values with their exact first and second partial derivatives (private).

A jet in ``L`` variables ``φ_0 .. φ_{L-1}`` is stored on the last axis of an array
as ``J = 1 + L + L(L+1)/2`` numbers: the value, the ``L`` first derivatives and
the second derivatives ``∂²/∂φ_i∂φ_j`` for ``i ≤ j``.  Sums, products,
reciprocals and logarithms of jets propagate the derivatives exactly (forward-mode
differentiation truncated at order two), so the mixed-model engine gets the
gradient and Hessian of its deviance, and every Kenward–Roger ingredient, from
the same recursion that gives the value (Griewank & Walther 2008, *Evaluating
Derivatives*, ch. 13).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from trialkit.models._small import cholesky_inverse

__all__ = ["JetSpace", "jet_space"]


class JetSpace:
    """Index tables and arithmetic of second-order jets in ``L`` variables."""

    def __init__(self, L: int) -> None:
        self.L = L
        pairs = [(i, j) for i in range(L) for j in range(i, L)]
        self.J = 1 + L + len(pairs)
        J = self.J
        self.first = np.arange(1, L + 1)
        self.second = np.zeros((L, L), dtype=np.int64)
        for k, (i, j) in enumerate(pairs):
            self.second[i, j] = self.second[j, i] = 1 + L + k
        self.sec = np.arange(1 + L, J)
        self.sec_slice = slice(1 + L, J)
        #: ``twice[l, m]``: 2 when ``m == l`` (∂²(φ_l x)/∂φ_l² = 2 ∂x/∂φ_l), else 1
        self.twice = 1.0 + np.eye(L)
        self.pi = np.array([1 + i for i, _ in pairs], dtype=np.int64)
        self.pj = np.array([1 + j for _, j in pairs], dtype=np.int64)
        T = np.zeros((J, J, J))
        T[0, 0, 0] = 1.0
        for i in range(L):
            T[1 + i, 0, 1 + i] = T[0, 1 + i, 1 + i] = 1.0
        for k, (i, j) in enumerate(pairs):
            s = 1 + L + k
            T[s, 0, s] = T[0, s, s] = 1.0
            T[1 + i, 1 + j, s] += 1.0
            T[1 + j, 1 + i, s] += 1.0
        self.T2 = T.reshape(J * J, J)
        self.T2t = np.ascontiguousarray(self.T2.T)
        #: ``embed[l]`` (3, J): a jet in ``φ_l`` alone (value, ∂_l, ∂_ll) as a full jet
        self.embed = np.zeros((L, 3, J))
        #: ``shift[l]`` (J, J): ``x ↦ φ_l x - φ_l·x`` (the product rule with the linear jet
        #: of ``φ_l``), so that ``jet(φ_l x) = φ_l x + x @ shift[l]``
        self.shift = np.zeros((L, J, J))
        for l in range(L):
            self.embed[l, 0, 0] = 1.0
            self.embed[l, 1, 1 + l] = 1.0
            self.embed[l, 2, self.second[l, l]] = 1.0
            self.shift[l, 0, 1 + l] = 1.0
            for m in range(L):
                self.shift[l, 1 + m, self.second[l, m]] += self.twice[l, m]
        #: ``lift[l]`` (3, J): ``(x, y, ·)`` as the first and second derivatives in ``φ_l``
        self.lift = np.zeros((L, 3, J))
        self.lift[:, :2] = self.embed[:, 1:]
        self.eye = np.eye(J)
        # pairs (i <= j) as positions in the list of first derivatives
        self.pairs_i = self.pi - 1
        self.pairs_j = self.pj - 1

    def mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Product of jets (broadcasting over the leading axes).

        Small arrays go through one product table (fewest numpy calls); large
        ones through the Leibniz rule term by term (fewest operations).
        """
        if a.size + b.size < 4096:
            prod = a[..., :, None] * b[..., None, :]
            return prod.reshape((*prod.shape[:-2], self.J * self.J)) @ self.T2
        a, b = np.broadcast_arrays(a, b)
        a0 = a[..., :1]
        b0 = b[..., :1]
        out = np.empty(a.shape)
        np.multiply(a[..., 0], b[..., 0], out=out[..., 0])
        f = slice(1, 1 + self.L)
        out[..., f] = a[..., f] * b0 + a0 * b[..., f]
        s = slice(1 + self.L, self.J)
        out[..., s] = (
            a[..., s] * b0
            + a0 * b[..., s]
            + a[..., self.pi] * b[..., self.pj]
            + a[..., self.pj] * b[..., self.pi]
        )
        return out

    def outer_sum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``Σ_g a_g b_g'`` for jet vectors ``a, b`` (R, G, q, J) -> (R, J, q, q)."""
        R, G, q, J = a.shape
        M = np.swapaxes(a.reshape(R, G, q * J), 1, 2) @ b.reshape(R, G, q * J)
        M = M.reshape(R, q, J, q, J).transpose(0, 2, 4, 1, 3).reshape(R, J * J, q * q)
        return (self.T2t @ M).reshape(R, J, q, q)

    def _compose(self, d: np.ndarray, f0: np.ndarray, f1: np.ndarray, f2: np.ndarray) -> np.ndarray:
        """``f(d)`` from ``f(d₀), f'(d₀), f''(d₀)``: ``∂_i f = f' d_i``, ``∂_ij f = f' d_ij + f'' d_i d_j``."""
        out = np.empty_like(d)
        out[..., 0] = f0
        np.multiply(d[..., 1:], f1[..., None], out=out[..., 1:])
        out[..., self.sec_slice] += f2[..., None] * d[..., self.pi] * d[..., self.pj]
        return out

    def recips_and_log(
        self, s: np.ndarray, d: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``1/s``, ``1/d`` and ``log d`` (same shapes) in one composition.

        ``(1/x)' = -1/x²``, ``(1/x)'' = 2/x³``; ``(log x)' = 1/x``, ``(log x)'' = -1/x²``.
        """
        x = np.stack((s, d, d))
        r = 1.0 / x[:2, ..., 0]
        r2 = r * r
        f0 = np.concatenate((r, np.log(x[2:, ..., 0])))
        f1 = np.concatenate((-r2, r[1:]))
        f2 = np.concatenate((2.0 * r2 * r, -r2[1:]))
        out = self._compose(x, f0, f1, f2)
        return out[0], out[1], out[2]

    def logdets(self, S: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
        """``log|S|`` and ``log|F|`` (``F = S[:p, :p]``) of a jet matrix from one factorisation.

        ``log|F| = log|S| + log (S⁻¹)_{qq}`` and ``F⁻¹ = (S⁻¹)_{FF} - (S⁻¹)_{Fq}(S⁻¹)_{qF}/(S⁻¹)_{qq}``
        (the Schur complement of the last row and column); both derivative sets
        then come from the same batched products: ``∂_a log|M| = tr(M⁻¹ M_a)`` and
        ``∂_ab log|M| = tr(M⁻¹ M_ab) - tr(M⁻¹ M_a M⁻¹ M_b)``, the traces of products of
        symmetric matrices as dot products of their flattened entries.  Returns two
        (R, J) arrays.
        """
        R, J, q, _ = S.shape
        L = self.L
        logdet, Si = cholesky_inverse(S[:, 0])
        syy = Si[:, p, p]
        M = np.zeros((R, 2, q, q))
        M[:, 0] = Si
        M[:, 1, :p, :p] = (
            Si[:, :p, :p] - Si[:, :p, p, None] * Si[:, None, p, :p] / syy[:, None, None]
        )
        out = np.empty((R, 2, J))
        out[:, 0, 0] = logdet
        out[:, 1, 0] = out[:, 0, 0] + np.log(syy)
        # tr(M S_a) for every derivative a (S and M symmetric): one product
        out[:, :, 1:] = M.reshape(R, 2, q * q) @ np.swapaxes(
            S[:, 1:].reshape(R, J - 1, q * q), 1, 2
        )
        Z = M[:, :, None] @ S[:, None, 1 : 1 + L]  # (R, 2, L, q, q): M S_a
        ZZ = Z.reshape(R, 2, L, q * q) @ np.swapaxes(
            np.swapaxes(Z, -1, -2).reshape(R, 2, L, q * q), -1, -2
        )
        out[:, :, self.sec_slice] -= ZZ[:, :, self.pairs_i, self.pairs_j]
        return out[:, 0], out[:, 1]

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """First derivatives of jets (..., J) -> (..., L)."""
        return x[..., self.first]

    def hessian(self, x: np.ndarray) -> np.ndarray:
        """Second derivatives of jets (..., J) -> (..., L, L)."""
        return x[..., self.second]


@lru_cache(maxsize=8)
def jet_space(L: int) -> JetSpace:
    """The (cached) :class:`JetSpace` for ``L`` variables."""
    return JetSpace(L)
