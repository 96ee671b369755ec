"""Multilevel multiple imputation: a Gibbs sampler with nested random intercepts.

:func:`impute_multilevel` completes the missing values of a continuous outcome
(and of incomplete numeric auxiliaries or covariates) in data from a cluster
randomised trial and returns ``m`` proper draws as an :class:`Imputations`
object, from which :meth:`Imputations.completed` builds each completed dataset.

The imputation model
--------------------
Fully conditional specification (van Buuren 2018, ch. 4 and 7): every incomplete
variable ``y_j`` has its own linear mixed model with random intercepts for each
cluster level (LA and, for 3-level data, keyworker within LA),

.. math::

    y_{j,i} = x_{j,i}'\\beta_j + \\sum_{l} u_{j,l}[g_l(i)] + e_{j,i},\\quad
    u_{j,l}[g] \\sim N(0, \\tau^2_{j,l}),\\quad e_{j,i} \\sim N(0, \\sigma^2_j),

where ``x_{j,i}`` holds an intercept, the treatment indicator (or, with
``by_arm=True``, nothing: the whole model is fitted separately in each arm so that
every parameter may differ by arm), the complete predictors (analysis covariates
and auxiliaries) and the current values of the other incomplete variables (the
outcome included).  With only the outcome incomplete this is the joint model
of Schafer & Yucel (2002) / ``jomo::jomo1rancon`` with the complete variables as
covariates; with one cluster level it is ``mice``'s ``2l.pan`` model.

The sampler
-----------
One sweep updates, for each incomplete variable in turn and using the rows where
it is observed (Schafer & Yucel 2002; Gelman et al. 2013, ch. 15):

1. ``β | u, σ² ~ N((X'X)⁻¹X'(y - Zu), σ²(X'X)⁻¹)`` (flat prior);
2. for each level ``l`` and group ``g`` (``n_g`` observed rows, residual sum
   ``S_g`` of ``y - Xβ - `` the other levels' effects):
   ``u_l[g] ~ N((S_g/σ²)/(n_g/σ² + 1/τ²_l), 1/(n_g/σ² + 1/τ²_l))``
   (a group without observed rows is drawn from its prior);
3. ``τ²_l | u ~ (ν₀ s₀² + Σ_g u_l[g]²)/χ²(ν₀ + G_l)`` and
   ``σ² | β, u ~ (ν₀ s₀² + Σ_i e_i²)/χ²(ν₀ + n_obs)``;
4. the missing values: ``y_{j,i} ~ N(x_{j,i}'β + Σ_l u_l[g_l(i)], σ²)``.

Variance priors (scaled inverse-χ², ``prior=``): ``"default"`` puts a uniform
prior on each random-intercept SD (``ν₀ = -1, s₀² = 0``; Gelman 2006, proper
posterior for 3 or more groups, no pull towards large variances with 12 LAs) and
``p(σ²) ∝ 1/σ²`` on the residual variance (``ν₀ = 0``); ``"jomo"`` uses jomo's
default inverse-Wishart priors with identity scale, for a single variable
inverse-gamma(1/2, 1/2) on every variance (``ν₀ = 1, s₀² = 1``; scale-dependent).
Starting values: observed means for missing values, OLS for ``β``, zero random
effects, a tenth of the residual variance for each ``τ²``.  After ``burn_in``
sweeps every ``thin``-th sweep is kept, ``m`` in all, so the draws are proper
(parameters drawn from their posterior) and nearly independent; the diagnostics
(traces, lag-``thin`` autocorrelation, split-R̂) are stored.

References
----------
Schafer JL, Yucel RM. Computational strategies for multivariate linear
mixed-effects models with missing values. J Comput Graph Stat 2002;11:437–457.
van Buuren S. Flexible Imputation of Missing Data, 2nd ed. CRC Press, 2018.
Gelman A. Prior distributions for variance parameters in hierarchical models.
Bayesian Anal 2006;1:515–534.
Gelman A et al. Bayesian Data Analysis, 3rd ed. CRC Press, 2013.
Andridge RR. Quantifying the impact of fixed effects modeling of clusters in
multiple imputation for cluster randomized trials. Biom J 2011;53:57–74.
Quartagno M, Carpenter JR. jomo: a flexible package for two-level joint modelling
multiple imputation. R J 2019;11:205–228.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trialkit.errors import ModelSpecError, TrialkitError
from trialkit.models.coding import code_categorical, is_categorical

__all__ = [
    "PRIORS",
    "ImputationDiagnostics",
    "Imputations",
    "impute_multilevel",
]

#: Variance priors: name -> ((ν₀, s₀²) of each random-intercept variance, (ν₀, s₀²) of σ²).
PRIORS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "default": ((-1.0, 0.0), (0.0, 0.0)),
    "jomo": ((1.0, 1.0), (1.0, 1.0)),
}


def _fail(code: str, path: str, message: str, hint: str) -> TrialkitError:
    return ModelSpecError.from_problem(path=path, code=code, message=message, hint=hint)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImputationDiagnostics:
    """Convergence diagnostics of the sampler for the outcome's imputation model.

    Attributes
    ----------
    parameters : tuple of str
        Names of the traced quantities: the treatment coefficient (when the model has
        one), each random-intercept variance ``tau2[<level>]``, ``sigma2`` and
        ``mean_imputed`` (mean of the imputed outcome values); per arm with
        ``by_arm`` (``"<name>|<arm>"``).
    trace : ndarray, shape (iterations, len(parameters))
        Every sweep's value (burn-in included).
    burn_in, thin, iterations : int
    posterior_mean, posterior_sd : mapping
        Over the kept part of the chain (after burn-in).
    autocorrelation : mapping
        Lag-``thin`` autocorrelation after burn-in (near 0: nearly independent draws).
    split_rhat : mapping
        Gelman–Rubin R̂ of the two halves of the post-burn-in chain (near 1: converged).
    """

    parameters: tuple[str, ...]
    trace: np.ndarray = field(repr=False, compare=False)
    burn_in: int
    thin: int
    iterations: int
    posterior_mean: Mapping[str, float]
    posterior_sd: Mapping[str, float]
    autocorrelation: Mapping[str, float]
    split_rhat: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        """Summary (no trace): JSON-safe."""
        from trialkit.models.terms import clean_float

        def f(d: Mapping[str, float]) -> dict[str, Any]:
            return {k: clean_float(float(v)) for k, v in d.items()}

        return {
            "parameters": list(self.parameters),
            "burn_in": self.burn_in,
            "thin": self.thin,
            "iterations": self.iterations,
            "posterior_mean": f(self.posterior_mean),
            "posterior_sd": f(self.posterior_sd),
            "autocorrelation": f(self.autocorrelation),
            "split_rhat": f(self.split_rhat),
        }

    def to_frame(self) -> pd.DataFrame:
        """The trace, one column per parameter, with an ``iteration`` column."""
        out = pd.DataFrame(self.trace, columns=list(self.parameters))
        out.insert(0, "iteration", np.arange(1, len(out) + 1))
        return out


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Imputations:
    """``m`` draws of the missing values (from :func:`impute_multilevel`).

    Attributes
    ----------
    data : DataFrame
        The input rows the imputation model used (index reset), NaN where missing.
    outcome : str
        The outcome column (the one δ-adjustment shifts).
    imputed : tuple of str
        Columns with imputed values (outcome first).
    missing_rows : mapping column -> ndarray
        Positions (0-based) of the missing values of each imputed column.
    values : mapping column -> ndarray, shape (m, n_missing)
        The draws.
    m, seed : int
    treatment, clusters, predictors : str / tuple of str
        The imputation model's treatment column, cluster columns (top first) and
        complete predictors.
    by_arm : bool
    prior : str
    outcome_sd : float
        Standard deviation of the observed outcome values (the unit of δ).
    diagnostics : ImputationDiagnostics
    """

    data: pd.DataFrame = field(repr=False)
    outcome: str
    imputed: tuple[str, ...]
    missing_rows: Mapping[str, np.ndarray] = field(repr=False)
    values: Mapping[str, np.ndarray] = field(repr=False)
    m: int
    seed: int
    treatment: str
    clusters: tuple[str, ...]
    predictors: tuple[str, ...]
    by_arm: bool
    prior: str
    outcome_sd: float
    treated: np.ndarray = field(repr=False)
    diagnostics: ImputationDiagnostics
    data_hash: str = ""

    @property
    def n_missing(self) -> dict[str, int]:
        """Number of imputed values per column."""
        return {c: int(len(self.missing_rows[c])) for c in self.imputed}

    def completed(
        self, index: int, *, delta: float = 0.0, delta_arm: str = "treated"
    ) -> pd.DataFrame:
        """The ``index``-th completed dataset (0-based).

        Parameters
        ----------
        index : int
            ``0 .. m-1``.
        delta : float
            δ-adjustment in outcome SD units: the imputed outcome values of the
            rows chosen by ``delta_arm`` are shifted by ``delta · outcome_sd``
            (missing not at random sensitivity analysis).
        delta_arm : {"treated", "control", "both"}
        """
        if not 0 <= index < self.m:
            raise IndexError(f"imputation index must be in 0..{self.m - 1}; got {index}")
        out = self.data.copy()
        for c in self.imputed:
            rows = self.missing_rows[c]
            vals = self.values[c][index].copy()
            if c == self.outcome and delta != 0.0:
                vals = vals + delta * self.outcome_sd * _arm_mask(self.treated[rows], delta_arm)
            col = out[c].to_numpy(dtype=float, copy=True)
            col[rows] = vals
            out[c] = col
        return out

    def to_dict(self) -> dict[str, Any]:
        """Settings, counts and diagnostics (no data)."""
        return {
            "m": self.m,
            "seed": self.seed,
            "outcome": self.outcome,
            "imputed": list(self.imputed),
            "n_missing": self.n_missing,
            "n_rows": int(len(self.data)),
            "treatment": self.treatment,
            "clusters": list(self.clusters),
            "predictors": list(self.predictors),
            "by_arm": self.by_arm,
            "prior": self.prior,
            "outcome_sd": self.outcome_sd,
            "data_hash": self.data_hash,
            "diagnostics": self.diagnostics.to_dict(),
        }

    def summary(self) -> str:
        d = self.diagnostics
        miss = ", ".join(f"{k} {v}" for k, v in self.n_missing.items())
        return (
            f"multilevel imputation: m = {self.m}, seed {self.seed}, imputed {miss} of "
            f"{len(self.data)} rows; burn-in {d.burn_in}, thin {d.thin}; max split-Rhat "
            f"{max(d.split_rhat.values(), default=float('nan')):.3f}"
        )


def _arm_mask(treated: np.ndarray, delta_arm: str) -> np.ndarray:
    if delta_arm == "treated":
        return (treated == 1).astype(float)
    if delta_arm == "control":
        return (treated == 0).astype(float)
    if delta_arm == "both":
        return np.ones(len(treated))
    raise _fail(
        "impute.delta_arm",
        "delta_arm",
        f"delta_arm must be one of treated, control, both; got {delta_arm!r}.",
        "shift the imputed outcomes of the treated arm (the usual choice), the control arm or both.",
    )


# ----------------------------------------------------------------------------- the sampler
@dataclass(slots=True)
class _State:
    beta: np.ndarray
    u: list[np.ndarray]
    tau2: np.ndarray
    sigma2: float


def _codes(frame: pd.DataFrame, clusters: Sequence[str]) -> list[np.ndarray]:
    """Integer codes per level, nested ids made unique within their parent."""
    out: list[np.ndarray] = []
    key = pd.Series([""] * len(frame), index=frame.index, dtype=object)
    for c in clusters:
        key = key + "\x1f" + frame[c].astype(str)
        out.append(pd.factorize(key, sort=True)[0].astype(np.int64))
    return out


class _Chain:
    """The Gibbs sampler for one set of rows (all rows, or one arm with ``by_arm``).

    Each incomplete variable ``j`` keeps its own design matrix ``D_j = [X, Y_{-j}]``
    whose ``Y`` columns are refreshed in place after each draw of a missing value.
    """

    def __init__(
        self,
        Y: np.ndarray,
        X: np.ndarray,
        codes: list[np.ndarray],
        prior: str,
        rng: np.random.Generator,
    ) -> None:
        self.Y = Y.copy()
        self.rng = rng
        J = Y.shape[1]
        self.J = J
        miss = np.isnan(Y)
        self.obs = [np.flatnonzero(~miss[:, j]) for j in range(J)]
        self.mis = [np.flatnonzero(miss[:, j]) for j in range(J)]
        self.G = [int(c.max()) + 1 if len(c) else 0 for c in codes]
        (self.nu_t, self.s_t), (self.nu_e, self.s_e) = PRIORS[prior]
        self.c_obs = [[c[o] for c in codes] for o in self.obs]
        self.c_mis = [[c[mi] for c in codes] for mi in self.mis]
        self.n_g = [
            [np.bincount(co, minlength=g).astype(float) for co, g in zip(cs, self.G, strict=True)]
            for cs in self.c_obs
        ]
        self.y_obs = [self.Y[o, j].copy() for j, o in enumerate(self.obs)]
        for j in range(J):
            self.Y[self.mis[j], j] = self.y_obs[j].mean()
        p = X.shape[1]
        self.p = p
        # D_j: X then the other incomplete variables; column of variable k in D_j
        self.D = [
            np.column_stack([X, self.Y[:, [k for k in range(J) if k != j]]]) for j in range(J)
        ]
        self.where = [
            {k: p + (k if k < j else k - 1) for k in range(J) if k != j} for j in range(J)
        ]
        self.D_obs = [self.D[j][o] for j, o in enumerate(self.obs)]
        self.D_mis = [self.D[j][mi] for j, mi in enumerate(self.mis)]
        # where variable k's missing rows sit among variable j's observed / missing rows
        self.spots: dict[
            tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
        ] = {}
        for j in range(J):
            for k in range(J):
                if k != j:
                    _, in_o, from_k_o = np.intersect1d(
                        self.obs[j], self.mis[k], return_indices=True
                    )
                    _, in_m, from_k_m = np.intersect1d(
                        self.mis[j], self.mis[k], return_indices=True
                    )
                    self.spots[(j, k)] = (in_o, from_k_o, in_m, from_k_m)
        self.mis_sum = [0.0] * J
        self.n_normal = [self.D[j].shape[1] + sum(self.G) + len(self.mis[j]) for j in range(J)]
        self.chi_df = [
            np.array([self.nu_t + g for g in self.G] + [self.nu_e + len(o)], dtype=float)
            for o in self.obs
        ]
        self._next = self._BLOCK
        self.fixed_inv: list[np.ndarray | None] = [
            np.linalg.inv(np.linalg.cholesky(self.D[j][o].T @ self.D[j][o])) if J == 1 else None
            for j, o in enumerate(self.obs)
        ]
        self.states: list[_State] = []
        for j in range(J):
            o = self.obs[j]
            beta, *_ = np.linalg.lstsq(self.D[j][o], self.y_obs[j], rcond=None)
            res = self.y_obs[j] - self.D[j][o] @ beta
            s2 = float(np.mean(res**2)) if len(res) else 1.0
            s2 = s2 if s2 > 0 else 1.0
            self.states.append(
                _State(
                    beta=beta,
                    u=[np.zeros(g) for g in self.G],
                    tau2=np.full(len(self.G), 0.1 * s2),
                    sigma2=s2,
                )
            )

    _BLOCK = 64  # sweeps whose random numbers are drawn in one call

    def _refill(self) -> None:
        """Draw the normals and chi-squares of the next ``_BLOCK`` sweeps at once."""
        rng, B = self.rng, self._BLOCK
        self._normals = [rng.standard_normal((B, k)) for k in self.n_normal]
        self._chisq = [rng.chisquare(df, size=(B, len(df))) for df in self.chi_df]
        self._next = 0

    def sweep(self) -> None:
        if self._next >= self._BLOCK:
            self._refill()
        b = self._next
        self._next += 1
        for j, st in enumerate(self.states):
            mis, y = self.mis[j], self.y_obs[j]
            cs = self.c_obs[j]
            zn = self._normals[j][b]
            chi = self._chisq[j][b]
            zu = st.u[0][cs[0]]
            for c, u in zip(cs[1:], st.u[1:], strict=True):
                zu = zu + u[c]
            # 1. β ~ N((D'D)⁻¹D'(y - Zu), σ²(D'D)⁻¹), with L⁻¹ of the Cholesky factor
            Dobs = self.D_obs[j]
            Li = self.fixed_inv[j]
            if Li is None:
                Li = np.linalg.inv(np.linalg.cholesky(Dobs.T @ Dobs))
            q = Dobs.shape[1]
            w = Li @ (Dobs.T @ (y - zu)) + math.sqrt(st.sigma2) * zn[:q]
            st.beta = Li.T @ w
            fit = Dobs @ st.beta
            # 2. random intercepts, level by level
            at = q
            for li, (c, g) in enumerate(zip(cs, self.G, strict=True)):
                zu = zu - st.u[li][c]
                S = np.bincount(c, weights=y - fit - zu, minlength=g)
                prec = self.n_g[j][li] / st.sigma2 + 1.0 / st.tau2[li]
                st.u[li] = (S / st.sigma2 + zn[at : at + g] * np.sqrt(prec)) / prec
                at += g
                zu = zu + st.u[li][c]
            # 3. variances
            for li in range(len(self.G)):
                ss = self.nu_t * self.s_t + float(st.u[li] @ st.u[li])
                st.tau2[li] = max(ss / chi[li], 1e-12)
            e = y - fit - zu
            st.sigma2 = (self.nu_e * self.s_e + float(e @ e)) / chi[-1]
            # 4. missing values, written into the other variables' designs
            if len(mis):
                cm = self.c_mis[j]
                mu = self.D_mis[j] @ st.beta
                for c, u in zip(cm, st.u, strict=True):
                    mu = mu + u[c]
                draw = mu + math.sqrt(st.sigma2) * zn[at:]
                self.Y[mis, j] = draw
                self.mis_sum[j] = float(draw.sum())
                for k in range(self.J):
                    if k != j:
                        col = self.where[k][j]
                        in_o, from_o, in_m, from_m = self.spots[(k, j)]
                        self.D_obs[k][in_o, col] = draw[from_o]
                        self.D_mis[k][in_m, col] = draw[from_m]

    def trace_row(self, treat_col: int | None) -> list[float]:
        st = self.states[0]
        row = [] if treat_col is None else [float(st.beta[treat_col])]
        row += [float(t) for t in st.tau2]
        row.append(float(st.sigma2))
        n_mis = len(self.mis[0])
        row.append(self.mis_sum[0] / n_mis if n_mis else float("nan"))
        return row


def _diagnostics(
    names: list[str], trace: np.ndarray, burn_in: int, thin: int
) -> ImputationDiagnostics:
    post = trace[burn_in:]
    mean, sd, ac, rhat = {}, {}, {}, {}
    for k, name in enumerate(names):
        x = post[:, k]
        mean[name] = float(np.mean(x))
        sd[name] = float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")
        ac[name] = _autocorr(x, thin)
        rhat[name] = _split_rhat(x)
    return ImputationDiagnostics(
        parameters=tuple(names),
        trace=trace,
        burn_in=burn_in,
        thin=thin,
        iterations=int(trace.shape[0]),
        posterior_mean=mean,
        posterior_sd=sd,
        autocorrelation=ac,
        split_rhat=rhat,
    )


def _autocorr(x: np.ndarray, lag: int) -> float:
    if len(x) <= lag + 1 or not np.all(np.isfinite(x)):
        return float("nan")
    d = x - x.mean()
    den = float(d @ d)
    return float(d[:-lag] @ d[lag:] / den) if den > 0 else float("nan")


def _split_rhat(x: np.ndarray) -> float:
    """Gelman–Rubin potential scale reduction of the two halves of one chain."""
    n = len(x) // 2
    if n < 2 or not np.all(np.isfinite(x)):
        return float("nan")
    a, b = x[:n], x[n : 2 * n]
    w = 0.5 * (a.var(ddof=1) + b.var(ddof=1))
    if w <= 0:
        return float("nan")
    bm = n * np.var([a.mean(), b.mean()], ddof=1)
    var_plus = (n - 1) / n * w + bm / n
    return float(math.sqrt(var_plus / w))


# ----------------------------------------------------------------------------- public entry
def impute_multilevel(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str,
    clusters: Sequence[str],
    predictors: Sequence[str] = (),
    treatment_level: object | None = None,
    m: int = 20,
    seed: int = 0,
    burn_in: int = 500,
    thin: int = 50,
    by_arm: bool = False,
    prior: str = "default",
) -> Imputations:
    """Draw ``m`` multilevel imputations of the missing outcome and predictor values.

    Parameters
    ----------
    data : DataFrame
        One row per individual, NaN where a value is missing.
    outcome : str
        The (continuous) outcome column.
    treatment : str
        Treatment column: 0/1, or two labels with ``treatment_level`` the treated one.
        Must be complete.
    clusters : sequence of str
        Cluster columns, top of the nesting first (e.g. ``["la_id", "keyworker_id"]``);
        each gets a random intercept.  Must be complete.
    predictors : sequence of str
        Analysis covariates and auxiliary variables.  Numeric ones with missing values
        are imputed too (each from its own multilevel model); categorical ones must be
        complete (they are dummy-coded).
    m : int
        Number of imputations (>= 2).
    seed : int
        Seed of the random number generator: the same seed gives the same draws.
    burn_in, thin : int
        Sweeps before the first kept draw, and between kept draws.
    by_arm : bool
        Fit the imputation model separately in each arm (every parameter, the
        variances included, may differ by arm) instead of with the treatment as a
        covariate.
    prior : {"default", "jomo"}
        Variance priors (:data:`PRIORS`; see the module docstring).

    Returns
    -------
    Imputations

    Raises
    ------
    ModelSpecError
        Unknown column (``impute.column_missing``), missing treatment or cluster ids
        (``impute.incomplete_design``), an incomplete categorical predictor
        (``impute.categorical_missing``), a non-numeric outcome, nothing to impute
        (``impute.nothing_missing``), an outcome with fewer than 2 observed values in
        an arm, bad settings (``impute.settings``).
    """
    if prior not in PRIORS:
        raise _fail(
            "impute.settings",
            "prior",
            f"prior must be one of {', '.join(PRIORS)}; got {prior!r}.",
            "use 'default'.",
        )
    for name, v, lo in (("m", m, 2), ("burn_in", burn_in, 0), ("thin", thin, 1)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
            raise _fail(
                "impute.settings",
                name,
                f"{name} must be an integer >= {lo}; got {v!r}.",
                "e.g. m=20, burn_in=500, thin=50.",
            )
    if not clusters:
        raise _fail(
            "impute.settings",
            "clusters",
            "multilevel imputation needs at least one cluster column; got none.",
            "pass clusters=['la_id'] or ['la_id', 'keyworker_id'].",
        )
    cols = [outcome, treatment, *clusters, *predictors]
    absent = [c for c in dict.fromkeys(cols) if c not in data.columns]
    if absent:
        raise _fail(
            "impute.column_missing",
            f"column {absent[0]}",
            f"column `{absent[0]}` must be in the data; got columns {', '.join(map(str, data.columns))}.",
            "check the spelling of the outcome, treatment, cluster and auxiliary names.",
        )
    if len(set(cols)) != len(cols):
        dup = next(c for c in cols if cols.count(c) > 1)
        raise _fail(
            "impute.duplicate_column",
            f"column {dup}",
            f"column `{dup}` is named twice.",
            "list each variable once (an auxiliary that is also a covariate counts once).",
        )
    frame = data.reset_index(drop=True)
    for c in (treatment, *clusters):
        if frame[c].isna().any():
            raise _fail(
                "impute.incomplete_design",
                f"column {c}",
                f"`{c}` must have no missing values; got {int(frame[c].isna().sum())} missing.",
                "rows without an arm or a cluster id cannot be imputed; drop them first.",
            )
    treated = _treatment_indicator(frame[treatment], treatment_level, treatment)
    if not pd.api.types.is_numeric_dtype(frame[outcome]):
        raise _fail(
            "impute.outcome_type",
            f"column {outcome}",
            f"the outcome `{outcome}` must be numeric; got dtype {frame[outcome].dtype}.",
            "multilevel imputation models a continuous outcome.",
        )
    # predictors: complete ones (dummy-coded if categorical), incomplete numeric ones imputed
    fixed_cols: list[np.ndarray] = []
    fixed_names: list[str] = []
    incomplete: list[str] = [outcome]
    for c in predictors:
        s = frame[c]
        if is_categorical(s):
            if s.isna().any():
                raise _fail(
                    "impute.categorical_missing",
                    f"column {c}",
                    f"categorical predictor `{c}` must be complete; got {int(s.isna().sum())} missing.",
                    "impute it separately, or leave it out of the imputation model.",
                )
            dummies, coding = code_categorical(s, c)
            if dummies.ndim == 1:
                dummies = dummies[:, None]
            for k in range(dummies.shape[1]):
                fixed_cols.append(np.asarray(dummies[:, k], dtype=float))
                fixed_names.append(f"{c}[{coding.levels[k + 1]}]")
        elif s.isna().any():
            incomplete.append(c)
        else:
            fixed_cols.append(s.to_numpy(dtype=float))
            fixed_names.append(c)
    Y = np.column_stack([frame[c].to_numpy(dtype=float) for c in incomplete])
    if not np.isnan(Y).any():
        raise _fail(
            "impute.nothing_missing",
            f"column {outcome}",
            f"there is nothing to impute: `{outcome}` and the predictors have no missing values.",
            "analyse the complete data (the complete-case analysis is then the analysis).",
        )
    codes = _codes(frame, clusters)
    rng = np.random.default_rng(seed)
    n_iter = burn_in + m * thin
    keep_at = {burn_in + (k + 1) * thin - 1: k for k in range(m)}
    draws = {c: np.empty((m, int(np.isnan(Y[:, j]).sum()))) for j, c in enumerate(incomplete)}
    groups = (
        [np.arange(len(frame))] if not by_arm else [np.flatnonzero(treated == a) for a in (0, 1)]
    )
    chains: list[tuple[np.ndarray, _Chain]] = []
    names: list[str] = []
    for gi, rows in enumerate(groups):
        Xg = np.column_stack(
            [np.ones(len(rows))]
            + ([] if by_arm else [treated[rows].astype(float)])
            + [x[rows] for x in fixed_cols]
        )
        for j, c in enumerate(incomplete):
            if int((~np.isnan(Y[rows, j])).sum()) < 2:
                arm = "" if not by_arm else f" in arm {'treated' if gi else 'control'}"
                raise _fail(
                    "impute.too_few_observed",
                    f"column {c}",
                    f"`{c}` must have at least 2 observed values{arm}; got fewer.",
                    "a variable that is (almost) never observed cannot be imputed.",
                )
        sub_codes = [pd.factorize(cd[rows], sort=True)[0].astype(np.int64) for cd in codes]
        _check_rank(Xg, fixed_names, by_arm)
        chain = _Chain(Y[rows], Xg, sub_codes, prior, rng)
        chains.append((rows, chain))
        suffix = "" if not by_arm else f"|{'treated' if gi else 'control'}"
        names += (
            ([] if by_arm else [f"beta[{treatment}]"])
            + [f"tau2[{c}]{suffix}" for c in clusters]
            + [f"sigma2{suffix}", f"mean_imputed{suffix}"]
        )
    trace = np.empty((n_iter, len(names)))
    for it in range(n_iter):
        row: list[float] = []
        for _, chain in chains:
            chain.sweep()
            row += chain.trace_row(None if by_arm else 1)
        trace[it] = row
        kept = keep_at.get(it)
        if kept is not None:
            for j, c in enumerate(incomplete):
                full = Y[:, j].copy()
                for rows, chain in chains:
                    full[rows] = chain.Y[:, j]
                draws[c][kept] = full[np.isnan(Y[:, j])]
    y_obs = Y[:, 0][~np.isnan(Y[:, 0])]
    return Imputations(
        data=frame,
        outcome=outcome,
        imputed=tuple(incomplete),
        missing_rows={c: np.flatnonzero(np.isnan(Y[:, j])) for j, c in enumerate(incomplete)},
        values=draws,
        m=int(m),
        seed=int(seed),
        treatment=treatment,
        clusters=tuple(clusters),
        predictors=tuple(predictors),
        by_arm=bool(by_arm),
        prior=prior,
        outcome_sd=float(np.std(y_obs, ddof=1)),
        treated=treated,
        diagnostics=_diagnostics(names, trace, burn_in, thin),
        data_hash=_hash(frame, cols),
    )


def _hash(frame: pd.DataFrame, cols: Sequence[str]) -> str:
    """SHA-256 of the imputation model's columns (values and dtypes, in row order)."""
    sub = frame.loc[:, list(cols)]
    h = hashlib.sha256()
    h.update(repr([(c, str(sub[c].dtype)) for c in cols]).encode())
    h.update(pd.util.hash_pandas_object(sub, index=False).to_numpy().tobytes())
    return h.hexdigest()


def _treatment_indicator(s: pd.Series, level: object | None, name: str) -> np.ndarray:
    vals = s.dropna().unique()
    if level is None:
        if pd.api.types.is_numeric_dtype(s) and set(np.asarray(vals, dtype=float)) <= {0.0, 1.0}:
            return s.to_numpy(dtype=float).astype(np.int64)
        raise _fail(
            "impute.treatment_levels",
            f"column {name}",
            f"treatment `{name}` must be 0/1 or have treatment_level naming the treated arm; "
            f"got values {sorted(map(str, vals))[:5]}.",
            "pass treatment_level='intervention' (the treated label).",
        )
    hit = (s == level).to_numpy(dtype=bool)
    if not hit.any() or len(vals) != 2:
        raise _fail(
            "impute.treatment_levels",
            f"column {name}",
            f"treatment `{name}` must have two labels including {level!r}; got "
            f"{sorted(map(str, vals))[:5]}.",
            "check treatment_level.",
        )
    return hit.astype(np.int64)


def _check_rank(X: np.ndarray, names: list[str], by_arm: bool) -> None:
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise _fail(
            "impute.rank_deficient",
            "predictors",
            "the imputation model's complete predictors must be linearly independent"
            + (" within each arm" if by_arm else "")
            + f"; got a rank-deficient design ({', '.join(names) or 'no predictors'}).",
            "drop a predictor that is constant or a combination of others"
            + (" (an LA-level covariate can be constant within an arm)" if by_arm else "")
            + ".",
        )
