"""Whether a treatment effect can be estimated at all: a result, not a crash or a number.

A cluster randomised trial's treatment effect is *not estimable* when

* the outcome has no variance among the complete cases (every value the same):
  there is nothing to compare, and every standardised quantity divides by zero;
* the design does not identify it: an arm without clusters, or one cluster per
  arm, where the treatment effect is confounded with the cluster effect and the
  between-cluster residual degrees of freedom are ``J − 2 = 0``; or the
  cluster-level covariates use up the clusters (``J − 2 − g ≤ 1`` with ``g``
  cluster-level covariate columns);
* the fitted reference distribution has ``df ≤ 1``: a t distribution with one
  degree of freedom or fewer has no finite variance (``t_{0.975, 1} = 12.7``,
  ``t_{0.975, 0.1} ≈ 10^{13}``), so the interval is numerically meaningless;
* the fit returned a non-finite estimate, standard error or interval, or a zero
  standard error.

:func:`check_design` looks at the data before fitting, :func:`check_term` at the
fitted treatment term.  Both return an :class:`Estimability` (``estimable``,
``code`` and the ``reason`` in words), which the analysis records on its row and
the report prints instead of numbers.

References
----------
Hayes RJ, Moulton LH. Cluster Randomised Trials, 2nd ed. CRC Press, 2017, §6.2 and
§9.2 (between-cluster degrees of freedom ``J − 2``; at least two clusters per arm).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from trialkit.models.terms import Term

__all__ = ["ESTIMABLE", "MIN_DF", "Estimability", "check_design", "check_term"]

#: Degrees of freedom at or below which a t-based interval is reported as not estimable.
MIN_DF = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimability:
    """Whether an effect is estimable; ``code`` and ``reason`` say why not.

    ``code`` is one of ``""`` (estimable), ``"no_variance"``, ``"not_identified"``,
    ``"df_too_small"`` and ``"non_finite"``.
    """

    estimable: bool
    code: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The estimable result.
ESTIMABLE = Estimability(estimable=True)


def _not(code: str, reason: str) -> Estimability:
    return Estimability(estimable=False, code=code, reason=reason)


def check_design(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str,
    cluster: str,
    columns: Sequence[str] = (),
    min_df: float = MIN_DF,
) -> Estimability:
    """Check the complete cases of ``data`` before a model is fitted.

    Parameters
    ----------
    data : DataFrame
        One row per individual.
    outcome, treatment, cluster : str
        Outcome, 0/1 treatment indicator and top-level cluster columns.
    columns : sequence of str
        Further columns (covariates) that define the complete cases; those constant
        within every cluster are cluster-level covariates and cost between-cluster df.
    min_df : float
        Between-cluster degrees of freedom ``J − 2 − g`` at or below which the effect
        is not estimable (``g`` cluster-level covariate columns).

    Returns
    -------
    Estimability
        Not estimable when no complete row is left, the outcome is constant, an arm
        has no cluster, there is one cluster per arm (``J − 2 = 0`` between-cluster
        degrees of freedom), or ``J − 2 − g ≤ min_df``.
    """
    need = list(dict.fromkeys([outcome, treatment, cluster, *columns]))
    cc = data.dropna(subset=[c for c in need if c in data.columns])
    if not len(cc):
        return _not("no_variance", "no complete rows to analyse")
    y = pd.to_numeric(cc[outcome], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(y)) or float(np.ptp(y)) == 0.0:
        value = f"{y[0]:g}" if len(y) and math.isfinite(y[0]) else "missing"
        return _not(
            "no_variance",
            f"the outcome has no variance (every one of the {len(y)} analysed values is {value})",
        )
    per_arm = cc.groupby(cc[treatment].astype(float))[cluster].nunique()
    n_treated = int(per_arm.get(1.0, 0))
    n_control = int(per_arm.get(0.0, 0))
    if n_treated == 0 or n_control == 0:
        arm = "intervention" if n_treated == 0 else "control"
        return _not("not_identified", f"the design has no {arm} LA with data")
    if n_treated + n_control <= 2:
        return _not(
            "not_identified",
            "one LA per arm: the treatment effect is confounded with the LA effect "
            "(0 between-LA degrees of freedom)",
        )
    g = _cluster_level_columns(cc, cluster, [c for c in columns if c in cc.columns])
    df = n_treated + n_control - 2 - g
    if df <= min_df:
        return _not(
            "df_too_small",
            f"{n_treated + n_control} LAs leave {df} between-LA degrees of freedom after the "
            f"arm and {g} LA-level covariate column(s) (J − 2 − g); at least {min_df + 1:g} "
            "are needed",
        )
    return ESTIMABLE


def _cluster_level_columns(cc: pd.DataFrame, cluster: str, columns: Sequence[str]) -> int:
    """Non-constant columns constant within every cluster (a categorical one counts levels − 1)."""
    g = 0
    for c in columns:
        levels = int(cc[c].nunique())
        if levels <= 1 or not bool((cc.groupby(cluster)[c].nunique() <= 1).all()):
            continue
        if pd.api.types.is_numeric_dtype(cc[c]) and not pd.api.types.is_bool_dtype(cc[c]):
            g += 1
        else:
            g += levels - 1
    return g


def check_term(term: Term, *, min_df: float = MIN_DF) -> Estimability:
    """Check a fitted treatment term: finite estimate, SE and interval, and ``df > min_df``.

    A normal (``z``) reference distribution, or a randomisation distribution, has
    ``df`` NaN and is not checked for df.
    """
    vals = (term.estimate, term.std_error, term.conf_low, term.conf_high)
    df = float(term.df)
    if math.isfinite(df) and df <= min_df:
        return _not(
            "df_too_small",
            f"{df:.2g} denominator degrees of freedom ({term.df_method}); at least "
            f"{min_df:g} are needed for a usable interval",
        )
    finite = all(math.isfinite(float(v)) for v in vals if v is not None)
    if not finite or not float(term.std_error) > 0:
        return _not(
            "non_finite",
            "the model gave no finite estimate, standard error and interval",
        )
    return ESTIMABLE
