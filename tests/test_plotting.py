"""The shared matplotlib set-up: deterministic, accessible SVG; no global state touched."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib

from trialkit.plotting import (
    CYCLE,
    OKABE_ITO,
    figure_to_png,
    figure_to_svg,
    new_figure,
    style,
    write_figure,
)

SVG = "{http://www.w3.org/2000/svg}"


def _figure():
    with style():
        fig = new_figure(4.0, 3.0)
        ax = fig.add_subplot()
        ax.plot([0, 1, 2], [0.2, 0.5, 0.4], marker="o", label="a <b> & c")
        ax.set_title("A small figure")
        ax.legend()
    return fig


def test_svg_is_the_same_bytes_every_time() -> None:
    a = figure_to_svg(_figure(), title="t", desc="d")
    b = figure_to_svg(_figure(), title="t", desc="d")
    assert a == b
    fig = _figure()
    assert figure_to_svg(fig, title="t", desc="d") == figure_to_svg(fig, title="t", desc="d")
    assert "<dc:date>" not in a and "Matplotlib" not in a.split("<svg", 1)[1].split(">", 1)[0]


def test_svg_has_role_title_desc_and_text() -> None:
    svg = figure_to_svg(_figure(), title="Title & more", desc="Alt <text>")
    root = ET.fromstring(svg.encode())
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Title & more"
    assert root.find(f"{SVG}desc").text == "Alt <text>"
    # text stays text (readable, searchable), not glyph paths
    assert "A small figure" in svg


def test_png_is_deterministic_and_global_state_untouched(tmp_path: Path) -> None:
    before = dict(matplotlib.rcParams)
    assert figure_to_png(_figure(), desc="x") == figure_to_png(_figure(), desc="x")
    files = write_figure(_figure(), tmp_path / "fig", title="t", desc="d")
    assert [p.name for p in files] == ["fig.png", "fig.svg"]
    assert files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert dict(matplotlib.rcParams) == before


def test_palette() -> None:
    assert len(set(CYCLE)) == len(OKABE_ITO) == 8
