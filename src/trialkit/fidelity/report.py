"""The fidelity report: tidy tables of derived numbers, serialisable to JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trialkit._version import __version__
from trialkit.errors import Problem

__all__ = ["FidelityReport"]

SCHEMA_VERSION = 1

INDICATOR_COLUMNS = [
    "la_id",
    "arm",
    "component",
    "indicator_id",
    "node_id",
    "label",
    "level",
    "dimension",
    "metric",
    "unit",
    "comparison",
    "intended",
    "target_source",
    "delivered",
    "numerator",
    "denominator",
    "adherence",
    "band",
    "weight",
    "missing",
    "note",
]
COMPONENT_COLUMNS = [
    "la_id",
    "arm",
    "component",
    "index",
    "band",
    "weight",
    "n_indicators",
    "n_missing",
]
OVERALL_COLUMNS = [
    "la_id",
    "arm",
    "overall_index",
    "band",
    "overall_index_available",
    "n_components",
    "n_components_missing",
    "complete",
]
OVER_TIME_COLUMNS = [
    "period",
    "period_end",
    "la_id",
    "arm",
    "scope",
    "id",
    "component",
    "intended",
    "delivered",
    "adherence",
    "band",
    "missing",
]
DOSE_ID_COLUMNS = ["keyworker_id", "la_id", "arm", "role"]
DOSE_TAIL_COLUMNS = [
    "training_days",
    "training_days_intended",
    "training_share",
    "supervision_expected",
    "supervision_attended",
    "supervision_attendance",
    "dose_index",
]


def dose_columns(courses: Sequence[str]) -> list[str]:
    """Columns of the keyworker dose table: one ``<course>_days`` per declared course."""
    return [*DOSE_ID_COLUMNS, *(f"{c}_days" for c in courses), *DOSE_TAIL_COLUMNS]


#: the dose columns for the default course vocabulary (``cpd``, ``foundation``)
DOSE_COLUMNS = dose_columns(("cpd", "foundation"))
CONTAMINATION_COLUMNS = [
    "la_id",
    "arm",
    "component",
    "n_indicators_delivered",
    "n_records",
    "contaminated",
    "detail",
]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in frame.to_dict(orient="records"):
        clean: dict[str, Any] = {}
        for key, v in rec.items():
            k = str(key)
            if isinstance(v, pd.Timestamp):
                clean[k] = v.date().isoformat()
            elif v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                clean[k] = None
            elif isinstance(v, np.generic):
                clean[k] = v.item()
            else:
                clean[k] = v
        out.append(clean)
    return out


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class FidelityReport:
    """Result of :func:`assess_fidelity`: tidy tables of derived numbers (no raw records).

    Attributes
    ----------
    indicators : DataFrame
        One row per LA × indicator: intended, delivered, adherence, band, missing flag.
    components : DataFrame
        One row per LA × component: weighted mean adherence of its indicators.
    overall : DataFrame
        One row per LA: weighted mean of component indices (NA when a component is
        missing; ``overall_index_available`` averages the components present).
    over_time : DataFrame
        The same indices "as at" the end of each month or quarter.
    keyworker_dose : DataFrame
        One row per keyworker: training days and supervision sessions attended.
    contamination : DataFrame
        One row per control LA × component: was any of it delivered?
    settings : mapping
        Bands, weights, ``missing_as_zero``, period, delivery window.
    counts : mapping
        Records per type, LAs, keyworkers, families; records left out of the
        over-time tables because they are undated.
    warnings : tuple of Problem
    """

    indicators: pd.DataFrame
    components: pd.DataFrame
    overall: pd.DataFrame
    over_time: pd.DataFrame
    keyworker_dose: pd.DataFrame
    contamination: pd.DataFrame
    settings: Mapping[str, Any]
    counts: Mapping[str, Any]
    intervention_arm: str
    control_arm: str
    warnings: tuple[Problem, ...] = field(default_factory=tuple)

    # ------------------------------------------------------------------ access
    def to_frame(self) -> pd.DataFrame:
        """The indicator table (one row per LA × indicator)."""
        return self.indicators.copy()

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table by its output name."""
        return {
            "fidelity_indicators": self.indicators,
            "fidelity_components": self.components,
            "fidelity_overall": self.overall,
            "fidelity_over_time": self.over_time,
            "keyworker_dose": self.keyworker_dose,
            "contamination": self.contamination,
        }

    def la_index(self) -> pd.Series:
        """Overall fidelity index by LA (NaN when a component is missing)."""
        return self.overall.set_index("la_id")["overall_index"]

    def contaminated_las(self) -> list[str]:
        c = self.contamination
        return sorted(set(c.loc[c["contaminated"].astype(bool), "la_id"]))

    # ------------------------------------------------------------------ serialise
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary with ``schema_version`` and ``trialkit_version``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "trialkit_version": __version__,
            "intervention_arm": self.intervention_arm,
            "control_arm": self.control_arm,
            "settings": dict(self.settings),
            "counts": dict(self.counts),
            "warnings": [p.to_dict() for p in self.warnings],
            "tables": {name: _records(t) for name, t in self.tables().items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FidelityReport:
        """Rebuild a report saved with :meth:`to_dict`."""
        t = d["tables"]
        cols = {
            "fidelity_indicators": INDICATOR_COLUMNS,
            "fidelity_components": COMPONENT_COLUMNS,
            "fidelity_overall": OVERALL_COLUMNS,
            "fidelity_over_time": OVER_TIME_COLUMNS,
            "keyworker_dose": DOSE_COLUMNS,
            "contamination": CONTAMINATION_COLUMNS,
        }

        def frame(name: str) -> pd.DataFrame:
            records = t.get(name, [])
            columns = cols[name]
            if name == "keyworker_dose" and records:  # one column per declared course
                columns = list(records[0])
            f = pd.DataFrame(records, columns=columns)
            for c in f.columns:
                if (
                    f[c].dtype == object
                    and f[c].map(lambda v: isinstance(v, (int, float)) or v is None).all()
                ):
                    if not f[c].map(lambda v: isinstance(v, bool)).any():
                        f[c] = pd.to_numeric(f[c]).astype(float)
            return f

        return cls(
            indicators=frame("fidelity_indicators"),
            components=frame("fidelity_components"),
            overall=frame("fidelity_overall"),
            over_time=frame("fidelity_over_time"),
            keyworker_dose=frame("keyworker_dose"),
            contamination=frame("contamination"),
            settings=dict(d.get("settings", {})),
            counts=dict(d.get("counts", {})),
            intervention_arm=d["intervention_arm"],
            control_arm=d["control_arm"],
            warnings=tuple(Problem(**w) for w in d.get("warnings", [])),
        )

    # ------------------------------------------------------------------ text
    def summary(self) -> str:
        """Plain-text summary by LA (the report stage rounds for publication)."""
        lines = [
            f"Fidelity against the logic model: {len(self.overall)} LAs, "
            f"{self.indicators['indicator_id'].nunique()} indicators in "
            f"{self.components['component'].nunique()} components; bands "
            f"low < {self.settings['bands'][0]:g} <= moderate < {self.settings['bands'][1]:g} <= high."
        ]
        for arm in (self.intervention_arm, self.control_arm):
            sub = self.overall[self.overall["arm"] == arm]
            lines.append(f"{arm} LAs ({len(sub)}):")
            for _, r in sub.iterrows():
                comp = self.components[self.components["la_id"] == r["la_id"]]
                parts = ", ".join(
                    f"{c['component']} {c['index']:.3f}"
                    if not pd.isna(c["index"])
                    else f"{c['component']} NA"
                    for _, c in comp.iterrows()
                )
                idx = "NA" if pd.isna(r["overall_index"]) else f"{r['overall_index']:.3f}"
                lines.append(f"  {r['la_id']}: overall {idx} ({r['band']}); {parts}")
        cont = self.contaminated_las()
        lines.append(
            "contamination in control LAs: " + (", ".join(cont) if cont else "none detected")
        )
        miss = self.indicators[self.indicators["missing"].astype(bool)]
        if len(miss):
            lines.append(
                f"missing delivery records: {len(miss)} LA x indicator cells reported as NA"
            )
        lines.extend(f"warning: {w.message}" for w in self.warnings)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"FidelityReport(n_las={len(self.overall)}, "
            f"n_indicators={self.indicators['indicator_id'].nunique()}, "
            f"period={self.settings.get('period')!r}, "
            f"contaminated={self.contaminated_las()!r})"
        )
