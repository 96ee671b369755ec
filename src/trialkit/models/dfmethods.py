"""Denominator degrees of freedom for linear mixed model contrasts.

Six methods, selected by name:

``"kenward-roger"``
    Kenward & Roger (1997) adjusted covariance ``Φ_A`` and df; for a
    multi-row contrast the full KR approximation ``λF ~ F(q, m)`` (as
    ``pbkrtest::KRmodcomp``, Halekoh & Højsgaard 2014).
``"satterthwaite"``
    Satterthwaite df with the asymptotic covariance of the variance
    parameters from the Hessian of the REML deviance in lmerTest's
    parameters ``(θ, σ)`` (Kuznetsova, Brockhoff & Christensen 2017); several
    rows by the Fai & Cornelius (1996) eigen-decomposition method (as
    ``lmerTest::contest``).
``"between-within"``
    ``df = J - r_b`` for terms that are constant within top-level clusters
    (``J`` clusters, ``r_b`` the rank of the cluster-level columns including
    the intercept), ``n - J - (p - r_b)`` for the others (SAS ``DDFM=BW``; Li &
    Redden 2015).
``"containment"``
    nlme's rule (Pinheiro & Bates 2000, section 4.2.3): with ``G_0 < G_1 < … < G_L``
    groups at each cluster level (top first) and ``G_{L+1} = n``, the stratum
    ``k`` of a column is one more than the innermost level within whose groups it
    varies (0 when it is constant within top-level clusters); the stratum has
    ``G_k - G_{k-1} - p_k`` df (``G_{-1} = 0``, ``p_k`` its columns, the intercept
    counted in stratum 0) and the intercept gets the largest of them (as
    ``nlme:::getFixDF``).
``"z"``
    the standard normal (infinite df).
``"residual"``
    ``n - p`` (too liberal with few clusters; a :class:`FewClustersWarning` is
    issued by :func:`trialkit.fit`).

The functions take the private fitted object of :mod:`trialkit.models._engine`
(or the :class:`Inference` summary stored on an ``LmmResult``), so that a
result can be re-tested with another method without the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from trialkit.errors import ModelSpecError
from trialkit.methods import check_df_method
from trialkit.models.inference import distribution_label, t_inference, t_terms
from trialkit.models.terms import Term

__all__ = [
    "ContrastTest",
    "Inference",
    "between_within_df",
    "coefficient_terms",
    "column_strata",
    "containment_df",
    "kenward_roger",
    "satterthwaite",
    "test_contrast",
]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Inference:
    """Model summaries every df method needs (no data rows).

    Attributes
    ----------
    beta : (p,)
    Phi : (p, p)
        Model-based covariance of β̂.
    P : (nr, p, p)
        ``X'Σ⁻¹G_rΣ⁻¹X`` for each variance component (levels top first, residual last).
    Q : (nr, nr, p, p)
        ``X'Σ⁻¹G_rΣ⁻¹G_sΣ⁻¹X``.
    info : (nr, nr)
        Expected information ``½ tr(PG_rPG_s)`` of the variance components ψ.
    H_vp, J_vp : (L+1, L+1)
        Hessian of the REML deviance in ``(θ, σ)`` and Jacobian ``∂ψ/∂(θ, σ)``.
    n, p, n_top : int
        Rows, fixed-effect columns, top-level clusters.
    cluster_level : (p,) bool
        Columns constant within top-level clusters.
    stratum : (p,) int or None
        Containment stratum of each column (:func:`column_strata`; ``-1`` for the
        intercept); ``None`` in results saved before it was recorded.
    n_groups : tuple of int
        Groups at each cluster level, top first (empty when not recorded).
    """

    beta: np.ndarray
    Phi: np.ndarray
    P: np.ndarray
    Q: np.ndarray
    info: np.ndarray
    H_vp: np.ndarray
    J_vp: np.ndarray
    n: int
    p: int
    n_top: int
    cluster_level: np.ndarray
    stratum: np.ndarray | None = None
    n_groups: tuple[int, ...] = ()

    @classmethod
    def from_fitted(
        cls,
        fitted: Any,
        *,
        n_top: int,
        cluster_level: Sequence[bool],
        r: int = 0,
        stratum: Sequence[int] | np.ndarray | None = None,
        n_groups: Sequence[int] = (),
    ) -> Inference:
        """Take replicate ``r`` of an :class:`~trialkit.models._engine.LMMFitted`."""
        return cls(
            beta=fitted.beta[r].copy(),
            Phi=fitted.Phi[r].copy(),
            P=fitted.P[r].copy(),
            Q=fitted.Q[r].copy(),
            info=fitted.info[r].copy(),
            H_vp=fitted.H_vp[r].copy(),
            J_vp=fitted.J_vp[r].copy(),
            n=int(fitted.n),
            p=int(fitted.p),
            n_top=int(n_top),
            cluster_level=np.asarray(cluster_level, dtype=bool),
            stratum=None if stratum is None else np.asarray(stratum, dtype=np.int64),
            n_groups=tuple(int(g) for g in n_groups),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (nested lists of floats)."""
        return {
            "beta": self.beta.tolist(),
            "Phi": self.Phi.tolist(),
            "P": self.P.tolist(),
            "Q": self.Q.tolist(),
            "info": self.info.tolist(),
            "H_vp": self.H_vp.tolist(),
            "J_vp": self.J_vp.tolist(),
            "n": self.n,
            "p": self.p,
            "n_top": self.n_top,
            "cluster_level": [bool(v) for v in self.cluster_level],
            "stratum": None if self.stratum is None else [int(v) for v in self.stratum],
            "n_groups": list(self.n_groups),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Inference:
        a = {
            k: np.asarray(d[k], dtype=float)
            for k in ("beta", "Phi", "P", "Q", "info", "H_vp", "J_vp")
        }
        return cls(
            **a,
            n=int(d["n"]),
            p=int(d["p"]),
            n_top=int(d["n_top"]),
            cluster_level=np.asarray(d["cluster_level"], dtype=bool),
            stratum=None if d.get("stratum") is None else np.asarray(d["stratum"], dtype=np.int64),
            n_groups=tuple(int(g) for g in d.get("n_groups", ())),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ContrastTest:
    """Test of ``H0: Lβ = 0``.

    For one row, ``estimate``/``std_error``/``statistic`` (t) are set and
    ``ndf == 1``; for several rows ``statistic`` is the (scaled) F statistic.
    ``scale`` is the KR scale ``λ`` (1 otherwise).
    """

    estimate: tuple[float, ...]
    std_error: tuple[float, ...]
    statistic: float
    ndf: int
    ddf: float
    scale: float
    p_value: float
    df_method: str
    distribution: str


def _W(inf: Inference) -> np.ndarray:
    """Inverse expected information of the variance parameters.

    When two levels are not separately identifiable (e.g. every LA has a single
    keyworker) the information matrix is singular; the Moore–Penrose inverse is
    then used, which treats the confounded components as one.
    """
    try:
        return np.linalg.inv(inf.info)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(inf.info)


def kr_adjusted_vcov(inf: Inference) -> np.ndarray:
    """``Φ_A = Φ + 2Φ[Σ_rs W_rs (Q_rs - P_r Φ P_s)]Φ`` (Kenward & Roger 1997, eq. 5)."""
    W = _W(inf)
    Phi = inf.Phi
    PPhiP = np.einsum("kij,jl,mlt->kmit", inf.P, Phi, inf.P)
    U = np.einsum("km,kmij->ij", W, inf.Q - PPhiP)
    return Phi + 2.0 * Phi @ U @ Phi


def _as_L(L: np.ndarray | Sequence[float] | Sequence[Sequence[float]], p: int) -> np.ndarray:
    Lm = np.atleast_2d(np.asarray(L, dtype=float))
    if Lm.shape[1] != p:
        raise ModelSpecError.from_problem(
            path="contrast",
            code="fit.contrast_shape",
            message=f"contrast rows must have {p} entries (one per fixed effect); got {Lm.shape[1]}.",
            hint="build L with one column per term of result.fixed_effects.",
        )
    if np.linalg.matrix_rank(Lm) < Lm.shape[0]:
        raise ModelSpecError.from_problem(
            path="contrast",
            code="fit.contrast_rank",
            message="contrast rows must be linearly independent.",
            hint="drop redundant rows.",
        )
    return Lm


def kenward_roger(inf: Inference, L: Any) -> ContrastTest:
    """Kenward–Roger test of ``Lβ = 0``.

    Notes
    -----
    With ``Θ = L'(LΦL')⁻¹L``, ``A1 = Σ_ij W_ij tr(ΘΦP_iΦ) tr(ΘΦP_jΦ)``,
    ``A2 = Σ_ij W_ij tr(ΘΦP_iΦΘΦP_jΦ)``, ``B = (A1 + 6A2)/(2q)``,
    ``g = ((q+1)A1 - (q+4)A2)/((q+2)A2)``, ``c1 = g/(3q+2(1-g))``,
    ``c2 = (q-g)/(3q+2(1-g))``, ``c3 = (q+2-g)/(3q+2(1-g))``,
    ``E* = (1 - A2/q)⁻¹``, ``V* = (2/q)(1 + c1B)/((1 - c2B)²(1 - c3B))``,
    ``ρ = V*/(2E*²)``: ``m = 4 + (q+2)/(qρ - 1)``, ``λ = m/(E*(m - 2))`` and
    ``λF ~ F(q, m)`` with ``F = (Lβ̂)'(LΦ_AL')⁻¹(Lβ̂)/q`` (Kenward & Roger 1997,
    section 4).  For ``q = 1`` this reduces to ``λ = 1`` and
    ``m = 2v²/(g'Wg)``, ``v = l'Φl``, ``g_r = l'ΦP_rΦl``.
    """
    Lm = _as_L(L, inf.p)
    q = Lm.shape[0]
    Phi = inf.Phi
    PhiA = kr_adjusted_vcov(inf)
    W = _W(inf)
    est = Lm @ inf.beta
    VA = Lm @ PhiA @ Lm.T
    if q == 1:
        lv = Lm[0]
        v = float(lv @ Phi @ lv)
        u = Phi @ lv
        g = np.einsum("i,kij,j->k", u, inf.P, u)
        ddf = float(2.0 * v**2 / (g @ W @ g))
        se = float(np.sqrt(VA[0, 0]))
        return _t_test(float(est[0]), se, ddf, "kenward-roger")
    Theta = Lm.T @ np.linalg.solve(Lm @ Phi @ Lm.T, Lm)
    TPP = np.einsum("ij,jk,rkl,lm->rim", Theta, Phi, inf.P, Phi)  # ΘΦP_rΦ
    tr = np.einsum("rii->r", TPP)
    A1 = float(tr @ W @ tr)
    A2 = float(np.einsum("rs,rij,sji->", W, TPP, TPP))
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    den = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    Estar = 1.0 / (1.0 - A2 / q)
    Vstar = (2.0 / q) * (1.0 + c1 * B) / ((1.0 - c2 * B) ** 2 * (1.0 - c3 * B))
    rho = Vstar / (2.0 * Estar**2)
    m = 4.0 + (q + 2.0) / (q * rho - 1.0)
    lam = m / (Estar * (m - 2.0))
    F = float(est @ np.linalg.solve(VA, est)) / q
    Fs = lam * F
    return ContrastTest(
        estimate=tuple(float(x) for x in est),
        std_error=tuple(float(x) for x in np.sqrt(np.diag(VA))),
        statistic=Fs,
        ndf=q,
        ddf=float(m),
        scale=float(lam),
        p_value=float(stats.f.sf(Fs, q, m)),
        df_method="kenward-roger",
        distribution=f"F({q}, {m:.6g})",
    )


def _sat_df_one(inf: Inference, lv: np.ndarray, A: np.ndarray) -> tuple[float, float]:
    v = float(lv @ inf.Phi @ lv)
    u = inf.Phi @ lv
    g = np.einsum("i,kij,j->k", u, inf.P, u)
    gvp = inf.J_vp.T @ g
    return v, float(2.0 * v**2 / (gvp @ A @ gvp))


def _A_vp(inf: Inference) -> np.ndarray:
    try:
        return 2.0 * _pinv_safe(inf.H_vp)
    except np.linalg.LinAlgError:  # pragma: no cover - degenerate
        return 2.0 * np.linalg.pinv(inf.H_vp)


def satterthwaite(inf: Inference, L: Any) -> ContrastTest:
    """Satterthwaite test of ``Lβ = 0`` (lmerTest's method).

    Notes
    -----
    One row: ``ν = 2v²/(g'Ag)`` with ``v = l'Φl``, ``g = ∂v/∂(θ, σ)`` and
    ``A = 2H⁻¹``, ``H`` the Hessian of the REML deviance in ``(θ, σ)``
    (Kuznetsova et al. 2017).  Several rows: eigen-decompose
    ``LΦL' = UDU'``; the rows of ``U'L`` are independent one-row contrasts
    with ``t_i²`` and ``ν_i``; ``F = Σ t_i²/q`` and, with
    ``E = Σ_{ν_i>2} ν_i/(ν_i - 2)``, ``ddf = 2E/(E - q)`` (Fai & Cornelius 1996).
    """
    Lm = _as_L(L, inf.p)
    q = Lm.shape[0]
    A = _A_vp(inf)
    est = Lm @ inf.beta
    if q == 1:
        v, ddf = _sat_df_one(inf, Lm[0], A)
        se = float(np.sqrt(v))
        return _t_test(float(est[0]), se, ddf, "satterthwaite")
    V = Lm @ inf.Phi @ Lm.T
    d, U = np.linalg.eigh(V)
    PL = U.T @ Lm
    t2 = (PL @ inf.beta) ** 2 / d
    nus = np.array([_sat_df_one(inf, PL[i], A)[1] for i in range(q)])
    F = float(t2.sum() / q)
    big = nus > 2.0
    E = float(np.sum(nus[big] / (nus[big] - 2.0)))
    ddf = 2.0 * E / (E - q) if E > q else float("nan")
    return ContrastTest(
        estimate=tuple(float(x) for x in est),
        std_error=tuple(float(x) for x in np.sqrt(np.diag(V))),
        statistic=F,
        ndf=q,
        ddf=float(ddf),
        scale=1.0,
        p_value=float(stats.f.sf(F, q, ddf)),
        df_method="satterthwaite",
        distribution=f"F({q}, {ddf:.6g})",
    )


def between_within_df(inf: Inference, L: np.ndarray) -> float:
    """Between-within df for the contrast rows ``L`` (between if every term used is cluster-level).

    ``J - r_b`` (``r_b`` = number of cluster-level columns, the intercept
    included) when every column the contrast touches is constant within
    top-level clusters, else ``n - J - (p - r_b)``.
    """
    Lm = np.atleast_2d(L)
    cl = inf.cluster_level
    rb = int(cl.sum())
    used = np.any(Lm != 0, axis=0)
    if np.all(cl[used]):
        return float(inf.n_top - rb)
    return float(inf.n - inf.n_top - (inf.p - rb))


def column_strata(
    X: np.ndarray,
    cluster_codes: Sequence[np.ndarray],
    *,
    within: np.ndarray | None = None,
) -> np.ndarray:
    """Containment stratum of each column of ``X`` (nlme's "inner" levels).

    ``-1`` for a constant column (the intercept); otherwise ``1 + max{l : the column
    varies within some group of level l}`` (levels top first), or ``0`` when it is
    constant within every top-level cluster.  "Varies" means a range above
    ``10⁻¹²·max(1, |max|)`` within some group.

    ``within`` (optional, shape (L + 1, p)): each column's sum of squared deviations
    from its level-``l`` group means (row ``l``; row ``L``: from the grand mean),
    e.g. from the mixed model's sufficient statistics
    (:func:`trialkit.models._tree.within_sums_of_squares`).  It settles most columns
    without a pass over the rows: a sum of exactly 0 means constant within every
    group, and a sum above ``n·(10⁻⁹·max(1, max|x|))²`` means some group's range
    exceeds ``10⁻⁹·max(1, max|x|)`` (the sum is at most ``n`` times the largest
    squared range); only the columns in between are checked on the rows.
    """
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    L = len(cluster_codes)
    out = np.zeros(p, dtype=np.int64)
    if within is not None:
        scale = np.maximum(1.0, np.abs(X).max(axis=0)) if n else np.ones(p)
        sure = n * (1e-9 * scale) ** 2
        total = within[L]
        exact = np.zeros(p, dtype=bool)
        const = total == 0.0
        exact |= (total > 0.0) & (total <= sure)
        for l in range(L - 1, -1, -1):
            ss = within[l]
            settled = (out == 0) & ~const & ~exact
            out[settled & (ss > sure)] = l + 1
            exact |= settled & (ss > 0.0) & (ss <= sure)
        todo = np.flatnonzero(exact)
        if todo.size:
            out[todo] = column_strata(X[:, todo], cluster_codes)
        out[const] = -1
        return out
    const = np.all(np.abs(X - X[:1, :]) <= 1e-12, axis=0)
    todo = np.flatnonzero(~const)
    # deepest level first: a column that varies within a level's groups is done
    for l in range(L - 1, -1, -1):
        if todo.size == 0:
            break
        lo, hi = _group_range(X[:, todo], np.asarray(cluster_codes[l]))
        varies = np.any(hi - lo > 1e-12 * np.maximum(1.0, np.abs(hi)), axis=0)
        out[todo[varies]] = l + 1
        todo = todo[~varies]
    out[const] = -1
    return out


def _group_range(x: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum of the columns of ``x`` within each group of ``codes``."""
    if codes.size > 1 and not np.all(codes[1:] >= codes[:-1]):
        order = np.argsort(codes, kind="stable")
        codes = codes[order]
        x = x[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    return np.minimum.reduceat(x, starts, axis=0), np.maximum.reduceat(x, starts, axis=0)


def containment_df(inf: Inference) -> np.ndarray:
    """nlme's containment df of each column (see the module docstring).

    Raises
    ------
    ModelSpecError
        The result was saved without the strata (code ``fit.containment_unavailable``).
    """
    if inf.stratum is None or not inf.n_groups:
        raise ModelSpecError.from_problem(
            path="df_method",
            code="fit.containment_unavailable",
            message="`df_method='containment'` must have the column strata; got a result "
            "saved without them.",
            hint="refit with trialkit.fit(..., df_method='containment').",
        )
    groups = np.r_[np.asarray(inf.n_groups, dtype=float), float(inf.n)]
    dfs = groups - np.r_[0.0, groups[:-1]]
    st = inf.stratum
    inner = st >= 0
    dfs -= np.bincount(st[inner], minlength=len(dfs))[: len(dfs)]
    if np.any(~inner):
        dfs[0] -= 1.0
    else:
        dfs[1:] += 1.0
    return np.where(inner, dfs[np.maximum(st, 0)], dfs.max())


def _t_test(estimate: float, se: float, ddf: float, method: str) -> ContrastTest:
    """Two-sided t test of one contrast with ``ddf`` denominator df."""
    t, p, _lo, _hi = t_inference(estimate, se, ddf)
    return ContrastTest(
        estimate=(estimate,),
        std_error=(se,),
        statistic=float(t),
        ndf=1,
        ddf=ddf,
        scale=1.0,
        p_value=float(p),
        df_method=method,
        distribution=distribution_label(ddf),
    )


def _simple(inf: Inference, L: Any, ddf: float, method: str) -> ContrastTest:
    Lm = _as_L(L, inf.p)
    q = Lm.shape[0]
    est = Lm @ inf.beta
    V = Lm @ inf.Phi @ Lm.T
    if q == 1:
        se = float(np.sqrt(V[0, 0]))
        return _t_test(float(est[0]), se, ddf, method)
    F = float(est @ np.linalg.solve(V, est)) / q
    normal = bool(np.isinf(ddf))  # F(q, ∞) is χ²(q)/q
    return ContrastTest(
        estimate=tuple(float(x) for x in est),
        std_error=tuple(float(x) for x in np.sqrt(np.diag(V))),
        statistic=F,
        ndf=q,
        ddf=ddf,
        scale=1.0,
        p_value=float(stats.chi2.sf(q * F, q) if normal else stats.f.sf(F, q, ddf)),
        df_method=method,
        distribution=f"chi2({q})/{q}" if normal else f"F({q}, {ddf:.6g})",
    )


def test_contrast(inf: Inference, L: Any, df_method: str = "kenward-roger") -> ContrastTest:
    """Test ``H0: Lβ = 0`` with the named df method (see the module docstring)."""
    if df_method == "kenward-roger":
        return kenward_roger(inf, L)
    if df_method == "satterthwaite":
        return satterthwaite(inf, L)
    if df_method == "between-within":
        Lm = _as_L(L, inf.p)
        return _simple(inf, Lm, between_within_df(inf, Lm), df_method)
    if df_method == "residual":
        return _simple(inf, L, float(inf.n - inf.p), df_method)
    if df_method == "z":
        return _simple(inf, L, float("inf"), df_method)
    if df_method == "containment":
        Lm = _as_L(L, inf.p)
        used = np.any(Lm != 0, axis=0)
        return _simple(inf, Lm, float(np.min(containment_df(inf)[used])), df_method)
    check_df_method(df_method)
    raise AssertionError(df_method)  # pragma: no cover - check_df_method raised


def coefficient_terms(
    inf: Inference, names: Sequence[str], df_method: str, alpha: float
) -> list[Term]:
    """Inference for every coefficient with the named df method (vectorised over coefficients).

    Kenward–Roger uses the adjusted covariance ``Φ_A`` for the standard errors; the
    other methods the model-based ``Φ``.
    """
    p = inf.p
    Phi = inf.Phi
    v = np.diag(Phi).copy()
    if df_method == "kenward-roger":
        W = _W(inf)
        g = np.einsum("ij,rjk,ki->ri", Phi, inf.P, Phi)  # g_rj = (Φ P_r Φ)_jj
        df = 2.0 * v**2 / np.einsum("rj,rs,sj->j", g, W, g)
        var = np.diag(kr_adjusted_vcov(inf)).copy()
    elif df_method == "satterthwaite":
        g = np.einsum("ij,rjk,ki->ri", Phi, inf.P, Phi)
        gvp = np.einsum("ra,rj->aj", inf.J_vp, g)
        A = 2.0 * _pinv_safe(inf.H_vp)  # pseudo-inverse if the Hessian is singular
        df = 2.0 * v**2 / np.einsum("aj,ab,bj->j", gvp, A, gvp)
        var = v
    elif df_method == "between-within":
        df = np.array([between_within_df(inf, np.eye(p)[j]) for j in range(p)])
        var = v
    elif df_method == "containment":
        df = containment_df(inf)
        var = v
    elif df_method == "z":
        df = np.full(p, float("inf"))
        var = v
    else:
        check_df_method(df_method)
        df = np.full(p, float(inf.n - p))
        var = v
    return t_terms(names, inf.beta, np.sqrt(var), df, alpha, df_method)


# pytest must not collect test_contrast as a test when imported into a test module
test_contrast.__test__ = False  # type: ignore[attr-defined]


def _pinv_safe(M: np.ndarray) -> np.ndarray:
    """Inverse, or the Moore–Penrose inverse when ``M`` is singular."""
    try:
        return np.linalg.inv(M)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(M)
