"""``trialkit randtest``: randomisation test (cvcrand cptest statistic) over an allocation's space."""

from __future__ import annotations

import argparse

from trialkit.cli._common import add_allow_unverified, add_format, emit, warn_unverified

NAME = "randtest"
HELP = "Randomisation test of an outcome over the allocation's (kept) randomisation space, with a CI by inversion."
EXAMPLE = (
    "trialkit randtest outcomes.csv alloc/ --outcome score --covariates imd_score --family gaussian"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data", metavar="DATA", help="individual-level outcome data (CSV or Parquet)"
    )
    parser.add_argument(
        "allocation", metavar="DIR", help="output directory of `trialkit randomise`"
    )
    parser.add_argument("--outcome", required=True)
    parser.add_argument("--covariates", default="", help="comma-separated adjustment covariates")
    parser.add_argument(
        "--categorical", default="", help="comma-separated numeric covariates to dummy-code"
    )
    parser.add_argument(
        "--cluster-column", help="cluster id column (default: the allocation's id column)"
    )
    parser.add_argument("--family", choices=["gaussian", "binomial"], default="gaussian")
    parser.add_argument("--tolerance", type=float, default=1e-9, help="relative tie tolerance")
    parser.add_argument("--conf-level", type=float, default=0.95)
    add_allow_unverified(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> int:
    from trialkit import store
    from trialkit.randomise import randtest
    from trialkit.randomise.audit import read_clusters

    # read and verified once (chain of custody), with the kept space
    record = store.read_allocation(
        args.allocation, with_space=True, allow_unverified=args.allow_unverified
    )
    warn_unverified(record.check)
    id_column = args.cluster_column or record.id_column
    # ids as text ('01' stays '01'); an unparsable file is a RandomisationError, not a crash
    data = read_clusters(args.data, id_column, what="outcome data file")
    result = randtest(
        data,
        record,
        outcome=args.outcome,
        covariates=[c.strip() for c in args.covariates.split(",") if c.strip()],
        categorical=[c.strip() for c in args.categorical.split(",") if c.strip()],
        cluster_column=args.cluster_column,
        family=args.family,
        tolerance=args.tolerance,
        conf_level=args.conf_level,
    )
    emit(result.to_dict(), result.summary(), args.format)
    return 0
