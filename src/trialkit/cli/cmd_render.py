"""``trialkit render tidier``: render the TIDieR table of a protocol."""

from __future__ import annotations

import argparse

from trialkit.cli._common import add_format, add_out, add_protocol, write_or_print
from trialkit.protocol import load_protocol, render_tidier

NAME = "render"
HELP = "Render parts of a protocol for reports (today: the TIDieR table)."
EXAMPLE = [
    "trialkit render tidier protocols/supporting-families-systemic-pilot.toml --format md",
    "trialkit render tidier protocol.toml --format html --out tidier.html",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("tidier",), help="what to render")
    add_protocol(parser, positional=True)
    add_format(parser, choices=("md", "html"), default="md", help="default md")
    add_out(parser, metavar="FILE", help="write to FILE instead of stdout")


def run(args: argparse.Namespace) -> int:
    write_or_print(render_tidier(load_protocol(args.protocol), args.format), args.out)
    return 0
