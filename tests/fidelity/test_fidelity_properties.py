"""Properties of adherence ratios, bands and indices."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from trialkit.fidelity import adherence_ratio, band_of
from trialkit.fidelity.assess import _weighted_mean

finite = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@given(finite, finite, st.sampled_from([">=", "<=", "=="]))
def test_adherence_in_unit_interval(d: float, t: float, cmp: str) -> None:
    a = adherence_ratio(d, t, cmp)
    assert 0.0 <= a <= 1.0


@given(finite, st.floats(min_value=1e-6, max_value=1e6))
def test_meeting_the_target_is_full_adherence(extra: float, t: float) -> None:
    assert adherence_ratio(t + extra, t, ">=") == 1.0
    assert adherence_ratio(t, t, "==") == 1.0
    assert adherence_ratio(max(t - extra, 0.0), t, "<=") == 1.0


@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=1), st.floats(min_value=0.01, max_value=10)),
        min_size=1,
        max_size=8,
    )
)
def test_index_lies_between_its_indicators(pairs: list[tuple[float, float]]) -> None:
    vals = [v for v, _ in pairs]
    idx = _weighted_mean(vals, [w for _, w in pairs])
    assert min(vals) - 1e-12 <= idx <= max(vals) + 1e-12
    assert band_of(idx) in {"low", "moderate", "high"}


def test_all_missing_index_is_missing() -> None:
    assert math.isnan(_weighted_mean([math.nan, math.nan], [1.0, 1.0]))
    assert band_of(math.nan) == "missing"
