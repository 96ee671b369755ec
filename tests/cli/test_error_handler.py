"""``trialkit.cli.handle_error``: the class of an error alone decides the exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trialkit.cli import handle_error
from trialkit.cli._common import refuse_existing
from trialkit.errors import (
    ComputationError,
    DataError,
    FitError,
    ModelSpecError,
    PowerError,
    TrialkitError,
    UsageError,
)


@pytest.mark.parametrize(
    ("err", "status"),
    [
        (ModelSpecError("bad column"), 1),
        (DataError("bad data"), 1),
        (UsageError("bad call"), 2),
        (ComputationError("did not converge"), 3),
        (FitError("singular Hessian"), 3),
        (FileNotFoundError(2, "No such file or directory", "x.csv"), 1),
        (PermissionError(13, "Permission denied", "out"), 1),
        (OSError(28, "No space left on device", "out"), 1),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 1),
        (SystemExit(2), 2),
        (KeyboardInterrupt(), 130),
    ],
)
def test_status_by_class(err: BaseException, status: int, capsys) -> None:  # type: ignore[no-untyped-def]
    assert handle_error(err) == status
    assert "internal error" not in capsys.readouterr().err


def test_codes_do_not_matter_only_the_class(capsys) -> None:  # type: ignore[no-untyped-def]
    # a code once re-mapped by the CLI: the class, not the code, gives the status
    spec = ModelSpecError.from_problem(path="x", code="fit.rank_deficient", message="m")
    fail = FitError.from_problem(path="x", code="fit.rank_deficient", message="m")
    assert (handle_error(spec), handle_error(fail)) == (1, 3)
    assert capsys.readouterr().err.count("fit.rank_deficient") == 2


def test_unexpected_error_is_a_crash_note(capsys) -> None:  # type: ignore[no-untyped-def]
    assert handle_error(ZeroDivisionError("oops")) == 3
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: oops" in err and "TRIALKIT_DEBUG" in err


def test_json_format_reports_issues_on_stdout(capsys) -> None:  # type: ignore[no-untyped-def]
    err = DataError.from_problem(path="p", code="data.x", message="must be y; got z", hint="h")
    assert handle_error(err, "json") == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["issues"][0]["code"] == "data.x"


def test_refuse_existing(tmp_path: Path) -> None:
    refuse_existing(tmp_path / "new.csv")
    (tmp_path / "old.csv").write_text("x", encoding="utf-8")
    with pytest.raises(TrialkitError) as e:
        refuse_existing(tmp_path / "old.csv")
    assert e.value.codes == ("cli.output_exists",)
    assert e.value.exit_code == 1  # "output exists" is invalid input for every verb
    empty = tmp_path / "empty"
    empty.mkdir()
    refuse_existing(empty, directory=True)
    with pytest.raises(PowerError) as p:
        refuse_existing(tmp_path, directory=True, error=PowerError, code="power.out_exists")
    assert p.value.codes == ("power.out_exists",)
