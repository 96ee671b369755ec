"""The report: nine sections, tables with captions and disclosure notes, figures, files."""

from __future__ import annotations

import base64
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialkit.analyse import load_analysis
from trialkit.pipeline import DemoResult
from trialkit.report import SECTION_IDS, DisclosureSettings, build_report, write_report
from trialkit.report.disclosure import SUPPRESSED

CHROMIUM = Path("/usr/bin/chromium")


def _html(demo: DemoResult) -> str:
    return (demo.report / "report.html").read_text(encoding="utf-8")


def test_nine_sections_with_tables_and_figures(demo: DemoResult) -> None:
    html = _html(demo)
    for sid in SECTION_IDS:
        assert f'<section id="{sid}"' in html, sid
    assert html.count("<table") >= 14
    assert html.count("<caption>") == html.count("<table")
    assert html.count('class="sdc"') == html.count("<table")
    imgs = re.findall(r'<img src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]+)"', html)
    assert len(imgs) == 6  # flow, logic model, forest, tipping point, heatmap, progression
    for data, alt in imgs:
        root = ET.fromstring(base64.b64decode(data))
        assert root.tag.endswith("svg") and root.get("role") == "img"
        assert len(alt) > 20
    for needle in (
        "Kenward",
        "Hedges",
        "Holm",
        "MDES",
        "CACE",
        "TIDieR",
        "sha256",
        "Randomisation test",
        "Cluster-level",
        "CR2",
        "Satterthwaite",
    ):
        assert needle.lower() in html.lower(), needle


def test_self_contained_no_network(demo: DemoResult) -> None:
    html = _html(demo)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "<script" not in html
    assert "@page { size: A4" in html
    assert "<link " not in html


def test_files_tables_csv_xlsx(demo: DemoResult) -> None:
    report = demo.report
    csvs = sorted(p.stem for p in (report / "tables").glob("*.csv"))
    xlsx = sorted(p.stem for p in (report / "tables").glob("*.xlsx"))
    assert csvs == xlsx and len(csvs) >= 14
    effects = pd.read_csv(report / "tables" / "outcome_effects.csv", dtype=str)
    assert {
        "Adjusted difference",
        "conf_low",
        "conf_high",
        "df method",
        "df",
        "p",
        "Hedges' g",
        "Hedges' g conf_low",
        "ICC (LA)",
    } <= set(effects.columns)
    assert (report / "report.md").read_text().count("## ") == len(SECTION_IDS)
    assert (report / "figures" / "forest.svg").is_file()
    import openpyxl

    wb = openpyxl.load_workbook(report / "tables" / "outcome_effects.xlsx")
    assert wb.active.max_row >= 3


def test_la_counts_suppressed_and_stated(demo: DemoResult) -> None:
    la = pd.read_csv(demo.report / "tables" / "la_counts.csv", dtype=str)
    body = la.iloc[:-1, 2:]
    vals = body.to_numpy().ravel()
    for v in vals:
        assert v == SUPPRESSED or int(v) == 0 or int(v) >= 5
    assert "Disclosure control" in _html(demo)


def test_byte_identical_except_generation_time(demo: DemoResult, tmp_path: Path) -> None:
    a = load_analysis(demo.analysis)
    r1 = write_report(build_report(a, generated="2000-01-01 00:00:00 UTC"), tmp_path / "r1")
    r2 = write_report(build_report(a, generated="2000-01-01 00:00:00 UTC"), tmp_path / "r2")
    files = sorted(p.relative_to(r1) for p in r1.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(r2) for p in r2.rglob("*") if p.is_file())
    for f in files:
        assert (r1 / f).read_bytes() == (r2 / f).read_bytes(), f
    # and the demo's own report (built in another process) matches too
    assert (r1 / "report.html").read_bytes() == (demo.report / "report.html").read_bytes()


def test_strict_mode_suppresses_more(demo: DemoResult) -> None:
    a = load_analysis(demo.analysis)
    std = build_report(a, generated="x")
    strict = build_report(a, generated="x", disclosure=DisclosureSettings(mode="strict"))

    def n_c(r) -> int:
        t = next(t for t in r.tables() if t.id == "la_counts")
        return int((t.frame == SUPPRESSED).to_numpy().sum())

    assert n_c(strict) >= n_c(std)
    assert "strict" in next(t for t in strict.tables() if t.id == "la_counts").note


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_renders_in_headless_chromium(demo: DemoResult, tmp_path: Path) -> None:
    html = demo.report / "report.html"
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=2000",
        "--dump-dom",
        html.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    for sid in SECTION_IDS:
        assert f'id="{sid}"' in dom
    assert dom.count("<img") == 6 and dom.count("<table") >= 14
    console = [
        ln
        for ln in proc.stderr.splitlines()
        if "CONSOLE" in ln or "Uncaught" in ln or "Refused to" in ln or "net::ERR" in ln
    ]
    assert not console, console
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [*cmd[:-2], f"--screenshot={shot}", "--window-size=1200,3000", html.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and shot.stat().st_size > 50_000


def test_report_summary_and_frame(demo: DemoResult) -> None:
    r = build_report(load_analysis(demo.analysis), generated="x")
    assert f"{len(SECTION_IDS)} sections" in r.summary()
    f = r.to_frame()
    assert f["caption"].str.startswith("Table").all()
    assert f["disclosure"].str.len().gt(10).all()


def test_mdes_table_shows_the_analysis_mdes(demo: DemoResult) -> None:
    m = load_analysis(demo.analysis).table("mdes")
    shown = pd.read_csv(demo.report / "tables" / "mdes.csv")
    assert len(shown) == len(m)
    # the typed export carries the analysis' unrounded MDES table (issue #14 items 8, 13)
    np.testing.assert_allclose(shown["mdes"], m["mdes"], rtol=1e-12)
    np.testing.assert_allclose(shown["mdes_unadjusted"], m["mdes_unadjusted"], rtol=1e-12)
    assert list(shown["n_la"]) == [int(v) for v in m["n_la"]]
    assert set(shown["icc_source"]) == {"unconditional (intercept-only model)"}
