"""``trialkit feasibility``: the pilot's progression criteria, zones and recommendation."""

from __future__ import annotations

import argparse

from trialkit.cli._common import (
    add_allocation,
    add_allow_unverified,
    add_data,
    add_format,
    add_protocol,
    emit,
    warn_unverified,
)

NAME = "feasibility"
HELP = (
    "Assess the protocol's progression criteria (LA recruitment, consent, retention, data "
    "completeness, fidelity, contamination) with cluster-adjusted intervals, traffic-light "
    "zones, the test against each red limit and a proceed/amend/stop recommendation."
)
EXAMPLE = [
    "trialkit feasibility --protocol protocol.toml --data data/ --allocation allocation/",
    "trialkit feasibility --protocol protocol.toml --data data/ --allocation allocation/ "
    "--fidelity fidelity/ --format json",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_protocol(parser, help="protocol TOML file with [[progression]] criteria")
    add_data(parser, help="trial data directory (raw or validated)")
    add_allocation(parser, help="allocation directory from `trialkit randomise`")
    parser.add_argument(
        "--fidelity",
        default=None,
        metavar="DIR",
        help="fidelity directory from `trialkit fidelity` (default: assessed from the delivery "
        "table when fidelity or contamination criteria need it)",
    )
    add_allow_unverified(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> int:
    from trialkit import store
    from trialkit.data import validate
    from trialkit.feasibility import assess_feasibility
    from trialkit.protocol import load_protocol

    protocol = load_protocol(args.protocol)
    record = None
    if store.locate_allocation(args.allocation).is_file():
        record = store.read_allocation(
            args.allocation, keep_default_na=False, allow_unverified=args.allow_unverified
        )
        warn_unverified(record.check)
    trial_data = validate(protocol, args.data, record if record is not None else args.allocation)
    trial_data.raise_for_errors()
    fidelity = None
    if args.fidelity:
        from trialkit.fidelity.outputs import read_fidelity_report

        fidelity = read_fidelity_report(args.fidelity)
    result = assess_feasibility(protocol, trial_data, record, fidelity)
    payload = result.to_dict()
    emit(payload, result.summary(), args.format)
    return 0
