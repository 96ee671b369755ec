"""Figures for the fidelity stage: LA × component heatmap and the CACE threshold sweep.

Drawn in the house style of :mod:`trialkit.plotting` (matplotlib figures, no
pyplot, deterministic SVG).  The heatmap is the one implementation of the
fidelity heatmap: ``trialkit fidelity`` writes it and the report embeds it.
Each function returns the figure and its alt text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from trialkit.plotting import OKABE_ITO, new_figure, style

__all__ = ["HEATMAP_TITLE", "heatmap_figure", "sweep_figure"]

HEATMAP_TITLE = "Fidelity by LA and component"


def heatmap_figure(
    components: pd.DataFrame, *, order_arms: Sequence[str] | None = None
) -> tuple[Figure, str]:
    """Heatmap of component adherence, LAs in rows grouped by arm, components in columns.

    Parameters
    ----------
    components : DataFrame
        Columns ``la_id``, ``arm``, ``component`` and ``index`` (adherence 0–1),
        one row per LA and component (``FidelityReport.components``).
    order_arms : sequence of str, optional
        Order of the arm groups (default: order of first appearance); LAs are
        sorted within each arm.

    Returns
    -------
    (Figure, str)
        The figure (one cell per LA × component, each labelled with its
        percentage, grey where there are no delivery records) and its alt text.
    """
    arms = list(order_arms or dict.fromkeys(components["arm"]))
    comps = list(dict.fromkeys(components["component"]))
    rows: list[list[float]] = []
    labels: list[str] = []
    for arm in arms:
        for la in sorted(components.loc[components["arm"] == arm, "la_id"].unique()):
            sub = components[(components["la_id"] == la)].set_index("component")["index"]
            rows.append([float(sub.get(c, math.nan)) for c in comps])
            labels.append(f"{la} ({arm})")
    mat = np.array(rows, dtype=float) if rows else np.zeros((0, len(comps)))
    with style():
        fig = new_figure(1.3 * max(len(comps), 3) + 2.5, 0.42 * max(len(labels), 2) + 1.6)
        ax = fig.add_subplot()
        cmap = matplotlib.colormaps["cividis"].with_extremes(bad="#d9d9d9")
        im = ax.imshow(np.ma.masked_invalid(mat), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(comps)), comps, rotation=30, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                v = mat[i, j]
                text = "NA" if math.isnan(v) else f"{100 * v:.0f}%"
                colour = "black" if (math.isnan(v) or v > 0.55) else "white"
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
        fig.colorbar(im, ax=ax, label="adherence (delivered / intended, capped at 1)")
        ax.set_title(HEATMAP_TITLE)
    n_na = int(np.isnan(mat).sum())
    alt = (
        f"{HEATMAP_TITLE}: heatmap of component adherence for {len(labels)} LAs (rows, grouped "
        f"by arm) and {len(comps)} components ({', '.join(comps)}); darker blue is lower "
        f"adherence, yellow is higher; each cell shows its percentage; {n_na} cells are grey "
        "(missing delivery records)."
    )
    return fig, alt


def sweep_figure(sweep: pd.DataFrame, *, outcome: str = "", scale: str = "") -> tuple[Figure, str]:
    """CACE estimate and confidence interval against the compliance threshold."""
    ok = sweep["estimate"].notna()
    x = sweep.loc[ok, "threshold"].to_numpy(float)
    y = sweep.loc[ok, "estimate"].to_numpy(float)
    lo = sweep.loc[ok, "conf_low"].to_numpy(float)
    hi = sweep.loc[ok, "conf_high"].to_numpy(float)
    title = (
        f"Complier average causal effect by compliance threshold{': ' + outcome if outcome else ''}"
    )
    with style():
        fig = new_figure(6.0, 4.0)
        ax = fig.add_subplot()
        ax.errorbar(
            x,
            y,
            yerr=[y - lo, hi - y],
            fmt="o-",
            color=OKABE_ITO["blue"],
            ecolor=OKABE_ITO["sky_blue"],
            capsize=4,
        )
        ax.axhline(0.0, color="#777777", lw=0.8, ls="--")
        ax.set_xlabel("compliance threshold")
        ax.set_ylabel(f"CACE ({scale})" if scale else "CACE")
        ax.set_title(title)
    alt = (
        f"{title}. Points show the CACE estimate with its confidence interval at each of "
        f"{int(ok.sum())} thresholds ({', '.join(f'{t:g}' for t in x)}); the dashed line marks "
        "no effect."
    )
    return fig, alt
