"""The one categorical coding rule (trialkit.models.coding)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trialkit.models.coding import (
    CategoricalCoding,
    code_categorical,
    is_categorical,
    observed_levels,
)


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (pd.Series(["a", "b"]), True),
        (pd.Series([True, False]), True),
        (pd.Series(pd.Categorical(["a", "b"])), True),
        (pd.Series([1.0, 2.0]), False),
        (pd.Series([1, 2]), False),
    ],
)
def test_categorical_by_dtype(series, expected):
    assert is_categorical(series) is expected


def test_declared_numeric_is_categorical():
    assert is_categorical(pd.Series([1, 2, 3]), declared=True)


def test_sorted_levels_first_is_reference():
    x, coding = code_categorical(pd.Series(["m", "f", "x", "f"], name="sex"))
    assert coding == CategoricalCoding(
        variable="sex", levels=("f", "m", "x"), reference="f", columns=("sex[m]", "sex[x]")
    )
    np.testing.assert_array_equal(x, [[1, 0], [0, 0], [0, 1], [0, 0]])


def test_numbers_sort_numerically_as_r_factor():
    assert observed_levels(pd.Series([10, 2, 1])) == [1, 2, 10]


def test_category_dtype_keeps_declared_order_of_present_levels():
    s = pd.Series(pd.Categorical(["m", "f"], categories=["x", "m", "f"]))
    assert observed_levels(s) == ["m", "f"]


def test_declared_levels_win_and_unknown_levels_follow_sorted():
    s = pd.Series(["b", "a", "c", None])
    assert observed_levels(s, levels=["c", "zz"]) == ["c", "a", "b"]
    x, coding = code_categorical(s, "g", levels=["c"])
    assert coding.reference == "c" and coding.columns == ("g[a]", "g[b]")
    np.testing.assert_array_equal(x[3], [0, 0])  # missing: no indicator


def test_single_level_gives_no_columns_and_round_trips():
    x, coding = code_categorical(pd.Series(["a", "a"]), "v")
    assert x.shape == (2, 0) and coding.reference == "a" and coding.columns == ()
    assert CategoricalCoding.from_dict(coding.to_dict()) == coding
