"""``trialkit schema``: print the JSON Schema of the protocol format."""

from __future__ import annotations

import argparse
import sys

from trialkit._io import atomic_write_text, to_json_text
from trialkit.protocol import protocol_json_schema

NAME = "schema"
HELP = "Print (or write) the JSON Schema of the protocol file format, for editors."
EXAMPLE = ["trialkit schema > protocol.schema.json", "trialkit schema --out protocol.schema.json"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")


def run(args: argparse.Namespace) -> int:
    text = to_json_text(protocol_json_schema())
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0
