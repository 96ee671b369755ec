"""The commissioner's report: tidy tables, disclosure control, HTML/Markdown/CSV/xlsx.

* :func:`build_report` → :class:`Report` (nine sections) from a
  :class:`~trialkit.analyse.TrialAnalysis`;
* :func:`write_report` writes the self-contained HTML, Markdown, every table as
  CSV and .xlsx, and the SVG figures, through the stage store (with ``report.json``
  and the stage manifest);
* :func:`suppress_counts` / :func:`suppress_means` / :class:`DisclosureSettings`:
  statistical disclosure control.

This is the only place where numbers are rounded.
"""

from trialkit.report.build import (
    SECTION_IDS,
    Report,
    build_report,
    render_html,
    render_markdown,
    write_report,
)
from trialkit.report.disclosure import (
    SUPPRESSED,
    DisclosureSettings,
    SuppressedTable,
    recoverable,
    suppress_counts,
    suppress_means,
)

__all__ = [
    "SECTION_IDS",
    "SUPPRESSED",
    "DisclosureSettings",
    "Report",
    "SuppressedTable",
    "build_report",
    "recoverable",
    "render_html",
    "render_markdown",
    "suppress_counts",
    "suppress_means",
    "write_report",
]
