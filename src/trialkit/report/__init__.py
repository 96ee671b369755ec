"""The commissioner's report: tidy tables, disclosure control, HTML/Markdown/CSV/xlsx.

* :func:`build_report` → :class:`Report` (nine sections) from a
  :class:`~trialkit.analyse.TrialAnalysis`;
* :func:`write_report` writes the self-contained HTML, Markdown, every table as
  CSV and .xlsx, and the SVG figures, through the stage store (with ``report.json``
  and the stage manifest);
* :func:`apply_disclosure`: the one disclosure pass over every number of people
  the report publishes (run by :func:`build_report`), with the attack across all
  of them; :func:`suppress_counts` / :func:`suppress_means` /
  :class:`DisclosureSettings`: statistical disclosure control.

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
from trialkit.report.disclosure_pass import DisclosureDecision, apply_disclosure

__all__ = [
    "SECTION_IDS",
    "SUPPRESSED",
    "DisclosureDecision",
    "DisclosureSettings",
    "Report",
    "SuppressedTable",
    "apply_disclosure",
    "build_report",
    "recoverable",
    "render_html",
    "render_markdown",
    "suppress_counts",
    "suppress_means",
    "write_report",
]
