"""Rules for the delivery log: the only validation of delivery records.

:func:`trialkit.data.validate` runs them on the data directory, and the
fidelity stage runs them (through :func:`check_delivery_table`) on the tables
it is given, so a delivery record is judged by one set of rules and codes.
Besides each record's own values, they check what the fidelity metrics need:
every metric used by an indicator of the protocol declares its record types and
columns in the data layer's registry (:func:`trialkit.data.schema.register_delivery_needs`,
extended by :func:`trialkit.fidelity.register_metric`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from trialkit.data._checks import _Checks, _Collector, _dates, _str
from trialkit.data._tables import _convert_table
from trialkit.data.schema import (
    DELIVERY_NOT_NULL,
    RECORD_TYPES,
    DataProblem,
    delivery_needs,
)
from trialkit.protocol.model import Protocol


def check_delivery_table(
    protocol: Protocol,
    delivery: pd.DataFrame,
    *,
    file: str = "delivery.csv",
    la_ids: Collection[str] = (),
    kw_la: Mapping[str, str] | None = None,
    fam_la: Mapping[str, str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[DataProblem]:
    """Check a delivery table by the data stage's rules.

    Parameters
    ----------
    protocol : Protocol
    delivery : DataFrame
        The delivery log as read (raw or already validated).
    file : str
        File name used in the problems' paths.
    la_ids : collection of str
        Known LAs (empty: not checked).
    kw_la, fam_la : mapping, optional
        LA of each known keyworker and family (absent: not checked).
    start, end : date, optional
        The delivery window (default ``trial.start`` and ``trial.end``).

    Returns
    -------
    list of DataProblem
        Errors and warnings, in the order the rules found them.
    """
    col = _Collector()
    table = _convert_table("delivery", delivery, file, protocol, col)
    if "delivery" in col.broken:
        return col.items
    ctx = _DeliveryChecks(
        protocol,
        {"delivery": table},
        {"delivery": file},
        col,
        start if start is not None else protocol.trial.start,
        end if end is not None else protocol.trial.end,
        {},
        "",
    )
    ctx.la_ids = {str(x) for x in la_ids}
    ctx.kw_la = {str(k): str(v) for k, v in (kw_la or {}).items()}
    ctx.fam_la = {str(k): str(v) for k, v in (fam_la or {}).items()}
    ctx.fam_ids = set(ctx.fam_la)
    ctx.delivery_columns = {str(c).strip() for c in delivery.columns}
    ctx.check_delivery()
    return col.items


class _DeliveryChecks(_Checks):
    fam_la: dict[str, str] | None = None
    """LA of each family (default: from the families table)."""
    delivery_columns: set[str] | None = None
    """Columns present in the delivery file (default: every column)."""

    # ------------------------------------------------------------------ delivery
    def check_delivery(self) -> None:
        dlv = self.t.get("delivery")
        if dlv is None:
            return
        f = self.file("delivery")
        rt = _str(dlv["record_type"])
        bad = np.array([x is not None and x not in RECORD_TYPES for x in rt], dtype=bool)
        self.col.rows(
            f,
            bad,
            "record_type",
            "delivery.unknown_record_type",
            lambda i: f"'record_type' must be one of {', '.join(RECORD_TYPES)}; got {rt[i]!r}",
            "use one of the five record types",
        )
        las = _str(dlv["la_id"])
        if self.la_ids:
            unk = np.array([x is not None and x not in self.la_ids for x in las], dtype=bool)
            self.col.rows(
                f,
                unk,
                "la_id",
                "delivery.unknown_la",
                lambda i: f"la_id must be an LA of the clusters table; got {las[i]!r}",
                "check the LA id",
            )
        kws = _str(dlv["keyworker_id"])
        kwl = np.array([self.kw_la.get(x) if x is not None else None for x in kws], dtype=object)
        if self.kw_la:
            unk = np.array([x is not None and x not in self.kw_la for x in kws], dtype=bool)
            self.col.rows(
                f,
                unk,
                "keyworker_id",
                "delivery.unknown_keyworker",
                lambda i: (
                    f"keyworker_id must be a keyworker of the keyworkers table; got {kws[i]!r}"
                ),
                "check the keyworker id",
            )
            mism = np.array(
                [a is not None and b is not None and a != b for a, b in zip(kwl, las, strict=True)],
                dtype=bool,
            )
            self.col.rows(
                f,
                mism,
                "la_id",
                "delivery.la_mismatch",
                lambda i: f"la_id must be the keyworker's LA ({kwl[i]!r}); got {las[i]!r}",
                "correct the LA or the keyworker",
            )
        fams = _str(dlv["family_id"])
        if self.fam_ids:
            unk = np.array([x is not None and x not in self.fam_ids for x in fams], dtype=bool)
            self.col.rows(
                f,
                unk,
                "family_id",
                "delivery.unknown_family",
                lambda i: f"family_id must be a family of the families table; got {fams[i]!r}",
                "check the family id",
            )
        for rtype, cols in DELIVERY_NOT_NULL.items():
            is_t = np.array([x == rtype for x in rt], dtype=bool)
            if not is_t.any():
                continue
            for c in cols:
                nul = is_t & ~np.asarray(dlv[c].notna().to_numpy(dtype=bool, na_value=False))
                nul &= ~self.col.bad_cells("delivery", c, len(dlv))  # already reported
                self.col.rows(
                    f,
                    nul,
                    c,
                    "delivery.missing_value",
                    lambda i, cc=c, r=rtype: f"'{cc}' must be given for {r} records",  # type: ignore[misc]
                    "fill in the value",
                )
        course = _str(dlv["course"])
        courses = list(self.p.data.courses)
        badc = np.array([x is not None and x not in courses for x in course], dtype=bool)
        self.col.rows(
            f,
            badc,
            "course",
            "delivery.invalid_value",
            lambda i: f"'course' must be one of {', '.join(courses)}; got {course[i]!r}",
            "use a course declared in the protocol's data.courses",
        )
        day = dlv["day"].to_numpy(dtype=float, na_value=np.nan)
        self.col.rows(
            f,
            ~np.isnan(day) & (day < 1),
            "day",
            "delivery.invalid_value",
            lambda i: f"'day' must be a whole number ≥ 1; got {day[i]:g}",
            "number course days from 1",
        )
        for c in ("fte", "duration_minutes"):
            v = dlv[c].to_numpy(dtype=float, na_value=np.nan)
            self.col.rows(
                f,
                ~np.isnan(v) & (v < 0),
                c,
                "delivery.invalid_value",
                lambda i, vv=v, cc=c: f"'{cc}' must be ≥ 0; got {vv[i]:g}",  # type: ignore[misc]
                "correct the value",
            )
        self.window("delivery", "date", _dates(dlv["date"]))
        month = _str(dlv["month"])
        if self.start is not None and self.end is not None:
            lo = str(self.start)[:7]
            hi = str(self.end)[:7]
            out = np.array([x is not None and not (lo <= x <= hi) for x in month], dtype=bool)
            self.col.rows(
                f,
                out,
                "month",
                "delivery.date_outside_window",
                lambda i: f"'month' must be within {lo} to {hi}; got {month[i]!r}",
                "check the month",
            )
        sess = _str(dlv["session_id"])
        is_s = np.array([x == "supervision_session" for x in rt], dtype=bool)
        sdup = (
            is_s
            & pd.Series(np.where(is_s, sess, None)).duplicated(keep="first").to_numpy()  # type: ignore[call-overload]
            & np.array([x is not None for x in sess], dtype=bool)
        )
        self.col.rows(
            f,
            sdup,
            "session_id",
            "delivery.duplicate",
            lambda i: f"supervision session {sess[i]!r} must be recorded once",
            "remove the repeated session",
        )
        tps = set(self.p.trial.timepoints)
        ftp = _str(dlv["timepoint"])
        badt = np.array([x is not None and x not in tps for x in ftp], dtype=bool)
        self.col.rows(
            f,
            badt,
            "timepoint",
            "delivery.unknown_timepoint",
            lambda i: (
                f"'timepoint' must be one of {', '.join(self.p.trial.timepoints)}; got {ftp[i]!r}"
            ),
            "use the protocol's timepoints",
        )
        present_types = {x for x in rt if x is not None}
        have = self.delivery_columns
        reported: set[tuple[str, str]] = set()
        for _node, ind in self.p.logic_model.indicators():
            for rtn, needed in delivery_needs(ind.metric).items():
                if rtn not in present_types:
                    self.col.add(
                        f,
                        None,
                        "record_type",
                        "delivery.record_type_missing",
                        f"indicator '{ind.id}' needs '{rtn}' records; none found",
                        "add the delivery records or expect this indicator to be missing",
                        "warning",
                    )
                    continue
                for c in needed:
                    if have is None or c in have or (rtn, c) in reported:
                        continue
                    reported.add((rtn, c))
                    self.col.add(
                        f,
                        None,
                        c,
                        "delivery.missing_column",
                        f"column '{c}' must be present for the {rtn} records "
                        f"(indicator '{ind.id}', metric '{ind.metric}')",
                        f"add the column to {f}",
                    )
        self._check_links(dlv, rt, las)
        self._check_groups(dlv, rt, las)

    def _check_groups(self, dlv: pd.DataFrame, rt: np.ndarray, las: np.ndarray) -> None:
        """Supervision groups: all or none of an LA's sessions name their ``group_id``.

        The supervision frequency is per group (``supervision_sessions_per_month``); an
        LA whose sessions have no group id is counted as one group, with a warning
        (``delivery.no_group_id``); an LA where only some sessions have one is an error
        (``delivery.missing_value``): the sessions without one cannot be assigned.
        """
        f = self.file("delivery")
        is_s = np.asarray(rt == "supervision_session", dtype=bool)
        if not is_s.any():
            return
        if "group_id" in dlv.columns:
            grp = _str(dlv["group_id"])
        else:
            grp = np.full(len(dlv), None, dtype=object)
        has = pd.notna(grp)
        # sessions and sessions with a group id, per LA (one pass, no loop over rows per LA)
        counts = (
            pd.DataFrame({"la": las[is_s], "has": has[is_s]})
            .dropna(subset=["la"])
            .groupby("la", sort=True)["has"]
            .agg(["size", "sum"])
        )
        without = [str(la) for la in counts.index[counts["sum"] == 0]]
        partial = counts[(counts["sum"] > 0)]
        for la, n_all, n_with in zip(partial.index, partial["size"], partial["sum"], strict=True):
            lacking = is_s & ~has & (las == la)
            self.col.rows(
                f,
                lacking,
                "group_id",
                "delivery.missing_value",
                lambda i, a=int(n_all), w=int(n_with): (  # type: ignore[misc]
                    f"'group_id' must be given for every supervision_session record of LA "
                    f"{las[i]!r} once any has one ({w} of {a} have one)"
                ),
                "fill in the supervision group of each session",
            )
        per_group = any(
            ind.metric == "supervision_sessions_per_month"
            for _node, ind in self.p.logic_model.indicators()
        )
        if without and per_group:
            self.col.add(
                f,
                None,
                "group_id",
                "delivery.no_group_id",
                "supervision_session records have no group_id in LA "
                + ", ".join(without)
                + ": each such LA's sessions are counted as one supervision group, so the "
                "per-group supervision frequency is overstated where an LA ran several groups",
                "add a group_id column naming each session's supervision group",
                "warning",
            )

    def _check_links(self, dlv: pd.DataFrame, rt: np.ndarray, las: np.ndarray) -> None:
        """Records that must match other records: families' LAs, duplicates, sessions."""
        f = self.file("delivery")
        fam_la = self.fam_la
        if fam_la is None:
            fams_t = self.t.get("families")
            fam_la = (
                {}
                if fams_t is None
                else {
                    str(k): str(v)
                    for k, v in zip(_str(fams_t["family_id"]), _str(fams_t["la_id"]), strict=True)
                    if k is not None and v is not None
                }
            )
        fams = _str(dlv["family_id"])
        fl = [fam_la.get(x) if x is not None else None for x in fams]
        mism = np.array(
            [a is not None and b is not None and a != b for a, b in zip(fl, las, strict=True)],
            dtype=bool,
        )
        self.col.rows(
            f,
            mism,
            "la_id",
            "delivery.la_mismatch",
            lambda i: f"la_id must be the family's LA ({fl[i]!r}); got {las[i]!r}",
            "correct the LA or the family",
        )
        kws = _str(dlv["keyworker_id"])
        sess = _str(dlv["session_id"])
        course = _str(dlv["course"])
        day = dlv["day"].to_numpy(dtype=float, na_value=np.nan)
        date = _dates(dlv["date"])
        month = _str(dlv["month"])
        # a session's day: its number ("d3") when given, else its date ("t2024-05-01")
        day_key = np.full(len(day), None, dtype=object)
        by_day = ~np.isnan(day)
        by_date = ~by_day & ~np.isnat(date)
        day_key[by_day] = np.char.add("d", day[by_day].astype(np.int64).astype(str))
        day_key[by_date] = np.char.add("t", date[by_date].astype(str))
        keys = pd.DataFrame(
            {
                "rt": rt,
                "la": las,
                "kw": kws,
                "sess": sess,
                "course": course,
                "day": day_key,
                "month": month,
            }
        )

        def duplicated(rtype: str, cols: list[str]) -> np.ndarray:
            is_t = (keys["rt"] == rtype).to_numpy()
            part = keys.loc[is_t, cols]
            dup = part.duplicated(keep="first") & part.notna().all(axis=1)
            out = np.zeros(len(keys), dtype=bool)
            out[np.flatnonzero(is_t)[dup.to_numpy()]] = True
            return out

        dup = duplicated("training", ["la", "kw", "course", "day"])
        self.col.rows(
            f,
            dup,
            None,
            "delivery.duplicate",
            lambda i: (
                "training records must be unique per keyworker, course and day; "
                f"got a second record for keyworker {kws[i]!r}"
            ),
            "remove the duplicate row (attendance would be counted twice)",
        )
        dup = duplicated("supervision_attendance", ["la", "sess", "kw"])
        self.col.rows(
            f,
            dup,
            None,
            "delivery.duplicate",
            lambda i: (
                "supervision_attendance must be unique per session and keyworker; got keyworker "
                f"{kws[i]!r} twice in session {sess[i]!r}"
            ),
            "remove the duplicate row",
        )
        dup = duplicated("clinician_month", ["la", "month"])
        self.col.rows(
            f,
            dup,
            "month",
            "delivery.duplicate",
            lambda i: f"clinician_month must be unique per LA and month; got {month[i]!r} twice",
            "sum the FTE of clinicians in post into one record per LA and month",
        )
        is_s = keys["rt"] == "supervision_session"
        sessions = set(zip(keys.loc[is_s, "la"], keys.loc[is_s, "sess"], strict=True))
        unknown = np.array(
            [
                r == "supervision_attendance" and s is not None and (la, s) not in sessions
                for r, la, s in zip(rt, las, sess, strict=True)
            ],
            dtype=bool,
        )
        self.col.rows(
            f,
            unknown,
            "session_id",
            "delivery.unknown_session",
            lambda i: (
                "'session_id' must match a supervision_session record of the same LA; "
                f"got {sess[i]!r} in LA {las[i]!r}"
            ),
            "add the supervision_session record or fix the id",
        )
