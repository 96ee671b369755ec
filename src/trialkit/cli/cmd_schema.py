"""``trialkit schema``: print the JSON Schema of the protocol format."""

from __future__ import annotations

import argparse

from trialkit._io import to_json_text
from trialkit.cli._common import add_out, write_or_print
from trialkit.protocol import protocol_json_schema

NAME = "schema"
HELP = "Print (or write) the JSON Schema of the protocol file format, for editors."
EXAMPLE = ["trialkit schema > protocol.schema.json", "trialkit schema --out protocol.schema.json"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_out(parser, metavar="FILE", help="write to FILE instead of stdout")


def run(args: argparse.Namespace) -> int:
    write_or_print(to_json_text(protocol_json_schema()), args.out)
    return 0
