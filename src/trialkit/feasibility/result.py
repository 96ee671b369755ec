"""Results of the feasibility assessment: one :class:`CriterionResult` per criterion (and arm),
a :class:`Recommendation`, and the :class:`FeasibilityAssessment` that holds them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np
import pandas as pd

from trialkit._io import SCHEMA_VERSION
from trialkit._version import __version__

__all__ = [
    "CRITERION_COLUMNS",
    "DECISIONS",
    "ZONES",
    "CriterionResult",
    "FeasibilityAssessment",
    "Recommendation",
]

Zone = Literal["green", "amber", "red", "not assessed"]
ZONES: tuple[str, ...] = ("green", "amber", "red", "not assessed")
Decision = Literal["proceed", "amend", "stop"]
DECISIONS: tuple[str, ...] = ("proceed", "amend", "stop")


def _clean(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


@dataclass(frozen=True, slots=True, kw_only=True)
class CriterionResult:
    """One progression criterion assessed (for one arm when ``by_arm``).

    Attributes
    ----------
    id, label, metric : str
    arm : str
        The arm assessed (``by_arm``, or the one arm a metric covers: intervention LAs for
        fidelity, control LAs for contamination), or ``""`` for every randomised LA.
    numerator, denominator : float
        Totals behind the estimate (for a mean: the sum of LA values and the number of LAs).
    clusters : int
        LAs contributing.
    unit : str
        What is counted (``families``, ``keyworkers``, ``LAs``, ``records``).
    estimate, std_error, df, conf_low, conf_high, conf_level : float
    method : str
        ``design-based logit``, ``clopper-pearson`` or ``cluster mean t``.
    green, red : float
    higher_is_better : bool
    zone : {"green", "amber", "red", "not assessed"}
    statistic, test_df, p_value : float
        The one-sided test against the red limit (``test_method`` says which).
    alpha : float
        Its one-sided level; ``rules_out_red`` is ``p_value < alpha`` (None when no test).
    action : str
        The protocol's action if amber.
    note : str
    """

    id: str
    label: str
    metric: str
    arm: str
    numerator: float
    denominator: float
    clusters: int
    unit: str
    estimate: float
    std_error: float
    df: float
    conf_low: float
    conf_high: float
    conf_level: float
    method: str
    green: float
    red: float
    higher_is_better: bool
    zone: Zone
    statistic: float
    test_df: float
    p_value: float
    test_method: str
    alpha: float
    rules_out_red: bool | None
    action: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CriterionResult:
        kw: dict[str, Any] = {}
        for f in fields(cls):
            v = d.get(f.name)
            if f.name == "rules_out_red":
                kw[f.name] = (
                    None if v is None or (isinstance(v, float) and math.isnan(v)) else bool(v)
                )
            elif f.name in ("clusters",):
                kw[f.name] = int(v) if v is not None and not pd.isna(v) else 0
            elif f.name == "higher_is_better":
                kw[f.name] = bool(v)
            elif f.type in ("float",):
                kw[f.name] = math.nan if v is None or pd.isna(v) else float(v)
            else:
                kw[f.name] = "" if v is None or (isinstance(v, float) and math.isnan(v)) else v
        return cls(**kw)


CRITERION_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(CriterionResult))
"""Columns of :meth:`FeasibilityAssessment.to_frame` (one row per criterion and arm)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Recommendation:
    """The overall recommendation, the rule that gave it and the reasons.

    ``decision`` is ``"proceed"``, ``"amend"`` or ``"stop"``.
    """

    decision: Decision
    rule: str
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "rule": self.rule, "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Recommendation:
        dec = str(d.get("decision", "amend"))
        return cls(
            decision=dec if dec in DECISIONS else "amend",  # type: ignore[arg-type]
            rule=str(d.get("rule", "")),
            reasons=tuple(str(r) for r in d.get("reasons", ())),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FeasibilityAssessment:
    """Result of :func:`~trialkit.feasibility.assess_feasibility`.

    Attributes
    ----------
    criteria : tuple of CriterionResult
        In protocol order (one per arm for ``by_arm`` criteria).
    recommendation : Recommendation
    conf_level : float
    warnings : tuple of str
    """

    criteria: tuple[CriterionResult, ...]
    recommendation: Recommendation
    conf_level: float = 0.95
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_frame(self) -> pd.DataFrame:
        """One row per criterion (and arm), unrounded, columns :data:`CRITERION_COLUMNS`."""
        frame = pd.DataFrame([asdict(c) for c in self.criteria], columns=list(CRITERION_COLUMNS))
        for c in ("numerator", "denominator", "estimate", "std_error", "df", "conf_low",
                  "conf_high", "conf_level", "green", "red", "statistic", "test_df", "p_value",
                  "alpha"):  # fmt: skip
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
        frame["clusters"] = frame["clusters"].astype("int64")
        frame["rules_out_red"] = frame["rules_out_red"].astype("boolean")
        return frame

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``criteria`` (each with id, label, metric, numerator, denominator,
        clusters, estimate, conf_low, conf_high, green, red, zone, p_value, ...),
        ``recommendation`` and ``warnings``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "trialkit_version": __version__,
            "conf_level": self.conf_level,
            "criteria": [c.to_dict() for c in self.criteria],
            "recommendation": self.recommendation.to_dict(),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeasibilityAssessment:
        return cls(
            criteria=tuple(CriterionResult.from_dict(c) for c in d.get("criteria", ())),
            recommendation=Recommendation.from_dict(d.get("recommendation", {})),
            conf_level=float(d.get("conf_level", 0.95)),
            warnings=tuple(str(w) for w in d.get("warnings", ())),
        )

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, recommendation: Mapping[str, Any], *, conf_level: float = 0.95
    ) -> FeasibilityAssessment:
        """Rebuild from :meth:`to_frame` and ``recommendation.to_dict()`` (as stored by analyse)."""
        rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        return cls(
            criteria=tuple(
                CriterionResult.from_dict({str(k): v for k, v in r.items()}) for r in rows
            ),
            recommendation=Recommendation.from_dict(recommendation),
            conf_level=conf_level,
        )

    @property
    def decision(self) -> str:
        return self.recommendation.decision

    def summary(self) -> str:
        lines = [f"Feasibility: {len(self.criteria)} criteria; recommendation: "
                 f"{self.recommendation.decision.upper()}"]  # fmt: skip
        for c in self.criteria:
            arm = f" [{c.arm}]" if c.arm else ""
            if math.isfinite(c.estimate):
                lines.append(
                    f"  {c.id}{arm}: {c.estimate:.4g} ({c.conf_level:.0%} CI "
                    f"{c.conf_low:.4g} to {c.conf_high:.4g}; "
                    + (
                        f"mean of {c.denominator:g} LAs"
                        if c.method == "cluster mean t"
                        else f"{c.numerator:g}/{c.denominator:g} {c.unit}, {c.clusters} LAs"
                    )
                    + f") green {c.green:g} red {c.red:g}: "
                    f"{c.zone.upper()}; one-sided p vs red = {c.p_value:.4g}"
                )
            else:
                lines.append(f"  {c.id}{arm}: not assessed ({c.note})")
        lines.append(f"  rule: {self.recommendation.rule}")
        lines += [f"  - {r}" for r in self.recommendation.reasons]
        return "\n".join(lines)

    def __repr__(self) -> str:
        zones = {z: sum(c.zone == z for c in self.criteria) for z in ZONES}
        return f"FeasibilityAssessment(decision={self.decision!r}, zones={zones})"
