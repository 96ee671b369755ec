"""The chain of custody from allocation to report (issue #15 items 6, 7, 8 and 11).

Each test starts from files like the ones that broke: an allocation with two arms swapped
by hand, an edited or deleted ``results.parquet``, a protocol whose cutoff changed after
randomisation, a README and ``.DS_Store`` dropped into the allocation directory, and
runs killed mid-write.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from trialkit import store
from trialkit.cli import main
from trialkit.errors import FidelityError, VerificationError
from trialkit.pipeline import DemoResult

ROOT = Path(__file__).resolve().parents[2]
PILOT = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"
CLUSTERS = ROOT / "protocols" / "supporting-families-clusters.csv"


def _swap_two_arms(alloc: Path) -> None:
    """Swap the arms of the first intervention and the first control LA (by hand, as text)."""
    f = alloc / "allocation.csv"
    frame = pd.read_csv(f, dtype=str)
    i = frame.index[frame["arm"] == "intervention"][0]
    j = frame.index[frame["arm"] == "control"][0]
    frame.loc[i, "arm"], frame.loc[j, "arm"] = "control", "intervention"
    frame.to_csv(f, index=False)


@pytest.fixture
def swapped(demo: DemoResult, tmp_path: Path) -> Path:
    alloc = tmp_path / "allocation"
    shutil.copytree(demo.allocation, alloc)
    _swap_two_arms(alloc)
    return alloc


# ------------------------------------------------------------------ item 6: allocation
def test_swapped_arms_are_refused_by_every_reader(swapped: Path) -> None:
    with pytest.raises(VerificationError) as e:
        store.read_allocation(swapped)
    assert e.value.codes == ("allocation.manifest_mismatch",)
    assert "allocation.csv" in str(e.value)
    # without the manifest the audit record still catches it
    (swapped / store.MANIFEST).unlink()
    with pytest.raises(VerificationError) as e:
        store.read_allocation(swapped)
    assert set(e.value.codes) == {
        "allocation.audit_mismatch",
        "allocation.arm_differs",
        "allocation.outside_space",
    }
    assert all(Path(p.path).name == "allocation.csv" for p in e.value.problems)
    # explicitly allowed: read, and the record says so
    record = store.read_allocation(swapped, allow_unverified=True)
    assert not record.verified and record.check is not None
    assert record.check.status == store.UNVERIFIED


@pytest.mark.parametrize("verb", ["validate", "fidelity", "analyse", "cace", "randtest"])
def test_swapped_allocation_refused_by_each_verb(
    verb: str, demo: DemoResult, swapped: Path, tmp_path: Path, capsys
) -> None:
    common = ["--protocol", str(PILOT), "--data", str(demo.data), "--allocation", str(swapped)]
    argv = {
        "validate": ["validate", *common],
        "fidelity": ["fidelity", *common, "--out", str(tmp_path / "fid")],
        "analyse": ["analyse", *common, "--out", str(tmp_path / "an")],
        "cace": ["cace", *common, "--outcome", "family_functioning"],
        "randtest": [
            "randtest",
            str(demo.data / "clusters.csv"),
            str(swapped),
            "--outcome",
            "imd_score",
        ],
    }[verb]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "allocation.csv" in err and "allocation.manifest_mismatch" in err
    assert "--allow-unverified" in err
    assert not (tmp_path / "fid").exists() and not (tmp_path / "an").exists()


def test_randtest_refuses_an_allocation_outside_the_kept_space_even_when_allowed(
    demo: DemoResult, swapped: Path, capsys
) -> None:
    # the issue: p = 0 was reported, impossible since the smallest p is 2/n_kept
    argv = ["randtest", str(demo.data / "clusters.csv"), str(swapped), "--outcome", "imd_score"]
    assert main([*argv, "--allow-unverified"]) == 1
    err = capsys.readouterr().err
    assert "randomise.randtest.outside_space" in err and "NOT verified" in err
    assert main(["randtest", str(demo.data / "clusters.csv"), str(demo.allocation), "--outcome",
                 "imd_score", "--format", "json"]) == 0  # fmt: skip
    res = json.loads(capsys.readouterr().out)
    assert res["p_value"] >= 2 / res["n_allocations"]


@pytest.mark.slow
def test_analyse_allow_unverified_is_recorded_and_reported(
    demo: DemoResult, swapped: Path, tmp_path: Path, capsys
) -> None:
    an, rep = tmp_path / "an", tmp_path / "rep"
    common = ["--protocol", str(PILOT), "--data", str(demo.data), "--allocation", str(swapped)]
    assert main(["analyse", *common, "--out", str(an), "--allow-unverified"]) == 0
    assert "NOT verified" in capsys.readouterr().err
    doc = json.loads((an / "analysis.json").read_text())
    assert doc["provenance"]["custody"]["allocation"]["status"] == "UNVERIFIED"
    assert main(["report", "--analysis", str(an), "--out", str(rep)]) == 0
    html = (rep / "report.html").read_text()
    assert "CHAIN OF CUSTODY NOT VERIFIED" in html


def test_demo_report_shows_the_verified_chain(demo: DemoResult) -> None:
    html = (demo.report / "report.html").read_text()
    assert "Chain of custody" in html
    for stage in ("allocation", "data", "analysis"):
        assert f"{stage}: verified" in html
    assert "CHAIN OF CUSTODY NOT VERIFIED" not in html
    manifest = store.read_manifest(demo.allocation)
    assert manifest is not None
    from trialkit._io import sha256_file

    assert sha256_file(demo.allocation / store.MANIFEST) in html


# ------------------------------------------------------------------ item 7: analysis -> report
@pytest.fixture
def analysis_copy(demo: DemoResult, tmp_path: Path) -> Path:
    an = tmp_path / "analysis"
    shutil.copytree(demo.analysis, an)
    return an


def _edit_results(an: Path) -> None:
    res = pd.read_parquet(an / "results.parquet")
    res.loc[0, "estimate"] = res.loc[0, "estimate"] + 1.0
    res.to_parquet(an / "results.parquet", index=False)


def test_edited_results_parquet_is_refused(analysis_copy: Path, tmp_path: Path, capsys) -> None:
    _edit_results(analysis_copy)
    assert main(["report", "--analysis", str(analysis_copy), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "results.parquet" in err and "analysis.output_mismatch" in err
    # without the manifest analysis.json's recorded hashes still refuse it
    (analysis_copy / store.MANIFEST).unlink()
    assert main(["report", "--analysis", str(analysis_copy), "--out", str(tmp_path / "r")]) == 1
    assert "analysis.output_mismatch" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    # explicitly allowed: the report says so prominently
    argv = ["report", "--analysis", str(analysis_copy), "--out", str(tmp_path / "r")]
    assert main([*argv, "--allow-unverified"]) == 0
    html = (tmp_path / "r" / "report.html").read_text()
    assert "CHAIN OF CUSTODY NOT VERIFIED" in html
    assert "analysis: UNVERIFIED" in html


def test_deleted_results_parquet_is_an_error_not_a_fallback(
    analysis_copy: Path, tmp_path: Path, capsys
) -> None:
    (analysis_copy / "results.parquet").unlink()
    for extra in ([], ["--allow-unverified"]):
        out = tmp_path / f"r{len(extra)}"
        assert main(["report", "--analysis", str(analysis_copy), "--out", str(out), *extra]) == 1
        err = capsys.readouterr().err
        assert "results.parquet" in err and "report.table_missing" in err


# ------------------------------------------------------------------ item 8: verify
@pytest.fixture
def alloc_with_protocol(tmp_path: Path) -> tuple[Path, Path]:
    protocol = tmp_path / "protocol.toml"
    shutil.copy(PILOT, protocol)
    out = tmp_path / "alloc"
    argv = [
        "randomise",
        "--protocol",
        str(protocol),
        str(CLUSTERS),
        "--seed",
        "7",
        "--out",
        str(out),
    ]
    assert main(argv) == 0  # warnings are printed once, not raised (issue #15 item 12)
    return out, protocol


def test_verify_fails_when_the_protocol_cutoff_changed(alloc_with_protocol, capsys) -> None:
    out, protocol = alloc_with_protocol
    assert main(["verify", str(out)]) == 0
    text = protocol.read_text()
    assert "cutoff = 0.1" in text
    protocol.write_text(text.replace("cutoff = 0.1", "cutoff = 0.2"))
    capsys.readouterr()
    assert main(["verify", str(out)]) == 1
    err = capsys.readouterr().err
    assert "randomisation.cutoff" in err and "0.2" in err


def test_verify_notes_a_protocol_changed_outside_randomisation(alloc_with_protocol, capsys) -> None:
    out, protocol = alloc_with_protocol
    protocol.write_text(protocol.read_text() + "\n# statistical analysis plan finalised\n")
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0
    assert "changed since randomisation" in capsys.readouterr().out


def test_verify_ignores_and_lists_files_it_did_not_write(alloc_with_protocol, capsys) -> None:
    out, _ = alloc_with_protocol
    (out / "README").write_text("allocation for the pilot, do not edit\n")
    (out / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    capsys.readouterr()
    assert main(["verify", str(out), "--format", "json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["ok"] and res["ignored"] == [".DS_Store", "README"]
    assert main(["verify", str(out)]) == 0
    assert "ignored (not written by randomise): .DS_Store, README" in capsys.readouterr().out
    # and the readers still accept the directory
    assert store.read_allocation(out).verified


# ------------------------------------------------------------------ item 11: atomic, umask
def _modes(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root.parent).as_posix(): p.stat().st_mode & 0o777
        for p in [root, *root.rglob("*")]
    }


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_outputs_respect_the_umask(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        out = tmp_path / "alloc"
        argv = ["randomise", "--protocol", str(PILOT), str(CLUSTERS), "--seed", "7"]
        assert main([*argv, "--out", str(out)]) == 0
    finally:
        os.umask(old)
    modes = _modes(out)
    assert modes["alloc"] == 0o777 & ~mask
    assert {m for k, m in modes.items() if k != "alloc"} == {0o666 & ~mask}


def test_killed_run_staging_is_cleaned_and_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "fidelity"
    # a staging directory left by a kill -9 (no such process) and one of a live run
    stale = tmp_path / ".fidelity.staging-999999999-abc123"
    stale.mkdir()
    (stale / "families.csv").write_text("family_id\nF1\n")
    live = tmp_path / f".fidelity.staging-{os.getpid()}-live"
    live.mkdir()

    def broken(path: Path) -> None:
        path.write_bytes(b"half a heatmap")
        raise OSError("disk full")

    frame = pd.DataFrame({"la_id": ["LA01"], "index": [0.5]})
    with pytest.raises(OSError):
        store.write_fidelity(
            out,
            tables={"fidelity_overall": frame},
            files={"fidelity_heatmap.png": broken},
            summary={},
            inputs={},
        )
    assert not out.exists() and not stale.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]
    store.write_fidelity(out, tables={"fidelity_overall": frame}, files={}, summary={}, inputs={})
    assert store.read_fidelity(out)[1]["fidelity_overall"].equals(frame)
    with pytest.raises(FidelityError):
        store.write_fidelity(out, tables={}, files={}, summary={}, inputs={})


# ------------------------------------------------------------------ item 9: an LA without outcome data
@pytest.mark.slow
def test_analysis_keeps_the_randomisation_test_when_an_la_has_no_outcome_data(
    demo: DemoResult, tmp_path: Path
) -> None:
    from trialkit.pipeline import analyse_directory

    data = tmp_path / "data"
    shutil.copytree(demo.data, data)
    (data / store.MANIFEST).unlink()  # the data are edited on purpose
    m = pd.read_csv(data / "measurements.csv", dtype=str, keep_default_na=False)
    lost = m["entity_id"].str.startswith("LA05-") & (m["level"] == "family")
    m[~lost].to_csv(data / "measurements.csv", index=False)
    analysis = analyse_directory(PILOT, data, demo.allocation)
    res = analysis.table("results")
    rt = res[(res["analysis"] == "randomisation-test") & (res["level"] == "family")]
    assert len(rt) and rt["p_value"].notna().all()
    assert rt["note"].str.contains("clusters left out (no outcome data): LA05", regex=False).all()
    assert analysis.provenance["custody"]["data"]["status"] == "not verifiable"
    assert analysis.provenance["custody"]["allocation"]["status"] == "verified"
