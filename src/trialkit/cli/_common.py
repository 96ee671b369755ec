"""Helpers shared by CLI commands (argument types and output)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from trialkit._io import ensure_new_directory, to_json_text
from trialkit.errors import TrialkitError


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


# stage directories
def require_new_directory(out: str, *, error: type[TrialkitError], code: str) -> Path:
    """Return ``--out`` as a Path; raise ``error`` (with ``code``) now if it already holds files.

    Commands call this before any work so an existing output is refused at once;
    the stage store refuses it again when it writes.
    """
    return ensure_new_directory(out, error=error, code=code)


__all__ = ["add_format", "emit", "require_new_directory"]
