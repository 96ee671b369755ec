from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from trialkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"
CLUSTERS = ROOT / "protocols" / "supporting-families-clusters.csv"


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli") / "sim"
    assert (
        main(
            [
                "simulate",
                "--protocol",
                str(PROTOCOL),
                "--clusters",
                str(CLUSTERS),
                "--seed",
                "3",
                "--out",
                str(d),
                "--keyworkers",
                "4",
                "--families-per-keyworker",
                "2",
                "--table-format",
                "csv",
            ]
        )
        == 0
    )
    return d


def test_validate_ok_json_and_out(sim, tmp_path, capsys):
    out = tmp_path / "valid"
    rc = main(
        [
            "validate",
            "--protocol",
            str(PROTOCOL),
            "--data",
            str(sim),
            "--allocation",
            str(sim),
            "--out",
            str(out),
            "--format",
            "json",
        ]
    )
    payload = json.loads(capsys.readouterr().out)
    assert rc == 0 and payload["ok"] is True
    assert {"problems", "exclusions", "flow"} <= set(payload)
    assert (out / "manifest.json").is_file()


def test_validate_errors_exit_1(sim, tmp_path, capsys):
    import shutil

    d = tmp_path / "bad"
    shutil.copytree(sim, d, ignore=shutil.ignore_patterns("manifest.json"))
    f = d / "families.csv"
    df = pd.read_csv(f, dtype=str, keep_default_na=False)
    df.loc[0, "keyworker_id"] = "NOBODY"
    df.to_csv(f, index=False)
    rc = main(
        [
            "validate",
            "--protocol",
            str(PROTOCOL),
            "--data",
            str(d),
            "--allocation",
            str(d),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    out = capsys.readouterr()
    assert rc == 1
    assert "families.csv row 1 column keyworker_id" in out.out
    assert not (tmp_path / "o").exists()


def test_validate_missing_dir(tmp_path, capsys):
    rc = main(["validate", "--protocol", str(PROTOCOL), "--data", str(tmp_path / "nope")])
    assert rc == 1
    assert "data.not_a_directory" in capsys.readouterr().err


def test_validate_uk_dates_one_error_then_date_format(sim, tmp_path, capsys):
    # families.csv saved from Excel with a UK locale: 24/02/2025 in every date cell
    import shutil

    d = tmp_path / "uk"
    shutil.copytree(sim, d, ignore=shutil.ignore_patterns("manifest.json"))
    f = d / "families.csv"
    df = pd.read_csv(f, dtype=str, keep_default_na=False)
    for c in ("referral_date", "consent_date", "withdrawal_date"):
        df[c] = [f"{x[8:10]}/{x[5:7]}/{x[:4]}" if x else "" for x in df[c]]
    df.to_csv(f, index=False)
    args = ["validate", "--data", str(d), "--allocation", str(d)]
    rc = main([*args, "--protocol", str(PROTOCOL)])
    out = capsys.readouterr().out
    assert rc == 1
    assert out.count("[families.invalid_date]") == 3  # one per date column, not one per cell
    assert "families.csv column consent_date" in out
    assert 'this column looks like DD/MM/YYYY: set date_format = "%d/%m/%Y"' in out
    assert "measurements.without_consent" not in out
    text = PROTOCOL.read_text(encoding="utf-8").replace(
        "[data]\n", '[data]\ndate_format = "%d/%m/%Y"\n', 1
    )
    uk_protocol = tmp_path / "protocol.toml"
    uk_protocol.write_text(text, encoding="utf-8")
    assert main([*args, "--protocol", str(uk_protocol)]) == 0


def test_validate_renamed_column(sim, tmp_path, capsys):
    import shutil

    d = tmp_path / "renamed"
    shutil.copytree(sim, d, ignore=shutil.ignore_patterns("manifest.json"))
    f = d / "families.csv"
    df = pd.read_csv(f, dtype=str, keep_default_na=False)
    df.rename(columns={"family_id": "Family ID"}).to_csv(f, index=False)
    rc = main(["validate", "--protocol", str(PROTOCOL), "--data", str(d), "--allocation", str(d)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "did you mean 'Family ID'? rename it to 'family_id'" in out
    assert "measurements.unknown_entity" not in out
