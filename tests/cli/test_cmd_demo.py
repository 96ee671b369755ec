"""``trialkit demo`` end to end: every section and table present with plausible values.

The only test that runs the demo through the CLI; every other user of the demo's output
shares the session's single run (the ``demo`` fixture in ``tests/conftest.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from trialkit.cli import main


def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo-output"
    assert main(["demo", "--out", str(out), "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] and payload["verified"]
    html_path = Path(payload["report"])
    assert html_path == out / "report" / "report.html" and html_path.is_file()
    for sub in ("allocation", "data", "validated", "fidelity", "analysis", "report"):
        assert (out / sub).is_dir(), sub
    html = html_path.read_text()
    for sid in (
        "summary",
        "flow",
        "tidier",
        "logic",
        "baseline",
        "outcomes",
        "fidelity",
        "sensitivity",
        "methods",
    ):
        assert f'<section id="{sid}"' in html
    tables = {p.stem for p in (out / "report" / "tables").glob("*.csv")}
    assert {
        "mdes",
        "flow",
        "la_counts",
        "exclusions",
        "tidier",
        "logic_model_indicators",
        "baseline_la",
        "baseline_keyworker",
        "baseline_family",
        "outcome_descriptives",
        "outcome_effects",
        "fidelity",
        "contamination",
        "cace",
        "sensitivity",
    } <= tables
    res = pd.read_parquet(out / "analysis" / "results.parquet")
    prim = res[res["analysis"] == "primary"].set_index("outcome_id")
    # plausible values: 12 LAs, effects within a few SDs, ICCs in [0, 0.5)
    assert (prim["n_la"] == 12).all()
    cont = prim[prim["type"] == "continuous"]
    assert cont["g"].abs().lt(2).all()
    assert prim["icc_la"].between(0, 0.5).all()
    assert (prim["conf_low"] < prim["conf_high"]).all()
    flow = pd.read_csv(out / "report" / "tables" / "flow.csv", dtype=str)
    la = flow[(flow["Level"] == "la") & (flow["Stage"] == "randomised")]
    assert int(la["intervention"].iloc[0]) == 6 and int(la["control"].iloc[0]) == 6
    # refuses a non-empty output directory with a hint
    assert main(["demo", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "demo.output_exists" in err or "must be new or empty" in err
