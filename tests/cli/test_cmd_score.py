from __future__ import annotations

import json

import pandas as pd

from trialkit.cli import main


def test_score_json(tmp_path, capsys):
    f = tmp_path / "m.csv"
    pd.DataFrame(
        {
            "entity_id": ["a", "b"],
            "instrument": ["WEMWBS", "ORS"],
            **{f"item_{i}": [3, 5] for i in range(1, 15)},
        }
    ).to_csv(f, index=False)
    rc = main(["score", "--input", str(f), "--instrument", "WEMWBS", "--format", "json"])
    payload = json.loads(capsys.readouterr().out)
    assert rc == 0 and payload["n"] == 1 and payload["scores"][0]["total"] == 42


def test_score_out_file_and_refuse_overwrite(tmp_path, capsys):
    f = tmp_path / "m.csv"
    pd.DataFrame({f"item_{i}": [4] for i in range(1, 8)}).to_csv(f, index=False)
    out = tmp_path / "s.csv"
    assert main(["score", "--input", str(f), "--instrument", "SWEMWBS", "--out", str(out)]) == 0
    assert pd.read_csv(out)["raw"].iloc[0] == 28
    assert (
        main(["score", "--input", str(f), "--instrument", "SWEMWBS", "--out", str(out)]) == 1
    )  # output exists: 1, every verb


def test_score_unknown_instrument(tmp_path, capsys):
    f = tmp_path / "m.csv"
    pd.DataFrame({"item_1": [1]}).to_csv(f, index=False)
    assert main(["score", "--input", str(f), "--instrument", "XYZ"]) == 1
