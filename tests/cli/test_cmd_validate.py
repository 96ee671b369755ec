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
