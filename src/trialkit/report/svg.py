"""Hand-written, deterministic SVG figures for the report.

Figures are plain SVG strings (no ids that change between runs, no timestamps),
each with ``role="img"``, a ``<title>`` and a ``<desc>`` for screen readers, in
the Okabe–Ito colour-blind-safe palette (Okabe & Ito 2008).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["OKABE_ITO", "flow_svg", "forest_svg", "heatmap_svg", "logic_model_svg"]

OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}
FONT = "font-family='Helvetica, Arial, sans-serif'"


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") if math.isfinite(x) else "0"


def _open(width: float, height: float, title: str, desc: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {_num(width)} {_num(height)}' "
        f"width='{_num(width)}' height='{_num(height)}' role='img' {FONT} font-size='12'>"
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>"
    )


def _text(x: float, y: float, s: str, **attrs: str) -> str:
    extra = "".join(f" {k.replace('_', '-')}='{v}'" for k, v in attrs.items())
    return f"<text x='{_num(x)}' y='{_num(y)}'{extra}>{escape(s)}</text>"


def _box(
    x: float,
    y: float,
    w: float,
    h: float,
    lines: Sequence[str],
    fill: str = "#ffffff",
    stroke: str = "#000000",
    bold_first: bool = True,
) -> str:
    out = [
        f"<rect x='{_num(x)}' y='{_num(y)}' width='{_num(w)}' height='{_num(h)}' rx='4' "
        f"fill='{fill}' stroke='{stroke}'/>"
    ]
    for k, line in enumerate(lines):
        weight = {"font_weight": "bold"} if (k == 0 and bold_first) else {}
        out.append(_text(x + 6, y + 15 + 14 * k, line, **weight))
    return "".join(out)


def _arrow(x1: float, y1: float, x2: float, y2: float, colour: str = "#444444") -> str:
    ang = math.atan2(y2 - y1, x2 - x1)
    a1 = (x2 - 7 * math.cos(ang - 0.4), y2 - 7 * math.sin(ang - 0.4))
    a2 = (x2 - 7 * math.cos(ang + 0.4), y2 - 7 * math.sin(ang + 0.4))
    return (
        f"<line x1='{_num(x1)}' y1='{_num(y1)}' x2='{_num(x2)}' y2='{_num(y2)}' "
        f"stroke='{colour}' stroke-width='1.2'/>"
        f"<polygon points='{_num(x2)},{_num(y2)} {_num(a1[0])},{_num(a1[1])} "
        f"{_num(a2[0])},{_num(a2[1])}' fill='{colour}'/>"
    )


def _wrap(s: str, width: int) -> list[str]:
    return textwrap.wrap(s, width=width) or [""]


def forest_svg(
    rows: Sequence[tuple[str, float, float, float, str]], *, title: str, xlabel: str
) -> str:
    """Forest plot: one row per (label, estimate, low, high, group).

    Groups are coloured (primary: blue, secondary: orange); a dashed line at 0.
    """
    n = len(rows)
    left, right, top, row_h = 260.0, 40.0, 30.0, 26.0
    width = 720.0
    height = top + row_h * max(n, 1) + 50
    finite = [v for _, e, lo, hi, _ in rows for v in (e, lo, hi) if math.isfinite(v)]
    lo_x = min([0.0, *finite]) if finite else -1.0
    hi_x = max([0.0, *finite]) if finite else 1.0
    span = (hi_x - lo_x) or 1.0
    lo_x -= 0.05 * span
    hi_x += 0.05 * span

    def sx(v: float) -> float:
        return left + (v - lo_x) / (hi_x - lo_x) * (width - left - right)

    colours = {"primary": OKABE_ITO["blue"], "secondary": OKABE_ITO["orange"]}
    desc = "; ".join(f"{lab}: {e:.2f} ({lo:.2f} to {hi:.2f})" for lab, e, lo, hi, _ in rows)
    out = [_open(width, height, title, desc)]
    x0 = sx(0.0)
    out.append(
        f"<line x1='{_num(x0)}' y1='{_num(top - 10)}' x2='{_num(x0)}' "
        f"y2='{_num(top + row_h * n)}' stroke='#777777' stroke-dasharray='4 3'/>"
    )
    for k, (lab, e, lo, hi, grp) in enumerate(rows):
        y = top + row_h * k + row_h / 2
        col = colours.get(grp, OKABE_ITO["black"])
        out.append(_text(8, y + 4, lab if len(lab) <= 40 else lab[:39] + "…"))
        if math.isfinite(lo) and math.isfinite(hi):
            out.append(
                f"<line x1='{_num(sx(lo))}' y1='{_num(y)}' x2='{_num(sx(hi))}' y2='{_num(y)}' "
                f"stroke='{col}' stroke-width='2'/>"
            )
        if math.isfinite(e):
            shape = "rect" if grp == "primary" else "circle"
            if shape == "rect":
                out.append(
                    f"<rect x='{_num(sx(e) - 5)}' y='{_num(y - 5)}' width='10' height='10' "
                    f"fill='{col}'/>"
                )
            else:
                out.append(f"<circle cx='{_num(sx(e))}' cy='{_num(y)}' r='5' fill='{col}'/>")
    axis_y = top + row_h * n + 8
    out.append(
        f"<line x1='{_num(left)}' y1='{_num(axis_y)}' x2='{_num(width - right)}' "
        f"y2='{_num(axis_y)}' stroke='#000000'/>"
    )
    for k in range(5):
        v = lo_x + k * (hi_x - lo_x) / 4
        out.append(_text(sx(v), axis_y + 16, f"{v:.2f}", text_anchor="middle"))
    out.append(_text((left + width - right) / 2, axis_y + 34, xlabel, text_anchor="middle"))
    out.append(_text(8, 14, "■ primary   ● secondary", fill="#333333"))
    out.append("</svg>")
    return "".join(out)


def flow_svg(arms: Sequence[tuple[str, list[list[str]]]], top: list[str], *, title: str) -> str:
    """CONSORT-style flow: a top box, then one column of boxes per arm with arrows.

    ``arms`` is a list of (arm label, list of boxes); each box is a list of lines.
    """
    col_w, gap, line_h = 330.0, 30.0, 14.0
    width = 20 + len(arms) * (col_w + gap)
    top_h = 22 + line_h * len(top)
    out_boxes: list[str] = []
    top_x = (width - col_w) / 2
    out_boxes.append(_box(top_x, 10, col_w, top_h, top, fill="#f2f2f2"))
    max_y = 10 + top_h
    desc_parts = [" ".join(top)]
    for a, (label, boxes) in enumerate(arms):
        x = 20 + a * (col_w + gap)
        y = 10 + top_h + 30
        out_boxes.append(_arrow(width / 2, 10 + top_h, x + col_w / 2, y))
        for b, lines in enumerate(boxes):
            h = 10 + line_h * len(lines) + 6
            fill = "#e8f1fa" if b == 0 else "#ffffff"
            out_boxes.append(_box(x, y, col_w, h, lines, fill=fill))
            desc_parts.append(f"{label}: " + " ".join(lines))
            if b < len(boxes) - 1:
                out_boxes.append(_arrow(x + col_w / 2, y + h, x + col_w / 2, y + h + 22))
            y += h + 22
        max_y = max(max_y, y)
    svg = _open(width, max_y + 10, title, " | ".join(desc_parts))
    return svg + "".join(out_boxes) + "</svg>"


def logic_model_svg(nodes: Sequence[Mapping[str, Any]], *, title: str) -> str:
    """Logic model: columns resource → activity → output → outcome, arrows for ``leads_to``.

    Each node dict has ``id``, ``kind``, ``label``, ``leads_to`` (list) and
    ``indicators`` (list of strings shown under the label, e.g. achieved fidelity).
    """
    kinds = ["resource", "activity", "output", "outcome"]
    fills = {
        "resource": "#f2f2f2",
        "activity": "#dbeaf7",
        "output": "#fbeccc",
        "outcome": "#d5efe6",
    }
    col_w, gap, wrap = 230.0, 50.0, 34
    pos: dict[str, tuple[float, float, float]] = {}
    parts: list[str] = []
    heights = {k: 40.0 for k in kinds}
    for k, kind in enumerate(kinds):
        x = 10 + k * (col_w + gap)
        parts.append(_text(x, 24, kind.capitalize() + "s", font_weight="bold", font_size="14"))
    for node in nodes:
        kind = str(node.get("kind", "activity"))
        if kind not in kinds:
            kind = "activity"
        col = kinds.index(kind)
        x = 10 + col * (col_w + gap)
        lines = _wrap(str(node.get("label", "")), wrap)
        inds = [str(s) for s in node.get("indicators", []) or []]
        ind_lines: list[str] = []
        for s in inds:
            ind_lines += [
                "• " + w if i == 0 else "  " + w for i, w in enumerate(_wrap(s, wrap - 2))
            ]
        h = 12 + 14 * (len(lines) + len(ind_lines))
        y = heights[kind]
        parts.append(
            f"<rect x='{_num(x)}' y='{_num(y)}' width='{_num(col_w)}' height='{_num(h)}' rx='5' "
            f"fill='{fills[kind]}' stroke='#333333'/>"
        )
        for i, line in enumerate(lines):
            parts.append(_text(x + 6, y + 15 + 14 * i, line, font_weight="bold"))
        for i, line in enumerate(ind_lines):
            parts.append(_text(x + 6, y + 15 + 14 * (len(lines) + i), line, font_size="11"))
        pos[str(node.get("id"))] = (x, y, h)
        heights[kind] = y + h + 14
    arrows: list[str] = []
    for node in nodes:
        src = pos.get(str(node.get("id")))
        if src is None:
            continue
        for target in node.get("leads_to", []) or []:
            dst = pos.get(str(target))
            if dst is None:
                continue
            arrows.append(
                _arrow(src[0] + col_w, src[1] + src[2] / 2, dst[0], dst[1] + dst[2] / 2, "#888888")
            )
    width = 10 + len(kinds) * (col_w + gap)
    height = max(heights.values()) + 10
    desc = "; ".join(
        f"{n.get('label')} leads to {', '.join(str(t) for t in n.get('leads_to', []) or [])}"
        for n in nodes
    )
    return _open(width, height, title, desc) + "".join(arrows) + "".join(parts) + "</svg>"


def _seq_colour(v: float) -> str:
    """Colour on a light-yellow → blue sequential scale (readable in greyscale)."""
    lo = (0xF7, 0xF4, 0xB5)
    hi = (0x00, 0x52, 0x8C)
    t = min(max(v, 0.0), 1.0)
    rgb = tuple(round(a + (b - a) * t) for a, b in zip(lo, hi, strict=True))
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def heatmap_svg(
    rows: Sequence[str], cols: Sequence[str], values: Sequence[Sequence[float]], *, title: str
) -> str:
    """Heatmap of fidelity indices (0–1) with the value printed in every cell."""
    cell_w, cell_h, left, top = 92.0, 24.0, 110.0, 40.0
    width = left + cell_w * len(cols) + 20
    height = top + cell_h * len(rows) + 50
    desc = "; ".join(
        f"{r}: "
        + ", ".join(
            f"{c} {'NA' if not math.isfinite(v) else f'{v:.2f}'}"
            for c, v in zip(cols, vals, strict=True)
        )
        for r, vals in zip(rows, values, strict=True)
    )
    out = [_open(width, height, title, desc)]
    for j, c in enumerate(cols):
        out.append(
            _text(
                left + cell_w * j + cell_w / 2, top - 8, c, text_anchor="middle", font_weight="bold"
            )
        )
    for i, r in enumerate(rows):
        y = top + cell_h * i
        out.append(_text(left - 8, y + 16, r, text_anchor="end"))
        for j, v in enumerate(values[i]):
            x = left + cell_w * j
            fill = _seq_colour(v) if math.isfinite(v) else "#ffffff"
            out.append(
                f"<rect x='{_num(x)}' y='{_num(y)}' width='{_num(cell_w)}' height='{_num(cell_h)}' "
                f"fill='{fill}' stroke='#ffffff'/>"
            )
            ink = "#ffffff" if math.isfinite(v) and v > 0.55 else "#000000"
            out.append(
                _text(
                    x + cell_w / 2,
                    y + 16,
                    "NA" if not math.isfinite(v) else f"{v:.2f}",
                    text_anchor="middle",
                    fill=ink,
                )
            )
    ly = top + cell_h * len(rows) + 14
    for k in range(6):
        v = k / 5
        out.append(
            f"<rect x='{_num(left + 40 * k)}' y='{_num(ly)}' width='40' height='10' "
            f"fill='{_seq_colour(v)}'/>"
        )
        out.append(_text(left + 40 * k, ly + 24, f"{v:.1f}", font_size="10"))
    out.append(_text(left - 8, ly + 9, "index", text_anchor="end", font_size="10"))
    out.append("</svg>")
    return "".join(out)
