"""Text columns encoded once per validation: Python objects and integer codes.

Validation asks many questions of the same few text columns of a million-row
table (``measurements.entity_id`` is turned into Python objects, checked for
membership in the families table, used in duplicate keys and looked up again
by the flow counts).  Each answer used to start by converting the pyarrow
strings again.  Inside :func:`column_cache` the first request for a column
dictionary-encodes it (:func:`pyarrow.compute.dictionary_encode`, one hash
pass in C) and keeps

- ``codes``: one ``int64`` per row, the position of its value among the
  distinct values in order of first appearance (``-1`` for missing), the same
  numbering as :func:`pandas.factorize`;
- ``uniques``: the distinct values as Python strings;
- ``objects``: the rows as a read-only numpy object array (``None`` for
  missing), built by ``uniques[codes]``, so each distinct string is one Python
  object whatever the number of rows.

Later requests for the same column, whether as the pandas Series or as the
object array handed out, reuse them.  Outside the block nothing is kept and
every caller gets the plain conversions.  Columns are recognised by the
identity of their pyarrow data, which is immutable; the cache holds a reference
to it, so an identity cannot be reused while the block lasts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Encoded", "column_cache", "encoded"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Encoded:
    """One text column, encoded (see the module docstring).

    Attributes
    ----------
    source : pyarrow.ChunkedArray or pyarrow.Array
        The column's data (kept so that its identity stays unique).
    codes : ndarray of int64
        Position of each row's value in ``uniques``; ``-1`` for missing.
    uniques : ndarray of object
        Distinct values (Python strings) in order of first appearance.
    objects : ndarray of object
        The rows as Python strings, ``None`` for missing (read-only).
    """

    source: object
    codes: np.ndarray
    uniques: np.ndarray
    objects: np.ndarray


_CACHE: ContextVar[dict[int, Encoded] | None] = ContextVar("trialkit_data_columns", default=None)


@contextmanager
def column_cache() -> Iterator[None]:
    """Within the block, encode each text column once (see the module docstring)."""
    token = _CACHE.set({})
    try:
        yield
    finally:
        _CACHE.reset(token)


def _arrow_text(values: object) -> pa.ChunkedArray | pa.Array | None:
    """The pyarrow string data behind a Series, or None for anything else."""
    if not isinstance(values, pd.Series):
        return None
    data = getattr(values.array, "_pa_array", None)
    if not isinstance(data, (pa.ChunkedArray, pa.Array)):
        return None
    if not (pa.types.is_string(data.type) or pa.types.is_large_string(data.type)):
        return None
    return data


def _encode(data: pa.ChunkedArray | pa.Array) -> Encoded:
    arr = data.combine_chunks() if isinstance(data, pa.ChunkedArray) else data
    enc = pc.dictionary_encode(arr)
    codes = np.asarray(enc.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    uniques = np.empty(len(enc.dictionary) + 1, dtype=object)
    uniques[:-1] = enc.dictionary.to_pylist()
    uniques[-1] = None  # codes of -1 pick it
    objects = uniques[codes]
    objects.flags.writeable = False
    uniques = uniques[:-1]
    uniques.flags.writeable = False
    return Encoded(source=data, codes=codes, uniques=uniques, objects=objects)


def encoded(values: object) -> Encoded | None:
    """The encoding of a text column inside :func:`column_cache`, else None.

    Parameters
    ----------
    values : Series or ndarray
        A pyarrow-backed text Series, or an object array handed out by this
        cache (``Encoded.objects``).  Anything else gives None.
    """
    cache = _CACHE.get()
    if cache is None:
        return None
    if isinstance(values, np.ndarray):
        return cache.get(id(values))
    data = _arrow_text(values)
    if data is None:
        return None
    hit = cache.get(id(data))
    if hit is None:
        hit = _encode(data)
        cache[id(data)] = hit
        cache[id(hit.objects)] = hit
    return hit
