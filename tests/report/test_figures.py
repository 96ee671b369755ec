"""The report's forest plot (matplotlib): round ticks with 0, deterministic SVG."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialkit.plotting import figure_to_svg
from trialkit.report.figures import forest_figure, forest_ticks

ROWS = [
    ("Family functioning", 0.31, -0.05, 0.67, "primary"),
    ("Parenting stress", -0.12, -0.48, 0.24, "secondary"),
    ("Missing interval", 0.2, math.nan, math.nan, "secondary"),
]
NICE = (1.0, 2.0, 2.5, 5.0)


def _is_round_step(step: float) -> bool:
    mant = step / 10 ** math.floor(math.log10(step))
    return any(math.isclose(mant, m, rel_tol=1e-9) for m in (*NICE, 10.0))


def _check(ticks: np.ndarray, values: list[float]) -> None:
    assert 0.0 in ticks
    steps = np.diff(ticks)
    assert len(ticks) >= 2 and np.allclose(steps, steps[0], rtol=1e-9)
    assert _is_round_step(float(steps[0]))
    assert np.allclose(ticks / steps[0], np.round(ticks / steps[0]), atol=1e-9)
    finite = [v for v in values if math.isfinite(v)]
    slack = 1e-9 * steps[0]  # a tick may miss a value by rounding error only
    assert ticks[0] <= min([0.0, *finite]) + slack and ticks[-1] >= max([0.0, *finite]) - slack


@pytest.mark.parametrize(
    "values",
    [[0.31, -0.05, 0.67], [0.2, 0.4, 0.9], [-1.3, -0.2], [0.0], [], [12.0, 40.0], [math.nan, 0.3]],
)
def test_forest_ticks_are_round_and_include_zero(values: list[float]) -> None:
    _check(forest_ticks(values), values)


@given(
    st.lists(
        st.floats(min_value=-50, max_value=50, allow_nan=False, allow_subnormal=False),
        min_size=1,
        max_size=8,
    )
)
def test_forest_ticks_property(values: list[float]) -> None:
    _check(forest_ticks(values), values)


def test_forest_axis_has_zero_tick_and_reference_line() -> None:
    fig = forest_figure(ROWS, xlabel="g")
    ax = fig.axes[0]
    ticks = list(ax.get_xticks())
    assert 0.0 in ticks
    assert ax.get_xlim() == (ticks[0], ticks[-1])
    assert [t.get_text() for t in ax.get_yticklabels()] == [r[0] for r in ROWS]
    vertical = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [0.0, 0.0]]
    assert len(vertical) == 1
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["primary", "secondary"]


def test_forest_svg_is_deterministic_and_accessible() -> None:
    a = figure_to_svg(forest_figure(ROWS, xlabel="g"), title="Forest", desc="alt text")
    b = figure_to_svg(forest_figure(ROWS, xlabel="g"), title="Forest", desc="alt text")
    assert a == b
    root = ET.fromstring(a.encode())
    assert root.get("role") == "img"
    assert "Family functioning" in a


def test_forest_long_label_is_shortened() -> None:
    fig = forest_figure([("x" * 60, 0.1, 0.0, 0.2, "primary")], xlabel="g")
    (label,) = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(label) == 40 and label.endswith("…")
