"""REML/ML engine for linear mixed models with nested random intercepts (private).

Model
-----
``y = X β + Σ_l Z_l u_l + e`` with ``u_l ~ N(0, ψ_l I)`` for each nesting level
``l = 0 .. L-1`` (top first) and ``e ~ N(0, σ² I)``.  We write ``θ_l = √(ψ_l/σ²)``
(relative standard deviations, as lme4) and ``V = Σ/σ² = I + Σ_l θ_l² Z_l Z_l'``.

Block structure (never an n × n matrix)
---------------------------------------
Let the *lowest* level have ``K`` groups of sizes ``n_k`` with indicator ``Z``
(n × K), ``H = Z'Z = diag(n_k)``, within projector ``M_w = I - Z H⁻¹ Z'`` and
group means ``x̄ = H⁻¹ Z' X``.  Upper-level indicators are ``Z_l = Z T_l``.  Then

``V⁻¹ = M_w + Z H⁻¹ B⁻¹ H⁻¹ Z'``, with ``B = H⁻¹ + Σ_l θ_l² T_l T_l'``,

and ``B`` is block diagonal by top-level cluster (one small ``m × m`` block per
cluster, ``m`` = number of lowest-level groups in it; blocks are padded to a
common size with inert unit diagonals so that every operation is a batched
numpy call).  Hence, with ``W = X'M_w X`` the *centred* within-group scatter
(positive definite at any variance ratio),

* ``X'V⁻¹X = W + Σ_c x̄_c' B_c⁻¹ x̄_c`` (and likewise with ``y`` appended),
* ``log|V| = Σ_k log n_k + Σ_c log|B_c|``,
* for each variance component ``r`` (levels, then the residual) with
  ``G_r = Z_r Z_r'`` (``G_e = I``), writing ``M_l = T_l T_l'`` and ``M_e = H⁻¹``:
  ``tr(V⁻¹G_r) = Σ_c tr(B⁻¹M_r) [+ n - K]``,
  ``tr(V⁻¹G_rV⁻¹G_s) = Σ_c tr(B⁻¹M_rB⁻¹M_s) [+ n - K]``,
  ``X'V⁻¹G_rV⁻¹X = Σ_c x̄'B⁻¹M_rB⁻¹x̄ [+ W]``,
  ``X'V⁻¹G_rV⁻¹G_sV⁻¹X = Σ_c x̄'B⁻¹M_rB⁻¹M_sB⁻¹x̄ [+ W]``,
  where the bracketed within-group terms apply to the residual component only.

These give the profiled REML (or ML) deviance, its exact gradient and observed
Hessian, and every Kenward–Roger and Satterthwaite ingredient as sums over
clusters.  The criterion is lme4's (Bates et al. 2015, eq. 41/34):

``d_REML(θ) = log|V| + log|X'V⁻¹X| + (n-p)[1 + log(2π r²/(n-p))]``,
``d_ML(θ) = log|V| + n[1 + log(2π r²/n)]``, ``r² = min_β (y-Xβ)'V⁻¹(y-Xβ)``,

minimised over ``θ`` by Newton's method with the exact gradient and Hessian
(the deviance is even in each ``θ_l``, so the optimum's ``|θ|`` gives lme4's
boundary at zero) from a moment-based start, with an L-BFGS-B fallback.

Batching (the path ``trialkit power simulate`` uses)
----------------------------------------------------
Every array carries a leading replicate axis ``R``.  :func:`fit_lmm_batch`
fits ``R`` data sets that share the cluster layout (and optionally ``X``) at
once — the Newton iterations run in lock step with per-replicate line
searches — and returns estimates, Kenward–Roger (or other) standard errors,
df and p-values for one contrast.  Its results equal the one-at-a-time path
(:func:`fit_lmm` with ``R = 1``) to rounding error (≈1e-12)::

    layout = make_layout(frame.cluster_codes)
    out = fit_lmm_batch(layout, frame.X, Y)          # Y: (R, n)
    out["estimate"], out["std_error"], out["df"], out["p_value"]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from trialkit.models.dfmethods import _pinv_safe
from trialkit.models.inference import t_inference

__all__ = [
    "Evaluation",
    "Layout",
    "LMMFitted",
    "Stats",
    "evaluate",
    "fit_lmm",
    "fit_lmm_batch",
    "make_layout",
    "make_stats",
]

_LOG2PI = float(np.log(2.0 * np.pi))


# ---------------------------------------------------------------------- layout
@dataclass(frozen=True, eq=False)
class Layout:
    """Cluster structure shared by every fit on the same rows.

    ``N[l]`` is the ``(C, m, m)`` same-group indicator of level ``l`` among the
    lowest-level groups of each top cluster (identity on real slots for the
    lowest level); ``hinv_b`` is ``1/n_k`` on real slots and 1 on padding (used
    in ``B``), ``hinv_m`` the same with 0 on padding (used as ``M_e``).
    """

    n: int
    L: int
    K: int
    C: int
    m: int
    lowest: np.ndarray  # (n,) lowest-level group of each row
    nk: np.ndarray  # (K,)
    slot_c: np.ndarray  # (K,) top cluster of each lowest group
    slot_i: np.ndarray  # (K,) slot within its top cluster
    mask: np.ndarray  # (C, m) real slots
    N: tuple[np.ndarray, ...]
    hinv_b: np.ndarray  # (C, m)
    hinv_m: np.ndarray  # (C, m)
    sum_log_nk: float


def make_layout(cluster_codes: Sequence[np.ndarray]) -> Layout:
    """Precompute the block layout from nested cluster codes (top level first)."""
    codes = [np.asarray(c, dtype=np.int64) for c in cluster_codes]
    if not codes:
        raise ValueError("a mixed model needs at least one cluster level")
    n = int(codes[0].shape[0])
    L = len(codes)
    lowest = codes[-1]
    K = int(lowest.max()) + 1
    nk = np.bincount(lowest, minlength=K).astype(float)
    grp = []
    for c in codes:
        g = np.empty(K, dtype=np.int64)
        g[lowest] = c
        grp.append(g)
    top = grp[0]
    C = int(top.max()) + 1
    per = np.bincount(top, minlength=C)
    m = int(per.max())
    order = np.argsort(top, kind="stable")
    starts = np.concatenate([[0], np.cumsum(per)[:-1]])
    slot_i = np.empty(K, dtype=np.int64)
    slot_i[order] = np.arange(K) - starts[top[order]]
    slot_c = top
    mask = np.zeros((C, m), dtype=bool)
    mask[slot_c, slot_i] = True
    N = []
    for level in range(L):
        gid = np.full((C, m), -1, dtype=np.int64)
        gid[slot_c, slot_i] = grp[level]
        same = (gid[:, :, None] == gid[:, None, :]) & mask[:, :, None] & mask[:, None, :]
        N.append(same.astype(float))
    hinv_m = np.zeros((C, m))
    hinv_m[slot_c, slot_i] = 1.0 / nk
    hinv_b = np.where(mask, hinv_m, 1.0)
    return Layout(
        n=n,
        L=L,
        K=K,
        C=C,
        m=m,
        lowest=lowest,
        nk=nk,
        slot_c=slot_c,
        slot_i=slot_i,
        mask=mask,
        N=tuple(N),
        hinv_b=hinv_b,
        hinv_m=hinv_m,
        sum_log_nk=float(np.sum(np.log(nk))),
    )


# ---------------------------------------------------------------------- statistics
@dataclass(frozen=True, eq=False)
class Stats:
    """Sufficient statistics of ``[X, y]`` for ``R`` replicates.

    ``W``: ``(R, p+1, p+1)`` centred within-lowest-group scatter;
    ``xbar``: ``(R, C, m, p+1)`` lowest-group means in padded slots.
    """

    p: int
    W: np.ndarray
    xbar: np.ndarray


def _group_sums(lay: Layout, A: np.ndarray) -> np.ndarray:
    """Sums of the columns of ``A`` (n, q) by lowest group -> (K, q)."""
    q = A.shape[1]
    idx = (lay.lowest[:, None] * q + np.arange(q)[None, :]).ravel()
    return np.bincount(idx, weights=A.ravel(), minlength=lay.K * q).reshape(lay.K, q)


def make_stats(lay: Layout, X: np.ndarray, Y: np.ndarray) -> Stats:
    """One O(n) pass: group means and centred within-group scatter.

    ``X`` is ``(n, p)`` (shared) or ``(R, n, p)``; ``Y`` is ``(n,)`` or ``(R, n)``.
    """
    Y = np.asarray(Y, dtype=float)
    if Y.ndim == 1:
        Y = Y[None, :]
    R = Y.shape[0]
    X = np.asarray(X, dtype=float)
    p = X.shape[-1]
    xbar = np.zeros((R, lay.C, lay.m, p + 1))
    if X.ndim == 2:
        mx = _group_sums(lay, X) / lay.nk[:, None]  # (K, p)
        Dx = X - mx[lay.lowest]
        Wxx = Dx.T @ Dx
        idx = (np.arange(R)[:, None] * lay.K + lay.lowest[None, :]).ravel()
        my = np.bincount(idx, weights=Y.ravel(), minlength=R * lay.K).reshape(R, lay.K)
        my = my / lay.nk[None, :]
        Wxy = Y @ Dx  # (R, p): Dx sums to zero within groups
        Dy = Y - my[:, lay.lowest]
        Wyy = np.einsum("rn,rn->r", Dy, Dy)
        W = np.empty((R, p + 1, p + 1))
        W[:, :p, :p] = Wxx
        W[:, :p, p] = Wxy
        W[:, p, :p] = Wxy
        W[:, p, p] = Wyy
        xbar[:, lay.slot_c, lay.slot_i, :p] = mx[None]
        xbar[:, lay.slot_c, lay.slot_i, p] = my
    else:
        W = np.empty((R, p + 1, p + 1))
        for r in range(R):
            A = np.column_stack([X[r], Y[r]])
            mA = _group_sums(lay, A) / lay.nk[:, None]
            D = A - mA[lay.lowest]
            W[r] = D.T @ D
            xbar[r, lay.slot_c, lay.slot_i, :] = mA
    return Stats(p=p, W=W, xbar=xbar)


def _take(st: Stats, idx: np.ndarray) -> Stats:
    return Stats(p=st.p, W=st.W[idx], xbar=st.xbar[idx])


# ---------------------------------------------------------------------- evaluation
@dataclass(eq=False)
class Evaluation:
    """Deviance (and optionally derivatives) at ``theta`` for each replicate."""

    theta: np.ndarray  # (R, L)
    dev: np.ndarray  # (R,)
    beta: np.ndarray  # (R, p)
    s2: np.ndarray  # (R,) profiled σ²
    Fa: np.ndarray  # (R, p+1, p+1) [X y]'V⁻¹[X y]
    Phiv: np.ndarray | None = None  # (R, p, p) (X'V⁻¹X)⁻¹
    # derivative ingredients (V scale, residual-augmented [X, r]):
    Yr: np.ndarray | None = None  # (R, nr, p+1, p+1)  Xa'V⁻¹G_rV⁻¹Xa
    Qr: np.ndarray | None = None  # (R, nr, nr, p+1, p+1)
    t1: np.ndarray | None = None  # (R, nr)   tr(V⁻¹G_r)
    a: np.ndarray | None = None  # (R, nr, nr) tr(V⁻¹G_rV⁻¹G_s)
    g_psi: np.ndarray | None = None  # (R, nr) gradient of the (non-profiled) deviance in ψ
    H_psi: np.ndarray | None = None  # (R, nr, nr) observed Hessian in ψ
    trPGPG: np.ndarray | None = None  # (R, nr, nr) tr(P G_r P G_s) (REML P)


def _cross(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``Σ_c A_c' B_c`` for (R, C, m, q) stacks -> (R, q, q), via one batched matmul."""
    R, C, m, q = A.shape
    return np.swapaxes(A.reshape(R, C * m, q), -1, -2) @ B.reshape(R, C * m, B.shape[-1])


def evaluate(
    lay: Layout, st: Stats, theta: np.ndarray, *, reml: bool = True, deriv: bool = False
) -> Evaluation:
    """Profiled deviance at ``theta`` (R, L); with ``deriv`` also every derivative."""
    theta = np.asarray(theta, dtype=float)
    R = theta.shape[0]
    p = st.p
    n = lay.n
    th2 = theta**2
    B = np.broadcast_to(
        np.einsum("cm,mk->cmk", lay.hinv_b, np.eye(lay.m)), (R, lay.C, lay.m, lay.m)
    ).copy()
    for level in range(lay.L):
        B += th2[:, level, None, None, None] * lay.N[level][None]
    Lc = np.linalg.cholesky(B)
    logdetB = 2.0 * np.log(np.diagonal(Lc, axis1=-2, axis2=-1)).sum(axis=(1, 2))
    Bi = np.linalg.inv(B)
    Z = Bi @ st.xbar  # (R, C, m, p+1)
    Fa = st.W + _cross(st.xbar, Z)
    F = Fa[:, :p, :p]
    LF = np.linalg.cholesky(F)
    logdetF = 2.0 * np.log(np.diagonal(LF, axis1=-2, axis2=-1)).sum(axis=1)
    beta = np.linalg.solve(F, Fa[:, :p, p][..., None])[..., 0]
    r2 = Fa[:, p, p] - np.einsum("ri,ri->r", Fa[:, :p, p], beta)
    r2 = np.maximum(r2, np.finfo(float).tiny)
    logdetV = lay.sum_log_nk + logdetB
    if reml:
        dfr = n - p
        dev = logdetV + logdetF + dfr * (1.0 + _LOG2PI + np.log(r2 / dfr))
    else:
        dfr = n
        dev = logdetV + n * (1.0 + _LOG2PI + np.log(r2 / n))
    s2 = r2 / dfr
    ev = Evaluation(theta=theta, dev=dev, beta=beta, s2=s2, Fa=Fa)
    if not deriv:
        return ev

    L = lay.L
    nr = L + 1
    q = p + 1
    Phiv = np.linalg.inv(F)
    # U_r = M_r Z ; BiM_r = B⁻¹ M_r
    U = []
    BiM = []
    for level in range(L):
        Nl = lay.N[level]
        if level == L - 1:
            U.append(Z * lay.mask[None, :, :, None])
            BiM.append(Bi * lay.mask[None, :, None, :])
        else:
            U.append(Nl[None] @ Z)
            BiM.append(Bi @ Nl[None])
    U.append(Z * lay.hinv_m[None, :, :, None])
    BiM.append(Bi * lay.hinv_m[None, :, None, :])
    within = float(n - lay.K)
    t1 = np.empty((R, nr))
    a = np.empty((R, nr, nr))
    Yr = np.empty((R, nr, q, q))
    Qr = np.empty((R, nr, nr, q, q))
    BU = [Bi @ u for u in U]
    for r_ in range(nr):
        t1[:, r_] = np.einsum("rcii->r", BiM[r_])
        Yr[:, r_] = _cross(Z, U[r_])
        for s_ in range(r_, nr):
            a[:, r_, s_] = (BiM[r_] * np.swapaxes(BiM[s_], -1, -2)).sum(axis=(1, 2, 3))
            Qr[:, r_, s_] = _cross(U[r_], BU[s_])
            if s_ != r_:
                a[:, s_, r_] = a[:, r_, s_]
                Qr[:, s_, r_] = np.swapaxes(Qr[:, r_, s_], -1, -2)
    t1[:, L] += within
    a[:, L, L] += within
    Yr[:, L] += st.W
    Qr[:, L, L] += st.W
    # residual-augmented: [X, y] -> [X, r], r = y - X beta
    T = np.broadcast_to(np.eye(q), (R, q, q)).copy()
    T[:, :p, p] = -beta
    Tt = np.swapaxes(T, -1, -2)
    Yr = Tt[:, None] @ Yr @ T[:, None]
    Qr = Tt[:, None, None] @ Qr @ T[:, None, None]
    s2b = s2[:, None]
    YX = Yr[:, :, :p, :p]
    PhiY = Phiv[:, None] @ YX  # Φv Y_r
    trPhiY = np.einsum("rkii->rk", PhiY)
    yry = Yr[:, :, p, p]
    if reml:
        g_psi = (t1 - trPhiY) / s2b - yry / s2b**2
    else:
        g_psi = t1 / s2b - yry / s2b**2
    trPhiQ = (Phiv[:, None, None] * np.swapaxes(Qr[:, :, :, :p, :p], -1, -2)).sum(axis=(3, 4))
    trPYPY = (PhiY[:, :, None] * np.swapaxes(PhiY, -1, -2)[:, None]).sum(axis=(3, 4))
    trPGPG = (a - 2.0 * trPhiQ + trPYPY) / s2[:, None, None] ** 2
    yrX = Yr[:, :, p, :p]  # (R, nr, p)
    yPGPGPy = (Qr[:, :, :, p, p] - np.einsum("rki,rij,rlj->rkl", yrX, Phiv, yrX)) / s2[
        :, None, None
    ] ** 3
    first = trPGPG if reml else a / s2[:, None, None] ** 2
    H_psi = -first + 2.0 * yPGPGPy
    ev.Phiv = Phiv
    ev.Yr = Yr
    ev.Qr = Qr
    ev.t1 = t1
    ev.a = a
    ev.g_psi = g_psi
    ev.H_psi = H_psi
    ev.trPGPG = trPGPG
    return ev


def _profiled_derivs(ev: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of the profiled deviance with respect to θ."""
    assert ev.g_psi is not None and ev.H_psi is not None
    theta = ev.theta
    R, L = theta.shape
    s = ev.s2
    J = np.zeros((R, L + 1, L + 1))  # rows: ψ components; cols: (θ_0..θ_{L-1}, s)
    idx = np.arange(L)
    J[:, idx, idx] = 2.0 * s[:, None] * theta
    J[:, idx, L] = theta**2
    J[:, L, L] = 1.0
    g = ev.g_psi
    H = np.einsum("rai,rab,rbj->rij", J, ev.H_psi, J)
    gl = g[:, :L]
    H[:, idx, idx] += 2.0 * s[:, None] * gl
    H[:, idx, L] += 2.0 * theta * gl
    H[:, L, idx] += 2.0 * theta * gl
    gfull = np.einsum("rai,ra->ri", J, g)
    gd = gfull[:, :L]
    Hd = H[:, :L, :L] - H[:, :L, L, None] * H[:, None, L, :L] / H[:, L, L, None, None]
    return gd, Hd


# ---------------------------------------------------------------------- optimisation
def _moment_start(lay: Layout, st: Stats) -> np.ndarray:
    """Crude ANOVA-type start for θ (floored away from 0, where the gradient vanishes)."""
    p = st.p
    R = st.W.shape[0]
    W = st.W
    F0 = _ols_F(lay, st)
    beta = np.linalg.solve(F0[:, :p, :p], F0[:, :p, p][..., None])[..., 0]
    # within residual variance
    rw = (
        W[:, p, p]
        - 2 * np.einsum("ri,ri->r", W[:, :p, p], beta)
        + np.einsum("ri,rij,rj->r", beta, W[:, :p, :p], beta)
    )
    s_w = np.maximum(rw / max(lay.n - lay.K, 1), 1e-12)
    ebar = st.xbar[..., p] - np.einsum("rcmi,ri->rcm", st.xbar[..., :p], beta)  # (R, C, m)
    nk = _n_pad(lay)
    theta = np.empty((R, lay.L))
    wsum = nk.sum()
    mean_e = np.einsum("rcm,cm->r", ebar, nk) / wsum
    var_k = np.einsum("rcm,cm->r", (ebar - mean_e[:, None, None]) ** 2, nk) / wsum
    nbar = wsum / lay.K
    between = np.maximum(var_k - s_w / nbar, 0.0)
    theta[:] = np.sqrt(between / s_w / lay.L)[:, None]
    return np.maximum(theta, 0.2)


def _n_pad(lay: Layout) -> np.ndarray:
    nk = np.zeros((lay.C, lay.m))
    nk[lay.slot_c, lay.slot_i] = lay.nk
    return nk


def _ols_F(lay: Layout, st: Stats) -> np.ndarray:
    nk = _n_pad(lay)
    return st.W + _cross(st.xbar, st.xbar * nk[None, :, :, None])


def _subset_eval(ev: Evaluation, idx: np.ndarray) -> Evaluation:
    out = Evaluation(
        theta=ev.theta[idx], dev=ev.dev[idx], beta=ev.beta[idx], s2=ev.s2[idx], Fa=ev.Fa[idx]
    )
    for name in ("Phiv", "Yr", "Qr", "t1", "a", "g_psi", "H_psi", "trPGPG"):
        val = getattr(ev, name)
        setattr(out, name, None if val is None else val[idx])
    return out


def _assign_eval(dst: Evaluation, idx: np.ndarray, src: Evaluation) -> None:
    for name in (
        "theta",
        "dev",
        "beta",
        "s2",
        "Fa",
        "Phiv",
        "Yr",
        "Qr",
        "t1",
        "a",
        "g_psi",
        "H_psi",
        "trPGPG",
    ):
        getattr(dst, name)[idx] = getattr(src, name)


def _newton(
    lay: Layout, st: Stats, theta0: np.ndarray, *, reml: bool, maxit: int = 60, tol: float = 1e-16
) -> tuple[Evaluation, np.ndarray, np.ndarray]:
    """Batched Newton on θ with backtracking.

    Returns the evaluation (with derivatives) at the final θ of every replicate,
    a converged flag and the iteration count.  Each iteration costs one
    evaluation with derivatives when the full step is accepted.
    """
    R = theta0.shape[0]
    cur = evaluate(lay, st, theta0.copy(), reml=reml, deriv=True)
    conv = np.zeros(R, dtype=bool)
    iters = np.zeros(R, dtype=np.int64)
    active = np.arange(R)
    for _ in range(maxit):
        if active.size == 0:
            break
        ev = _subset_eval(cur, active) if active.size < R else cur
        gd, Hd = _profiled_derivs(ev)
        # modified Newton: make the Hessian positive definite
        w, Vv = np.linalg.eigh(Hd)
        wmax = np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-12)
        w = np.maximum(np.abs(w), 1e-8 * wmax)
        step = -np.einsum("rij,rj->ri", Vv, np.einsum("rji,rj->ri", Vv, gd) / w)
        dec = -np.einsum("ri,ri->r", gd, step)
        big = np.abs(step).max(axis=1)
        step *= (4.0 / np.maximum(big, 4.0))[:, None]
        done = (dec < tol * (1.0 + np.abs(ev.dev))) | (
            np.abs(step).max(axis=1) < 1e-10 * (1.0 + np.abs(ev.theta).max(axis=1))
        )
        iters[active] += 1
        alpha = np.ones(active.size)
        todo = ~done
        for _ls in range(40):
            if not todo.any():
                break
            ii = np.flatnonzero(todo)
            cand = ev.theta[ii] + alpha[ii, None] * step[ii]
            sub = _take(st, active[ii]) if ii.size < R else st
            cev = evaluate(lay, sub, cand, reml=reml, deriv=True)
            ok = cev.dev <= ev.dev[ii] - 1e-4 * alpha[ii] * dec[ii] + 1e-12 * np.abs(ev.dev[ii])
            if ok.any():
                _assign_eval(cur, active[ii[ok]], _subset_eval(cev, np.flatnonzero(ok)))
            todo[ii[ok]] = False
            alpha[ii[~ok]] *= 0.5
        conv[active[done]] = True
        # line search failed: converged only if the decrement is already tiny
        stuck = todo
        conv[active[stuck & (dec < 1e-8 * (1.0 + np.abs(ev.dev)))]] = True
        active = active[~(done | stuck)]
    return cur, conv, iters


def _fallback(lay: Layout, st: Stats, theta0: np.ndarray, *, reml: bool) -> tuple[np.ndarray, bool]:
    """L-BFGS-B on θ ≥ 0 with the exact gradient for one replicate."""

    def fun(t: np.ndarray) -> tuple[float, np.ndarray]:
        ev = evaluate(lay, st, t[None, :], reml=reml, deriv=True)
        gd, _ = _profiled_derivs(ev)
        return float(ev.dev[0]), gd[0]

    res = optimize.minimize(
        fun,
        np.maximum(np.abs(theta0), 0.1),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * lay.L,
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 500},
    )
    return np.asarray(res.x), bool(res.success)


def optimise(
    lay: Layout, st: Stats, *, reml: bool = True, theta0: np.ndarray | None = None
) -> tuple[Evaluation, np.ndarray, np.ndarray]:
    """Minimise the profiled deviance for every replicate.

    Returns the evaluation with derivatives at the optimum (``θ ≥ 0``, components
    driven to the boundary set to exactly 0), a ``converged`` flag and the
    Newton iteration count per replicate.
    """
    if theta0 is None:
        theta0 = _moment_start(lay, st)
    ev, conv, iters = _newton(lay, st, theta0, reml=reml)
    theta = np.abs(ev.theta)
    snap = theta < 1e-7
    theta[snap] = 0.0
    ev.theta = theta
    redo = np.flatnonzero(snap.any(axis=1))
    if redo.size:
        _assign_eval(ev, redo, evaluate(lay, _take(st, redo), theta[redo], reml=reml, deriv=True))
    assert ev.g_psi is not None
    # a zero component must be a genuine boundary optimum (gradient in ψ >= 0)
    bad = ((theta == 0.0) & (ev.g_psi[:, : lay.L] * ev.s2[:, None] < -1e-6)).any(axis=1)
    for r in np.flatnonzero(~conv | bad):
        sub = _take(st, np.array([r]))
        t, ok = _fallback(lay, sub, theta[r], reml=reml)
        t[t < 1e-7] = 0.0
        _assign_eval(ev, np.array([r]), evaluate(lay, sub, t[None, :], reml=reml, deriv=True))
        conv[r] = ok
    return ev, conv, iters


# ---------------------------------------------------------------------- fitted model
@dataclass(frozen=True, eq=False)
class LMMFitted:
    """Everything inference needs, for ``R`` replicates (private; holds no data rows).

    ``Phi`` is the model-based covariance of β̂; ``P`` (R, nr, p, p) the
    ``X'Σ⁻¹G_rΣ⁻¹X``; ``Q`` (R, nr, nr, p, p) the ``X'Σ⁻¹G_rΣ⁻¹G_sΣ⁻¹X``;
    ``info`` the expected information ``½ tr(PG_rPG_s)`` in ψ; ``H_vp`` the
    Hessian of the REML deviance in lmerTest's parameters ``(θ, σ)`` and
    ``J_vp`` the Jacobian ``∂ψ/∂(θ, σ)``.
    """

    reml: bool
    n: int
    p: int
    L: int
    theta: np.ndarray
    beta: np.ndarray
    sigma2: np.ndarray
    psi: np.ndarray  # (R, L+1) variance components, levels then residual
    Phi: np.ndarray
    P: np.ndarray
    Q: np.ndarray
    info: np.ndarray
    H_vp: np.ndarray
    J_vp: np.ndarray
    loglik: np.ndarray
    deviance: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray


def _finish(
    lay: Layout, st: Stats, ev: Evaluation, conv: np.ndarray, iters: np.ndarray, reml: bool
) -> LMMFitted:
    theta = ev.theta
    assert ev.Phiv is not None and ev.Yr is not None and ev.Qr is not None
    assert ev.g_psi is not None and ev.H_psi is not None and ev.trPGPG is not None
    p = st.p
    L = lay.L
    s2 = ev.s2
    R = theta.shape[0]
    Phi = ev.Phiv * s2[:, None, None]
    P = ev.Yr[:, :, :p, :p] / s2[:, None, None, None] ** 2
    Q = ev.Qr[:, :, :, :p, :p] / s2[:, None, None, None, None] ** 3
    if not reml:
        # KR and Satterthwaite ingredients always use the REML information form
        pass
    info = 0.5 * ev.trPGPG
    # (θ, σ) parameterisation of lmerTest
    sig = np.sqrt(s2)
    idx = np.arange(L)
    J = np.zeros((R, L + 1, L + 1))
    J[:, idx, idx] = 2.0 * s2[:, None] * theta
    J[:, idx, L] = 2.0 * sig[:, None] * theta**2
    J[:, L, L] = 2.0 * sig
    H = np.einsum("rai,rab,rbj->rij", J, ev.H_psi, J)
    g = ev.g_psi
    gl = g[:, :L]
    H[:, idx, idx] += 2.0 * s2[:, None] * gl
    H[:, idx, L] += 4.0 * sig[:, None] * theta * gl
    H[:, L, idx] += 4.0 * sig[:, None] * theta * gl
    H[:, L, L] += 2.0 * np.einsum("rl,rl->r", gl, theta**2) + 2.0 * g[:, L]
    psi = np.concatenate([s2[:, None] * theta**2, s2[:, None]], axis=1)
    return LMMFitted(
        reml=reml,
        n=lay.n,
        p=p,
        L=L,
        theta=theta,
        beta=ev.beta,
        sigma2=s2,
        psi=psi,
        Phi=Phi,
        P=P,
        Q=Q,
        info=info,
        H_vp=H,
        J_vp=J,
        loglik=-0.5 * ev.dev,
        deviance=ev.dev,
        converged=conv,
        iterations=iters,
    )


def fit_lmm(lay: Layout, X: np.ndarray, Y: np.ndarray, *, reml: bool = True) -> LMMFitted:
    """Fit ``R`` replicates (``Y`` of shape (n,) or (R, n)) sharing the layout.

    θ is optimised on an equivalent standardised problem (centred and scaled
    ``y`` and covariate columns; θ̂ is invariant to both) and every quantity is
    transformed back exactly to the data's scale.
    """
    st = make_stats(lay, X, Y)
    Bm = _standardiser(lay, st)
    sts = Stats(p=st.p, W=np.swapaxes(Bm, -1, -2) @ st.W @ Bm, xbar=st.xbar @ Bm[:, None])
    ev, conv, iters = optimise(lay, sts, reml=reml)
    ev = _unstandardise(ev, Bm, lay.n, reml)
    return _finish(lay, st, ev, conv, iters, reml)


def _standardiser(lay: Layout, st: Stats) -> np.ndarray:
    """``B`` (R, q, q) with ``[X, y]B`` centred and scaled (intercept kept).

    Means and SDs come from the sufficient statistics (no pass over the data).
    Without an intercept column only scaling is used.
    """
    p = st.p
    q = p + 1
    R = st.W.shape[0]
    nk = _n_pad(lay)
    n = float(lay.n)
    mean = np.einsum("rcmi,cm->ri", st.xbar, nk) / n
    dev = st.xbar - mean[:, None, None, :]
    var = (np.diagonal(st.W, axis1=1, axis2=2) + np.einsum("rcmi,cm->ri", dev**2, nk)) / n
    sd = np.sqrt(np.maximum(var, 0.0))
    has_int = bool(np.all(st.W[:, 0, 0] == 0.0) and np.all(st.xbar[:, lay.mask, 0] == 1.0))
    B = np.broadcast_to(np.eye(q), (R, q, q)).copy()
    tiny = sd <= 1e-300
    for j in range(q):
        if has_int and j == 0:
            continue
        dj = np.where(tiny[:, j], 1.0, sd[:, j])
        B[:, j, j] = 1.0 / dj
        if has_int:
            B[:, 0, j] = np.where(tiny[:, j], 0.0, -mean[:, j] / dj)
    return B


def _unstandardise(ev: Evaluation, Bm: np.ndarray, n: int, reml: bool) -> Evaluation:
    """Exact back-transformation of an evaluation on ``[X, y]B`` to ``[X, y]``."""
    p = ev.beta.shape[1]
    Binv = np.linalg.inv(Bm)
    A = Bm[:, :p, :p]
    s = Binv[:, p, p]
    beta = np.einsum("rij,rj->ri", A, Binv[:, :p, p] + s[:, None] * ev.beta)
    C = np.zeros_like(Bm)
    C[:, :p, :p] = np.linalg.inv(A)
    C[:, p, p] = s
    Ct = np.swapaxes(C, -1, -2)
    assert ev.Phiv is not None and ev.Yr is not None and ev.Qr is not None
    assert ev.g_psi is not None and ev.H_psi is not None and ev.trPGPG is not None
    s2f = s**2
    _, logdetA = np.linalg.slogdet(A)
    dev = ev.dev + ((n - p) * np.log(s2f) - 2.0 * logdetA if reml else n * np.log(s2f))
    out = Evaluation(
        theta=ev.theta,
        dev=dev,
        beta=beta,
        s2=ev.s2 * s2f,
        Fa=np.swapaxes(Binv, -1, -2) @ ev.Fa @ Binv,
    )
    out.Phiv = A @ ev.Phiv @ np.swapaxes(A, -1, -2)
    out.Yr = Ct[:, None] @ ev.Yr @ C[:, None]
    out.Qr = Ct[:, None, None] @ ev.Qr @ C[:, None, None]
    out.t1 = ev.t1
    out.a = ev.a
    out.g_psi = ev.g_psi / s2f[:, None]
    out.H_psi = ev.H_psi / s2f[:, None, None] ** 2
    out.trPGPG = ev.trPGPG / s2f[:, None, None] ** 2
    return out


# ---------------------------------------------------------------------- inference helpers
def kr_adjusted(fitted: LMMFitted) -> tuple[np.ndarray, np.ndarray]:
    """Kenward–Roger adjusted covariance ``Φ_A`` and ``W`` (inverse expected information)."""
    W = np.linalg.inv(fitted.info)
    Phi = fitted.Phi
    PPhiP = np.einsum("rkij,rjl,rmlt->rkmit", fitted.P, Phi, fitted.P)
    U = np.einsum("rkm,rkmij->rij", W, fitted.Q - PPhiP)
    PhiA = Phi + 2.0 * Phi @ U @ Phi
    return PhiA, W


def contrast_grad(fitted: LMMFitted, Lvec: np.ndarray) -> np.ndarray:
    """``g_r = ∂(l'Φl)/∂ψ_r = l'Φ X'Σ⁻¹G_rΣ⁻¹X Φ l`` for each replicate (R, nr)."""
    u = np.einsum("rij,j->ri", fitted.Phi, Lvec)
    return np.einsum("ri,rkij,rj->rk", u, fitted.P, u)


def single_df(fitted: LMMFitted, Lvec: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Variance and df of ``l'β̂`` by ``"kenward-roger"`` or ``"satterthwaite"``."""
    v = np.einsum("i,rij,j->r", Lvec, fitted.Phi, Lvec)
    g = contrast_grad(fitted, Lvec)
    if method == "kenward-roger":
        PhiA, W = kr_adjusted(fitted)
        var = np.einsum("i,rij,j->r", Lvec, PhiA, Lvec)
        df = 2.0 * v**2 / np.einsum("ri,rij,rj->r", g, W, g)
        return var, df
    if method == "satterthwaite":
        gvp = np.einsum("rai,ra->ri", fitted.J_vp, g)
        A = 2.0 * _pinv_safe(fitted.H_vp)
        df = 2.0 * v**2 / np.einsum("ri,rij,rj->r", gvp, A, gvp)
        return v, df
    raise ValueError(method)


def fit_lmm_batch(
    lay: Layout,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    contrast: np.ndarray | int = 1,
    df_method: str = "kenward-roger",
    reml: bool = True,
    alpha: float = 0.05,
    cluster_level_rank: int | None = None,
) -> dict[str, Any]:
    """Fit many replicates at once and test one contrast in each.

    Parameters
    ----------
    lay : Layout
        From :func:`make_layout` on the shared cluster codes.
    X : ndarray, shape (n, p) or (R, n, p)
    Y : ndarray, shape (R, n)
    contrast : int or ndarray (p,)
        Column index (default 1: the treatment) or contrast vector.
    df_method : {"kenward-roger", "satterthwaite", "between-within", "residual"}
    cluster_level_rank : int, optional
        Rank of the cluster-level columns (between-within df); default 2.

    Returns
    -------
    dict of ndarray (R,)
        ``estimate, std_error, df, statistic, p_value, conf_low, conf_high,
        sigma2, theta (R, L), singular, converged, iterations``.
    """
    fitted = fit_lmm(lay, X, Y, reml=reml)
    p = fitted.p
    if isinstance(contrast, int | np.integer):
        Lvec = np.zeros(p)
        Lvec[int(contrast)] = 1.0
    else:
        Lvec = np.asarray(contrast, dtype=float)
    est = fitted.beta @ Lvec
    if df_method in ("kenward-roger", "satterthwaite"):
        var, df = single_df(fitted, Lvec, df_method)
    else:
        var = np.einsum("i,rij,j->r", Lvec, fitted.Phi, Lvec)
        if df_method == "between-within":
            df = np.full(
                est.shape, float(lay.C - (2 if cluster_level_rank is None else cluster_level_rank))
            )
        elif df_method == "residual":
            df = np.full(est.shape, float(lay.n - p))
        else:
            raise ValueError(df_method)
    se = np.sqrt(var)
    t, pval, low, high = t_inference(est, se, df, alpha)
    return {
        "estimate": est,
        "std_error": se,
        "df": df,
        "statistic": t,
        "p_value": pval,
        "conf_low": low,
        "conf_high": high,
        "sigma2": fitted.sigma2,
        "theta": fitted.theta,
        "singular": (fitted.theta < 1e-4).any(axis=1),
        "converged": fitted.converged,
        "iterations": fitted.iterations,
    }
