"""The columnar helpers of the validation rules give the answers of the row-wise ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trialkit.data import scoring
from trialkit.data._checks import _codes, _combine, _first_seen, _spread
from trialkit.data._checks_measurements import _blocks, _with_scales


def test_codes_number_values_in_order_of_first_appearance():
    codes, uniques, objects = _codes(pd.Series(["b", None, "a", "b"], dtype=object))
    assert codes.tolist() == [0, -1, 1, 0]
    assert uniques.tolist() == ["b", "a"]
    assert objects.tolist() == ["b", None, "a", "b"]
    assert _spread(np.array([True, False]), codes).tolist() == [True, False, False, True]


@pytest.mark.parametrize("span", [None, 50, 10**9])
def test_first_seen_is_not_duplicated(span):
    rng = np.random.default_rng(3)
    for distinct in (False, True):
        key = rng.permutation(50)[:40] if distinct else rng.integers(0, 50, 200)
        expected = ~pd.Series(key).duplicated(keep="first").to_numpy()
        assert (_first_seen(key, span) == expected).all()


def test_combine_keys_equal_exactly_when_every_code_is():
    a = np.array([0, 0, 1, -1, 0])
    b = np.array([2, 2, 2, 2, 1])
    key, incomplete, span = _combine((a, 2), (b, 3))
    assert key[0] == key[1] and len(set(key[[0, 2, 3, 4]])) == 4
    assert incomplete.tolist() == [False, False, False, True, False]
    assert key.max() < span


def test_blocks_never_leave_one_row_alone():
    for n in range(0, 40):
        blocks = _blocks(n, 7)
        assert blocks[0][0] == 0 and blocks[-1][1] == n
        assert all(b - a >= 2 for a, b in blocks) or n <= 1
        assert all(b1 == a2 for (_, b1), (a2, _) in zip(blocks, blocks[1:], strict=False))


def test_scores_in_blocks_equal_scores_in_one_pass_bit_for_bit():
    # fractions: the order of additions shows in the last bit
    ins = scoring.Instrument(
        id="C",
        n_items=12,
        low=0.5,
        high=7.25,
        integer=False,
        scales=(
            scoring.Scale(name="total", items=tuple(range(1, 13))),
            scoring.Scale(name="odd", items=(1, 3, 5, 7, 9, 11), method="mean"),
        ),
        reversed_items=(2,),
    )
    rng = np.random.default_rng(0)
    x = rng.random((3001, 12)) * 6.75 + 0.5
    x[rng.random(x.shape) < 0.1] = np.nan
    whole = scoring.score_matrix(x, ins)
    for a, b in _blocks(len(x), 1000):
        part = scoring.score_matrix(x[a:b], ins)
        for k in whole:
            assert np.array_equal(whole[k][a:b].view(np.int64), part[k].view(np.int64))


def test_with_scales_keeps_the_parts_of_a_sum():
    rcads = scoring.INSTRUMENTS["RCADS"]
    kept = _with_scales(rcads, {"total"})
    assert "total" in kept.scale_names and "total_anxiety" not in kept.scale_names
    x = np.random.default_rng(1).integers(0, 4, (50, 47)).astype(float)
    assert np.array_equal(
        scoring.score_matrix(x, kept)["total"], scoring.score_matrix(x, rcads)["total"]
    )
    sw = _with_scales(scoring.INSTRUMENTS["SWEMWBS"], {"metric"})
    assert sw.scale_names == ("raw", "metric")
