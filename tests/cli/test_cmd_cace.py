"""``trialkit cace`` end to end on temporary directories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialkit.cli import main
from trialkit.fidelity._example import example_tables

PILOT = (
    Path(__file__).resolve().parents[2] / "protocols" / "supporting-families-systemic-pilot.toml"
)


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    t = example_tables(levels=(1.0, 1.0, 0.8, 0.6, 0.4, 1.0), contaminate=False)
    data = tmp_path / "data"
    data.mkdir()
    for name in ("clusters", "keyworkers", "families", "delivery"):
        t[name].to_csv(data / f"{name}.csv", index=False)
    alloc = tmp_path / "allocation"
    alloc.mkdir()
    t["allocation"].to_csv(alloc / "allocation.csv", index=False)
    rng = np.random.default_rng(5)
    fam = t["families"].merge(t["allocation"], left_on="la_id", right_on="cluster")
    frame = pd.DataFrame(
        {
            "la_id": fam["la_id"],
            "arm": fam["arm"],
            "keyworker_id": fam["keyworker_id"],
            "baseline": rng.normal(40, 8, len(fam)),
        }
    )
    frame["y"] = (
        0.6 * frame["baseline"]
        + rng.normal(0, 5, len(fam))
        - 3.0 * (frame["arm"] == "intervention")
    )
    fpath = tmp_path / "frame.csv"
    frame.to_csv(fpath, index=False)
    return {"data": data, "allocation": alloc, "frame": fpath, "tmp": tmp_path}


def base(inputs: dict[str, Path]) -> list[str]:
    return [
        "cace",
        "--protocol",
        str(PILOT),
        "--data",
        str(inputs["data"]),
        "--allocation",
        str(inputs["allocation"]),
        "--outcome",
        "family_functioning",
        "--analysis-frame",
        str(inputs["frame"]),
    ]


def test_cace_json_with_fidelity_dir_and_sweep(
    inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fid = inputs["tmp"] / "fid"
    assert (
        main(
            [
                "fidelity",
                "--protocol",
                str(PILOT),
                "--data",
                str(inputs["data"]),
                "--allocation",
                str(inputs["allocation"]),
                "--out",
                str(fid),
            ]
        )
        == 0
    )
    capsys.readouterr()
    out = inputs["tmp"] / "cace"
    code = main(
        [
            *base(inputs),
            "--fidelity",
            str(fid),
            "--thresholds",
            "0.5",
            "0.8",
            "--out",
            str(out),
            "--format",
            "json",
        ]
    )
    assert code == 0, capsys.readouterr().err
    payload = json.loads(capsys.readouterr().out)
    res = payload["result"]
    assert (
        res["threshold"] == 0.8
        and res["vcov_type"] == "CR2"
        and res["df_method"] == "satterthwaite"
    )
    assert res["covariates"] == ["baseline"]  # adjust_for_baseline in the protocol
    assert res["complier_share"]["intervention"] == pytest.approx(4 / 6)
    assert len(payload["sweep"]["results"]) == 2
    for f in ("cace.csv", "cace_sweep.csv", "cace_sweep.png", "cace_sweep.svg", "cace.json"):
        assert (out / f).is_file()
    saved = json.loads((out / "cace.json").read_text())
    assert saved["provenance"]["inputs"]["analysis_frame"]["sha256"]


def test_cace_text_computes_fidelity_itself(
    inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*base(inputs), "--threshold", "0.6", "--covariates"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "CACE for family_functioning" in out and ">= 0.6" in out


def test_cace_without_frame_is_usage_error(
    inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = base(inputs)[:-2]
    code = main(args)
    if code == 0:  # the data stage can build the frame
        return
    assert code in (1, 2)
    capsys.readouterr()


def test_cace_bad_fidelity_dir(inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*base(inputs), "--fidelity", str(inputs["tmp"] / "nope")])
    assert code == 1
    assert "cace.fidelity_missing" in capsys.readouterr().err


def test_cace_with_data_stage_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import trialkit.simulate.trial as sim
    from trialkit.protocol.load import load_protocol

    las = [f"LA{i:02d}" for i in range(1, 13)]
    clusters = pd.DataFrame(
        {
            "la_id": las,
            "region": ["North", "South", "Midlands"] * 4,
            "imd_score": [14.0, 31.0, 22.0, 18.0, 40.0, 25.0, 11.0, 35.0, 29.0, 16.0, 20.0, 27.0],
            "families_referred_2023": [30, 54, 45, 28, 61, 33, 40, 47, 52, 38, 44, 36],
        }
    )
    allocation = pd.DataFrame({"cluster": las, "arm": ["intervention", "control"] * 6})
    st = sim.simulate_trial(load_protocol(PILOT), clusters, allocation, seed=11)
    data, alloc = tmp_path / "data", tmp_path / "alloc"
    data.mkdir()
    alloc.mkdir()
    for k, v in st.tables.items():
        v.to_parquet(data / f"{k}.parquet", index=False)
    st.allocation.to_csv(alloc / "allocation.csv", index=False)
    args = ["--protocol", str(PILOT), "--data", str(data), "--allocation", str(alloc)]
    code = main(
        [
            "cace",
            *args,
            "--outcome",
            "family_functioning",
            "--threshold",
            "0.6",
            "--covariates",
            "baseline",
            "--format",
            "json",
        ]
    )
    assert code == 0, capsys.readouterr().err
    res = json.loads(capsys.readouterr().out)["result"]
    assert res["n_clusters"] == 12 and res["one_sided"] and res["covariates"] == ["baseline"]
