"""A command imports only its own verb's module (start-up time), and help stays whole."""

from __future__ import annotations

import subprocess
import sys

from trialkit.cli import _verb_names, main

_PROBE = """
import contextlib, io, sys
from trialkit.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    status = main(["validate", "--help"])
print(status, sorted(m for m in sys.modules if m.startswith("trialkit.cli.cmd_")))
"""


def test_a_verb_imports_only_its_module() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "0 ['trialkit.cli.cmd_validate']"


def test_unknown_verb_lists_every_verb(capsys) -> None:
    assert main(["validat"]) == 2
    err = capsys.readouterr().err
    for verb in _verb_names():
        assert verb in err


def test_top_level_help_lists_every_verb(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(verb in out for verb in _verb_names())
