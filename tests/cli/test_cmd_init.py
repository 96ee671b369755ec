"""``trialkit init``: a file given as DIR is invalid input, never an internal error (#16 item 6)."""

from __future__ import annotations

from pathlib import Path

from trialkit.cli import main


def test_init_given_a_file_is_invalid_input(tmp_path: Path, capsys) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("minutes of the steering group\n", encoding="utf-8")
    assert main(["init", str(afile)]) == 1
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err
    assert "cli.init.not_a_directory" in err and "notes.txt" in err
    assert main(["init", str(afile / "sub")]) == 1
    assert "cli.init.not_a_directory" in capsys.readouterr().err
    assert afile.read_text(encoding="utf-8") == "minutes of the steering group\n"


def test_init_writes_once_then_refuses_with_exit_1(tmp_path: Path, capsys) -> None:
    target = tmp_path / "new" / "trial"
    assert main(["init", str(target)]) == 0
    text = (target / "protocol.toml").read_text(encoding="utf-8")
    assert main(["init", str(target)]) == 1  # output exists: 1, as for every verb
    assert "cli.init.exists" in capsys.readouterr().err
    assert (target / "protocol.toml").read_text(encoding="utf-8") == text
