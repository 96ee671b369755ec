"""The columnar flow helpers give what the pandas operations they replace give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trialkit.data.frame import EXCLUSION_COLUMNS, _exclusions_table, _part


def _reference(parts: list[tuple[object, ...]]) -> pd.DataFrame:
    """Concatenate, write as text and sort with pandas (the former implementation)."""
    frames = []
    for p in parts:
        cols = []
        for c in p:
            if isinstance(c, tuple):
                pos, ids = c
                cols.append(np.asarray(ids, dtype=object)[pos])
            else:
                cols.append(c)
        n = next(len(c) for c in cols if not isinstance(c, str))
        frames.append(
            pd.DataFrame(
                {
                    k: (np.full(n, c, dtype=object) if isinstance(c, str) else c)
                    for k, c in zip(EXCLUSION_COLUMNS, cols, strict=True)
                }
            )
        )
    return (
        pd.concat(frames, ignore_index=True)[EXCLUSION_COLUMNS]
        .astype(str)
        .sort_values(EXCLUSION_COLUMNS, kind="stable")
        .reset_index(drop=True)
    )


@pytest.mark.parametrize("seed", range(5))
def test_exclusions_sorted_as_pandas_sorts_them(seed: int) -> None:
    rng = np.random.default_rng(seed)
    words = np.array(["b", "a", "B", "ä", "a b", "10", "9", "", "zz", "Ω"], dtype=object)
    ids = np.array([f"F{i:03d}" for i in rng.permutation(60)], dtype=object)
    ids2 = np.array([f"F{i:03d}" for i in range(50, 70)], dtype=object)  # overlaps ids
    parts_in: list[tuple[object, ...]] = []
    for _ in range(6):
        k = int(rng.integers(0, 30))
        pos = np.sort(rng.choice(len(ids), k, replace=False))
        reasons = rng.choice(words, k).astype(object)
        reasons[rng.random(k) < 0.2] = None
        parts_in.append(("family", (pos, ids), reasons, str(rng.choice(words))))
        pos2 = rng.choice(len(ids2), 3)
        parts_in.append((str(rng.choice(["keyworker", "la"])), (pos2, ids2), "left", "follow-up"))
    parts_in.append(
        (np.array(["family", None], dtype=object), np.array(["F001", "X"], dtype=object), "r", "s")
    )
    got = _exclusions_table([_part(*p) for p in parts_in])
    pd.testing.assert_frame_equal(got, _reference(parts_in))


def test_no_exclusions_and_non_text_values() -> None:
    empty = _exclusions_table([_part("family", np.array([], dtype=object), "x", "y")])
    pd.testing.assert_frame_equal(empty, pd.DataFrame(columns=EXCLUSION_COLUMNS).astype(str))
    mixed = ("family", np.array([3, "a", 1.5], dtype=object), "r", "s")
    pd.testing.assert_frame_equal(_exclusions_table([_part(*mixed)]), _reference([mixed]))
