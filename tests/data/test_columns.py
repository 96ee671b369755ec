"""Columnar validation helpers give the answers of the plain conversions (issue #18).

Inside ``column_cache`` a text column is encoded once (codes, distinct values,
Python objects); ``to_object``, ``_str``, ``isin``, ``_row_key`` and ``index_in``
must answer exactly as the row-by-row conversions they replace.  The reference
for each is the plain pandas/numpy computation written out here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trialkit.data._checks import _row_key, _str
from trialkit.data._columns import column_cache, encoded
from trialkit.data.load import STRING, convert_marked, index_in, isin, to_object
from trialkit.data.parse import parse_numbers
from trialkit.data.scoring import INSTRUMENTS, score_matrix


def _text(n: int, k: int, seed: int, missing: float = 0.1) -> pd.Series:
    rng = np.random.default_rng(seed)
    vals = np.array([f"id{v:04d}" for v in rng.integers(0, k, n)], dtype=object)
    vals[rng.random(n) < missing] = None
    return pd.Series(vals, dtype=STRING)


def _plain_objects(s: pd.Series) -> list[object]:
    return list(s.to_numpy(dtype=object, na_value=None))


def test_outside_the_cache_nothing_is_kept() -> None:
    s = _text(50, 7, 1)
    assert encoded(s) is None
    a = to_object(s)
    assert a.flags.writeable and list(a) == _plain_objects(s)


def test_a_column_is_encoded_once_and_read_only() -> None:
    s = _text(500, 40, 2)
    with column_cache():
        a = to_object(s)
        assert to_object(s) is a and _str(s) is a
        assert encoded(a) is encoded(s)  # the object array leads back to its encoding
        assert not a.flags.writeable
        assert list(a) == _plain_objects(s)
        enc = encoded(s)
        assert enc is not None
        codes, uniques = pd.factorize(np.asarray(_plain_objects(s), dtype=object))
        np.testing.assert_array_equal(enc.codes, codes)
        assert list(enc.uniques) == list(uniques)
    assert encoded(s) is None


@pytest.mark.parametrize(
    "allowed",
    [
        {"id0001", "id0003", "nope"},
        [],
        ["id0002", None],  # a missing key matches missing values, as pyarrow's is_in does
        [1, "id0004"],  # not all text: compared as Python objects
    ],
)
def test_isin_by_codes_equals_row_by_row(allowed: object) -> None:
    s = _text(300, 6, 3)
    plain = isin(s, allowed)
    with column_cache():
        assert isin(s, allowed).tolist() == plain.tolist()
        assert isin(to_object(s), allowed).tolist() == plain.tolist()


def _sequential_row_key(*columns: object) -> tuple[np.ndarray, np.ndarray]:
    """The former definition: one factorisation per column, renumbered each time."""
    n = len(columns[0])  # type: ignore[arg-type]
    key = np.zeros(n, dtype=np.int64)
    incomplete = np.zeros(n, dtype=bool)
    for col in columns:
        codes = pd.factorize(col, use_na_sentinel=True)[0].astype(np.int64)  # type: ignore[call-overload]
        incomplete |= codes < 0
        key = pd.factorize(key * (int(codes.max(initial=-1)) + 2) + codes + 1)[0].astype(np.int64)
    return key, incomplete


def test_row_key_equals_one_factorisation_per_column() -> None:
    a, b = _text(2000, 300, 4), _text(2000, 3, 5)
    c = pd.Series(np.random.default_rng(6).integers(0, 5, 2000))
    ref_key, ref_inc = _sequential_row_key(a, b, c)
    key, inc = _row_key(a, b, c)
    np.testing.assert_array_equal(key, ref_key)
    np.testing.assert_array_equal(inc, ref_inc)
    with column_cache():
        key2, inc2 = _row_key(to_object(a), b, c)
    np.testing.assert_array_equal(key2, ref_key)
    np.testing.assert_array_equal(inc2, ref_inc)


def test_row_key_renumbers_before_overflow() -> None:
    # six columns of 2,000 distinct values: the mixed-radix key would pass 2**62
    rng = np.random.default_rng(7)
    cols = [pd.Series(rng.integers(0, 2000, 3000)) for _ in range(6)]
    cols.append(cols[0].copy())
    key, _ = _row_key(*cols)
    ref, _ = _sequential_row_key(*cols)
    np.testing.assert_array_equal(key, ref)


def test_index_in_equals_get_indexer() -> None:
    keys = np.array([f"k{i}" for i in range(50)], dtype=object)
    values = np.array([f"k{i}" for i in range(-5, 60, 3)] + [None], dtype=object)
    ref = pd.Index(keys).get_indexer(values)
    np.testing.assert_array_equal(index_in(values, keys), ref)
    mixed = np.array([1, "k2", 3.5], dtype=object)  # not text: pandas' lookup
    np.testing.assert_array_equal(index_in(mixed, np.array([3.5, "k2"], dtype=object)), [-1, 1, 0])
    assert index_in(np.array([], dtype=object), keys).tolist() == []
    assert index_in(values, np.array([], dtype=object)).tolist() == [-1] * len(values)


def test_a_number_column_is_parsed_once() -> None:
    raw = pd.Series(["1,412", " 7 ", "abc", "", None, "12,345.5", "1 000"], dtype=object)
    conv, bad, grouped = convert_marked(raw, "float")
    ref = parse_numbers(raw)
    assert grouped.tolist() == ref.grouped.tolist()
    np.testing.assert_array_equal(conv.to_numpy(dtype=float, na_value=np.nan), ref.values)
    assert bad.tolist() == (raw.notna().to_numpy() & np.isnan(ref.values)).tolist()
    numeric = pd.Series([1.0, np.nan, 3.0])
    assert not convert_marked(numeric, "float")[2].any()


@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_score_matrix_sums_as_nansum(name: str) -> None:
    ins = INSTRUMENTS[name]
    rng = np.random.default_rng(8)
    lo = ins.low if not ins.allowed else min(ins.allowed)
    hi = ins.high if not ins.allowed else max(ins.allowed)
    x = rng.uniform(lo, hi, (400, ins.n_items)).round()
    x[rng.random(x.shape) < 0.25] = np.nan
    out = score_matrix(x, ins)
    xr = x.copy()
    for i in ins.reversed_items:
        xr[:, i - 1] = ins.low + ins.high - xr[:, i - 1]
    for sc in ins.scales:
        if sc.method == "sum_of_scales":
            continue
        idx = [i - 1 for i in sc.items]
        n = (~np.isnan(xr[:, idx])).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(xr[:, idx], axis=1) / np.where(n > 0, n, 1)
        mean = np.where(n >= max(sc.required, 1), mean, np.nan)
        ref = mean if sc.method == "mean" else mean * len(idx)
        if name == "SWEMWBS" and sc.name == "metric":
            continue
        np.testing.assert_array_equal(out[sc.name], ref)
