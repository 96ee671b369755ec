from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from trialkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"
CLUSTERS = ROOT / "protocols" / "supporting-families-clusters.csv"


def test_simulate_json_and_determinism(tmp_path, capsys):
    args = [
        "simulate",
        "--protocol",
        str(PROTOCOL),
        "--clusters",
        str(CLUSTERS),
        "--seed",
        "9",
        "--keyworkers",
        "3",
        "--families-per-keyworker",
        "2",
        "--format",
        "json",
    ]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] and payload["row_counts"]["clusters"] == 12
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a = pd.read_parquet(tmp_path / "a" / "measurements.parquet")
    b = pd.read_parquet(tmp_path / "b" / "measurements.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert (tmp_path / "a" / "truth.json").is_file() and (
        tmp_path / "a" / "allocation.csv"
    ).is_file()


def test_simulate_with_allocation_and_existing_out(tmp_path, capsys):
    alloc = tmp_path / "alloc"
    alloc.mkdir()
    cl = pd.read_csv(CLUSTERS, dtype=str)
    pd.DataFrame({"cluster": cl.la_id, "arm": ["control", "intervention"] * 6}).to_csv(
        alloc / "allocation.csv", index=False
    )
    out = tmp_path / "o"
    args = [
        "simulate",
        "--protocol",
        str(PROTOCOL),
        "--clusters",
        str(CLUSTERS),
        "--allocation",
        str(alloc),
        "--seed",
        "1",
        "--keyworkers",
        "3",
        "--families-per-keyworker",
        "1",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    got = pd.read_csv(out / "allocation.csv", dtype=str)
    assert got["arm"].tolist() == ["control", "intervention"] * 6
    assert main(args) == 1


def test_simulate_effect_option(tmp_path, capsys):
    base = [
        "simulate",
        "--protocol",
        str(PROTOCOL),
        "--clusters",
        str(CLUSTERS),
        "--seed",
        "2",
        "--keyworkers",
        "3",
        "--families-per-keyworker",
        "1",
    ]
    assert (
        main(
            [
                *base,
                "--effect",
                "family_functioning=-0.8",
                "--fidelity",
                "0.9",
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
    truth = json.loads((tmp_path / "a" / "truth.json").read_text())
    # -0.8 is a harm: SCORE-15 (better = "lower") goes up by 0.8 latent SD
    assert truth["outcomes"]["family_functioning"]["effect_smd"] == -0.8
    assert truth["outcomes"]["family_functioning"]["latent_smd"] == 0.8
    assert main([*base, "--effect", "oops", "--out", str(tmp_path / "b")]) == 2


BASE = [
    "simulate",
    "--protocol",
    str(PROTOCOL),
    "--clusters",
    str(CLUSTERS),
    "--seed",
    "3",
    "--keyworkers",
    "3",
    "--families-per-keyworker",
    "2",
]


def test_positive_effect_is_a_benefit_whatever_the_scale_direction(tmp_path, capsys):
    """Issue #16 item 5: ``--effect family_functioning=0.3`` made the intervention worse."""
    out = tmp_path / "s"
    args = [*BASE, "--effect", "family_functioning=0.6", "--effect", "parent_wellbeing=0.6"]
    assert main([*args, "--out", str(out)]) == 0
    truth = json.loads((out / "truth.json").read_text())["outcomes"]
    # SCORE-15: lower is better, so a benefit lowers the score; SWEMWBS: higher is better
    assert truth["family_functioning"]["latent_smd"] == -0.6
    assert truth["family_functioning"]["scale_sate_treated"] < 0
    assert truth["parent_wellbeing"]["latent_smd"] == 0.6
    assert truth["parent_wellbeing"]["scale_sate_treated"] > 0


def test_effect_help_says_positive_is_benefit(capsys):
    assert main(["simulate", "--help"]) == 0
    assert "positive = benefit" in " ".join(capsys.readouterr().out.split())


def test_unknown_outcome_in_effect_is_an_error_with_did_you_mean(tmp_path, capsys):
    code = main([*BASE, "--effect", "family_functionning=0.3", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2
    assert "simulate.unknown_outcome" in err and "did you mean 'family_functioning'" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--fidelity", "2"),
        ("--fidelity", "-0.1"),
        ("--keyworkers", "-3"),
        ("--keyworkers", "0"),
        ("--keyworkers", "nan"),
        ("--families-per-keyworker", "-1"),
        ("--families-per-keyworker", "1e308"),
        ("--contamination", "1.5"),
        ("--seed", "-1"),
    ],
)
def test_out_of_range_settings_are_usage_errors(tmp_path, capsys, option, value):
    code = main([*BASE, option, value, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "simulate.invalid_parameter" in err and "internal error" not in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("start", ["2025-01-06", "2024-09-17", "2025-03-31"])
def test_every_date_lies_in_the_trial_window_so_validate_passes(tmp_path, capsys, start):
    """Issue #16 item 5: a trial starting 6 January got supervision sessions on 2 and 4 January."""
    text = PROTOCOL.read_text(encoding="utf-8")
    assert "start = 2024-09-01" in text
    protocol = tmp_path / "protocol.toml"
    protocol.write_text(text.replace("start = 2024-09-01", f"start = {start}"), encoding="utf-8")
    out = tmp_path / "sim"
    args = ["simulate", "--protocol", str(protocol), *BASE[3:], "--table-format", "csv"]
    assert main([*args, "--out", str(out)]) == 0
    delivery = pd.read_csv(out / "delivery.csv", dtype=str)
    dates = pd.to_datetime(delivery["date"].dropna())
    assert dates.min() >= pd.Timestamp(start)
    capsys.readouterr()
    code = main(
        ["validate", "--protocol", str(protocol), "--data", str(out), "--allocation", str(out)]
    )
    report = capsys.readouterr()
    assert code == 0, report.out + report.err
    assert "date_outside_window" not in report.out + report.err
