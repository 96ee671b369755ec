"""Figures for the fidelity stage: LA × component heatmap and the CACE threshold sweep.

matplotlib with the Agg backend (no display needed); a colour-blind-safe
sequential palette (cividis), every cell annotated with its value, a title and
an alt text returned with the figure.  SVG output uses a fixed hash salt and no
date so that the same inputs give the same file.
"""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["heatmap_figure", "render_figure", "sweep_figure"]


def heatmap_figure(
    components: pd.DataFrame, *, order_arms: list[str] | None = None
) -> tuple[Any, str]:
    """Heatmap of component adherence, LAs in rows grouped by arm, components in columns.

    Returns
    -------
    (Figure, str)
        The figure and its alt text.
    """
    arms = order_arms or list(dict.fromkeys(components["arm"]))
    comps = list(dict.fromkeys(components["component"]))
    rows = []
    labels = []
    for arm in arms:
        for la in sorted(components.loc[components["arm"] == arm, "la_id"].unique()):
            sub = components[(components["la_id"] == la)].set_index("component")["index"]
            rows.append([float(sub.get(c, math.nan)) for c in comps])
            labels.append(f"{la} ({arm})")
    mat = np.array(rows, dtype=float) if rows else np.zeros((0, len(comps)))
    fig, ax = plt.subplots(
        figsize=(1.3 * max(len(comps), 3) + 2.5, 0.42 * max(len(labels), 2) + 1.6)
    )
    cmap = matplotlib.colormaps["cividis"].with_extremes(bad="#d9d9d9")
    im = ax.imshow(np.ma.masked_invalid(mat), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(comps)), comps, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = mat[i, j]
            text = "NA" if math.isnan(v) else f"{100 * v:.0f}%"
            colour = "black" if (math.isnan(v) or v > 0.55) else "white"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    fig.colorbar(im, ax=ax, label="adherence (delivered / intended, capped at 1)")
    title = "Fidelity by LA and component"
    ax.set_title(title)
    fig.tight_layout()
    n_na = int(np.isnan(mat).sum())
    alt = (
        f"{title}: heatmap of component adherence for {len(labels)} LAs (rows, grouped by arm) and "
        f"{len(comps)} components ({', '.join(comps)}); darker blue is lower adherence, yellow is "
        f"higher; each cell shows its percentage; {n_na} cells are grey (missing delivery records)."
    )
    return fig, alt


def sweep_figure(sweep: pd.DataFrame, *, outcome: str = "", scale: str = "") -> tuple[Any, str]:
    """CACE estimate and confidence interval against the compliance threshold."""
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ok = sweep["estimate"].notna()
    x = sweep.loc[ok, "threshold"].to_numpy(float)
    y = sweep.loc[ok, "estimate"].to_numpy(float)
    lo = sweep.loc[ok, "conf_low"].to_numpy(float)
    hi = sweep.loc[ok, "conf_high"].to_numpy(float)
    ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o-", color="#0072B2", ecolor="#56B4E9", capsize=4)
    ax.axhline(0.0, color="#777777", lw=0.8, ls="--")
    ax.set_xlabel("compliance threshold")
    ax.set_ylabel(f"CACE ({scale})" if scale else "CACE")
    title = (
        f"Complier average causal effect by compliance threshold{': ' + outcome if outcome else ''}"
    )
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    alt = (
        f"{title.replace(chr(10), ': ')}. Points show the CACE estimate with its confidence interval at each of "
        f"{int(ok.sum())} thresholds ({', '.join(f'{t:g}' for t in x)}); the dashed line marks no effect."
    )
    return fig, alt


def render_figure(fig: Any, fmt: str) -> bytes:
    """Render ``fig`` to PNG or SVG bytes (deterministic metadata) and close it."""
    buf = io.BytesIO()
    if fmt == "svg":
        with matplotlib.rc_context({"svg.hashsalt": "trialkit"}):
            fig.savefig(buf, format="svg", metadata={"Date": None})
    else:
        fig.savefig(buf, format="png", dpi=150, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
