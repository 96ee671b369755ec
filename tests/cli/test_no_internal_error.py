"""Issue #16 item 6: inputs that ended in "internal error" (exit 3) now get a clear message.

Each test is built from the input that broke: a file given to ``init``, ``validate | head``,
a truncated ``analysis.json``, a corrupt Parquet table, an outcome written "1,288", ``score
--out x.txt``, two ``randomise`` runs into one directory, and one exit status (1) for an
output that already exists, whatever the verb.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialkit._io import staged_directory
from trialkit.cli import main
from trialkit.errors import RandomisationError
from trialkit.fidelity._example import example_tables

ROOT = Path(__file__).resolve().parents[2]
PILOT = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"
CLUSTERS = ROOT / "protocols" / "supporting-families-clusters.csv"
SRC = str(Path(__import__("trialkit").__file__).resolve().parents[1])


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _no_crash(err: str) -> None:
    assert "internal error" not in err and "Traceback" not in err, err


# ----------------------------------------------------------------------------- broken pipe


def test_validate_into_a_closed_pipe_exits_quietly(demo) -> None:
    """``trialkit validate ... | head``: the reader goes away before trialkit writes."""
    cmd = [sys.executable, "-m", "trialkit", "validate", "--protocol", str(PILOT)]
    cmd += ["--data", str(demo.data), "--allocation", str(demo.allocation)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), text=True
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `head` that has read enough
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=300) == 0, err
    _no_crash(err)
    assert "BrokenPipeError" not in err and "Broken pipe" not in err


def test_head_of_a_long_output(tmp_path: Path) -> None:
    """The schema is longer than a pipe buffer; ``| head -c 10`` reads only its start."""
    cmd = f"{sys.executable} -m trialkit schema | head -c 10"
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, env=_env()
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("{") and proc.stderr == ""


# ----------------------------------------------------------------------------- report


@pytest.mark.parametrize("keep_manifest", [False, True])
def test_report_on_truncated_analysis_json(demo, tmp_path: Path, capsys, keep_manifest) -> None:
    analysis = tmp_path / "analysis"
    shutil.copytree(demo.analysis, analysis)
    if not keep_manifest:
        (analysis / "manifest.json").unlink()
    doc = analysis / "analysis.json"
    doc.write_bytes(doc.read_bytes()[:300])  # a copy cut short
    assert main(["report", "--analysis", str(analysis), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    _no_crash(err)
    assert "analysis.json" in err
    # with its manifest the cut file is also a changed file; either way it is named
    codes = ("report.unreadable", "analysis.manifest_mismatch")
    assert any(code in err for code in (codes if keep_manifest else codes[:1]))
    assert not (tmp_path / "r").exists()


def test_report_on_corrupt_parquet(demo, tmp_path: Path, capsys) -> None:
    analysis = tmp_path / "analysis"
    shutil.copytree(demo.analysis, analysis)
    (analysis / "manifest.json").unlink()
    table = analysis / "results.parquet"
    table.write_bytes(b"PAR1" + b"\x00\xff" * 50)
    assert main(["report", "--analysis", str(analysis), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    _no_crash(err)
    # analysis.json records the table's SHA-256, so the corrupt copy is refused as changed
    assert "results.parquet" in err
    assert "report.unreadable" in err or "analysis.output_mismatch" in err


# ----------------------------------------------------------------------------- text outcomes


def test_randtest_with_an_outcome_written_with_thousands_separators(
    demo, tmp_path: Path, capsys
) -> None:
    alloc = pd.read_csv(demo.allocation / "allocation.csv", dtype=str)
    rows = [
        {"la_id": c, "referrals": f"{1000 + 37 * i + j:,}"}
        for i, c in enumerate(alloc["cluster"])
        for j in range(3)
    ]
    data = tmp_path / "outcomes.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    code = main(
        ["randtest", str(data), str(demo.allocation), "--outcome", "referrals"]
        + ["--cluster-column", "la_id"]
    )
    err = capsys.readouterr().err
    _no_crash(err)
    assert code == 1 and "randomise.randtest.outcome_type" in err and "1,0" in err


def test_cace_with_a_text_outcome(tmp_path: Path, capsys) -> None:
    t = example_tables(levels=(1.0, 1.0, 0.8, 0.6, 0.4, 1.0), contaminate=False)
    data = tmp_path / "data"
    data.mkdir()
    for name in ("clusters", "keyworkers", "families", "delivery"):
        t[name].to_csv(data / f"{name}.csv", index=False)
    alloc = tmp_path / "allocation"
    alloc.mkdir()
    t["allocation"].to_csv(alloc / "allocation.csv", index=False)
    fam = t["families"].merge(t["allocation"], left_on="la_id", right_on="cluster")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "la_id": fam["la_id"],
            "arm": fam["arm"],
            "keyworker_id": fam["keyworker_id"],
            "y": [f"{v:,.0f}" for v in rng.normal(1500, 300, len(fam))],
        }
    )
    frame.loc[0, "y"] = "n/k"
    frame.to_csv(tmp_path / "frame.csv", index=False)
    args = ["cace", "--protocol", str(PILOT), "--data", str(data), "--allocation", str(alloc)]
    args += ["--outcome", "family_functioning", "--analysis-frame", str(tmp_path / "frame.csv")]
    code = main(args)
    err = capsys.readouterr().err
    _no_crash(err)
    assert code == 1 and "cace.outcome_type" in err


# ----------------------------------------------------------------------------- score --out


def test_score_out_with_a_text_suffix_is_a_usage_error(demo, tmp_path: Path, capsys) -> None:
    out = tmp_path / "x.txt"
    args = ["score", "--input", str(demo.data / "measurements.csv"), "--instrument", "SCORE-15"]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    _no_crash(err)
    assert "cli.out_format" in err and not out.exists()


# ----------------------------------------------------------------------------- fit


def test_fit_input_errors_exit_1(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(4)
    rows = pd.DataFrame(
        {
            "la": np.repeat([f"LA{i:02d}" for i in range(8)], 5),
            "arm": np.repeat(["control", "intervention"] * 4, 5),
            "y": rng.normal(size=40),
            "retained": rng.integers(0, 3, size=40),  # 0, 1 and 2: not binary
        }
    )
    data = tmp_path / "o.csv"
    rows.to_csv(data, index=False)
    base = ["fit", str(data), "--treatment", "arm", "--treatment-level", "intervention"]
    base += ["--clusters", "la"]
    assert main([*base, "--outcome", "y", "--alpha", "1.5"]) == 1
    assert "fit.alpha" in capsys.readouterr().err
    assert main([*base, "--outcome", "retained", "--family", "binomial"]) == 1
    _no_crash(capsys.readouterr().err)


# ----------------------------------------------------------------------------- output exists


def test_two_randomise_runs_into_one_directory(tmp_path: Path) -> None:
    out = tmp_path / "alloc"
    cmd = [sys.executable, "-m", "trialkit", "randomise", "--protocol", str(PILOT)]
    procs = [
        subprocess.Popen(
            [*cmd, str(CLUSTERS), "--seed", str(seed), "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for seed in (1, 2)
    ]
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    assert sorted(code for code, _ in results) == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    _no_crash(loser)
    assert "output.exists" in loser
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alloc"]  # no temporary left


def test_staged_directory_refuses_when_another_writer_won(tmp_path: Path) -> None:
    out = tmp_path / "alloc"
    with pytest.raises(RandomisationError) as e:
        with staged_directory(out, error=RandomisationError, code="randomise.output.exists") as t:
            (t / "allocation.csv").write_text("ours\n", encoding="utf-8")
            out.mkdir()  # the other run finished first
            (out / "allocation.csv").write_text("theirs\n", encoding="utf-8")
    assert e.value.codes == ("randomise.output.exists",)
    assert (out / "allocation.csv").read_text(encoding="utf-8") == "theirs\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alloc"]


def _existing_out_cases(demo, tmp_path: Path) -> dict[str, tuple[list[str], Path]]:
    meas = str(demo.data / "measurements.csv")
    stage = ["--protocol", str(PILOT), "--data", str(demo.data)]
    stage += ["--allocation", str(demo.allocation)]
    return {
        "schema": (["schema", "--out"], tmp_path / "s.json"),
        "render": (["render", "tidier", str(PILOT), "--format", "md", "--out"], tmp_path / "t.md"),
        "score": (
            ["score", "--input", meas, "--instrument", "SCORE-15", "--out"],
            tmp_path / "s.csv",
        ),
        "init": (["init"], tmp_path / "trial"),
        "randomise": (
            ["randomise", "--protocol", str(PILOT), str(CLUSTERS), "--seed", "1", "--out"],
            tmp_path / "alloc",
        ),
        "simulate": (
            ["simulate", "--protocol", str(PILOT), "--clusters", str(CLUSTERS), "--seed", "1"]
            + ["--keyworkers", "3", "--families-per-keyworker", "1", "--out"],
            tmp_path / "sim",
        ),
        "report": (["report", "--analysis", str(demo.analysis), "--out"], tmp_path / "rep"),
        "analyse": (["analyse", *stage, "--out"], tmp_path / "an"),
        "fidelity": (["fidelity", *stage, "--out"], tmp_path / "fid"),
        "cace": (["cace", *stage, "--outcome", "family_functioning", "--out"], tmp_path / "cace"),
        "power": (
            ["power", "simulate", "--levels", "2", "--clusters", "6", "--units-per-cluster"]
            + ["5", "--icc-cluster", "0.05", "--effect", "0.3", "--reps", "2", "--out"],
            tmp_path / "pow",
        ),
        "validate": (
            ["validate", "--protocol", str(PILOT), "--data", str(demo.data), "--allocation"]
            + [str(demo.allocation), "--out"],
            tmp_path / "val",
        ),
    }


@pytest.mark.parametrize(
    "verb",
    ["schema", "render", "score", "init", "randomise", "simulate", "report", "validate"]
    + ["analyse", "fidelity", "cace", "power"],
)
def test_output_exists_is_exit_1_for_every_verb(demo, tmp_path: Path, capsys, verb) -> None:
    args, out = _existing_out_cases(demo, tmp_path)[verb]
    if verb == "init":
        out.mkdir()
        (out / "protocol.toml").write_text("# mine\n", encoding="utf-8")
        target = out / "protocol.toml"
    elif out.suffix:
        out.write_text("mine\n", encoding="utf-8")
        target = out
    else:
        out.mkdir()
        (out / "notes.txt").write_text("mine\n", encoding="utf-8")
        target = out / "notes.txt"
    code = main([*args, str(out)])  # refused before any work
    err = capsys.readouterr().err
    _no_crash(err)
    assert code == 1, err
    assert "exist" in err
    assert target.read_text(encoding="utf-8").endswith("mine\n")


@pytest.mark.parametrize("content", [b"", b"garbage", b'{"report": 5}', b"[]"])
def test_cace_with_a_malformed_fidelity_summary(tmp_path: Path, capsys, content: bytes) -> None:
    """Found by the slow fuzz run: cace read fidelity_summary.json itself (exit 3)."""
    fidelity = tmp_path / "fidelity"
    fidelity.mkdir()
    (fidelity / "fidelity_summary.json").write_bytes(content)
    frame = tmp_path / "frame.csv"
    frame.write_text("la_id,y\nLA01,1\n", encoding="utf-8")
    argv = [
        "cace",
        "--protocol",
        str(PILOT),
        "--data",
        str(tmp_path),
        "--allocation",
        str(tmp_path),
        "--fidelity",
        str(fidelity),
        "--analysis-frame",
        str(frame),
        "--outcome",
        "family_functioning",
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    _no_crash(err)
    assert "fidelity_summary.json" in err
