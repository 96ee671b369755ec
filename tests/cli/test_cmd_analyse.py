"""``trialkit analyse`` and ``trialkit report`` on a demo's data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trialkit.cli import main
from trialkit.pipeline import DemoResult

PILOT = (
    Path(__file__).resolve().parents[2] / "protocols" / "supporting-families-systemic-pilot.toml"
)


@pytest.fixture
def demo_dir(demo: DemoResult) -> Path:
    """The session's demo output (read-only; see ``tests/conftest.py``)."""
    return demo.out


def test_analyse_then_report(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    an = tmp_path / "analysis"
    rc = main(
        [
            "analyse",
            "--protocol",
            str(PILOT),
            "--data",
            str(demo_dir / "data"),
            "--allocation",
            str(demo_dir / "allocation"),
            "--out",
            str(an),
            "--format",
            "json",
        ]
    )
    assert rc == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert payload["ok"] and len(payload["results"]) > 20
    # issue #14 item 5: warnings on stderr and in the JSON; a declared analysis that could
    # not run keeps its row and says why
    assert payload["warnings"] and all(isinstance(w, str) for w in payload["warnings"])
    assert "trialkit: warning: keyworker_retention satterthwaite: not run" in captured.err
    assert any(
        r["analysis"] == "satterthwaite" and r["status"] == "not run"
        for r in payload["results"]
        if r["outcome_id"] == "keyworker_retention"
    )
    assert (an / "analysis.json").is_file() and (an / "results.parquet").is_file()
    rep = tmp_path / "report"
    assert main(["report", "--analysis", str(an), "--out", str(rep)]) == 0
    assert "report:" in capsys.readouterr().out
    assert (rep / "report.html").is_file()
    strict = tmp_path / "strict"
    assert (
        main(["report", "--analysis", str(an), "--out", str(strict), "--disclosure", "strict"]) == 0
    )
    assert "strict" in (strict / "report.html").read_text()
    # never overwrites
    assert main(["report", "--analysis", str(an), "--out", str(rep)]) == 1
    assert (
        main(
            [
                "analyse",
                "--protocol",
                str(PILOT),
                "--data",
                str(demo_dir / "data"),
                "--allocation",
                str(demo_dir / "allocation"),
                "--out",
                str(an),
            ]
        )
        == 1
    )


# A second full analysis only for the text format; the CLI path itself is covered above.
@pytest.mark.slow
def test_analyse_text_output(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "analyse",
                "--protocol",
                str(PILOT),
                "--data",
                str(demo_dir / "data"),
                "--allocation",
                str(demo_dir / "allocation"),
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
    assert "family_functioning" in capsys.readouterr().out
