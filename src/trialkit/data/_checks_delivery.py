"""Rules for the delivery log."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trialkit.data._checks import _Checks, _dates, _str
from trialkit.data.schema import COURSES, DELIVERY_NOT_NULL, RECORD_TYPES


class _DeliveryChecks(_Checks):
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
                self.col.rows(
                    f,
                    nul,
                    c,
                    "delivery.missing_value",
                    lambda i, cc=c, r=rtype: f"'{cc}' must be given for {r} records",  # type: ignore[misc]
                    "fill in the value",
                )
        course = _str(dlv["course"])
        badc = np.array([x is not None and x not in COURSES for x in course], dtype=bool)
        self.col.rows(
            f,
            badc,
            "course",
            "delivery.invalid_value",
            lambda i: f"'course' must be cpd or foundation; got {course[i]!r}",
            "use cpd or foundation",
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
        need = _metric_record_types()
        for _node, ind in self.p.logic_model.indicators():
            rtn = need.get(ind.metric)
            if rtn and rtn not in present_types:
                self.col.add(
                    f,
                    None,
                    "record_type",
                    "delivery.record_type_missing",
                    f"indicator '{ind.id}' needs '{rtn}' records; none found",
                    "add the delivery records or expect this indicator to be missing",
                    "warning",
                )


def _metric_record_types() -> dict[str, str]:
    return {
        "training_days_delivered": "training",
        "share_completing_training": "training",
        "supervision_sessions_per_month": "supervision_session",
        "share_sessions_with_genogram": "supervision_session",
        "supervision_attendance": "supervision_attendance",
        "clinician_fte_months": "clinician_month",
        "share_families_with_feedback": "feedback",
    }
