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


# ----------------------------------------------------------------------------- issue #16 item 1
def _council_csv(tmp_path, name, header, rows):
    f = tmp_path / name
    f.write_text("\n".join([",".join(header), *(",".join(r) for r in rows)]) + "\n")
    return f


def test_score_refuses_out_of_range_and_text_items(tmp_path, capsys):
    head = ["Entity_ID", "entity_id", "instrument", *(f"item_{i}" for i in range(1, 16))]
    ok = ["x", "F001", "SCORE-15", *["3"] * 15]
    bad = ["x", "F002", "SCORE-15", *["3"] * 5, "6", "-", ".", *["3"] * 7]
    f = _council_csv(tmp_path, "family outcomes.csv", head, [ok, bad])
    rc = main(["score", "--input", str(f), "--instrument", "SCORE-15", "--format", "json"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert "family outcomes.csv row 2 column item_6" in err
    assert "measurements.item_out_of_range" in err and "measurements.item_not_numeric" in err


def test_score_swemwbs_extremes_exit_1_no_warning(tmp_path, capsys):
    f = _council_csv(
        tmp_path, "kw.csv", ["entity_id", *(f"item_{i}" for i in range(1, 8))],
        [["K1", "99", "-3", "1e308", "3", "3", "3", "3"]],
    )  # fmt: skip
    assert main(["score", "--input", str(f), "--instrument", "SWEMWBS"]) == 1
    err = capsys.readouterr().err
    assert err.count("measurements.item_out_of_range") == 3 and "RuntimeWarning" not in err


def test_score_cbi_coding_mismatch_exit_1(tmp_path, capsys):
    f = _council_csv(
        tmp_path, "cbi.csv", ["entity_id", *(f"item_{i}" for i in range(1, 20))],
        [["K1", *["50"] * 10, *["100"] * 9]],
    )  # fmt: skip
    assert main(["score", "--input", str(f), "--instrument", "CBI", "--cbi-coding", "1-5"]) == 1
    assert "--cbi-coding 0-100" in capsys.readouterr().err


def _protocol_with_scoring(tmp_path, scoring: str):
    from pathlib import Path

    src = (
        Path(__file__).resolve().parents[2]
        / "protocols"
        / "supporting-families-systemic-pilot.toml"
    )
    p = tmp_path / "protocol.toml"
    p.write_text(src.read_text() + "\n" + scoring)
    return p


def test_score_reads_protocol_scoring_and_flags_override(tmp_path, capsys):
    p = _protocol_with_scoring(
        tmp_path,
        '[scoring]\ncbi_coding = "1-5"\nscore15_reverse = "none"\n\n'
        '[[scoring.instruments]]\nid = "FAD"\nn_items = 4\nrange = [1, 4]\nreverse_items = [2]\n',
    )
    cbi = _council_csv(
        tmp_path, "cbi.csv", ["entity_id", *(f"item_{i}" for i in range(1, 20))],
        [["K1", *["2"] * 19]],
    )  # fmt: skip
    rc = main(["score", "--input", str(cbi), "--instrument", "CBI", "--protocol", str(p),
               "--format", "json"])  # fmt: skip
    assert rc == 0 and json.loads(capsys.readouterr().out)["scores"][0]["personal"] == 25
    assert main(["score", "--input", str(cbi), "--instrument", "CBI", "--protocol", str(p),
                 "--cbi-coding", "0-100"]) == 1  # fmt: skip
    capsys.readouterr()
    s15 = _council_csv(
        tmp_path, "s15.csv", ["entity_id", *(f"item_{i}" for i in range(1, 16))],
        [["F1", *["1"] * 15]],
    )  # fmt: skip
    rc = main(["score", "--input", str(s15), "--instrument", "SCORE-15", "--protocol", str(p),
               "--format", "json"])  # fmt: skip
    assert json.loads(capsys.readouterr().out)["scores"][0]["total"] == 15  # no item reversed
    fad = _council_csv(
        tmp_path, "fad.csv", ["entity_id", "item_1", "item_2", "item_3", "item_4"],
        [["F1", "4", "1", "4", "4"]],
    )  # fmt: skip
    rc = main(["score", "--input", str(fad), "--instrument", "FAD", "--protocol", str(p),
               "--format", "json"])  # fmt: skip
    assert rc == 0 and json.loads(capsys.readouterr().out)["scores"][0]["total"] == 16
