"""Cluster-robust (sandwich) variance estimators with small-sample corrections.

Implements CR0, CR1, CR1S, CR2 (Bell & McCaffrey 2002, in the general working-model form of
Pustejovsky & Tipton 2018, as R's clubSandwich) and CR3, the Satterthwaite degrees of freedom
for a single contrast and the Hotelling-T² (HTZ) approximation for several contrasts, for OLS,
WLS and GLS/LMM fixed effects.  Everything is computed cluster by cluster; no n×n matrix is
formed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from trialkit.errors import ModelSpecError
from trialkit.methods import CR_TYPES, check_choice
from trialkit.models.design import ModelFrame
from trialkit.models.inference import t_term
from trialkit.models.results import RobustOlsResult

__all__ = [
    "CRVariance",
    "fit_ols_cr",
    "vcov_cr",
    "nested_intercept_blocks",
    "vcov_cr_gls",
]

Array = np.ndarray


def _sym_power(a: Array, power: float, *, rtol: float = 1e-12) -> Array:
    """Symmetric matrix power by eigendecomposition (pseudo-inverse for negative powers)."""
    a = 0.5 * (a + a.T)
    w, v = np.linalg.eigh(a)
    keep = w > rtol * max(float(np.max(np.abs(w))), 1e-300)
    wp = np.zeros_like(w)
    wp[keep] = w[keep] ** power
    return np.asarray((v * wp) @ v.T, dtype=np.float64)


def _check_type(type: str) -> None:
    check_choice(
        type,
        CR_TYPES,
        path="type",
        code="fit.robust.type",
        hint="CR2 is recommended with few clusters.",
    )


def _check_n_clusters(J: int) -> None:
    if J < 2:
        raise ModelSpecError.from_problem(
            path="cluster",
            code="fit.robust.one_cluster",
            message=f"cluster-robust variance needs at least 2 clusters; got {J}.",
            hint="Check the cluster column.",
        )


def _as_block(b: Any, n: int) -> Array:
    arr = np.asarray(b, dtype=np.float64)
    if arr.ndim == 0:
        return np.eye(n) * float(arr)
    if arr.ndim == 1:
        if arr.shape[0] != n:
            raise ModelSpecError.from_problem(
                path="weights_blocks",
                code="fit.robust.block_size",
                message=f"a weight block must have {n} entries; got {arr.shape[0]}.",
                hint="Give one block per cluster, clusters in sorted label order.",
            )
        return np.diag(arr)
    if arr.shape != (n, n):
        raise ModelSpecError.from_problem(
            path="weights_blocks",
            code="fit.robust.block_size",
            message=f"a working-model block must be {n}×{n}; got {arr.shape}.",
            hint="Give one block per cluster, clusters in sorted label order.",
        )
    return arr


def _blocks_list(
    blocks: Sequence[ArrayLike] | Mapping[Any, ArrayLike] | None,
    labels: Sequence[Any],
    sizes: Sequence[int],
    name: str,
) -> list[Array] | None:
    if blocks is None:
        return None
    if isinstance(blocks, Mapping):
        seq = [blocks[lab] for lab in labels]
    else:
        seq = list(blocks)
    if len(seq) != len(labels):
        raise ModelSpecError.from_problem(
            path=name,
            code="fit.robust.block_count",
            message=f"`{name}` must have one block per cluster ({len(labels)}); got {len(seq)}.",
            hint="Give blocks in sorted cluster-label order or as a mapping label -> block.",
        )
    return [_as_block(b, n) for b, n in zip(seq, sizes, strict=True)]


@dataclass(frozen=True, slots=True, eq=False)
class CRVariance:
    """A cluster-robust covariance matrix with what is needed for small-sample tests.

    Attributes
    ----------
    vcov : ndarray (p, p)
        The cluster-robust covariance of the coefficient estimates.
    type : str
        ``"CR0"``, ``"CR1"``, ``"CR1S"``, ``"CR2"`` or ``"CR3"``.
    n_clusters, n_obs : int
        Number of clusters and observations.
    """

    vcov: Array
    type: str
    n_clusters: int
    n_obs: int
    bread: Array
    labels: tuple[Any, ...]
    _X: tuple[Array, ...]
    _W: tuple[Array, ...]
    _Phi: tuple[Array, ...]
    _A: tuple[Array, ...]
    _S: Array

    @property
    def std_errors(self) -> Array:
        """Square roots of the diagonal of :attr:`vcov`."""
        return np.sqrt(np.diag(self.vcov))

    def _omega(self, cmat: Array) -> Array:
        """Cross-products ``p_{s i}' Φ p_{t j}`` as an array (q, q, J, J)."""
        q = cmat.shape[0]
        J = self.n_clusters
        mc = self.bread @ cmat.T  # p × q
        g = [a.T @ (w @ (x @ mc)) for x, w, a in zip(self._X, self._W, self._A, strict=True)]
        # Q[s][:, j] = M X_j' g_j[:, s];  F[s][:, j] = X_j' W_j Φ_j g_j[:, s]
        Q = np.empty((q, self.bread.shape[0], J))
        F = np.empty_like(Q)
        Gd = np.empty((q, q, J))
        for j, (x, w, phi, gj) in enumerate(zip(self._X, self._W, self._Phi, g, strict=True)):
            Q[:, :, j] = (self.bread @ (x.T @ gj)).T
            pg = phi @ gj
            F[:, :, j] = (x.T @ (w @ pg)).T
            Gd[:, :, j] = gj.T @ pg
        out = np.empty((q, q, J, J))
        for s in range(q):
            for t in range(q):
                om = -F[s].T @ Q[t] - Q[s].T @ F[t] + Q[s].T @ self._S @ Q[t]
                om[np.diag_indices(J)] += Gd[s, t]
                out[s, t] = om
        return out

    def satterthwaite_df(self, contrast: ArrayLike) -> float:
        """Satterthwaite degrees of freedom for one contrast ``c'β``.

        Notes
        -----
        With :math:`p_j = (I-H)_{j\\cdot}' A_j' W_j X_j M c` (an *N*-vector) and Φ the target
        (working) covariance, :math:`\\nu = (\\sum_j p_j'\\Phi p_j)^2 /
        \\sum_i\\sum_j (p_i'\\Phi p_j)^2` (Bell & McCaffrey 2002, eq. 9; Pustejovsky & Tipton
        2018, section 3; clubSandwich ``coef_test(test = "Satterthwaite")``).
        """
        c = np.atleast_2d(np.asarray(contrast, dtype=np.float64))
        om = self._omega(c)[0, 0]
        return float(np.trace(om) ** 2 / np.sum(om * om))

    def wald_test(
        self, beta: ArrayLike, constraints: ArrayLike, *, test: str = "HTZ"
    ) -> dict[str, float]:
        """Wald test of ``Cβ = 0`` with the HTZ (Hotelling T²) small-sample approximation.

        Returns a dict with ``Fstat``, ``df_num``, ``df_denom``, ``p_value`` (as clubSandwich's
        ``Wald_test(test = "HTZ")``; ``test="chi-sq"`` gives the naive χ²/q test).

        Notes
        -----
        Tipton & Pustejovsky (2015), Pustejovsky & Tipton (2018): Ω = E[C V^CR C'] under the
        working model; standardise C̃ = Ω^{-1/2}C, let Ω^{(st)}_{ij} = p̃_{si}'Φ p̃_{tj};
        Var(d_st) = Σ_ij Ω^{(ss)}_{ij}Ω^{(tt)}_{ij} + Ω^{(st)}_{ij}Ω^{(ts)}_{ij};
        η = q(q+1)/Σ_st Var(d_st); F = (η − q + 1)/(η q) · (Cβ)'(C V^CR C')^{-1}(Cβ) with
        F(q, η − q + 1) reference distribution.
        """
        C = np.atleast_2d(np.asarray(constraints, dtype=np.float64))
        b = np.asarray(beta, dtype=np.float64)
        q = C.shape[0]
        cb = C @ b
        Q = float(cb @ np.linalg.solve(C @ self.vcov @ C.T, cb))
        if test == "chi-sq":
            return {
                "Fstat": Q / q,
                "df_num": float(q),
                "df_denom": float("inf"),
                "p_value": float(stats.chi2.sf(Q, q)),
            }
        if test != "HTZ":
            raise ModelSpecError.from_problem(
                path="test",
                code="fit.robust.test",
                message=f"`test` must be 'HTZ' or 'chi-sq'; got {test!r}.",
                hint="Use test='HTZ'.",
            )
        om0 = self._omega(C)
        omega = np.einsum("stjj->st", om0)
        ct = _sym_power(omega, -0.5) @ C
        om = self._omega(ct)
        var = 0.0
        for s in range(q):
            for t in range(q):
                var += float(np.sum(om[s, s] * om[t, t]) + np.sum(om[s, t] * om[t, s]))
        eta = q * (q + 1) / var
        df_denom = eta - q + 1
        F = (eta - q + 1) / (eta * q) * Q
        return {
            "Fstat": F,
            "df_num": float(q),
            "df_denom": df_denom,
            "p_value": float(stats.f.sf(F, q, df_denom)),
        }


def vcov_cr(
    X: ArrayLike,
    resid: ArrayLike,
    cluster: ArrayLike,
    *,
    type: str = "CR2",
    weights_blocks: Sequence[ArrayLike] | Mapping[Any, ArrayLike] | None = None,
    bread: ArrayLike | None = None,
    target_blocks: Sequence[ArrayLike] | Mapping[Any, ArrayLike] | None = None,
) -> CRVariance:
    """Cluster-robust covariance of (weighted) least-squares coefficients.

    Parameters
    ----------
    X : array (N, p)
        Design matrix.
    resid : array (N,)
        Residuals ``y − Xβ̂`` (marginal residuals for a GLS/LMM fit).
    cluster : array (N,)
        Cluster labels. Clusters are ordered by sorted label; blocks below follow that order
        (or give a mapping label → block).
    type : {"CR0", "CR1", "CR1S", "CR2", "CR3"}
        ``CR1`` multiplies CR0 by J/(J−1); ``CR1S`` by J(N−1)/[(J−1)(N−p)] (Stata's and
        clubSandwich's "CR1S").
    weights_blocks : sequence of arrays, optional
        Working weight matrices W_j (n_j×n_j, or a vector for diagonal weights). Default I.
    bread : array (p, p), optional
        M = (X'WX)^{-1}; computed when omitted.
    target_blocks : sequence of arrays, optional
        Target covariance Φ_j for CR2 and the Satterthwaite df. Default: W_j^{-1} when weights
        are given (clubSandwich's ``inverse_var = TRUE``), else I.

    Returns
    -------
    CRVariance

    Notes
    -----
    V = M [Σ_j X_j'W_j A_j e_j e_j' A_j' W_j X_j] M with A_j = I (CR0/CR1/CR1S),
    A_j = (I − X_j M X_j'W_j)^{-1} (CR3, jackknife; Mancl & DeRouen 2001) or, for CR2,
    A_j = D_j' B_j^{-1/2} D_j, where Φ_j = D_j'D_j, B_j = D_j [(I−H)Φ(I−H)']_{jj} D_j' and
    H = X M X'W (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018, eq. 7;
    ``clubSandwich::vcovCR``). For OLS this is A_j = (I − H_jj)^{-1/2} (symmetric root).
    """
    _check_type(type)
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    e = np.asarray(resid, dtype=np.float64).ravel()
    N, p = Xa.shape
    codes, uniq = pd.factorize(pd.Series(np.asarray(cluster)), sort=True)
    J = len(uniq)
    _check_n_clusters(J)
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=J)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    idx = [order[bounds[j] : bounds[j + 1]] for j in range(J)]
    labels = tuple(uniq.tolist())
    Xs = [Xa[i] for i in idx]
    es = [e[i] for i in idx]
    Wl = _blocks_list(weights_blocks, labels, sizes.tolist(), "weights_blocks")
    Tl = _blocks_list(target_blocks, labels, sizes.tolist(), "target_blocks")
    if Wl is None and Tl is None:
        # OLS: every quantity lives in span(X_j); work in an orthonormal basis of it
        Zs = [_orth(x) for x in Xs]
        Xs = [z.T @ x for z, x in zip(Zs, Xs, strict=True)]
        es = [z.T @ ej for z, ej in zip(Zs, es, strict=True)]
        Wl = [np.eye(x.shape[0]) for x in Xs]
        Phil = list(Wl)
    elif Wl is None:
        assert Tl is not None
        Wl = [np.eye(n) for n in sizes]
        Phil = Tl
    else:
        Phil = Tl if Tl is not None else [np.linalg.inv(w) for w in Wl]
    return _cr_core(Xs, es, Wl, Phil, bread, type, N, p, labels)


def _orth(a: Array) -> Array:
    """Orthonormal Z with span(Z) ⊇ span(a) (thin Householder QR).

    Rank detection is unnecessary: a larger invariant subspace leaves every result unchanged.
    """
    if a.shape[0] <= a.shape[1]:
        return np.eye(a.shape[0])
    q, _ = np.linalg.qr(a, mode="reduced")
    return np.asarray(q)


def _cr_core(
    Xs: list[Array],
    es: list[Array],
    Wl: list[Array],
    Phil: list[Array],
    bread: ArrayLike | None,
    type: str,
    N: int,
    p: int,
    labels: tuple[Any, ...],
) -> CRVariance:
    """CR variance from per-cluster (possibly basis-reduced) X_j, e_j, W_j, Φ_j."""
    J = len(Xs)
    WX = [w @ x for w, x in zip(Wl, Xs, strict=True)]
    if bread is None:
        M = np.linalg.inv(sum((x.T @ wx for x, wx in zip(Xs, WX, strict=True)), np.zeros((p, p))))
    else:
        M = np.asarray(bread, dtype=np.float64)
    S = sum((wx.T @ phi @ wx for wx, phi in zip(WX, Phil, strict=True)), np.zeros((p, p)))
    A: list[Array] = []
    for x, wx, phi in zip(Xs, WX, Phil, strict=True):
        n = x.shape[0]
        if type in ("CR0", "CR1", "CR1S"):
            A.append(np.eye(n))
        elif type == "CR3":
            A.append(np.linalg.inv(np.eye(n) - x @ M @ wx.T))
        else:
            xm = x @ M
            hp = xm @ (wx.T @ phi)
            inner = phi - hp - hp.T + xm @ S @ xm.T
            L = np.linalg.cholesky(phi)  # Φ = L L' ; D = L'
            B = L.T @ inner @ L
            A.append(L @ _sym_power(B, -0.5) @ L.T)
    u = np.stack([wx.T @ (a @ ej) for wx, a, ej in zip(WX, A, es, strict=True)])
    V = M @ (u.T @ u) @ M
    if type == "CR1":
        V = V * J / (J - 1)
    elif type == "CR1S":
        V = V * J * (N - 1) / ((J - 1) * (N - p))
    return CRVariance(
        vcov=0.5 * (V + V.T),
        type=type,
        n_clusters=J,
        n_obs=N,
        bread=M,
        labels=labels,
        _X=tuple(Xs),
        _W=tuple(Wl),
        _Phi=tuple(Phil),
        _A=tuple(A),
        _S=S,
    )


def vcov_cr_gls(
    X: ArrayLike,
    resid: ArrayLike,
    cluster: ArrayLike,
    V_blocks: Sequence[Any] | Mapping[Any, Any],
    *,
    type: str = "CR2",
) -> CRVariance:
    """Cluster-robust covariance for GLS / linear-mixed-model fixed effects.

    The working model is the fitted marginal covariance V_j of each top-level cluster
    (W_j = V_j^{-1}) and the CR2 target is V_j itself, as ``clubSandwich::vcovCR`` on an
    ``lmer`` fit.  ``resid`` are the marginal residuals y − Xβ̂.  The scale of V cancels.

    Parameters
    ----------
    X, resid, cluster
        As :func:`vcov_cr`.
    V_blocks : sequence or mapping
        One block per cluster (sorted label order, or a mapping label → block). A block is
        either a dense n_j × n_j matrix or a pair ``(a_j, U_j)`` meaning
        V_j = a_j I + U_j U_j' (see :func:`nested_intercept_blocks`); pairs are handled in an
        orthonormal basis of span[X_j, U_j], so the cost is O(n_j (p + r)²) per cluster and
        no n_j × n_j matrix is formed.
    type : {"CR0", "CR1", "CR1S", "CR2", "CR3"}

    Notes
    -----
    Pustejovsky & Tipton (2018), section 3.2: with W = Φ^{-1},
    [(I−H)Φ(I−H)']_{jj} = V_j − X_j M X_j' and M = (X'V^{-1}X)^{-1}. When V_j = aI + UU',
    every matrix in the estimator is cI + (terms in K = span[X_j, U_j]) and the complement of
    K contributes nothing to the sandwich or the Satterthwaite df, so the computation is exact in
    a basis Z of K: X̃_j = Z'X_j, ẽ_j = Z'e_j, Ṽ_j = aI + (Z'U)(Z'U)'.
    """
    _check_type(type)
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    e = np.asarray(resid, dtype=np.float64).ravel()
    codes, uniq = pd.factorize(pd.Series(np.asarray(cluster)), sort=True)
    labels = tuple(uniq.tolist())
    seq = [V_blocks[lab] for lab in labels] if isinstance(V_blocks, Mapping) else list(V_blocks)
    if not any(isinstance(b, tuple) for b in seq):
        sizes = np.bincount(codes, minlength=len(uniq)).tolist()
        Vl = _blocks_list(seq, labels, sizes, "V_blocks")
        assert Vl is not None
        W = [np.linalg.inv(v) for v in Vl]
        return vcov_cr(X, resid, cluster, type=type, weights_blocks=W, target_blocks=Vl)
    if len(seq) != len(labels):
        raise ModelSpecError.from_problem(
            path="V_blocks",
            code="fit.robust.block_count",
            message=f"`V_blocks` must have one block per cluster ({len(labels)}); got {len(seq)}.",
            hint="Give blocks in sorted cluster-label order or as a mapping label -> block.",
        )
    J = len(labels)
    _check_n_clusters(J)
    N, p = Xa.shape
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=J))])
    Xs: list[Array] = []
    es: list[Array] = []
    Wl: list[Array] = []
    Phil: list[Array] = []
    for j, blk in enumerate(seq):
        i = order[bounds[j] : bounds[j + 1]]
        xj, ej = Xa[i], e[i]
        if isinstance(blk, tuple):
            a, U = float(blk[0]), np.asarray(blk[1], dtype=np.float64).reshape(len(i), -1)
            Z = _orth(np.hstack([xj, U]))
            zu = Z.T @ U
            phi = a * np.eye(Z.shape[1]) + zu @ zu.T
            xj, ej = Z.T @ xj, Z.T @ ej
        else:
            phi = _as_block(blk, len(i))
        Xs.append(xj)
        es.append(ej)
        Phil.append(phi)
        Wl.append(np.linalg.inv(phi))
    return _cr_core(Xs, es, Wl, Phil, None, type, N, p, labels)


def nested_intercept_blocks(
    cluster_codes: Sequence[ArrayLike], variances: Sequence[float], residual: float
) -> list[tuple[float, Array]]:
    """Low-rank marginal-covariance blocks of a nested random-intercept model.

    Parameters
    ----------
    cluster_codes : sequence of arrays (N,)
        Cluster ids per level, top level first (as ``ModelFrame.cluster_codes``).
    variances : sequence of float
        Random-intercept variance per level, same order.
    residual : float
        Residual variance σ².

    Returns
    -------
    list of (float, ndarray)
        For each top-level cluster in sorted label order, ``(σ², U_j)`` with
        V_j = σ²I + U_jU_j'; U_j has one column √τ²_l · 1[group] per group of each level
        within the cluster, rows in the cluster's original row order.
    """
    top = np.asarray(cluster_codes[0])
    codes, _ = pd.factorize(pd.Series(top), sort=True)
    order = np.argsort(codes, kind="stable")
    J = int(codes.max()) + 1
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=J))])
    out = []
    for j in range(J):
        i = order[bounds[j] : bounds[j + 1]]
        cols = []
        for lev, var in zip(cluster_codes, variances, strict=True):
            g, _ = pd.factorize(pd.Series(np.asarray(lev)[i]))
            ind = np.zeros((len(i), int(g.max()) + 1))
            ind[np.arange(len(i)), g] = math.sqrt(max(float(var), 0.0))
            cols.append(ind)
        out.append((float(residual), np.hstack(cols)))
    return out


# --------------------------------------------------------------------------- frame adapter
def frame_parts(frame: ModelFrame) -> dict[str, Any]:
    """Read the arrays trialkit's analysis functions need from a :class:`ModelFrame`."""
    X = np.asarray(frame.X, dtype=np.float64)
    return {
        "X": X,
        "y": np.asarray(frame.y, dtype=np.float64),
        "names": list(frame.column_names),
        "treatment_index": int(frame.treatment_index),
        "clusters": [np.asarray(c) for c in frame.cluster_codes],
        "cluster_names": list(frame.clusters),
        "cluster_level": np.asarray(frame.cluster_level_columns, dtype=bool),
        "exclusions": tuple(frame.exclusions),
        "n_excluded": int(frame.n_excluded),
        "data_hash": frame.data_hash,
        "outcome": frame.outcome,
        "treatment": frame.treatment,
        "formula": frame.formula,
        "n_clusters": frame.n_clusters_by_name,
    }


def fit_ols_cr(frame: ModelFrame, *, vcov: str = "CR2", alpha: float = 0.05) -> RobustOlsResult:
    """OLS with a cluster-robust covariance and Satterthwaite df (method ``"ols-cr2"``).

    Clusters are the top level of ``frame``. See :func:`vcov_cr` for the estimators.

    Notes
    -----
    β̂ = (X'X)^{-1}X'y; V^CR from :func:`vcov_cr`; each coefficient is tested with
    t = β̂_k / SE_k on the Satterthwaite df of Bell & McCaffrey (2002) / Pustejovsky & Tipton
    (2018), as ``clubSandwich::coef_test(vcov = "CR2", test = "Satterthwaite")``.
    """
    fp = frame_parts(frame)
    X, y = fp["X"], fp["y"]
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    cl = fp["clusters"][0]
    cr = vcov_cr(X, resid, cl, type=vcov)
    se = cr.std_errors
    terms = []
    for k, name in enumerate(fp["names"]):
        c = np.zeros(X.shape[1])
        c[k] = 1.0
        df = cr.satterthwaite_df(c)
        terms.append(t_term(name, beta[k], se[k], df, alpha, "satterthwaite"))
    ti = fp["treatment_index"]
    n_obs, p = X.shape
    sigma2 = float(resid @ resid / (n_obs - p))
    nclus = fp["n_clusters"]
    warnings = []
    if cr.n_clusters < 40:
        warnings.append(f"{cr.n_clusters} clusters: small-sample {vcov} with Satterthwaite df used")
    return RobustOlsResult(
        method="ols-cr2",
        family="gaussian",
        outcome=fp["outcome"],
        treatment_column=fp["treatment"],
        treatment_term=fp["names"][ti],
        treatment=terms[ti],
        fixed_effects=tuple(terms),
        variance_components={"residual": sigma2},
        icc={},
        df_method="satterthwaite",
        n_obs=n_obs,
        n_clusters=nclus,
        n_excluded=fp["n_excluded"],
        exclusions=fp["exclusions"],
        reml=False,
        formula=fp["formula"],
        data_hash=fp["data_hash"],
        warnings=tuple(warnings),
        vcov_type=vcov,
        vcov=tuple(tuple(float(v) for v in row) for row in cr.vcov),
        n_top_clusters=cr.n_clusters,
    )
