"""The one way a stage directory's tables are found and read.

:func:`table_files` lists the files holding a table (``<name>.csv``, ``.parquet``
or ``.xlsx``) in a stated order of preference; :func:`read_table` reads one of
them with identifier columns kept as text (so ``01`` stays ``01``).  The data
stage reports a table given twice; the fidelity stage prefers Parquet (the
validated directory): both go through these two functions.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa

from trialkit.errors import DataError

__all__ = ["DATA_SUFFIXES", "PARQUET_FIRST", "read_table", "table_files"]

DATA_SUFFIXES: tuple[str, ...] = (".csv", ".parquet", ".xlsx")
"""Table formats accepted in a data directory, in the data stage's order."""

PARQUET_FIRST: tuple[str, ...] = (".parquet", ".csv", ".xlsx")
"""The same formats with Parquet (the validated directory's format) preferred."""

_TEXT_COLUMNS = frozenset({"month", "role"})


def table_files(
    directory: str | os.PathLike[str], name: str, *, order: tuple[str, ...] = DATA_SUFFIXES
) -> list[Path]:
    """Every existing file ``<name><suffix>`` in ``directory``, in the order of ``order``."""
    root = Path(directory)
    return [root / f"{name}{s}" for s in order if (root / f"{name}{s}").is_file()]


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return next(csv.reader(fh), [])


def read_table(
    path: str | os.PathLike[str], id_columns: tuple[str, ...] = (), *, code_prefix: str = "data."
) -> pd.DataFrame:
    """Read one CSV, Parquet or Excel table as written (ids kept as strings).

    ``code_prefix`` starts the problem codes (``"fit.data_"`` for ``trialkit fit``'s
    DATA gives ``fit.data_unreadable``).

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
            header = _csv_header(p)
            dtype = {c: "string" for c in header if c in id_columns or c in _TEXT_COLUMNS}
            try:
                return pd.read_csv(p, engine="pyarrow", dtype=dtype, dtype_backend="pyarrow")
            except (pa.ArrowInvalid, ValueError):
                return pd.read_csv(p, dtype=str, keep_default_na=True, encoding="utf-8-sig")
        if suffix == ".xlsx":
            return pd.read_excel(p, dtype=object)
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
