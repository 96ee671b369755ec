"""``trialkit analyse``: run the protocol's statistical analysis plan."""

from __future__ import annotations

import argparse
import json
import sys

from trialkit.cli._common import (
    add_allow_unverified,
    add_format,
    emit,
    require_new_directory,
    warn_unverified,
)

NAME = "analyse"
HELP = (
    "Run the protocol's analysis plan (every outcome, sensitivity analyses, effect sizes, "
    "ICCs, Holm, fidelity and CACE) and save the results as Parquet + JSON."
)
EXAMPLE = [
    "trialkit analyse --protocol protocol.toml --data data/ --allocation allocation/ "
    "--out analysis/",
    "trialkit analyse --protocol protocol.toml --data data/ --allocation allocation/ "
    "--out analysis/ --seed 7 --format json",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", required=True, metavar="P", help="protocol TOML file")
    parser.add_argument("--data", required=True, metavar="DIR", help="trial data directory")
    parser.add_argument(
        "--allocation",
        required=True,
        metavar="DIR",
        help="allocation directory from `trialkit randomise` (for the randomisation test)",
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="new output directory (never overwritten)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for Monte Carlo randomisation tests (default 0)"
    )
    add_allow_unverified(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> int:
    from trialkit.analyse import write_analysis
    from trialkit.errors import ReportError
    from trialkit.pipeline import analyse_directory

    out = require_new_directory(args.out, error=ReportError, code="analyse.output_exists")
    analysis = analyse_directory(
        args.protocol,
        args.data,
        args.allocation,
        seed=args.seed,
        allow_unverified=args.allow_unverified,
    )
    warn_unverified((analysis.provenance.get("custody") or {}).get("allocation"))
    write_analysis(analysis, out)
    for w in analysis.warnings:
        sys.stderr.write(f"trialkit: warning: {w}\n")
    text = ""
    if args.format == "json":
        res = analysis.table("results")
        payload = {
            "ok": True,
            "out": str(out),
            "results": json.loads(res.to_json(orient="records")),
            "notes": list(analysis.methods.get("notes", [])),
            "warnings": list(analysis.warnings),
        }
        text = json.dumps(payload, indent=2) + "\n"
    emit(text, analysis.summary() + f"\nwritten to {out}\n", args.format)
    return 0
