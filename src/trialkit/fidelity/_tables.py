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

from trialkit.errors import FidelityError, Problem
from trialkit.fidelity._convert import (
    _as_bool,
    _as_date,
    _as_id,
    _as_number,
    _at,
    _month_periods,
    _row,
)

RECORD_TYPES: tuple[str, ...] = (
    "training",
    "supervision_session",
    "supervision_attendance",
    "clinician_month",
    "feedback",
)
"""Record types a delivery log may contain."""

COURSES: tuple[str, ...] = ("cpd", "foundation")
"""Training courses known to the built-in metrics."""

ROLES: tuple[str, ...] = ("keyworker", "champion")

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "training": ("la_id", "keyworker_id", "course", "attended"),
    "supervision_session": ("la_id", "session_id", "date"),
    "supervision_attendance": ("la_id", "session_id", "keyworker_id", "attended"),
    "clinician_month": ("la_id", "month", "fte"),
    "feedback": ("la_id", "family_id", "timepoint", "administered"),
}

ALL_COLUMNS: tuple[str, ...] = (
    "la_id",
    "keyworker_id",
    "family_id",
    "session_id",
    "course",
    "day",
    "date",
    "month",
    "attended",
    "genogram_used",
    "duration_minutes",
    "fte",
    "timepoint",
    "instrument",
    "administered",
)
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
    for idx in d.index[~rt.isin(RECORD_TYPES).to_numpy()]:
        problems.append(
            Problem(
                path=f"{dname} {_row(idx)} column record_type",
                code="fidelity.delivery.unknown_record_type",
                message=f"'record_type' must be one of {', '.join(RECORD_TYPES)}; got {rt[idx]!r}",
                hint="fix the record type or remove the row",
            )
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
                for idx in part.index[empty.to_numpy()]:
                    problems.append(
                        Problem(
                            path=f"{dname} {_row(idx)} column {col}",
                            code="fidelity.delivery.missing_value",
                            message=f"'{col}' must be given for a {rtype} record; got an empty cell",
                            hint="fill in the value or remove the row",
                        )
                    )
        parts[rtype] = part

    # LA ids
    if "la_id" in d.columns:
        bad_la = d["la_id"].notna() & ~d["la_id"].isin(known_las)
        for idx in d.index[bad_la.to_numpy()]:
            problems.append(
                Problem(
                    path=f"{dname} {_row(idx)} column la_id",
                    code="fidelity.delivery.unknown_la",
                    message=f"'la_id' must be an allocated LA; got {_at(d, idx, 'la_id')!r}",
                    hint="check the LA id against the allocation (allocation.csv column cluster)",
                )
            )

    window = delivery_window(protocol)
    kw_ids = set(kw["keyworker_id"])
    kw_la = dict(zip(kw["keyworker_id"], kw["la_id"], strict=False))
    fam_ids = set(fam["family_id"])

    def check_keyworker(part: pd.DataFrame, required: bool) -> None:
        if "keyworker_id" not in part.columns:
            return
        for idx, k in part["keyworker_id"].items():
            if k is pd.NA or k is None or (isinstance(k, float) and np.isnan(k)):
                continue
            if k not in kw_ids:
                problems.append(
                    Problem(
                        path=f"{dname} {_row(idx)} column keyworker_id",
                        code="fidelity.delivery.unknown_keyworker",
                        message=f"'keyworker_id' must be listed in the keyworkers table; got {k!r}",
                        hint="add the keyworker to keyworkers or fix the id",
                    )
                )
            elif kw_la.get(k) != _at(part, idx, "la_id") and _at(part, idx, "la_id") in known_las:
                problems.append(
                    Problem(
                        path=f"{dname} {_row(idx)} column la_id",
                        code="fidelity.delivery.la_mismatch",
                        message=(
                            f"'la_id' must be the keyworker's LA ({kw_la.get(k)!r}); "
                            f"got {_at(part, idx, 'la_id')!r}"
                        ),
                        hint="a keyworker's records belong to the LA listed in keyworkers",
                    )
                )
        del required

    # training ------------------------------------------------------------
    tr = parts["training"].copy()
    check_keyworker(tr, True)
    tr["course"] = tr["course"].map(lambda v: str(v).strip().lower() if pd.notna(v) else v)
    for idx in tr.index[(tr["course"].notna() & ~tr["course"].isin(COURSES)).to_numpy()]:
        problems.append(
            Problem(
                path=f"{dname} {_row(idx)} column course",
                code="fidelity.delivery.unknown_course",
                message=f"'course' must be one of {', '.join(COURSES)}; got {_at(tr, idx, 'course')!r}",
                hint="use 'cpd' or 'foundation'",
            )
        )
    tr["attended"] = _as_bool(tr["attended"], dname, "attended", problems).fillna(False)
    tr["day"] = _as_number(tr["day"], dname, "day", problems) if "day" in tr.columns else np.nan
    for idx in tr.index[(tr["day"] < 1).fillna(False).to_numpy()]:
        problems.append(
            Problem(
                path=f"{dname} {_row(idx)} column day",
                code="fidelity.delivery.bad_day",
                message=f"'day' must be a course day number >= 1; got {float(_at(tr, idx, 'day')):g}",
                hint="number the course days 1, 2, ...",
            )
        )
    tr["date"] = _as_date(tr["date"], dname, "date", problems) if "date" in tr.columns else pd.NaT
    no_day = tr["day"].isna() & tr["date"].isna()
    for idx in tr.index[no_day.to_numpy()]:
        problems.append(
            Problem(
                path=f"{dname} {_row(idx)} column day",
                code="fidelity.delivery.missing_value",
                message="a training record must give 'day' (or at least 'date'); got neither",
                hint="give the course day number",
            )
        )
    # day key: the day number when known, else the date
    tr["day_key"] = [
        f"d{int(d_)}" if pd.notna(d_) else (f"t{t.date()}" if pd.notna(t) else None)
        for d_, t in zip(tr["day"], tr["date"], strict=False)
    ]
    dup = tr.duplicated(["la_id", "keyworker_id", "course", "day_key"], keep="first")
    for idx in tr.index[dup.to_numpy()]:
        problems.append(
            Problem(
                path=f"{dname} {_row(idx)}",
                code="fidelity.delivery.duplicate",
                message=(
                    "training records must be unique per keyworker, course and day; "
                    f"got a second record for keyworker {_at(tr, idx, 'keyworker_id')!r}"
                ),
                hint="remove the duplicate row (attendance would be counted twice)",
            )
        )
    _window_warnings(tr, "date", window, dname, "training", warnings)

    # supervision sessions -------------------------------------------------
    ss = parts["supervision_session"].copy()
    ss["date"] = _as_date(ss["date"], dname, "date", problems)
    if window.start is not None and window.end is not None:
        lo, hi = pd.Timestamp(window.start), pd.Timestamp(window.end)
        out = ss["date"].notna() & ((ss["date"] < lo) | (ss["date"] > hi))
        for idx in ss.index[out.to_numpy()]:
            problems.append(
                Problem(
                    path=f"{dname} {_row(idx)} column date",
                    code="fidelity.delivery.outside_window",
                    message=(
                        f"supervision session date must lie in the trial window {window.start} "
                        f"to {window.end}; got {_at(ss, idx, 'date').date()}"
                    ),
                    hint="fix the date or the protocol's trial.start/trial.end",
                )
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
        for idx in ss.index[(ss["duration_minutes"] <= 0).fillna(False).to_numpy()]:
            problems.append(
                Problem(
                    path=f"{dname} {_row(idx)} column duration_minutes",
                    code="fidelity.delivery.negative_value",
                    message=f"'duration_minutes' must be positive; got {float(_at(ss, idx, 'duration_minutes')):g}",
                    hint="give the session length in minutes",
                )
            )
    else:
        ss["duration_minutes"] = np.nan
    dup = ss.duplicated(["la_id", "session_id"], keep="first")
    for idx in ss.index[dup.to_numpy()]:
        problems.append(
            Problem(
                path=f"{dname} {_row(idx)} column session_id",
                code="fidelity.delivery.duplicate",
                message=f"'session_id' must be unique within an LA; got {_at(ss, idx, 'session_id')!r} twice",
                hint="give each supervision session its own id",
            )
        )

    # attendance ------------------------------------------------------------
    at = parts["supervision_attendance"].copy()
    check_keyworker(at, True)
    at["attended"] = _as_bool(at["attended"], dname, "attended", problems).fillna(False)
    sess_keys = set(zip(ss["la_id"], ss["session_id"], strict=False))
    for idx in at.index:
        key = (_at(at, idx, "la_id"), _at(at, idx, "session_id"))
        if pd.notna(key[1]) and key not in sess_keys:
            problems.append(
                Problem(
                    path=f"{dname} {_row(idx)} column session_id",
                    code="fidelity.delivery.unknown_session",
                    message=(
                        "'session_id' must match a supervision_session record of the same LA; "
                        f"got {key[1]!r} in LA {key[0]!r}"
                    ),
                    hint="add the supervision_session record or fix the id",
                )
            )
    dates = ss.drop_duplicates(["la_id", "session_id"]).set_index(["la_id", "session_id"])["date"]
    at["date"] = [dates.get(k, pd.NaT) for k in zip(at["la_id"], at["session_id"], strict=False)]
    at["date"] = pd.to_datetime(at["date"])
    dup = at.duplicated(["la_id", "session_id", "keyworker_id"], keep="first")
    for idx in at.index[dup.to_numpy()]:
        problems.append(
            Problem(
                path=f"{dname} {_row(idx)}",
                code="fidelity.delivery.duplicate",
                message=(
                    "supervision_attendance must be unique per session and keyworker; got keyworker "
                    f"{_at(at, idx, 'keyworker_id')!r} twice in session {_at(at, idx, 'session_id')!r}"
                ),
                hint="remove the duplicate row",
            )
        )

    # clinician months ---------------------------------------------------------
    cm = parts["clinician_month"].copy()
    cm["month_start"] = _month_periods(cm["month"], dname, problems)
    cm["fte"] = _as_number(cm["fte"], dname, "fte", problems)
    for idx in cm.index[(cm["fte"] < 0).fillna(False).to_numpy()]:
        problems.append(
            Problem(
                path=f"{dname} {_row(idx)} column fte",
                code="fidelity.delivery.negative_fte",
                message=f"'fte' must be >= 0; got {float(_at(cm, idx, 'fte')):g}",
                hint="record the clinician's full-time equivalent in post that month (0 if vacant)",
            )
        )
    if window.start is not None and window.end is not None:
        lo = pd.Timestamp(window.start.replace(day=1))
        hi = pd.Timestamp(window.end)
        out = cm["month_start"].notna() & ((cm["month_start"] < lo) | (cm["month_start"] > hi))
        for idx in cm.index[out.to_numpy()]:
            problems.append(
                Problem(
                    path=f"{dname} {_row(idx)} column month",
                    code="fidelity.delivery.outside_window",
                    message=(
                        f"clinician month must lie in the trial window {window.start} to "
                        f"{window.end}; got {_at(cm, idx, 'month')!r}"
                    ),
                    hint="fix the month or the protocol's trial.start/trial.end",
                )
            )
    dup = cm.duplicated(["la_id", "month_start"], keep="first") & cm["month_start"].notna()
    for idx in cm.index[dup.to_numpy()]:
        problems.append(
            Problem(
                path=f"{dname} {_row(idx)} column month",
                code="fidelity.delivery.duplicate",
                message=f"clinician_month must be unique per LA and month; got {_at(cm, idx, 'month')!r} twice",
                hint="sum the FTE of clinicians in post into one record per LA and month",
            )
        )

    # feedback -----------------------------------------------------------------
    fb = parts["feedback"].copy()
    check_keyworker(fb, False)
    fb["administered"] = _as_bool(fb["administered"], dname, "administered", problems).fillna(False)
    fb["timepoint"] = fb["timepoint"].map(lambda v: str(v).strip() if pd.notna(v) else v)
    tps = set(protocol.trial.timepoints)
    for idx in fb.index[(fb["timepoint"].notna() & ~fb["timepoint"].isin(tps)).to_numpy()]:
        problems.append(
            Problem(
                path=f"{dname} {_row(idx)} column timepoint",
                code="fidelity.delivery.unknown_timepoint",
                message=f"'timepoint' must be one of {', '.join(sorted(tps))}; got {_at(fb, idx, 'timepoint')!r}",
                hint="use the timepoints declared in trial.timepoints",
            )
        )
    fam_la = dict(zip(fam["family_id"], fam["la_id"], strict=False))
    for idx, f in fb["family_id"].items():
        if f is pd.NA or f is None:
            continue
        if f not in fam_ids:
            problems.append(
                Problem(
                    path=f"{dname} {_row(idx)} column family_id",
                    code="fidelity.delivery.unknown_family",
                    message=f"'family_id' must be listed in the families table; got {f!r}",
                    hint="add the family to families or fix the id",
                )
            )
        elif fam_la.get(f) != _at(fb, idx, "la_id") and _at(fb, idx, "la_id") in known_las:
            problems.append(
                Problem(
                    path=f"{dname} {_row(idx)} column la_id",
                    code="fidelity.delivery.la_mismatch",
                    message=f"'la_id' must be the family's LA ({fam_la.get(f)!r}); got {_at(fb, idx, 'la_id')!r}",
                    hint="a family's records belong to the LA listed in families",
                )
            )
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


def _allocation_arms(
    protocol: Any, allocation: pd.DataFrame, name: str, problems: list[Problem]
) -> pd.Series:
    cols = {c.lower(): c for c in allocation.columns}
    id_col = cols.get("cluster") or cols.get("la_id")
    arm_col = cols.get("arm")
    if id_col is None or arm_col is None:
        raise FidelityError.from_problem(
            path=name,
            code="fidelity.allocation.missing_column",
            message=f"allocation must have columns 'cluster' and 'arm'; got {list(allocation.columns)}",
            hint="pass the allocation.csv written by 'trialkit randomise'",
        )
    ids = _as_id(allocation[id_col])
    arms = allocation[arm_col].astype("object").map(lambda v: str(v).strip() if pd.notna(v) else v)
    known = set(protocol.arms)
    for i, (la, arm) in enumerate(zip(ids, arms, strict=False)):
        if arm not in known:
            problems.append(
                Problem(
                    path=f"{name} {_row(i)} column arm",
                    code="fidelity.allocation.unknown_arm",
                    message=f"'arm' must be one of {', '.join(sorted(known))}; got {arm!r}",
                    hint="the arms are those declared in the protocol",
                )
            )
        if la is pd.NA:
            problems.append(
                Problem(
                    path=f"{name} {_row(i)} column {id_col}",
                    code="fidelity.allocation.missing_value",
                    message="'cluster' must be given; got an empty cell",
                    hint="fill in the LA id",
                )
            )
    s = pd.Series(list(arms), index=list(ids), name="arm")
    s = s[np.asarray(~pd.isna(s.index), dtype=bool)]
    dups = s.index[s.index.duplicated()]
    for la in dups.unique():
        problems.append(
            Problem(
                path=f"{name} column {id_col}",
                code="fidelity.allocation.duplicate",
                message=f"each LA must be allocated once; got {la!r} more than once",
                hint="use the allocation written by 'trialkit randomise'",
            )
        )
    return s[~s.index.duplicated()]


def _prepare_keyworkers(
    keyworkers: pd.DataFrame, name: str, known_las: set[str], problems: list[Problem]
) -> pd.DataFrame:
    kw = keyworkers.reset_index(drop=True).copy()
    for col in ("keyworker_id", "la_id"):
        if col not in kw.columns:
            raise FidelityError.from_problem(
                path=f"{name} column {col}",
                code="fidelity.keyworkers.missing_column",
                message=f"keyworkers table must have a '{col}' column",
                hint="columns: keyworker_id, la_id, role, start_date, leave_date",
            )
        kw[col] = _as_id(kw[col])
    if "role" not in kw.columns:
        kw["role"] = "keyworker"
    kw["role"] = kw["role"].map(lambda v: str(v).strip().lower() if pd.notna(v) else "keyworker")
    for idx in kw.index[~kw["role"].isin(ROLES).to_numpy()]:
        problems.append(
            Problem(
                path=f"{name} {_row(idx)} column role",
                code="fidelity.keyworkers.unknown_role",
                message=f"'role' must be one of {', '.join(ROLES)}; got {_at(kw, idx, 'role')!r}",
                hint="use 'keyworker' or 'champion'",
            )
        )
    for idx in kw.index[(kw["la_id"].notna() & ~kw["la_id"].isin(known_las)).to_numpy()]:
        problems.append(
            Problem(
                path=f"{name} {_row(idx)} column la_id",
                code="fidelity.keyworkers.unknown_la",
                message=f"'la_id' must be an allocated LA; got {_at(kw, idx, 'la_id')!r}",
                hint="check the LA id against the allocation",
            )
        )
    for col in ("start_date", "leave_date"):
        kw[col] = _as_date(kw[col], name, col, problems) if col in kw.columns else pd.NaT
    return kw[["keyworker_id", "la_id", "role", "start_date", "leave_date"]]


def _prepare_families(
    families: pd.DataFrame, name: str, known_las: set[str], problems: list[Problem]
) -> pd.DataFrame:
    fam = families.reset_index(drop=True).copy()
    for col in ("family_id", "la_id"):
        if col not in fam.columns:
            raise FidelityError.from_problem(
                path=f"{name} column {col}",
                code="fidelity.families.missing_column",
                message=f"families table must have a '{col}' column",
                hint="columns: family_id, keyworker_id, la_id, referral_date, consent_date, ...",
            )
        fam[col] = _as_id(fam[col])
    for idx in fam.index[(fam["la_id"].notna() & ~fam["la_id"].isin(known_las)).to_numpy()]:
        problems.append(
            Problem(
                path=f"{name} {_row(idx)} column la_id",
                code="fidelity.families.unknown_la",
                message=f"'la_id' must be an allocated LA; got {_at(fam, idx, 'la_id')!r}",
                hint="check the LA id against the allocation",
            )
        )
    if "consent_date" in fam.columns:
        fam["consent_date"] = _as_date(fam["consent_date"], name, "consent_date", problems)
        fam["consented"] = fam["consent_date"].notna()
    else:
        fam["consent_date"] = pd.NaT
        fam["consented"] = True
    return fam[["family_id", "la_id", "consent_date", "consented"]]


def unique_nonnull(values: Iterable[Any]) -> list[Any]:
    return sorted({v for v in values if v is not None and v is not pd.NA and v == v})
