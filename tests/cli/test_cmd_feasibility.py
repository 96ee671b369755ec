"""``trialkit feasibility`` on the demo's directories; the analysis stage stores the same result
and the report opens with the verdict."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from trialkit.analyse import load_analysis
from trialkit.cli import main
from trialkit.pipeline import DemoResult
from trialkit.report import build_report

PILOT = (
    Path(__file__).resolve().parents[2] / "protocols" / "supporting-families-systemic-pilot.toml"
)
KEYS = {"id", "label", "metric", "numerator", "denominator", "clusters", "estimate", "conf_low",
        "conf_high", "green", "red", "zone", "p_value"}  # fmt: skip


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_output_on_the_demo(demo: DemoResult, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["feasibility", "--protocol", str(PILOT), "--allocation", str(demo.allocation)]
    code, out, _ = _run([*base, "--data", str(demo.data), "--format", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["recommendation"]["decision"] in ("proceed", "amend", "stop")
    assert doc["recommendation"]["rule"] and doc["recommendation"]["reasons"]
    assert "planning" not in doc  # wired by feasibility.planning when it exists
    assert len(doc["criteria"]) == 8  # 7 criteria, consent by arm
    for c in doc["criteria"]:
        assert KEYS <= set(c)
        assert c["zone"] in ("green", "amber", "red")
        assert c["conf_low"] <= c["estimate"] <= c["conf_high"]
    # the fidelity directory gives the same numbers as assessing fidelity from the data
    code, out2, _ = _run(
        [*base, "--data", str(demo.validated), "--fidelity", str(demo.fidelity), "--format",
         "json"], capsys,
    )  # fmt: skip
    assert code == 0 and json.loads(out2)["criteria"] == doc["criteria"]
    # analyse stored the same criteria
    stored = pd.read_parquet(demo.analysis / "feasibility.parquet")
    assert list(stored["id"]) == [c["id"] for c in doc["criteria"]]
    assert stored["estimate"].tolist() == pytest.approx([c["estimate"] for c in doc["criteria"]])
    code, text, _ = _run([*base, "--data", str(demo.data)], capsys)
    assert code == 0 and "recommendation:" in text


def test_missing_approached_is_exit_1(
    demo: DemoResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = PILOT.read_text(encoding="utf-8").replace("approached = 16\n", "")
    proto = tmp_path / "p.toml"
    proto.write_text(text, encoding="utf-8")
    code, _, err = _run(
        ["feasibility", "--protocol", str(proto), "--data", str(demo.data), "--allocation",
         str(demo.allocation)], capsys,
    )  # fmt: skip
    assert code == 1 and "feasibility.progression.approached" in err


def test_protocol_without_criteria(
    demo: DemoResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = PILOT.read_text(encoding="utf-8")
    proto = tmp_path / "p.toml"
    proto.write_text(text[: text.index("# ----------------------------------------------------------------"
                                       " progression criteria")], encoding="utf-8")  # fmt: skip
    assert not tomllib.loads(proto.read_text(encoding="utf-8")).get("progression")
    code, out, _ = _run(
        ["feasibility", "--protocol", str(proto), "--data", str(demo.data), "--allocation",
         str(demo.allocation), "--format", "json"], capsys,
    )  # fmt: skip
    doc = json.loads(out)
    assert code == 0 and doc["criteria"] == [] and doc["recommendation"]["decision"] == "amend"


def test_report_opens_with_the_feasibility_verdict(demo: DemoResult) -> None:
    a = load_analysis(demo.analysis)
    assert a.methods["feasibility"]["status"] == "assessed"
    r = build_report(a, generated="x")
    ids = [s.id for s in r.sections]
    assert ids[:2] == ["summary", "feasibility"]
    assert ids.index("feasibility") < ids.index("outcomes")
    summary = r.sections[0]
    assert summary.paragraphs[0].startswith("The pilot ")
    feas = r.sections[1]
    table = next(t for t in feas.tables if t.id == "progression")
    assert len(table.frame) == 8
    assert table.frame["Zone"].str.contains("GREEN|AMBER|RED").all()  # a word, not colour only
    assert table.data is not None and table.data["estimate"].notna().all()
    assert [f.id for f in feas.figures] == ["progression"] and "GREEN" in feas.figures[0].alt
    outcomes = next(s for s in r.sections if s.id == "outcomes")
    assert "preliminary estimates" in outcomes.paragraphs[0]
    consort = next(t for s in r.sections for t in s.tables if t.id == "consort_map")
    assert "6c" in " ".join(consort.frame.iloc[:, 2])
    html = (demo.report / "report.html").read_text(encoding="utf-8")
    assert html.index('id="feasibility"') < html.index('id="outcomes"')
    assert "The pilot supports" in html or "The pilot does not support" in html
