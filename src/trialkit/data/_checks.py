"""Shared machinery of the validation rules.

The problem collector, array helpers and :class:`_Checks`, the base of the rule
classes (table file names, trial-window check).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from trialkit.data._columns import encoded
from trialkit.data.schema import MAX_ROWS_PER_CODE, DataProblem
from trialkit.data.scoring import Instrument
from trialkit.protocol.model import Protocol


class _Collector:
    """Every problem found, and what later rules must not report again.

    ``bad`` holds, per (table, column), the cells that held a value that could not
    be read (already reported: rules that need the value skip them);
    ``unreadable`` the columns reported as a whole (their dependants are not
    checked); ``broken`` the tables that could not be checked at all (a required
    column is absent), treated by later rules like an absent table.
    """

    def __init__(self) -> None:
        self.items: list[DataProblem] = []
        self.bad: dict[tuple[str, str], np.ndarray] = {}
        self.unreadable: set[tuple[str, str]] = set()
        self.broken: set[str] = set()

    def bad_cells(self, table: str, column: str, n: int) -> np.ndarray:
        """Mask of the cells of ``table.column`` already reported as unreadable."""
        mask = self.bad.get((table, column))
        return np.zeros(n, dtype=bool) if mask is None or len(mask) != n else mask

    def add(
        self,
        file: str,
        row: int | None,
        column: str | None,
        code: str,
        message: str,
        hint: str = "",
        severity: str = "error",
    ) -> None:
        self.items.append(
            DataProblem(
                file=file,
                row=row,
                column=column,
                code=code,
                message=message,
                hint=hint,
                severity="warning" if severity == "warning" else "error",
            )
        )

    def rows(
        self,
        file: str,
        positions: np.ndarray,
        column: str | None,
        code: str,
        message: Callable[[int], str],
        hint: str = "",
        severity: str = "error",
    ) -> None:
        """One problem per position (0-based) up to MAX_ROWS_PER_CODE, then a summary."""
        pos = np.flatnonzero(positions) if positions.dtype == bool else np.asarray(positions)
        if len(pos) == 0:
            return
        for p in pos[:MAX_ROWS_PER_CODE]:
            self.add(file, int(p) + 1, column, code, message(int(p)), hint, severity)
        rest = len(pos) - MAX_ROWS_PER_CODE
        if rest > 0:
            self.add(
                file,
                None,
                column,
                code,
                f"{rest} more row(s) with the same problem (first listed rows above)",
                hint,
                severity,
            )

    @property
    def n_errors(self) -> int:
        return sum(p.severity == "error" for p in self.items)


def _str(s: pd.Series) -> np.ndarray:
    enc = encoded(s)
    if enc is not None:
        return enc.objects  # a text column, converted once per validation
    return np.asarray(s.astype(object).where(s.notna(), None).to_numpy())


def _dates(s: pd.Series) -> np.ndarray:
    """datetime64[D] numpy array (NaT for missing) from a date32 column."""
    if len(s) == 0:
        return np.array([], dtype="datetime64[D]")
    arr = pa.chunked_array(pa.array(s.array)).cast(pa.date32()).cast(pa.int32())
    out = np.asarray(arr.fill_null(0).to_numpy(), dtype=np.int32).astype("datetime64[D]")
    if arr.null_count:
        out[np.asarray(arr.is_null().to_numpy(), dtype=bool)] = np.datetime64("NaT")
    return out


def _row_key(*columns: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One integer per distinct combination of the columns' values, row by row.

    Returns ``(key, incomplete)``: ``key`` is an ``int64`` array (equal keys ⇔
    equal values in every column), ``incomplete`` marks rows with a missing
    value in any column.  Columnar (``pd.factorize``), so duplicate and lookup
    checks on a million rows need no Python loop and no object comparison.
    """
    n = len(columns[0])
    key = np.zeros(n, dtype=np.int64)
    incomplete = np.zeros(n, dtype=bool)
    span = 1  # key < span: the number of combinations the key can take so far
    for col in columns:
        enc = encoded(col)
        if enc is not None:
            codes, n_codes = enc.codes, len(enc.uniques)  # a text column, factorised once
        else:
            codes = pd.factorize(col, use_na_sentinel=True)[0].astype(np.int64)
            n_codes = int(codes.max(initial=-1)) + 1
        incomplete |= codes < 0
        if span * (n_codes + 1) >= 2**62:
            key = pd.factorize(key)[0].astype(np.int64)  # renumber before it could overflow
            span = int(key.max(initial=-1)) + 1
        key = key * (n_codes + 1) + codes + 1  # mixed radix: equal keys <=> equal codes
        span *= n_codes + 1
    # number the combinations in order of first appearance, as one factorisation per
    # column would
    return pd.factorize(key)[0].astype(np.int64), incomplete


def _codes(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A text column as ``(codes, uniques, objects)``.

    ``codes`` (``int64``) number the distinct values in order of first appearance
    (``-1`` for missing), ``uniques`` holds them and ``objects`` the rows as Python
    objects (``None`` for missing), as :class:`trialkit.data._columns.Encoded`.  A
    column encoded once per validation is reused; anything else is factorised here.
    A question about the rows is then asked once per distinct value and spread to
    the rows by ``codes``.
    """
    enc = encoded(values)
    if enc is not None:
        return enc.codes, enc.uniques, enc.objects
    if isinstance(values, pd.Series):
        objects = np.asarray(values.astype(object).where(values.notna(), None).to_numpy())
    else:
        objects = np.asarray(values, dtype=object)
    codes, uniques = pd.factorize(objects, use_na_sentinel=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object), objects


def _spread(per_value: np.ndarray, codes: np.ndarray, missing: Any = False) -> np.ndarray:
    """Row values from one value per code (``missing`` where the code is ``-1``)."""
    table = np.empty(len(per_value) + 1, dtype=np.asarray(per_value).dtype)
    table[:-1] = per_value
    table[-1] = missing
    return table[codes]


def _combine(*columns: tuple[np.ndarray, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Mixed-radix key of several code columns (each ``(codes, n_codes)``).

    Returns ``(key, incomplete, span)``: equal keys ⇔ equal codes in every column;
    ``incomplete`` marks rows with a missing (``-1``) code; every key is below
    ``span``.  The keys are not
    renumbered (see :func:`_row_key` for keys in order of first appearance).
    Computed in place: one key array and one mask, whatever the number of columns.
    """
    n = len(columns[0][0])
    key = np.zeros(n, dtype=np.int64)
    incomplete = np.zeros(n, dtype=bool)
    span = 1
    for codes, n_codes in columns:
        incomplete |= codes < 0
        if span * (n_codes + 1) >= 2**62:
            key = pd.factorize(key)[0].astype(np.int64)  # renumber before it could overflow
            span = int(key.max(initial=-1)) + 1
        key *= n_codes + 1
        key += codes
        key += 1
        span *= n_codes + 1
    return key, incomplete, span


def _first_seen(key: np.ndarray, span: int | None = None) -> np.ndarray:
    """Mask of the rows whose key has not appeared in an earlier row.

    With ``span`` (every key is in ``0 … span-1``) not much larger than the number
    of rows, distinct keys are first counted on a bitmap of the key space (no hash
    table): when every key is distinct, which is the usual answer for clean data,
    every row is a first one.
    """
    n = len(key)
    if n == 0:
        return np.zeros(0, dtype=bool)
    if span is not None and span <= max(16 * n, 1 << 20):
        seen = np.zeros(span, dtype=bool)
        seen[key] = True
        if int(np.count_nonzero(seen)) == n:
            return np.ones(n, dtype=bool)
    # factorize numbers the keys in order of first appearance: a row is the first of
    # its key exactly when its number exceeds every earlier one
    number = pd.factorize(key)[0]
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.greater(number[1:], np.maximum.accumulate(number)[:-1], out=first[1:])
    return first


def _val(v: Any) -> str:
    return "missing" if v is None or (isinstance(v, float) and np.isnan(v)) else repr(v)


class _Checks:
    def __init__(
        self,
        protocol: Protocol,
        tables: dict[str, pd.DataFrame],
        files: dict[str, str],
        col: _Collector,
        start: dt.date | None,
        end: dt.date | None,
        custom: Mapping[str, Instrument],
        score15_reverse: str,
    ) -> None:
        self.p = protocol
        self.t = tables
        self.f = files
        self.col = col
        self.start = np.datetime64(start, "D") if start else None
        self.end = np.datetime64(end, "D") if end else None
        self.custom = custom
        self.score15_reverse = score15_reverse
        self.labels: dict[str, str] = {}
        self.la_ids: set[str] = set()
        self.kw_la: dict[str, str] = {}
        self.fam_ids: set[str] = set()
        # the scores frame and its entities numbered (codes, values), when measured
        self.score_entities: tuple[pd.DataFrame, np.ndarray, np.ndarray] | None = None

    def file(self, name: str) -> str:
        """How problems name the file of table ``name`` (with its sheet for a workbook)."""
        return self.labels.get(name) or self.f.get(name, f"{name}.csv")

    def window(
        self,
        name: str,
        column: str,
        d: np.ndarray,
        severity: str = "error",
        only_after_end: bool = False,
    ) -> None:
        if self.start is None and self.end is None:
            return
        ok = ~np.isnat(d)
        out = np.zeros(len(d), dtype=bool)
        if self.start is not None and not only_after_end:
            out |= ok & (d < self.start)
        if self.end is not None:
            out |= ok & (d > self.end)
        self.col.rows(
            self.file(name),
            out,
            column,
            f"{name}.date_outside_window",
            lambda i: (
                f"'{column}' must be within the trial window {self.start} to {self.end}; got {d[i]}"
            ),
            "check the date (typo in the year?)",
            severity,
        )
