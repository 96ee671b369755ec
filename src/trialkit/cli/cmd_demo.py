"""``trialkit demo``: the whole pipeline on the bundled pilot protocol, in one command."""

from __future__ import annotations

import argparse
import json

from trialkit.cli._common import add_format, emit

NAME = "demo"
HELP = (
    "Randomise (and verify), simulate, validate, assess fidelity, analyse and report the "
    "bundled pilot trial; prints where the report is."
)
EXAMPLE = ["trialkit demo", "trialkit demo --out demo-output --seed 20240901"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default="demo-output",
        metavar="DIR",
        help="new or empty output directory (default demo-output)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed (default 20240901)")
    parser.add_argument("--protocol", default=None, help="protocol (default: the bundled pilot)")
    parser.add_argument("--clusters", default=None, help="clusters CSV (default: bundled)")
    add_format(parser)


def run(args: argparse.Namespace) -> int:
    from trialkit.pipeline import DEMO_SEED, run_demo

    result = run_demo(
        args.out,
        seed=DEMO_SEED if args.seed is None else args.seed,
        protocol_path=args.protocol,
        clusters_path=args.clusters,
    )
    emit(
        json.dumps({"ok": True, **result.to_dict()}, indent=2) + "\n",
        result.summary() + f"\n\nOpen the report: {result.report / 'report.html'}\n",
        args.format,
    )
    return 0
