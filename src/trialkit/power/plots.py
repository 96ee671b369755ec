"""Power curves: analytic lines with simulated points (matplotlib, Agg backend).

Colours come from the Okabe–Ito palette (safe for the common colour-vision
deficiencies); lines also differ in marker and dash, and each figure carries a
title and an alt-text description stored in the SVG/PNG metadata and returned
to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from trialkit._io import atomic_write_bytes
from trialkit.power.analytic import CRTDesign, analytic_power

__all__ = ["OKABE_ITO", "plot_power_curve", "plot_simulation_grid", "save_figure"]

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DASHES = ("-", "--", "-.", ":")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _vary(design: CRTDesign, axis: str, value: float) -> CRTDesign:
    if axis == "clusters":
        return replace(design, clusters=int(value))
    if design.levels == 2:
        return replace(design, units_per_cluster=float(value))
    return replace(design, units_per_subcluster=float(value))


def plot_power_curve(
    design: CRTDesign,
    *,
    vary: str,
    values: Sequence[float],
    effects: Sequence[float],
    alpha: float = 0.05,
    two_tailed: bool = True,
    simulated: Sequence[tuple[float, float, float, float, float]] = (),
    title: str | None = None,
) -> tuple[Any, str]:
    """Analytic power against number of clusters or cluster size, one line per effect.

    Parameters
    ----------
    design : CRTDesign
    vary : {"clusters", "cluster_size"}
        ``cluster_size`` varies units per cluster (2 levels) or per subcluster (3 levels).
    values : sequence of float
        Values of the varied quantity for the analytic curves.
    effects : sequence of float
    simulated : sequence of (effect, x, power, conf_low, conf_high)
        Simulated points drawn with their Clopper–Pearson intervals.

    Returns
    -------
    (Figure, str)
        The figure and its alt text.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    xs = np.asarray(sorted(values), dtype=float)
    fine = (
        np.arange(int(xs.min()), int(xs.max()) + 1)
        if vary == "clusters"
        else np.linspace(xs.min(), xs.max(), 60)
    )
    for i, es in enumerate(effects):
        col = OKABE_ITO[i % len(OKABE_ITO)]
        pw = [
            analytic_power(
                _vary(design, vary, float(x)), effect=es, alpha=alpha, two_tailed=two_tailed
            ).power
            for x in fine
        ]
        ax.plot(
            fine,
            pw,
            color=col,
            linestyle=_DASHES[i % len(_DASHES)],
            label=f"analytic, effect {es:g}",
        )
        pts = [s for s in simulated if np.isclose(s[0], es)]
        if pts:
            arr = np.asarray(pts, dtype=float)
            ax.errorbar(
                arr[:, 1],
                arr[:, 2],
                yerr=[arr[:, 2] - arr[:, 3], arr[:, 4] - arr[:, 2]],
                fmt=_MARKERS[i % len(_MARKERS)],
                color=col,
                capsize=3,
                label=f"simulated, effect {es:g}",
            )
    ax.axhline(0.8, color="#777777", linewidth=0.8, linestyle=":")
    xlabel = (
        "number of clusters"
        if vary == "clusters"
        else ("units per cluster" if design.levels == 2 else "units per subcluster")
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("power")
    ax.set_ylim(0, 1.02)
    ttl = title or f"Power by {xlabel} ({design.levels}-level design, alpha {alpha:g})"
    ax.set_title(ttl)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    alt = (
        f"Line chart of power (0 to 1) against {xlabel} from {xs.min():g} to {xs.max():g} "
        f"for effect sizes {', '.join(f'{e:g}' for e in effects)}; analytic curves are lines"
        + ("; simulated power is shown as points with 95% intervals" if simulated else "")
        + "; a dotted line marks 80% power."
    )
    return fig, alt


def save_figure(fig: Any, path_stem: str | Path, alt: str) -> list[Path]:
    """Save ``fig`` as PNG and SVG (atomic writes; alt text in the metadata)."""
    import io

    plt = _pyplot()
    stem = Path(path_stem)
    written = []
    for ext, meta in (
        ("png", {"Description": alt, "Software": "trialkit"}),
        ("svg", {"Description": alt, "Title": alt[:80], "Date": None}),
    ):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, metadata=meta)
        target = stem.with_suffix(f".{ext}")
        atomic_write_bytes(target, buf.getvalue())
        written.append(target)
    plt.close(fig)
    return written


def plot_simulation_grid(grid: Any, out_dir: str | Path) -> list[Path]:
    """Power curves for a simulation grid that varies clusters or cluster size.

    Scenarios are grouped by everything except the varied quantity and the
    effect; a curve is drawn when a group has at least two values.  Returns the
    files written (PNG, SVG and a ``.alt.txt`` per figure).
    """
    out = Path(out_dir)
    written: list[Path] = []
    res = list(grid.results)
    for vary in ("clusters", "cluster_size"):
        groups: dict[str, list[Any]] = {}
        for r in res:
            d = r.scenario.design
            key_d = d.to_dict()
            if vary == "clusters":
                key_d.pop("clusters")
            else:
                key_d.pop("units_per_cluster" if d.levels == 2 else "units_per_subcluster")
            key_d.pop("proportions", None)
            key = repr(sorted(key_d.items())) + r.scenario.method
            groups.setdefault(key, []).append(r)
        for i, members in enumerate(g for g in groups.values()):
            d0 = members[0].scenario.design
            if d0.outcome == "binary":
                continue
            xs = [_x(m.scenario.design, vary) for m in members]
            if len(set(xs)) < 2:
                continue
            effects = sorted({m.scenario.effect for m in members})
            sims = [
                (m.scenario.effect, _x(m.scenario.design, vary), m.power, m.conf_low, m.conf_high)
                for m in members
            ]
            fig, alt = plot_power_curve(
                d0,
                vary=vary,
                values=xs,
                effects=effects,
                alpha=members[0].scenario.alpha,
                simulated=sims,
            )
            stem = out / f"power-by-{vary.replace('_', '-')}-{i + 1}"
            written += save_figure(fig, stem, alt)
            alt_path = stem.with_suffix(".alt.txt")
            atomic_write_bytes(alt_path, (alt + "\n").encode())
            written.append(alt_path)
    return written


def _x(d: CRTDesign, vary: str) -> float:
    if vary == "clusters":
        return float(d.clusters or 0)
    return float((d.units_per_cluster if d.levels == 2 else d.units_per_subcluster) or 0)
