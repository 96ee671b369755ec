"""One writer and one reader per stage output.

Writers assemble a stage directory in a temporary sibling (so it appears whole
or not at all), write each declared file and finish with ``manifest.json``
(:mod:`trialkit.store._manifest`).  Readers check the manifest, when there is
one, before reading.  The store works with frames, dicts and bytes; each stage
package converts them to and from its own result object.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from trialkit._io import (
    atomic_write_bytes,
    atomic_write_text,
    sha256_file,
    staged_directory,
    write_frame,
    write_json,
)
from trialkit.errors import (
    DataError,
    FidelityError,
    Problem,
    RandomisationError,
    ReportError,
    TrialkitError,
    VerificationError,
)
from trialkit.store._manifest import verify_outputs, write_manifest
from trialkit.store.custody import (
    NOT_VERIFIABLE,
    UNVERIFIED,
    VERIFIED,
    StageCheck,
    enforce,
    manifest_hash,
    verify_allocation,
)
from trialkit.store.stages import (
    ALLOCATION,
    ALLOCATION_COLUMNS,
    ANALYSIS,
    DATA,
    FIDELITY,
    REPORT,
    VALIDATED,
    StageSpec,
)
from trialkit.store.tables import read_table

__all__ = [
    "AUDIT",
    "AllocationRecord",
    "Content",
    "locate_allocation",
    "read_allocation",
    "read_analysis",
    "read_fidelity",
    "read_validated",
    "verify_data_directory",
    "write_allocation_files",
    "write_analysis",
    "write_fidelity",
    "write_report",
    "write_stage",
    "write_trial_data",
    "write_validated",
]

AUDIT = "audit.json"
ALLOCATION_FILE = "allocation.csv"

Content = pd.DataFrame | bytes | str | dict[str, Any] | list[Any] | Callable[[Path], Any]
"""What a stage file is written from: a table (CSV/Parquet by suffix), bytes, text,
a JSON document, or a function that writes the file at the path it is given."""


def _write_content(path: Path, content: Content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, pd.DataFrame):
        write_frame(path, content)
    elif isinstance(content, bytes):
        atomic_write_bytes(path, content)
    elif isinstance(content, str):
        atomic_write_text(path, content)
    elif isinstance(content, dict | list):
        write_json(path, content)
    else:
        content(path)


def write_stage(
    out: str | os.PathLike[str],
    spec: StageSpec,
    files: Mapping[str, Content],
    *,
    error: type[TrialkitError],
    code: str,
    inputs: Mapping[str, str] | None = None,
    seed: int | None = None,
    details: Mapping[str, Any] | None = None,
    finalise: Callable[[dict[str, str]], Mapping[str, Content]] | None = None,
) -> Path:
    """Write a whole stage directory: ``files`` in order, then ``finalise``'s, then the manifest.

    Parameters
    ----------
    out : path
        Must not exist or be empty (``error`` with ``code`` otherwise).
    spec : StageSpec
        The stage's declaration (name and schema version go into the manifest).
    files : mapping of file name -> content
        Written in order (see :data:`Content`).
    error, code
        Error class and code raised when ``out`` already holds files.
    inputs : mapping of role -> sha256, optional
        Input hashes for the manifest.
    seed : int, optional
        The stage's seed, recorded in the manifest.
    details : mapping, optional
        Stage-specific counts for the manifest.
    finalise : callable, optional
        Called with ``{file: sha256}`` of the files written so far; returns further
        files (e.g. an audit record that lists the output hashes).
    """
    with staged_directory(out, error=error, code=code) as tmp:
        hashes: dict[str, str] = {}
        for name, content in files.items():
            _write_content(tmp / name, content)
            hashes[name] = sha256_file(tmp / name)
        if finalise is not None:
            for name, content in finalise(hashes).items():
                _write_content(tmp / name, content)
        write_manifest(
            tmp,
            stage=spec.name,
            schema_version=spec.schema_version,
            inputs=inputs,
            seed=seed,
            details=details,
        )
    return Path(out)


# ============================================================================ allocation
@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationRecord:
    """An allocation as read from its stage directory (or a bare ``allocation.csv``).

    Attributes
    ----------
    frame : DataFrame
        ``cluster, arm`` (+ ``stratum``/``pair``) as text, in file order.
    path : Path
        The allocation file read.
    sha256 : str
        Its SHA-256.
    audit : dict or None
        The audit record (``audit.json``) when the directory has one.
    space : DataFrame or None
        The kept allocation space (``space.parquet``) when present.
    verified : bool
        True when every check of the chain of custody passed (manifest and audit
        record, see :func:`trialkit.store.custody.verify_allocation`).
    check : StageCheck or None
        What was checked and what failed (``UNVERIFIED`` only when the caller
        passed ``allow_unverified=True``).
    """

    frame: pd.DataFrame
    path: Path
    sha256: str
    audit: dict[str, Any] | None = None
    space: pd.DataFrame | None = None
    verified: bool = False
    check: StageCheck | None = None

    @property
    def id_column(self) -> str:
        """The clusters file's id column recorded in the audit (``la_id`` by default)."""
        try:
            return str((self.audit or {})["settings"]["id_column"])
        except (KeyError, TypeError):
            return "la_id"

    def arms(self) -> dict[str, str]:
        """Arm by cluster id."""
        return dict(zip(self.frame["cluster"], self.frame["arm"], strict=True))


def _unreadable(
    path: Path, kind: str, exc: BaseException, error: type[TrialkitError]
) -> TrialkitError:
    return error.from_problem(
        path=str(path),
        code=f"{error.__name__.removesuffix('Error').lower()}.unreadable",
        message=f"'{path.name}' must be a readable {kind} file; got an error: {exc}",
        hint="the file is truncated or corrupt: restore it or re-run the stage that wrote it",
    )


def _read_json(path: Path, error: type[TrialkitError]) -> Any:
    """Read a stage's JSON document; a truncated or corrupt file raises ``error`` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _unreadable(path, "JSON", exc, error) from None


def _read_parquet(path: Path, error: type[TrialkitError]) -> pd.DataFrame:
    """Read a stage's Parquet table; a truncated or corrupt file raises ``error`` naming it."""
    try:
        return pd.read_parquet(path)
    except (ValueError, OSError, pa.ArrowException) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise _unreadable(path, "Parquet", exc, error) from None


def locate_allocation(source: str | os.PathLike[str]) -> Path:
    """The allocation file of ``source``: the directory's ``allocation.csv`` or the file itself."""
    p = Path(source)
    return p if p.is_file() else p / ALLOCATION_FILE


def read_allocation(
    source: str | os.PathLike[str],
    *,
    keep_default_na: bool = True,
    with_space: bool = False,
    as_table: bool = False,
    allow_unverified: bool = False,
) -> AllocationRecord:
    """Read an allocation directory written by ``trialkit randomise`` (or ``simulate``), verified.

    Every read goes through the chain of custody: the files read must have the
    SHA-256 the directory's manifest records, and the allocation must agree with
    its audit record (:func:`trialkit.store.custody.verify_allocation`: hashes,
    arms, and the observed allocation in the kept space).

    Parameters
    ----------
    source : path
        The directory, or an allocation file itself (CSV; Parquet/Excel read as tables).
    keep_default_na : bool
        CSV cells such as ``NA`` or empty read as missing (True) or as text (False).
    with_space : bool
        Also read ``space.parquet`` when present.
    as_table : bool
        Read with the data-table reader :func:`~trialkit.store.tables.read_table`
        (CSV, Parquet or Excel by suffix, ids as text, pyarrow dtypes) instead of as
        a CSV of text cells.
    allow_unverified : bool
        Read an allocation that fails a check anyway; the failure is kept in the
        record's ``check`` (status ``UNVERIFIED``) for the report to state.

    Raises
    ------
    DataError
        ``allocation.missing`` when there is no allocation file; ``data.unreadable``
        when it cannot be parsed.
    VerificationError
        When a check fails (codes ``allocation.manifest_mismatch``,
        ``allocation.audit_edited``, ``allocation.audit_mismatch``,
        ``allocation.arm_differs``, ``allocation.outside_space``), naming the file,
        unless ``allow_unverified``.
    """
    path = locate_allocation(source)
    if not path.is_file():
        raise DataError.from_problem(
            path=str(path),
            code="allocation.missing",
            message=f"allocation file '{path}' must exist",
            hint="pass the directory written by 'trialkit randomise'",
        )
    root = path.parent
    names = tuple(n for n in (path.name, AUDIT, "space.parquet" if with_space else "") if n)
    manifest_problems: tuple[Problem, ...] = ()
    manifest: dict[str, Any] | None = None
    try:
        manifest = verify_outputs(
            root, stage=("allocation", "data"), error=VerificationError, files=names
        )
    except VerificationError as exc:
        manifest_problems = tuple(exc.problems)
        if not allow_unverified:
            enforce(
                StageCheck(
                    stage="allocation",
                    path=str(root),
                    status=UNVERIFIED,
                    problems=manifest_problems,
                ),
                allow_unverified=False,
                error=VerificationError,
            )
    if as_table:
        frame = read_table(path, ("la_id", "cluster"))
    else:
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=keep_default_na)
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            err = DataError.from_problem(
                path=path.name,
                code="data.unreadable",
                message=f"allocation must be a readable CSV; got {exc}",
                hint="re-create it with 'trialkit randomise'",
            )
            raise err from exc
    audit = None
    if (root / AUDIT).is_file():
        try:
            audit = json.loads((root / AUDIT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            audit = None
    audit = audit if isinstance(audit, dict) else None
    check = verify_allocation(
        root,
        frame=frame,
        allocation_file=path,
        audit=audit if (root / AUDIT).is_file() else None,
        manifest_problems=manifest_problems,
    )
    if check.status == NOT_VERIFIABLE and manifest is not None:
        # a data directory's allocation.csv: its manifest matched, no audit to check against
        check = StageCheck(
            stage=check.stage,
            path=check.path,
            status=VERIFIED if manifest.get("stage") == "allocation" else NOT_VERIFIABLE,
            manifest_sha256=check.manifest_sha256,
        )
    enforce(check, allow_unverified=allow_unverified, error=VerificationError)
    space = None
    if with_space and (root / "space.parquet").is_file():
        space = _read_parquet(root / "space.parquet", VerificationError)
    return AllocationRecord(
        frame=frame,
        path=path,
        sha256=sha256_file(path),
        audit=audit,
        space=space,
        verified=check.verified,
        check=check,
    )


def write_allocation_files(
    out: str | os.PathLike[str],
    *,
    allocation: pd.DataFrame,
    space: pd.DataFrame | None,
    balance: pd.DataFrame | None,
    audit: Callable[[dict[str, str]], dict[str, Any]],
    inputs: Mapping[str, str],
    seed: int | None,
) -> dict[str, Any]:
    """Write an allocation stage directory; return the audit record.

    ``audit`` builds ``audit.json`` from the hashes of ``allocation.csv``,
    ``space.parquet`` and ``balance.csv`` (the files present).

    Raises
    ------
    RandomisationError
        ``randomise.output.exists`` when ``out`` holds files.
    """
    missing = [c for c in ALLOCATION_COLUMNS if c not in allocation.columns]
    if missing:  # pragma: no cover - programming error
        raise ValueError(f"allocation frame lacks {missing}")
    files: dict[str, Content] = {ALLOCATION_FILE: allocation}
    if space is not None:
        files["space.parquet"] = space
    if balance is not None:
        files["balance.csv"] = balance
    record: dict[str, Any] = {}

    def finalise(hashes: dict[str, str]) -> dict[str, Content]:
        record.update(audit(hashes))
        return {AUDIT: record}

    write_stage(
        out,
        ALLOCATION,
        files,
        error=RandomisationError,
        code="randomise.output.exists",
        inputs=inputs,
        seed=seed,
        finalise=finalise,
    )
    return record


# ============================================================================ data
def write_trial_data(
    out: str | os.PathLike[str],
    *,
    tables: Mapping[str, pd.DataFrame],
    fmt: str,
    allocation: pd.DataFrame,
    truth: dict[str, Any],
    inputs: Mapping[str, str],
    seed: int,
) -> Path:
    """Write a synthetic trial: ``<table>.<fmt>``, ``allocation.csv``, ``truth.json``.

    Raises
    ------
    DataError
        ``simulate.output_exists`` when ``out`` holds files.
    """
    files: dict[str, Content] = {f"{n}.{fmt}": f for n, f in tables.items()}
    files[ALLOCATION_FILE] = allocation
    files["truth.json"] = truth
    return write_stage(
        out,
        DATA,
        files,
        error=DataError,
        code="simulate.output_exists",
        inputs=inputs,
        seed=seed,
        details={"row_counts": {k: len(v) for k, v in tables.items()}},
    )


def verify_data_directory(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Check a data (or validated) directory against its manifest, if it has one.

    Raises
    ------
    DataError
        ``data.manifest_mismatch`` naming each file that changed.
    """
    return verify_outputs(directory, stage=("data", "validated"), error=DataError)


# ============================================================================ validated
def write_validated(
    out: str | os.PathLike[str],
    *,
    tables: Mapping[str, pd.DataFrame],
    exclusions: pd.DataFrame,
    flow: pd.DataFrame,
    problems: list[dict[str, Any]],
    inputs: Mapping[str, str],
    n_warnings: int,
) -> Path:
    """Write a validated dataset: ``<table>.parquet``, ``exclusions.csv``, ``flow.csv``, ``problems.json``.

    Raises
    ------
    DataError
        ``data.output_exists`` when ``out`` holds files.
    """
    files: dict[str, Content] = {f"{n}.parquet": f for n, f in tables.items()}
    files["exclusions.csv"] = exclusions
    files["flow.csv"] = flow
    files["problems.json"] = problems
    return write_stage(
        out,
        VALIDATED,
        files,
        error=DataError,
        code="data.output_exists",
        inputs=inputs,
        details={"row_counts": {k: len(v) for k, v in tables.items()}, "n_warnings": n_warnings},
    )


def read_validated(directory: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Read every table of a validated directory (``<table>.parquet``) by name.

    Raises
    ------
    DataError
        ``data.not_a_directory``; ``data.manifest_mismatch`` when a file changed.
    """
    root = Path(directory)
    if not root.is_dir():
        raise DataError.from_problem(
            path=str(root),
            code="data.not_a_directory",
            message=f"validated directory must be an existing directory; got '{root}'",
            hint="pass the --out directory of 'trialkit validate'",
        )
    verify_outputs(root, stage="validated", error=DataError)
    return {p.stem: _read_parquet(p, DataError) for p in sorted(root.glob("*.parquet"))}


# ============================================================================ fidelity
def write_fidelity(
    out: str | os.PathLike[str],
    *,
    tables: Mapping[str, pd.DataFrame],
    files: Mapping[str, Content],
    summary: dict[str, Any],
    inputs: Mapping[str, str],
) -> Path:
    """Write a fidelity directory: each table as Parquet and CSV, ``files``, the summary.

    Raises
    ------
    FidelityError
        ``fidelity.output.exists`` when ``out`` holds files.
    """
    content: dict[str, Content] = {}
    for name, frame in tables.items():
        for suffix in (".parquet", ".csv"):
            content[f"{name}{suffix}"] = frame
    content.update(files)
    content["fidelity_summary.json"] = summary
    return write_stage(
        out, FIDELITY, content, error=FidelityError, code="fidelity.output.exists", inputs=inputs
    )


def read_fidelity(
    directory: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Read a fidelity directory: the summary document and its tables (Parquet).

    Raises
    ------
    FidelityError
        ``fidelity.summary_missing``; ``fidelity.manifest_mismatch`` when a file changed.
    """
    root = Path(directory)
    doc_path = root / "fidelity_summary.json"
    if not doc_path.is_file():
        raise FidelityError.from_problem(
            path=str(root),
            code="fidelity.summary_missing",
            message=f"fidelity directory must hold fidelity_summary.json; got '{root}'",
            hint="pass the --out directory of 'trialkit fidelity'",
        )
    verify_outputs(root, stage="fidelity", error=FidelityError)
    summary = _read_json(doc_path, FidelityError)
    tables = {}
    for name in FIDELITY.tables:
        p = root / name
        if p.is_file():
            tables[p.stem] = _read_parquet(p, FidelityError)
    return summary, tables


# ============================================================================ analysis
def write_analysis(
    out: str | os.PathLike[str],
    *,
    tables: Mapping[str, pd.DataFrame],
    document: dict[str, Any],
    inputs: Mapping[str, str] | None = None,
    seed: int | None = None,
) -> Path:
    """Write ``<table>.parquet`` for every table plus ``analysis.json`` (listing their hashes).

    Raises
    ------
    ReportError
        ``analyse.output_exists`` when ``out`` holds files.
    """

    def finalise(hashes: dict[str, str]) -> dict[str, Content]:
        doc = dict(document)
        doc["outputs"] = {k: {"sha256": v} for k, v in sorted(hashes.items())}
        return {"analysis.json": doc}

    return write_stage(
        out,
        ANALYSIS,
        {f"{n}.parquet": f for n, f in tables.items()},
        error=ReportError,
        code="analyse.output_exists",
        inputs=inputs,
        seed=seed,
        finalise=finalise,
    )


def read_analysis(
    directory: str | os.PathLike[str], *, allow_unverified: bool = False
) -> tuple[dict[str, Any], dict[str, pd.DataFrame], StageCheck]:
    """Read an analysis directory, verified: ``analysis.json``, its tables and the check.

    Every table comes from its Parquet file (full precision), which must exist and
    have the SHA-256 that both ``analysis.json`` and ``manifest.json`` record; there
    is no fallback to another copy of a table.

    Parameters
    ----------
    directory : path
        The directory written by ``trialkit analyse``.
    allow_unverified : bool
        Read files whose hashes differ anyway (the check's status is then
        ``UNVERIFIED``, for the report to state); a missing file is always an error.

    Raises
    ------
    ReportError
        ``report.analysis_missing`` without ``analysis.json``;
        ``report.table_missing`` when a table's Parquet file is missing;
        ``analysis.manifest_mismatch`` / ``analysis.output_mismatch`` when a file
        changed (unless ``allow_unverified``). ``report.unreadable`` when
        ``analysis.json`` or a table is truncated or corrupt (naming the file).
    """
    root = Path(directory)
    doc_path = root / "analysis.json"
    if not doc_path.is_file():
        raise ReportError.from_problem(
            path=str(root),
            code="report.analysis_missing",
            message=f"--analysis must be a directory written by `trialkit analyse`; "
            f"got '{root}' without analysis.json",
            hint="run `trialkit analyse --protocol P --data DIR --allocation DIR --out DIR` first",
        )
    problems: list[Problem] = []
    try:
        verify_outputs(root, stage="analysis", error=ReportError)
    except ReportError as exc:
        problems.extend(exc.problems)
    doc = _read_json(doc_path, ReportError)
    if not isinstance(doc, dict) or not isinstance(doc.get("tables", {}), dict):
        raise ReportError.from_problem(
            path=str(doc_path),
            code="report.unreadable",
            message="'analysis.json' must be a JSON object with a 'tables' mapping; "
            f"got {type(doc).__name__}",
            hint="re-run `trialkit analyse` to write the analysis directory again",
        )
    hint = "re-run `trialkit analyse`; never edit its outputs"
    recorded = {
        str(k): str(v.get("sha256"))
        for k, v in (doc.get("outputs") or {}).items()
        if isinstance(v, Mapping)
    }
    missing = [
        Problem(
            path=str(root / f"{name}.parquet"),
            code="report.table_missing",
            message=f"`{name}.parquet` must exist (analysis.json lists the table); it is missing",
            hint=hint,
        )
        for name in doc.get("tables", {})
        if not (root / f"{name}.parquet").is_file()
    ]
    missing += [
        Problem(
            path=str(root / name),
            code="report.table_missing",
            message=f"`{name}` must exist (analysis.json records its SHA-256); it is missing",
            hint=hint,
        )
        for name in recorded
        if not (root / name).is_file()
        and name.removesuffix(".parquet") not in doc.get("tables", {})
    ]
    if missing:
        raise ReportError(f"{root}: analysis outputs are missing", missing)
    for name, digest in sorted(recorded.items()):
        if sha256_file(root / name) != digest:
            problems.append(
                Problem(
                    path=str(root / name),
                    code="analysis.output_mismatch",
                    message=f"`{name}` must have the SHA-256 recorded in analysis.json; "
                    "the file changed after the analysis wrote it",
                    hint=hint,
                )
            )
    unique = tuple({(p.path, p.code): p for p in problems}.values())
    check = StageCheck(
        stage="analysis",
        path=str(root),
        status=UNVERIFIED if unique else (VERIFIED if recorded else NOT_VERIFIABLE),
        manifest_sha256=manifest_hash(root),
        problems=unique,
    )
    enforce(check, allow_unverified=allow_unverified, error=ReportError)
    tables = {
        name: _read_parquet(root / f"{name}.parquet", ReportError) for name in doc.get("tables", {})
    }
    return doc, tables, check


# ============================================================================ report
def write_report(
    out: str | os.PathLike[str],
    *,
    files: Mapping[str, Content],
    record: Callable[[dict[str, str]], dict[str, Any]],
    inputs: Mapping[str, str] | None = None,
) -> Path:
    """Write a report directory: ``files`` then ``report.json`` built by ``record``.

    ``record`` receives the hashes of every file written before it.

    Raises
    ------
    ReportError
        ``report.output_exists`` when ``out`` holds files.
    """
    return write_stage(
        out,
        REPORT,
        files,
        error=ReportError,
        code="report.output_exists",
        inputs=inputs,
        finalise=lambda hashes: {"report.json": record(hashes)},
    )
