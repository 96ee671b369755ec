"""Read delivery, keyworker, family and allocation tables (CSV, Parquet or Excel).

Used by the CLI: it reads a raw data directory or the data stage's validated
Parquet directory alike (identifier columns are read as text, so ``01`` stays ``01``),
finding and reading each table through the stage store (:mod:`trialkit.store`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd

from trialkit import store
from trialkit.errors import DataError, FidelityError, Problem

__all__ = ["find_table", "read_allocation", "read_delivery_dir", "read_table"]

_ID_COLUMNS = ("la_id", "cluster", "keyworker_id", "family_id", "session_id")
_CODES = {"data.unreadable": "fidelity.table.unreadable", "data.format": "fidelity.table.format"}


def find_table(directory: str | os.PathLike[str], name: str) -> Path | None:
    """Return the file holding table ``name`` in ``directory`` (Parquet, CSV or Excel)."""
    hits = store.table_files(directory, name, order=store.PARQUET_FIRST)
    return hits[0] if hits else None


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read one CSV, Parquet or Excel table with the data stage's loader (ids kept as text).

    An unreadable table or unknown format raises :class:`FidelityError`
    (codes ``fidelity.table.unreadable`` / ``fidelity.table.format``).
    """
    try:
        return store.read_table(path, _ID_COLUMNS)
    except DataError as exc:
        problems = [
            replace(p, path=str(path), code=_CODES.get(p.code, p.code)) for p in exc.problems
        ]
        raise FidelityError(f"{path}: {exc.message}", problems) from None


def read_delivery_dir(directory: str | os.PathLike[str]) -> dict[str, tuple[pd.DataFrame, str]]:
    """Read ``delivery``, ``keyworkers``, ``families`` (and ``clusters`` if present).

    Returns a mapping ``name -> (frame, file name)``; any of CSV/Parquet/Excel is
    accepted (Parquet preferred when a table is given in several formats).
    """
    root = Path(directory)
    if not root.is_dir():
        raise FidelityError.from_problem(
            path=str(root),
            code="fidelity.data.not_a_directory",
            message=f"data directory '{root}' must be an existing directory",
            hint="pass the validated data directory with --data",
        )
    store.verify_data_directory(root)
    out: dict[str, tuple[pd.DataFrame, str]] = {}
    problems = []
    for name in ("delivery", "keyworkers", "families", "clusters"):
        path = find_table(root, name)
        if path is None:
            if name != "clusters":
                problems.append(
                    Problem(
                        path=str(root / f"{name}.csv"),
                        code="fidelity.data.missing_table",
                        message=f"table '{name}' must be present in the data directory",
                        hint=f"add {name}.csv or {name}.parquet to '{root}'",
                    )
                )
            continue
        out[name] = (read_table(path), path.name)
    if problems:
        raise FidelityError(f"{len(problems)} table(s) missing in '{root}'", problems)
    return out


def read_allocation(directory: str | os.PathLike[str]) -> tuple[pd.DataFrame, str]:
    """Read ``allocation.csv`` (columns ``cluster, arm``) from an allocation directory or file.

    Read through :func:`trialkit.store.read_allocation` (a file given directly may be
    CSV, Parquet or Excel); a directory with a manifest is verified against it.
    """
    path = store.locate_allocation(directory)
    if not path.is_file():
        raise FidelityError.from_problem(
            path=str(path),
            code="fidelity.allocation.missing",
            message=f"allocation file '{path}' must exist",
            hint="pass the directory written by 'trialkit randomise' (it holds allocation.csv)",
        )
    try:
        record = store.read_allocation(path, as_table=True)
    except DataError as exc:
        problems = [
            replace(p, path=str(path), code=_CODES.get(p.code, p.code)) for p in exc.problems
        ]
        raise FidelityError(f"{path}: {exc.message}", problems) from None
    return record.frame, path.name
