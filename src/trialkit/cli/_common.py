"""Helpers shared by CLI commands: common arguments, output and refusals.

Each option that several verbs take is declared once here, with one flag, type and
default; a verb passes its own ``help`` only where its wording is more specific.

Outputs are never overwritten.  An output that already exists is refused by
:func:`refuse_existing` (files) or :func:`require_new_directory` (stage
directories) with **exit status 1**, the same for every verb: it is about the
user's files, like any other invalid input (a usage error, 2, is a command line
that cannot be parsed or an option value outside its allowed set).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trialkit._io import atomic_write_text, ensure_new_directory, to_json_text
from trialkit.errors import TrialkitError, UsageError

__all__ = [
    "add_allocation",
    "add_allow_unverified",
    "add_alpha",
    "add_data",
    "add_format",
    "add_out",
    "add_protocol",
    "add_seed",
    "emit",
    "emit_text",
    "refuse_existing",
    "require_new_directory",
    "require_new_table",
    "warn_unverified",
    "write_or_print",
]

TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
"""Suffixes of the table files a verb can write with ``--out``."""

# argparse's parser and argument groups share ``add_argument``
_Target = argparse.ArgumentParser | argparse._ArgumentGroup

# ----------------------------------------------------------------------------- common arguments


def add_protocol(
    parser: _Target, *, positional: bool = False, help: str = "protocol TOML file"
) -> None:
    """Add the protocol file: ``--protocol P`` (required) or the positional ``PROTOCOL``."""
    if positional:
        parser.add_argument("protocol", metavar="PROTOCOL", help=help)
    else:
        parser.add_argument("--protocol", required=True, help=help)


def add_data(parser: _Target, *, help: str = "validated data directory") -> None:
    """Add ``--data DIR`` (required)."""
    parser.add_argument("--data", required=True, help=help)


def add_allocation(parser: _Target, *, help: str = "allocation directory") -> None:
    """Add ``--allocation DIR`` (required)."""
    parser.add_argument("--allocation", required=True, help=help)


def add_allow_unverified(parser: _Target) -> None:
    """Add ``--allow-unverified``: read a stage directory that fails its hash checks anyway."""
    parser.add_argument(
        "--allow-unverified",
        action="store_true",
        help="use an allocation (or analysis) directory that does not match its recorded "
        "hashes anyway; the result records it and the report states it prominently",
    )


def warn_unverified(check: Any) -> None:
    """Print a prominent warning on stderr when a stage directory was read UNVERIFIED.

    ``check`` is a :class:`trialkit.store.StageCheck`, its ``to_dict()`` or None.
    """
    if check is None:
        return
    d = check if isinstance(check, dict) else check.to_dict()
    if d.get("status") != "UNVERIFIED":
        return
    problems = d.get("problems", [])
    sys.stderr.write(
        f"trialkit: WARNING: {d.get('stage')} {d.get('path')} is NOT verified "
        f"({len(problems)} problem(s)); used only because of --allow-unverified\n"
    )
    for p in problems:
        sys.stderr.write(f"  {p.get('path')}: {p.get('message')} [{p.get('code')}]\n")


def add_out(
    parser: _Target,
    *,
    help: str,
    required: bool = False,
    metavar: str | None = None,
) -> None:
    """Add ``--out`` (a new file or directory; ``help`` says which)."""
    parser.add_argument("--out", required=required, default=None, metavar=metavar, help=help)


def add_seed(parser: _Target, *, help: str, required: bool = False) -> None:
    """Add ``--seed N`` (an integer; ``help`` gives the default when optional)."""
    parser.add_argument("--seed", type=int, required=required, default=None, help=help)


def add_alpha(
    parser: _Target, *, default: float | None = None, help: str = "significance level (0.05)"
) -> None:
    """Add ``--alpha A`` (``None`` by default: the library's own default applies)."""
    parser.add_argument("--alpha", type=float, default=default, help=help)


def add_format(
    parser: _Target,
    *,
    choices: tuple[str, ...] = ("text", "json"),
    default: str = "text",
    help: str | None = "output format (json for programs; default text)",
) -> None:
    """Add ``--format`` (``text|json`` unless ``choices`` says otherwise)."""
    parser.add_argument("--format", choices=choices, default=default, help=help)


# ----------------------------------------------------------------------------- output


def _json_value(obj: Any) -> Any:
    """JSON fallback: trialkit's own conversions, then the value's text."""
    try:
        return json.loads(to_json_text(obj))
    except TypeError:
        return str(obj)


def emit(payload: Any, text: str, fmt: str) -> None:
    """Print ``payload`` as JSON (``fmt == 'json'``) or ``text`` to stdout.

    ``payload`` is a JSON-safe mapping or list (numpy scalars, paths and objects
    with ``to_dict`` are converted; any other value is written as its text), or
    JSON text already serialised.
    """
    if fmt == "json":
        if isinstance(payload, str):
            sys.stdout.write(payload)
        else:
            sys.stdout.write(
                json.dumps(payload, indent=2, ensure_ascii=False, default=_json_value) + "\n"
            )
    else:
        emit_text(text)


def emit_text(text: str) -> None:
    """Print ``text`` to stdout, ending it with one newline."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def refuse_existing(
    path: str | Path,
    *,
    directory: bool = False,
    error: type[TrialkitError] = TrialkitError,
    code: str = "cli.output_exists",
    message: str | None = None,
    hint: str = "choose a new --out file",
) -> None:
    """Refuse to overwrite an output: raise ``error`` when ``path`` exists.

    With ``directory=True`` an existing empty directory is accepted (only one that
    holds files is refused).  ``error`` is :class:`TrialkitError` (exit 1, as for every
    "output exists") unless a verb reports the case with its stage's error class
    (also exit 1).
    """
    p = Path(path)
    if not p.exists() or (directory and p.is_dir() and not any(p.iterdir())):
        return
    raise error.from_problem(
        path=str(path),
        code=code,
        message=message or f"output file must not exist; got '{path}'",
        hint=hint,
    )


def require_new_table(out: str | Path) -> Path:
    """Return ``--out`` for a table: a new file ending in ``.csv`` or ``.parquet``.

    Raises :class:`UsageError` (exit 2, code ``cli.out_format``) for another suffix and
    refuses an existing file (exit 1, ``cli.output_exists``); call it before any work.
    """
    p = Path(out)
    if p.suffix.lower() not in TABLE_SUFFIXES:
        raise UsageError.from_problem(
            path="--out",
            code="cli.out_format",
            message=f"`--out` must end in {' or '.join(TABLE_SUFFIXES)}; got '{out}'.",
            hint=f"e.g. --out {p.with_suffix('.csv').name}",
        )
    refuse_existing(p)
    return p


def write_or_print(text: str, out: str | Path | None) -> None:
    """Write ``text`` as is to the new file ``out`` (atomically), or to stdout without ``out``.

    An existing ``out`` is refused (exit 1), as for every output.
    """
    if out:
        refuse_existing(out)
        atomic_write_text(out, text)
    else:
        sys.stdout.write(text)


# ----------------------------------------------------------------------------- stage directories


def require_new_directory(out: str, *, error: type[TrialkitError], code: str) -> Path:
    """Return ``--out`` as a Path; raise ``error`` (with ``code``) now if it already holds files.

    Commands call this before any work so an existing output is refused at once;
    the stage store refuses it again when it writes.
    """
    return ensure_new_directory(out, error=error, code=code)
