"""``trialkit score``: score questionnaire item responses into scale scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from trialkit.cli._common import add_format, add_out, emit, require_new_table

NAME = "score"
HELP = "Score questionnaire items (SCORE-15, WEMWBS, SWEMWBS, CBI, RCADS, ORS, SRS) into scales."
EXAMPLE = [
    "trialkit score --input measurements.csv --instrument SCORE-15 --out scores.csv",
    "trialkit score --input measurements.parquet --instrument CBI --cbi-coding 1-5 --format json",
    "trialkit score --input measurements.csv --instrument FAD-GF --protocol protocol.toml",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", required=True, help="table with item_1 ... item_k (CSV/Parquet/Excel)"
    )
    parser.add_argument(
        "--instrument",
        required=True,
        help="instrument id (built-in, or a custom instrument of --protocol); rows of other "
        "instruments are skipped when an 'instrument' column exists",
    )
    parser.add_argument("--scales", nargs="*", default=None, help="scales to output (default all)")
    parser.add_argument(
        "--protocol",
        default=None,
        help="protocol TOML whose [scoring] section gives the SCORE-15 direction, the CBI "
        "coding and custom instruments (the flags below override it)",
    )
    parser.add_argument(
        "--score15-reverse",
        choices=["strengths", "difficulties", "none"],
        default=None,
        help="SCORE-15 items to reverse-code (default the protocol's, else strengths)",
    )
    parser.add_argument(
        "--cbi-coding",
        choices=["0-100", "1-5"],
        default=None,
        help="how CBI answers are entered (default the protocol's, else 0-100)",
    )
    add_out(parser, help="new output file ending in .csv or .parquet (never overwritten)")
    add_format(parser, help="output format")


def run(args: argparse.Namespace) -> int:
    from trialkit._io import write_frame
    from trialkit.data.load import read_table
    from trialkit.data.scoring import custom_instruments, score
    from trialkit.protocol import load_protocol
    from trialkit.protocol.model import ScoringPlan

    if args.out:
        require_new_table(args.out)  # before any work: a bad suffix or an existing file
    plan = ScoringPlan()
    custom = {}
    if args.protocol:
        protocol = load_protocol(args.protocol)
        plan = protocol.scoring
        custom = custom_instruments(protocol)
    frame = read_table(args.input, ("entity_id",))
    if "instrument" in frame.columns:
        frame = frame[frame["instrument"].astype(str) == args.instrument]
    out = score(
        frame,
        args.instrument,
        scales=args.scales,
        score15_reverse=args.score15_reverse or plan.score15_reverse,
        cbi_coding=args.cbi_coding or plan.cbi_coding,
        custom=custom,
        file=Path(args.input).name,
    )
    if args.out:
        write_frame(args.out, out)
    recs = out.astype(object).where(out.notna(), None).to_dict(orient="records")
    payload = {"ok": True, "instrument": args.instrument, "n": len(out), "scores": recs}
    if args.out:
        text = f"{len(out)} rows scored; written to {args.out}"
    else:
        text = out.to_string(index=False)
    emit(payload, text, args.format)
    return 0
