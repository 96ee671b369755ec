"""Find data tables and convert columns to pyarrow-backed dtypes.

Tables are found and read through the stage store (:func:`trialkit.store.read_table`,
re-exported here).

Conversion never raises for bad values: it returns the converted column and a
mask of the cells that could not be converted, so validation can report every
one with its row.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from trialkit import store
from trialkit.data._columns import encoded
from trialkit.data.parse import parse_numbers
from trialkit.data.schema import DataProblem, Kind
from trialkit.errors import DataError
from trialkit.store import read_table

__all__ = [
    "DATE_FORMAT_GUESSES",
    "convert",
    "convert_marked",
    "date_format_label",
    "find_tables",
    "guess_date_format",
    "index_in",
    "isin",
    "read_table",
    "to_object",
]

STRING = pd.StringDtype("pyarrow")
FLOAT = pd.ArrowDtype(pa.float64())
INT = pd.ArrowDtype(pa.int64())
BOOL = pd.ArrowDtype(pa.bool_())
DATE = pd.ArrowDtype(pa.date32())

ISO = "ISO8601"
"""The default date format (``[data] date_format`` in the protocol)."""

DATE_FORMAT_GUESSES: tuple[tuple[str, str], ...] = (
    ("%d/%m/%Y", "DD/MM/YYYY"),
    ("%m/%d/%Y", "MM/DD/YYYY"),
    ("%d-%m-%Y", "DD-MM-YYYY"),
    ("%d.%m.%Y", "DD.MM.YYYY"),
    ("%d/%m/%y", "DD/MM/YY"),
    ("%m/%d/%y", "MM/DD/YY"),
    ("%Y/%m/%d", "YYYY/MM/DD"),
    ("%d %b %Y", "DD Mon YYYY"),
    ("%d %B %Y", "DD Month YYYY"),
    ("%d-%b-%Y", "DD-Mon-YYYY"),
    ("%d-%b-%y", "DD-Mon-YY"),
    ("%Y%m%d", "YYYYMMDD"),
)
"""Date layouts a data file may use instead of the declared one: (strftime pattern, label)."""


_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


def find_tables(
    directory: str | os.PathLike[str], names: tuple[str, ...]
) -> tuple[dict[str, Path], list[DataProblem]]:
    """Locate ``<name>.csv|.parquet|.xlsx`` for each table; report ambiguous duplicates.

    A directory with a stage manifest (``trialkit simulate``/``validate`` output) is
    checked against it first.
    """
    root = Path(directory)
    if not root.is_dir():
        raise DataError.from_problem(
            path=str(root),
            code="data.not_a_directory",
            message=f"data directory must be an existing directory; got '{root}'",
            hint="pass the folder holding clusters, keyworkers, families, measurements, delivery",
        )
    store.verify_data_directory(root)
    found: dict[str, Path] = {}
    problems: list[DataProblem] = []
    for name in names:
        hits = store.table_files(root, name)
        if len(hits) > 1:
            problems.append(
                DataProblem(
                    file=hits[0].name,
                    row=None,
                    column=None,
                    code="data.ambiguous_table",
                    message=f"table '{name}' must be given once; got {', '.join(h.name for h in hits)}",
                    hint="keep one file per table",
                )
            )
        if hits:
            found[name] = hits[0]
    return found, problems


def to_object(s: pd.Series) -> np.ndarray:
    """Values as a numpy object array with None for missing.

    Inside :func:`trialkit.data._columns.column_cache` a text column is converted
    once and the same read-only array is returned each time.
    """
    enc = encoded(s)
    if enc is not None:
        return enc.objects
    return np.asarray(s.to_numpy(dtype=object, na_value=None))  # type: ignore[call-overload]


def isin(values: pd.Series | np.ndarray, allowed: object) -> np.ndarray:
    """Hash-based membership of (string) values in ``allowed``; missing values give False.

    Strings are matched with pyarrow's ``is_in`` kernel (several times faster
    than ``Series.isin`` on pyarrow strings, which loops in Python, and than a
    ``pd.Index`` lookup); anything else falls back to a ``pd.Index`` lookup.
    """
    enc = encoded(values)
    if enc is not None:
        # membership is decided value by value: decide it for the distinct values
        # (and for missing, the last entry) and spread it to the rows by their codes
        distinct = np.empty(len(enc.uniques) + 1, dtype=object)
        distinct[:-1] = enc.uniques
        distinct[-1] = None
        return np.asarray(isin(distinct, allowed)[enc.codes])
    keys = list(dict.fromkeys(allowed))  # type: ignore[call-overload]
    if not keys:
        return np.zeros(len(values), dtype=bool)
    try:
        value_set = pa.array(keys, type=pa.string())
        arr = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass  # not all strings: compare as Python objects
    else:
        hit = pc.is_in(arr, value_set=value_set)
        return np.asarray(hit.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    arr_o = to_object(values) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    idx = pd.Index(keys, dtype=object)
    return np.asarray(idx.get_indexer(arr_o) >= 0)  # type: ignore[arg-type]


def index_in(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position of each value in ``keys`` (distinct, none missing); -1 when absent or missing.

    Strings are looked up with pyarrow's ``index_in`` kernel (about three times
    faster than ``pd.Index.get_indexer`` on object arrays); anything else falls
    back to ``pd.Index.get_indexer``.
    """
    try:
        arr = pa.array(values, type=pa.string(), from_pandas=True)
        value_set = pa.array(keys, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        idx = pd.Index(np.asarray(keys, dtype=object), dtype=object)
        return np.asarray(idx.get_indexer(np.asarray(values, dtype=object)), dtype=np.int64)
    opts = pc.SetLookupOptions(value_set=value_set, skip_nulls=True)
    pos = pc.index_in(arr, options=opts).fill_null(-1)
    return np.asarray(pos.to_numpy(zero_copy_only=False), dtype=np.int64)


def _notna(s: pd.Series) -> np.ndarray:
    return np.asarray(s.notna().to_numpy(dtype=bool, na_value=False))


def _as_text(s: pd.Series) -> pd.Series:
    """Strings with surrounding blanks removed; empty strings become missing."""
    if isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_floating(s.dtype.pyarrow_dtype):
        vals = s.to_numpy(dtype=float, na_value=np.nan)
        whole = np.isfinite(vals) & (vals == np.round(vals)) & (np.abs(vals) < 2.0**53)
        txt = pd.Series(
            np.where(
                whole,
                np.char.mod("%d", np.where(whole, vals, 0).astype(np.int64)),
                vals.astype(str),
            ),
            index=s.index,
            dtype=object,
        )
        txt[np.isnan(vals)] = None
        s = txt
    out = s.astype(STRING).str.strip()
    blank = np.asarray((out == "").to_numpy(dtype=bool, na_value=False))
    if not blank.any():
        return out.astype(STRING)
    return out.mask(blank, pd.NA).astype(STRING)


def date_format_label(fmt: str) -> str:
    """How a date format is shown in messages: ``%d/%m/%Y`` gives ``DD/MM/YYYY``."""
    if fmt == ISO:
        return "an ISO date (YYYY-MM-DD)"
    known = dict(DATE_FORMAT_GUESSES)
    return f"a date written {known.get(fmt, fmt)}"


def _parse_text_dates(txt: pd.Series, fmt: str) -> pd.Series:
    """Text to datetimes with ``fmt``; ISO dates (unambiguous) are read whatever ``fmt``."""
    iso = pd.to_datetime(txt, errors="coerce", format=ISO)
    if fmt == ISO:
        return iso
    return pd.to_datetime(txt, errors="coerce", format=fmt).fillna(iso)


def guess_date_format(values: pd.Series | list[object]) -> list[tuple[str, str]]:
    """The layouts of :data:`DATE_FORMAT_GUESSES` that read every given text value.

    Parameters
    ----------
    values : Series or list
        Cells of one column that could not be read as dates (missing ones ignored).

    Returns
    -------
    list of (pattern, label)
        Empty when no layout reads them all; two entries (``DD/MM/YYYY`` and
        ``MM/DD/YYYY``) when every day is 12 or less and the order is ambiguous.
    """
    txt = _as_text(pd.Series(list(values), dtype=object)).dropna().astype(object)
    if txt.empty:
        return []
    out: list[tuple[str, str]] = []
    for fmt, label in DATE_FORMAT_GUESSES:
        ok = pd.to_datetime(txt, errors="coerce", format=fmt).notna()
        if bool(ok.all()):
            out.append((fmt, label))
    return out


def convert(s: pd.Series, kind: Kind, *, date_format: str = ISO) -> tuple[pd.Series, np.ndarray]:
    """Convert ``s`` to the dtype of ``kind``; return ``(converted, bad_mask)``.

    ``bad_mask`` marks cells that held a value that could not be converted.
    Numbers follow :func:`trialkit.data.parse.parse_numbers` (thousands
    separators between groups of three digits are read).  Dates are read with
    ``date_format`` (the protocol's ``[data] date_format``: ``ISO8601`` or a strftime
    pattern); ISO dates and spreadsheet date cells are read whatever it is.
    """
    converted, bad, _ = convert_marked(s, kind, date_format=date_format)
    return converted, bad


def _numbers_as_read(s: pd.Series, kind: Kind) -> pd.Series | None:
    """A pyarrow number column that conversion would leave as it is, else None.

    ``float``: ``float64`` data without NaN or infinite values; ``int``: ``int64``
    data within ±2⁵³ (read exactly as a float, as the general path reads it).  Two
    vectorised scans instead of a conversion through numpy and back.
    """
    data = getattr(s.array, "_pa_array", None)
    if not isinstance(data, pa.ChunkedArray):
        return None
    if kind == "float" and pa.types.is_float64(data.type):
        if pc.any(pc.invert(pc.is_finite(data))).as_py():
            return None  # NaN or infinite cells: missing, and bad (the general path)
    elif kind == "int" and pa.types.is_int64(data.type):
        lo, hi = pc.min_max(data).values()
        if lo.is_valid and not (-(2**53) < lo.as_py() and hi.as_py() < 2**53):
            return None
    else:
        return None
    return pd.Series(pd.arrays.ArrowExtensionArray(data), index=s.index)


def convert_marked(
    s: pd.Series, kind: Kind, *, date_format: str = ISO
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """As :func:`convert`, and also mark the cells read with a thousands separator.

    Returns
    -------
    converted, bad, grouped
        ``grouped`` is :attr:`trialkit.data.parse.NumberParse.grouped` for a
        ``float`` or ``int`` column read from text (all False otherwise), from
        the same reading as the values, so a text column is parsed once.
    """
    grouped = np.zeros(len(s), dtype=bool)
    if kind in ("id", "str"):
        out = _as_text(s)
        return out, np.zeros(len(s), dtype=bool), grouped
    if kind in ("float", "int"):
        same = _numbers_as_read(s, kind)
        if same is not None:
            return same, np.zeros(len(s), dtype=bool), grouped
    present = _notna(s)
    if kind in ("float", "int"):
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            vals = s.to_numpy(dtype=float, na_value=np.nan)
        else:
            parsed = parse_numbers(_as_text(s))
            vals, grouped = parsed.values, parsed.grouped
        if kind == "float":
            # missing, NaN and infinite cells are all missing; those that held a value are bad
            missing = ~np.isfinite(vals)
            if missing.any():
                vals = np.where(missing, np.nan, vals)
            arr = pa.array(vals, mask=missing)
            return (
                pd.Series(pd.arrays.ArrowExtensionArray(arr), index=s.index),
                present & missing,
                grouped,
            )
        vals = np.where(np.isinf(vals), np.nan, vals)
        bad = present & np.isnan(vals)
        if kind == "int":
            nonint = ~np.isnan(vals) & ((vals != np.round(vals)) | (np.abs(vals) >= 2.0**53))
            bad = bad | nonint
            vals = np.where(nonint, np.nan, vals)
            mask = np.isnan(vals)
            arr = pa.array(np.where(mask, 0, vals).astype(np.int64), mask=mask)
            return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=s.index), bad, grouped
    if kind == "date":
        if isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_date(s.dtype.pyarrow_dtype):
            return s.astype(DATE), np.zeros(len(s), dtype=bool), grouped
        if pd.api.types.is_datetime64_any_dtype(s.dtype) or (
            isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_timestamp(s.dtype.pyarrow_dtype)
        ):
            when = pd.to_datetime(s.astype(object), errors="coerce")
        elif s.dtype == object:
            cells = s.astype(object)
            is_date = np.array([isinstance(v, (dt.date, np.datetime64)) for v in cells], dtype=bool)
            when = _parse_text_dates(
                _as_text(cells.where(~is_date, None)).astype(object), date_format
            )
            if is_date.any():
                direct = pd.to_datetime(cells.where(is_date, None), errors="coerce")
                when = when.where(~is_date, direct)
        else:
            when = _parse_text_dates(_as_text(s).astype(object), date_format)
        bad = present & np.asarray(when.isna())
        days = when.to_numpy(dtype="datetime64[D]")
        arr = pa.array(days, type=pa.date32(), from_pandas=True)
        return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=s.index), bad, grouped
    if kind == "bool":
        if pd.api.types.is_bool_dtype(s.dtype):
            return s.astype(BOOL), np.zeros(len(s), dtype=bool), grouped
        txt = _as_text(s).str.lower()
        t = np.asarray(txt.isin(_TRUE).to_numpy(dtype=bool, na_value=False))
        f = np.asarray(txt.isin(_FALSE).to_numpy(dtype=bool, na_value=False))
        bad = present & ~t & ~f
        arr = pa.array(t, mask=~(t | f))
        return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=s.index), bad, grouped
    if kind == "month":
        txt = _as_text(s)
        ok = np.asarray(
            txt.str.fullmatch(r"\d{4}-(0[1-9]|1[0-2])").to_numpy(dtype=bool, na_value=False)
        )
        bad = present & ~ok
        return txt.mask(~ok, pd.NA).astype(STRING), bad, grouped
    raise ValueError(kind)  # pragma: no cover
