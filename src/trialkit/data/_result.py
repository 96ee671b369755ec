"""The result of validation: :class:`TrialData`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from trialkit._io import SCHEMA_VERSION
from trialkit._version import __version__
from trialkit.data.schema import DataProblem
from trialkit.errors import DataError


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TrialData:
    """A validated (or failed) trial dataset.

    Attributes
    ----------
    tables : mapping of str -> DataFrame
        ``clusters``, ``keyworkers``, ``families``, ``measurements``, ``delivery``
        (pyarrow-backed dtypes) and ``allocation`` (``cluster``, ``arm``).
    scores : DataFrame
        Scored outcome values: ``outcome_id, entity_id, level, timepoint, value,
        n_answered`` (value missing when the prorating rule is not met).
    problems : tuple of DataProblem
        Every error and warning.
    exclusions : DataFrame
        ``entity, entity_id, reason, stage``: who drops out of which analyses and why.
    flow : DataFrame
        ``arm, level, stage, detail, n``: CONSORT-cluster counts.
    files : mapping of str -> str
        Table name -> file name read.
    inputs : mapping of str -> str
        File name -> SHA-256 of every input read.
    trial_start, trial_end : date or None
    """

    tables: Mapping[str, pd.DataFrame]
    scores: pd.DataFrame
    problems: tuple[DataProblem, ...]
    exclusions: pd.DataFrame
    flow: pd.DataFrame
    files: Mapping[str, str] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)
    trial_start: dt.date | None = None
    trial_end: dt.date | None = None

    @property
    def errors(self) -> tuple[DataProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[DataProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(p.code for p in self.problems)

    @property
    def arms(self) -> dict[str, str]:
        a = self.tables.get("allocation")
        if a is None or a.empty:
            return {}
        return dict(zip(a["cluster"].astype(str), a["arm"].astype(str), strict=True))

    def problems_frame(self) -> pd.DataFrame:
        cols = ["file", "row", "column", "code", "message", "hint", "severity"]
        return pd.DataFrame(
            [{k: p.to_dict()[k] for k in cols} for p in self.problems], columns=cols
        )

    def to_frame(self) -> pd.DataFrame:
        """The problems as a tidy table."""
        return self.problems_frame()

    def row_counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.tables.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: ok, problems, exclusions, flow, row counts (not the tables)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "trialkit_version": __version__,
            "ok": self.ok,
            "n_errors": len(self.errors),
            "n_warnings": len(self.warnings),
            "problems": [p.to_dict() for p in self.problems],
            "exclusions": self.exclusions.astype(object).to_dict(orient="records"),
            "flow": [
                {k: (int(v) if k == "n" else v) for k, v in r.items()}
                for r in self.flow.astype(object).to_dict(orient="records")
            ],
            "row_counts": self.row_counts(),
            "files": dict(self.files),
            "inputs": dict(self.inputs),
        }

    def raise_for_errors(self) -> None:
        """Raise :class:`DataError` listing every problem when any error exists."""
        if self.errors:
            raise DataError(
                f"{len(self.errors)} error(s) and {len(self.warnings)} warning(s) in the trial data",
                [p.to_problem() for p in self.problems],
            )

    def summary(self) -> str:
        lines = [
            f"Trial data: {'valid' if self.ok else 'INVALID'} "
            f"({len(self.errors)} errors, {len(self.warnings)} warnings)",
        ]
        for name, n in self.row_counts().items():
            lines.append(f"  {name}: {n} rows")
        lines.append(f"  exclusions: {len(self.exclusions)} records")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"TrialData(ok={self.ok}, errors={len(self.errors)}, warnings={len(self.warnings)}, "
            f"rows={self.row_counts()})"
        )
