"""``trialkit report``: turn an analysis directory into the commissioner's report."""

from __future__ import annotations

import argparse
import json

from trialkit.cli._common import add_allow_unverified, add_format, emit

NAME = "report"
HELP = (
    "Write the self-contained HTML report, Markdown, and every table as CSV and .xlsx "
    "from a `trialkit analyse` directory, with statistical disclosure control."
)
EXAMPLE = [
    "trialkit report --analysis analysis/ --out report/",
    "trialkit report --analysis analysis/ --out report/ --disclosure strict",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--analysis", required=True, metavar="DIR", help="directory written by `trialkit analyse`"
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="new output directory (never overwritten)"
    )
    parser.add_argument(
        "--disclosure",
        choices=["protocol", "standard", "strict"],
        default="protocol",
        help="disclosure-control mode (default: the protocol's [analysis.disclosure])",
    )
    add_allow_unverified(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from trialkit.analyse import load_analysis
    from trialkit.report import DisclosureSettings, build_report, write_report

    # verified: every output against analysis.json's and the manifest's SHA-256
    analysis = load_analysis(args.analysis, allow_unverified=args.allow_unverified)
    settings = None
    if args.disclosure != "protocol":
        base = dict(analysis.protocol.get("analysis", {}).get("disclosure", {}) or {})
        base["mode"] = args.disclosure
        settings = DisclosureSettings.from_mapping(base)
    report = build_report(analysis, disclosure=settings)
    out = write_report(report, Path(args.out), inputs={"analysis": args.analysis})
    html = out / "report.html"
    from trialkit.report.build import custody_warning

    warning = custody_warning(analysis)
    if warning:
        import sys

        sys.stderr.write(f"trialkit: {warning}\n")
    emit(
        json.dumps({"ok": True, "out": str(out), "report": str(html)}, indent=2) + "\n",
        report.summary() + f"\nreport: {html}\n",
        args.format,
    )
    return 0
