"""Rules for the measurements table.

Identifiers, timepoints, items, scoring and missing-data patterns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trialkit.data import scoring
from trialkit.data._checks import _Checks, _dates, _row_key, _str
from trialkit.data.load import STRING, to_object
from trialkit.data.load import isin as _isin
from trialkit.data.missingness import missing_outcome_shares, missingness_flags
from trialkit.data.schema import LEVELS
from trialkit.data.scoring import MAX_ITEMS, item_columns


class _MeasurementChecks(_Checks):
    # ------------------------------------------------------------------ measurements
    def check_measurements(self) -> pd.DataFrame:
        empty = pd.DataFrame(
            {
                "outcome_id": pd.Series(dtype=object),
                "entity_id": pd.Series(dtype=object),
                "level": pd.Series(dtype=object),
                "timepoint": pd.Series(dtype=object),
                "value": pd.Series(dtype=float),
                "n_answered": pd.Series(dtype="int64"),
            }
        )
        m = self.t.get("measurements")
        if m is None:
            return empty
        f = self.file("measurements")
        n = len(m)
        level = m["level"].astype(STRING)
        lv = to_object(level)
        ent_o = to_object(m["entity_id"])
        tp_o = to_object(m["timepoint"])
        inst_o = to_object(m["instrument"])
        badl = (
            np.array([x is not None and x not in LEVELS for x in lv], dtype=bool)
            if n < 0
            else (
                ~_isin(lv, LEVELS) & np.asarray(level.notna().to_numpy(dtype=bool, na_value=False))
            )
        )
        self.col.rows(
            f,
            badl,
            "level",
            "measurements.invalid_value",
            lambda i: f"'level' must be family or keyworker; got {lv[i]!r}",
            "use family or keyworker",
        )
        ent = m["entity_id"].astype(STRING)
        is_fam = lv == "family"
        is_kw = lv == "keyworker"
        if "families" in self.t:
            known = np.asarray(_isin(ent, self.fam_ids))
            unk = is_fam & ~known & np.asarray(ent.notna().to_numpy(dtype=bool, na_value=False))
            self.col.rows(
                f,
                unk,
                "entity_id",
                "measurements.unknown_entity",
                lambda i: (
                    f"entity_id of a family measurement must be a family_id; got {ent.iloc[i]!r}"
                ),
                "check the id (or the level column)",
            )
        if "keyworkers" in self.t:
            known = np.asarray(_isin(ent, self.kw_la))
            unk = is_kw & ~known & np.asarray(ent.notna().to_numpy(dtype=bool, na_value=False))
            self.col.rows(
                f,
                unk,
                "entity_id",
                "measurements.unknown_entity",
                lambda i: (
                    f"entity_id of a keyworker measurement must be a keyworker_id; got {ent.iloc[i]!r}"
                ),
                "check the id (or the level column)",
            )
        inst = m["instrument"].astype(STRING)
        known_inst = list(scoring.INSTRUMENTS) + list(self.custom)
        badi = ~_isin(inst_o, known_inst) & np.asarray(
            inst.notna().to_numpy(dtype=bool, na_value=False)
        )
        self.col.rows(
            f,
            badi,
            "instrument",
            "measurements.unknown_instrument",
            lambda i: f"'instrument' must be one of {', '.join(known_inst)}; got {inst.iloc[i]!r}",
            "use a built-in instrument id or declare a custom instrument",
        )
        tp = m["timepoint"].astype(STRING)
        tps = list(self.p.trial.timepoints)
        badt = ~_isin(tp_o, tps) & np.asarray(tp.notna().to_numpy(dtype=bool, na_value=False))
        self.col.rows(
            f,
            badt,
            "timepoint",
            "measurements.unknown_timepoint",
            lambda i: f"'timepoint' must be one of {', '.join(tps)}; got {tp.iloc[i]!r}",
            "use the protocol's timepoints",
        )
        key, incomplete = _row_key(ent_o, lv, inst_o, tp_o)
        dup = pd.Index(key).duplicated(keep="first") & ~incomplete
        self.col.rows(
            f,
            dup,
            "timepoint",
            "measurements.duplicate",
            lambda i: (
                f"one measurement per entity, instrument and timepoint; got {ent.iloc[i]!r} "
                f"{inst.iloc[i]} {tp.iloc[i]} again"
            ),
            "remove the repeated row or fix its timepoint",
        )
        d = _dates(m["date"])
        self.window("measurements", "date", d)
        # dates versus consent / withdrawal / leaving
        if "families" in self.t and is_fam.any():
            fm = self.t["families"]
            fidx = pd.Index(_str(fm["family_id"])).drop_duplicates()
            fm1 = fm.drop_duplicates("family_id")
            pos = fidx.get_indexer(ent_o)
            cons = _dates(fm1["consent_date"])
            wd = _dates(fm1["withdrawal_date"])
            ok = (pos >= 0) & is_fam
            cc = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
            ww = cc.copy()
            cc[ok] = cons[pos[ok]]
            ww[ok] = wd[pos[ok]]
            before = ~np.isnat(d) & ~np.isnat(cc) & (d < cc)
            self.col.rows(
                f,
                before,
                "date",
                "measurements.before_consent",
                lambda i: f"measurement date must not be before consent ({cc[i]}); got {d[i]}",
                "data collected before consent cannot be used; check the date",
            )
            # a consent date that could not be read was reported with families: not again here
            cbad = self.col.bad_cells("families", "consent_date", len(fm))
            cbad1 = np.zeros(n, dtype=bool)
            cbad1[ok] = cbad[fm1.index.to_numpy()[pos[ok]]]
            nocons = ok & np.isnat(cc) & ~cbad1
            if ("families", "consent_date") in self.col.unreadable:
                nocons[:] = False
            self.col.rows(
                f,
                nocons,
                "entity_id",
                "measurements.without_consent",
                lambda i: f"family {ent.iloc[i]!r} has a measurement but no consent_date",
                "record the consent date or remove the measurement",
            )
            after = ~np.isnat(d) & ~np.isnat(ww) & (d > ww)
            self.col.rows(
                f,
                after,
                "date",
                "measurements.after_withdrawal",
                lambda i: f"measurement dated {d[i]} after the family withdrew ({ww[i]})",
                "check whether the family withdrew from data collection",
                "warning",
            )
        self.check_baseline_order(m, d)
        # items
        items = item_columns(MAX_ITEMS)
        present_cols = [c for c in items if c in m.columns]
        last = np.zeros(n, dtype=np.int64)
        mats: dict[int, np.ndarray] = {}
        for j, c in enumerate(items, start=1):
            if c in m.columns:
                v = m[c].to_numpy(dtype=float, na_value=np.nan)
                mats[j] = v
                last = np.where(~np.isnan(v), j, last)
        del present_cols
        scores_out: list[pd.DataFrame] = []
        inst_arr = inst_o
        codes, uniq = pd.factorize(inst_arr, use_na_sentinel=True)
        total = m["total"].to_numpy(dtype=float, na_value=np.nan)
        for k, name in enumerate(uniq):
            if name not in known_inst:
                continue
            ins = scoring.entered_instrument(
                name,
                custom=self.custom,
                score15_reverse=self.score15_reverse,
                cbi_coding=self.p.scoring.cbi_coding,
            )
            rows = np.flatnonzero(codes == k)
            extra = last[rows] > ins.n_items
            self.col.rows(
                f,
                rows[extra],
                f"item_{ins.n_items + 1}",
                "measurements.wrong_item_count",
                lambda i, ii=ins: (  # type: ignore[misc]
                    f"{ii.id} has {ii.n_items} items; got a response in item_{last[i]}"
                ),
                "check the instrument column or move the responses",
            )
            if any(j not in mats for j in range(1, ins.n_items + 1)) and not ins.total_given:
                miss = [f"item_{j}" for j in range(1, ins.n_items + 1) if j not in mats]
                self.col.add(
                    f,
                    None,
                    miss[0],
                    "measurements.wrong_item_count",
                    f"{ins.id} has {ins.n_items} items; columns {', '.join(miss[:5])}"
                    f"{'…' if len(miss) > 5 else ''} are absent",
                    "add the item columns",
                )
            x = np.full((len(rows), ins.n_items), np.nan)
            for j in range(1, ins.n_items + 1):
                if j in mats:
                    x[:, j - 1] = mats[j][rows]
            present = ~np.isnan(x)
            bad = scoring.invalid_items(x, ins)
            if bad.any():
                rr, cc2 = np.nonzero(bad)
                for j in np.unique(cc2):
                    sel = rows[rr[cc2 == j]]
                    self.col.rows(
                        f,
                        sel,
                        f"item_{j + 1}",
                        scoring.ITEM_OUT_OF_RANGE,
                        lambda i, jj=j, ii=ins: scoring.item_message(
                            ii, jj + 1, float(mats[jj + 1][i])
                        ),  # type: ignore[misc]
                        scoring.item_hint(ins, mats[j + 1][sel]),
                    )
                x[bad] = np.nan
            tot = total[rows]
            if ins.total_given and ins.total_range:
                badt2 = scoring.invalid_totals(tot, ins)
                self.col.rows(
                    f,
                    rows[badt2],
                    "total",
                    "measurements.total_out_of_range",
                    lambda i, ii=ins: scoring.total_message(ii, float(total[i])),  # type: ignore[misc]
                    "correct the total",
                )
                tot = np.where(badt2, np.nan, tot)
            elif (~np.isnan(tot)).any():
                self.col.rows(
                    f,
                    rows[~np.isnan(tot)],
                    "total",
                    "measurements.total_ignored",
                    lambda i, ii=ins: (  # type: ignore[misc]
                        f"{ii.id} scores are computed from the items; the given total is ignored"
                    ),
                    "leave 'total' empty except for ORS/SRS",
                    "warning",
                )
            x, ins = scoring.to_published_scale(x, ins)
            res = scoring.score_matrix(x, ins)
            if ins.total_given and "total" in res:
                res["total"] = np.where(np.isnan(res["total"]), tot, res["total"])
            noresp = (present.sum(axis=1) == 0) & np.isnan(tot)
            self.col.rows(
                f,
                rows[noresp],
                "item_1",
                "measurements.no_responses",
                lambda i: "measurement has no item responses and no total",
                "remove the row or enter the responses",
                "warning",
            )
            for oc in self.p.outcomes:
                if oc.instrument != name and not (oc.instrument == "custom" and oc.score == name):
                    continue
                scale = oc.score if oc.instrument != "custom" else "total"
                if scale not in res:
                    self.col.add(
                        f,
                        None,
                        "instrument",
                        "measurements.unknown_scale",
                        f"outcome '{oc.id}' asks for scale '{scale}' of {name}, which has "
                        f"{', '.join(ins.scale_names)}",
                        "fix the outcome's score in the protocol",
                    )
                    continue
                lvl_ok = lv[rows] == oc.level.value
                sel = rows[lvl_ok]
                scores_out.append(
                    pd.DataFrame(
                        {
                            "outcome_id": oc.id,
                            "entity_id": ent_o[sel],
                            "level": oc.level.value,
                            "timepoint": tp_o[sel],
                            "value": res[scale][lvl_ok],
                            "n_answered": res["n_answered"][lvl_ok].astype("int64"),
                        }
                    )
                )
        if not scores_out:
            return empty
        sc = pd.concat(scores_out, ignore_index=True)
        sc["entity_id"] = sc["entity_id"].astype(object)
        for c in ("outcome_id", "level", "timepoint"):
            sc[c] = sc[c].astype("category")
        sc = sc[sc["timepoint"].notna() & sc["entity_id"].notna()]
        sc = sc.drop_duplicates(["outcome_id", "entity_id", "timepoint"], keep="first").reset_index(
            drop=True
        )
        return sc

    # ------------------------------------------------------------------ timepoint order
    def check_baseline_order(self, m: pd.DataFrame, d: np.ndarray) -> None:
        """A follow-up measurement must not be dated before the same entity's baseline.

        Baseline is the protocol's first timepoint; the comparison is within one
        entity, level and instrument.
        """
        tps = list(self.p.trial.timepoints)
        if len(tps) < 2 or ("measurements", "date") in self.col.unreadable:
            return
        key, incomplete = _row_key(m["entity_id"], m["level"], m["instrument"])
        tp = to_object(m["timepoint"])
        is_base = (tp == tps[0]) & ~np.isnat(d) & ~incomplete
        if not is_base.any():
            return
        base_key = pd.Index(key[is_base])
        first = ~base_key.duplicated(keep="first")  # an entity's first dated baseline row
        base_date = d[is_base][first]
        pos = base_key[first].get_indexer(key)
        bd = np.where(pos >= 0, base_date[np.maximum(pos, 0)], np.datetime64("NaT"))
        bd[incomplete] = np.datetime64("NaT")
        follow = np.asarray(_isin(m["timepoint"], tps[1:]))
        early = follow & ~np.isnat(d) & ~np.isnat(bd) & (d < bd)
        self.col.rows(
            self.file("measurements"),
            early,
            "date",
            "measurements.before_baseline",
            lambda i: (
                f"a '{tp[i]}' measurement must not be dated before the same entity's "
                f"'{tps[0]}' ({bd[i]}); got {d[i]}"
            ),
            "check the date and the timepoint label (swapped timepoints or a typo in the year?)",
        )

    # ------------------------------------------------------------------ follow-up per LA
    def check_follow_up(self) -> None:
        """Warn for each LA with no measurement at any follow-up timepoint.

        Follow-up timepoints are the protocol's timepoints after the first.  Entities
        are placed in their LA through the families and keyworkers tables.
        """
        m = self.t.get("measurements")
        tps = list(self.p.trial.timepoints)
        if m is None or not self.la_ids or len(tps) < 2 or self.col.broken:
            return  # entities cannot all be placed in their LA: say nothing rather than guess
        ents = to_object(m["entity_id"])
        lvls = to_object(m["level"])
        follow = np.asarray(_isin(m["timepoint"], tps[1:]))
        seen: set[str] = set()
        for table, id_col, level in (
            ("keyworkers", "keyworker_id", "keyworker"),
            ("families", "family_id", "family"),
        ):
            frame = self.t.get(table)
            if frame is None:
                continue
            ids, las = _str(frame[id_col]), _str(frame["la_id"])
            placed = pd.notna(ids) & pd.notna(las)
            la_of = pd.Series(las[placed], index=pd.Index(ids[placed], dtype=object))
            la_of = la_of[~la_of.index.duplicated(keep="first")]  # an entity's first row places it
            pos = la_of.index.get_indexer(ents[follow & (lvls == level)])
            seen.update(la_of.to_numpy()[pos[pos >= 0]])
        for la in sorted(self.la_ids - seen):
            self.col.add(
                self.file("measurements"),
                None,
                "timepoint",
                "measurements.cluster_without_follow_up",
                f"LA {la!r} has no measurement at any follow-up timepoint "
                f"({', '.join(tps[1:])}): it adds nothing to the comparison of arms",
                "check whether follow-up data were collected in this LA and are missing "
                "from the file",
                "warning",
            )

    # ------------------------------------------------------------------ missing data
    def missing_patterns(self, scores: pd.DataFrame) -> None:
        """Missing-data warnings from :func:`trialkit.data.missingness.missing_outcome_shares`.

        The analysis stage reports the same shares and flags (one computation).
        """
        alloc = self.t.get("allocation")
        if alloc is None or alloc.empty or "families" not in self.t:
            return
        if self.col.broken & {"families", "keyworkers", "measurements"}:
            return  # already reported: every pattern would be an artefact of the missing column
        f = self.file("measurements")
        hints = {
            "measurements.outcome_missing": "check the instrument and timepoint labels",
            "measurements.missing_pattern": "check collection; the analysis assumes data missing "
            "at random given covariates",
            "measurements.differential_missingness": "consider a sensitivity analysis for "
            "missing data",
        }
        flags = missingness_flags(missing_outcome_shares(self.p, self.t, scores))
        for code, message in zip(flags["code"], flags["message"], strict=True):
            self.col.add(f, None, "instrument", str(code), str(message), hints[code], "warning")
        m = self.t.get("measurements")
        if m is not None and len(m):
            items = [c for c in item_columns(MAX_ITEMS) if c in m.columns]
            if items:
                part = scores[scores["value"].isna()]
                if len(part):
                    self.col.add(
                        f,
                        None,
                        None,
                        "measurements.score_missing",
                        f"{len(part)} outcome measurement(s) have too few items answered to be "
                        "scored under the prorating rules",
                        "see docs/scoring.md (prorating)",
                        "warning",
                    )
