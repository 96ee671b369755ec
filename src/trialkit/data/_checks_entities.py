"""Rules for the clusters, keyworkers and families tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trialkit.data._checks import _Checks, _codes, _dates, _first_seen, _spread, _str
from trialkit.data.load import isin
from trialkit.data.schema import ROLES


class _EntityChecks(_Checks):
    # ------------------------------------------------------------------ clusters
    def check_clusters(self) -> None:
        c = self.t.get("clusters")
        if c is None:
            return
        f = self.file("clusters")
        ids = _str(c["la_id"])
        dup = pd.Series(ids).duplicated(keep="first").to_numpy() & (ids != None)  # noqa: E711
        self.col.rows(
            f,
            dup,
            "la_id",
            "clusters.duplicate_id",
            lambda i: f"la_id must be unique; got {ids[i]!r} again",
            "remove or rename the duplicate LA",
        )
        self.la_ids = {x for x in ids if x is not None}
        for cov in self.p.data.covariates:
            if cov.level.value != "la":
                continue
            if cov.name not in c.columns:
                self.col.add(
                    f,
                    None,
                    cov.name,
                    "clusters.missing_covariate",
                    f"covariate '{cov.name}' declared in the protocol must be a column of {f}",
                    "add the column or remove the covariate from the protocol",
                )
                continue
            v = c[cov.name]
            if cov.type == "categorical" and cov.levels:
                vals = _str(v)
                bad = np.array([x is not None and x not in cov.levels for x in vals], dtype=bool)
                self.col.rows(
                    f,
                    bad,
                    cov.name,
                    "clusters.invalid_level",
                    lambda i, vv=vals, cv=cov: (  # type: ignore[misc]
                        f"'{cv.name}' must be one of {', '.join(cv.levels)}; got {vv[i]!r}"
                    ),
                    "use the levels declared in the protocol",
                )
            nul = ~np.asarray(v.notna().to_numpy(dtype=bool, na_value=False))
            self.col.rows(
                f,
                nul,
                cov.name,
                "clusters.missing_covariate_value",
                lambda i, cv=cov: f"'{cv.name}' is missing for {ids[i]!r}",  # type: ignore[misc]
                "LA covariates are needed for adjusted analyses",
                "warning",
            )
        alloc = self.t["allocation"]
        if not alloc.empty:
            acl = set(_str(alloc["cluster"]))
            absent = np.array([x is not None and x not in acl for x in ids], dtype=bool)
            self.col.rows(
                f,
                absent,
                "la_id",
                "clusters.not_in_allocation",
                lambda i: f"LA {ids[i]!r} must appear in the allocation",
                "check the LA id or the allocation directory",
            )
            for x in sorted(acl - self.la_ids):
                self.col.add(
                    self.f.get("allocation", "allocation.csv"),
                    None,
                    "cluster",
                    "allocation.cluster_without_data",
                    f"randomised LA {x!r} has no row in {f}: it is counted as lost in the flow",
                    "add the LA to clusters if it took part",
                    "warning",
                )

    # ------------------------------------------------------------------ keyworkers
    def check_keyworkers(self) -> None:
        k = self.t.get("keyworkers")
        if k is None:
            return
        f = self.file("keyworkers")
        ids = _str(k["keyworker_id"])
        las = _str(k["la_id"])
        s = pd.DataFrame({"id": ids, "la": las})
        first_la = s.groupby("id", sort=False)["la"].transform("first").to_numpy()
        dup = s.duplicated("id", keep="first").to_numpy() & (ids != None)  # noqa: E711
        other = dup & (first_la != las)
        self.col.rows(
            f,
            other,
            "la_id",
            "keyworkers.in_two_las",
            lambda i: (
                f"keyworker {ids[i]!r} must belong to one LA; listed in {first_la[i]!r} and {las[i]!r}"
            ),
            "a keyworker who moved LA needs a new id; keep one row per keyworker",
        )
        self.col.rows(
            f,
            dup & ~other,
            "keyworker_id",
            "keyworkers.duplicate_id",
            lambda i: f"keyworker_id must be unique; got {ids[i]!r} again",
            "remove the duplicate row",
        )
        if self.la_ids:
            unk = np.array([x is not None and x not in self.la_ids for x in las], dtype=bool)
            self.col.rows(
                f,
                unk,
                "la_id",
                "keyworkers.unknown_la",
                lambda i: f"la_id must be an LA of the clusters table; got {las[i]!r}",
                "check the LA id",
            )
        roles = _str(k["role"])
        bad = np.array([r is not None and r not in ROLES for r in roles], dtype=bool)
        self.col.rows(
            f,
            bad,
            "role",
            "keyworkers.invalid_value",
            lambda i: f"'role' must be one of {', '.join(ROLES)}; got {roles[i]!r}",
            "use keyworker or champion",
        )
        sd = _dates(k["start_date"])
        ld = _dates(k["leave_date"])
        order = ~np.isnat(sd) & ~np.isnat(ld) & (ld < sd)
        self.col.rows(
            f,
            order,
            "leave_date",
            "keyworkers.dates_out_of_order",
            lambda i: f"leave_date must not be before start_date ({sd[i]}); got {ld[i]}",
            "check both dates",
        )
        if self.end is not None:
            late = ~np.isnat(sd) & (sd > self.end)
            self.col.rows(
                f,
                late,
                "start_date",
                "keyworkers.date_outside_window",
                lambda i: f"start_date must be on or before the trial end {self.end}; got {sd[i]}",
                "keyworkers must start before the trial ends",
            )
        if self.start is not None:
            early = ~np.isnat(ld) & (ld < self.start)
            self.col.rows(
                f,
                early,
                "leave_date",
                "keyworkers.left_before_start",
                lambda i: f"keyworker left ({ld[i]}) before the trial start {self.start}",
                "check the date or remove the keyworker",
                "warning",
            )
        ye = k["years_experience"].to_numpy(dtype=float, na_value=np.nan)
        neg = ~np.isnan(ye) & (ye < 0)
        self.col.rows(
            f,
            neg,
            "years_experience",
            "keyworkers.invalid_value",
            lambda i: f"'years_experience' must be ≥ 0; got {ye[i]}",
            "correct the value",
        )
        # first row of each keyworker wins (a second LA is reported above)
        placed = np.flatnonzero(pd.notna(ids) & pd.notna(las))
        first = placed[_first_seen(_codes(k["keyworker_id"])[0][placed])]
        self.kw_la = {str(a): str(b) for a, b in zip(ids[first], las[first], strict=True)}

    # ------------------------------------------------------------------ families
    def check_families(self) -> None:
        fm = self.t.get("families")
        if fm is None:
            return
        f = self.file("families")
        id_c, id_u, ids = _codes(fm["family_id"])
        kw_c, kw_u, kws = _codes(fm["keyworker_id"])
        la_c, la_u, las = _codes(fm["la_id"])
        dup = ~_first_seen(id_c + 1, len(id_u) + 1) & (id_c >= 0)
        self.col.rows(
            f,
            dup,
            "family_id",
            "families.duplicate_id",
            lambda i: f"family_id must be unique; got {ids[i]!r} again",
            "remove the duplicate row",
        )
        self.fam_ids = set(id_u.tolist())
        given_kw = kw_c >= 0
        given_la = la_c >= 0
        if self.la_ids:
            unk = given_la & ~isin(las, self.la_ids)
            self.col.rows(
                f,
                unk,
                "la_id",
                "families.unknown_la",
                lambda i: f"la_id must be an LA of the clusters table; got {las[i]!r}",
                "check the LA id",
            )
        if "keyworkers" in self.t:
            # each distinct keyworker looked up once; LAs compared by their codes
            kw_la_u = np.array([self.kw_la.get(x) for x in kw_u], dtype=object)
            kwl = _spread(kw_la_u, kw_c, None)
            known = _spread(kw_la_u != None, kw_c)  # noqa: E711
            la_code = {v: i for i, v in enumerate(la_u.tolist())}
            kwl_c = _spread(
                np.array([la_code.get(v, -2) for v in kw_la_u], dtype=np.int64), kw_c, -2
            )
            unk = given_kw & ~known
            self.col.rows(
                f,
                unk,
                "keyworker_id",
                "families.unknown_keyworker",
                lambda i: (
                    f"keyworker_id must be a keyworker of the keyworkers table; got {kws[i]!r}"
                ),
                "check the keyworker id",
            )
            other = known & given_la & (kwl_c != la_c)
            self.col.rows(
                f,
                other,
                "la_id",
                "families.keyworker_in_other_la",
                lambda i: f"family's LA must be its keyworker's LA ({kwl[i]!r}); got {las[i]!r}",
                "correct the family's LA or keyworker",
            )
        r = _dates(fm["referral_date"])
        c = _dates(fm["consent_date"])
        w = _dates(fm["withdrawal_date"])
        o1 = ~np.isnat(r) & ~np.isnat(c) & (c < r)
        self.col.rows(
            f,
            o1,
            "consent_date",
            "families.dates_out_of_order",
            lambda i: f"consent_date must not be before referral_date ({r[i]}); got {c[i]}",
            "check the dates",
        )
        base = np.where(np.isnat(c), r, c)
        o2 = ~np.isnat(base) & ~np.isnat(w) & (w < base)
        self.col.rows(
            f,
            o2,
            "withdrawal_date",
            "families.dates_out_of_order",
            lambda i: (
                f"withdrawal_date must not be before consent/referral ({base[i]}); got {w[i]}"
            ),
            "check the dates",
        )
        self.window("families", "consent_date", c)
        self.window("families", "withdrawal_date", w)
        self.window("families", "referral_date", r, only_after_end=True)
        reason = _str(fm["withdrawal_reason"])
        given_reason = reason != None  # noqa: E711
        nor = ~np.isnat(w) & ~given_reason
        self.col.rows(
            f,
            nor,
            "withdrawal_reason",
            "families.withdrawal_without_reason",
            lambda i: "withdrawal_reason should be given when withdrawal_date is set",
            "record why the family withdrew (CONSORT reports reasons)",
            "warning",
        )
        nod = np.isnat(w) & given_reason
        self.col.rows(
            f,
            nod,
            "withdrawal_date",
            "families.reason_without_date",
            lambda i: f"withdrawal_date should be given with reason {reason[i]!r}",
            "add the withdrawal date",
            "warning",
        )
