"""Read and check the delivery records the fidelity assessment needs.

The delivery log is one long table with a ``record_type`` column (``training``,
``supervision_session``, ``supervision_attendance``, ``clinician_month``,
``feedback``).  :func:`prepare_tables` splits it by record type, converts the
columns to their proper types and gathers *every* problem (unknown LA, negative
FTE, supervision outside the trial window, unknown course or record type, ...)
before raising one :class:`~trialkit.errors.FidelityError` whose problems name
the file, the row (1-based data row, header not counted) and the column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trialkit.data.schema import COURSES, DELIVERY_COLUMNS, RECORD_TYPES
from trialkit.errors import FidelityError, Problem
from trialkit.fidelity._convert import (
    _as_bool,
    _as_date,
    _as_id,
    _as_number,
    _at,
    _flag,
    _month_periods,
    _not_in,
    _row,
)
from trialkit.fidelity._entities import _allocation_arms, _prepare_families, _prepare_keyworkers

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "training": ("la_id", "keyworker_id", "course", "attended"),
    "supervision_session": ("la_id", "session_id", "date"),
    "supervision_attendance": ("la_id", "session_id", "keyworker_id", "attended"),
    "clinician_month": ("la_id", "month", "fte"),
    "feedback": ("la_id", "family_id", "timepoint", "administered"),
}
"""Columns each record type needs (record types and courses: :mod:`trialkit.data.schema`)."""

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

    keep = [c for c in ("record_type", *ALL_COLUMNS) if c in delivery.columns]
    d = delivery.reset_index(drop=True)[keep].astype(object)  # plain numpy-backed columns
    dname = names["delivery"]
    if "record_type" not in d.columns:
        raise FidelityError.from_problem(
            path=f"{dname} column record_type",
            code="fidelity.delivery.missing_column",
            message="delivery table must have a 'record_type' column",
            hint=f"one of {', '.join(RECORD_TYPES)} per row",
        )
    orig_cols = set(d.columns)
    for col in ALL_COLUMNS:
        if col not in d.columns:
            d[col] = pd.Series(pd.NA, index=d.index, dtype="object")
    for col in ("la_id", "keyworker_id", "family_id", "session_id"):
        d[col] = _as_id(d[col])
    rt = d["record_type"].astype("object").map(lambda v: str(v).strip() if pd.notna(v) else v)
    _flag(
        problems,
        d.index[~rt.isin(RECORD_TYPES).to_numpy()],
        dname,
        "record_type",
        "fidelity.delivery.unknown_record_type",
        lambda i: f"'record_type' must be one of {', '.join(RECORD_TYPES)}; got {rt[i]!r}",
        "fix the record type or remove the row",
    )
    d["record_type"] = rt

    # required columns per present record type
    parts: dict[str, pd.DataFrame] = {}
    for rtype in RECORD_TYPES:
        part = d[d["record_type"] == rtype]
        missing_cols = [c for c in REQUIRED_COLUMNS[rtype] if c not in orig_cols]
        if missing_cols and len(part):
            problems.append(
                Problem(
                    path=f"{dname} column {missing_cols[0]}",
                    code="fidelity.delivery.missing_column",
                    message=f"{rtype} records need column(s) {', '.join(missing_cols)}",
                    hint=f"{rtype} records use columns {', '.join(REQUIRED_COLUMNS[rtype])}",
                )
            )
            part = part.iloc[0:0]
        else:
            for col in REQUIRED_COLUMNS[rtype]:
                if col in ("attended", "administered"):
                    continue
                empty = part[col].isna() if col in part.columns else pd.Series(dtype=bool)
                _flag(
                    problems,
                    part.index[empty.to_numpy()],
                    dname,
                    col,
                    "fidelity.delivery.missing_value",
                    f"'{col}' must be given for a {rtype} record; got an empty cell",
                    "fill in the value or remove the row",
                )
        parts[rtype] = part

    # LA ids
    if "la_id" in d.columns:
        _not_in(
            problems,
            d,
            "la_id",
            known_las,
            dname,
            "fidelity.delivery.unknown_la",
            "an allocated LA",
            "check the LA id against the allocation (allocation.csv column cluster)",
        )

    window = delivery_window(protocol)
    kw_la = dict(zip(kw["keyworker_id"], kw["la_id"], strict=False))
    fam_la = dict(zip(fam["family_id"], fam["la_id"], strict=False))

    # training ------------------------------------------------------------
    tr = parts["training"].copy()
    _check_owner(problems, tr, dname, "keyworker", "keyworkers", kw_la, known_las)
    tr["course"] = tr["course"].map(lambda v: str(v).strip().lower() if pd.notna(v) else v)
    _not_in(
        problems,
        tr,
        "course",
        COURSES,
        dname,
        "fidelity.delivery.unknown_course",
        f"one of {', '.join(COURSES)}",
        "use 'cpd' or 'foundation'",
    )
    tr["attended"] = _as_bool(tr["attended"], dname, "attended", problems).fillna(False)
    tr["day"] = _as_number(tr["day"], dname, "day", problems) if "day" in tr.columns else np.nan
    _flag(
        problems,
        tr.index[(tr["day"] < 1).fillna(False).to_numpy()],
        dname,
        "day",
        "fidelity.delivery.bad_day",
        lambda i: f"'day' must be a course day number >= 1; got {float(_at(tr, i, 'day')):g}",
        "number the course days 1, 2, ...",
    )
    tr["date"] = _as_date(tr["date"], dname, "date", problems) if "date" in tr.columns else pd.NaT
    _flag(
        problems,
        tr.index[(tr["day"].isna() & tr["date"].isna()).to_numpy()],
        dname,
        "day",
        "fidelity.delivery.missing_value",
        "a training record must give 'day' (or at least 'date'); got neither",
        "give the course day number",
    )
    # day key: the day number when known, else the date
    tr["day_key"] = [
        f"d{int(d_)}" if pd.notna(d_) else (f"t{t.date()}" if pd.notna(t) else None)
        for d_, t in zip(tr["day"], tr["date"], strict=False)
    ]
    _flag(
        problems,
        tr.index[tr.duplicated(["la_id", "keyworker_id", "course", "day_key"]).to_numpy()],
        dname,
        None,
        "fidelity.delivery.duplicate",
        lambda i: (
            "training records must be unique per keyworker, course and day; "
            f"got a second record for keyworker {_at(tr, i, 'keyworker_id')!r}"
        ),
        "remove the duplicate row (attendance would be counted twice)",
    )
    _window_warnings(tr, "date", window, dname, "training", warnings)

    # supervision sessions -------------------------------------------------
    ss = parts["supervision_session"].copy()
    ss["date"] = _as_date(ss["date"], dname, "date", problems)
    if window.start is not None and window.end is not None:
        lo, hi = pd.Timestamp(window.start), pd.Timestamp(window.end)
        out = ss["date"].notna() & ((ss["date"] < lo) | (ss["date"] > hi))
        _flag(
            problems,
            ss.index[out.to_numpy()],
            dname,
            "date",
            "fidelity.delivery.outside_window",
            lambda i: (
                f"supervision session date must lie in the trial window {window.start} "
                f"to {window.end}; got {_at(ss, i, 'date').date()}"
            ),
            "fix the date or the protocol's trial.start/trial.end",
        )
    ss["genogram_used"] = (
        _as_bool(ss["genogram_used"], dname, "genogram_used", problems)
        if "genogram_used" in ss.columns
        else pd.Series(pd.NA, index=ss.index, dtype="boolean")
    )
    if "duration_minutes" in ss.columns:
        ss["duration_minutes"] = _as_number(
            ss["duration_minutes"], dname, "duration_minutes", problems
        )
        _flag(
            problems,
            ss.index[(ss["duration_minutes"] <= 0).fillna(False).to_numpy()],
            dname,
            "duration_minutes",
            "fidelity.delivery.negative_value",
            lambda i: (
                f"'duration_minutes' must be positive; got {float(_at(ss, i, 'duration_minutes')):g}"
            ),
            "give the session length in minutes",
        )
    else:
        ss["duration_minutes"] = np.nan
    _flag(
        problems,
        ss.index[ss.duplicated(["la_id", "session_id"]).to_numpy()],
        dname,
        "session_id",
        "fidelity.delivery.duplicate",
        lambda i: (
            f"'session_id' must be unique within an LA; got {_at(ss, i, 'session_id')!r} twice"
        ),
        "give each supervision session its own id",
    )

    # attendance ------------------------------------------------------------
    at = parts["supervision_attendance"].copy()
    _check_owner(problems, at, dname, "keyworker", "keyworkers", kw_la, known_las)
    at["attended"] = _as_bool(at["attended"], dname, "attended", problems).fillna(False)
    sess_keys = set(zip(ss["la_id"], ss["session_id"], strict=False))
    _flag(
        problems,
        [
            i
            for i in at.index
            if pd.notna(_at(at, i, "session_id"))
            and (_at(at, i, "la_id"), _at(at, i, "session_id")) not in sess_keys
        ],
        dname,
        "session_id",
        "fidelity.delivery.unknown_session",
        lambda i: (
            "'session_id' must match a supervision_session record of the same LA; "
            f"got {_at(at, i, 'session_id')!r} in LA {_at(at, i, 'la_id')!r}"
        ),
        "add the supervision_session record or fix the id",
    )
    dates = ss.drop_duplicates(["la_id", "session_id"]).set_index(["la_id", "session_id"])["date"]
    at["date"] = [dates.get(k, pd.NaT) for k in zip(at["la_id"], at["session_id"], strict=False)]
    at["date"] = pd.to_datetime(at["date"])
    _flag(
        problems,
        at.index[at.duplicated(["la_id", "session_id", "keyworker_id"]).to_numpy()],
        dname,
        None,
        "fidelity.delivery.duplicate",
        lambda i: (
            "supervision_attendance must be unique per session and keyworker; got keyworker "
            f"{_at(at, i, 'keyworker_id')!r} twice in session {_at(at, i, 'session_id')!r}"
        ),
        "remove the duplicate row",
    )

    # clinician months ---------------------------------------------------------
    cm = parts["clinician_month"].copy()
    cm["month_start"] = _month_periods(cm["month"], dname, problems)
    cm["fte"] = _as_number(cm["fte"], dname, "fte", problems)
    _flag(
        problems,
        cm.index[(cm["fte"] < 0).fillna(False).to_numpy()],
        dname,
        "fte",
        "fidelity.delivery.negative_fte",
        lambda i: f"'fte' must be >= 0; got {float(_at(cm, i, 'fte')):g}",
        "record the clinician's full-time equivalent in post that month (0 if vacant)",
    )
    if window.start is not None and window.end is not None:
        lo = pd.Timestamp(window.start.replace(day=1))
        hi = pd.Timestamp(window.end)
        out = cm["month_start"].notna() & ((cm["month_start"] < lo) | (cm["month_start"] > hi))
        _flag(
            problems,
            cm.index[out.to_numpy()],
            dname,
            "month",
            "fidelity.delivery.outside_window",
            lambda i: (
                f"clinician month must lie in the trial window {window.start} to "
                f"{window.end}; got {_at(cm, i, 'month')!r}"
            ),
            "fix the month or the protocol's trial.start/trial.end",
        )
    dup = cm.duplicated(["la_id", "month_start"]) & cm["month_start"].notna()
    _flag(
        problems,
        cm.index[dup.to_numpy()],
        dname,
        "month",
        "fidelity.delivery.duplicate",
        lambda i: (
            f"clinician_month must be unique per LA and month; got {_at(cm, i, 'month')!r} twice"
        ),
        "sum the FTE of clinicians in post into one record per LA and month",
    )

    # feedback -----------------------------------------------------------------
    fb = parts["feedback"].copy()
    _check_owner(problems, fb, dname, "keyworker", "keyworkers", kw_la, known_las)
    fb["administered"] = _as_bool(fb["administered"], dname, "administered", problems).fillna(False)
    fb["timepoint"] = fb["timepoint"].map(lambda v: str(v).strip() if pd.notna(v) else v)
    tps = set(protocol.trial.timepoints)
    _not_in(
        problems,
        fb,
        "timepoint",
        tps,
        dname,
        "fidelity.delivery.unknown_timepoint",
        f"one of {', '.join(sorted(tps))}",
        "use the timepoints declared in trial.timepoints",
    )
    _check_owner(problems, fb, dname, "family", "families", fam_la, known_las)
    fb["date"] = _as_date(fb["date"], dname, "date", problems) if "date" in fb.columns else pd.NaT
    _window_warnings(fb, "date", window, dname, "feedback", warnings)

    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise FidelityError(f"{len(errors)} problem(s) in the delivery records", errors)

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


def _window_warnings(
    part: pd.DataFrame, col: str, window: Window, name: str, rtype: str, warnings: list[Problem]
) -> None:
    if window.start is None or window.end is None or not len(part):
        return
    lo, hi = pd.Timestamp(window.start), pd.Timestamp(window.end)
    out = part[col].notna() & ((part[col] < lo) | (part[col] > hi))
    n = int(out.sum())
    if n:
        first = int(part.index[out.to_numpy()][0])
        warnings.append(
            Problem(
                path=f"{name} {_row(first)} column {col}",
                code="fidelity.delivery.outside_window",
                message=(
                    f"{n} {rtype} record(s) are dated outside the trial window {window.start} to "
                    f"{window.end}; they are counted (preparation or follow-up delivery)"
                ),
                hint="check the dates if this is unexpected",
                severity="warning",
            )
        )


def _check_owner(
    problems: list[Problem],
    part: pd.DataFrame,
    name: str,
    entity: str,
    table: str,
    owner_la: Mapping[Any, Any],
    known_las: set[str],
) -> None:
    """Each ``<entity>_id`` must be listed in ``table`` and belong to the record's LA.

    Empty ids are skipped here (they are reported once, as missing values, elsewhere).
    """
    id_col = f"{entity}_id"
    if id_col not in part.columns:
        return
    for idx, k in part[id_col].items():
        if k is pd.NA or k is None or (isinstance(k, float) and np.isnan(k)):
            continue
        la = _at(part, idx, "la_id")
        if k not in owner_la:
            problems.append(
                Problem(
                    path=f"{name} {_row(idx)} column {id_col}",
                    code=f"fidelity.delivery.unknown_{entity}",
                    message=f"'{id_col}' must be listed in the {table} table; got {k!r}",
                    hint=f"add the {entity} to {table} or fix the id",
                )
            )
        elif owner_la.get(k) != la and la in known_las:
            problems.append(
                Problem(
                    path=f"{name} {_row(idx)} column la_id",
                    code="fidelity.delivery.la_mismatch",
                    message=f"'la_id' must be the {entity}'s LA ({owner_la.get(k)!r}); got {la!r}",
                    hint=f"a {entity}'s records belong to the LA listed in {table}",
                )
            )


def unique_nonnull(values: Iterable[Any]) -> list[Any]:
    return sorted({v for v in values if v is not None and v is not pd.NA and v == v})
