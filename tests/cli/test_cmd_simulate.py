from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

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
    assert truth["outcomes"]["family_functioning"]["latent_smd"] == -0.8
    assert main([*base, "--effect", "oops", "--out", str(tmp_path / "b")]) == 2
