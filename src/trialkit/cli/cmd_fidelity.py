"""``trialkit fidelity``: assess delivery against the logic model and write the outputs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from trialkit.cli._common import add_allow_unverified, add_format, emit, warn_unverified

NAME = "fidelity"
HELP = (
    "Assess fidelity of delivery against the protocol's logic model (by LA, component, indicator "
    "and over time), keyworker dose and control-arm contamination; fill in TIDieR items 10 and 12."
)
EXAMPLE = [
    "trialkit fidelity --protocol protocol.toml --data data/ --allocation allocation/ --out fidelity/",
    "trialkit fidelity --protocol protocol.toml --data data/ --allocation allocation/ --out fidelity/ "
    "--period month --format json",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", required=True, help="protocol TOML file")
    parser.add_argument(
        "--data",
        required=True,
        help="validated data directory holding delivery, keyworkers and families tables "
        "(Parquet, CSV or Excel)",
    )
    parser.add_argument(
        "--allocation", required=True, help="allocation directory (allocation.csv: cluster, arm)"
    )
    parser.add_argument("--out", required=True, help="new output directory")
    parser.add_argument(
        "--period", choices=["month", "quarter"], default=None, help="override [fidelity] period"
    )
    parser.add_argument(
        "--missing-as-zero",
        action="store_true",
        default=None,
        help="count LAs with no delivery records of a type as zero delivery (default: from protocol)",
    )
    add_allow_unverified(parser)
    add_format(parser)


def load_inputs(
    protocol_path: str, data_dir: str, allocation_dir: str, *, allow_unverified: bool = False
) -> dict[str, Any]:
    """Load the protocol, delivery tables and allocation (shared with ``trialkit cace``).

    The allocation is verified through the store (chain of custody); with
    ``allow_unverified`` one that fails is used anyway, with a warning.
    """
    from trialkit import store
    from trialkit.fidelity._read import read_allocation, read_delivery_dir
    from trialkit.protocol.load import load_protocol

    protocol = load_protocol(protocol_path)
    tables = read_delivery_dir(data_dir)
    located = store.locate_allocation(allocation_dir)
    if allow_unverified and located.is_file():
        record = store.read_allocation(located, as_table=True, allow_unverified=True)
        warn_unverified(record.check)
        allocation, alloc_name = record.frame, located.name
    else:
        allocation, alloc_name = read_allocation(allocation_dir)
    return {
        "protocol": protocol,
        "delivery": tables["delivery"][0],
        "keyworkers": tables["keyworkers"][0],
        "families": tables["families"][0],
        "clusters": tables["clusters"][0] if "clusters" in tables else None,
        "allocation": allocation,
        "sources": {
            "delivery": tables["delivery"][1],
            "keyworkers": tables["keyworkers"][1],
            "families": tables["families"][1],
            "allocation": alloc_name,
        },
    }


def assess(args: argparse.Namespace) -> tuple[Any, Any]:
    from trialkit.fidelity import assess_fidelity

    inp = load_inputs(
        args.protocol,
        args.data,
        args.allocation,
        allow_unverified=getattr(args, "allow_unverified", False),
    )
    report = assess_fidelity(
        inp["protocol"],
        inp["delivery"],
        inp["keyworkers"],
        inp["families"],
        inp["allocation"],
        clusters=inp["clusters"],
        period=getattr(args, "period", None),
        missing_as_zero=getattr(args, "missing_as_zero", None),
        sources=inp["sources"],
    )
    return inp["protocol"], report


def run(args: argparse.Namespace) -> int:
    from trialkit.fidelity import write_fidelity_outputs
    from trialkit.fidelity.outputs import ensure_new_output_dir

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        ensure_new_output_dir(out)  # raises with a clear message before any work
    protocol, report = assess(args)
    summary = write_fidelity_outputs(
        report,
        protocol,
        out,
        protocol_path=args.protocol,
        inputs={"protocol": args.protocol, "data": args.data, "allocation": args.allocation},
    )
    if args.format == "json":
        payload = {
            "ok": True,
            "out": str(out),
            "files": summary["files"],
            "overall": summary["report"]["tables"]["fidelity_overall"],
            "contaminated_las": report.contaminated_las(),
            "warnings": [w.to_dict() for w in report.warnings],
        }
        emit(json.dumps(payload, indent=2) + "\n", "", "json")
    else:
        emit("", report.summary() + f"\nwrote {len(summary['files'])} files to {out}\n", "text")
    return 0
