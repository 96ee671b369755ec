"""The fidelity stage reads the data stage's validated Parquet directory and gets the same tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from trialkit.cli import main
from trialkit.fidelity._example import example_tables

PILOT = (
    Path(__file__).resolve().parents[2] / "protocols" / "supporting-families-systemic-pilot.toml"
)


def test_validated_parquet_dir_gives_same_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import trialkit.data as data_mod
    from trialkit.protocol.load import load_protocol

    t = example_tables(levels=(1.0, 0.6), n_control=2)
    raw, alloc = tmp_path / "raw", tmp_path / "alloc"
    raw.mkdir()
    alloc.mkdir()
    t["clusters"] = t["clusters"].assign(imd_score=20.0, families_referred_2023=30)
    m = pd.DataFrame(
        {
            "entity_id": ["LA01-F1"],
            "level": ["family"],
            "instrument": ["SCORE-15"],
            "timepoint": ["baseline"],
            "date": ["2024-10-02"],
        }
    )
    for i in range(1, 16):
        m[f"item_{i}"] = 3
    t["measurements"] = m
    for name in ("clusters", "keyworkers", "families", "delivery", "measurements"):
        t[name].to_csv(raw / f"{name}.csv", index=False)
    t["allocation"].to_csv(alloc / "allocation.csv", index=False)
    td = data_mod.validate(load_protocol(PILOT), raw, alloc)
    assert td.ok, td.codes
    data_mod.save_validated(td, tmp_path / "validated")
    args = ["--protocol", str(PILOT), "--allocation", str(alloc)]
    assert main(["fidelity", *args, "--data", str(raw), "--out", str(tmp_path / "a")]) == 0
    assert (
        main(
            ["fidelity", *args, "--data", str(tmp_path / "validated"), "--out", str(tmp_path / "b")]
        )
        == 0
    )
    capsys.readouterr()
    for name in ("fidelity_indicators", "fidelity_overall", "keyworker_dose", "contamination"):
        assert (tmp_path / "a" / f"{name}.csv").read_bytes() == (
            tmp_path / "b" / f"{name}.csv"
        ).read_bytes()
