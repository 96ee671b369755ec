"""Whole-pipeline helpers used by ``trialkit analyse`` and ``trialkit demo``.

:func:`analyse_directory` validates a data directory and runs the analysis plan;
:func:`run_demo` runs every stage on the bundled pilot protocol: randomise the LAs
with the protocol's method (and verify the audit record), simulate a realistic
trial given that allocation, validate and save the data, assess fidelity, analyse
and write the report.  Every stage directory is written and read back through the
stage store (:mod:`trialkit.store`), so each carries its ``manifest.json``; the
stages between receive objects (the allocation record, ``TrialData``,
``FidelityReport``, ``TrialAnalysis``), not paths.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialkit import store
from trialkit._io import ensure_new_directory
from trialkit.analyse.plan import analyse_trial
from trialkit.analyse.trial_analysis import TrialAnalysis, write_analysis
from trialkit.errors import DataError, ReportError, VerificationError

__all__ = [
    "DEMO_SEED",
    "DemoResult",
    "analyse_directory",
    "bundled_example",
    "run_demo",
]

DEMO_SEED = 20240901


def bundled_example() -> tuple[Path, Path]:
    """Paths of the bundled pilot protocol and its illustrative clusters file.

    Looked up next to the installed package (source checkout) and in the current
    directory.
    """
    names = ("supporting-families-systemic-pilot.toml", "supporting-families-clusters.csv")
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "protocols", Path.cwd() / "protocols"]
    for base in candidates:
        if all((base / n).is_file() for n in names):
            return base / names[0], base / names[1]
    raise ReportError.from_problem(
        path="protocols/",
        code="demo.example_missing",
        message="the bundled example protocol must be in protocols/; it was not found",
        hint="run the demo from a clone of the trialkit repository, or pass --protocol and "
        "--clusters",
    )


def analyse_directory(
    protocol_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    allocation_dir: str | os.PathLike[str] | None,
    *,
    seed: int = 0,
    seeds: Mapping[str, int] | None = None,
    allow_unverified: bool = False,
) -> TrialAnalysis:
    """Load the protocol, validate the data and run the analysis plan.

    The allocation is read through the stage store here, verified (chain of
    custody: manifest, audit record, kept space), and passed down as a record.

    Parameters
    ----------
    allow_unverified : bool
        Analyse an allocation that fails verification anyway; the failure is
        recorded in the provenance and stated prominently in the report.

    Raises
    ------
    DataError
        When the data have errors (every problem listed).
    VerificationError
        When the allocation does not match its manifest or audit record (unless
        ``allow_unverified``).
    """
    from trialkit.data import validate
    from trialkit.protocol import load_protocol

    protocol = load_protocol(protocol_path)
    record: store.AllocationRecord | None = None
    allocation: store.AllocationRecord | str | os.PathLike[str] | None = allocation_dir
    if allocation_dir is not None and store.locate_allocation(allocation_dir).is_file():
        # read (and verify) once here; a missing file is left to validate to report
        record = store.read_allocation(
            allocation_dir,
            keep_default_na=False,
            with_space=True,
            allow_unverified=allow_unverified,
        )
        allocation = record
    data_check = store.check_stage_directory(data_dir, stage=("data", "validated"), error=DataError)
    td = validate(protocol, data_dir, allocation)
    td.raise_for_errors()
    inputs: dict[str, str | os.PathLike[str]] = {"protocol": protocol_path, "data": data_dir}
    if allocation_dir is not None:
        inputs["allocation"] = allocation_dir
    return analyse_trial(
        protocol,
        td,
        record,
        seed=seed,
        inputs=inputs,
        seeds=seeds,
        custody={"data": data_check},
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoResult:
    """Where the demo wrote each stage's output."""

    out: Path
    allocation: Path
    data: Path
    validated: Path
    fidelity: Path | None
    analysis: Path
    report: Path
    seed: int
    verified: bool
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "allocation": str(self.allocation),
            "data": str(self.data),
            "validated": str(self.validated),
            "fidelity": None if self.fidelity is None else str(self.fidelity),
            "analysis": str(self.analysis),
            "report": str(self.report / "report.html"),
            "seed": self.seed,
            "verified": self.verified,
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        return "\n".join(
            [
                f"demo (seed {self.seed}) written to {self.out}:",
                f"  allocation  {self.allocation} (verified: {'yes' if self.verified else 'NO'})",
                f"  data        {self.data}",
                f"  validated   {self.validated}",
                f"  fidelity    {self.fidelity if self.fidelity else 'not assessed'}",
                f"  analysis    {self.analysis}",
                f"  report      {self.report / 'report.html'}",
                *(f"  warning: {w}" for w in self.warnings),
            ]
        )


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    seed: int = DEMO_SEED,
    protocol_path: str | os.PathLike[str] | None = None,
    clusters_path: str | os.PathLike[str] | None = None,
    generated: str | None = None,
) -> DemoResult:
    """Run the whole pipeline on the bundled pilot protocol into a new directory.

    Parameters
    ----------
    out_dir : path
        Must not exist or be empty.
    seed : int
        Randomisation seed; the simulation uses ``seed + 1``.
    protocol_path, clusters_path : path, optional
        Default: the bundled example (:func:`bundled_example`).
    generated : str, optional
        Generation time printed in the report (default now).

    Raises
    ------
    ReportError
        ``demo.output_exists`` when ``out_dir`` is not empty.
    VerificationError
        When the allocation does not re-derive from its audit record.
    """
    from trialkit.data import save_validated, validate
    from trialkit.protocol import load_protocol
    from trialkit.randomise import (
        RandomisationSettings,
        randomise,
        read_clusters,
        verify,
        write_allocation,
    )
    from trialkit.report import build_report, write_report
    from trialkit.simulate.trial import simulate_trial

    out = ensure_new_directory(out_dir, error=ReportError, code="demo.output_exists")
    if protocol_path is None or clusters_path is None:
        bp, bc = bundled_example()
        protocol_path = protocol_path or bp
        clusters_path = clusters_path or bc
    protocol = load_protocol(protocol_path)
    if protocol.randomisation is None:
        raise ReportError.from_problem(
            path="randomisation",
            code="demo.no_randomisation",
            message="the protocol must have a [randomisation] table for the demo",
            hint="add [randomisation] with method, covariates and cutoff",
        )
    out.mkdir(parents=True, exist_ok=True)
    # 1. randomise and verify
    # the protocol's declared covariate types and levels, as `trialkit randomise --protocol`
    settings = RandomisationSettings.from_protocol(protocol)
    clusters = read_clusters(clusters_path, settings.id_column)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        allocation = randomise(clusters, settings, seed=seed)
    stage_warnings = [f"randomise: {w.message}" for w in caught]
    write_allocation(
        allocation, out / "allocation", clusters_path=clusters_path, protocol_path=protocol_path
    )
    check = verify(out / "allocation", clusters_path, protocol_path)
    if not check.ok:
        raise VerificationError(
            "the demo allocation does not re-derive from its audit record",
            [],
        )
    # 2. simulate a trial given the allocation (read back through the store, verified)
    record = store.read_allocation(out / "allocation", keep_default_na=False, with_space=True)
    alloc = record.frame
    cl = clusters.astype(object)
    cl = cl.where(cl.notna(), None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim = simulate_trial(protocol, cl, alloc, seed=seed + 1)
    stage_warnings += [f"simulate: {w.message}" for w in caught]
    sim.save(
        out / "data",
        fmt="csv",
        inputs={"protocol": protocol_path, "clusters": clusters_path},
    )
    # 3. validate and save
    td = validate(protocol, out / "data", record)
    td.raise_for_errors()
    save_validated(td, out / "validated")
    # 4. fidelity
    fidelity = None
    fid_dir: Path | None = None
    try:
        from trialkit.fidelity import assess_fidelity, write_fidelity_outputs

        t = td.tables
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fidelity = assess_fidelity(
                protocol,
                t["delivery"],
                t["keyworkers"],
                t["families"],
                alloc,
                clusters=t.get("clusters"),
            )
            write_fidelity_outputs(
                fidelity,
                protocol,
                out / "fidelity",
                protocol_path=protocol_path,
                inputs={"data": out / "data", "allocation": out / "allocation"},
            )
        stage_warnings += [f"fidelity: {w.message}" for w in caught]
        fid_dir = out / "fidelity"
    except ImportError:
        fidelity = None
    # 5. analyse
    analysis = analyse_trial(
        protocol,
        td,
        record,
        custody={
            "data": store.check_stage_directory(
                out / "data", stage=("data", "validated"), error=DataError
            )
        },
        fidelity=fidelity,
        seed=seed,
        inputs={
            "protocol": protocol_path,
            "data": out / "data",
            "allocation": record.path,
        },
        seeds={"randomisation": seed, "simulation": seed + 1},
    )
    write_analysis(analysis, out / "analysis")
    # 6. report
    from trialkit.analyse import load_analysis

    # the report reads the analysis back through the store, verified (the chain's last link)
    report = build_report(load_analysis(out / "analysis"), generated=generated)
    write_report(report, out / "report", inputs={"analysis": out / "analysis"})
    return DemoResult(
        out=out,
        allocation=out / "allocation",
        data=out / "data",
        validated=out / "validated",
        fidelity=fid_dir,
        analysis=out / "analysis",
        report=out / "report",
        seed=seed,
        verified=check.ok,
        warnings=tuple(stage_warnings),
    )
