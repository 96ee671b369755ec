"""``trialkit check``: stage-aware completeness checks of a protocol."""

from __future__ import annotations

import argparse

from trialkit.cli._common import add_format, add_protocol, emit
from trialkit.protocol import check_protocol, load_protocol

NAME = "check"
HELP = (
    "Check a protocol file for completeness and consistency (TIDieR, logic model, outcomes, plans)."
)
EXAMPLE = [
    "trialkit check protocols/supporting-families-systemic-pilot.toml",
    "trialkit check protocol.toml --stage report --format json",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_protocol(parser, positional=True)
    parser.add_argument(
        "--stage",
        choices=("protocol", "report"),
        default="protocol",
        help="'report' also requires TIDieR modifications and how_well_actual (default protocol)",
    )
    add_format(parser)


def run(args: argparse.Namespace) -> int:
    # the stages that give indicators and outcomes their meaning register their
    # protocol checks (metric registry, instruments) when imported
    import trialkit.data.scoring
    import trialkit.feasibility.metrics
    import trialkit.fidelity.metrics  # noqa: F401

    protocol = load_protocol(args.protocol)
    report = check_protocol(protocol, args.stage)
    text = report.summary()
    if report.ok:
        text += f"\n{args.protocol}: passes the {args.stage}-stage check"
    emit(report.to_dict(), text, args.format)
    return 0 if report.ok else 1
