"""``trialkit fidelity`` end to end on temporary directories."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from trialkit.cli import main
from trialkit.fidelity._example import example_tables

PILOT = (
    Path(__file__).resolve().parents[2] / "protocols" / "supporting-families-systemic-pilot.toml"
)


def write_inputs(tmp: Path, *, parquet: bool = False, **kw: object) -> tuple[Path, Path]:
    t = example_tables(**kw)  # type: ignore[arg-type]
    data = tmp / "data"
    data.mkdir()
    for name in ("clusters", "keyworkers", "families", "delivery"):
        if parquet:
            t[name].to_parquet(data / f"{name}.parquet", index=False)
        else:
            t[name].to_csv(data / f"{name}.csv", index=False)
    alloc = tmp / "allocation"
    alloc.mkdir()
    t["allocation"].to_csv(alloc / "allocation.csv", index=False)
    return data, alloc


def test_fidelity_writes_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, alloc = write_inputs(tmp_path)
    out = tmp_path / "out"
    before = PILOT.read_bytes()
    code = main(
        [
            "fidelity",
            "--protocol",
            str(PILOT),
            "--data",
            str(data),
            "--allocation",
            str(alloc),
            "--out",
            str(out),
            "--format",
            "json",
        ]
    )
    assert code == 0, capsys.readouterr().err
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] and payload["contaminated_las"] == ["LA07"]
    for name in (
        "fidelity_indicators",
        "fidelity_components",
        "fidelity_overall",
        "fidelity_over_time",
        "keyworker_dose",
        "contamination",
    ):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.parquet").is_file()
    for f in ("fidelity_heatmap.png", "fidelity_heatmap.svg", "fidelity_summary.json", PILOT.name):
        assert (out / f).is_file()
    assert PILOT.read_bytes() == before
    summary = json.loads((out / "fidelity_summary.json").read_text())
    assert summary["provenance"]["inputs"]["protocol"]["sha256"]
    assert "alt_text" in summary["figures"]["fidelity_heatmap"]
    overall = pd.read_parquet(out / "fidelity_overall.parquet").set_index("la_id")
    assert overall.loc["LA01", "overall_index"] == 1.0

    from trialkit.protocol.load import load_protocol

    done = load_protocol(out / PILOT.name)
    for arm in ("intervention", "control"):
        assert done.arms[arm].tidier.how_well_actual.text
        assert done.arms[arm].tidier.modifications.text


def test_completed_protocol_passes_report_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, alloc = write_inputs(tmp_path, parquet=True)
    out = tmp_path / "out"
    assert (
        main(
            [
                "fidelity",
                "--protocol",
                str(PILOT),
                "--data",
                str(data),
                "--allocation",
                str(alloc),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    code = main(["check", str(out / PILOT.name), "--stage", "report", "--format", "json"])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    # the items the fidelity stage fills in must never be what the report-stage check flags
    for item in ("how_well_actual", "modifications"):
        assert f"tidier.{item}" not in text, text
    assert code == 0, text


def test_existing_output_dir_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, alloc = write_inputs(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    code = main(
        [
            "fidelity",
            "--protocol",
            str(PILOT),
            "--data",
            str(data),
            "--allocation",
            str(alloc),
            "--out",
            str(out),
        ]
    )
    assert code == 1
    assert "fidelity.output.exists" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "x"


def test_bad_delivery_record_exit_1_names_file_row_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, alloc = write_inputs(tmp_path)
    d = pd.read_csv(data / "delivery.csv")
    i = d.index[d["record_type"] == "clinician_month"][0]
    d.loc[i, "fte"] = -1.0
    d.to_csv(data / "delivery.csv", index=False)
    code = main(
        [
            "fidelity",
            "--protocol",
            str(PILOT),
            "--data",
            str(data),
            "--allocation",
            str(alloc),
            "--out",
            str(tmp_path / "out"),
            "--format",
            "json",
        ]
    )
    assert code == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["issues"][0]["code"] == "delivery.invalid_value"
    assert payload["issues"][0]["path"] == f"delivery.csv row {i + 1} column fte"


def test_missing_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, alloc = write_inputs(tmp_path)
    (data / "families.csv").unlink()
    code = main(
        [
            "fidelity",
            "--protocol",
            str(PILOT),
            "--data",
            str(data),
            "--allocation",
            str(alloc),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 1
    assert "fidelity.data.missing_table" in capsys.readouterr().err


def test_help_has_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fidelity", "--help"]) == 0
    assert "trialkit fidelity --protocol" in capsys.readouterr().out


def test_outputs_are_reproducible(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, alloc = write_inputs(tmp_path, levels=(1.0, 0.5), n_control=2)
    outs = [tmp_path / "o1", tmp_path / "o2"]
    for out in outs:
        assert (
            main(
                [
                    "fidelity",
                    "--protocol",
                    str(PILOT),
                    "--data",
                    str(data),
                    "--allocation",
                    str(alloc),
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
    capsys.readouterr()
    names = sorted(p.name for p in outs[0].iterdir())
    assert names == sorted(p.name for p in outs[1].iterdir())
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_string_ids_with_leading_zeros(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, alloc = write_inputs(tmp_path, levels=(1.0,), n_control=1)
    for f in (
        data / "delivery.csv",
        data / "keyworkers.csv",
        data / "families.csv",
        data / "clusters.csv",
        alloc / "allocation.csv",
    ):
        f.write_text(f.read_text().replace("LA0", "0"))
    out = tmp_path / "out"
    assert (
        main(
            [
                "fidelity",
                "--protocol",
                str(PILOT),
                "--data",
                str(data),
                "--allocation",
                str(alloc),
                "--out",
                str(out),
            ]
        )
        == 0
    ), capsys.readouterr().err
    overall = pd.read_csv(out / "fidelity_overall.csv", dtype={"la_id": str})
    assert list(overall["la_id"]) == ["01", "02"]
