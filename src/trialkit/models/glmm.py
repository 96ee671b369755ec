"""Random-intercept logistic GLMM by maximum likelihood (Laplace and adaptive Gauss–Hermite).

The model is logit P(y_ij = 1 | u_j) = x_ij'β + σ u_j with u_j ~ N(0, 1) (lme4's spherical
parametrisation, θ = σ).  The marginal likelihood of each cluster is a one-dimensional integral,
approximated around the conditional mode with 1 node (Laplace) or ``nagq`` nodes (adaptive
Gauss–Hermite quadrature, as ``lme4::glmer(nAGQ = ...)``).  Two nested levels
(η = x'β + σ₁u_c + σ₂v_s) are fitted with the Laplace approximation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy import optimize
from scipy.special import expit, log_expit

from trialkit.errors import FitError, ModelSpecError
from trialkit.methods import check_glmm_df_method
from trialkit.models.design import ModelFrame
from trialkit.models.inference import t_inference, t_terms
from trialkit.models.results import BinaryEffects, GlmmResult
from trialkit.models.robust import frame_parts

__all__ = ["fit_glmm", "glmm_deviance", "null_glmm_variance"]
Array = np.ndarray


def _ghrule(k: int) -> tuple[Array, Array]:
    """Nodes and weights for ∫ f(z) φ(z) dz (weights sum to 1)."""
    z, w = hermegauss(k)
    return z, w / math.sqrt(2.0 * math.pi)


class _Problem:
    """Sorted data and the (approximate) deviance as a function of (σ, β)."""

    def __init__(self, X: Array, y: Array, codes: Array, nagq: int) -> None:
        order = np.argsort(codes, kind="stable")
        self.X = X[order]
        self.y = y[order]
        self.codes = codes[order]
        self.J = int(self.codes.max()) + 1
        self.starts = np.flatnonzero(np.r_[True, np.diff(self.codes) != 0])
        self.z, self.w = _ghrule(nagq)
        self.u = np.zeros(self.J)

    def _csum(self, v: Array) -> Array:
        return np.add.reduceat(v, self.starts, axis=0)

    def modes(self, sigma: float, eta0: Array) -> tuple[Array, Array]:
        """Conditional modes û_j and curvatures h_j = 1 + σ² Σ μ(1 − μ) (Newton)."""
        u = self.u.copy()
        y = self.y

        def obj(uu: Array) -> Array:
            eta = eta0 + sigma * uu[self.codes]
            return self._csum(y * eta + log_expit(-eta)) - 0.5 * uu**2

        f = obj(u)
        for _ in range(100):
            mu = expit(eta0 + sigma * u[self.codes])
            grad = sigma * self._csum(y - mu) - u
            hess = 1.0 + sigma**2 * self._csum(mu * (1 - mu))
            step = grad / hess
            new = u + step
            fn = obj(new)
            bad = fn < f - 1e-13 * (1 + np.abs(f))
            halv = 0
            while np.any(bad) and halv < 30:
                step = np.where(bad, step / 2, step)
                new = u + step
                fn = obj(new)
                bad = fn < f - 1e-13 * (1 + np.abs(f))
                halv += 1
            u, f = new, fn
            if np.max(np.abs(step)) < 1e-11:
                break
        mu = expit(eta0 + sigma * u[self.codes])
        h = 1.0 + sigma**2 * self._csum(mu * (1 - mu))
        self.u = u
        return u, h

    def deviance(self, params: Array) -> float:
        """−2 × (approximate) log-likelihood."""
        sigma = float(params[0])
        beta = params[1:]
        eta0 = self.X @ beta
        u, h = self.modes(sigma, eta0)
        s = 1.0 / np.sqrt(h)
        # nodes: u_jk = û_j + s_j z_k
        ujk = u[:, None] + s[:, None] * self.z[None, :]
        eta = eta0[:, None] + sigma * ujk[self.codes]
        ll = self._csum(self.y[:, None] * eta + log_expit(-eta))  # J × K
        logg = ll - 0.5 * ujk**2 - 0.5 * math.log(2 * math.pi)
        logphi = -0.5 * self.z**2 - 0.5 * math.log(2 * math.pi)
        terms = logg - logphi[None, :] + np.log(self.w)[None, :]
        mx = terms.max(axis=1, keepdims=True)
        lj = np.log(s) + mx[:, 0] + np.log(np.exp(terms - mx).sum(axis=1))
        return float(-2.0 * lj.sum())


class _NestedProblem:
    """Two nested random intercepts, Laplace approximation (lme4's nAGQ = 1).

    η = x'β + σ₁u_c + σ₂v_s, u, v ~ N(0, 1). The joint mode of (u_c, v_s) within a top-level
    cluster is found by Newton steps on the arrow-shaped Hessian (Schur complement on u_c).
    """

    def __init__(self, X: Array, y: Array, top: Array, sub: Array) -> None:
        order = np.lexsort((sub, top))
        self.X, self.y = X[order], y[order]
        self.top = top[order]
        _, self.sub = np.unique(sub[order], return_inverse=True)
        self.J = int(self.top.max()) + 1
        self.S = int(self.sub.max()) + 1
        # parent (top cluster) of each sub-cluster
        self.parent = np.zeros(self.S, dtype=np.int64)
        self.parent[self.sub] = self.top
        self.u = np.zeros(self.J)
        self.v = np.zeros(self.S)

    def _ct(self, w: Array) -> Array:
        return np.bincount(self.top, weights=w, minlength=self.J)

    def _cs(self, w: Array) -> Array:
        return np.bincount(self.sub, weights=w, minlength=self.S)

    def _pieces(self, s1: float, s2: float, eta0: Array, u: Array, v: Array) -> tuple[Array, Array]:
        eta = eta0 + s1 * u[self.top] + s2 * v[self.sub]
        ll = self.y * eta + log_expit(-eta)
        obj = (
            self._ct(ll)
            - 0.5 * u**2
            - 0.5 * np.bincount(self.parent, weights=v**2, minlength=self.J)
        )
        return obj, eta

    def deviance(self, params: Array) -> float:
        s1, s2 = float(params[0]), float(params[1])
        eta0 = self.X @ params[2:]
        u, v = self.u.copy(), self.v.copy()
        f, eta = self._pieces(s1, s2, eta0, u, v)
        for _ in range(100):
            mu = expit(eta)
            w = mu * (1 - mu)
            r = self.y - mu
            gu = s1 * self._ct(r) - u
            gv = s2 * self._cs(r) - v
            huu = 1 + s1**2 * self._ct(w)
            dv = 1 + s2**2 * self._cs(w)
            huv = s1 * s2 * self._cs(w)
            c = huu - np.bincount(self.parent, weights=huv**2 / dv, minlength=self.J)
            du = (gu - np.bincount(self.parent, weights=huv * gv / dv, minlength=self.J)) / c
            dvv = (gv - huv * du[self.parent]) / dv
            t = np.ones(self.J)
            for _h in range(30):
                fn, etan = self._pieces(s1, s2, eta0, u + t * du, v + t[self.parent] * dvv)
                bad = fn < f - 1e-13 * (1 + np.abs(f))
                if not np.any(bad):
                    break
                t = np.where(bad, t / 2, t)
            u, v, f, eta = u + t * du, v + t[self.parent] * dvv, fn, etan
            if max(np.max(np.abs(t * du)), np.max(np.abs(dvv))) < 1e-11:
                break
        self.u, self.v = u, v
        mu = expit(eta)
        w = mu * (1 - mu)
        huu = 1 + s1**2 * self._ct(w)
        dv = 1 + s2**2 * self._cs(w)
        huv = s1 * s2 * self._cs(w)
        c = huu - np.bincount(self.parent, weights=huv**2 / dv, minlength=self.J)
        logdet = np.sum(np.log(c)) + np.sum(np.log(dv))
        return float(-2.0 * np.sum(f) + logdet)


def _steps(x: Array, power: float) -> Array:
    """Central-difference steps relative to the parameter scale: ``ε^power · max(|x|, 1)``.

    ``power = 1/3`` balances truncation and rounding error for first derivatives,
    ``1/4`` for second derivatives from function values.  Each step is made exactly
    representable (``(x + h) - x``) so that the divided difference uses the step taken.
    """
    h = np.finfo(float).eps ** power * np.maximum(np.abs(x), 1.0)
    return (x + h) - x


def _num_grad(f: Callable[[Array], float], x: Array) -> Array:
    """Central-difference gradient with steps relative to the scale of ``x``."""
    h = _steps(x, 1.0 / 3.0)
    g = np.empty_like(x)
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = h[i]
        g[i] = (f(x + e) - f(x - e)) / (2 * h[i])
    return g


def _num_hess(f: Callable[[Array], float], x: Array) -> Array:
    """Central-difference Hessian with steps relative to the scale of ``x``."""
    h = _steps(x, 0.25)
    n = len(x)
    H = np.empty((n, n))
    f0 = f(x)
    for i in range(n):
        ei = np.zeros(n)
        ei[i] = h[i]
        H[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(n)
            ej[j] = h[j]
            H[i, j] = H[j, i] = (
                f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
            ) / (4 * h[i] * h[j])
    return H


def glmm_deviance(
    X: Array, y: Array, cluster_codes: Array, sigma: float, beta: Array, *, nagq: int = 1
) -> float:
    """Laplace/AGQ deviance (−2 log L) of a random-intercept logistic model at (σ, β)."""
    prob = _Problem(np.asarray(X, float), np.asarray(y, float), np.asarray(cluster_codes), nagq)
    return prob.deviance(np.r_[sigma, np.asarray(beta, float)])


def null_glmm_variance(y: Array, cluster_codes: Array, *, nagq: int = 1) -> dict[str, float]:
    """The unconditional random-intercept logistic model ``logit P(y = 1 | u) = β₀ + σu``.

    Fitted by maximum likelihood (Laplace for ``nagq = 1``, as ``lme4::glmer(y ~ 1 + (1 | la))``)
    over ``(σ ≥ 0, β₀)``; gives the latent-scale ICC ``σ²/(σ² + π²/3)`` of a binary outcome
    (Snijders & Bosker 2012, §17.3) without the arm or covariates.

    Returns
    -------
    dict
        ``sigma2``, ``intercept``, ``loglik`` and ``icc_latent``.
    """
    yy = np.asarray(y, float)
    prob = _Problem(np.ones((yy.size, 1)), yy, np.asarray(cluster_codes), nagq)
    p = float(np.clip(yy.mean(), 1e-6, 1 - 1e-6))
    start = np.array([0.5, math.log(p / (1 - p))])
    best = optimize.minimize(
        prob.deviance,
        start,
        method="L-BFGS-B",
        bounds=[(0.0, None), (None, None)],
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 500},
    )
    x = best.x
    # polish with Nelder–Mead from the L-BFGS-B optimum (σ kept at or above 0)
    polish = optimize.minimize(
        lambda v: prob.deviance(np.array([abs(v[0]), v[1]])),
        x,
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000},
    )
    if polish.fun <= best.fun:
        x = np.array([abs(polish.x[0]), polish.x[1]])
    s2 = float(x[0] ** 2)
    return {
        "sigma2": s2,
        "intercept": float(x[1]),
        "loglik": -0.5 * float(prob.deviance(x)),
        "icc_latent": s2 / (s2 + math.pi**2 / 3),
    }


def _standardise(X: Array, treatment_index: int) -> tuple[Array, Array]:
    """Centre and scale the covariate columns; return ``X_s`` and ``A`` with ``β = Aβ_s``.

    Every non-constant column but the treatment indicator is replaced by
    ``(x_j - c_j)/s_j`` (mean and standard deviation; centred only when the model has
    an intercept column), so that a covariate on its natural scale (an LA caseload of
    about 1,000) does not make the deviance badly conditioned.  The linear predictor is
    unchanged: ``β_j = β_s,j / s_j`` and ``β_0 = β_s,0 - Σ_j β_s,j c_j / s_j``, i.e.
    ``β = Aβ_s`` and ``cov(β̂) = A cov(β̂_s) A'`` exactly.
    """
    n, p = X.shape
    const = np.all(X == X[:1, :], axis=0)
    intercept = np.flatnonzero(const & (X[0] != 0))
    A = np.eye(p)
    Xs = X.copy()
    for j in range(p):
        if const[j] or j == treatment_index:
            continue
        c = float(X[:, j].mean()) if intercept.size else 0.0
        sd = float(np.sqrt(np.mean((X[:, j] - c) ** 2)))
        if not sd > 0:
            continue
        Xs[:, j] = (X[:, j] - c) / sd
        A[j, j] = 1.0 / sd
        if intercept.size:
            k = int(intercept[0])
            A[k, j] = -c / (sd * X[0, k])
    return Xs, A


def _logistic_start(X: Array, y: Array) -> Array:
    beta = np.zeros(X.shape[1])
    for _ in range(50):
        mu = expit(X @ beta)
        w = mu * (1 - mu)
        step = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (y - mu))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def fit_glmm(
    frame: ModelFrame,
    *,
    df_method: str = "between-within",
    nagq: int = 1,
    alpha: float = 0.05,
) -> GlmmResult:
    """Random-intercept logistic GLMM fitted by maximum likelihood (method ``"glmm"``).

    Parameters
    ----------
    frame : ModelFrame
        Binary (0/1) outcome; one cluster level, or two nested levels (Laplace only).
    df_method : {"between-within", "residual", "z"}
        Degrees of freedom of the Wald t-tests. Between-within (Li & Redden 2015): cluster-level
        columns get J − (number of cluster-level columns, intercept included), other columns
        N − J − (number of within-cluster columns); residual: N − p; z: normal reference.
    nagq : int
        1 = Laplace approximation; > 1 = adaptive Gauss–Hermite quadrature with that many nodes.
    alpha : float
        1 − confidence level.

    Returns
    -------
    GlmmResult
        Coefficients on the log-odds scale; ``effects`` holds the odds ratio with CI, the marginal
        risks and risk difference with a delta-method CI, θ = σ and the number of nodes.

    Notes
    -----
    Per cluster, L_j = ∫ Π_i f(y_ij | x_ij'β + σu) φ(u) du. With the conditional mode û_j and
    s_j = h_j^{-1/2}, h_j = 1 + σ² Σ_i μ_ij(1 − μ_ij), adaptive Gauss–Hermite quadrature gives
    L_j ≈ s_j Σ_k w_k g_j(û_j + s_j z_k)/φ(z_k), with (z_k, w_k) the Gauss–Hermite rule for the
    standard normal and g_j the integrand (Pinheiro & Bates 1995; Liu & Pierce 1994). One node
    is the Laplace approximation, log L_j ≈ log f(y_j|û_j) − û_j²/2 − ½ log h_j (as glmer).
    Two nested levels (Laplace): the joint mode of (u_c, v_s) within each top cluster by Newton
    steps on the arrow-shaped Hessian, log det by the Schur complement on u_c:
    log|H_c| = Σ_s log d_s + log(h_uu − Σ_s h_uv,s²/d_s), d_s = 1 + σ₂² Σ_{i∈s} w_i,
    h_uu = 1 + σ₁² Σ_{i∈c} w_i, h_uv,s = σ₁σ₂ Σ_{i∈s} w_i, w = μ(1 − μ).
    Covariates are centred and scaled internally (:func:`_standardise`) and the
    coefficients and their covariance transformed back exactly, so a covariate on its
    natural scale (an LA caseload of about 1,000) fits as well as a standardised one (as
    ``glmer`` on ``scale(caseload)``). The deviance is minimised over (σ, β) by BFGS and polished by Newton steps on a
    central-difference Hessian (steps ε^(1/4)·max(|x|, 1); gradients with ε^(1/3)·max(|x|, 1));
    the covariance of β̂ is the β block of 2 H^{-1} (H the Hessian
    of the deviance in (σ, β)), as ``vcov.merMod`` with ``use.hessian = TRUE``.
    Marginal risk difference: p̄_a = N^{-1} Σ_i ∫ expit(x_i(a)'β + σu) φ(u) du with the
    treatment column set to a ∈ {0, 1} (40-node Gauss–Hermite); RD = p̄₁ − p̄₀ with a
    delta-method SE from the same covariance, and a t interval on the treatment df (with two
    levels the random effect integrated over is N(0, σ₁² + σ₂²)). Latent-scale ICC of level l:
    σ_l²/(Σ σ² + π²/3). A variance below 1e-4 is a singular fit; its row is left out of the
    Hessian before inversion.
    """
    check_glmm_df_method(df_method)
    if int(nagq) < 1:
        raise ModelSpecError.from_problem(
            path="nagq",
            code="fit.glmm.nagq",
            message=f"`nagq` must be >= 1; got {nagq}.",
            hint="Use 1 (Laplace).",
        )
    fp = frame_parts(frame)
    X, y, ti = fp["X"], fp["y"], fp["treatment_index"]
    nlev = len(fp["clusters"])
    if nlev not in (1, 2) or (nlev == 2 and int(nagq) != 1):
        raise ModelSpecError.from_problem(
            path="clusters",
            code="fit.glmm.levels",
            message=(
                "the logistic GLMM supports one random-intercept level (Laplace or AGQ) or two "
                f"nested levels (Laplace, nagq=1); got {nlev} levels with nagq={nagq}."
            ),
            hint="Give fewer cluster levels, use nagq=1, or use method='gee'.",
        )
    if not np.all((y == 0) | (y == 1)):
        raise ModelSpecError.from_problem(
            path="outcome",
            code="fit.glmm.outcome",
            message="a binomial GLMM needs a 0/1 outcome; got other values.",
            hint="Recode the outcome to 0/1.",
        )
    codes = fp["clusters"][0]
    X, A = _standardise(X, ti)  # fitted on standardised covariates, reported on the user's scale
    N, p = X.shape
    J = int(codes.max()) + 1
    dev: Callable[[Array], float]
    if nlev == 1:
        dev = _Problem(X, y, codes, int(nagq)).deviance
    else:
        dev = _NestedProblem(X, y, codes, fp["clusters"][1]).deviance
    x0 = np.r_[np.full(nlev, 0.5), _logistic_start(X, y)]
    res = optimize.minimize(
        dev, x0, jac=lambda v: _num_grad(dev, v), method="BFGS", options={"gtol": 1e-7}
    )
    par = res.x
    converged = bool(res.success)
    for _ in range(5):
        H = _num_hess(dev, par)
        g = _num_grad(dev, par)
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        if dev(par - step) <= dev(par) + 1e-10:
            par = par - step
        if np.max(np.abs(step)) < 1e-9:
            break
    par[:nlev] = np.abs(par[:nlev])
    H = _num_hess(dev, par)
    sigmas, beta_s = par[:nlev].copy(), par[nlev:]
    zero = sigmas < 1e-4
    singular = bool(np.any(zero))
    keep = np.r_[~zero, np.ones(p, dtype=bool)]
    # a boundary fit (σ = 0) is singular, not failed: its σ gradient is not an optimality test
    gnorm = float(np.max(np.abs(_num_grad(dev, par)[keep])))
    converged = converged or gnorm < 1e-4
    try:
        cov_full = np.zeros_like(H)
        cov_full[np.ix_(keep, keep)] = 2.0 * np.linalg.inv(H[np.ix_(keep, keep)])
    except np.linalg.LinAlgError as exc:
        raise FitError.from_problem(
            path="fit",
            code="fit.glmm.hessian",
            message="the Hessian is singular.",
            hint="Check for separation.",
        ) from exc
    # back to the user's scale exactly: β = Aβ_s, cov(β) = A cov(β_s) A'
    beta = A @ beta_s
    cov = A @ cov_full[nlev:, nlev:] @ A.T
    se = np.sqrt(np.diag(cov))
    cl = fp["cluster_level"]
    n_between = int(cl.sum())
    dfs = []
    for k in range(p):
        if df_method == "z":
            dfs.append(float("inf"))
        elif df_method == "residual":
            dfs.append(float(N - p))
        else:
            dfs.append(float(J - n_between) if cl[k] else float(N - J - (p - n_between)))
    terms = t_terms(fp["names"], beta, se, dfs, alpha, df_method)
    tr = terms[ti]
    # odds ratio and marginal risk difference
    zq, wq = _ghrule(40)

    def risks(v: Array) -> Array:
        s_, b_ = math.sqrt(float(np.sum(v[:nlev] ** 2))), v[nlev:]
        out = []
        for a in (1.0, 0.0):
            Xa = X.copy()
            Xa[:, ti] = a
            eta = (Xa @ b_)[:, None] + s_ * zq[None, :]
            out.append(float(np.mean(expit(eta) @ wq)))
        return np.array(out)

    r = risks(par)

    def rd_of(v: Array) -> float:
        rr = risks(v)
        return float(rr[0] - rr[1])

    rd = float(r[0] - r[1])
    grad_rd = _num_grad(rd_of, par)
    se_rd = float(np.sqrt(grad_rd @ cov_full @ grad_rd))
    _t, _p, rd_low, rd_high = t_inference(rd, se_rd, tr.df, alpha)
    cnames = fp["cluster_names"]
    vc = {nm: float(sg**2) for nm, sg in zip(cnames, sigmas, strict=True)}
    tot = sum(vc.values()) + math.pi**2 / 3
    warnings = []
    if singular:
        warnings.append("singular fit: a cluster variance is estimated at zero")
    if not converged:
        warnings.append(f"optimiser did not converge (max |gradient| {gnorm:.2g})")
    return GlmmResult(
        method="glmm",
        family="binomial",
        outcome=fp["outcome"],
        treatment_column=fp["treatment"],
        treatment_term=fp["names"][ti],
        treatment=tr,
        fixed_effects=tuple(terms),
        variance_components=vc,
        icc={nm: v / tot for nm, v in vc.items()},
        df_method=df_method,
        n_obs=N,
        n_clusters=fp["n_clusters"],
        n_excluded=fp["n_excluded"],
        exclusions=fp["exclusions"],
        singular=singular,
        converged=converged,
        loglik=-0.5 * dev(par),
        reml=False,
        formula=fp["formula"],
        data_hash=fp["data_hash"],
        warnings=tuple(warnings),
        nagq=int(nagq),
        theta=float(sigmas[0]) if nlev == 1 else tuple(float(v) for v in sigmas),
        approximation="laplace" if nagq == 1 else "adaptive-gauss-hermite",
        icc_scale="latent (pi^2/3)",
        effects=BinaryEffects(
            odds_ratio=math.exp(tr.estimate),
            odds_ratio_conf_low=math.exp(tr.conf_low),
            odds_ratio_conf_high=math.exp(tr.conf_high),
            marginal_risk_treated=float(r[0]),
            marginal_risk_control=float(r[1]),
            risk_difference=rd,
            risk_difference_std_error=se_rd,
            risk_difference_conf_low=float(rd_low),
            risk_difference_conf_high=float(rd_high),
        ),
        max_abs_gradient=gnorm,
    )
