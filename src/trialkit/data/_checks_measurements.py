"""Rules for the measurements table.

Identifiers, timepoints, items, scoring and missing-data patterns.

The rules are columnar: each text column is numbered once (its distinct
values, :func:`trialkit.data._checks._codes`), a question about the rows is
asked once per distinct value and spread to the rows, and keys of several
columns are integers.  Item responses are read one instrument at a time, in
blocks of rows: the block's responses are gathered from the pyarrow columns
(only the rows and items the instrument has), checked with
:func:`trialkit.data.scoring.invalid_items` and scored with
:func:`trialkit.data.scoring.score_matrix`.  Blocks keep the working matrices
small (a million rows of 47 items would be 376 MB per temporary); every rule
works row by row, so the results are those of one pass over the whole table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from trialkit.data import scoring
from trialkit.data._checks import _Checks, _codes, _combine, _dates, _first_seen, _spread
from trialkit.data.load import index_in
from trialkit.data.load import isin as _isin
from trialkit.data.missingness import missing_outcome_shares, missingness_flags
from trialkit.data.schema import LEVELS
from trialkit.data.scoring import MAX_ITEMS, item_columns

BLOCK_CELLS = 1 << 18
"""Item cells per block of rows (2 MB of float64 per working matrix)."""


@dataclass(frozen=True, slots=True)
class ScoredRows:
    """The scores of one instrument's rows.

    Attributes
    ----------
    name : str
        Instrument id as written in the ``instrument`` column.
    rows : ndarray of int64
        0-based rows of the measurements table, ascending.
    scales : dict of str to ndarray
        ``n_answered`` and the scales the protocol's outcomes ask for, one value
        per row.
    names : tuple of str
        Every scale of the instrument.
    """

    name: str
    rows: np.ndarray
    scales: dict[str, np.ndarray]
    names: tuple[str, ...]


def float_column(s: pd.Series) -> pa.ChunkedArray:
    """A numeric column as pyarrow float64 (null or NaN for missing)."""
    data = getattr(s.array, "_pa_array", None)
    if isinstance(data, pa.ChunkedArray) and pa.types.is_float64(data.type):
        return data
    return pa.chunked_array([pa.array(s.to_numpy(dtype=float, na_value=np.nan))])


def _floats(col: pa.ChunkedArray) -> np.ndarray:
    """float64 values of a pyarrow column, NaN for missing."""
    if col.num_chunks == 0:
        return np.empty(0, dtype=float)
    return np.asarray(col.to_numpy(), dtype=float)


def _with_scales(instrument: scoring.Instrument, wanted: set[str]) -> scoring.Instrument:
    """The instrument with only the ``wanted`` scales and those they are made of.

    Each scale is scored on its own (a sum of scales adds scales scored before it;
    the SWEMWBS metric converts the raw score), so the scores of the scales kept are
    those of the whole instrument.
    """
    need = set(wanted)
    if instrument.id == "SWEMWBS" and "metric" in need:
        need.add("raw")
    for sc in reversed(instrument.scales):  # a sum of scales comes after its parts
        if sc.name in need and sc.method == "sum_of_scales":
            need.update(sc.of_scales)
    return replace(instrument, scales=tuple(sc for sc in instrument.scales if sc.name in need))


def _gather(table: pa.Table, rows: np.ndarray) -> list[pa.ChunkedArray]:
    """The columns of ``table`` at ``rows`` (ascending): a slice when they are consecutive."""
    lo = int(rows[0])
    if int(rows[-1]) - lo + 1 == len(rows):
        return [col.slice(lo, len(rows)) for col in table.columns]
    return table.take(pa.array(rows)).columns


def _blocks(n: int, step: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks of at most ``step`` rows (one when ``n`` is 0).

    No block has a single row unless ``n`` is 1: numpy sums the rows of a one-row
    matrix in another order than those of a taller one, which can change the last
    bit of a sum of fractions, so a lone last row joins the block before it.
    """
    cuts = list(range(0, n, step)) + [n]
    if len(cuts) > 2 and cuts[-1] - cuts[-2] == 1:
        del cuts[-2]
    if n == 0:
        cuts = [0, 0]
    return list(zip(cuts[:-1], cuts[1:], strict=True))


class _ItemChecks(_Checks):
    def _responses_beyond(
        self, columns: dict[int, pa.ChunkedArray], n_items_u: np.ndarray, codes: np.ndarray
    ) -> np.ndarray | None:
        """Per row, the last item answered beyond its instrument's items (0: none).

        ``n_items_u`` holds the number of items of each distinct instrument (more
        than any item for an unknown one), ``codes`` the rows' instruments.  None
        when no row has such an answer.  Validity bitmaps are counted first
        (cheap); a column is read only when it may hold such an answer.
        """
        last: np.ndarray | None = None
        short: tuple[bytes, np.ndarray, pa.ChunkedArray] | None = None
        for j, col in columns.items():
            short_u = n_items_u < j  # instruments for which item j is one too many
            if not short_u.any():
                continue
            if short is None or short[0] != short_u.tobytes():
                mask = _spread(short_u, codes, False)
                short = (short_u.tobytes(), mask, pa.chunked_array([pa.array(mask)]))
            _, mask, mask_pa = short
            if not pc.sum(pc.and_(pc.is_valid(col), mask_pa)).as_py():
                continue
            hit = ~np.isnan(_floats(col)) & mask
            if hit.any():
                if last is None:
                    last = np.zeros(len(codes), dtype=np.int16)
                last[hit] = j  # columns in increasing order: the last one wins
        return last

    def check_items(
        self,
        m: pd.DataFrame,
        file: str,
        inst_codes: np.ndarray,
        inst_uniques: np.ndarray,
        known: Sequence[str],
    ) -> list[ScoredRows]:
        """Item, total and response rules of every instrument; its scores.

        Instruments come in order of first appearance in the table; each
        reports its problems in the order wrong item count, absent item columns,
        items out of range, totals, rows without responses.
        """
        columns = {
            j: float_column(m[c])
            for j, c in enumerate(item_columns(MAX_ITEMS), 1)
            if c in m.columns
        }
        instruments = {
            str(name): scoring.entered_instrument(
                str(name),
                custom=self.custom,
                score15_reverse=self.score15_reverse,
                cbi_coding=self.p.scoring.cbi_coding,
            )
            for name in inst_uniques
            if name in known
        }
        n_items_u = np.array(
            [instruments[n].n_items if n in instruments else MAX_ITEMS + 1 for n in inst_uniques],
            dtype=np.int16,
        )
        last = self._responses_beyond(columns, n_items_u, inst_codes)
        total = float_column(m["total"])
        out: list[ScoredRows] = []
        for k, name in enumerate(inst_uniques):
            ins = instruments.get(str(name))
            if ins is None:
                continue
            rows = np.flatnonzero(inst_codes == k)
            out.append(self._check_instrument(file, ins, str(name), rows, columns, total, last))
        return out

    def _check_instrument(
        self,
        f: str,
        ins: scoring.Instrument,
        name: str,
        rows: np.ndarray,
        columns: dict[int, pa.ChunkedArray],
        total: pa.ChunkedArray,
        last: np.ndarray | None,
    ) -> ScoredRows:
        if last is not None:
            extra = rows[last[rows] > 0]
            self.col.rows(
                f,
                extra,
                f"item_{ins.n_items + 1}",
                "measurements.wrong_item_count",
                lambda i: f"{ins.id} has {ins.n_items} items; got a response in item_{last[i]}",
                "check the instrument column or move the responses",
            )
        have = [j for j in range(1, ins.n_items + 1) if j in columns]
        if len(have) < ins.n_items and not ins.total_given:
            miss = [f"item_{j}" for j in range(1, ins.n_items + 1) if j not in columns]
            self.col.add(
                f,
                None,
                miss[0],
                "measurements.wrong_item_count",
                f"{ins.id} has {ins.n_items} items; columns {', '.join(miss[:5])}"
                f"{'…' if len(miss) > 5 else ''} are absent",
                "add the item columns",
            )
        wanted = {
            oc.score if oc.instrument != "custom" else "total"
            for oc in self.p.outcomes
            if oc.instrument == name or (oc.instrument == "custom" and oc.score == name)
        }
        scales, names, answered_any, bad_rows, bad_values = self._score_blocks(
            ins, rows, columns, have, wanted
        )
        for j in sorted(bad_rows):
            sel = np.concatenate(bad_rows[j])
            vals = np.concatenate(bad_values[j])
            self.col.rows(
                f,
                sel,
                f"item_{j}",
                scoring.ITEM_OUT_OF_RANGE,
                lambda i, jj=j, s=sel, v=vals: scoring.item_message(  # type: ignore[misc]
                    ins, jj, float(v[np.searchsorted(s, i)])
                ),
                scoring.item_hint(ins, vals),
            )
        tot = (
            _floats(_gather(pa.table([total], names=["total"]), rows)[0])
            if len(rows)
            else np.empty(0)
        )

        def at(i: int) -> float:
            return float(tot[np.searchsorted(rows, i)])

        if ins.total_given and ins.total_range:
            badt = scoring.invalid_totals(tot, ins)
            self.col.rows(
                f,
                rows[badt],
                "total",
                "measurements.total_out_of_range",
                lambda i: scoring.total_message(ins, at(i)),
                "correct the total",
            )
            tot = np.where(badt, np.nan, tot)
        elif (~np.isnan(tot)).any():
            self.col.rows(
                f,
                rows[~np.isnan(tot)],
                "total",
                "measurements.total_ignored",
                lambda i: (
                    f"{ins.id} scores are computed from the items; the given total is ignored"
                ),
                "leave 'total' empty except for ORS/SRS",
                "warning",
            )
        if ins.total_given and "total" in scales:
            scales["total"] = np.where(np.isnan(scales["total"]), tot, scales["total"])
        noresp = ~answered_any & np.isnan(tot)
        self.col.rows(
            f,
            rows[noresp],
            "item_1",
            "measurements.no_responses",
            lambda i: "measurement has no item responses and no total",
            "remove the row or enter the responses",
            "warning",
        )
        return ScoredRows(name=name, rows=rows, scales=scales, names=names)

    @staticmethod
    def _score_blocks(
        ins: scoring.Instrument,
        rows: np.ndarray,
        columns: dict[int, pa.ChunkedArray],
        have: list[int],
        wanted: set[str],
    ) -> tuple[
        dict[str, np.ndarray],
        tuple[str, ...],
        np.ndarray,
        dict[int, list[np.ndarray]],
        dict[int, list[np.ndarray]],
    ]:
        """Scores, scale names, 'any item answered' and the responses breaking the item
        rule, by block.  Only the ``wanted`` scales (and those they are made of) are
        scored."""
        n, k = len(rows), ins.n_items
        table = pa.table([columns[j] for j in have], names=[str(j) for j in have])
        answered_any = np.zeros(n, dtype=bool)
        scales: dict[str, np.ndarray] = {}
        bad_rows: dict[int, list[np.ndarray]] = {}
        bad_values: dict[int, list[np.ndarray]] = {}
        names: tuple[str, ...] = ()
        scored: scoring.Instrument | None = None
        for start, stop in _blocks(n, max(1024, BLOCK_CELLS // max(k, 1))):
            idx = rows[start:stop]
            x = np.full((len(idx), k), np.nan)
            if have and len(idx):
                for j, col in zip(have, _gather(table, idx), strict=True):
                    x[:, j - 1] = _floats(col)
            present = ~np.isnan(x)
            answered_any[start : start + len(idx)] = present.any(axis=1)
            bad = scoring.invalid_items(x, ins)
            if bad.any():
                rr, cc = np.nonzero(bad.T)  # by item, then row
                for j in np.unique(rr):
                    cols = cc[rr == j]
                    bad_rows.setdefault(int(j) + 1, []).append(idx[cols])
                    bad_values.setdefault(int(j) + 1, []).append(x[cols, j])
                x[bad] = np.nan
            x, published = scoring.to_published_scale(x, ins)
            if scored is None:
                names, scored = published.scale_names, _with_scales(published, wanted)
            res = scoring.score_matrix(x, scored)
            for s, v in res.items():
                if s not in scales:
                    scales[s] = np.empty(n, dtype=v.dtype)
                scales[s][start : start + len(idx)] = v
        return scales, names, answered_any, bad_rows, bad_values


def _empty_scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "outcome_id": pd.Series(dtype=object),
            "entity_id": pd.Series(dtype=object),
            "level": pd.Series(dtype=object),
            "timepoint": pd.Series(dtype=object),
            "value": pd.Series(dtype=float),
            "n_answered": pd.Series(dtype="int64"),
        }
    )


def _categorical_of(part: np.ndarray, values: list[str], seen: list[str]) -> pd.Categorical:
    """Categorical of ``values[part]``, categories the sorted distinct ``seen`` values.

    As ``astype("category")`` of the column before rows were dropped: ``seen``
    holds the values of the parts that had rows.
    """
    cats = sorted(set(seen))
    where = {v: i for i, v in enumerate(cats)}
    to_cat = np.array([where.get(v, -1) for v in values], dtype=np.int16)
    # the dtype pandas gives a column of one repeated string
    text = pd.Series(["x"]).dtype
    return pd.Categorical.from_codes(to_cat[part], pd.Index(cats, dtype=text))


class _MeasurementChecks(_ItemChecks):
    # ------------------------------------------------------------------ measurements
    def check_measurements(self) -> pd.DataFrame:
        m = self.t.get("measurements")
        if m is None:
            return _empty_scores()
        f = self.file("measurements")
        ent_c, ent_u, ent_o = _codes(m["entity_id"])
        lv_c, lv_u, lv_o = _codes(m["level"])
        inst_c, inst_u, inst_o = _codes(m["instrument"])
        tp_c, tp_u, tp_o = _codes(m["timepoint"])
        self.col.rows(
            f,
            _spread(np.array([x not in LEVELS for x in lv_u], dtype=bool), lv_c),
            "level",
            "measurements.invalid_value",
            lambda i: f"'level' must be family or keyworker; got {lv_o[i]!r}",
            "use family or keyworker",
        )
        is_fam = _spread(lv_u == "family", lv_c)
        fam_row_u = None
        if "families" in self.t:
            fam_row_u = self._family_rows(ent_u)
            unk = is_fam & _spread(fam_row_u < 0, ent_c)
            self.col.rows(
                f,
                unk,
                "entity_id",
                "measurements.unknown_entity",
                lambda i: (
                    f"entity_id of a family measurement must be a family_id; got {ent_o[i]!r}"
                ),
                "check the id (or the level column)",
            )
        if "keyworkers" in self.t:
            unk = _spread(lv_u == "keyworker", lv_c) & _spread(~_isin(ent_u, self.kw_la), ent_c)
            self.col.rows(
                f,
                unk,
                "entity_id",
                "measurements.unknown_entity",
                lambda i: (
                    f"entity_id of a keyworker measurement must be a keyworker_id; got {ent_o[i]!r}"
                ),
                "check the id (or the level column)",
            )
        known_inst = list(scoring.INSTRUMENTS) + list(self.custom)
        self.col.rows(
            f,
            _spread(~_isin(inst_u, known_inst), inst_c),
            "instrument",
            "measurements.unknown_instrument",
            lambda i: f"'instrument' must be one of {', '.join(known_inst)}; got {inst_o[i]!r}",
            "use a built-in instrument id or declare a custom instrument",
        )
        tps = list(self.p.trial.timepoints)
        self.col.rows(
            f,
            _spread(~_isin(tp_u, tps), tp_c),
            "timepoint",
            "measurements.unknown_timepoint",
            lambda i: f"'timepoint' must be one of {', '.join(tps)}; got {tp_o[i]!r}",
            "use the protocol's timepoints",
        )
        # one key per entity, level and instrument (and one with the timepoint)
        parts = ((ent_c, len(ent_u)), (lv_c, len(lv_u)), (inst_c, len(inst_u)))
        key3, incomplete3, span3 = _combine(*parts)
        key4, incomplete4, span4 = _combine((key3, span3), (tp_c, len(tp_u)))
        incomplete4 |= incomplete3
        dup = ~_first_seen(key4, span4) & ~incomplete4
        del key4
        self.col.rows(
            f,
            dup,
            "timepoint",
            "measurements.duplicate",
            lambda i: (
                f"one measurement per entity, instrument and timepoint; got {ent_o[i]!r} "
                f"{inst_o[i]} {tp_o[i]} again"
            ),
            "remove the repeated row or fix its timepoint",
        )
        d = _dates(m["date"])
        self.window("measurements", "date", d)
        if fam_row_u is not None and is_fam.any():
            self._check_consent(f, fam_row_u, ent_c, is_fam, d, ent_o)
        self.check_baseline_order(key3, span3, incomplete3, tp_c, tp_u, tp_o, d)
        del key3, incomplete3
        scored = self.check_items(m, f, inst_c, inst_u, known_inst)
        return self._scores(f, scored, ent_c, ent_u, ent_o, lv_c, lv_u, tp_c, tp_u, dup)

    def _family_rows(self, names: np.ndarray) -> np.ndarray:
        """Row of the families table of each name (its first row); -1 when absent."""
        fam_c, fam_u, _ = _codes(self.t["families"]["family_id"])
        firsts = np.flatnonzero(_first_seen(fam_c + 1, len(fam_u) + 1) & (fam_c >= 0))
        first_row = np.empty(len(fam_u), dtype=np.int64)
        first_row[fam_c[firsts]] = firsts
        found = index_in(names, fam_u)
        return np.where(found >= 0, first_row[np.maximum(found, 0)], -1)

    def _check_consent(
        self,
        f: str,
        fam_row_u: np.ndarray,
        ent_c: np.ndarray,
        is_fam: np.ndarray,
        d: np.ndarray,
        ent_o: np.ndarray,
    ) -> None:
        """Family measurement dates versus consent and withdrawal.

        ``fam_row_u`` holds the families row of each distinct entity (-1: none);
        the dates are looked up once per entity and spread to its rows.
        """
        fm = self.t["families"]
        found = fam_row_u >= 0
        at = np.maximum(fam_row_u, 0)
        nat = np.datetime64("NaT", "D")
        ok = is_fam & _spread(found, ent_c)
        cons = _spread(np.where(found, _dates(fm["consent_date"])[at], nat), ent_c, nat)
        # comparisons with NaT are False: a missing date is never before or after
        before = is_fam & (d < cons)
        self.col.rows(
            f,
            before,
            "date",
            "measurements.before_consent",
            lambda i: f"measurement date must not be before consent ({cons[i]}); got {d[i]}",
            "data collected before consent cannot be used; check the date",
        )
        # a consent date that could not be read was reported with families: not again here
        if ("families", "consent_date") not in self.col.unreadable:
            cbad = self.col.bad_cells("families", "consent_date", len(fm))
            cbad_u = found & cbad[fm.index.to_numpy()[at]]
            nocons = ok & np.isnat(cons) & ~_spread(cbad_u, ent_c)
        else:
            nocons = np.zeros(len(d), dtype=bool)
        self.col.rows(
            f,
            nocons,
            "entity_id",
            "measurements.without_consent",
            lambda i: f"family {ent_o[i]!r} has a measurement but no consent_date",
            "record the consent date or remove the measurement",
        )
        wd = _spread(np.where(found, _dates(fm["withdrawal_date"])[at], nat), ent_c, nat)
        after = is_fam & (d > wd)
        self.col.rows(
            f,
            after,
            "date",
            "measurements.after_withdrawal",
            lambda i: f"measurement dated {d[i]} after the family withdrew ({wd[i]})",
            "check whether the family withdrew from data collection",
            "warning",
        )

    def _scores(
        self,
        f: str,
        scored: list[ScoredRows],
        ent_c: np.ndarray,
        ent_u: np.ndarray,
        ent_o: np.ndarray,
        lv_c: np.ndarray,
        lv_u: np.ndarray,
        tp_c: np.ndarray,
        tp_u: np.ndarray,
        dup: np.ndarray,
    ) -> pd.DataFrame:
        """One row per outcome, entity and timepoint (the first measurement's score)."""
        level_code = {str(v): i for i, v in enumerate(lv_u)}
        picked: list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]] = []
        for sr in scored:
            for oc in self.p.outcomes:
                if oc.instrument != sr.name and not (
                    oc.instrument == "custom" and oc.score == sr.name
                ):
                    continue
                scale = oc.score if oc.instrument != "custom" else "total"
                if scale != "n_answered" and scale not in sr.names:
                    names = sr.names
                    self.col.add(
                        f,
                        None,
                        "instrument",
                        "measurements.unknown_scale",
                        f"outcome '{oc.id}' asks for scale '{scale}' of {sr.name}, which has "
                        f"{', '.join(names)}",
                        "fix the outcome's score in the protocol",
                    )
                    continue
                lvl_ok = lv_c[sr.rows] == level_code.get(oc.level.value, -2)
                picked.append(
                    (
                        oc.id,
                        oc.level.value,
                        sr.rows[lvl_ok],
                        sr.scales[scale][lvl_ok],
                        sr.scales["n_answered"][lvl_ok],
                    )
                )
        if not picked:
            return _empty_scores()
        nonempty = [p for p in picked if len(p[2])]
        ids = [p[0] for p in picked]
        # a row is kept when it has a timepoint and an entity and is the first of its
        # outcome, entity and timepoint
        if len(set(ids)) == len(ids):
            # one outcome per part, whose rows share instrument and level: the first of an
            # outcome, entity and timepoint is the first measurement of its key
            masks = [(tp_c[r] >= 0) & (ent_c[r] >= 0) & ~dup[r] for _, _, r, _, _ in picked]
        else:
            sizes = np.array([len(p[2]) for p in picked], dtype=np.int64)
            rows = np.concatenate([p[2] for p in picked])
            id_code = {v: i for i, v in enumerate(dict.fromkeys(ids))}
            oc_c = np.repeat(np.array([id_code[v] for v in ids], dtype=np.int64), sizes)
            keep = (tp_c[rows] >= 0) & (ent_c[rows] >= 0)
            key, _, _ = _combine(
                (oc_c, len(id_code)), (ent_c[rows], len(ent_u)), (tp_c[rows], len(tp_u))
            )
            keep &= _first_seen(np.where(keep, key, -1))
            masks = np.split(keep, np.cumsum(sizes)[:-1])
        # the categories: the values of the rows before any was dropped
        tp_seen = np.zeros(len(tp_u) + 1, dtype=bool)
        for _, _, r, _, _ in nonempty:
            tp_seen[tp_c[r] + 1] = True
        tp_cats = sorted(str(v) for v in tp_u[tp_seen[1:]])
        tp_pos = {v: i for i, v in enumerate(tp_cats)}
        tp_to_cat = np.array([tp_pos.get(str(v), -1) for v in tp_u] + [-1], dtype=np.int32)
        kept = np.array([int(mk.sum()) for mk in masks], dtype=np.int64)
        part = np.repeat(np.arange(len(picked), dtype=np.int16), kept)
        rows_k = np.concatenate([r[mk] for (_, _, r, _, _), mk in zip(picked, masks, strict=True)])
        scores = pd.DataFrame(
            {
                "outcome_id": _categorical_of(part, ids, [p[0] for p in nonempty]),
                "entity_id": pd.Series(ent_o[rows_k], dtype=object),
                "level": _categorical_of(part, [p[1] for p in picked], [p[1] for p in nonempty]),
                "timepoint": pd.Categorical.from_codes(
                    tp_to_cat[tp_c[rows_k]],
                    pd.Index(tp_cats) if tp_cats else pd.Index([], dtype=object),
                ),
                "value": np.concatenate(
                    [v[mk] for (_, _, _, v, _), mk in zip(picked, masks, strict=True)]
                ),
                "n_answered": np.concatenate(
                    [n[mk] for (_, _, _, _, n), mk in zip(picked, masks, strict=True)]
                ).astype("int64"),
            },
            copy=False,  # every column is a new array
        )
        self.score_entities = (scores, ent_c[rows_k], ent_u)  # for missing_patterns
        return scores

    # ------------------------------------------------------------------ timepoint order
    def check_baseline_order(
        self,
        key: np.ndarray,
        span: int,
        incomplete: np.ndarray,
        tp_c: np.ndarray,
        tp_u: np.ndarray,
        tp_o: np.ndarray,
        d: np.ndarray,
    ) -> None:
        """A follow-up measurement must not be dated before the same entity's baseline.

        Baseline is the protocol's first timepoint; the comparison is within one
        entity, level and instrument (``key``, one integer below ``span`` per
        combination; ``incomplete`` marks rows missing one of them).
        """
        tps = list(self.p.trial.timepoints)
        if len(tps) < 2 or ("measurements", "date") in self.col.unreadable:
            return
        dated = ~np.isnat(d) & ~incomplete
        base = np.flatnonzero(_spread(tp_u == tps[0], tp_c) & dated)
        if not len(base):
            return
        first = base[_first_seen(key[base], span)]  # an entity's first dated baseline row
        later = np.flatnonzero(_spread(_isin(tp_u, tps[1:]), tp_c) & dated)
        pos = pd.Index(key[first]).get_indexer(key[later])
        has = pos >= 0
        later, bd = later[has], d[first[pos[has]]]
        early = d[later] < bd
        rows, bd = later[early], bd[early]
        self.col.rows(
            self.file("measurements"),
            rows,
            "date",
            "measurements.before_baseline",
            lambda i: (
                f"a '{tp_o[i]}' measurement must not be dated before the same entity's "
                f"'{tps[0]}' ({bd[np.searchsorted(rows, i)]}); got {d[i]}"
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
        ent_c, ent_u, _ = _codes(m["entity_id"])
        lv_c, lv_u, _ = _codes(m["level"])
        tp_c, tp_u, _ = _codes(m["timepoint"])
        follow = _spread(_isin(tp_u, tps[1:]), tp_c)
        seen: set[str] = set()
        for table, id_col, level in (
            ("keyworkers", "keyworker_id", "keyworker"),
            ("families", "family_id", "family"),
        ):
            frame = self.t.get(table)
            if frame is None:
                continue
            id_c, id_u, _ = _codes(frame[id_col])
            la_c, la_u, _ = _codes(frame["la_id"])
            placed = np.flatnonzero((id_c >= 0) & (la_c >= 0))
            first = placed[_first_seen(id_c[placed], len(id_u))]  # an entity's first row places it
            la_of = np.full(len(id_u) + 1, -1, dtype=np.int64)  # LA (code) of each id (code)
            la_of[id_c[first]] = la_c[first]
            # the distinct entities measured at follow-up at this level
            sel = ent_c[follow & _spread(lv_u == level, lv_c)]
            measured = np.bincount(sel + 1, minlength=len(ent_u) + 1)[1:] > 0
            las = la_of[index_in(ent_u[measured], id_u)]
            seen.update(la_u[np.unique(las[las >= 0])].tolist())
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
        known = self.score_entities
        codes = known[1:] if known is not None and known[0] is scores else None
        flags = missingness_flags(
            missing_outcome_shares(self.p, self.t, scores, entity_codes=codes)
        )
        for code, message in zip(flags["code"], flags["message"], strict=True):
            self.col.add(f, None, "instrument", str(code), str(message), hints[code], "warning")
        m = self.t.get("measurements")
        if m is not None and len(m):
            items = [c for c in item_columns(MAX_ITEMS) if c in m.columns]
            if items:
                n_unscored = int(np.count_nonzero(np.isnan(scores["value"].to_numpy(dtype=float))))
                if n_unscored:
                    self.col.add(
                        f,
                        None,
                        None,
                        "measurements.score_missing",
                        f"{n_unscored} outcome measurement(s) have too few items answered to be "
                        "scored under the prorating rules",
                        "see docs/scoring.md (prorating)",
                        "warning",
                    )
