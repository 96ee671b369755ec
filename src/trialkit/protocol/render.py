"""Render the TIDieR table of a protocol (items as rows, arms as columns).

Markdown for documents and a self-contained HTML fragment/page for report
appendices.  Structured quantities are listed under their item's prose.
"""

from __future__ import annotations

from typing import Any, Literal

from jinja2 import Environment, select_autoescape

from trialkit.protocol.model import TIDIER_LABELS, TIDIER_PHP_ITEMS, Protocol, Quantity, TidierItem

PHP_LABELS = {
    "how_established": "PHP. How the intervention was established",
    "provider_organisations": "PHP. Provider organisations",
    "wider_context": "PHP. Wider context",
}

_HTML = """<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8"><title>TIDieR: {{ title }}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#111}
table{border-collapse:collapse;width:100%;font-size:0.9rem}
caption{text-align:left;font-weight:600;margin-bottom:.5rem}
th,td{border:1px solid #999;padding:.4rem;vertical-align:top;text-align:left}
th[scope=row]{width:16%;background:#f3f3f3}
ul{margin:.3rem 0 0 1rem;padding:0}
@media print{body{margin:0}table{font-size:9pt}}
</style></head><body>
{{ table|safe }}
</body></html>
"""

_TABLE = """<table class="tidier">
<caption>TIDieR description of each arm: {{ title }}</caption>
<thead><tr><th scope="col">TIDieR item</th>{% for a in arms %}<th scope="col">{{ a.label }} ({{ a.id }})</th>{% endfor %}</tr></thead>
<tbody>
{% for row in rows %}<tr><th scope="row">{{ row.label }}</th>{% for cell in row.cells %}<td>{% if cell.text %}{{ cell.text }}{% else %}<em>not yet described</em>{% endif %}{% if cell.bullets %}<ul>{% for b in cell.bullets %}<li>{{ b }}</li>{% endfor %}</ul>{% endif %}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def _quantity_text(q: Quantity) -> str:
    value = f"{q.value:g}"
    if q.minimum is not None or q.maximum is not None:
        lo = "" if q.minimum is None else f"{q.minimum:g}"
        hi = "" if q.maximum is None else f"{q.maximum:g}"
        value += f" (range {lo}–{hi})"
    text = f"{q.label}: {value} {q.unit.value}"
    if q.per:
        text += f" per {q.per}"
    if q.over:
        text += f" over {q.over}"
    if q.applies_to:
        text += f"; {q.applies_to}"
    if q.illustrative:
        text += " [illustrative]"
    return text


def _bullets(item: TidierItem) -> list[str]:
    out = [
        f"{p.id}: {p.description}" + (f" (delivers {', '.join(p.delivers)})" if p.delivers else "")
        for p in item.procedures
    ]
    out += [_quantity_text(q) for q in item.quantities]
    return out


def _rows(protocol: Protocol) -> list[dict[str, Any]]:
    keys = list(TIDIER_LABELS)
    php = [
        k
        for k in TIDIER_PHP_ITEMS
        if any(getattr(a.tidier, k) is not None for a in protocol.arms.values())
    ]
    rows = []
    for key in keys + php:
        label = TIDIER_LABELS.get(key) or PHP_LABELS[key]
        cells = []
        for arm in protocol.arms.values():
            item = getattr(arm.tidier, key)
            if item is None:
                cells.append({"text": "", "bullets": []})
            else:
                cells.append({"text": item.text, "bullets": _bullets(item)})
        rows.append({"key": key, "label": label, "cells": cells})
    return rows


def render_tidier(protocol: Protocol, fmt: Literal["md", "html", "html-fragment"] = "md") -> str:
    """Render the TIDieR table of ``protocol``.

    Parameters
    ----------
    protocol : Protocol
    fmt : {"md", "html", "html-fragment"}
        Markdown, a standalone HTML page, or just the ``<table>`` element.

    Notes
    -----
    Items follow Hoffmann et al. (2014) and the optional TIDieR-PHP additions of
    Campbell et al. (2018).
    """
    arms = [{"id": k, "label": a.label} for k, a in protocol.arms.items()]
    rows = _rows(protocol)
    if fmt == "md":

        def esc(s: str) -> str:
            return s.replace("|", "\\|").replace("\n", " ")

        lines = [
            f"# TIDieR: {protocol.trial.title}",
            "",
            "| TIDieR item | " + " | ".join(esc(f"{a['label']} ({a['id']})") for a in arms) + " |",
            "|---|" + "---|" * len(arms),
        ]
        for row in rows:
            cells = []
            for cell in row["cells"]:  # type: ignore[attr-defined]
                text = esc(cell["text"]) or "*not yet described*"
                if cell["bullets"]:
                    text += "<br>" + "<br>".join("• " + esc(b) for b in cell["bullets"])
                cells.append(text)
            lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
    table = _env.from_string(_TABLE).render(title=protocol.trial.title, arms=arms, rows=rows)
    if fmt == "html-fragment":
        return table + "\n"
    if fmt == "html":
        return _env.from_string(_HTML).render(title=protocol.trial.title, table=table)
    raise ValueError(f"unknown format {fmt!r}")
