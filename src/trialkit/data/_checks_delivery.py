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
from collections.abc import Callable, Collection, Mapping

import numpy as np
import pandas as pd

from trialkit.data._checks import _Checks, _codes, _Collector, _dates, _row_key, _str
from trialkit.data._tables import _convert_table
from trialkit.data.load import index_in, isin
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


def _per_value(
    codes: np.ndarray, uniques: np.ndarray, test: Callable[[str], bool], missing: bool = False
) -> np.ndarray:
    """``test`` decided once per distinct value and spread to the rows by their codes.

    Missing cells (code ``-1``) get ``missing``.
    """
    flags = np.empty(len(uniques) + 1, dtype=bool)
    flags[:-1] = [bool(test(u)) for u in uniques]
    flags[-1] = missing
    return flags[codes]


def _absent(codes: np.ndarray, uniques: np.ndarray, known: Collection[str]) -> np.ndarray:
    """Rows whose value is not in ``known`` (a hash lookup of the distinct values); missing: False."""
    flags = np.append(~isin(np.asarray(uniques, dtype=object), known), False)
    return np.asarray(flags[codes], dtype=bool)


def _code_of(uniques: np.ndarray, value: str) -> int:
    """Position of ``value`` among the distinct values; -2 (matching no row) when absent."""
    hit = np.flatnonzero(uniques == value)
    return int(hit[0]) if len(hit) else -2


def _repeated(keys: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rows of ``mask`` whose key an earlier row of ``mask`` has (``duplicated(keep="first")``)."""
    at = np.flatnonzero(mask)
    out = np.zeros(len(keys), dtype=bool)
    if len(at) < 2:
        return out
    _, first = np.unique(keys[at], return_index=True)
    again = np.ones(len(at), dtype=bool)
    again[first] = False
    out[at[again]] = True
    return out


def _las_codes(las_of: np.ndarray, la_uniques: np.ndarray) -> np.ndarray:
    """Codes among ``la_uniques`` of the LAs ``las_of`` (one per distinct value of a column).

    ``-1`` where the LA is unknown (None), ``-2`` where it is an LA no row names; a
    final ``-1`` for missing cells (code ``-1``).
    """
    pos = index_in(las_of, np.asarray(la_uniques, dtype=object))
    out = np.where(pd.notna(las_of), np.where(pos >= 0, pos, -2), -1)
    return np.append(out, -1).astype(np.int64)


class _DeliveryChecks(_Checks):
    fam_la: dict[str, str] | None = None
    """LA of each family (default: from the families table)."""
    delivery_columns: set[str] | None = None
    """Columns present in the delivery file (default: every column)."""

    # ------------------------------------------------------------------ delivery
    def check_delivery(self) -> None:
        """Every rule over the delivery log, columnar.

        Text columns are handled as integer codes over their distinct values
        (:func:`_codes`): a rule on a value is decided once per distinct value and
        spread to the rows, and comparisons between columns compare codes.
        """
        dlv = self.t.get("delivery")
        if dlv is None:
            return
        f = self.file("delivery")
        rt = _str(dlv["record_type"])
        rt_c, rt_u = _codes(rt)[:2]
        bad = _per_value(rt_c, rt_u, lambda x: x not in RECORD_TYPES)
        self.col.rows(
            f,
            bad,
            "record_type",
            "delivery.unknown_record_type",
            lambda i: f"'record_type' must be one of {', '.join(RECORD_TYPES)}; got {rt[i]!r}",
            "use one of the five record types",
        )
        las = _str(dlv["la_id"])
        la_c, la_u = _codes(las)[:2]
        if self.la_ids:
            unk = _absent(la_c, la_u, self.la_ids)
            self.col.rows(
                f,
                unk,
                "la_id",
                "delivery.unknown_la",
                lambda i: f"la_id must be an LA of the clusters table; got {las[i]!r}",
                "check the LA id",
            )
        kws = _str(dlv["keyworker_id"])
        kw_c, kw_u = _codes(kws)[:2]
        if self.kw_la:
            unk = _absent(kw_c, kw_u, self.kw_la)
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
            # the keyworker's LA as a code among the delivery LAs (-1 none, -2 no such row)
            kw_las = np.array([self.kw_la.get(x) for x in kw_u], dtype=object)
            kwl_c = _las_codes(kw_las, la_u)[kw_c]
            mism = (kwl_c != -1) & (la_c >= 0) & (kwl_c != la_c)
            self.col.rows(
                f,
                mism,
                "la_id",
                "delivery.la_mismatch",
                lambda i: (
                    f"la_id must be the keyworker's LA ({self.kw_la.get(kws[i])!r}); got {las[i]!r}"
                ),
                "correct the LA or the keyworker",
            )
        fams = _str(dlv["family_id"])
        fam_c, fam_u = _codes(fams)[:2]
        if self.fam_ids:
            unk = _absent(fam_c, fam_u, self.fam_ids)
            self.col.rows(
                f,
                unk,
                "family_id",
                "delivery.unknown_family",
                lambda i: f"family_id must be a family of the families table; got {fams[i]!r}",
                "check the family id",
            )
        for rtype, cols in DELIVERY_NOT_NULL.items():
            is_t = rt_c == _code_of(rt_u, rtype)
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
        badc = _per_value(*_codes(course)[:2], lambda x: x not in courses)
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
        date = _dates(dlv["date"])
        self.window("delivery", "date", date)
        month = _str(dlv["month"])
        if self.start is not None and self.end is not None:
            lo = str(self.start)[:7]
            hi = str(self.end)[:7]
            out = _per_value(*_codes(month)[:2], lambda x: not (lo <= x <= hi))
            self.col.rows(
                f,
                out,
                "month",
                "delivery.date_outside_window",
                lambda i: f"'month' must be within {lo} to {hi}; got {month[i]!r}",
                "check the month",
            )
        sess = _str(dlv["session_id"])
        sess_c, _ = _codes(sess)[:2]
        is_s = rt_c == _code_of(rt_u, "supervision_session")
        sdup = _repeated(sess_c, is_s & (sess_c >= 0))
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
        badt = _per_value(*_codes(ftp)[:2], lambda x: x not in tps)
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
        present_types = set(rt_u)
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
        self._check_links(dlv, rt, las, day, date)
        self._check_groups(dlv, is_s, las)

    def _check_groups(self, dlv: pd.DataFrame, is_s: np.ndarray, las: np.ndarray) -> None:
        """Supervision groups: all or none of an LA's sessions name their ``group_id``.

        The supervision frequency is per group (``supervision_sessions_per_month``); an
        LA whose sessions have no group id is counted as one group, with a warning
        (``delivery.no_group_id``); an LA where only some sessions have one is an error
        (``delivery.missing_value``): the sessions without one cannot be assigned.
        """
        f = self.file("delivery")
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

    def _family_las(self, fam_u: np.ndarray) -> np.ndarray:
        """The LA of each distinct delivery family (None when unknown).

        From ``fam_la`` when given, else from the families table, where, as in a
        dictionary filled row by row, the last row of a family with both ids wins.
        """
        if self.fam_la is not None:
            return np.array([self.fam_la.get(x) for x in fam_u], dtype=object)
        fams_t = self.t.get("families")
        if fams_t is None or len(fam_u) == 0:
            return np.full(len(fam_u), None, dtype=object)
        ids = _str(fams_t["family_id"])
        la = _str(fams_t["la_id"])
        id_c, id_u = _codes(ids)[:2]
        complete = np.flatnonzero((id_c >= 0) & pd.notna(la))[::-1]
        codes, last_first = np.unique(id_c[complete], return_index=True)
        row_of = np.full(len(id_u) + 1, -1, dtype=np.int64)
        row_of[codes] = complete[last_first]  # the last complete row of each family
        at = index_in(np.asarray(fam_u, dtype=object), np.asarray(id_u, dtype=object))
        rows = row_of[at]  # at == -1 picks the final -1
        out = np.full(len(fam_u), None, dtype=object)
        out[rows >= 0] = la[rows[rows >= 0]]
        return out

    def _check_links(
        self, dlv: pd.DataFrame, rt: np.ndarray, las: np.ndarray, day: np.ndarray, date: np.ndarray
    ) -> None:
        """Records that must match other records: families' LAs, duplicates, sessions."""
        f = self.file("delivery")
        rt_c, rt_u = _codes(rt)[:2]
        la_c, la_u = _codes(las)[:2]
        fams = _str(dlv["family_id"])
        fam_c, fam_u = _codes(fams)[:2]
        fl_u = self._family_las(fam_u)
        fl_c = _las_codes(fl_u, la_u)[fam_c]
        mism = (fl_c != -1) & (la_c >= 0) & (fl_c != la_c)
        self.col.rows(
            f,
            mism,
            "la_id",
            "delivery.la_mismatch",
            lambda i: f"la_id must be the family's LA ({fl_u[fam_c[i]]!r}); got {las[i]!r}",
            "correct the LA or the family",
        )
        kws = _str(dlv["keyworker_id"])
        sess = _str(dlv["session_id"])
        course = _str(dlv["course"])
        month = _str(dlv["month"])
        # a session's day: its number when given, else its date (even and odd keys)
        by_day = ~np.isnan(day)
        by_date = ~by_day & ~np.isnat(date)
        day_key = np.full(len(day), np.nan)
        day_key[by_day] = 2.0 * day[by_day]
        day_key[by_date] = 2.0 * date[by_date].astype(np.int64) + 1.0

        def duplicated(rtype: str, *cols: np.ndarray) -> np.ndarray:
            key, incomplete = _row_key(*cols)
            return _repeated(key, (rt_c == _code_of(rt_u, rtype)) & ~incomplete)

        dup = duplicated("training", las, kws, course, day_key)
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
        dup = duplicated("supervision_attendance", las, sess, kws)
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
        dup = duplicated("clinician_month", las, month)
        self.col.rows(
            f,
            dup,
            "month",
            "delivery.duplicate",
            lambda i: f"clinician_month must be unique per LA and month; got {month[i]!r} twice",
            "sum the FTE of clinicians in post into one record per LA and month",
        )
        # (LA, session) pairs, missing values included, as the sessions recorded
        pair, _ = _row_key(las, sess)
        is_s = rt_c == _code_of(rt_u, "supervision_session")
        sess_c, _ = _codes(sess)[:2]
        unknown = (
            (rt_c == _code_of(rt_u, "supervision_attendance"))
            & (sess_c >= 0)
            & ~np.isin(pair, pair[is_s])
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
