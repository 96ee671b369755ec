"""The row of every coefficient table: :class:`Term`, plus :class:`Exclusion` records.

Kept apart from :mod:`trialkit.models.results` so that the inference builder
(:mod:`trialkit.models.inference`) and the df methods can make terms without
importing the result classes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["TERM_COLUMNS", "Exclusion", "Term", "clean_float"]

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


def clean_float(x: Any) -> Any:
    """JSON-safe float (NaN/inf become None); anything else is returned unchanged."""
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
        return {k: clean_float(v) for k, v in asdict(self).items()}

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
