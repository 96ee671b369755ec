"""End-to-end CLI tests of check, schema, render and init."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trialkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = str(ROOT / "protocols" / "supporting-families-systemic-pilot.toml")
BROKEN = str(ROOT / "tests" / "protocol" / "broken-protocol.toml")


def test_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", BUNDLED]) == 0
    assert "passes the protocol-stage check" in capsys.readouterr().out


def test_check_json_report_stage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", BUNDLED, "--stage", "report", "--format", "json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is False
    assert {"path", "code", "severity", "message", "hint"} == set(payload["issues"][0])


def test_check_broken_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", BROKEN]) == 1
    out = capsys.readouterr().out
    assert "protocol.logic_model.cycle" in out


def test_missing_file_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "nope.toml"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "protocol.file_not_found" in err


def test_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 2
    assert main(["check", BUNDLED, "--stage", "final"]) == 2
    assert main([]) == 2


def test_every_verb_has_help_with_example(capsys: pytest.CaptureFixture[str]) -> None:
    from trialkit.cli import _command_modules

    for mod in _command_modules():
        assert main([mod.NAME, "--help"]) == 0
        out = capsys.readouterr().out
        assert "example:" in out and "trialkit" in out.split("example:")[1], mod.NAME


def test_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "trialkit protocol"
    out = tmp_path / "s.json"
    assert main(["schema", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == schema


def test_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "tidier", BUNDLED, "--format", "md"]) == 0
    assert "| 8. When and how much |" in capsys.readouterr().out
    out = tmp_path / "t.html"
    assert main(["render", "tidier", BUNDLED, "--format", "html", "--out", str(out)]) == 0
    assert "<table" in out.read_text()


def test_init_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "trial"
    assert main(["init", str(target)]) == 0
    assert (target / "protocol.toml").exists()
    # the template parses; its TBC placeholders are reported
    assert main(["check", str(target / "protocol.toml"), "--format", "json"]) == 1
    payload = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert "protocol.tidier.placeholder" in {i["code"] for i in payload["issues"]}
    assert main(["init", str(target)]) == 1  # never overwrites (output exists: 1)


def test_python_m_trialkit() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "trialkit", "check", BUNDLED], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_check_catches_a_course_typo_in_indicator_params(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # issue #16: `course = "cpdd"` used to pass `check` and move LAs between fidelity bands
    text = (
        Path(BUNDLED)
        .read_text()
        .replace('params = { course = "cpd" }', 'params = { course = "cpdd" }')
    )
    text = text.replace('metric = "supervision_attendance"', 'metric = "supervision_attendence"')
    p = tmp_path / "protocol.toml"
    p.write_text(text)
    assert main(["check", str(p), "--format", "json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    by_code = {i["code"]: i for i in payload["issues"]}
    assert "'cpd'" in by_code["fidelity.indicator.param_value"]["hint"]
    assert "supervision_attendance" in by_code["fidelity.indicator.unknown_metric"]["hint"]
