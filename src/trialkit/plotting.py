"""The one matplotlib set-up shared by every trialkit figure.

Figures are built on :class:`matplotlib.figure.Figure` directly (never pyplot),
so nothing here selects a backend or changes the caller's global state: the
house style and the SVG settings are applied through
:func:`matplotlib.rc_context` only while a figure is drawn or saved.

Output is deterministic: the same figure gives the same SVG and PNG bytes on
every run (fixed ``svg.hashsalt``, no date or software metadata, text kept as
``<text>`` elements so the SVG is small and searchable).  Every SVG carries
``role="img"``, a ``<title>`` and a ``<desc>`` (the alt text) for screen
readers.  Colours come from the Okabe–Ito palette (Okabe & Ito 2008), which is
safe for the common colour-vision deficiencies; figures also tell series
apart by marker and line style so that they survive greyscale printing.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from html import escape
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import matplotlib
from matplotlib.figure import Figure
from matplotlib.rcsetup import cycler

from trialkit._io import atomic_write_bytes

__all__ = [
    "CYCLE",
    "OKABE_ITO",
    "figure_to_png",
    "figure_to_svg",
    "new_figure",
    "style",
    "write_figure",
]

OKABE_ITO = MappingProxyType(
    {
        "blue": "#0072B2",
        "vermillion": "#D55E00",
        "bluish_green": "#009E73",
        "reddish_purple": "#CC79A7",
        "orange": "#E69F00",
        "sky_blue": "#56B4E9",
        "yellow": "#F0E442",
        "black": "#000000",
    }
)
"""The Okabe–Ito colour-blind-safe palette by name."""

CYCLE: tuple[str, ...] = tuple(OKABE_ITO.values())
"""Colours in the order successive series use them (dark and light alternate)."""

_STYLE: dict[Any, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial"],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 8.0,
    "axes.prop_cycle": cycler(color=CYCLE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#333333",
    "axes.titlelocation": "left",
    "grid.color": "#d0d0d0",
    "grid.linewidth": 0.6,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "image.cmap": "cividis",
    "svg.fonttype": "none",
    "svg.hashsalt": "trialkit",
    "svg.image_inline": True,
    "path.simplify": True,
}
_PNG_DPI = 150


@contextmanager
def style() -> Iterator[None]:
    """Apply the house style (fonts, palette, deterministic SVG) inside the block only."""
    with matplotlib.rc_context(_STYLE):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` × ``height`` inches, not attached to pyplot or a GUI backend.

    Call it (and draw on it) inside :func:`style` so that text and colours use
    the house style.
    """
    return Figure(figsize=(width, height), layout="constrained")


def figure_to_svg(fig: Figure, *, title: str, desc: str) -> str:
    """The figure as an SVG document with ``role="img"``, ``<title>`` and ``<desc>``.

    Parameters
    ----------
    fig : Figure
    title : str
        Short title read out by screen readers.
    desc : str
        The alt text: what the figure shows, in words.

    Returns
    -------
    str
        The SVG, the same bytes on every run for the same figure.
    """
    buf = io.StringIO()
    with style():
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    head, sep, rest = text.partition("<svg ")
    tag_end = rest.index(">") + 1
    return (
        head
        + sep
        + rest[: tag_end - 1]
        + ' role="img">'
        + f"\n <title>{escape(title)}</title>\n <desc>{escape(desc)}</desc>"
        + rest[tag_end:]
    )


def figure_to_png(fig: Figure, *, desc: str = "") -> bytes:
    """The figure as PNG bytes (150 dpi, no software stamp; ``desc`` stored as Description)."""
    buf = io.BytesIO()
    meta = {"Software": None, **({"Description": desc} if desc else {})}
    with style():
        fig.savefig(buf, format="png", dpi=_PNG_DPI, metadata=meta)
    return buf.getvalue()


def write_figure(
    fig: Figure,
    stem: str | os.PathLike[str],
    *,
    title: str,
    desc: str,
    formats: Sequence[Literal["png", "svg"]] = ("png", "svg"),
) -> list[Path]:
    """Write ``<stem>.png`` and/or ``<stem>.svg`` atomically; return the paths written."""
    base = Path(stem)
    written: list[Path] = []
    for fmt in formats:
        target = base.with_suffix(f".{fmt}")
        data = (
            figure_to_svg(fig, title=title, desc=desc).encode("utf-8")
            if fmt == "svg"
            else figure_to_png(fig, desc=desc)
        )
        atomic_write_bytes(target, data)
        written.append(target)
    return written
