"""``trialkit verify``: re-derive an allocation from its audit record."""

from __future__ import annotations

import argparse

from trialkit.cli._common import add_format, emit

NAME = "verify"
HELP = "Re-derive a randomisation from its audit record; exit 0 only if every output is identical."
EXAMPLE = [
    "trialkit verify alloc/",
    "trialkit verify alloc/ --clusters protocols/supporting-families-clusters.csv",
    "trialkit verify alloc/ --protocol protocol.toml",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="output directory of `trialkit randomise`")
    parser.add_argument(
        "--clusters",
        metavar="CLUSTERS",
        help="clusters file (default: the path recorded in the audit)",
    )
    parser.add_argument(
        "--protocol",
        metavar="P",
        help="protocol whose [randomisation] settings must match the audit "
        "(default: the path recorded in the audit)",
    )
    add_format(parser)


def run(args: argparse.Namespace) -> int:
    from trialkit.errors import VerificationError
    from trialkit.randomise import verify

    report = verify(args.directory, args.clusters, args.protocol)
    if not report.ok:
        raise VerificationError(
            f"{args.directory} does not verify ({len(report.differences)} difference(s))",
            report.problems(),
        )
    emit(report.to_dict(), report.summary(), args.format)
    return 0
