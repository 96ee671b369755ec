"""The chain of custody: how each stage checks what it reads.

One policy for every verb.  A stage directory is *verified* when every file read
has the SHA-256 its ``manifest.json`` records and, for an allocation, when it also
agrees with its audit record (:func:`verify_allocation`): the audit record's own
hash, the hash of every output it lists, the arm of every cluster, and the
observed allocation being one of the recorded kept allocations (``space.parquet``).
A directory that fails is refused with an error naming the file, unless the
caller passes ``allow_unverified=True`` (the CLI's ``--allow-unverified``); the
failure is then kept in a :class:`StageCheck`, recorded in the provenance of what
is written next and stated in the report.

A directory with neither manifest nor audit record (an allocation made by hand,
or by an earlier version) cannot be checked: it is read with the status
``not verifiable``, also stated in the report.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from trialkit._io import STAGE_MANIFEST, sha256_bytes, sha256_file
from trialkit.errors import Problem, TrialkitError

__all__ = [
    "NOT_VERIFIABLE",
    "UNVERIFIED",
    "VERIFIED",
    "StageCheck",
    "audit_record_sha256",
    "check_stage_directory",
    "enforce",
    "verify_allocation",
]

VERIFIED = "verified"
UNVERIFIED = "UNVERIFIED"
NOT_VERIFIABLE = "not verifiable"


@dataclass(frozen=True, slots=True, kw_only=True)
class StageCheck:
    """What a stage reader found when it checked a stage directory.

    Attributes
    ----------
    stage : str
        ``allocation``, ``data``, ``analysis``, ...
    path : str
        The directory (or file) read.
    status : str
        ``verified``; ``UNVERIFIED`` (a check failed and the caller allowed it);
        ``not verifiable`` (no manifest or audit record to check against).
    manifest_sha256 : str or None
        SHA-256 of the directory's ``manifest.json`` (the link in the chain).
    problems : tuple of Problem
        Every check that failed (empty when verified).
    """

    stage: str
    path: str
    status: str
    manifest_sha256: str | None = None
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def verified(self) -> bool:
        """True when every check passed."""
        return self.status == VERIFIED

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "path": self.path,
            "status": self.status,
            "manifest_sha256": self.manifest_sha256,
            "problems": [p.to_dict() for p in self.problems],
        }

    def summary(self) -> str:
        text = f"{self.stage} {self.path}: {self.status}"
        return text + "".join(f"\n  - {p.message}" for p in self.problems)


def manifest_hash(directory: Path) -> str | None:
    """SHA-256 of ``directory/manifest.json``, or None when there is none."""
    f = directory / STAGE_MANIFEST
    return sha256_file(f) if f.is_file() else None


def enforce(check: StageCheck, *, allow_unverified: bool, error: type[TrialkitError]) -> StageCheck:
    """Raise ``error`` with the check's problems unless it passed or ``allow_unverified``."""
    if check.problems and not allow_unverified:
        names = ", ".join(dict.fromkeys(Path(p.path).name for p in check.problems))
        raise error(
            f"{check.path}: the {check.stage} does not match its recorded hashes ({names}); "
            "pass --allow-unverified (allow_unverified=True) to read it anyway",
            [
                replace(
                    p,
                    hint=f"{p.hint}; or pass --allow-unverified to use it anyway "
                    "(recorded, and stated in the report)",
                )
                for p in check.problems
            ],
        )
    return check


def audit_record_sha256(record: dict[str, Any]) -> str:
    """SHA-256 of an allocation audit record without its own ``record_sha256`` (canonical JSON)."""
    body = {k: v for k, v in record.items() if k != "record_sha256"}
    return sha256_bytes(json.dumps(body, sort_keys=True, ensure_ascii=False).encode())


def _problem(path: Path, code: str, message: str, hint: str) -> Problem:
    return Problem(path=str(path), code=code, message=message, hint=hint)


def verify_allocation(
    directory: str | os.PathLike[str],
    *,
    frame: pd.DataFrame,
    allocation_file: str | os.PathLike[str],
    audit: dict[str, Any] | None,
    manifest_problems: tuple[Problem, ...] = (),
) -> StageCheck:
    """Check an allocation against its audit record (the chain's first link).

    Parameters
    ----------
    directory : path
        The allocation directory.
    frame : DataFrame
        The allocation as read (``cluster, arm``).
    allocation_file : path
        The file the frame was read from.
    audit : dict or None
        ``audit.json`` as read (None when absent).
    manifest_problems : tuple of Problem
        Mismatches already found against ``manifest.json``.

    Returns
    -------
    StageCheck
        ``verified`` when the manifest (if any) and every audit check pass;
        ``not verifiable`` without an audit record and manifest problems;
        ``UNVERIFIED`` otherwise (the caller decides whether to refuse, see
        :func:`enforce`).  Problem codes: ``allocation.manifest_mismatch``,
        ``allocation.audit_edited``, ``allocation.audit_mismatch``,
        ``allocation.arm_differs``, ``allocation.outside_space``.
    """
    root = Path(directory)
    afile = Path(allocation_file)
    problems = list(manifest_problems)
    hint = "restore the allocation directory as randomised (check it with `trialkit verify`)"
    if audit is None:
        status = UNVERIFIED if problems else NOT_VERIFIABLE
        return StageCheck(
            stage="allocation",
            path=str(root),
            status=status,
            manifest_sha256=manifest_hash(root),
            problems=tuple(problems),
        )
    audit_file = root / "audit.json"
    if audit.get("record_sha256") != audit_record_sha256(audit):
        problems.append(
            _problem(
                audit_file,
                "allocation.audit_edited",
                "`audit.json` must have the record_sha256 of its content; a field was edited",
                hint,
            )
        )
    outputs = audit.get("outputs") or {}
    for name, digest in sorted(outputs.items()):
        f = root / name
        if not f.is_file():
            problems.append(
                _problem(
                    f,
                    "allocation.audit_mismatch",
                    f"`{name}` is listed in audit.json but missing",
                    hint,
                )
            )
        elif sha256_file(f) != digest:
            problems.append(
                _problem(
                    f,
                    "allocation.audit_mismatch",
                    f"`{name}` must have the SHA-256 recorded in audit.json; "
                    f"got {sha256_file(f)[:12]}… (the file changed after randomisation)",
                    hint,
                )
            )
    recorded = {str(k): str(v) for k, v in (audit.get("allocation") or {}).items()}
    observed: dict[str, str] = {}
    if "cluster" in frame.columns and "arm" in frame.columns:
        observed = {str(c): str(a) for c, a in zip(frame["cluster"], frame["arm"], strict=True)}
    if recorded and observed != recorded:
        diff = sorted(
            c for c in set(recorded) | set(observed) if recorded.get(c) != observed.get(c)
        )
        shown = ", ".join(f"{c}: {observed.get(c)} (audit {recorded.get(c)})" for c in diff[:6])
        problems.append(
            _problem(
                afile,
                "allocation.arm_differs",
                f"the arm of every cluster must be the one recorded in audit.json; got {shown}"
                + (" …" if len(diff) > 6 else ""),
                hint,
            )
        )
    space_file = root / "space.parquet"
    if audit.get("space") is not None and space_file.is_file() and observed:
        space = pd.read_parquet(space_file)
        cols = [c for c in observed if c in space.columns]
        if len(cols) != len(observed):
            inside = False
        else:
            want = pd.Series(observed)[cols]
            inside = bool((space[cols].astype(str) == want.to_numpy()).all(axis=1).any())
        if not inside:
            problems.append(
                _problem(
                    afile,
                    "allocation.outside_space",
                    "the observed allocation must be one of the kept allocations in "
                    "space.parquet; got an allocation outside the recorded space",
                    hint,
                )
            )
    return StageCheck(
        stage="allocation",
        path=str(root),
        status=UNVERIFIED if problems else VERIFIED,
        manifest_sha256=manifest_hash(root),
        problems=tuple(problems),
    )


def check_stage_directory(
    directory: str | os.PathLike[str],
    *,
    stage: str | tuple[str, ...],
    error: type[TrialkitError],
    allow_unverified: bool = False,
) -> StageCheck:
    """Check a stage directory against its manifest and return the check for the chain.

    ``verified`` when the manifest is present and every file matches; ``not
    verifiable`` without a manifest; a mismatch raises ``error`` naming the files
    unless ``allow_unverified`` (status ``UNVERIFIED``).
    """
    from trialkit.store._manifest import verify_outputs

    root = Path(directory)
    name = stage if isinstance(stage, str) else stage[0]
    try:
        manifest = verify_outputs(root, stage=stage, error=error)
    except TrialkitError as exc:
        if not allow_unverified:
            raise
        return StageCheck(
            stage=name,
            path=str(root),
            status=UNVERIFIED,
            manifest_sha256=manifest_hash(root),
            problems=tuple(exc.problems),
        )
    return StageCheck(
        stage=name,
        path=str(root),
        status=NOT_VERIFIABLE if manifest is None else VERIFIED,
        manifest_sha256=manifest_hash(root),
    )
