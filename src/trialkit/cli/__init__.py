"""Command-line interface: ``trialkit <verb> ...``.

Every verb lives in its own module ``trialkit.cli.cmd_<verb>`` and defines

``NAME``
    the verb;
``HELP``
    a one-line description;
``EXAMPLE``
    at least one example invocation, shown at the end of ``--help``;
``add_arguments(parser)``
    declares its options (it may add sub-commands);
``run(args) -> int``
    does the work and returns the exit status.

Modules are discovered automatically, so adding a verb touches no other file.
No statistics live here: commands call the library and format its results, through
the shared arguments and output helpers of :mod:`trialkit.cli._common`.

Exit codes: 0 ok, 1 invalid input, 2 usage error, 3 a computation failed.

* 1 — invalid input: a file or value trialkit cannot use (every stage's error,
  unreadable or non-UTF-8 files) and an output that already exists (for every verb:
  outputs are never overwritten);
* 2 — usage: a command line that cannot be parsed or an option value outside its
  allowed set or range;
* 3 — a fit or computation that failed on valid input (``ComputationError``); any
  other exception is a bug in trialkit, also reported with 3 and a crash note.

A reader that stops early (``trialkit validate ... | head``) ends trialkit quietly
with status 0, as for other command-line tools that write to a pipe.

Commands raise and never catch trialkit's errors: :func:`handle_error` is the one
place where an error becomes an exit code, by its class alone.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from trialkit._version import __version__
from trialkit.errors import TrialkitError, problems_to_dicts

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_FAILED = 3


def _verb_names() -> list[str]:
    """The verbs, from the names of their modules (``cmd_<verb>``), without importing them."""
    pkg = importlib.import_module("trialkit.cli")
    return sorted(
        info.name.removeprefix("cmd_")
        for info in pkgutil.iter_modules(pkg.__path__)
        if info.name.startswith("cmd_")
    )


def _command_modules(verbs: Sequence[str] | None = None) -> list[ModuleType]:
    """The command modules of ``verbs`` (default: every verb)."""
    return [
        importlib.import_module(f"trialkit.cli.cmd_{verb}")
        for verb in (_verb_names() if verbs is None else verbs)
    ]


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors name the verb and exit with status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\nRun '{self.prog} --help' for examples.\n")
        raise SystemExit(EXIT_USAGE)


def build_parser(verbs: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Return the top-level parser with every discovered verb attached.

    ``verbs`` limits it to those verbs: :func:`main` attaches only the verb being
    run, so that a command imports what that verb needs and not every verb's
    libraries (the full parser is built for ``--help`` and for an unknown verb).
    """
    parser = _Parser(
        prog="trialkit",
        description="Evaluate a cluster randomised pilot trial: protocol, randomisation, data, "
        "fidelity, analysis, power and reporting.",
        epilog="Run 'trialkit <verb> --help' for the options and an example of each verb.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"trialkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<verb>", parser_class=_Parser)
    for mod in _command_modules(verbs):
        p = sub.add_parser(
            mod.NAME,
            help=mod.HELP,
            description=mod.HELP,
            epilog="example:\n  " + "\n  ".join(_as_list(mod.EXAMPLE)),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def _as_list(example: str | Sequence[str]) -> list[str]:
    return [example] if isinstance(example, str) else list(example)


def report_error(err: TrialkitError, fmt: str = "text") -> None:
    """Write ``err`` to stderr (and as JSON to stdout when ``fmt == 'json'``)."""
    if fmt == "json":
        payload = {
            "ok": False,
            "error": err.message,
            "issues": problems_to_dicts(err.problems),
        }
        try:
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        except BrokenPipeError:  # the reader went away; stderr still has the message
            _stdout_closed()
    sys.stderr.write(f"trialkit: {err}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit status (never raises for user mistakes)."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in args_in if not a.startswith("-")), None)
    parser = build_parser([verb] if verb in _verb_names() else None)
    try:
        args = parser.parse_args(args_in)
    except SystemExit as exc:  # --help, --version and usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except BrokenPipeError:  # --help into a closed pipe
        return _stdout_closed()
    if getattr(args, "_module", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        status = int(args._module.run(args))
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BaseException as err:  # the one place where errors become exit codes
        return handle_error(err, getattr(args, "format", "text") or "text")


def _stdout_closed() -> int:
    """The reader of stdout went away (``| head``): stop quietly.

    Further output (including Python's own flush at exit) goes to the null device,
    so no "Broken pipe" traceback follows.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (tests, IDEs)
        pass
    return EXIT_OK


def handle_error(err: BaseException, fmt: str = "text") -> int:
    """Report ``err`` and return its exit status; the class alone decides the status.

    ``TrialkitError`` subclasses carry their own ``exit_code`` (1 invalid input, 2 usage,
    3 a computation that failed on valid input); an unreadable path or a non-UTF-8
    input is invalid input (1); ``SystemExit`` from argparse keeps its code (2 for
    usage); a closed stdout pipe ends quietly (0); anything else is a bug in trialkit
    (3, with a crash note).
    """
    if isinstance(err, SystemExit):
        return int(err.code) if isinstance(err.code, int) else EXIT_USAGE
    if isinstance(err, BrokenPipeError):
        return _stdout_closed()
    if isinstance(err, TrialkitError):
        report_error(err, fmt)
        return err.exit_code
    if isinstance(err, UnicodeDecodeError):
        sys.stderr.write(
            f"trialkit: an input file is not UTF-8 text ({err.reason} at byte {err.start}).\n"
            "  hint: save text inputs (CSV, TOML) as UTF-8, or use Parquet.\n"
        )
        return EXIT_INVALID
    if isinstance(err, OSError):
        name = getattr(err, "filename", None) or ""
        sys.stderr.write(
            f"trialkit: cannot read or write '{name}': {err.strerror or err}.\n"
            "  hint: check the path exists and is readable (inputs) or writable (--out).\n"
        )
        return EXIT_INVALID
    if isinstance(err, KeyboardInterrupt):
        sys.stderr.write("trialkit: interrupted\n")
        return 130
    if not isinstance(err, Exception):  # GeneratorExit and the like: not ours to handle
        raise err
    if os.environ.get("TRIALKIT_DEBUG"):
        traceback.print_exception(err)
    sys.stderr.write(
        f"trialkit: internal error: {type(err).__name__}: {err}\n"
        "  hint: this is a bug in trialkit; rerun with TRIALKIT_DEBUG=1 for details and report it.\n"
    )
    return EXIT_FAILED


def console_main() -> None:
    """Entry point of the ``trialkit`` console script."""
    raise SystemExit(main())
