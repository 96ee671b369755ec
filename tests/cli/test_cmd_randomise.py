"""randomise -> verify -> tamper -> verify fails, end to end through the CLI."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

from trialkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = ROOT / "protocols" / "supporting-families-clusters.csv"
ARGS = [
    "--id-column",
    "la_id",
    "--method",
    "constrained",
    "--covariates",
    "region,imd_score,families_referred_2023",
    "--seed",
    "20260401",
]


@pytest.fixture
def alloc(tmp_path: Path) -> Path:
    out = tmp_path / "alloc"
    # the validity warning is printed once in the output, never raised as a Python warning
    assert main(["randomise", str(CLUSTERS), *ARGS, "--out", str(out)]) == 0
    return out


def test_outputs(alloc: Path) -> None:
    assert sorted(p.name for p in alloc.iterdir()) == [
        "allocation.csv",
        "audit.json",
        "balance.csv",
        "manifest.json",
        "space.parquet",
    ]
    audit = json.loads((alloc / "audit.json").read_text())
    assert audit["seed"] == 20260401 and "PCG64" in audit["bit_generator"]
    assert audit["space"]["n_possible"] == 924
    space = pd.read_parquet(alloc / "space.parquet")
    assert len(space) == audit["space"]["n_kept"] and space["chosen"].sum() == 1
    chosen = space[space["chosen"]].iloc[0]
    alloc_csv = pd.read_csv(alloc / "allocation.csv")
    assert all(chosen[c] == a for c, a in zip(alloc_csv["cluster"], alloc_csv["arm"], strict=True))


def test_verify_ok_and_json(alloc: Path, capsys) -> None:
    assert main(["verify", str(alloc)]) == 0
    assert main(["verify", str(alloc), "--clusters", str(CLUSTERS), "--format", "json"]) == 0
    assert '"ok": true' in capsys.readouterr().out


def test_never_overwrite(alloc: Path, capsys) -> None:
    assert main(["randomise", str(CLUSTERS), *ARGS, "--out", str(alloc)]) == 1
    assert "randomise.output.exists" in capsys.readouterr().err


def test_tampered_allocation(alloc: Path, capsys) -> None:
    f = alloc / "allocation.csv"
    text = f.read_text()
    f.write_text(
        text.replace("intervention", "TMP")
        .replace("control", "intervention")
        .replace("TMP", "control")
    )
    assert main(["verify", str(alloc)]) == 1
    assert "allocation.csv" in capsys.readouterr().err


def test_tampered_audit_field(alloc: Path, capsys) -> None:
    f = alloc / "audit.json"
    audit = json.loads(f.read_text())
    audit["seed"] = 1
    f.write_text(json.dumps(audit))
    assert main(["verify", str(alloc)]) == 1
    assert "seed" in capsys.readouterr().err


def test_changed_input(alloc: Path, tmp_path: Path, capsys) -> None:
    other = tmp_path / "clusters.csv"
    shutil.copy(CLUSTERS, other)
    other.write_text(other.read_text().replace("31.4", "35.4"))
    assert main(["verify", str(alloc), "--clusters", str(other)]) == 1
    assert "input clusters file" in capsys.readouterr().err


def test_row_order_same_allocation(alloc: Path, tmp_path: Path) -> None:
    shuffled = tmp_path / "shuffled.csv"
    pd.read_csv(CLUSTERS).iloc[::-1].to_csv(shuffled, index=False)
    out = tmp_path / "again"
    assert main(["randomise", str(shuffled), *ARGS, "--out", str(out)]) == 0
    assert (out / "allocation.csv").read_bytes() == (alloc / "allocation.csv").read_bytes()


def test_usage_and_input_errors(tmp_path: Path, capsys) -> None:
    assert main(["randomise", str(CLUSTERS), "--seed", "1", "--out", str(tmp_path / "x")]) == 2
    assert (
        main(
            [
                "randomise",
                str(CLUSTERS),
                "--method",
                "simple",
                "--ratio",
                "1:x",
                "--seed",
                "1",
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("la_id,imd_score\nA,1\nA,2\n")
    assert (
        main(
            [
                "randomise",
                str(bad),
                "--method",
                "simple",
                "--seed",
                "1",
                "--out",
                str(tmp_path / "z"),
            ]
        )
        == 1
    )
    assert "duplicate_id" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "nowhere")]) == 1


def test_simple_stratified_and_randtest(tmp_path: Path, capsys) -> None:
    out = tmp_path / "s"
    assert (
        main(
            [
                "randomise",
                str(CLUSTERS),
                "--method",
                "stratified",
                "--strata",
                "region",
                "--seed",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert main(["verify", str(out)]) == 0
    alloc = pd.read_csv(out / "allocation.csv")
    rows = [
        {"la_id": c, "y": float(i % 5) + (a == "intervention")}
        for i, (c, a) in enumerate(zip(alloc["cluster"], alloc["arm"], strict=True))
        for _ in range(3)
    ]
    data = tmp_path / "y.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    capsys.readouterr()
    assert main(["randtest", str(data), str(out), "--outcome", "y", "--format", "json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_allocations"] == 216 and 0 < res["p_value"] <= 1


def test_protocol_route(tmp_path: Path) -> None:
    from trialkit.protocol import load_protocol

    protocol = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"
    plan = load_protocol(protocol).randomisation
    assert plan is not None
    out = tmp_path / "p"
    assert (
        main(
            [
                "randomise",
                "--protocol",
                str(protocol),
                str(CLUSTERS),
                "--seed",
                "20260401",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    audit = json.loads((out / "audit.json").read_text())
    assert audit["settings"]["covariates"] == list(plan.covariates)
    assert audit["protocol"]["sha256"]
    assert main(["verify", str(out)]) == 0


def test_limits_flag_round_trips_through_verify(tmp_path):
    from pathlib import Path as _Path

    from trialkit.cli import main as _main

    clusters = (
        _Path(__file__).resolve().parents[2] / "protocols" / "supporting-families-clusters.csv"
    )
    out = tmp_path / "alloc"
    args = ["randomise", str(clusters), "--id-column", "la_id", "--method", "constrained"]
    args += ["--covariates", "region,imd_score", "--limits", "imd_score=0.5", "--seed", "3"]
    assert _main([*args, "--out", str(out)]) == 0
    import json as _json

    audit = _json.loads((out / "audit.json").read_text())
    assert audit["settings"]["limits"] == {"imd_score": 0.5}
    assert _main(["verify", str(out)]) == 0
    assert (
        _main([*args[:-2], "--limits", "imd_score", "--seed", "3", "--out", str(tmp_path / "x")])
        == 2
    )


@pytest.mark.parametrize(
    ("flag", "expected"), [(["--cutoff", "0.2"], (0.2, None)), (["--keep", "7"], (None, 7))]
)
def test_cutoff_or_keep_flag_replaces_protocol_rule(
    tmp_path: Path, flag: list[str], expected: tuple[float | None, int | None]
) -> None:
    from trialkit.cli import build_parser
    from trialkit.cli.cmd_randomise import settings_from_args

    text = (ROOT / "protocols" / "supporting-families-systemic-pilot.toml").read_text("utf-8")
    assert "\ncutoff = 0.1\n" in text
    protocol = tmp_path / "keep.toml"
    protocol.write_text(text.replace("\ncutoff = 0.1\n", "\nkeep = 20\n"), "utf-8")
    args = build_parser().parse_args(
        ["randomise", "--protocol", str(protocol), str(CLUSTERS), *flag, "--seed", "1"]
        + ["--out", str(tmp_path / "o")]
    )
    settings = settings_from_args(args)
    assert (settings.cutoff, settings.keep) == expected


# ----------------------------------------------------------------------------- issue 15


def _council():
    """The 16-LA council file builder of tests/randomise/council.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "council", ROOT / "tests" / "randomise" / "council.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _council_protocol(tmp_path: Path, n_clusters: int = 16) -> Path:
    """The pilot protocol for 16 LAs in 4 regions, constrained within region (cutoff 0.2)."""
    text = (ROOT / "protocols" / "supporting-families-systemic-pilot.toml").read_text("utf-8")
    text = (
        text.replace("n_clusters = 12", f"n_clusters = {n_clusters}")
        .replace(
            'levels = ["Midlands", "North", "South"]',
            'levels = ["London", "Midlands", "North", "South"]',
        )
        .replace("families_referred_2023", "caseload")
        .replace(
            'covariates = ["region", "imd_score", "caseload"]\nmetric = "l2"\ncutoff = 0.1',
            'strata = ["region"]\ncovariates = ["imd_score", "caseload"]\nmetric = "l2"\n'
            "cutoff = 0.2",
            1,
        )
    )
    p = tmp_path / "council.toml"
    p.write_text(text, "utf-8")
    return p


def test_council_file_with_protocol_is_read_recorded_and_verified(tmp_path: Path, capsys) -> None:
    council = _council()
    table = council.with_separators()
    table[1]["region"] = "north"
    table[2]["region"] = "NORTH "
    clusters = council.write(tmp_path, "las.csv", table)
    out = tmp_path / "alloc"
    args = ["randomise", "--protocol", str(_council_protocol(tmp_path)), str(clusters)]
    assert main([*args, "--seed", "7", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "space: 260 kept of 1296 enumerated" in text
    assert "columns read as: region category (declared)" in text
    assert "read: caseload row 1: '1,412' read as 1412 (thousands separator)" in text
    assert "read: region row 3: 'NORTH ' read as level 'North'" in text
    audit = json.loads((out / "audit.json").read_text())
    reading = audit["input"]["reading"]
    assert reading["types"]["caseload"] == "number" and len(reading["notes"]) == 7
    assert audit["settings"]["n_clusters"] == 16
    assert audit["settings"]["declared_types"]["caseload"] == "count"
    sizes = pd.read_csv(out / "allocation.csv").groupby(["stratum", "arm"]).size()
    assert (sizes == 2).all()
    assert main(["verify", str(out)]) == 0


def test_council_file_errors_exit_1_with_rows(tmp_path: Path, capsys) -> None:
    council = _council()
    protocol = _council_protocol(tmp_path)
    bad = council.write(
        tmp_path, "bad.csv", council.with_cell(7, "caseload", "abc", council.with_separators())
    )
    assert (
        main(
            [
                "randomise",
                "--protocol",
                str(protocol),
                str(bad),
                "--seed",
                "1",
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "clusters row 7 column caseload" in err and "randomise.input.not_a_number" in err
    short = council.write(tmp_path, "short.csv", council.rows()[:15])
    assert (
        main(
            [
                "randomise",
                "--protocol",
                str(protocol),
                str(short),
                "--seed",
                "1",
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "randomise.input.n_clusters" in err and "16" in err and "got 15" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_clean_file_audit_records_the_inferred_types(alloc: Path, capsys) -> None:
    audit = json.loads((alloc / "audit.json").read_text())
    reading = audit["input"]["reading"]
    assert reading["types"] == {
        "region": "category",
        "imd_score": "number",
        "families_referred_2023": "number",
    }
    assert reading["declared"] == [] and reading["notes"] == []
    assert not {"declared_types", "levels", "n_clusters"} & set(audit["settings"])
    assert audit["coding"]["reference"] == {"region": "Midlands"}


def test_warning_printed_once(tmp_path: Path, capsys) -> None:
    out = tmp_path / "w"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a raw Python warning would fail here
        assert main(["randomise", str(CLUSTERS), *ARGS, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("pair(s) of clusters are together") == 1
    assert "columns read as: region category (inferred)" in captured.out
    assert "Warning" not in captured.err and captured.err == ""
