"""Categorical coding: the one rule every analysis uses to turn a covariate into columns.

Randomisation balance scores, the fitted models, the analysis plan (subgroups),
the CACE and the randomisation test all code categorical covariates here, so the
same covariate always gets the same reference level and the same term names.

Which columns are categorical
-----------------------------
A column is categorical when the caller declares it so (for example a numeric
income band passed as ``categorical=``) or when its dtype is not numeric:
string, object, boolean and ``category`` columns are categorical.  Numeric
columns otherwise enter as they are.

Reference-level rule
--------------------
The levels are the distinct non-missing values observed in the column, in this
order:

1. the **declared order** when levels are declared, by the caller (``levels=``)
   or by a ``category`` dtype (its categories); declared levels that do not occur
   are dropped;
2. otherwise **sorted order** of the observed values: numbers in numeric order,
   text in character order (values that cannot be compared with each other are
   sorted by their text).

The **first level is the reference**: it gets no column.  Each other level gets
an indicator column named ``"<variable>[<level>]"``.  This is R's default for
``factor()`` (sorted levels, first as reference), as used by lme4, clubSandwich
and cvcrand, so term names and estimates match theirs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CategoricalCoding",
    "code_categorical",
    "code_factorised",
    "coding_for",
    "is_categorical",
    "observed_levels",
    "order_levels",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CategoricalCoding:
    """Record of how one categorical covariate was coded.

    Attributes
    ----------
    variable : str
        Column name.
    levels : tuple of str
        Observed levels (as text), reference first.
    reference : str
        The reference level (no column).
    columns : tuple of str
        Names of the indicator columns, ``"<variable>[<level>]"``, one per
        non-reference level.
    """

    variable: str
    levels: tuple[str, ...]
    reference: str
    columns: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "variable": self.variable,
            "levels": list(self.levels),
            "reference": self.reference,
            "columns": list(self.columns),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CategoricalCoding:
        """Rebuild a coding saved with :meth:`to_dict`."""
        return cls(
            variable=str(d["variable"]),
            levels=tuple(str(v) for v in d["levels"]),
            reference=str(d["reference"]),
            columns=tuple(str(c) for c in d["columns"]),
        )


def is_categorical(series: pd.Series, *, declared: bool = False) -> bool:
    """Whether ``series`` is coded as categorical.

    Parameters
    ----------
    series : Series
    declared : bool
        The caller declares the column categorical (whatever its dtype).

    Returns
    -------
    bool
        True when declared, or when the dtype is not numeric (string, object,
        ``category``) or is boolean.
    """
    if declared:
        return True
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def observed_levels(series: pd.Series, levels: Sequence[object] | None = None) -> list[object]:
    """The observed levels of ``series`` in coding order (reference first).

    Parameters
    ----------
    series : Series
    levels : sequence, optional
        Declared levels; their order is kept (levels that do not occur are
        dropped, observed levels not declared follow in sorted order).

    Returns
    -------
    list
        Distinct non-missing values (their original type), ordered by the rule in
        the module docstring.
    """
    present = series.dropna()
    if levels is None and isinstance(series.dtype, pd.CategoricalDtype):
        levels = list(series.cat.categories)
    return order_levels(present.unique().tolist(), levels)


def order_levels(values: Sequence[object], levels: Sequence[object] | None = None) -> list[object]:
    """Distinct observed ``values`` in coding order (the rule in the module docstring).

    Parameters
    ----------
    values : sequence
        The distinct non-missing values observed (any order).
    levels : sequence, optional
        Declared levels, as in :func:`observed_levels`.
    """
    values = list(values)
    try:
        ordered = sorted(values)  # type: ignore[type-var]
    except TypeError:
        ordered = sorted(values, key=str)
    if levels is None:
        return ordered
    seen = set(values)
    first = [v for v in levels if v in seen]
    return first + [v for v in ordered if v not in set(first)]


def code_categorical(
    series: pd.Series, variable: str | None = None, *, levels: Sequence[object] | None = None
) -> tuple[np.ndarray, CategoricalCoding]:
    """Indicator columns for the non-reference levels of ``series``.

    Parameters
    ----------
    series : Series
        The covariate (missing values give 0 in every column; callers drop or
        mask those rows).
    variable : str, optional
        Name used for the columns; defaults to ``series.name``.
    levels : sequence, optional
        Declared levels (see :func:`observed_levels`).

    Returns
    -------
    x : ndarray, shape (n, L - 1)
        One float 0/1 column per non-reference level, in level order.
    coding : CategoricalCoding
        Variable, levels, reference and column names.  A column with one
        observed level gives no columns; with none, ``reference`` is ``""``.
    """
    name = str(series.name if variable is None else variable)
    lev = observed_levels(series, levels)
    cols = [(series == v).to_numpy(dtype=bool).astype(float) for v in lev[1:]]
    x = np.column_stack(cols) if cols else np.zeros((len(series), 0))
    return x, coding_for(name, lev)


def code_factorised(
    codes: np.ndarray,
    uniques: Sequence[object],
    variable: str,
    *,
    levels: Sequence[object] | None = None,
) -> tuple[np.ndarray, CategoricalCoding]:
    """:func:`code_categorical` for a column already factorised (``pandas.factorize``).

    ``codes`` index ``uniques`` (``-1`` for missing); only values whose code occurs
    are levels.  Gives the same columns and coding as :func:`code_categorical` on
    the column, at the cost of one pass over integer codes.
    """
    codes = np.asarray(codes, dtype=np.int64)
    used = np.bincount(codes[codes >= 0], minlength=len(uniques)) > 0
    present = [v for v, u in zip(uniques, used.tolist(), strict=True) if u]
    lev = order_levels(present, levels)
    position = {v: i for i, v in enumerate(uniques) if used[i]}
    x = np.zeros((codes.shape[0], max(len(lev) - 1, 0)))
    for j, v in enumerate(lev[1:]):
        x[:, j] = codes == position[v]
    return x, coding_for(variable, lev)


def coding_for(variable: str, lev: Sequence[object]) -> CategoricalCoding:
    """The :class:`CategoricalCoding` of ``variable`` with levels ``lev`` (reference first)."""
    text = tuple(str(v) for v in lev)
    return CategoricalCoding(
        variable=variable,
        levels=text,
        reference=text[0] if text else "",
        columns=tuple(f"{variable}[{t}]" for t in text[1:]),
    )
