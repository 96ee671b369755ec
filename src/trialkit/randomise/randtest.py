"""Randomisation test over the randomisation space (cvcrand's ``cptest``) and its inversion.

The statistic (Gail et al. 1996; Li et al. 2016; cvcrand ``cptest``): regress the
individual outcome on the covariates ignoring arm (linear, or logistic for a 0/1
outcome), take the response residuals ``y - ŷ`` (for the logistic model
``y - p̂``, as cvcrand's ``cptest`` since version 0.0.4), average them by cluster,
and take the mean of the cluster mean residuals in the first arm minus that in the
second.  The p-value is exact
over the kept space of a constrained design (or every allocation of a simple,
stratified or matched design with the observed per-stratum arm sizes):

    p = #{A : |s(A)| >= |s_obs| (1 - tol)} / M,

with a relative tolerance ``tol`` (default 1e-9) so that allocations that tie
mathematically (the mirror allocation) count even when floating point differs.
The observed allocation must be one of the M (an allocation outside the kept
space is refused), so p is never 0: its smallest value is the number of
allocations tying with the observed one (itself and its mirror) over M.

Clusters without outcome data (after rows with a missing outcome or covariate are
left out) are left out of the statistic for every allocation alike: each
allocation's arm means are over its clusters with data, so the reference
distribution is the one of the statistic actually computed.  The result reports
which clusters were left out and why.

Beyond cvcrand, for a continuous outcome a confidence interval for a constant
additive effect delta is obtained by inverting the test: under H0(delta) the
outcomes ``y - delta * t`` have no effect; since least-squares residuals are
linear in ``y``, ``s_A(delta) = u_A - delta v_A`` exactly, so p(delta) is computed
exactly at each delta and the interval {delta : p(delta) > alpha} is found by
bisection outward from the point estimate delta_hat = u_obs / v_obs.

References
----------
Gail MH, Mark SD, Carroll RJ, Green SB, Pee D. On design considerations and
randomization-based inference for community intervention trials. Stat Med
1996;15:1069-92.
Rosenbaum PR. Observational Studies, 2nd ed. Springer 2002, ch. 2 (test inversion).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from trialkit import store
from trialkit._version import __version__
from trialkit.data.parse import numeric_outcome
from trialkit.errors import DataError, MissingDataWarning, Problem, RandomisationError
from trialkit.models.coding import code_categorical, is_categorical
from trialkit.randomise import _space
from trialkit.randomise.core import Allocation, make_rng
from trialkit.randomise.settings import RandomisationSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class RandTestResult:
    """Result of :func:`randtest`."""

    outcome: str
    family: str
    covariates: tuple[str, ...]
    statistic: float
    p_value: float
    n_allocations: int
    space: str
    tolerance: float
    estimate: float | None
    conf_low: float | None
    conf_high: float | None
    conf_level: float
    n_clusters: int
    n_obs: int
    n_excluded: int
    arms: tuple[str, str]
    clusters_without_data: tuple[str, ...] = ()
    n_allocations_undefined: int = 0

    def left_out_note(self) -> str:
        """Which clusters were left out of the statistic, and why ('' when none)."""
        if not self.clusters_without_data:
            return ""
        k = len(self.clusters_without_data)
        text = (
            f"{k} of {self.n_clusters} clusters left out (no outcome data): "
            f"{', '.join(self.clusters_without_data)}"
        )
        if self.n_allocations_undefined:
            text += (
                f"; {self.n_allocations_undefined} allocations with an arm without data "
                "were left out of the reference distribution"
            )
        return text

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "term": f"{self.arms[0]} - {self.arms[1]}",
                    "statistic": self.statistic,
                    "p_value": self.p_value,
                    "estimate": self.estimate,
                    "conf_low": self.conf_low,
                    "conf_high": self.conf_high,
                    "n_allocations": self.n_allocations,
                    "method": f"randomisation test ({self.space} space)",
                    "n_clusters_without_data": len(self.clusters_without_data),
                    "note": self.left_out_note(),
                }
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["covariates"] = list(self.covariates)
        d["arms"] = list(self.arms)
        d["clusters_without_data"] = list(self.clusters_without_data)
        d["schema_version"] = 1
        d["trialkit_version"] = __version__
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RandTestResult:
        d = {k: v for k, v in d.items() if k not in ("schema_version", "trialkit_version")}
        d["covariates"] = tuple(d["covariates"])
        d["arms"] = tuple(d["arms"])
        d["clusters_without_data"] = tuple(d.get("clusters_without_data", ()))
        return cls(**d)

    def summary(self) -> str:
        text = (
            f"randomisation test of {self.outcome} ({self.family}; adjusted for "
            f"{', '.join(self.covariates) or 'nothing'}): statistic {self.statistic:.6g}, "
            f"p = {self.p_value:.4g} over {self.n_allocations} allocations ({self.space})"
        )
        if self.estimate is not None:
            text += f"\nconstant-shift effect {self.estimate:.6g}, {self.conf_level:.0%} CI ({self.conf_low:.6g}, {self.conf_high:.6g})"
        if self.clusters_without_data:
            text += "\n" + self.left_out_note()
        return text


def _load_allocation(
    allocation: Allocation | store.AllocationRecord | str | os.PathLike[str],
) -> tuple[
    RandomisationSettings,
    tuple[str, ...],
    tuple[str, ...],
    tuple[str, ...] | None,
    np.ndarray | None,
]:
    """Settings, clusters, arms, stratum/pair labels and kept codes of an allocation."""
    if isinstance(allocation, Allocation):
        codes = allocation.space.codes if allocation.space is not None else None
        groups = allocation.stratum if allocation.stratum is not None else allocation.pair
        return (
            allocation.settings,
            allocation.clusters,
            allocation.arms,
            groups,
            codes,
        )
    if isinstance(allocation, store.AllocationRecord):
        record = allocation
        root = record.path.parent
    else:
        root = Path(allocation)
        if not (root / store.AUDIT).is_file():
            raise RandomisationError.from_problem(
                path=str(root),
                code="randomise.randtest.no_audit",
                message="`audit.json` must exist in the allocation directory.",
                hint="pass the --out directory written by `trialkit randomise`",
            )
        record = store.read_allocation(root, with_space=True)
    if record.space is None and (record.audit or {}).get("space") is not None:
        # the kept space was not read with the record: read it through the store
        record = store.read_allocation(
            record.path, with_space=True, allow_unverified=not record.verified
        )
    audit_file = root / store.AUDIT
    try:
        settings = RandomisationSettings.from_mapping((record.audit or {})["settings"])
    except (ValueError, KeyError, TypeError) as err:
        raise RandomisationError.from_problem(
            path=str(audit_file),
            code="randomise.randtest.bad_audit",
            message=f"`audit.json` cannot be read: {err!r}.",
            hint="check the directory with `trialkit verify`",
        ) from None
    alloc = record.frame
    clusters = tuple(alloc["cluster"])
    arms = tuple(alloc["arm"])
    groups = None
    for col in ("stratum", "pair"):
        if col in alloc.columns:
            groups = tuple(alloc[col])
    codes = None
    if record.space is not None:
        space = record.space
        bits = np.column_stack(
            [(space[c].astype(str) == settings.arms[0]).to_numpy() for c in clusters]
        ).astype(np.uint8)
        codes = _space.codes_of(bits)
    return settings, clusters, arms, groups, codes


def _design_matrix(frame: pd.DataFrame, covariates: list[str], categorical: set[str]) -> np.ndarray:
    cols = [np.ones((len(frame), 1))]
    for cov in covariates:
        s = frame[cov]
        if is_categorical(s, declared=cov in categorical):
            cols.append(code_categorical(s, cov)[0])
        else:
            cols.append(s.to_numpy(dtype=float)[:, None])
    return np.hstack(cols)


def randtest(
    data: pd.DataFrame,
    allocation: Allocation | store.AllocationRecord | str | os.PathLike[str],
    *,
    outcome: str,
    covariates: tuple[str, ...] | list[str] = (),
    categorical: tuple[str, ...] | list[str] = (),
    cluster_column: str | None = None,
    family: Literal["gaussian", "binomial"] = "gaussian",
    tolerance: float = 1e-9,
    conf_level: float = 0.95,
    max_allocations: int = 200_000,
    seed: int = 0,
) -> RandTestResult:
    """Clustered randomisation test (cvcrand ``cptest`` statistic) with exact p-value.

    Parameters
    ----------
    data : DataFrame
        Individual-level rows with the cluster id, outcome and covariates.
    allocation : Allocation, AllocationRecord or path
        The result of :func:`randomise`, its output directory as read by
        :func:`trialkit.store.read_allocation` (with ``with_space=True``), or the
        directory itself (read through the store, verified against its manifest).
    outcome : str
    covariates : sequence of str
        Adjustment covariates (string columns are dummy-coded by
        :mod:`trialkit.models.coding`, first sorted level as reference).
    categorical : sequence of str
        Numeric covariates to dummy-code as well (e.g. a coded income band).
    cluster_column : str, optional
        Defaults to the allocation's id column.
    family : {"gaussian", "binomial"}
        Linear or logistic residual model.  The residuals are response residuals
        ``y - p_hat`` for the logistic model, as cvcrand's ``cptest`` since version
        0.0.4 (R's ``residuals(fit, type = "response")``).
    tolerance : float
        Relative tolerance for ties in ``|s(A)| >= |s_obs|``.
    conf_level : float
        Level of the test-inversion interval (gaussian only).
    max_allocations : int
        For simple/stratified/matched designs whose full space exceeds this, a
        Monte Carlo p-value over that many distinct allocations (drawn with
        ``seed``) is reported instead of the exact one.

    Returns
    -------
    RandTestResult

    Raises
    ------
    RandomisationError
        ``randomise.randtest.outside_space`` when the observed allocation is not one
        of the kept allocations (an allocation that does not verify).
    DataError
        ``randomise.randtest.unknown_cluster`` when the data name a cluster that was
        not allocated; ``randomise.randtest.no_data`` when an arm has no cluster with
        data.
    """
    settings, clusters, arms_of, groups_lab, codes = _load_allocation(allocation)
    arm_names = (settings.arms[0], settings.arms[1])
    if len(settings.arms) != 2:
        raise RandomisationError.from_problem(
            path="randomisation.arms",
            code="randomise.randtest.arms",
            message="the randomisation test needs exactly two arms.",
        )
    cluster_column = cluster_column or settings.id_column
    needed = [cluster_column, outcome, *covariates]
    missing_cols = [c for c in needed if c not in data.columns]
    if missing_cols:
        raise DataError(
            "outcome data lack columns",
            [
                Problem(
                    path=f"outcome data column {c}",
                    code="randomise.randtest.missing_column",
                    message=f"column `{c}` must exist.",
                )
                for c in missing_cols
            ],
        )
    frame = data[needed].copy()
    bad = frame.isna().any(axis=1).to_numpy()
    n_excluded = int(bad.sum())
    if n_excluded:
        warnings.warn(
            f"{n_excluded} row(s) with missing outcome/covariates excluded from the randomisation test",
            MissingDataWarning,
            stacklevel=2,
        )
        frame = frame.loc[~bad]
    cid = frame[cluster_column].astype(str).str.strip().to_numpy()
    pos = {c: i for i, c in enumerate(clusters)}
    unknown = sorted(set(cid) - set(pos))
    if unknown:
        raise DataError(
            "outcome data and allocation do not match",
            [
                Problem(
                    path=f"outcome data column {cluster_column}",
                    code="randomise.randtest.unknown_cluster",
                    message=f"cluster `{c}` must be in the allocation; it is not.",
                    hint="check the cluster ids against allocation.csv",
                )
                for c in unknown
            ],
        )
    without = tuple(c for c in clusters if c not in set(cid))
    y = numeric_outcome(
        frame[outcome],
        name=outcome,
        path=f"outcome data column {outcome}",
        code="randomise.randtest.outcome_type",
        error=DataError,
    )
    unknown_cat = sorted(set(categorical) - set(covariates))
    if unknown_cat:
        raise DataError.from_problem(
            path="randtest.categorical",
            code="randomise.randtest.categorical_unknown",
            message=f"categorical columns {unknown_cat} must also be covariates.",
        )
    x = _design_matrix(frame, list(covariates), set(categorical))
    if family == "binomial":
        if not np.isin(y, (0.0, 1.0)).all():
            raise DataError.from_problem(
                path=f"outcome data column {outcome}",
                code="randomise.randtest.not_binary",
                message="a binomial outcome must be 0/1.",
            )
        import statsmodels.api as sm

        fit = sm.GLM(y, x, family=sm.families.Binomial()).fit()
        mu = np.asarray(fit.fittedvalues)
        resid = y - mu  # response residuals, as cptest (cvcrand >= 0.0.4)
        hat_t = None
    else:
        beta, *_ = np.linalg.lstsq(x, y, rcond=None)
        resid = y - x @ beta
        hat_t = x
    idx = np.array([pos[c] for c in cid])
    n = len(clusters)
    counts = np.bincount(idx, minlength=n)
    has = (counts > 0).astype(float)
    safe = np.maximum(counts, 1)
    e = np.bincount(idx, weights=resid, minlength=n) / safe
    obs_bits = np.array([1 if a == arm_names[0] else 0 for a in arms_of], dtype=np.uint8)
    if codes is not None:
        space_kind = "kept"
        obs_code = _space.codes_of(obs_bits[None, :])[0]
        if not bool(np.any(codes == obs_code)):
            raise RandomisationError.from_problem(
                path="allocation.csv",
                code="randomise.randtest.outside_space",
                message="the observed allocation must be one of the "
                f"{len(codes)} kept allocations; got an allocation outside the kept space",
                hint="the allocation does not match its audit record: check it with "
                "`trialkit verify`",
            )
    else:
        groups = _space.group_positions(groups_lab, n)
        combo = tuple(int(obs_bits[g].sum()) for g in groups)
        total = _space.count_stratified(groups, [combo])
        if total <= max_allocations:
            codes = _space.enumerate_stratified(groups, [combo])
            space_kind = "all"
        else:
            codes = _space.sample_codes(
                make_rng(seed),
                groups,
                [[c] for c in combo],
                int(obs_bits.sum()),
                n,
                max_allocations,
            )
            space_kind = "sampled"

    def contrast_of(b: np.ndarray, vec: np.ndarray) -> np.ndarray:
        # arm means over the clusters with data (b: rows of 0/1 arm indicators)
        bt = b * has
        bc = (1.0 - b) * has
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(bt @ vec / bt.sum(axis=1) - bc @ vec / bc.sum(axis=1))

    space_codes: np.ndarray = codes

    def contrasts(vec: np.ndarray) -> np.ndarray:
        out = np.empty(len(space_codes))
        for sl in _space.iter_chunks(len(space_codes), n):
            out[sl] = contrast_of(_space.bits_of(space_codes[sl], n).astype(float), vec)
        return out

    u_all = contrasts(e)
    defined = np.isfinite(u_all)
    u_obs = float(contrast_of(obs_bits[None, :].astype(float), e)[0])
    if not math.isfinite(u_obs):
        raise DataError.from_problem(
            path=f"outcome data column {cluster_column}",
            code="randomise.randtest.no_data",
            message="each arm must have a cluster with outcome data; got an arm without",
            hint="the randomisation test needs outcome data in both arms",
        )
    n_undefined = int((~defined).sum())
    u = u_all[defined]
    if without:
        warnings.warn(
            f"{len(without)} allocated cluster(s) without outcome data left out of the "
            f"randomisation test: {', '.join(without)}",
            MissingDataWarning,
            stacklevel=2,
        )

    def pval(uu: np.ndarray, s_obs: float) -> float:
        return float(np.mean(np.abs(uu) >= abs(s_obs) * (1.0 - tolerance) - 1e-300))

    p = pval(u, u_obs)
    estimate = low = high = None
    if hat_t is not None:
        t_ind = obs_bits[idx].astype(float)
        gamma, *_ = np.linalg.lstsq(hat_t, t_ind, rcond=None)
        g = np.bincount(idx, weights=t_ind - hat_t @ gamma, minlength=n) / safe
        v = contrasts(g)[defined]
        v_obs = float(contrast_of(obs_bits[None, :].astype(float), g)[0])
        if abs(v_obs) > 0:
            alpha = 1.0 - conf_level
            estimate = u_obs / v_obs

            def p_at(d: float) -> float:
                return pval(u - d * v, u_obs - d * v_obs)

            scale = max(float(np.std(u)) / abs(v_obs), abs(estimate), 1e-8)
            low = _bound(p_at, estimate, -scale, alpha)
            high = _bound(p_at, estimate, scale, alpha)
    return RandTestResult(
        outcome=outcome,
        family=family,
        covariates=tuple(covariates),
        statistic=u_obs,
        p_value=p,
        n_allocations=len(u),
        space=space_kind,
        tolerance=tolerance,
        estimate=estimate,
        conf_low=low,
        conf_high=high,
        conf_level=conf_level,
        n_clusters=n,
        n_obs=len(y),
        n_excluded=n_excluded,
        arms=arm_names,
        clusters_without_data=without,
        n_allocations_undefined=n_undefined,
    )


def _bound(p_at: Any, start: float, step: float, alpha: float) -> float:
    """Outermost delta in direction ``step`` with p(delta) > alpha (bisection)."""
    inside = start
    outside = None
    width = step
    for _ in range(200):
        cand = start + width
        if p_at(cand) <= alpha:
            outside = cand
            break
        inside = cand
        width *= 2.0
    if outside is None:
        return math.copysign(math.inf, step)
    for _ in range(200):
        mid = 0.5 * (inside + outside)
        if mid in (inside, outside):
            break
        if p_at(mid) > alpha:
            inside = mid
        else:
            outside = mid
    return inside
