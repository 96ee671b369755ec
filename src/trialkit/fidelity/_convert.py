"""Cell-level conversions of the fidelity tables.

The ``_to_*`` functions convert columns the data stage's rules have already
checked (the delivery log); :func:`_as_date` and :func:`_not_in` also record a
Problem (file, row, column) for every bad value of the keyworkers and families
tables.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

import numpy as np
import pandas as pd

from trialkit.data.load import convert
from trialkit.errors import Problem


def _row(i: Any) -> str:
    return f"row {int(i) + 1}"


def _at(frame: pd.DataFrame, idx: Any, col: str) -> Any:
    """One cell (typed ``Any`` for the checker)."""
    return frame.at[idx, col]


def _flag(
    problems: list[Problem],
    index: Iterable[Any],
    name: str,
    col: str | None,
    code: str,
    message: str | Callable[[Any], str],
    hint: str,
) -> None:
    """One problem per row label in ``index``, at ``<name> row <i> [column <col>]``.

    ``message`` is a text or a function of the row label.
    """
    for idx in index:
        where = f"{name} {_row(idx)}" + (f" column {col}" if col else "")
        text = message(idx) if callable(message) else message
        problems.append(Problem(path=where, code=code, message=text, hint=hint))


def _not_in(
    problems: list[Problem],
    frame: pd.DataFrame,
    col: str,
    allowed: Collection[Any],
    name: str,
    code: str,
    expected: str,
    hint: str,
) -> None:
    """Flag each non-empty ``frame[col]`` outside ``allowed``: "'col' must be <expected>; got v"."""
    bad = frame[col].notna() & ~frame[col].isin(allowed)
    _flag(
        problems,
        frame.index[bad.to_numpy()],
        name,
        col,
        code,
        lambda i: f"'{col}' must be {expected}; got {_at(frame, i, col)!r}",
        hint,
    )


def _to_bool(values: pd.Series) -> pd.Series:
    """Booleans (true/false, yes/no, 1/0 as the data stage reads them), NA when empty."""
    return convert(values, "bool")[0].astype("boolean")


def _to_date(values: pd.Series) -> pd.Series:
    """Dates as midnight timestamps, NaT when empty."""
    return pd.to_datetime(values, errors="coerce").dt.normalize()


def _to_number(values: pd.Series) -> pd.Series:
    """Floats, NaN when empty."""
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _as_date(values: pd.Series, name: str, col: str, problems: list[Problem]) -> pd.Series:
    parsed = _to_date(values)
    bad = values.notna() & parsed.isna()
    _flag(
        problems,
        values.index[bad.to_numpy()],
        name,
        col,
        "fidelity.delivery.bad_date",
        lambda i: f"'{col}' must be a date (YYYY-MM-DD); got {values[i]!r}",
        "write dates as YYYY-MM-DD",
    )
    return parsed


def _as_id(values: pd.Series) -> pd.Series:
    """Identifiers as strings (``12`` and ``12.0`` become ``'12'``), NA kept."""

    def conv(v: Any) -> Any:
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            return pd.NA
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v).strip()

    return values.map(conv).astype("object")


def _to_month(values: pd.Series) -> pd.Series:
    """First day of each ``YYYY-MM`` month, NaT when empty."""

    def start(v: Any) -> Any:
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            return pd.NaT
        return pd.Timestamp(pd.Period(str(v)[:7], freq="M").start_time)

    return pd.Series([start(v) for v in values], index=values.index, dtype="datetime64[ns]")
