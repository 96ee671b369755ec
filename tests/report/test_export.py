"""Typed exports (issue #14 item 13): the analysts' CSV/xlsx carry numbers as numbers,
CI bounds in their own columns and missing values as empty cells; HTML/Markdown keep
their formatted text."""

from __future__ import annotations

import re

import openpyxl
import pandas as pd

from trialkit.pipeline import DemoResult
from trialkit.report.disclosure import SUPPRESSED
from trialkit.report.export import typed_frame, typed_value

_NUMERIC_TEXT = re.compile(r"^(?:-?\d+(?:\.\d+)?%?|-?\d+(?:\.\d+)? to -?\d+(?:\.\d+)?|–)$")


def test_typed_value() -> None:
    assert typed_value("1") == 1 and isinstance(typed_value("1"), int)
    assert typed_value("0.068") == 0.068
    assert typed_value("–") is None
    assert typed_value("OR 1.96") == 1.96
    assert typed_value("<0.001") == "<0.001"
    assert typed_value(SUPPRESSED) == SUPPRESSED


def test_typed_frame_splits_intervals_and_pairs() -> None:
    display = pd.DataFrame(
        {
            "Outcome": ["Family functioning", "Retention"],
            "Estimate": ["-3.69", "OR 1.96"],
            "95% CI": ["-7.79 to 0.41", "–"],
            "Hedges' g (95% CI)": ["-0.27 (-0.86 to 0.33)", "–"],
            "intervention mean (SD)": ["34.79 (13.34)", SUPPRESSED],
        }
    )
    t = typed_frame(display)
    assert list(t.columns) == [
        "Outcome",
        "Estimate",
        "conf_low",
        "conf_high",
        "Hedges' g",
        "Hedges' g conf_low",
        "Hedges' g conf_high",
        "intervention mean",
        "intervention SD",
    ]
    assert t.loc[0, "conf_low"] == -7.79 and t.loc[0, "conf_high"] == 0.41
    assert pd.isna(t.loc[1, "conf_low"]) and pd.isna(t.loc[1, "Hedges' g"])
    assert t.loc[1, "intervention mean"] == SUPPRESSED  # suppression survives the export


def test_every_exported_xlsx_has_numeric_cells(demo: DemoResult) -> None:
    files = sorted((demo.report / "tables").glob("*.xlsx"))
    assert len(files) >= 14
    n_numbers = 0
    for path in files:
        rows = list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))
        header_row = 1  # row 0 is the caption
        for row in rows[header_row + 1 :]:
            for v in row:
                if isinstance(v, str):
                    assert not _NUMERIC_TEXT.match(v.strip()), (path.name, v)
                elif isinstance(v, (int, float)):
                    n_numbers += 1
    assert n_numbers > 300
    ws = openpyxl.load_workbook(demo.report / "tables" / "outcome_effects.xlsx").active
    header = [c.value for c in ws[2]]
    assert "conf_low" in header and "conf_high" in header
    first = [c.value for c in ws[3]]
    assert isinstance(first[header.index("conf_low")], float)


def test_display_keeps_formatted_text(demo: DemoResult) -> None:
    md = (demo.report / "report.md").read_text(encoding="utf-8")
    assert "-7.79 to 0.41" in md
    csv = pd.read_csv(demo.report / "tables" / "outcome_effects.csv")
    assert pd.api.types.is_float_dtype(csv["conf_low"])
    assert pd.api.types.is_float_dtype(csv["Holm-adjusted p"])  # "–" for primaries is empty


def test_effects_export_keeps_unrounded_numbers(demo: DemoResult) -> None:
    from trialkit.analyse import load_analysis

    res = load_analysis(demo.analysis).table("results")
    prim = res[(res["analysis"] == "primary") & (res["type"] != "binary")]
    csv = pd.read_csv(demo.report / "tables" / "outcome_effects.csv")
    shown = list(csv["Adjusted difference"])
    for v in prim["estimate"]:  # unrounded, not the display's two decimals
        assert any(abs(x - v) < 1e-9 for x in shown)
    sens = pd.read_csv(demo.report / "tables" / "sensitivity.csv")
    assert pd.api.types.is_float_dtype(sens["p"])  # "<0.001" is exported as its value
    assert len(sens) == len(res)
