"""Writing an allocation with its audit record, and verifying it later.

``write_allocation`` writes into a new (or empty) directory:

``allocation.csv``
    ``cluster, arm`` (+ ``stratum``/``pair``), clusters in canonical order;
``space.parquet``
    constrained designs: one row per kept allocation (a column per cluster with
    its arm, ``score``, ``chosen``);
``balance.csv``
    covariates by arm with standardised differences;
``audit.json``
    input SHA-256, canonical cluster ids, covariate coding, every setting,
    versions, bit generator and seed, score distribution, the chosen allocation,
    the SHA-256 of each output and one over all outputs;
``manifest.json``
    the stage store's manifest (:mod:`trialkit.store`).

The files are written through :func:`trialkit.store.write_allocation_files`.

``verify`` re-derives everything from ``audit.json`` and the clusters file and
lists every difference.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from trialkit import _io, store
from trialkit.errors import Problem, RandomisationError, TrialkitError
from trialkit.randomise.core import Allocation, randomise
from trialkit.randomise.settings import RandomisationSettings

AUDIT = store.AUDIT
_VOLATILE = ("created_utc", "input.path", "protocol.path", "record_sha256")
_OUT_EXISTS = "randomise.output.exists"


def read_clusters(
    path: str | os.PathLike[str], id_column: str = "la_id", *, what: str = "clusters file"
) -> pd.DataFrame:
    """Read a clusters table (CSV, Parquet or Excel); the id column is read as text.

    Cells are kept as written (a CSV cell ``1,412`` stays text); :func:`randomise`
    reads them by the data stage's rules.  Column names lose surrounding blanks
    and a CSV may start with a byte-order mark (as spreadsheets save it), as
    ``validate`` reads them.  ``what`` names the table in the error raised when it
    cannot be parsed.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(p)
        elif suffix in (".xlsx", ".xls"):
            frame = pd.read_excel(p, dtype={id_column: str})
        else:
            frame = pd.read_csv(
                p, dtype={id_column: str}, keep_default_na=True, encoding="utf-8-sig"
            )
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as err:  # parser errors
        raise RandomisationError.from_problem(
            path=str(p),
            code="randomise.input.unreadable",
            message=f"the {what} cannot be read: {err}.",
            hint="give a CSV, Parquet or Excel file",
        ) from err
    frame.columns = [str(c).strip() for c in frame.columns]
    if id_column in frame.columns:
        frame[id_column] = frame[id_column].astype("string")
    return frame


def recorded_id_column(directory: str | os.PathLike[str]) -> str:
    """The id column recorded in an allocation directory's audit (``la_id`` if unreadable)."""
    try:
        return store.read_allocation(directory).id_column
    except TrialkitError:
        return "la_id"


def check_output_dir(out: str | os.PathLike[str]) -> None:
    """Raise unless ``out`` is absent or an empty directory (outputs are never overwritten)."""
    _io.ensure_new_directory(out, error=RandomisationError, code=_OUT_EXISTS)


def _audit_record(
    allocation: Allocation,
    *,
    clusters_path: Path,
    protocol_path: Path | None,
    outputs: dict[str, str],
) -> dict[str, Any]:
    combined = _io.sha256_bytes("".join(f"{k}\0{v}\n" for k, v in sorted(outputs.items())).encode())
    record: dict[str, Any] = {
        "schema_version": _io.SCHEMA_VERSION,
        "trialkit_version": _io.__version__,
        "versions": _io.versions(),
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "input": {
            "path": str(clusters_path),
            "name": clusters_path.name,
            "sha256": _io.sha256_file(clusters_path),
            # how each column was read: its type, declared or inferred, and every
            # reinterpreted cell (issue #15: inferred types are printed and recorded)
            **({"reading": allocation.reading.to_dict()} if allocation.reading is not None else {}),
        },
        "protocol": None
        if protocol_path is None
        else {
            "path": str(protocol_path),
            "name": protocol_path.name,
            "sha256": _io.sha256_file(protocol_path),
        },
        "method": allocation.method,
        "settings": allocation.settings.to_dict(),
        "bit_generator": f"numpy.random.Generator(numpy.random.PCG64(seed)) [{allocation.bit_generator}]",
        "seed": allocation.seed,
        "clusters_canonical": list(allocation.clusters),
        "canonical_order": "cluster ids as text, sorted by Unicode code point; bit i of a code = i-th cluster in the first arm",
        "coding": None if allocation.coding is None else allocation.coding.to_dict(),
        "space": None if allocation.space is None else allocation.space.summary_dict(),
        "validity": None
        if allocation.validity is None
        else {
            "always_together": [list(p) for p in allocation.validity.always],
            "never_together": [list(p) for p in allocation.validity.never],
            "flagged": [list(p) for p in allocation.validity.flagged],
            "warn_range": list(allocation.validity.warn_range),
            "min_share": min(
                min(r[j] for j in range(len(r)) if j != i)
                for i, r in enumerate(allocation.validity.together)
            ),
            "max_share": max(
                max(r[j] for j in range(len(r)) if j != i)
                for i, r in enumerate(allocation.validity.together)
            ),
        },
        "allocation": dict(zip(allocation.clusters, allocation.arms, strict=True)),
        "arm_sizes": allocation.arm_sizes(),
        "warnings": list(allocation.warnings),
        "outputs": outputs,
        "outputs_sha256": combined,
    }
    record["record_sha256"] = _record_hash(record)
    return record


def _record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the audit record without its own hash (canonical JSON; one rule, in the store)."""
    return store.audit_record_sha256(record)


def write_allocation(
    allocation: Allocation,
    out: str | os.PathLike[str],
    *,
    clusters_path: str | os.PathLike[str],
    protocol_path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Write the allocation, kept space, balance table and audit record into ``out``.

    ``out`` must not exist or be empty; it appears whole or not at all.  Returns
    the audit record.
    """
    cpath = Path(clusters_path).resolve()
    ppath = None if protocol_path is None else Path(protocol_path).resolve()
    inputs = {"clusters": cpath} if ppath is None else {"clusters": cpath, "protocol": ppath}
    return store.write_allocation_files(
        out,
        allocation=allocation.to_frame(),
        space=None
        if allocation.space is None
        else allocation.space.to_frame(allocation.clusters, allocation.settings.arms),
        balance=allocation.balance_frame() if allocation.balance else None,
        audit=lambda outputs: _audit_record(
            allocation, clusters_path=cpath, protocol_path=ppath, outputs=outputs
        ),
        inputs=store.hash_inputs(inputs),
        seed=allocation.seed,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class VerificationReport:
    """Outcome of :func:`verify`: ``ok`` only when every output is identical.

    ``ignored`` lists files in the directory that ``randomise`` did not write (a
    README, ``.DS_Store``): they are not part of the allocation and do not count
    against it.  ``notes`` are findings that are not differences (e.g. a protocol
    edited elsewhere than its ``[randomisation]`` table).
    """

    directory: str
    ok: bool
    differences: tuple[str, ...]
    checked: tuple[str, ...]
    ignored: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        extra = [f"note: {n}" for n in self.notes]
        if self.ignored:
            extra.append(f"ignored (not written by randomise): {', '.join(self.ignored)}")
        if self.ok:
            head = f"verified: {self.directory} ({', '.join(self.checked)}) re-derived identically"
        else:
            head = (
                "NOT verified: "
                + self.directory
                + "\n"
                + "\n".join(f"- {d}" for d in self.differences)
            )
        return "\n".join([head, *extra])

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "ok": self.ok,
            "differences": list(self.differences),
            "checked": list(self.checked),
            "ignored": list(self.ignored),
            "notes": list(self.notes),
        }

    def problems(self) -> list[Problem]:
        return [
            Problem(
                path=self.directory,
                code="randomise.verify.differs",
                message=d,
                hint="the allocation cannot be reproduced as recorded",
            )
            for d in self.differences
        ]


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def _protocol_differences(
    ppath: Path, recorded: dict[str, Any] | None, settings: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """Differences between a protocol's ``[randomisation]`` and the audit's settings.

    Returns (differences, notes).  Every setting the protocol's table gives must equal
    the recorded one; a protocol whose hash changed while its randomisation settings
    did not is a note (the analysis sections may be completed after randomisation).
    """
    from trialkit.protocol import load_protocol

    diffs: list[str] = []
    notes: list[str] = []
    try:
        protocol = load_protocol(ppath)
    except TrialkitError as err:
        return [f"protocol `{ppath}` cannot be read: {err.message}"], notes
    if protocol.randomisation is None:
        return [
            f"protocol `{ppath.name}` must have the [randomisation] table it was randomised with; it has none"
        ], notes
    given = protocol.randomisation.model_dump(exclude_unset=True)
    try:
        now = RandomisationSettings.from_mapping(
            protocol.randomisation.model_dump(), default_arms=protocol.arm_ids
        ).to_dict()
    except RandomisationError as err:
        return [f"protocol `{ppath.name}` [randomisation] is not valid: {err.message}"], notes
    keys = [k for k in now if k in given or k == "arms"]
    for key in sorted(keys):
        if now.get(key) != settings.get(key):
            diffs.append(
                f"protocol setting `randomisation.{key}` must equal the one randomised with; "
                f"got {now.get(key)!r} in {ppath.name}, recorded {settings.get(key)!r}"
            )
    if recorded and _io.sha256_file(ppath) != recorded.get("sha256") and not diffs:
        notes.append(
            f"protocol `{ppath.name}` changed since randomisation (SHA-256 differs from the "
            "audit record); its [randomisation] settings are unchanged"
        )
    return diffs, notes


def verify(
    directory: str | os.PathLike[str],
    clusters: str | os.PathLike[str] | None = None,
    protocol: str | os.PathLike[str] | None = None,
) -> VerificationReport:
    """Re-derive an allocation from its audit record and compare every output.

    Parameters
    ----------
    directory : path
        A directory written by :func:`write_allocation`.
    clusters : path, optional
        The clusters file; defaults to the path recorded in the audit.
    protocol : path, optional
        The protocol; defaults to the path recorded in the audit (when it was
        randomised with one).  Its ``[randomisation]`` settings must equal the
        recorded ones.

    Returns
    -------
    VerificationReport
        ``ok`` is True only if the input hash, every output file (byte for byte),
        every audit field (except ``created_utc`` and file paths) and the
        protocol's randomisation settings match.  Files that ``randomise`` did not
        write are listed in ``ignored``.
    """
    root = Path(directory)
    diffs: list[str] = []
    audit_path = root / AUDIT
    if not audit_path.is_file():
        return VerificationReport(
            directory=str(root), ok=False, differences=(f"{AUDIT} is missing",), checked=()
        )
    try:
        audit = json.loads(audit_path.read_text(encoding="utf-8"))
        settings = RandomisationSettings.from_mapping(audit["settings"])
        seed = int(audit["seed"])
    except (ValueError, KeyError, TypeError, RandomisationError) as err:
        return VerificationReport(
            directory=str(root),
            ok=False,
            differences=(f"{AUDIT} cannot be read: {err}",),
            checked=(AUDIT,),
        )
    if audit.get("record_sha256") != _record_hash(audit):
        diffs.append(
            f"{AUDIT}: record_sha256 does not match its content (a field of the audit record was edited)"
        )
    recorded = audit.get("outputs", {})
    ignored = tuple(
        sorted(
            p.name
            for p in root.iterdir()
            if p.name not in (AUDIT, store.MANIFEST) and p.name not in recorded
        )
    )
    notes: list[str] = []
    rec_protocol = audit.get("protocol")
    ppath = (
        Path(protocol)
        if protocol is not None
        else (Path(rec_protocol["path"]) if isinstance(rec_protocol, dict) else None)
    )
    if ppath is not None:
        if ppath.is_file():
            pd_diffs, pd_notes = _protocol_differences(
                ppath, rec_protocol if isinstance(rec_protocol, dict) else None, audit["settings"]
            )
            diffs += pd_diffs
            notes += pd_notes
        else:
            notes.append(
                f"protocol `{ppath}` not found: its settings were not checked; pass --protocol"
            )
    for name, digest in recorded.items():
        f = root / name
        if not f.is_file():
            diffs.append(f"{name} is missing")
        elif _io.sha256_file(f) != digest:
            diffs.append(
                f"{name}: SHA-256 differs from the audit record (the file changed after randomisation)"
            )
    cpath = Path(clusters) if clusters is not None else Path(audit.get("input", {}).get("path", ""))
    if not cpath.is_file():
        diffs.append(f"clusters file `{cpath}` not found; pass --clusters")
        return VerificationReport(
            directory=str(root),
            ok=False,
            differences=tuple(diffs),
            checked=tuple(recorded),
            ignored=ignored,
            notes=tuple(notes),
        )
    if _io.sha256_file(cpath) != audit.get("input", {}).get("sha256"):
        diffs.append(
            f"input clusters file `{cpath.name}`: SHA-256 differs from the one recorded (the input changed)"
        )
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again = randomise(read_clusters(cpath, settings.id_column), settings, seed=seed)
    except RandomisationError as err:
        diffs.append(f"the allocation cannot be re-derived: {err.message}")
        return VerificationReport(
            directory=str(root),
            ok=False,
            differences=tuple(diffs),
            checked=tuple(recorded),
            ignored=ignored,
            notes=tuple(notes),
        )
    with tempfile.TemporaryDirectory() as tmp:
        fresh_dir = Path(tmp) / "fresh"
        protocol = audit.get("protocol")
        fresh = write_allocation(again, fresh_dir, clusters_path=cpath)
        fresh["protocol"] = protocol
        for name in sorted(set(fresh["outputs"]) | set(recorded)):
            if name not in fresh["outputs"]:
                diffs.append(f"{name} is recorded but would not be produced")
            elif (root / name).is_file() and (fresh_dir / name).read_bytes() != (
                root / name
            ).read_bytes():
                diffs.append(
                    f"{name}: content differs from {name} re-derived with the recorded settings and seed {seed}"
                )
    a, b = _flatten(audit), _flatten(json.loads(_io.to_json_text(fresh)))
    for key in sorted(set(a) | set(b)):
        if key in _VOLATILE:
            continue
        if a.get(key) != b.get(key):
            diffs.append(
                f"audit field `{key}` differs: recorded {a.get(key)!r}, re-derived {b.get(key)!r}"
            )
    return VerificationReport(
        directory=str(root),
        ok=not diffs,
        differences=tuple(dict.fromkeys(diffs)),
        checked=(AUDIT, *recorded),
        ignored=ignored,
        notes=tuple(notes),
    )
