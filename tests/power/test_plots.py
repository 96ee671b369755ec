"""Power-curve plots: PNG and SVG written with alt text, the same bytes every run."""

from __future__ import annotations

from pathlib import Path

from trialkit.plotting import write_figure
from trialkit.power import CRTDesign
from trialkit.power.plots import plot_power_curve, plot_simulation_grid
from trialkit.power.simulation import Scenario, simulate_power_grid


def test_curve_over_cluster_size(tmp_path: Path) -> None:
    d = CRTDesign(
        levels=3,
        clusters=12,
        subclusters_per_cluster=10,
        units_per_subcluster=12,
        icc_cluster=0.05,
        icc_subcluster=0.1,
    )
    fig, alt = plot_power_curve(
        d,
        vary="cluster_size",
        values=[2, 20],
        effects=[0.3, 0.5],
        simulated=[(0.5, 10, 0.8, 0.75, 0.85)],
    )
    assert "units per subcluster" in alt and "simulated" in alt
    files = write_figure(fig, tmp_path / "curve", title="curve", desc=alt)
    assert sorted(p.suffix for p in files) == [".png", ".svg"]
    assert all(p.stat().st_size > 1000 for p in files)
    assert f"<desc>{alt}</desc>" in (tmp_path / "curve.svg").read_text()


def test_grid_plots(tmp_path: Path) -> None:
    base = CRTDesign(levels=2, clusters=10, units_per_cluster=5, icc_cluster=0.05)
    sc = [
        Scenario(
            design=CRTDesign.from_dict({**base.to_dict(), "units_per_cluster": n}),
            effect=0.5,
            reps=50,
            seed=1,
        )
        for n in (5, 10, 20)
    ]
    grid = simulate_power_grid(sc)
    files = plot_simulation_grid(grid, tmp_path / "a")
    names = sorted(p.name for p in files)
    assert names == [
        "power-by-cluster-size-1.alt.txt",
        "power-by-cluster-size-1.png",
        "power-by-cluster-size-1.svg",
    ]
    again = plot_simulation_grid(grid, tmp_path / "b")
    for first, second in zip(files, again, strict=True):
        assert first.read_bytes() == second.read_bytes(), first.name
