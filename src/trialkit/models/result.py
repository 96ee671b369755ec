"""Result objects shared by every analysis method.

A :class:`FitResult` is computed up front by the function that returns it and
holds no reference to the model or the data: only the specification, the
numbers, the counts and a hash of the data.  It is frozen; asking for an
alternative (another df method) returns a new object.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pandas as pd

from trialkit._version import __version__

RESULT_SCHEMA_VERSION = 1

TERM_COLUMNS = [
    "term",
    "estimate",
    "std_error",
    "df",
    "statistic",
    "p_value",
    "conf_low",
    "conf_high",
    "df_method",
    "distribution",
]


def _clean(x: Any) -> Any:
    """JSON-safe float (NaN/inf become None)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclass(frozen=True, slots=True, kw_only=True)
class Term:
    """Inference for one coefficient or contrast.

    ``distribution`` records the reference distribution, e.g. ``"t(9.997)"`` or ``"z"``.
    """

    term: str
    estimate: float
    std_error: float
    df: float
    statistic: float
    p_value: float
    conf_low: float
    conf_high: float
    df_method: str
    distribution: str

    def to_dict(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Term:
        kw = {f.name: d[f.name] for f in fields(cls)}
        for k in ("estimate", "std_error", "df", "statistic", "p_value", "conf_low", "conf_high"):
            kw[k] = float("nan") if kw[k] is None else float(kw[k])
        return cls(**kw)


@dataclass(frozen=True, slots=True, kw_only=True)
class Exclusion:
    """Rows excluded from a fit and why (never silent)."""

    reason: str
    n_rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class FitResult:
    """Outcome of :func:`trialkit.fit`.

    Attributes
    ----------
    method : str
        ``"lmm"``, ``"glmm"``, ``"ols-cr2"``, ``"cluster-level"``, ``"gee"``, ...
    family : str
        ``"gaussian"`` or ``"binomial"``.
    outcome, treatment : str
        Column names; ``treatment_term`` is the name of the treatment coefficient.
    treatment : Term
        Inference for the treatment effect (on the link scale for binomial models).
    fixed_effects : tuple of Term
        Every fixed-effect coefficient.
    variance_components : mapping
        Estimated variances keyed by cluster column name plus ``"residual"``.
    icc : mapping
        Intraclass correlations keyed by cluster column name.
    extra : mapping
        Method-specific JSON-safe quantities (effect sizes, odds ratios, risk differences,
        vcov type, optimiser steps, ...).
    """

    method: str
    family: str
    outcome: str
    treatment_column: str
    treatment_term: str
    treatment: Term
    fixed_effects: tuple[Term, ...]
    variance_components: Mapping[str, float]
    icc: Mapping[str, float]
    df_method: str
    n_obs: int
    n_clusters: Mapping[str, int]
    n_excluded: int
    exclusions: tuple[Exclusion, ...] = ()
    singular: bool = False
    converged: bool = True
    loglik: float = float("nan")
    reml: bool = True
    formula: str = ""
    data_hash: str = ""
    warnings: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ alternatives
    def with_df_method(self, df_method: str) -> FitResult:
        """The same linear mixed model fit with another df method (new object, no refit).

        Available for ``method == "lmm"``; see :func:`trialkit.models.lmm.with_df_method`.
        """
        from trialkit.models.lmm import with_df_method

        return with_df_method(self, df_method)

    # ------------------------------------------------------------------ output
    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per fixed-effect term."""
        rows = [t.to_dict() for t in self.fixed_effects]
        return pd.DataFrame(rows, columns=TERM_COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary with ``schema_version`` and ``trialkit_version``."""
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "trialkit_version": __version__,
            "method": self.method,
            "family": self.family,
            "outcome": self.outcome,
            "treatment_column": self.treatment_column,
            "treatment_term": self.treatment_term,
            "treatment": self.treatment.to_dict(),
            "fixed_effects": [t.to_dict() for t in self.fixed_effects],
            "variance_components": {
                k: _clean(float(v)) for k, v in self.variance_components.items()
            },
            "icc": {k: _clean(float(v)) for k, v in self.icc.items()},
            "df_method": self.df_method,
            "n_obs": int(self.n_obs),
            "n_clusters": {k: int(v) for k, v in self.n_clusters.items()},
            "n_excluded": int(self.n_excluded),
            "exclusions": [e.to_dict() for e in self.exclusions],
            "singular": bool(self.singular),
            "converged": bool(self.converged),
            "loglik": _clean(float(self.loglik)),
            "reml": bool(self.reml),
            "formula": self.formula,
            "data_hash": self.data_hash,
            "warnings": list(self.warnings),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FitResult:
        """Rebuild a result saved with :meth:`to_dict`."""

        def f(x: Any) -> float:
            return float("nan") if x is None else float(x)

        return cls(
            method=d["method"],
            family=d["family"],
            outcome=d["outcome"],
            treatment_column=d["treatment_column"],
            treatment_term=d["treatment_term"],
            treatment=Term.from_dict(d["treatment"]),
            fixed_effects=tuple(Term.from_dict(t) for t in d["fixed_effects"]),
            variance_components={k: f(v) for k, v in d["variance_components"].items()},
            icc={k: f(v) for k, v in d["icc"].items()},
            df_method=d["df_method"],
            n_obs=int(d["n_obs"]),
            n_clusters={k: int(v) for k, v in d["n_clusters"].items()},
            n_excluded=int(d["n_excluded"]),
            exclusions=tuple(Exclusion(**e) for e in d.get("exclusions", [])),
            singular=bool(d["singular"]),
            converged=bool(d["converged"]),
            loglik=f(d["loglik"]),
            reml=bool(d.get("reml", True)),
            formula=d.get("formula", ""),
            data_hash=d.get("data_hash", ""),
            warnings=tuple(d.get("warnings", [])),
            extra=dict(d.get("extra", {})),
        )

    def summary(self) -> str:
        """Plain-text summary (the report stage does the rounding for publication)."""
        t = self.treatment
        lines = [
            f"{self.method} ({self.family}) for {self.outcome}: {self.formula}",
            f"n_obs = {self.n_obs}, clusters = "
            + ", ".join(f"{k}: {v}" for k, v in self.n_clusters.items())
            + f", excluded = {self.n_excluded}",
            f"treatment ({self.treatment_term}): estimate {t.estimate:.6g}, SE {t.std_error:.6g}, "
            f"{t.distribution}, p = {t.p_value:.4g}, 95% CI [{t.conf_low:.6g}, {t.conf_high:.6g}]",
            "variance components: "
            + ", ".join(f"{k} {v:.6g}" for k, v in self.variance_components.items()),
        ]
        if self.singular:
            lines.append("singular fit: a variance component is estimated at zero")
        if not self.converged:
            lines.append("WARNING: the optimiser did not converge")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def __repr__(self) -> str:
        t = self.treatment
        return (
            f"FitResult(method={self.method!r}, outcome={self.outcome!r}, "
            f"estimate={t.estimate!r}, std_error={t.std_error!r}, df={t.df!r}, "
            f"df_method={self.df_method!r}, n_obs={self.n_obs})"
        )
