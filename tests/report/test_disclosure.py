"""Disclosure control: small counts suppressed, nothing recoverable from the totals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from trialkit.report.disclosure import (
    SUPPRESSED,
    DisclosureSettings,
    recoverable,
    suppress_counts,
    suppress_means,
)


def _shape_and_counts():
    return st.tuples(st.integers(1, 8), st.integers(1, 5)).flatmap(
        lambda s: arrays(np.int64, s, elements=st.integers(0, 40))
    )


@settings(max_examples=300, deadline=None)
@given(counts=_shape_and_counts(), threshold=st.sampled_from([5, 10]))
def test_no_suppressed_value_recoverable_from_row_or_column_totals(counts, threshold) -> None:
    t = suppress_counts(counts, threshold)
    # every primary suppression is applied
    small = (t.values >= 1) & (t.values < threshold)
    assert (t.mask[small]).all()
    # no line (row or column, margins included) has exactly one hidden entry
    for line in [*t.mask, *t.mask.T]:
        assert line.sum() != 1
    # and an attacker solving line equations recovers nothing
    assert not recoverable(t).any()
    # margins are consistent
    assert (t.values[:-1, -1] == counts.sum(axis=1)).all()
    assert t.values[-1, -1] == counts.sum()


def test_worked_example() -> None:
    counts = pd.DataFrame({"a": [3, 20, 30], "b": [12, 15, 40]}, index=["LA1", "LA2", "LA3"])
    t = suppress_counts(counts, 5)
    frame = t.to_frame()
    assert frame.loc["LA1", "a"] == SUPPRESSED
    # complementary suppression in row LA1 and column a
    assert (frame.loc["LA1"] == SUPPRESSED).sum() >= 2
    assert (frame["a"] == SUPPRESSED).sum() >= 2
    assert t.n_primary == 1 and t.n_secondary >= 2
    assert "cannot be recovered" in t.note()
    assert not recoverable(t).any()


def test_nothing_to_suppress() -> None:
    t = suppress_counts(np.array([[0, 12], [30, 15]]), 5)
    assert not t.mask.any()
    assert t.note() == "No values needed suppression."


def test_means_of_few_people_suppressed() -> None:
    f = pd.DataFrame({"n": [9, 10, 0], "mean": [1.0, 2.0, np.nan], "sd": [0.5, 0.4, np.nan]})
    out, k = suppress_means(f, min_people=10)
    assert k == 1
    assert out.loc[0, "mean"] == SUPPRESSED and out.loc[0, "sd"] == SUPPRESSED
    assert out.loc[1, "mean"] == 2.0


def test_strict_mode_threshold() -> None:
    assert DisclosureSettings().threshold == 5
    assert DisclosureSettings(mode="strict").threshold == 10
    s = DisclosureSettings.from_mapping({"mode": "strict", "min_count": 5})
    assert s.threshold == 10 and "strict" in s.describe()


def test_bridge_between_two_cycles_is_not_recoverable() -> None:
    """Each line has two unknowns, yet the linking entry is determined: it must be widened."""
    from trialkit.report.disclosure import SuppressedTable, _determined

    counts = np.array(
        [
            [2, 3, 20, 20],
            [3, 2, 20, 20],
            [20, 20, 2, 3],
            [20, 20, 3, 2],
        ]
    )
    full = np.zeros((5, 5), dtype=np.int64)
    full[:4, :4] = counts
    full[:4, 4] = counts.sum(axis=1)
    full[4, :4] = counts.sum(axis=0)
    full[4, 4] = counts.sum()
    mask = np.zeros((5, 5), dtype=bool)
    # two 2x2 cycles of unknowns plus one entry linking row 1 to column 2
    mask[:2, :2] = True
    mask[2:4, 2:4] = True
    mask[1, 2] = True
    mask[1, 1] = True
    # the link makes row 1 hold 3 unknowns and column 2 hold 3: no line has a single unknown
    assert all(line.sum() != 1 for line in [*mask, *mask.T])
    exposed = _determined(full, mask)
    assert exposed[1, 2]  # ... and yet it is recoverable by combining equations
    t = SuppressedTable(
        values=full, primary=mask, mask=mask, row_labels=("a", "b", "c", "d"),
        col_labels=("w", "x", "y", "z"),
    )  # fmt: skip
    assert recoverable(t)[1, 2]
    safe = suppress_counts(counts, 4)
    assert not recoverable(safe).any()
