"""``trialkit render tidier``: render the TIDieR table of a protocol."""

from __future__ import annotations

import argparse
import sys

from trialkit._io import atomic_write_text
from trialkit.protocol import load_protocol, render_tidier

NAME = "render"
HELP = "Render parts of a protocol for reports (today: the TIDieR table)."
EXAMPLE = [
    "trialkit render tidier protocols/supporting-families-systemic-pilot.toml --format md",
    "trialkit render tidier protocol.toml --format html --out tidier.html",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("tidier",), help="what to render")
    parser.add_argument("protocol", metavar="PROTOCOL", help="protocol TOML file")
    parser.add_argument("--format", choices=("md", "html"), default="md", help="default md")
    parser.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")


def run(args: argparse.Namespace) -> int:
    text = render_tidier(load_protocol(args.protocol), args.format)
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0
