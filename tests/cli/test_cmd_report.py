"""``trialkit report`` error handling (the happy path is in test_cmd_analyse.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialkit.cli import main


def test_report_needs_an_analysis_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--analysis", str(tmp_path), "--out", str(tmp_path / "r")]) == 1
    assert "report.analysis_missing" in capsys.readouterr().err
