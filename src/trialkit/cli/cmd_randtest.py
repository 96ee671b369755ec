"""``trialkit randtest``: randomisation test (cvcrand cptest statistic) over an allocation's space."""

from __future__ import annotations

import argparse
import json
import sys

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
    parser.add_argument("--format", choices=["text", "json"], default="text")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from trialkit.randomise import randtest
    from trialkit.randomise.audit import recorded_id_column

    path = str(args.data)
    id_column = args.cluster_column or recorded_id_column(args.allocation)
    if path.endswith(".parquet"):
        data = pd.read_parquet(path)
    else:
        data = pd.read_csv(path, dtype={id_column: str})  # ids as text: '01' stays '01'
    result = randtest(
        data,
        args.allocation,
        outcome=args.outcome,
        covariates=[c.strip() for c in args.covariates.split(",") if c.strip()],
        categorical=[c.strip() for c in args.categorical.split(",") if c.strip()],
        cluster_column=args.cluster_column,
        family=args.family,
        tolerance=args.tolerance,
        conf_level=args.conf_level,
    )
    if args.format == "json":
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(result.summary() + "\n")
    return 0
