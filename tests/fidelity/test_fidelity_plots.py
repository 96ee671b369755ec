"""The fidelity heatmap and CACE sweep figures (one heatmap for fidelity and the report)."""

from __future__ import annotations

import math

import pandas as pd

from trialkit.fidelity.plots import heatmap_figure, sweep_figure
from trialkit.plotting import figure_to_svg

COMPONENTS = pd.DataFrame(
    {
        "la_id": ["LA2", "LA2", "LA1", "LA1", "LA3"],
        "arm": ["intervention", "intervention", "intervention", "intervention", "control"],
        "component": ["training", "supervision", "training", "supervision", "training"],
        "index": [0.9, 0.4, 1.0, math.nan, 0.0],
    }
)


def test_heatmap_one_cell_per_la_and_component() -> None:
    fig, alt = heatmap_figure(COMPONENTS, order_arms=["intervention", "control"])
    ax = fig.axes[0]
    (image,) = ax.get_images()
    assert image.get_array().shape == (3, 2)
    cells = [t.get_text() for t in ax.texts]
    assert cells == ["100%", "NA", "90%", "40%", "0%", "NA"]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "LA1 (intervention)",
        "LA2 (intervention)",
        "LA3 (control)",
    ]
    assert "3 LAs" in alt and "2 cells are grey" in alt


def test_heatmap_svg_is_deterministic() -> None:
    a = figure_to_svg(heatmap_figure(COMPONENTS)[0], title="h", desc="d")
    b = figure_to_svg(heatmap_figure(COMPONENTS)[0], title="h", desc="d")
    assert a == b


def test_sweep_figure() -> None:
    sweep = pd.DataFrame(
        {
            "threshold": [0.5, 0.7, 0.9],
            "estimate": [0.2, 0.3, math.nan],
            "conf_low": [0.0, 0.1, math.nan],
            "conf_high": [0.4, 0.5, math.nan],
        }
    )
    fig, alt = sweep_figure(sweep, outcome="score", scale="SD")
    assert fig.axes[0].get_ylabel() == "CACE (SD)"
    assert "2 thresholds (0.5, 0.7)" in alt
