"""The one way a stage directory's tables are found and read.

:func:`table_files` lists the files holding a table (``<name>.csv``, ``.parquet``
or ``.xlsx``) in a stated order of preference; :func:`read_table` reads one of
them with identifier columns kept as text (so ``01`` stays ``01``).  The data
stage reports a table given twice; the fidelity stage prefers Parquet (the
validated directory): both go through these two functions.

Given the columns a table needs, :func:`read_table` also finds where they are:
the sheet of a workbook that holds them (a ``Notes`` sheet first is passed
over) and a header row below a title.  It records what it found on the frame
(:data:`LAYOUT_ATTRS`) and leaves the wording of any problem to the caller.
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from trialkit.errors import DataError

__all__ = [
    "DATA_SUFFIXES",
    "HEADER_SEARCH_ROWS",
    "LAYOUT_ATTRS",
    "PARQUET_FIRST",
    "normalise_column",
    "read_table",
    "table_files",
]

DATA_SUFFIXES: tuple[str, ...] = (".csv", ".parquet", ".xlsx")
"""Table formats accepted in a data directory, in the data stage's order."""

PARQUET_FIRST: tuple[str, ...] = (".parquet", ".csv", ".xlsx")
"""The same formats with Parquet (the validated directory's format) preferred."""

HEADER_SEARCH_ROWS = 5
"""The header is looked for on rows 1 to 5 of a file (a title and notes above it)."""

LAYOUT_ATTRS: tuple[str, ...] = ("sheet", "sheets", "header_row")
"""Keys :func:`read_table` sets in ``frame.attrs``.

``sheet``: the worksheet read (workbooks only); ``sheets``: every worksheet name
(workbooks only); ``header_row``: the 1-based row of the file on which the
required columns were found when it is not row 1 (the frame is then still read
with row 1 as the header, so that nothing is guessed silently)."""

_TEXT_COLUMNS = frozenset({"month", "role"})

CSV_NULLS: tuple[str, ...] = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)
"""Cells read as missing in a CSV file: pandas' default ``na_values``."""

_ARROW_KINDS: dict[str, pa.DataType] = {
    "float": pa.float64(),
    "int": pa.int64(),
    "date": pa.date32(),
    "bool": pa.bool_(),
}
"""The pyarrow type a CSV column of each declared kind is parsed as (see :func:`read_table`)."""


def normalise_column(name: object) -> str:
    """A column name compared loosely: case, blanks, hyphens and underscores ignored.

    ``"Family ID"``, ``"family-id"`` and ``" FAMILY_ID "`` all give ``"familyid"``.
    """
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def table_files(
    directory: str | os.PathLike[str], name: str, *, order: tuple[str, ...] = DATA_SUFFIXES
) -> list[Path]:
    """Every existing file ``<name><suffix>`` in ``directory``, in the order of ``order``."""
    root = Path(directory)
    return [root / f"{name}{s}" for s in order if (root / f"{name}{s}").is_file()]


def _has(header: list[object], required: tuple[str, ...]) -> bool:
    names = {str(c).strip() for c in header if isinstance(c, str)}
    return bool(required) and set(required) <= names


def _header_row(rows: list[list[object]], required: tuple[str, ...]) -> int | None:
    """The 1-based row (2 … HEADER_SEARCH_ROWS) holding every required column, if any."""
    if not required or (rows and _has(rows[0], required)):
        return None
    for i, row in enumerate(rows[1:HEADER_SEARCH_ROWS], start=2):
        if _has(row, required):
            return i
    return None


def _csv_rows(path: Path, n: int) -> list[list[object]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return [list(r) for r in itertools.islice(csv.reader(fh), n)]


def _read_csv(
    p: Path,
    id_columns: tuple[str, ...],
    required: tuple[str, ...],
    kinds: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    rows = _csv_rows(p, HEADER_SEARCH_ROWS)
    header = [str(c) for c in rows[0]] if rows else []
    row = _header_row(rows, required)
    if row is not None:
        # a title above the header: the rows below it are not read (a title line alone
        # would not parse as a table); the caller reports where the header seems to be
        frame = pd.DataFrame(columns=_column_names(list(header)))
        frame.attrs["header_row"] = row
        return frame
    dtype = {c: "string" for c in header if c in id_columns or c in _TEXT_COLUMNS}
    if kinds:
        typed = _read_csv_typed(p, header, dtype, kinds)
        if typed is not None:
            return typed
    try:
        return pd.read_csv(p, engine="pyarrow", dtype=dtype, dtype_backend="pyarrow")
    except (pa.ArrowInvalid, ValueError):
        return pd.read_csv(p, dtype=str, keep_default_na=True, encoding="utf-8-sig")


def _read_csv_typed(
    p: Path, header: list[str], text: dict[str, str], kinds: Mapping[str, str]
) -> pd.DataFrame | None:
    """The CSV read by pyarrow with the declared columns parsed as their kinds, or None.

    The frame ``pd.read_csv(engine="pyarrow", dtype_backend="pyarrow")`` gives, with
    the same options (pandas' missing-value cells, ``true``/``false`` words, text
    columns as ``string``), except that a column declared ``float``, ``int``,
    ``date`` or ``bool`` is parsed as that type instead of having its type guessed
    (which costs most of the reading).  Conversion then gives what it gives for
    the guessed type.  None when a cell does not parse as its column's type, or the
    header has blank or repeated names: the caller then reads the file as before, so
    that every problem is reported as before.
    """
    if len(set(header)) != len(header) or "" in header:
        return None
    types = {c: pa.large_string() for c in text}
    for c, kind in kinds.items():
        if c in header and c not in types and kind in _ARROW_KINDS:
            types[c] = _ARROW_KINDS[kind]
    try:
        table = pa_csv.read_csv(
            p,
            read_options=pa_csv.ReadOptions(encoding="utf-8"),
            parse_options=pa_csv.ParseOptions(delimiter=",", quote_char='"'),
            convert_options=pa_csv.ConvertOptions(
                column_types=types,
                null_values=list(CSV_NULLS),
                true_values=["1", "True", "TRUE", "true"],
                false_values=["0", "False", "FALSE", "false"],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, ValueError):
        return None
    if table.column_names != header or any(
        pa.types.is_timestamp(t) and t.tz is not None for t in table.schema.types
    ):
        return None  # names or zoned times that pandas would handle otherwise
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    return frame.astype(text) if text else frame


def _column_names(header: list[object]) -> list[str]:
    """Header cells as unique column names, as pandas names them (``Unnamed: 3``, ``x.1``)."""
    names: list[str] = []
    for i, v in enumerate(header):
        blank = v is None or v == "" or (isinstance(v, float) and v != v)
        name = f"Unnamed: {i}" if blank else str(v)
        base, k = name, 0
        while name in names:
            k += 1
            name = f"{base}.{k}"
        names.append(name)
    return names


def _sheet_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """A sheet read without a header, with its first row as the header."""
    if raw.empty:
        return pd.DataFrame()
    body = raw.iloc[1:].reset_index(drop=True)
    body.columns = _column_names(list(raw.iloc[0]))
    return body


def _read_xlsx(p: Path, required: tuple[str, ...]) -> pd.DataFrame:
    sheets: dict[str, pd.DataFrame] = pd.read_excel(p, sheet_name=None, header=None, dtype=object)
    names = list(sheets)
    if not names:  # pragma: no cover - openpyxl refuses a workbook without sheets
        return pd.DataFrame()
    table = normalise_column(p.stem)

    def rows(n: str) -> list[list[object]]:
        return sheets[n].head(HEADER_SEARCH_ROWS).to_numpy(dtype=object).tolist()

    chosen = next((n for n in names if required and rows(n) and _has(rows(n)[0], required)), None)
    if chosen is None:
        chosen = next((n for n in names if _header_row(rows(n), required) is not None), None)
    if chosen is None:
        chosen = next((n for n in names if normalise_column(n) == table), names[0])
    frame = _sheet_frame(sheets[chosen])
    frame.attrs["sheet"] = chosen
    frame.attrs["sheets"] = names
    row = _header_row(rows(chosen), required)
    if row is not None:
        frame.attrs["header_row"] = row
    return frame


def read_table(
    path: str | os.PathLike[str],
    id_columns: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
    *,
    code_prefix: str = "data.",
    kinds: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Read one CSV, Parquet or Excel table as written (ids kept as strings).

    ``code_prefix`` starts the problem codes (``"fit.data_"`` for ``trialkit fit``'s
    DATA gives ``fit.data_unreadable``).

    Parameters
    ----------
    path : path-like
        ``.csv`` (UTF-8, a byte-order mark allowed), ``.parquet`` or ``.xlsx``.
    id_columns : tuple of str
        Columns read as text.
    required : tuple of str
        Columns the table must have.  In a workbook, the sheet read is the first
        whose header holds them all, else the first with them on rows 2 to
        :data:`HEADER_SEARCH_ROWS`, else the sheet named like the file, else the
        first sheet.  When they are found below row 1, ``frame.attrs["header_row"]``
        says where (see :data:`LAYOUT_ATTRS`).
    kinds : mapping, optional
        The kind (``float``, ``int``, ``date``, ``bool``; others are ignored) the
        caller will convert columns to.  A CSV file is then parsed with these
        types directly, several times faster than guessing them, and read as
        without them when a cell does not parse (the caller's conversion gives the
        same values either way).

    Raises
    ------
    DataError
        ``data.unreadable`` when the file cannot be parsed; ``data.format`` for an
        unknown suffix.  A missing file raises ``FileNotFoundError``.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(p, dtype_backend="pyarrow")
        if suffix == ".csv":
            return _read_csv(p, id_columns, required, kinds)
        if suffix == ".xlsx":
            return _read_xlsx(p, required)
    except (ValueError, OSError, ImportError, pa.ArrowException, UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataError.from_problem(
            path=p.name,
            code=f"{code_prefix}unreadable",
            message=f"table '{p.name}' must be a readable {suffix[1:]} file; got error: {exc}",
            hint="re-export the table as UTF-8 CSV or Parquet",
        ) from None
    raise DataError.from_problem(
        path=p.name,
        code=f"{code_prefix}format",
        message=f"table format must be .csv, .parquet or .xlsx; got '{suffix}'",
        hint="convert the table to CSV or Parquet",
    )
