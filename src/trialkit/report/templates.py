"""Jinja2 templates of the report (kept as strings so they ship inside the package)."""

from __future__ import annotations

__all__ = ["CSS", "HTML_TEMPLATE"]

CSS = """
:root { --ink: #1a1a1a; --muted: #555; --rule: #c8c8c8; --accent: #0072B2; }
* { box-sizing: border-box; }
body { font-family: Helvetica, Arial, sans-serif; color: var(--ink); margin: 0 auto;
       max-width: 1100px; padding: 1.5rem; line-height: 1.45; font-size: 15px; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.3rem; border-bottom: 2px solid var(--accent); padding-bottom: 0.2rem;
     margin-top: 2.2rem; }
p.meta { color: var(--muted); margin-top: 0; }
nav ol { columns: 2; }
table { border-collapse: collapse; width: 100%; margin: 0.8rem 0 0.3rem; font-size: 0.85rem; }
caption { caption-side: top; text-align: left; font-weight: bold; padding-bottom: 0.3rem; }
th, td { border-bottom: 1px solid var(--rule); padding: 0.25rem 0.4rem; text-align: left;
         vertical-align: top; }
th { background: #eef3f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
p.sdc { font-size: 0.8rem; color: var(--muted); margin-top: 0; }
figure { margin: 1rem 0; overflow-x: auto; }
figcaption { font-size: 0.85rem; color: var(--muted); }
figure img { max-width: 100%; height: auto; }
.summary li { margin-bottom: 0.4rem; }
.warn { border-left: 4px solid #D55E00; padding-left: 0.6rem; }
code, pre { font-family: "DejaVu Sans Mono", Menlo, monospace; font-size: 0.8rem; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: 0.5rem; }
@page { size: A4; margin: 15mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  nav { display: none; }
  h2 { break-after: avoid; }
  table, figure { break-inside: avoid; }
  tr { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""

HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{{ report.title }}</title>
<style>{{ css }}</style>
</head>
<body>
<header>
<h1>{{ report.title }}</h1>
<p class="meta">{{ report.subtitle }}<br>Generated {{ report.generated }} by trialkit {{ report.version }}.</p>
</header>
<nav aria-label="Contents"><h2>Contents</h2><ol>
{% for s in report.sections %}<li><a href="#{{ s.id }}">{{ s.title }}</a></li>
{% endfor %}</ol></nav>
<main>
{% for s in report.sections %}
<section id="{{ s.id }}" aria-labelledby="{{ s.id }}-h">
<h2 id="{{ s.id }}-h">{{ s.title }}</h2>
{% for p in s.paragraphs %}<p>{{ p }}</p>
{% endfor %}
{% if s.bullets %}<ul class="summary">{% for b in s.bullets %}<li>{{ b }}</li>{% endfor %}</ul>{% endif %}
{% for f in s.figures %}
<figure id="fig-{{ f.id }}">
{% if f.kind == "svg" %}<img src="{{ f.data_uri }}" alt="{{ f.alt }}" width="{{ f.display_width }}">{% endif %}
<figcaption>{{ f.caption }}</figcaption>
</figure>
{% endfor %}
{% for t in s.tables %}
<table id="tbl-{{ t.id }}">
<caption>{{ t.caption }}</caption>
<thead><tr>{% for c in t.columns %}<th scope="col">{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in t.rows %}<tr>{% for cell, num in row %}<td{% if num %} class="num"{% endif %}>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>
<p class="sdc">{{ t.note }}</p>
{% endfor %}
{% for pre in s.pre %}<pre>{{ pre }}</pre>
{% endfor %}
</section>
{% endfor %}
</main>
</body>
</html>
"""
