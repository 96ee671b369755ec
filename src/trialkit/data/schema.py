"""The data contract: tables, columns, dtypes and the problem-record type.

A data directory holds one file per table (``<table>.csv``, ``.parquet`` or
``.xlsx``); the tables and their required columns are declared by the stage
store (:mod:`trialkit.store.stages`), their types here.  See ``docs/data-spec.md`` for the full specification.

Row numbers in problems are **1-based data rows, header not counted**: row 1 is
the first row under the header (line 2 of a CSV file, row 2 of a spreadsheet).
The fidelity stage uses the same convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trialkit.errors import Problem
from trialkit.protocol.model import DEFAULT_COURSES
from trialkit.store.stages import (
    DATA_TABLES,
    REQUIRED_DATA_COLUMNS,
    REQUIRED_DATA_TABLES,
)
from trialkit.store.tables import DATA_SUFFIXES

__all__ = [
    "COLUMNS",
    "DELIVERY_COLUMNS",
    "DELIVERY_SUBSETS",
    "LEVELS",
    "RECORD_TYPES",
    "REQUIRED",
    "ROLES",
    "TABLES",
    "DataProblem",
    "delivery_needs",
    "register_delivery_needs",
]

TABLES: tuple[str, ...] = DATA_TABLES
REQUIRED_TABLES: tuple[str, ...] = REQUIRED_DATA_TABLES
SUFFIXES: tuple[str, ...] = DATA_SUFFIXES

Kind = Literal["id", "str", "date", "float", "int", "bool", "month"]

COLUMNS: dict[str, dict[str, Kind]] = {
    "clusters": {"la_id": "id"},
    "keyworkers": {
        "keyworker_id": "id",
        "la_id": "id",
        "role": "str",
        "start_date": "date",
        "leave_date": "date",
        "years_experience": "float",
    },
    "families": {
        "family_id": "id",
        "keyworker_id": "id",
        "la_id": "id",
        "referral_date": "date",
        "consent_date": "date",
        "withdrawal_date": "date",
        "withdrawal_reason": "str",
    },
    "measurements": {
        "entity_id": "id",
        "level": "str",
        "instrument": "str",
        "timepoint": "str",
        "date": "date",
        "total": "float",
    },
    "delivery": {
        "record_type": "str",
        "la_id": "id",
        "keyworker_id": "id",
        "family_id": "id",
        "session_id": "id",
        "group_id": "id",
        "course": "str",
        "day": "int",
        "date": "date",
        "month": "month",
        "attended": "bool",
        "genogram_used": "bool",
        "duration_minutes": "float",
        "fte": "float",
        "timepoint": "str",
        "instrument": "str",
        "administered": "bool",
    },
}
"""Columns of each table and their kind (item_1 … item_47 of ``measurements`` are ``float``)."""

DELIVERY_COLUMNS: tuple[str, ...] = tuple(COLUMNS["delivery"])
"""Columns of the long delivery table, in file order (``record_type`` first).

The one list shared by the data, fidelity and simulation stages."""

REQUIRED: dict[str, tuple[str, ...]] = REQUIRED_DATA_COLUMNS
"""Columns that must be present in the file."""

NOT_NULL: dict[str, tuple[str, ...]] = {
    "clusters": ("la_id",),
    "keyworkers": ("keyworker_id", "la_id", "role"),
    "families": ("family_id", "keyworker_id", "la_id"),
    "measurements": ("entity_id", "level", "instrument", "timepoint"),
    "delivery": ("record_type", "la_id"),
}

RECORD_TYPES: tuple[str, ...] = (
    "training",
    "supervision_session",
    "supervision_attendance",
    "clinician_month",
    "feedback",
)
DELIVERY_SUBSETS: dict[str, tuple[str, ...]] = {
    "training": ("la_id", "keyworker_id", "course", "day", "date", "attended"),
    "supervision_session": (
        "la_id",
        "session_id",
        "group_id",
        "date",
        "genogram_used",
        "duration_minutes",
    ),
    "supervision_attendance": ("la_id", "session_id", "keyworker_id", "attended"),
    "clinician_month": ("la_id", "month", "fte"),
    "feedback": (
        "la_id",
        "keyworker_id",
        "family_id",
        "timepoint",
        "instrument",
        "administered",
        "date",
    ),
}
"""Columns each delivery record type uses (required non-empty: see ``DELIVERY_NOT_NULL``)."""

DELIVERY_NOT_NULL: dict[str, tuple[str, ...]] = {
    "training": ("keyworker_id", "course", "day", "attended"),
    "supervision_session": ("session_id", "date"),
    "supervision_attendance": ("session_id", "keyworker_id", "attended"),
    "clinician_month": ("month", "fte"),
    "feedback": ("family_id", "timepoint", "administered"),
}

_METRIC_NEEDS: dict[str, dict[str, tuple[str, ...]]] = {}


def register_delivery_needs(
    metric: str, record_types: tuple[str, ...], columns: tuple[str, ...] = ()
) -> None:
    """Declare the delivery records and columns fidelity metric ``metric`` reads.

    :func:`trialkit.fidelity.register_metric` calls this for every metric it
    registers, so that :func:`trialkit.data.validate` checks the delivery log for
    every metric an indicator of the protocol uses.

    Parameters
    ----------
    metric : str
        Metric name.
    record_types : tuple of str
        Record types the metric reads (each from :data:`RECORD_TYPES`).
    columns : tuple of str
        Columns it reads beyond ``la_id`` and the record types' required
        columns (:data:`DELIVERY_NOT_NULL`), e.g. ``genogram_used``.
    """
    unknown = [r for r in record_types if r not in RECORD_TYPES]
    if unknown:
        raise ValueError(f"record_types must be among {', '.join(RECORD_TYPES)}; got {unknown}")
    _METRIC_NEEDS[metric] = {
        rt: tuple(
            dict.fromkeys(
                (
                    "la_id",
                    *DELIVERY_NOT_NULL[rt],
                    *(c for c in columns if c in DELIVERY_SUBSETS[rt]),
                )
            )
        )
        for rt in record_types
    }


def delivery_needs(metric: str) -> dict[str, tuple[str, ...]]:
    """Columns of each record type that metric ``metric`` needs (empty if unregistered)."""
    return dict(_METRIC_NEEDS.get(metric, {}))


for _metric, _types, _cols in (
    ("training_days_delivered", ("training",), ()),
    ("share_completing_training", ("training",), ()),
    ("supervision_sessions_per_month", ("supervision_session",), ()),
    ("share_sessions_with_genogram", ("supervision_session",), ("genogram_used",)),
    ("supervision_attendance", ("supervision_attendance",), ()),
    ("clinician_fte_months", ("clinician_month",), ()),
    ("share_families_with_feedback", ("feedback",), ()),
):
    register_delivery_needs(_metric, _types, _cols)

ROLES: tuple[str, ...] = ("keyworker", "champion")
LEVELS: tuple[str, ...] = ("family", "keyworker")
COURSES: tuple[str, ...] = DEFAULT_COURSES
"""Default training courses; validation uses the protocol's ``data.courses``."""

MAX_ROWS_PER_CODE = 20
"""Problems listed row by row per (file, column, code); the rest are summarised in one record."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DataProblem:
    """One problem in a data file.

    Attributes
    ----------
    file : str
        File name (e.g. ``families.csv``) or ``allocation.csv``.
    row : int or None
        1-based data row (header not counted); None for file- or column-level problems.
    column : str or None
    code : str
        Stable code such as ``families.keyworker_in_other_la``.
    message, hint : str
    severity : {"error", "warning"}
    """

    file: str
    row: int | None
    column: str | None
    code: str
    message: str
    hint: str = ""
    severity: Literal["error", "warning"] = "error"

    @property
    def path(self) -> str:
        p = self.file
        if self.row is not None:
            p += f" row {self.row}"
        if self.column is not None:
            p += f" column {self.column}"
        return p

    def to_problem(self) -> Problem:
        return Problem(
            path=self.path,
            code=self.code,
            message=self.message,
            hint=self.hint,
            severity=self.severity,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "severity": self.severity,
            "path": self.path,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> DataProblem:
        row = d.get("row")
        return cls(
            file=str(d["file"]),
            row=None if row is None else int(row),  # type: ignore[call-overload]
            column=None if d.get("column") is None else str(d["column"]),
            code=str(d["code"]),
            message=str(d["message"]),
            hint=str(d.get("hint", "")),
            severity="warning" if d.get("severity") == "warning" else "error",
        )
