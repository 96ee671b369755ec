"""Power curves: analytic lines with simulated points.

Drawn in the house style of :mod:`trialkit.plotting` (matplotlib figures, no
pyplot, deterministic SVG, Okabe–Ito colours); lines also differ in marker and
dash so they stay apart in greyscale.  Each figure's alt text is returned to
the caller and stored in the SVG (``<desc>``), the PNG metadata and a
``.alt.txt`` file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from trialkit._io import atomic_write_bytes
from trialkit.plotting import CYCLE, new_figure, style, write_figure
from trialkit.power.analytic import CRTDesign, analytic_power

__all__ = ["plot_power_curve", "plot_simulation_grid"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DASHES = ("-", "--", "-.", ":")


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
) -> tuple[Figure, str]:
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
    xs = np.asarray(sorted(values), dtype=float)
    fine = (
        np.arange(int(xs.min()), int(xs.max()) + 1)
        if vary == "clusters"
        else np.linspace(xs.min(), xs.max(), 60)
    )
    xlabel = (
        "number of clusters"
        if vary == "clusters"
        else ("units per cluster" if design.levels == 2 else "units per subcluster")
    )
    with style():
        fig = new_figure(6.4, 4.2)
        ax = fig.add_subplot()
        for i, es in enumerate(effects):
            col = CYCLE[i % len(CYCLE)]
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
        ax.set_xlabel(xlabel)
        ax.set_ylabel("power")
        ax.set_ylim(0, 1.02)
        ax.set_title(title or f"Power by {xlabel} ({design.levels}-level design, alpha {alpha:g})")
        ax.legend(frameon=False)
        ax.grid(True)
    alt = (
        f"Line chart of power (0 to 1) against {xlabel} from {xs.min():g} to {xs.max():g} "
        f"for effect sizes {', '.join(f'{e:g}' for e in effects)}; analytic curves are lines"
        + ("; simulated power is shown as points with 95% intervals" if simulated else "")
        + "; a dotted line marks 80% power."
    )
    return fig, alt


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
            written += write_figure(fig, stem, title=fig.axes[0].get_title(), desc=alt)
            alt_path = stem.with_suffix(".alt.txt")
            atomic_write_bytes(alt_path, (alt + "\n").encode())
            written.append(alt_path)
    return written


def _x(d: CRTDesign, vary: str) -> float:
    if vary == "clusters":
        return float(d.clusters or 0)
    return float((d.units_per_cluster if d.levels == 2 else d.units_per_subcluster) or 0)
