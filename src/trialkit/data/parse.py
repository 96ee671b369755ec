"""Parsing rules for cells written by hand: numbers and category levels.

One set of rules for every verb that reads a table a person typed (``validate``
through :func:`trialkit.data.load.convert`, ``randomise`` through the clusters
reader), so a file means the same thing to each of them.

Numbers
    A cell is a number when :func:`pandas.to_numeric` reads it after the
    surrounding blanks are removed, or when it is written with a thousands
    separator between groups of three digits: a comma (``1,412``), a space, a
    no-break space or a thin space (``1 356``), the same separator throughout,
    optionally followed by a decimal point and digits (``12,345.5``).  Anything
    else (``abc``, ``12,3``, ``1,41,2``) is not a number.  Grouped cells are
    marked so that the caller can record the reading.
Levels
    A value matches a declared level when the two are equal after removing the
    surrounding blanks and folding case (:meth:`str.casefold`); the value is then
    replaced by the declared spelling, and the caller records the change.
    Without declared levels, values that differ only in case or surrounding
    blanks (``North``, ``north``, ``NORTH ``) are reported, never merged silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from trialkit.errors import TrialkitError

__all__ = [
    "numeric_outcome",
    "COVARIATE_KINDS",
    "LevelMatch",
    "NumberParse",
    "case_variants",
    "covariate_kind",
    "level_key",
    "match_levels",
    "parse_numbers",
]

_GROUPED = re.compile(
    r"[+-]?\d{1,3}(?P<sep>[, \u00a0\u2009\u202f])\d{3}(?:(?P=sep)\d{3})*(?:\.\d+)?"
)
_SEPARATORS = ", \u00a0\u2009\u202f"

COVARIATE_KINDS: dict[str, Literal["float", "str"]] = {
    "continuous": "float",
    "count": "float",
    "binary": "float",
    "categorical": "str",
}
"""How a protocol covariate ``type`` is read: as a number (``float``) or as text (``str``)."""


def covariate_kind(declared_type: str) -> Literal["float", "str"]:
    """The parsing kind of a protocol covariate type (``categorical`` is text, others numbers)."""
    return COVARIATE_KINDS[declared_type]


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberParse:
    """Cells read as numbers.

    Attributes
    ----------
    values : ndarray of float
        The numbers (NaN for missing or unreadable cells).
    bad : ndarray of bool
        Cells that held something that is not a number.
    grouped : ndarray of bool
        Cells written with a thousands separator (read as numbers).
    """

    values: np.ndarray
    bad: np.ndarray
    grouped: np.ndarray


def _text(values: pd.Series | Sequence[object]) -> list[str | None]:
    out: list[str | None] = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            out.append(None)
            continue
        t = str(v).strip()
        out.append(t or None)
    return out


def parse_numbers(values: pd.Series | Sequence[object]) -> NumberParse:
    """Read text cells as numbers by the rules in the module docstring.

    Parameters
    ----------
    values : Series or sequence
        Cells as text (or already numbers); missing and blank cells are missing.

    Returns
    -------
    NumberParse
    """
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        vals = s.to_numpy(dtype=float, na_value=np.nan)
        vals = np.where(np.isinf(vals), np.nan, vals)
        none = np.zeros(len(s), dtype=bool)
        return NumberParse(values=vals, bad=none, grouped=none.copy())
    txt = s.astype("string").str.strip()
    txt = txt.mask(txt == "", pd.NA)
    present = np.asarray(txt.notna().to_numpy(dtype=bool, na_value=False))
    vals = np.array(pd.to_numeric(txt, errors="coerce").to_numpy(dtype=float, na_value=np.nan))
    grouped = np.zeros(len(s), dtype=bool)
    for i in np.flatnonzero(present & np.isnan(vals)):
        t = str(txt.iloc[i])
        if _GROUPED.fullmatch(t):
            grouped[i] = True
            vals[i] = float("".join(ch for ch in t if ch not in _SEPARATORS))
    vals = np.where(np.isinf(vals), np.nan, vals)
    return NumberParse(values=vals, bad=present & np.isnan(vals), grouped=grouped)


def level_key(value: str) -> str:
    """The matching key of a level: blanks removed at both ends, case folded."""
    return value.strip().casefold()


@dataclass(frozen=True, slots=True, kw_only=True)
class LevelMatch:
    """Values matched to declared levels.

    Attributes
    ----------
    values : tuple of str or None
        The declared spelling for matched values; unmatched values as given
        (blanks removed); None for missing.
    unmatched : ndarray of bool
        Values matching no declared level.
    normalised : ndarray of bool
        Values whose spelling differed from the declared level they match.
    """

    values: tuple[str | None, ...]
    unmatched: np.ndarray
    normalised: np.ndarray


def match_levels(values: pd.Series | Sequence[object], declared: Sequence[str]) -> LevelMatch:
    """Match ``values`` to ``declared`` levels after trimming and folding case.

    Parameters
    ----------
    values : Series or sequence
    declared : sequence of str
        The protocol's levels (two declared levels with the same key match by
        exact spelling only).

    Returns
    -------
    LevelMatch
    """
    keys: dict[str, list[str]] = {}
    for lev in declared:
        keys.setdefault(level_key(lev), []).append(lev)
    raw = [None if t is None else str(v) for v, t in zip(values, _text(values), strict=True)]
    out: list[str | None] = []
    unmatched = np.zeros(len(raw), dtype=bool)
    normalised = np.zeros(len(raw), dtype=bool)
    for i, v in enumerate(raw):
        if v is None:
            out.append(None)
            continue
        if v in declared:
            out.append(v)
            continue
        hits = keys.get(level_key(v), [])
        if len(hits) == 1:
            out.append(hits[0])
            normalised[i] = True
        else:
            out.append(v.strip())
            unmatched[i] = True
    return LevelMatch(values=tuple(out), unmatched=unmatched, normalised=normalised)


def case_variants(values: pd.Series | Sequence[object]) -> dict[str, tuple[str, ...]]:
    """Groups of distinct values that differ only in case or surrounding blanks.

    Returns
    -------
    dict
        Matching key -> the distinct spellings found (sorted), for keys with more
        than one spelling.
    """
    groups: dict[str, set[str]] = {}
    for v, t in zip(values, _text(values), strict=True):
        if t is not None:
            groups.setdefault(level_key(str(v)), set()).add(str(v))
    return {k: tuple(sorted(s)) for k, s in sorted(groups.items()) if len(s) > 1}


def numeric_outcome(
    values: pd.Series, *, name: str, path: str, code: str, error: type[TrialkitError]
) -> np.ndarray:
    """An outcome column as floats (booleans as 0/1), or ``error`` naming a text value.

    The one rule for verbs that take an outcome column from a file (``randtest``,
    ``cace``): a column that is not numeric is refused, quoting its first value that
    does not read as a number.
    """
    ys = values.astype(float) if pd.api.types.is_bool_dtype(values) else values
    if not pd.api.types.is_numeric_dtype(ys):
        text = ys.astype(str)
        odd = text[pd.to_numeric(text, errors="coerce").isna()]
        example = odd.iloc[0] if len(odd) else (text.iloc[0] if len(text) else "")
        raise error.from_problem(
            path=path,
            code=code,
            message=f"outcome `{name}` must be numeric; got text such as {example!r}.",
            hint="store the outcome as plain numbers (no thousands separators or units; "
            "0/1 for a binary outcome)",
        )
    return np.asarray(ys.to_numpy(dtype=float, na_value=np.nan), dtype=float)
