"""``trialkit score``: score questionnaire item responses into scale scores."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "score"
HELP = "Score questionnaire items (SCORE-15, WEMWBS, SWEMWBS, CBI, RCADS, ORS, SRS) into scales."
EXAMPLE = [
    "trialkit score --input measurements.csv --instrument SCORE-15 --out scores.csv",
    "trialkit score --input measurements.parquet --instrument CBI --cbi-coding 1-5 --format json",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", required=True, help="table with item_1 ... item_k (CSV/Parquet/Excel)"
    )
    parser.add_argument(
        "--instrument",
        required=True,
        help="instrument id; rows of other instruments "
        "are skipped when an 'instrument' column exists",
    )
    parser.add_argument("--scales", nargs="*", default=None, help="scales to output (default all)")
    parser.add_argument(
        "--score15-reverse",
        choices=["strengths", "difficulties", "none"],
        default="strengths",
        help="SCORE-15 items to reverse-code (default strengths)",
    )
    parser.add_argument("--cbi-coding", choices=["0-100", "1-5"], default="0-100")
    parser.add_argument("--out", default=None, help="output CSV or Parquet file (must not exist)")
    parser.add_argument("--format", choices=["text", "json"], default="text", help="output format")


def run(args: argparse.Namespace) -> int:
    from trialkit._io import write_frame
    from trialkit.data.load import read_table
    from trialkit.data.scoring import score
    from trialkit.errors import UsageError

    frame = read_table(args.input, ("entity_id",))
    if "instrument" in frame.columns:
        frame = frame[frame["instrument"].astype(str) == args.instrument]
    out = score(
        frame,
        args.instrument,
        scales=args.scales,
        score15_reverse=args.score15_reverse,
        cbi_coding=args.cbi_coding,
    )
    if args.out:
        if Path(args.out).exists():
            raise UsageError.from_problem(
                path=args.out,
                code="cli.output_exists",
                message=f"output file must not exist; got '{args.out}'",
                hint="choose a new --out file",
            )
        write_frame(args.out, out)
    if args.format == "json":
        recs = out.astype(object).where(out.notna(), None).to_dict(orient="records")
        sys.stdout.write(
            json.dumps(
                {"ok": True, "instrument": args.instrument, "n": len(out), "scores": recs},
                indent=2,
                default=str,
            )
            + "\n"
        )
    elif not args.out:
        sys.stdout.write(out.to_string(index=False) + "\n")
    else:
        sys.stdout.write(f"{len(out)} rows scored; written to {args.out}\n")
    return 0
