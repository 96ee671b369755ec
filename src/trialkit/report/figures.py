"""The report's data figures drawn with matplotlib (house style from :mod:`trialkit.plotting`).

The forest plot is drawn here; the fidelity heatmap is the fidelity stage's own
(:func:`trialkit.fidelity.plots.heatmap_figure`), so the report and
``trialkit fidelity`` show the same figure.  Box-and-arrow diagrams (CONSORT
flow, logic model) are hand-drawn in :mod:`trialkit.report.diagrams`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from trialkit.plotting import OKABE_ITO, new_figure, style

__all__ = ["ForestRow", "forest_figure", "forest_ticks"]

ForestRow = tuple[str, float, float, float, str]
"""(label, estimate, conf_low, conf_high, group); group is ``primary`` or ``secondary``."""

_GROUPS = {
    "primary": (OKABE_ITO["blue"], "s"),
    "secondary": (OKABE_ITO["vermillion"], "o"),
}
_OTHER = (OKABE_ITO["black"], "D")
_MAX_LABEL = 40


def forest_ticks(values: Sequence[float]) -> np.ndarray:
    """Round-number ticks spanning ``values`` and 0 (0 is always one of them).

    The ticks are whole multiples of a step of 1, 2, 2.5 or 5 times a power of
    ten, from the last one at or below the smallest value to the first one at or
    above the largest, so 0 (always inside the range) is one of them.
    """
    finite = [v for v in values if math.isfinite(v)]
    lo = min([0.0, *finite])
    hi = max([0.0, *finite])
    if hi == lo:
        lo, hi = -1.0, 1.0
    # the ticks are i * step for whole i, first <= lo and last >= hi
    ticks = np.asarray(
        MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi), dtype=float
    )
    ticks[np.isclose(ticks, 0.0, rtol=0.0, atol=1e-9 * (ticks[1] - ticks[0]))] = 0.0
    return ticks


def _short(label: str) -> str:
    return label if len(label) <= _MAX_LABEL else label[: _MAX_LABEL - 1] + "…"


def forest_figure(
    rows: Sequence[ForestRow], *, xlabel: str, favours: tuple[str, str] | None = None
) -> Figure:
    """Forest plot: one row per outcome, CI as a line, estimate as a marker, 0 marked.

    Parameters
    ----------
    rows : sequence of (label, estimate, conf_low, conf_high, group)
        ``group`` ``primary`` (blue squares) or ``secondary`` (vermillion
        circles); non-finite values are left out of the drawing.
    xlabel : str
        The axis label (the effect measure and interval).
    favours : (str, str), optional
        Words for the two sides of 0, e.g. ``("favours control", "favours
        intervention")``, printed under the axis at its left and right ends; only
        meaningful when every row is oriented the same way (positive = benefit).

    Returns
    -------
    Figure
        The figure; the x axis has ticks at round numbers and always includes 0,
        where a dashed reference line is drawn.
    """
    n = max(len(rows), 1)
    with style():
        fig = new_figure(7.5, 0.9 + 0.32 * n + (0.25 if favours is not None else 0.0))
        ax = fig.add_subplot()
        ticks = forest_ticks([v for _, e, lo, hi, _ in rows for v in (e, lo, hi)])
        ax.axvline(0.0, color="#666666", linewidth=0.9, linestyle=(0, (4, 3)), zorder=1)
        for k, (_, est, low, high, group) in enumerate(rows):
            colour, marker = _GROUPS.get(group, _OTHER)
            if math.isfinite(low) and math.isfinite(high):
                ax.hlines(k, low, high, colors=colour, linewidth=2.0, zorder=2, clip_on=False)
            if math.isfinite(est):
                ax.plot(
                    [est], [k], marker=marker, color=colour, markersize=6.5, zorder=3, clip_on=False
                )
        ax.set_yticks(range(len(rows)), [_short(r[0]) for r in rows])
        ax.set_ylim(len(rows) - 0.5 if rows else 0.5, -0.5)
        ax.set_xticks(ticks)
        ax.set_xlim(ticks[0], ticks[-1])
        ax.set_xlabel(xlabel)
        if favours is not None:
            for x, text, ha in (
                (0.0, f"← {favours[0]}", "left"),
                (1.0, f"{favours[1]} →", "right"),
            ):
                ax.annotate(
                    text,
                    xy=(x, 0.0),
                    xycoords="axes fraction",
                    xytext=(0, -36),
                    textcoords="offset points",
                    ha=ha,
                    va="top",
                    fontsize=8,
                    color="#444444",
                )
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        present = [g for g in _GROUPS if any(r[4] == g for r in rows)]
        if present:
            ax.legend(
                handles=[
                    Line2D(
                        [],
                        [],
                        color=_GROUPS[g][0],
                        marker=_GROUPS[g][1],
                        linewidth=2.0,
                        label=g,
                    )
                    for g in present
                ],
                loc="lower left",
                bbox_to_anchor=(0.0, 1.0),
                ncols=len(present),
                frameon=False,
                borderaxespad=0.2,
            )
    return fig
