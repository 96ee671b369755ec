"""``trialkit power`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trialkit.cli import main

ROOT = Path(__file__).parents[2]
L3 = [
    "--levels",
    "3",
    "--clusters",
    "12",
    "--subclusters-per-cluster",
    "10",
    "--units-per-subcluster",
    "12",
    "--icc-cluster",
    "0.05",
    "--icc-subcluster",
    "0.1",
]


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> dict:
    assert main(argv) == code
    return json.loads(capsys.readouterr().out)


def test_mdes_json(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["power", "mdes", *L3, "--format", "json"])
    for k in (
        "mdes",
        "conf_low",
        "conf_high",
        "power",
        "clusters",
        "df",
        "standard_error",
        "multiplier",
    ):
        assert k in out
    assert out["df"] == 10 and out["multiplier"] == "exact"
    pu = _json(capsys, ["power", "mdes", *L3, "--multiplier", "powerup", "--format", "json"])
    assert pu["mdes"] < out["mdes"]


def test_power_and_clusters(capsys: pytest.CaptureFixture[str]) -> None:
    mdes = _json(capsys, ["power", "mdes", *L3, "--format", "json"])["mdes"]
    pw = _json(capsys, ["power", "power", *L3, "--effect", str(mdes), "--format", "json"])
    assert pw["power"] == pytest.approx(0.8, abs=1e-9)
    args = L3[:2] + L3[4:]
    cl = _json(capsys, ["power", "clusters", *args, "--effect", "0.3", "--format", "json"])
    assert cl["clusters"] == 26 and cl["power"] >= 0.8


def test_two_level_options(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(
        capsys,
        [
            "power",
            "mdes",
            "--levels",
            "2",
            "--clusters",
            "44",
            "--units-per-cluster",
            "20",
            "--icc-cluster",
            "0.2",
            "--r2-unit",
            "0.5",
            "--r2-cluster",
            "0.3",
            "--cluster-covariates",
            "5",
            "--one-tailed",
            "--alpha",
            "0.1",
            "--treated-fraction",
            "0.4",
            "--cv",
            "0.3",
            "--cv-method",
            "van-breukelen",
            "--format",
            "json",
        ],
    )
    assert out["df"] == 37


def test_binary(capsys: pytest.CaptureFixture[str]) -> None:
    base = [
        "--levels",
        "2",
        "--clusters",
        "20",
        "--units-per-cluster",
        "30",
        "--icc-cluster",
        "0.05",
        "--outcome",
        "binary",
    ]
    pw = _json(capsys, ["power", "power", *base, "--proportions", "0.3,0.45", "--format", "json"])
    assert 0.5 < pw["power"] < 0.8
    md = _json(
        capsys, ["power", "mdes", *base, "--proportions", "0.3", "--test", "z", "--format", "json"]
    )
    assert md["df"] is None  # infinite df (z) is written as null


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["power", "mdes", *L3]) == 0
    assert "MDES" in capsys.readouterr().out


def test_invalid_inputs_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    bad = [
        "power",
        "mdes",
        "--levels",
        "3",
        "--clusters",
        "3",
        "--subclusters-per-cluster",
        "2",
        "--units-per-subcluster",
        "5",
        "--icc-cluster",
        "0.6",
        "--icc-subcluster",
        "0.5",
        "--treated-fraction",
        "1.2",
        "--cluster-covariates",
        "1",
    ]
    assert main(bad) == 1
    err = capsys.readouterr().err
    for code in ("power.icc_sum", "power.treated_fraction", "power.too_few_clusters"):
        assert code in err
    assert main([*bad, "--format", "json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is False and payload["issues"]


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["power", "power", *L3]) == 2  # no --effect
    assert main(["power", "mdes", *L3, "--units-per-cluster", "5"]) == 2
    assert main(["power", "mdes", "--levels", "4"]) == 2
    capsys.readouterr()


def test_simulate_single_json(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(
        capsys,
        [
            "power",
            "simulate",
            "--levels",
            "2",
            "--clusters",
            "12",
            "--units-per-cluster",
            "10",
            "--icc-cluster",
            "0.1",
            "--effect",
            "0.5",
            "--reps",
            "200",
            "--seed",
            "3",
            "--format",
            "json",
        ],
    )
    for k in (
        "power",
        "mc_se",
        "conf_low",
        "conf_high",
        "reps",
        "singular",
        "failed",
        "coverage",
        "seconds",
    ):
        assert k in out
    assert out["reps"] == 200


def test_simulate_config_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "sim"
    cfg = ROOT / "simulations" / "clusters-curve.toml"
    res = _json(
        capsys,
        [
            "power",
            "simulate",
            "--config",
            str(cfg),
            "--reps",
            "50",
            "--out",
            str(out_dir),
            "--format",
            "json",
        ],
    )
    assert len(res["scenarios"]) == 8
    names = {p.name for p in out_dir.iterdir()}
    assert {"results.json", "results.csv", "summary.txt"} <= names
    assert any(n.endswith(".png") for n in names) and any(n.endswith(".svg") for n in names)
    saved = json.loads((out_dir / "results.json").read_text())
    assert saved["provenance"]["seed"] == 7
    assert saved["provenance"]["inputs"]["config"]["sha256"]
    # never overwrite
    assert (
        main(["power", "simulate", "--config", str(cfg), "--reps", "5", "--out", str(out_dir)]) == 1
    )
    assert "power.out_exists" in capsys.readouterr().err


def test_dask_bad_scheduler_is_clear() -> None:
    pytest.importorskip("distributed")
    from trialkit.errors import PowerError
    from trialkit.power.backends import DaskBackend

    with pytest.raises(PowerError) as e:
        DaskBackend(scheduler="tcp://127.0.0.1:1", timeout="1s")
    assert e.value.codes == ("power.dask_connect",)


def test_progression_json(capsys: pytest.CaptureFixture[str]) -> None:
    """Lewis et al. (2021) Table 4, and the design effect of a cluster pilot."""
    out = _json(
        capsys, ["power", "progression", "--red", "0.5", "--green", "0.75", "--format", "json"]
    )
    assert (out["n"], out["variant"], out["design_effect"], out["n_clusters"]) == (
        34,
        "lewis-2021",
        1.0,
        None,
    )
    out = _json(
        capsys,
        ["power", "progression", "--red", "0.65", "--green", "0.85", "--icc", "0.05"]
        + ["--cluster-size", "11", "--power", "0.9", "--alpha", "0.05", "--format", "json"],
    )
    assert (out["n_unclustered"], out["design_effect"]) == (44, pytest.approx(1.5))
    assert (out["n"], out["n_clusters"]) == (66, 6)
    out = _json(
        capsys,
        ["power", "progression", "--red", "0.4", "--green", "0.7", "--variant", "normal"]
        + ["--format", "json"],
    )
    assert out["n"] == 22


def test_progression_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["power", "progression", "--red", "0.5", "--green", "0.5"]) == 1
    assert "power.progression_equal" in capsys.readouterr().err
    assert main(["power", "progression", "--red", "1.5", "--green", "0.5"]) == 1
    assert main(["power", "progression", "--red", "0.2", "--green", "0.5", "--icc", "0.1"]) == 2
    assert main(["power", "progression", "--red", "0.2"]) == 2
    assert "lower is better" in _text(
        capsys, ["power", "progression", "--red", "0.3", "--green", "0.1"]
    )


def _text(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out
