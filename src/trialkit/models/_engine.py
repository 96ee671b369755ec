"""REML/ML engine for linear mixed models with nested random intercepts (private).

Model
-----
``y = X β + Σ_l Z_l u_l + e`` with ``u_l ~ N(0, ψ_l I)`` for each nesting level
``l = 0 .. L-1`` (top first) and ``e ~ N(0, σ² I)``.  We write
``φ_l = θ_l² = ψ_l/σ²`` (θ: relative standard deviations, as lme4) and
``V = Σ/σ² = I + Σ_l φ_l Z_l Z_l'``; ``A = [X, y]`` has ``q = p + 1`` columns.

The recursion (never an n × n matrix, never a padded block)
-----------------------------------------------------------
Within a node ``g`` of level ``l`` (its rows only, the levels at and below
``l``), ``V_g = blockdiag(V_c) + φ_l 1 1'`` over its children ``c`` (rows, for
the lowest level).  By Sherman–Morrison, with ``s_c = 1'V_c⁻¹1`` and
``m_c = A'V_c⁻¹1 / s_c`` (so ``m_k = ā_k``, the group mean, at the lowest level),

* ``s_D = Σ_c s_c``, ``m_g = Σ_c s_c m_c / s_D``, ``d_g = 1 + φ_l s_D``, ``s_g = s_D/d_g``;
* ``log|V| = Σ_g log d_g`` over the nodes of every level;
* ``A'V⁻¹A = W + Σ_{g not lowest} Σ_{c child of g} s_c (m_c - m_g)(m_c - m_g)'
  + Σ_{g top} s_g m_g m_g'``, with ``W`` the centred within-lowest-group scatter.

Every term is a sum of positive semi-definite pieces (no cancellation); the
scatter of the children around ``m_g`` is accumulated around the node's data
mean ``z_g`` (a constant), so the lowest level costs one ``(3, K) @ (K, q²)``
product per evaluation.  An evaluation costs O(groups · q²), after one O(n)
pass over the data (:mod:`trialkit.models._tree`).

Derivatives
-----------
The recursion is evaluated on second-order jets in ``φ`` (:mod:`._jets`), which
gives ``log|V|`` and ``S = A'V⁻¹A`` with their exact first and second
derivatives.  Since ``∂V/∂φ_l = G_l = Z_lZ_l'``:

* ``tr(V⁻¹G_l) = ∂_l log|V|``, ``tr(V⁻¹G_lV⁻¹G_m) = -∂_lm log|V|``,
* ``A'V⁻¹G_lV⁻¹A = -∂_l S``, ``sym(A'V⁻¹G_lV⁻¹G_mV⁻¹A) = ½ ∂_lm S``,

and the residual component (``G_e = I``) follows from homogeneity
(``V(cφ_e, cφ) = cV``): ``∂_e = -Σ_l φ_l ∂_l`` plus the degree terms, e.g.
``tr(V⁻¹) = n - Σ_l φ_l tr(V⁻¹G_l)`` and ``A'V⁻²A = S + Σ_l φ_l ∂_l S``.  The
symmetric part of ``A'V⁻¹G_rV⁻¹G_sV⁻¹A`` is all that Kenward–Roger's ``U``
(``Σ_rs W_rs Q_rs`` with ``W`` symmetric) and ``tr(PG_rPG_s)`` use, so ``Q`` is
stored symmetrised.

The criterion is lme4's (Bates et al. 2015, eq. 41/34):
``d_REML(θ) = log|V| + log|X'V⁻¹X| + (n-p)[1 + log(2π r²/(n-p))]``,
``d_ML(θ) = log|V| + n[1 + log(2π r²/n)]``, ``r² = min_β (y-Xβ)'V⁻¹(y-Xβ)
= |S|/|X'V⁻¹X|``, minimised over ``φ ≥ 0`` by a projected Newton method with the
exact gradient and Hessian (:func:`_newton`) from a nested-ANOVA (Henderson-type)
start (:func:`_moment_start`), with an L-BFGS-B fallback on ``θ ≥ 0``; a component
at zero is lme4's boundary (singular) fit.

Batching (power simulation, multiple imputation)
------------------------------------------------
Every array carries a leading replicate axis ``R``.  :func:`fit_lmm` fits ``R``
responses (and optionally ``R`` design matrices) that share the rows and the
cluster layout in one call — Newton runs in lock step with per-replicate line
searches — and returns an :class:`LMMFitted` with every inference ingredient
per replicate; :func:`fit_lmm_batch` adds one contrast's test.  Results equal
one-at-a-time fits to rounding error::

    layout = make_layout(frame.cluster_codes)
    fitted = fit_lmm(layout, frame.X, Y)           # Y: (R, n), e.g. m imputations
    out = fit_lmm_batch(layout, frame.X, Y)        # estimate, std_error, df, p_value
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import optimize

from trialkit.models._jets import jet_space
from trialkit.models._small import cholesky_solve
from trialkit.models._tree import (
    Layout,
    Prepared,
    Stats,
    make_layout,
    make_stats,
    prepare,
    top_means,
    within_sums_of_squares,
)
from trialkit.models.dfmethods import _pinv_safe
from trialkit.models.inference import t_inference

__all__ = [
    "Evaluation",
    "LMMFitted",
    "Layout",
    "Stats",
    "deviance",
    "evaluate",
    "fit_lmm",
    "fit_lmm_batch",
    "fit_stats",
    "make_layout",
    "make_stats",
    "top_means",
    "within_sums_of_squares",
]

_LOG2PI = float(np.log(2.0 * np.pi))
#: smallest relative SD of the start (the deviance is flat in θ at 0)
_THETA_START_MIN = 0.05


# ---------------------------------------------------------------------- evaluation
@dataclass(eq=False)
class Evaluation:
    """Profiled deviance at ``θ`` with its gradient and Hessian in ``φ = θ²``.

    ``S`` (R, J, q, q) and ``ldv`` (R, J) are the jets of ``A'V⁻¹A`` and ``log|V|``.
    """

    theta: np.ndarray  # (R, L)
    dev: np.ndarray  # (R,)
    grad: np.ndarray  # (R, L)  ∂dev/∂φ
    hess: np.ndarray  # (R, L, L)
    S: np.ndarray
    ldv: np.ndarray

    def take(self, rows: np.ndarray) -> Evaluation:
        """Replicates ``rows`` only."""
        return Evaluation(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def put(self, rows: np.ndarray, other: Evaluation) -> None:
        """Overwrite replicates ``rows`` with ``other``."""
        for f in fields(self):
            getattr(self, f.name)[rows] = getattr(other, f.name)


_POWERS = np.array([1.0, 2.0, 3.0])
_SIGNS = np.array([1.0, -1.0, 2.0])


def _recursion(lay: Layout, pr: Prepared, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Jets of ``S = A'V⁻¹A`` (R, J, q, q) and ``log|V|`` (R, J) at ``φ`` (R, L)."""
    L = lay.L
    js = jet_space(L)
    R = phi.shape[0]
    q = pr.W.shape[-1]
    low = L - 1
    n = lay.sizes[low]
    # lowest level: s_k = n_k / (1 + φ n_k), closed-form derivatives in φ_low only:
    # (s, ∂s, ∂²s) = (s, -s², 2s³)
    d = 1.0 + phi[:, low, None] * n
    s3 = (n / d)[..., None] ** _POWERS * _SIGNS  # (R, K, 3)
    E = js.embed[low]
    ldv = s3.sum(axis=1) @ js.lift[low]  # ∂ log d = s, ∂² log d = -s²
    ldv[:, 0] = np.log(d).sum(axis=1)
    S = (np.swapaxes(s3, 1, 2) @ pr.outer).reshape(R, 3, q * q)
    S = (E.T @ S).reshape(R, js.J, q, q)
    S[:, 0] += pr.W
    if L == 1:
        return S, ldv
    # parents of the lowest level
    starts = lay.starts[L - 2]
    sD = np.add.reduceat(s3, starts, axis=1) @ E
    eD = np.add.reduceat(s3[:, :, None, :] * pr.delta[low][..., None], starts, axis=1) @ E
    for level in range(L - 2, -1, -1):
        # d_g = 1 + φ_l s_D: product rule with the linear jet of φ_l
        dj = sD @ (phi[:, level, None, None] * js.eye + js.shift[level])
        dj[..., 0] += 1.0
        rs, rd, logd = js.recips_and_log(sD, dj)
        w = js.mul(eD, rs[:, :, None, :])  # m_g - z_g
        ldv += logd.sum(axis=1)
        sg = js.mul(sD, rd)
        u = w.copy()
        u[..., 0] += pr.means[0] if level == 0 else pr.delta[level]
        su = js.mul(sg[:, :, None, :], u)
        # S += Σ s_g u u' - Σ e w' in one product over the nodes
        S += js.outer_sum(np.concatenate((su, -eD), axis=1), np.concatenate((u, w), axis=1))
        if level == 0:
            break
        starts = lay.starts[level - 1]
        sD = np.add.reduceat(sg, starts, axis=1)
        eD = np.add.reduceat(su, starts, axis=1)
    S = 0.5 * (S + np.swapaxes(S, -1, -2))
    return S, ldv


def evaluate(
    lay: Layout, pr: Prepared | Stats, theta: np.ndarray, *, reml: bool = True
) -> Evaluation:
    """Profiled deviance with its gradient and Hessian in ``φ`` at ``θ`` (R, L).

    ``pr`` is the optimiser's :class:`~trialkit.models._tree.Prepared` input, or
    sufficient statistics (:func:`make_stats`, one replicate per row of ``θ``),
    evaluated on the data's scale (e.g. to profile the deviance).
    """
    if isinstance(pr, Stats):
        pr = prepare(lay, pr.W, pr.xbar, pr.p)
    theta = np.asarray(theta, dtype=float)
    phi = theta**2
    S, ldv = _recursion(lay, pr, phi)
    js = jet_space(lay.L)
    p = pr.p
    n = lay.n
    LS, LF = js.logdets(S, p)
    if reml:
        dfr = n - p
        dev = ldv + dfr * LS - (dfr - 1) * LF
        const = dfr * (1.0 + _LOG2PI - np.log(dfr))
    else:
        dev = ldv + n * (LS - LF)
        const = n * (1.0 + _LOG2PI - np.log(n))
    return Evaluation(
        theta=theta,
        dev=dev[:, 0] + const,
        grad=js.gradient(dev),
        hess=js.hessian(dev),
        S=S,
        ldv=ldv,
    )


# ---------------------------------------------------------------------- start and optimisation
def _moment_start(lay: Layout, pr: Prepared) -> np.ndarray:
    """Nested-ANOVA (Henderson method I type) start from OLS residuals.

    With the OLS residuals' node means ``ē_g``, the pooled within-lowest-group
    residual sum of squares gives ``σ̂² = SSE/(n - K - r_w)`` and the
    between-node sums of squares ``SS_l`` are matched to their expectations
    ``(1 - r_l/dof_l)(dof_l σ² + Σ_{m≥l} c_{lm} σ_m²)`` (:attr:`Layout.moment`),
    solved from the lowest level up, where ``r_l`` counts the columns of ``X``
    whose deepest variation is between the nodes of level ``l`` (``r_w``: within
    the lowest groups).  For a balanced design these are the ANOVA estimators,
    which equal REML's when they are positive (Searle, Casella & McCulloch 1992,
    §6.2), so Newton starts at (or next to) the optimum.  ``θ_l =
    √(max(σ̂_l², 0)/σ̂²)``, floored at a small value.
    """
    p = pr.p
    W = pr.W
    n = lay.n
    L = lay.L
    R = W.shape[0]
    xbar = pr.means[-1]
    nk = lay.sizes[-1]
    F0 = W + np.einsum("rki,rkj->rij", xbar * nk[None, :, None], xbar)
    beta = np.linalg.solve(F0[:, :p, :p], F0[:, :p, p][..., None])[..., 0]
    # deepest level at which each column of X varies (L: within the lowest groups)
    tol = 1e-12 * n
    deepest = np.full((R, p), -1)
    mean = (pr.means[0] * lay.sizes[0][None, :, None]).sum(axis=1) / n
    for level in range(L):
        dev = pr.means[0] - mean[:, None, :] if level == 0 else pr.delta[level]
        ss_x = np.einsum("rgi,g->ri", dev[..., :p] ** 2, lay.sizes[level])
        deepest[ss_x > tol] = level
    deepest[np.diagonal(W, axis1=1, axis2=2)[:, :p] > tol] = L
    r = np.stack([(deepest == level).sum(axis=1) for level in range(L + 1)], axis=1)
    sse = (
        W[:, p, p]
        - 2.0 * np.einsum("ri,ri->r", W[:, :p, p], beta)
        + np.einsum("ri,rij,rj->r", beta, W[:, :p, :p], beta)
    )
    dfe = np.maximum(n - lay.K - r[:, L], 1)
    s2 = np.maximum(sse / dfe, 1e-12 * (1.0 + np.abs(F0[:, p, p]) / n))
    e = [m[..., p] - np.einsum("rgi,ri->rg", m[..., :p], beta) for m in pr.means]
    grand = (e[0] * lay.sizes[0]).sum(axis=1) / n
    var = np.zeros((R, L))
    c = lay.moment
    for level in range(L - 1, -1, -1):
        up = grand[:, None] if level == 0 else e[level - 1][:, lay.parent[level]]
        ss = ((e[level] - up) ** 2 * lay.sizes[level]).sum(axis=1)
        dof = lay.dof[level]
        left = dof - r[:, level]
        if c[level, level] <= 0:
            continue
        ss = np.where(left > 0, ss * dof / np.maximum(left, 1), 0.0)
        rest = ss - dof * s2 - var[:, level + 1 :] @ c[level, level + 1 :]
        var[:, level] = np.maximum(rest, 0.0) / c[level, level]
    return np.maximum(np.sqrt(var / s2[:, None]), _THETA_START_MIN)


def _newton_step(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``-H⁻¹g``, with ``H`` made positive definite (absolute eigenvalues) where it is not."""
    try:
        return -cholesky_solve(H, g)
    except np.linalg.LinAlgError:
        w, Vv = np.linalg.eigh(H)
        wmax = np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-12)
        w = np.maximum(np.abs(w), 1e-8 * wmax)
        return -np.einsum("rij,rj->ri", Vv, np.einsum("rji,rj->ri", Vv, g) / w)


def _newton(
    lay: Layout,
    pr: Prepared,
    theta0: np.ndarray,
    *,
    reml: bool,
    maxit: int = 60,
    tol: float = 1e-16,
) -> tuple[Evaluation, np.ndarray, np.ndarray]:
    """Batched projected Newton on ``φ = θ² ≥ 0`` with backtracking.

    A component at the bound with a positive gradient is held there (the active
    set of Bertsekas 1982, *SIAM J. Control Optim.* 20:221–246); the free
    components take a modified Newton step (Hessian eigenvalues made positive),
    projected onto ``φ ≥ 0``.  A variance that tends to zero therefore reaches
    the boundary in one or two steps instead of converging geometrically.
    Returns the evaluation at the final point of every replicate, a converged
    flag and the iteration count; each iteration costs one evaluation when the
    full step is accepted.
    """
    R, L = theta0.shape
    if R == 1:
        return _newton_single(lay, pr, theta0, reml=reml, maxit=maxit, tol=tol)
    cur = evaluate(lay, pr, theta0.copy(), reml=reml)
    conv = np.zeros(R, dtype=bool)
    iters = np.zeros(R, dtype=np.int64)
    active = np.arange(R)
    eye = np.eye(L)
    for _ in range(maxit):
        if active.size == 0:
            break
        ev = cur.take(active) if active.size < R else cur
        phi = ev.theta**2
        g = ev.grad
        fixed = (phi <= 1e-14) & (g > 0.0)
        if fixed.any():
            keep = ~fixed
            gm = np.where(keep, g, 0.0)
            Hm = ev.hess * (keep[:, :, None] & keep[:, None, :]) + eye * fixed[:, :, None]
        else:
            gm, Hm = g, ev.hess
        step = _newton_step(Hm, gm)
        # at most a 16-fold increase of 1 + φ per step
        room = 15.0 * (1.0 + phi)
        if (step > room).any():
            grow = np.where(step > room, room / np.where(step > 0, step, 1.0), 1.0).min(axis=1)
            step *= grow[:, None]
        dec = -np.einsum("ri,ri->r", gm, step)
        done = (dec < tol * (1.0 + np.abs(ev.dev))) | (
            np.abs(step).max(axis=1) < 1e-12 * (1.0 + phi.max(axis=1))
        )
        iters[active] += 1
        alpha = np.ones(active.size)
        todo = ~done
        final = np.zeros(active.size, dtype=bool)
        near = 1e-12 * (1.0 + np.abs(ev.dev))
        for _ls in range(40):
            if not todo.any():
                break
            ii = np.flatnonzero(todo)
            cand = np.maximum(phi[ii] + alpha[ii, None] * step[ii], 0.0)
            sub = pr.take(active[ii]) if ii.size < R else pr
            cev = evaluate(lay, sub, np.sqrt(cand), reml=reml)
            pred = np.einsum("ri,ri->r", g[ii], phi[ii] - cand)
            ok = cev.dev <= ev.dev[ii] - 1e-4 * pred + 1e-12 * np.abs(ev.dev[ii])
            if ok.all() and ii.size == R:
                cur = cev  # every replicate accepted its step: no copying
            elif ok.any():
                cur.put(active[ii[ok]], cev.take(np.flatnonzero(ok)))
            # a full Newton step from a point this close lands at the optimum
            # to rounding error (quadratic convergence): no evaluation to confirm
            final[ii[ok]] = (alpha[ii[ok]] == 1.0) & (dec[ii[ok]] < near[ii[ok]])
            todo[ii[ok]] = False
            alpha[ii[~ok]] *= 0.5
        done |= final
        conv[active[done]] = True
        # line search failed: converged only if the decrement is already tiny
        stuck = todo
        conv[active[stuck & (dec < 1e-8 * (1.0 + np.abs(ev.dev)))]] = True
        active = active[~(done | stuck)]
    return cur, conv, iters


def _newton_single(
    lay: Layout,
    pr: Prepared,
    theta0: np.ndarray,
    *,
    reml: bool,
    maxit: int,
    tol: float,
) -> tuple[Evaluation, np.ndarray, np.ndarray]:
    """:func:`_newton` for one replicate: the same steps, tests and line search,
    without the bookkeeping of replicates that converge at different times."""
    L = theta0.shape[1]
    cur = evaluate(lay, pr, theta0.copy(), reml=reml)
    conv = False
    iters = 0
    for _ in range(maxit):
        phi = cur.theta[0] ** 2
        g = cur.grad[0]
        dev = float(cur.dev[0])
        fixed = (phi <= 1e-14) & (g > 0.0)
        if fixed.any():
            keep = ~fixed
            gm = np.where(keep, g, 0.0)
            Hm = cur.hess[0] * np.outer(keep, keep) + np.diag(fixed.astype(float))
        else:
            gm, Hm = g, cur.hess[0]
        step = _newton_step(Hm[None], gm[None])[0] if L > 1 else -gm / _positive(Hm[0, 0])
        # at most a 16-fold increase of 1 + φ per step
        room = 15.0 * (1.0 + phi)
        over = step > room
        if over.any():
            step = step * float(np.min(room[over] / step[over]))
        dec = -float(gm @ step)
        iters += 1
        if dec < tol * (1.0 + abs(dev)) or float(np.abs(step).max()) < 1e-12 * (
            1.0 + float(phi.max())
        ):
            conv = True
            break
        alpha = 1.0
        accepted = final = False
        for _ls in range(40):
            cand = np.maximum(phi + alpha * step, 0.0)
            cev = evaluate(lay, pr, np.sqrt(cand)[None], reml=reml)
            pred = float(g @ (phi - cand))
            if float(cev.dev[0]) <= dev - 1e-4 * pred + 1e-12 * abs(dev):
                cur = cev
                accepted = True
                # a full Newton step from a point this close lands at the optimum
                # to rounding error (quadratic convergence): no evaluation to confirm
                final = alpha == 1.0 and dec < 1e-12 * (1.0 + abs(dev))
                break
            alpha *= 0.5
        if not accepted:
            # line search failed: converged only if the decrement is already tiny
            conv = dec < 1e-8 * (1.0 + abs(dev))
            break
        if final:
            conv = True
            break
    return cur, np.array([conv]), np.array([iters], dtype=np.int64)


def _positive(h: float) -> float:
    """A 1 × 1 Hessian made positive as :func:`_newton_step` does (absolute value)."""
    h = float(h)
    return h if h > 0.0 else max(abs(h), 1e-8 * max(abs(h), 1e-12))


def _fallback(
    lay: Layout, pr: Prepared, theta0: np.ndarray, *, reml: bool
) -> tuple[np.ndarray, bool]:
    """L-BFGS-B on θ ≥ 0 with the exact gradient for one replicate."""

    def fun(t: np.ndarray) -> tuple[float, np.ndarray]:
        ev = evaluate(lay, pr, t[None, :], reml=reml)
        return float(ev.dev[0]), 2.0 * t * ev.grad[0]

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
    lay: Layout, pr: Prepared, *, reml: bool = True, theta0: np.ndarray | None = None
) -> tuple[Evaluation, np.ndarray, np.ndarray]:
    """Minimise the profiled deviance for every replicate.

    Returns the evaluation at the optimum (``θ ≥ 0``, components driven to the
    boundary set to exactly 0), a ``converged`` flag and the Newton iteration
    count per replicate.
    """
    if theta0 is None:
        theta0 = _moment_start(lay, pr)
    ev, conv, iters = _newton(lay, pr, theta0, reml=reml)
    theta = np.abs(ev.theta)
    snap = (theta > 0.0) & (theta < 1e-7)
    theta[snap] = 0.0
    ev.theta = theta
    redo = np.flatnonzero(snap.any(axis=1))
    if redo.size:
        ev.put(redo, evaluate(lay, pr.take(redo), theta[redo], reml=reml))
    # a zero component must be a genuine boundary optimum (gradient in φ >= 0)
    bad = ((theta == 0.0) & (ev.grad < -1e-6)).any(axis=1)
    for r in np.flatnonzero(~conv | bad):
        sub = pr.take(np.array([r]))
        t, ok = _fallback(lay, sub, theta[r], reml=reml)
        t[t < 1e-7] = 0.0
        ev.put(np.array([r]), evaluate(lay, sub, t[None, :], reml=reml))
        conv[r] = ok
    return ev, conv, iters


# ---------------------------------------------------------------------- standardisation
def _standardiser(lay: Layout, st: Stats) -> np.ndarray:
    """``B`` (R, q, q) with ``[X, y]B`` centred and scaled (intercept kept).

    Means and SDs come from the sufficient statistics (no pass over the data).
    Without an intercept column only scaling is used.  θ̂ is invariant to ``B``.
    """
    p = st.p
    q = p + 1
    R = st.W.shape[0]
    nk = lay.nk
    n = float(lay.n)
    mean = np.einsum("rki,k->ri", st.xbar, nk) / n
    dev = st.xbar - mean[:, None, :]
    var = (np.diagonal(st.W, axis1=1, axis2=2) + np.einsum("rki,k->ri", dev**2, nk)) / n
    sd = np.sqrt(np.maximum(var, 0.0))
    has_int = bool(np.all(st.W[:, 0, 0] == 0.0) and np.all(st.xbar[:, :, 0] == 1.0))
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


# ---------------------------------------------------------------------- inference ingredients
@dataclass(eq=False)
class _Final:
    """Inference ingredients at the optimum on the data's scale (V scale, ``[X, r]``)."""

    theta: np.ndarray
    dev: np.ndarray
    beta: np.ndarray
    s2: np.ndarray
    Phiv: np.ndarray  # (R, p, p) (X'V⁻¹X)⁻¹
    Yr: np.ndarray  # (R, nr, q, q)  A'V⁻¹G_rV⁻¹A, A = [X, r]
    Qr: np.ndarray  # (R, nr, nr, q, q) symmetrised A'V⁻¹G_rV⁻¹G_sV⁻¹A
    g_psi: np.ndarray  # (R, nr) gradient of the (non-profiled) deviance in ψ
    H_psi: np.ndarray  # (R, nr, nr) observed Hessian in ψ
    trPGPG: np.ndarray  # (R, nr, nr) tr(P G_r P G_s) (REML P)


def _ingredients(
    lay: Layout, S: np.ndarray, ldv: np.ndarray, theta: np.ndarray, p: int, reml: bool
) -> _Final:
    """Every derivative the df methods need, from the jets of ``S`` and ``log|V|``."""
    js = jet_space(lay.L)
    n = lay.n
    L = lay.L
    nr = L + 1
    q = p + 1
    R = theta.shape[0]
    phi = theta**2
    S0 = S[:, 0]
    F = S0[:, :p, :p]
    Phiv = np.linalg.inv(F)
    beta = np.einsum("rij,rj->ri", Phiv, S0[:, :p, p])
    r2 = S0[:, p, p] - np.einsum("ri,ri->r", S0[:, :p, p], beta)
    r2 = np.maximum(r2, np.finfo(float).tiny)
    dfr = n - p if reml else n
    s2 = r2 / dfr
    _, ldF = np.linalg.slogdet(F)
    if reml:
        dev = ldv[:, 0] + ldF + dfr * (1.0 + _LOG2PI + np.log(r2 / dfr))
    else:
        dev = ldv[:, 0] + n * (1.0 + _LOG2PI + np.log(r2 / n))
    # residual-augmented jets: [X, y] -> [X, r], r = y - X beta
    T = np.broadcast_to(np.eye(q), (R, q, q)).copy()
    T[:, :p, p] = -beta
    St = np.swapaxes(T, -1, -2)[:, None] @ S @ T[:, None]
    S1 = St[:, js.first]  # (R, L, q, q)
    S2 = St[:, js.second]  # (R, L, L, q, q)
    phS1 = np.einsum("rl,rlij->rij", phi, S1)
    phS2 = np.einsum("rm,rlmij->rlij", phi, S2)
    Yr = np.empty((R, nr, q, q))
    Yr[:, :L] = -S1
    Yr[:, L] = St[:, 0] + phS1
    Qr = np.empty((R, nr, nr, q, q))
    Qr[:, :L, :L] = 0.5 * S2
    Qr[:, :L, L] = Qr[:, L, :L] = -S1 - 0.5 * phS2
    Qr[:, L, L] = St[:, 0] + 2.0 * phS1 + 0.5 * np.einsum("rl,rlij->rij", phi, phS2)
    t1 = np.empty((R, nr))
    t1[:, :L] = ldv[:, js.first]
    t1[:, L] = n - np.einsum("rl,rl->r", phi, t1[:, :L])
    a = np.empty((R, nr, nr))
    a[:, :L, :L] = -ldv[:, js.second]
    a[:, :L, L] = a[:, L, :L] = t1[:, :L] - np.einsum("rm,rlm->rl", phi, a[:, :L, :L])
    a[:, L, L] = t1[:, L] - np.einsum("rm,rm->r", phi, a[:, :L, L])
    # derivatives of the (non-profiled) deviance in ψ = (σ²φ, σ²)
    s2b = s2[:, None]
    YX = Yr[:, :, :p, :p]
    PhiY = Phiv[:, None] @ YX  # Φv Y_r
    trPhiY = np.einsum("rkii->rk", PhiY)
    yry = Yr[:, :, p, p]
    if reml:
        g_psi = (t1 - trPhiY) / s2b - yry / s2b**2
    else:
        g_psi = t1 / s2b - yry / s2b**2
    trPhiQ = (Phiv[:, None, None] * Qr[:, :, :, :p, :p]).sum(axis=(3, 4))
    trPYPY = (PhiY[:, :, None] * np.swapaxes(PhiY, -1, -2)[:, None]).sum(axis=(3, 4))
    trPGPG = (a - 2.0 * trPhiQ + trPYPY) / s2[:, None, None] ** 2
    yrX = Yr[:, :, p, :p]  # (R, nr, p)
    yPGPGPy = (Qr[:, :, :, p, p] - np.einsum("rki,rij,rlj->rkl", yrX, Phiv, yrX)) / s2[
        :, None, None
    ] ** 3
    first = trPGPG if reml else a / s2[:, None, None] ** 2
    H_psi = -first + 2.0 * yPGPGPy
    return _Final(
        theta=theta,
        dev=dev,
        beta=beta,
        s2=s2,
        Phiv=Phiv,
        Yr=Yr,
        Qr=Qr,
        g_psi=g_psi,
        H_psi=H_psi,
        trPGPG=trPGPG,
    )


# ---------------------------------------------------------------------- fitted model
@dataclass(frozen=True, eq=False)
class LMMFitted:
    """Everything inference needs, for ``R`` replicates (private; holds no data rows).

    ``Phi`` is the model-based covariance of β̂; ``P`` (R, nr, p, p) the
    ``X'Σ⁻¹G_rΣ⁻¹X``; ``Q`` (R, nr, nr, p, p) the symmetrised ``X'Σ⁻¹G_rΣ⁻¹G_sΣ⁻¹X`` (the part
    Kenward–Roger uses);
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
    lay: Layout, p: int, ev: _Final, conv: np.ndarray, iters: np.ndarray, reml: bool
) -> LMMFitted:
    theta = ev.theta
    L = lay.L
    s2 = ev.s2
    R = theta.shape[0]
    Phi = ev.Phiv * s2[:, None, None]
    P = ev.Yr[:, :, :p, :p] / s2[:, None, None, None] ** 2
    Q = ev.Qr[:, :, :, :p, :p] / s2[:, None, None, None, None] ** 3
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


def fit_stats(lay: Layout, st: Stats, *, reml: bool = True) -> LMMFitted:
    """Fit from sufficient statistics (:func:`~trialkit.models._tree.make_stats`).

    θ is optimised on an equivalent standardised problem (centred and scaled
    ``y`` and covariate columns; θ̂ is invariant to both); the jets at θ̂ are
    transformed back exactly (``S = B⁻ᵀ S_B B⁻¹``) before the inference
    ingredients are formed on the data's scale.  A sub-model on some columns of
    ``X`` (e.g. the unconditional model for effect sizes) is
    ``fit_stats(lay, st.select([0]))``: no second pass over the data.
    """
    Bm = _standardiser(lay, st)
    pr = prepare(lay, np.swapaxes(Bm, -1, -2) @ st.W @ Bm, st.xbar @ Bm, st.p)
    ev, conv, iters = optimise(lay, pr, reml=reml)
    Binv = np.linalg.inv(Bm)[:, None]
    S = np.swapaxes(Binv, -1, -2) @ ev.S @ Binv
    fin = _ingredients(lay, S, ev.ldv, ev.theta, st.p, reml)
    return _finish(lay, st.p, fin, conv, iters, reml)


def deviance(lay: Layout, st: Stats, theta: np.ndarray, *, reml: bool = True) -> np.ndarray:
    """Profiled REML (or ML) deviance at each row of ``θ`` (R, L) on the data's scale.

    ``st`` holds one replicate (used for every row of ``θ``) or one per row.
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    R = theta.shape[0]
    if st.W.shape[0] != R:
        st = Stats(
            p=st.p,
            W=np.broadcast_to(st.W, (R, *st.W.shape[1:])),
            xbar=np.broadcast_to(st.xbar, (R, *st.xbar.shape[1:])),
        )
    return evaluate(lay, st, theta, reml=reml).dev


def fit_lmm(lay: Layout, X: np.ndarray, Y: np.ndarray, *, reml: bool = True) -> LMMFitted:
    """Fit ``R`` responses (``Y`` of shape (n,) or (R, n)) sharing the layout.

    ``X`` is ``(n, p)`` (shared) or ``(R, n, p)``.  One pass over the data
    (:func:`make_stats`), then :func:`fit_stats`.
    """
    return fit_stats(lay, make_stats(lay, X, Y), reml=reml)


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
