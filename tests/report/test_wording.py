"""The report's wording rules (issue #14 items 6 and 14): plurals, units, method names,
interval claims and direction words, in one place."""

from __future__ import annotations

import pytest

from trialkit.pipeline import DemoResult
from trialkit.report import wording as W


@pytest.mark.parametrize(
    ("word", "n", "expected"),
    [
        ("activity", 2, "activities"),
        ("resource", 2, "resources"),
        ("output", 2, "outputs"),
        ("outcome", 2, "outcomes"),
        ("local authority", 12, "local authorities"),
        ("day", 1, "day"),
        ("day", 5, "days"),
        ("fte", 3, "FTE"),
    ],
)
def test_plural(word: str, n: int, expected: str) -> None:
    assert W.plural(word, n) == expected


@pytest.mark.parametrize(
    ("value", "unit", "per", "expected"),
    [
        (1.0, "fte", "la", "1 FTE per LA"),
        (5.0, "day", "keyworker", "5 days per keyworker"),
        (16.0, "month", None, "16 months"),
        (1.0, "session", "month", "1 session per month"),
        (1.5, "hour", None, "1.5 hours"),
        (1.0, "proportion", None, "1"),
        (float("nan"), "day", None, "–"),
        ("", "day", None, "–"),
    ],
)
def test_quantity(value: object, unit: str, per: str | None, expected: str) -> None:
    assert W.quantity(value, unit, per) == expected


def test_method_names_capitalised() -> None:
    assert W.method_name("kenward-roger") == "Kenward–Roger"
    assert W.method_name("satterthwaite") == "Satterthwaite"
    assert W.method_name("some-new-method") == "Some-new-method"


def test_rules_out_no_effect_needs_adjusted_p_for_secondary() -> None:
    # the demo's RCADS row: CI -23.77 to -0.67 excludes 0, but Holm-adjusted p is 0.208
    assert not W.rules_out_no_effect(-23.77, -0.67, role="secondary", p_adjusted=0.208)
    assert W.rules_out_no_effect(-23.77, -0.67, role="secondary", p_adjusted=0.01)
    assert W.rules_out_no_effect(-23.77, -0.67, role="primary")
    assert not W.rules_out_no_effect(-7.79, 0.41, role="primary")
    assert not W.rules_out_no_effect(float("nan"), 1.0, role="primary")
    sentence = W.interval_sentence(-23.77, -0.67, role="secondary", p_adjusted=0.208)
    assert "rules out no effect" not in sentence
    assert "compatible with no effect" in sentence


@pytest.mark.parametrize(
    ("estimate", "better", "expected"),
    [
        (-3.7, "lower", "favouring the intervention"),
        (-3.7, "higher", "favouring the control arm"),
        (0.67, "higher", "favouring the intervention"),  # a log odds ratio of retention
        (0.0, "higher", ""),
        (1.0, "", ""),
    ],
)
def test_direction_words_from_better(estimate: float, better: str, expected: str) -> None:
    assert W.direction_words(estimate, better) == expected


def _md(demo: DemoResult) -> str:
    return (demo.report / "report.md").read_text(encoding="utf-8")


def test_demo_secondary_with_holm_p_0208_is_not_claimed(demo: DemoResult) -> None:
    md = _md(demo)
    line = next(x for x in md.splitlines() if x.startswith("- Secondary outcome — Child anxiety"))
    assert "p = 0.208" in line
    assert "rules out no effect" not in line
    assert "excludes no difference" not in md
    assert "compatible with no effect" in line


def test_demo_polish(demo: DemoResult) -> None:
    md = _md(demo)
    svg = (demo.report / "figures" / "logic_model.svg").read_text(encoding="utf-8")
    assert "Activitys" not in svg and "Activities" in svg
    for bad in ("1 fte per la", "5 day per keyworker", "16.00 month", "(inte.)", "(cont.)"):
        assert bad not in md, bad
    assert "1 FTE per LA" in md
    assert "5 days per keyworker" in md
    assert "| 16 months |" in md
    assert "Kenward–Roger" in md and "| kenward-roger |" not in md
    assert "analysis:family_functioning" not in md
    # outcome and indicator ids in tables are replaced by their labels
    tables = md.split("## 9.")[0]
    assert "| analysed | family_functioning |" not in tables
    assert "| analysed | Family functioning" in tables
    assert "ind.feedback_baseline" not in tables
    assert ": child_mental_health at" not in tables
    # control LAs have no fidelity band to miss: they are "not applicable"
    fidelity = [x for x in tables.splitlines() if x.startswith("| LA") and "| control |" in x]
    assert fidelity and not any(x.endswith("| missing |") for x in fidelity)
    assert any(x.endswith("| not applicable (control) |") for x in fidelity)


def test_empty_registration_omits_the_sentence(demo: DemoResult) -> None:
    import dataclasses

    from trialkit.analyse import load_analysis
    from trialkit.report import build_report

    a = load_analysis(demo.analysis)
    proto = dict(a.protocol)
    proto["trial"] = {**proto["trial"], "registration": "  "}
    report = build_report(dataclasses.replace(a, protocol=proto), generated="x")
    assert "Trial registration" not in report.subtitle
    assert report.subtitle.startswith("Statistical report")
