"""Hand-drawn, deterministic SVG box-and-arrow diagrams for the report.

The CONSORT flow and the logic model are plain SVG strings (no ids that change
between runs, no timestamps), each with ``role="img"``, a ``<title>`` and a
``<desc>`` for screen readers.  Data figures (forest plot, heatmap) are drawn
with matplotlib in :mod:`trialkit.report.figures`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from trialkit.report.wording import plural

__all__ = ["flow_svg", "logic_model_svg"]

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


def flow_svg(
    arms: Sequence[tuple[str, Sequence[Sequence[str] | tuple[str, Sequence[str]]]]],
    top: list[str],
    *,
    title: str,
) -> str:
    """CONSORT-style flow: a top box, then one column of boxes per arm.

    ``arms`` is a list of (arm label, boxes); a box is a list of lines (a main box) or
    ``(kind, lines)`` with kind ``"main"`` or ``"side"``.  Main boxes sit on the arm's
    spine, joined by arrows; a side box (exclusions and losses, with reasons) is
    indented and dashed, with an arrow from the spine into it, so the spine reads
    main box → losses → next main box.
    """
    col_w, gap, line_h, indent = 360.0, 30.0, 14.0, 34.0
    width = 20 + len(arms) * (col_w + gap)
    top_h = 22 + line_h * len(top)
    out_boxes: list[str] = []
    top_x = (width - col_w) / 2
    out_boxes.append(_box(top_x, 10, col_w, top_h, top, fill="#f2f2f2"))
    max_y = 10 + top_h
    desc_parts = [" ".join(top)]
    for a, (label, boxes) in enumerate(arms):
        x = 20 + a * (col_w + gap)
        spine = x + indent / 2
        y = 10 + top_h + 30
        out_boxes.append(_arrow(width / 2, 10 + top_h, x + col_w / 2, y))
        spine_from: float | None = None
        for b, raw in enumerate(boxes):
            if isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[0], str):
                kind, lines = raw[0], list(raw[1])
            else:
                kind, lines = "main", list(raw)  # type: ignore[arg-type]
            h = 10 + line_h * len(lines) + 6
            desc_parts.append(f"{label}: " + " ".join(lines))
            if kind == "side":
                out_boxes.append(
                    f"<rect x='{_num(x + indent)}' y='{_num(y)}' width='{_num(col_w - indent)}' "
                    f"height='{_num(h)}' rx='4' fill='#fbfbfb' stroke='#777777' "
                    "stroke-dasharray='4 3'/>"
                )
                for k, line in enumerate(lines):
                    weight = {"font_weight": "bold"} if k == 0 else {}
                    out_boxes.append(_text(x + indent + 6, y + 15 + 14 * k, line, **weight))
                out_boxes.append(_arrow(spine, y + h / 2, x + indent, y + h / 2))
            else:
                if spine_from is not None:
                    out_boxes.append(_arrow(spine, spine_from, spine, y))
                fill = "#e8f1fa" if b == 0 else "#ffffff"
                out_boxes.append(_box(x, y, col_w, h, lines, fill=fill))
                spine_from = y + h
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
        parts.append(_text(x, 24, plural(kind).capitalize(), font_weight="bold", font_size="14"))
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
