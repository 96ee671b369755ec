"""Helpers shared by CLI commands (argument types and output)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from trialkit._io import to_json_text


def add_format(parser: argparse.ArgumentParser) -> None:
    """Add ``--format text|json``."""
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="output format (json for programs; default text)",
    )


def emit(payload: Any, text: str, fmt: str) -> None:
    """Print ``payload`` as JSON or ``text`` to stdout."""
    if fmt == "json":
        sys.stdout.write(to_json_text(payload) if not isinstance(payload, str) else payload)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


__all__ = ["add_format", "emit"]
