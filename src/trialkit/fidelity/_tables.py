"""Split the delivery records the fidelity assessment needs into typed tables.

The delivery log is one long table with a ``record_type`` column (``training``,
``supervision_session``, ``supervision_attendance``, ``clinician_month``,
``feedback``).  :func:`prepare_tables` checks it with the data stage's rules
(:func:`trialkit.data._checks_delivery.check_delivery_table`, the only validator
of delivery records: same codes as ``trialkit validate``), together with the
allocation, keyworkers and families tables, and raises one
:class:`~trialkit.errors.FidelityError` listing every problem (file, 1-based
data row, column).  It then splits the log by record type and converts the
columns to their types.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trialkit.data._checks_delivery import check_delivery_table
from trialkit.data.schema import DELIVERY_COLUMNS, RECORD_TYPES
from trialkit.errors import FidelityError, Problem
from trialkit.fidelity._convert import _as_id, _to_bool, _to_date, _to_month, _to_number
from trialkit.fidelity._entities import _allocation_arms, _prepare_families, _prepare_keyworkers

ALL_COLUMNS: tuple[str, ...] = tuple(c for c in DELIVERY_COLUMNS if c != "record_type")
"""Columns of the long delivery table (absent ones are treated as empty)."""


@dataclass(frozen=True, slots=True)
class Window:
    """The delivery window: first and last day, and its length in months."""

    start: dt.date | None
    end: dt.date | None
    months: float
    months_source: str


@dataclass(frozen=True, slots=True)
class DeliveryTables:
    """Delivery records split by type, with typed columns (internal)."""

    training: pd.DataFrame
    sessions: pd.DataFrame
    attendance: pd.DataFrame
    clinician: pd.DataFrame
    feedback: pd.DataFrame
    keyworkers: pd.DataFrame
    families: pd.DataFrame
    arms: pd.Series  # la_id -> arm id
    window: Window
    warnings: tuple[Problem, ...]

    def records_in(self, record_type: str) -> pd.DataFrame:
        return {
            "training": self.training,
            "supervision_session": self.sessions,
            "supervision_attendance": self.attendance,
            "clinician_month": self.clinician,
            "feedback": self.feedback,
        }[record_type]


def month_count(start: dt.date, end: dt.date) -> int:
    """Calendar months touched by ``[start, end]`` (Sep 2024 to Dec 2025 gives 16)."""
    return (end.year - start.year) * 12 + end.month - start.month + 1


def delivery_window(protocol: Any) -> Window:
    """The delivery window from the protocol.

    The length in months is the TIDieR quantity ``delivery_period`` (unit month)
    of the intervention arm when given, else the calendar months from
    ``trial.start`` to ``trial.end``.
    """
    start = protocol.trial.start
    end = protocol.trial.end
    months = float("nan")
    source = "unknown"
    arm = protocol.arms[protocol.intervention_arm]
    for _key, q in arm.tidier.quantities():
        if q.id == "delivery_period" and str(q.unit) == "month":
            months = float(q.value)
            source = "tidier.when_and_how_much.delivery_period"
            break
    if not np.isfinite(months) and start is not None and end is not None:
        months = float(month_count(start, end))
        source = "trial.start/trial.end"
    return Window(start=start, end=end, months=months, months_source=source)


# --------------------------------------------------------------------------- prepare
def prepare_tables(
    protocol: Any,
    delivery: pd.DataFrame,
    keyworkers: pd.DataFrame,
    families: pd.DataFrame,
    allocation: pd.DataFrame,
    *,
    clusters: pd.DataFrame | None = None,
    sources: Mapping[str, str] | None = None,
) -> DeliveryTables:
    """Check and split the delivery records; raise one FidelityError listing every problem."""
    names = {
        "delivery": "delivery",
        "keyworkers": "keyworkers",
        "families": "families",
        "allocation": "allocation",
        "clusters": "clusters",
    }
    names.update(dict(sources or {}))
    problems: list[Problem] = []
    warnings: list[Problem] = []

    arms = _allocation_arms(protocol, allocation, names["allocation"], problems)
    known_las = set(arms.index)
    if clusters is not None and "la_id" in clusters.columns:
        cl = set(_as_id(clusters["la_id"]).dropna())
        for la in sorted(cl - known_las):
            warnings.append(
                Problem(
                    path=f"{names['clusters']}",
                    code="fidelity.cluster.not_allocated",
                    message=f"LA '{la}' is in the clusters table but not in the allocation",
                    hint="it is ignored by the fidelity assessment",
                    severity="warning",
                )
            )

    kw = _prepare_keyworkers(keyworkers, names["keyworkers"], known_las, problems)
    fam = _prepare_families(families, names["families"], known_las, problems)
    dname = names["delivery"]
    window = delivery_window(protocol)
    found = check_delivery_table(
        protocol,
        delivery,
        file=dname,
        la_ids=known_las,
        kw_la=_owner_la(kw, "keyworker_id"),
        fam_la=_owner_la(fam, "family_id"),
    )
    problems.extend(p.to_problem() for p in found if p.severity == "error")
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise FidelityError(f"{len(errors)} problem(s) in the delivery records", errors)

    parts = _split(delivery)
    tr = parts["training"]
    tr["course"] = tr["course"].map(lambda v: str(v).strip().lower() if pd.notna(v) else v)
    tr["attended"] = _to_bool(tr["attended"]).fillna(False)
    tr["day"] = _to_number(tr["day"])
    tr["date"] = _to_date(tr["date"])
    # day key: the day number when known, else the date
    tr["day_key"] = [
        f"d{int(d_)}" if pd.notna(d_) else (f"t{t.date()}" if pd.notna(t) else None)
        for d_, t in zip(tr["day"], tr["date"], strict=False)
    ]

    ss = parts["supervision_session"]
    ss["date"] = _to_date(ss["date"])
    ss["genogram_used"] = _to_bool(ss["genogram_used"])
    ss["duration_minutes"] = _to_number(ss["duration_minutes"])

    at = parts["supervision_attendance"]
    at["attended"] = _to_bool(at["attended"]).fillna(False)
    dates = ss.drop_duplicates(["la_id", "session_id"]).set_index(["la_id", "session_id"])["date"]
    at["date"] = [dates.get(k, pd.NaT) for k in zip(at["la_id"], at["session_id"], strict=False)]
    at["date"] = pd.to_datetime(at["date"])

    cm = parts["clinician_month"]
    cm["month_start"] = _to_month(cm["month"])
    cm["fte"] = _to_number(cm["fte"])

    fb = parts["feedback"]
    fb["administered"] = _to_bool(fb["administered"]).fillna(False)
    fb["timepoint"] = fb["timepoint"].map(lambda v: str(v).strip() if pd.notna(v) else v)
    fb["date"] = _to_date(fb["date"])

    return DeliveryTables(
        training=tr.reset_index(drop=True),
        sessions=ss.reset_index(drop=True),
        attendance=at.reset_index(drop=True),
        clinician=cm.reset_index(drop=True),
        feedback=fb.reset_index(drop=True),
        keyworkers=kw,
        families=fam,
        arms=arms,
        window=window,
        warnings=tuple(warnings),
    )


def _owner_la(table: pd.DataFrame, id_col: str) -> dict[str, str]:
    """LA of each keyworker or family id of a prepared entity table."""
    return {
        str(k): str(v)
        for k, v in zip(table[id_col], table["la_id"], strict=False)
        if pd.notna(k) and pd.notna(v)
    }


def _split(delivery: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The (validated) delivery log by record type, every column present, ids as text."""
    keep = [c for c in ("record_type", *ALL_COLUMNS) if c in delivery.columns]
    d = delivery.reset_index(drop=True)[keep].astype(object)  # plain numpy-backed columns
    for col in ALL_COLUMNS:
        if col not in d.columns:
            d[col] = pd.Series(pd.NA, index=d.index, dtype="object")
    for col in ("la_id", "keyworker_id", "family_id", "session_id", "group_id"):
        d[col] = _as_id(d[col])
    d["record_type"] = d["record_type"].map(lambda v: str(v).strip() if pd.notna(v) else v)
    return {rtype: d[d["record_type"] == rtype].copy() for rtype in RECORD_TYPES}


def unique_nonnull(values: Iterable[Any]) -> list[Any]:
    return sorted({v for v in values if v is not None and v is not pd.NA and v == v})
