"""The manifest every stage directory carries: one format for every stage.

``manifest.json`` records the stage name, the stage's ``schema_version``, the
trialkit version, the SHA-256 of each input (a file, or a directory hashed over
its files), the SHA-256 of every file the stage wrote and the seed where one was
used.  It is written last, after every output is in place, and holds no
timestamp, so the same inputs give the same manifest.

Readers call :func:`verify_outputs`: a directory without a manifest is read as
before (outputs of earlier versions); with one, every recorded file must be
present with the recorded hash.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trialkit._io import STAGE_MANIFEST, sha256_dir, sha256_file, write_json
from trialkit._version import __version__
from trialkit.errors import Problem, TrialkitError

__all__ = [
    "MANIFEST",
    "MANIFEST_FORMAT",
    "build_manifest",
    "hash_inputs",
    "read_manifest",
    "verify_outputs",
    "write_manifest",
]

MANIFEST = STAGE_MANIFEST
MANIFEST_FORMAT = "trialkit.stage-manifest/1"


def hash_inputs(inputs: Mapping[str, str | os.PathLike[str]] | None) -> dict[str, str]:
    """SHA-256 of each input by role: a file's bytes, or a directory over its files."""
    out: dict[str, str] = {}
    for role, p in (inputs or {}).items():
        path = Path(p)
        out[role] = sha256_dir(path) if path.is_dir() else sha256_file(path)
    return out


def _output_hashes(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): sha256_file(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.relative_to(directory).as_posix() != MANIFEST
    }


def build_manifest(
    directory: str | os.PathLike[str],
    *,
    stage: str,
    schema_version: int,
    inputs: Mapping[str, str] | None = None,
    seed: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of ``directory`` as written now (every file but the manifest hashed).

    Parameters
    ----------
    directory : path
        The stage directory, complete apart from its manifest.
    stage : str
        Stage name (``allocation``, ``data``, ``validated``, ``fidelity``, ``analysis``,
        ``report``).
    schema_version : int
        The stage's declared schema version.
    inputs : mapping of role -> sha256, optional
        Input hashes (see :func:`hash_inputs`).
    seed : int, optional
        The seed the stage used, if any.
    details : mapping, optional
        Stage-specific counts (e.g. rows per table), JSON-safe.
    """
    record: dict[str, Any] = {
        "manifest_format": MANIFEST_FORMAT,
        "stage": stage,
        "schema_version": schema_version,
        "trialkit_version": __version__,
        "inputs": dict(inputs or {}),
        "outputs": _output_hashes(Path(directory)),
        "seed": seed,
    }
    if details:
        record["details"] = dict(details)
    return record


def write_manifest(
    directory: str | os.PathLike[str],
    *,
    stage: str,
    schema_version: int,
    inputs: Mapping[str, str] | None = None,
    seed: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``manifest.json`` into ``directory`` (see :func:`build_manifest`); return it."""
    record = build_manifest(
        directory,
        stage=stage,
        schema_version=schema_version,
        inputs=inputs,
        seed=seed,
        details=details,
    )
    write_json(Path(directory) / MANIFEST, record)
    return record


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of a stage directory, or ``None`` when it has none (older outputs).

    A manifest that is not a stage manifest (e.g. one written before the format
    existed) is treated as absent.
    """
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("manifest_format") != MANIFEST_FORMAT:
        return None
    return record


def verify_outputs(
    directory: str | os.PathLike[str],
    *,
    stage: str | tuple[str, ...],
    error: type[TrialkitError],
    files: tuple[str, ...] | None = None,
) -> dict[str, Any] | None:
    """Check a stage directory's files against its manifest; return the manifest.

    Parameters
    ----------
    directory : path
        The stage directory.
    stage : str or tuple of str
        The stage (or stages) accepted; a manifest of another stage is refused.
    error : TrialkitError subclass
        Raised, naming every file that differs, with code ``<stage>.manifest_mismatch``.
    files : tuple of str, optional
        Check only these recorded files (default: every recorded file).

    Returns
    -------
    dict or None
        ``None`` when the directory has no manifest: it is read unverified.
    """
    root = Path(directory)
    manifest = read_manifest(root)
    if manifest is None:
        return None
    accepted = (stage,) if isinstance(stage, str) else stage
    stage = accepted[0]
    problems: list[Problem] = []
    if manifest.get("stage") not in accepted:
        problems.append(
            Problem(
                path=str(root / MANIFEST),
                code=f"{stage}.manifest_stage",
                message=f"the manifest's stage must be {' or '.join(accepted)}; "
                f"got {manifest.get('stage')!r}",
                hint=f"pass a directory written by the {stage} stage",
            )
        )
    recorded: dict[str, str] = dict(manifest.get("outputs") or {})
    for name, digest in recorded.items():
        if files is not None and name not in files:
            continue
        f = root / name
        if not f.is_file():
            problems.append(
                Problem(
                    path=str(f),
                    code=f"{stage}.manifest_mismatch",
                    message=f"'{name}' is recorded in {MANIFEST} but missing",
                    hint="restore the file or re-run the stage",
                )
            )
        elif sha256_file(f) != digest:
            problems.append(
                Problem(
                    path=str(f),
                    code=f"{stage}.manifest_mismatch",
                    message=f"'{name}' must have the SHA-256 recorded in {MANIFEST}; "
                    "the file changed after it was written",
                    hint="restore the file or re-run the stage",
                )
            )
    if problems:
        names = ", ".join(Path(p.path).name for p in problems)
        raise error(f"{root}: outputs do not match {MANIFEST} ({names})", problems)
    return manifest
