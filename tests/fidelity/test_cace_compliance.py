"""``analyse_compliance``: the CACE of a trial's outcome from objects (no paths, no CLI)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trialkit.fidelity import (
    ComplianceAnalysis,
    analyse_compliance,
    assess_fidelity,
    cace_sweep,
    estimate_cace,
    write_compliance_outputs,
)
from trialkit.fidelity._example import example_tables


@pytest.fixture(scope="module")
def report(pilot):  # type: ignore[no-untyped-def]
    t = example_tables(levels=(1.0, 1.0, 0.8, 0.6, 0.4, 1.0))
    return assess_fidelity(
        pilot, t["delivery"], t["keyworkers"], t["families"], t["allocation"], missing_as_zero=True
    )


@pytest.fixture(scope="module")
def frame(report) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """One row per family: la_id, keyworker_id, baseline and y; no arm column."""
    rng = np.random.default_rng(7)
    rows = []
    comply = report.overall.set_index("la_id")["overall_index"] >= 0.8
    for la in report.overall["la_id"]:
        for i in range(10):
            b = rng.normal(40, 8)
            rows.append(
                {
                    "la_id": la,
                    "keyworker_id": f"{la}-K{i % 5 + 1}",
                    "baseline": b,
                    "y": 0.5 * b - 3.0 * comply[la] + rng.normal(),
                }
            )
    return pd.DataFrame(rows)


def test_matches_estimate_cace_with_protocol_defaults(pilot, report, frame) -> None:  # type: ignore[no-untyped-def]
    a = analyse_compliance(frame, report, pilot, outcome_id="family_functioning")
    # the arm comes from the fidelity report; baseline is adjusted for (the protocol says so)
    arms = report.overall.set_index("la_id")["arm"]
    direct = estimate_cace(
        frame.assign(arm=frame["la_id"].map(arms)),
        fidelity=report,
        protocol=pilot,
        outcome="y",
        outcome_id="family_functioning",
        covariates=["baseline"],
    )
    assert a.result == direct
    assert a.result.covariates == ("baseline",) and a.sweep is None
    assert a.outcome_id == "family_functioning" and a.result.outcome == "family_functioning"


def test_explicit_covariates_threshold_and_sweep(pilot, report, frame) -> None:  # type: ignore[no-untyped-def]
    a = analyse_compliance(
        frame,
        report,
        pilot,
        outcome_id="family_functioning",
        threshold=0.6,
        thresholds=[0.5, 0.8],
        covariates=[],
    )
    assert a.result.threshold == 0.6 and a.result.covariates == ()
    assert a.sweep is not None and a.sweep.thresholds == (0.5, 0.8)
    arms = report.overall.set_index("la_id")["arm"]
    direct = cace_sweep(
        frame.assign(arm=frame["la_id"].map(arms)),
        fidelity=report,
        protocol=pilot,
        thresholds=[0.5, 0.8],
        outcome="y",
        outcome_id="family_functioning",
        covariates=[],
    )
    assert a.sweep == direct


def test_sweep_flag_uses_protocol_thresholds(pilot, report, frame) -> None:  # type: ignore[no-untyped-def]
    a = analyse_compliance(frame, report, pilot, outcome_id="family_functioning", sweep=True)
    assert a.sweep is not None
    assert list(a.sweep.thresholds) == list(pilot.analysis.compliance.thresholds)


def test_outcome_column(pilot, report, frame) -> None:  # type: ignore[no-untyped-def]
    renamed = frame.rename(columns={"y": "score"})
    a = analyse_compliance(
        renamed, report, pilot, outcome_id="family_functioning", outcome_column="score"
    )
    b = analyse_compliance(frame, report, pilot, outcome_id="family_functioning")
    assert a.result.cace.estimate == b.result.cace.estimate


def test_result_object(pilot, report, frame) -> None:  # type: ignore[no-untyped-def]
    a = analyse_compliance(
        frame, report, pilot, outcome_id="family_functioning", thresholds=[0.5, 0.8]
    )
    d = a.to_dict()
    assert {"schema_version", "trialkit_version", "outcome_id", "result", "sweep"} <= set(d)
    assert ComplianceAnalysis.from_dict(json.loads(json.dumps(d))).to_dict() == d
    assert a.summary() == a.result.summary() + "\n" + a.sweep.summary()  # type: ignore[union-attr]
    assert list(a.to_frame()["term"]) == ["cace", "itt", "first_stage"]
    assert repr(a) == repr(analyse_compliance(
        frame, report, pilot, outcome_id="family_functioning", thresholds=[0.5, 0.8]
    ))  # fmt: skip
    with pytest.raises(AttributeError):
        a.outcome_id = "x"  # type: ignore[misc]


def test_write_outputs(pilot, report, frame, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = analyse_compliance(
        frame, report, pilot, outcome_id="family_functioning", thresholds=[0.5, 0.8]
    )
    files = write_compliance_outputs(a, tmp_path, inputs={})
    assert files == ["cace.csv", "cace_sweep.csv", "cace_sweep.png", "cace_sweep.svg", "cace.json"]
    saved = json.loads((tmp_path / "cace.json").read_text(encoding="utf-8"))
    assert saved["files"] == files and saved["result"] == a.result.to_dict()
    assert saved["figures"]["cace_sweep"]["alt_text"]
