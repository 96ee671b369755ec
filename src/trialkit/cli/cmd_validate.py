"""``trialkit validate``: check a trial data directory and (optionally) write the validated dataset."""

from __future__ import annotations

import argparse
import json
import sys

from trialkit.cli._common import add_allow_unverified, add_format, emit, warn_unverified

NAME = "validate"
HELP = "Validate trial data tables against the protocol and allocation; list every problem."
EXAMPLE = [
    "trialkit validate --protocol protocol.toml --data data/ --allocation allocation/",
    "trialkit validate --protocol protocol.toml --data data/ --allocation allocation/ "
    "--out validated/ --format json",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", required=True, help="protocol TOML file")
    parser.add_argument(
        "--data",
        required=True,
        help="directory with clusters, keyworkers, families, "
        "measurements, delivery (.csv, .parquet or .xlsx)",
    )
    parser.add_argument("--allocation", default=None, help="allocation directory (allocation.csv)")
    parser.add_argument(
        "--out", default=None, help="new directory for the validated dataset (Parquet)"
    )
    add_allow_unverified(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> int:
    from trialkit import store
    from trialkit.data.validate import save_validated, validate
    from trialkit.protocol.load import load_protocol

    protocol = load_protocol(args.protocol)
    allocation = args.allocation
    if allocation is not None and store.locate_allocation(allocation).is_file():
        # verified against its manifest and audit record (a missing file is validate's to report)
        allocation = store.read_allocation(
            allocation, keep_default_na=False, allow_unverified=args.allow_unverified
        )
        warn_unverified(allocation.check)
    td = validate(protocol, args.data, allocation)
    if td.ok and args.out:
        save_validated(td, args.out)
    if args.format == "json":
        d = td.to_dict()
        payload = {
            "ok": d["ok"],
            "problems": d["problems"],
            "exclusions": d["exclusions"],
            "flow": d["flow"],
            "row_counts": d["row_counts"],
            "out": args.out if td.ok else None,
        }
        emit(json.dumps(payload, indent=2, default=str) + "\n", "", "json")
    else:
        lines = [td.summary()]
        for p in td.problems:
            lines.append(f"{p.severity}: {p.path}: {p.message} [{p.code}]")
            if p.hint:
                lines.append(f"  hint: {p.hint}")
        if td.ok and args.out:
            lines.append(f"validated dataset written to {args.out}")
        emit("", "\n".join(lines) + "\n", "text")
        if not td.ok:
            sys.stderr.write("trialkit: the data have errors; nothing was written\n")
    return 0 if td.ok else 1
