"""The stage store: round trips per stage, the manifest, tampering and older outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from trialkit import store
from trialkit._io import sha256_file
from trialkit._version import __version__
from trialkit.errors import DataError, FidelityError, ReportError, VerificationError

ROOT = Path(__file__).resolve().parents[1]
CLUSTERS = ROOT / "protocols" / "supporting-families-clusters.csv"
PROTOCOL = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"


def _alloc() -> pd.DataFrame:
    return pd.DataFrame({"cluster": ["01", "02", "03", "04"], "arm": ["a", "b", "b", "a"]})


def _audit(outputs: dict) -> dict:
    record = {"settings": {"id_column": "code"}, "outputs": outputs, "allocation": {}}
    return {**record, "record_sha256": store.audit_record_sha256(record)}


def _write_allocation(out: Path) -> dict:
    return store.write_allocation_files(
        out,
        allocation=_alloc(),
        space=None,
        balance=pd.DataFrame({"covariate": ["x"], "smd": [0.1]}),
        audit=_audit,
        inputs=store.hash_inputs({"clusters": CLUSTERS}),
        seed=7,
    )


def _manifest(directory: Path) -> dict:
    return json.loads((directory / store.MANIFEST).read_text(encoding="utf-8"))


def _tamper(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\n")


# ---------------------------------------------------------------------- declarations
def test_every_stage_is_declared_with_a_manifest():
    assert list(store.STAGES) == [
        "allocation",
        "data",
        "validated",
        "fidelity",
        "analysis",
        "report",
    ]
    for spec in store.STAGES.values():
        assert spec.schema_version >= 1
        assert store.MANIFEST in spec.files
    assert store.STAGES["allocation"].tables["allocation.csv"] == ("cluster", "arm")


# ---------------------------------------------------------------------- allocation
def test_allocation_round_trip_and_manifest(tmp_path):
    out = tmp_path / "alloc"
    record = _write_allocation(out)
    assert set(record["outputs"]) == {"allocation.csv", "balance.csv"}
    man = _manifest(out)
    assert man["manifest_format"] == store.MANIFEST_FORMAT
    assert man["stage"] == "allocation"
    assert man["schema_version"] == store.STAGES["allocation"].schema_version
    assert man["trialkit_version"] == __version__
    assert man["inputs"] == {"clusters": sha256_file(CLUSTERS)}
    assert man["seed"] == 7
    assert set(man["outputs"]) == {"allocation.csv", "balance.csv", "audit.json"}
    for name, digest in man["outputs"].items():
        assert sha256_file(out / name) == digest

    back = store.read_allocation(out)
    pd.testing.assert_frame_equal(back.frame, _alloc())  # ids stay text: "01"
    assert back.verified and back.id_column == "code"
    assert back.path == out / "allocation.csv"
    assert back.sha256 == man["outputs"]["allocation.csv"]
    assert back.arms() == {"01": "a", "02": "b", "03": "b", "04": "a"}


def test_allocation_output_is_never_overwritten(tmp_path):
    from trialkit.errors import RandomisationError

    out = tmp_path / "alloc"
    _write_allocation(out)
    with pytest.raises(RandomisationError) as e:
        _write_allocation(out)
    assert e.value.codes == ("randomise.output.exists",)


def test_tampered_allocation_is_refused_naming_the_file(tmp_path):
    out = tmp_path / "alloc"
    _write_allocation(out)
    _tamper(out / "allocation.csv")
    with pytest.raises(VerificationError) as e:
        store.read_allocation(out)
    assert e.value.codes == ("allocation.manifest_mismatch",)
    assert "allocation.csv" in str(e.value)
    assert e.value.problems[0].path == str(out / "allocation.csv")


def test_allocation_without_manifest_still_reads(tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    _alloc().to_csv(out / "allocation.csv", index=False)
    back = store.read_allocation(out)
    assert not back.verified and back.audit is None and back.id_column == "la_id"
    assert list(back.frame["cluster"]) == ["01", "02", "03", "04"]
    # a bare file is read too
    assert list(store.read_allocation(out / "allocation.csv").frame["arm"]) == ["a", "b", "b", "a"]


def test_missing_allocation_is_a_data_error(tmp_path):
    with pytest.raises(DataError) as e:
        store.read_allocation(tmp_path)
    assert e.value.codes == ("allocation.missing",)


def test_randomise_writes_through_the_store_and_verify_ignores_the_manifest(tmp_path):
    from trialkit.randomise import RandomisationSettings, randomise, read_clusters, verify
    from trialkit.randomise import write_allocation as write

    settings = RandomisationSettings.from_mapping({"method": "simple"})
    alloc = randomise(read_clusters(CLUSTERS), settings, seed=3)
    write(alloc, tmp_path / "a", clusters_path=CLUSTERS)
    assert _manifest(tmp_path / "a")["stage"] == "allocation"
    assert verify(tmp_path / "a", CLUSTERS).ok
    back = store.read_allocation(tmp_path / "a", with_space=True)
    assert list(back.frame["arm"]) == list(alloc.arms)


def test_randtest_takes_the_record_or_the_directory(tmp_path):
    from trialkit.randomise import RandomisationSettings, randomise, randtest, read_clusters
    from trialkit.randomise import write_allocation as write

    settings = RandomisationSettings.from_mapping(
        {"method": "constrained", "covariates": ["imd_score"], "cutoff": 0.2}
    )
    data = read_clusters(CLUSTERS)
    write(randomise(data, settings, seed=5), tmp_path / "a", clusters_path=CLUSTERS)
    record = store.read_allocation(tmp_path / "a", with_space=True)
    by_record = randtest(data, record, outcome="families_referred_2023")
    by_path = randtest(data, tmp_path / "a", outcome="families_referred_2023")
    assert by_record.to_dict() == by_path.to_dict()
    _tamper(tmp_path / "a" / "space.parquet")
    with pytest.raises(VerificationError) as e:
        randtest(data, tmp_path / "a", outcome="families_referred_2023")
    assert "space.parquet" in str(e.value)


# ---------------------------------------------------------------------- data
def test_trial_data_round_trip(tmp_path):
    out = tmp_path / "data"
    tables = {"clusters": pd.DataFrame({"la_id": ["01", "02"]})}
    store.write_trial_data(
        out,
        tables=tables,
        fmt="csv",
        allocation=_alloc(),
        truth={"effects": {}},
        inputs={},
        seed=11,
    )
    man = _manifest(out)
    assert man["stage"] == "data" and man["seed"] == 11
    assert man["details"] == {"row_counts": {"clusters": 2}}
    assert set(man["outputs"]) == {"clusters.csv", "allocation.csv", "truth.json"}
    assert store.verify_data_directory(out) == man
    [path] = store.table_files(out, "clusters")
    assert list(store.read_table(path, ("la_id",))["la_id"]) == ["01", "02"]
    assert list(store.read_allocation(out).frame["cluster"]) == ["01", "02", "03", "04"]
    _tamper(out / "clusters.csv")
    with pytest.raises(DataError) as e:
        store.verify_data_directory(out)
    assert e.value.codes == ("data.manifest_mismatch",)
    assert "clusters.csv" in str(e.value)


def test_table_files_order(tmp_path):
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "t.csv", index=False)
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "t.parquet")
    assert [p.suffix for p in store.table_files(tmp_path, "t")] == [".csv", ".parquet"]
    assert [p.suffix for p in store.table_files(tmp_path, "t", order=store.PARQUET_FIRST)] == [
        ".parquet",
        ".csv",
    ]
    assert store.table_files(tmp_path, "absent") == []


# ---------------------------------------------------------------------- validated
def _write_validated(out: Path) -> None:
    store.write_validated(
        out,
        tables={"clusters": pd.DataFrame({"la_id": ["01"]}), "scores": pd.DataFrame({"s": [1.5]})},
        exclusions=pd.DataFrame(columns=["entity", "entity_id", "reason", "stage"]),
        flow=pd.DataFrame(
            {"arm": ["a"], "level": ["la"], "stage": ["x"], "detail": [""], "n": [1]}
        ),
        problems=[],
        inputs={"clusters.csv": "abc"},
        n_warnings=2,
    )


def test_validated_round_trip(tmp_path):
    out = tmp_path / "valid"
    _write_validated(out)
    man = _manifest(out)
    assert man["stage"] == "validated" and man["inputs"] == {"clusters.csv": "abc"}
    assert man["details"] == {"row_counts": {"clusters": 1, "scores": 1}, "n_warnings": 2}
    back = store.read_validated(out)
    assert set(back) == {"clusters", "scores"}
    assert back["scores"]["s"].tolist() == [1.5]
    _tamper(out / "scores.parquet")
    with pytest.raises(DataError) as e:
        store.read_validated(out)
    assert "scores.parquet" in str(e.value)


def test_validated_without_manifest_still_reads(tmp_path):
    out = tmp_path / "valid"
    _write_validated(out)
    (out / store.MANIFEST).unlink()
    assert set(store.read_validated(out)) == {"clusters", "scores"}


def test_a_manifest_of_another_stage_is_refused(tmp_path):
    out = tmp_path / "alloc"
    _write_allocation(out)
    with pytest.raises(DataError) as e:
        store.read_validated(out)
    assert e.value.codes == ("validated.manifest_stage",)


# ---------------------------------------------------------------------- fidelity
def test_fidelity_round_trip(tmp_path):
    out = tmp_path / "fid"
    table = pd.DataFrame({"la_id": ["01"], "overall_index": [0.75]})
    store.write_fidelity(
        out,
        tables={"fidelity_overall": table},
        files={"fidelity_heatmap.svg": "<svg/>", "copy.toml": lambda p: p.write_text("x = 1\n")},
        summary={"ok": True},
        inputs={"data": "d" * 64},
    )
    man = _manifest(out)
    assert man["stage"] == "fidelity" and man["inputs"] == {"data": "d" * 64}
    assert {"fidelity_overall.parquet", "fidelity_overall.csv", "copy.toml"} <= set(man["outputs"])
    summary, tables = store.read_fidelity(out)
    assert summary == {"ok": True}
    pd.testing.assert_frame_equal(tables["fidelity_overall"], table)
    _tamper(out / "fidelity_summary.json")
    with pytest.raises(FidelityError) as e:
        store.read_fidelity(out)
    assert "fidelity_summary.json" in str(e.value)
    with pytest.raises(FidelityError) as e:
        store.write_fidelity(out, tables={}, files={}, summary={}, inputs={})
    assert e.value.codes == ("fidelity.output.exists",)


# ---------------------------------------------------------------------- analysis
def test_analysis_round_trip(tmp_path):
    out = tmp_path / "analysis"
    results = pd.DataFrame({"outcome_id": ["y"], "estimate": [0.123456789012345]})
    store.write_analysis(
        out, tables={"results": results}, document={"tables": {"results": []}}, seed=5
    )
    man = _manifest(out)
    assert man["stage"] == "analysis" and man["seed"] == 5
    doc, tables, check = store.read_analysis(out)
    assert check.verified and check.manifest_sha256 == sha256_file(out / store.MANIFEST)
    assert doc["outputs"] == {"results.parquet": {"sha256": man["outputs"]["results.parquet"]}}
    pd.testing.assert_frame_equal(tables["results"], results)
    _tamper(out / "results.parquet")
    with pytest.raises(ReportError) as e:
        store.read_analysis(out)
    assert e.value.codes == ("analysis.manifest_mismatch", "analysis.output_mismatch")
    assert "results.parquet" in str(e.value)


def test_analysis_without_manifest_still_reads(tmp_path):
    out = tmp_path / "analysis"
    store.write_analysis(out, tables={}, document={"tables": {}})
    (out / store.MANIFEST).unlink()
    doc, tables, check = store.read_analysis(out)
    assert tables == {} and doc["outputs"] == {}
    assert check.status == store.NOT_VERIFIABLE


def test_analysis_missing(tmp_path):
    with pytest.raises(ReportError) as e:
        store.read_analysis(tmp_path)
    assert e.value.codes == ("report.analysis_missing",)


# ---------------------------------------------------------------------- report
def test_report_writer(tmp_path):
    out = tmp_path / "report"
    store.write_report(
        out,
        files={"report.html": "<html/>", "tables/t1.csv": pd.DataFrame({"a": [1]})},
        record=lambda outputs: {"outputs": dict(sorted(outputs.items()))},
        inputs={"analysis": "e" * 64},
    )
    man = _manifest(out)
    assert man["stage"] == "report" and man["inputs"] == {"analysis": "e" * 64}
    assert set(man["outputs"]) == {"report.html", "tables/t1.csv", "report.json"}
    doc = json.loads((out / "report.json").read_text())
    assert set(doc["outputs"]) == {"report.html", "tables/t1.csv"}
    assert store.verify_outputs(out, stage="report", error=ReportError) == man
    _tamper(out / "tables" / "t1.csv")
    with pytest.raises(ReportError) as e:
        store.verify_outputs(out, stage="report", error=ReportError)
    assert "t1.csv" in str(e.value)


def test_manifest_is_the_same_on_every_run(tmp_path):
    _write_allocation(tmp_path / "a")
    _write_allocation(tmp_path / "b")
    assert (tmp_path / "a" / store.MANIFEST).read_bytes() == (
        tmp_path / "b" / store.MANIFEST
    ).read_bytes()


def test_store_imports_only_the_bottom_layer():
    import ast

    allowed = {"trialkit.errors", "trialkit._io", "trialkit._version"}
    for path in (ROOT / "src" / "trialkit" / "store").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("trialkit"):
                assert node.module in allowed or node.module.startswith("trialkit.store"), (
                    path.name,
                    node.module,
                )
