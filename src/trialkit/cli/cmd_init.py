"""``trialkit init``: write a commented template protocol into a new directory."""

from __future__ import annotations

import argparse
from importlib.resources import files
from pathlib import Path

from trialkit._io import atomic_write_text
from trialkit.cli._common import emit_text, refuse_existing
from trialkit.errors import TrialkitError

NAME = "init"
HELP = "Write a commented template protocol (protocol.toml) into DIR."
EXAMPLE = "trialkit init my-trial && trialkit check my-trial/protocol.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir",
        metavar="DIR",
        help="directory for protocol.toml (created if needed; an existing protocol.toml is never "
        "overwritten)",
    )


def run(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if directory.exists() and not directory.is_dir():
        raise TrialkitError.from_problem(
            path=str(directory),
            code="cli.init.not_a_directory",
            message=f"DIR must be a directory (new or existing); got the file '{directory}'.",
            hint=f"give a directory, e.g. 'trialkit init {directory.stem or 'my'}-trial'",
        )
    for parent in directory.parents:
        if parent.exists() and not parent.is_dir():
            raise TrialkitError.from_problem(
                path=str(directory),
                code="cli.init.not_a_directory",
                message=f"DIR must be a directory path; got '{directory}' inside the file "
                f"'{parent}'.",
                hint="choose a directory that is not inside a file",
            )
    target = directory / "protocol.toml"
    refuse_existing(
        target,
        code="cli.init.exists",
        message=f"'{target}' already exists; trialkit never overwrites a protocol",
        hint="choose another DIR or move the existing file away",
    )
    text = files("trialkit").joinpath("templates/protocol-template.toml").read_text("utf-8")
    atomic_write_text(target, text)
    emit_text(f"wrote {target}; fill in every 'TBC' and run: trialkit check {target}")
    return 0
