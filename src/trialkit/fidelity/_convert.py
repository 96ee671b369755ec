"""Cell-level conversions that record a Problem (file, row, column) for every bad value."""

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


def _as_bool(values: pd.Series, name: str, col: str, problems: list[Problem]) -> pd.Series:
    """Booleans (true/false, yes/no, 1/0 as the data stage reads them); bad cells flagged."""
    parsed, bad = convert(values, "bool")
    got = dict(zip(values.index[bad], values[bad].tolist(), strict=True))
    _flag(
        problems,
        got,
        name,
        col,
        "fidelity.delivery.not_boolean",
        lambda i: f"'{col}' must be true or false; got {got[i]!r}",
        "use true/false (or 1/0)",
    )
    return parsed.astype("boolean")


def _as_date(values: pd.Series, name: str, col: str, problems: list[Problem]) -> pd.Series:
    parsed = pd.to_datetime(values, errors="coerce")
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
    return parsed.dt.normalize()


def _as_number(values: pd.Series, name: str, col: str, problems: list[Problem]) -> pd.Series:
    parsed = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = values.notna() & parsed.isna()
    _flag(
        problems,
        values.index[bad.to_numpy()],
        name,
        col,
        "fidelity.delivery.not_numeric",
        lambda i: f"'{col}' must be a number; got {values[i]!r}",
        "write a plain number",
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


def _month_periods(values: pd.Series, name: str, problems: list[Problem]) -> pd.Series:
    out: list[Any] = []
    for idx, v in values.items():
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            out.append(pd.NaT)
            problems.append(
                Problem(
                    path=f"{name} {_row(idx)} column month",
                    code="fidelity.delivery.missing_value",
                    message="'month' must be given for a clinician_month record; got an empty cell",
                    hint="write the month as YYYY-MM",
                )
            )
            continue
        try:
            out.append(pd.Timestamp(pd.Period(str(v)[:7], freq="M").start_time))
        except (ValueError, TypeError):
            out.append(pd.NaT)
            problems.append(
                Problem(
                    path=f"{name} {_row(idx)} column month",
                    code="fidelity.delivery.bad_month",
                    message=f"'month' must be YYYY-MM; got {v!r}",
                    hint="write the month as YYYY-MM, e.g. 2025-03",
                )
            )
    return pd.Series(out, index=values.index, dtype="datetime64[ns]")
