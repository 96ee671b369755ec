"""Atomic output, hashing and provenance shared by every stage.

Every file trialkit writes goes through :func:`atomic_write_bytes` (write to a
temporary file in the same directory, fsync, then ``os.replace``), so a crash
never leaves a half-written output.  :func:`provenance` is the record each
output carries: trialkit/Python/numpy versions, input hashes and the seed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from trialkit._version import __version__
from trialkit.errors import TrialkitError

SCHEMA_VERSION = 1


def sha256_bytes(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex SHA-256 of the file at ``path`` (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


STAGE_MANIFEST = "manifest.json"


def sha256_dir(path: str | os.PathLike[str]) -> str:
    """Return a SHA-256 over every file below ``path`` (relative names and contents).

    A stage directory's own ``manifest.json`` is left out: it only records the hashes
    of the other files, so a directory hashes the same with or without one.
    """
    root = Path(path)
    h = hashlib.sha256()
    top = root / STAGE_MANIFEST
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p != top):
        h.update(str(f.relative_to(root).as_posix()).encode())
        h.update(b"\0")
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def current_umask() -> int:
    """The process's file-mode creation mask (read without changing it for long)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _staging_prefix(name: str) -> str:
    """Prefix of the hidden staging file or directory of output ``name`` (holds the pid)."""
    return f".{name}.staging-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_stale_staging(target: str | os.PathLike[str]) -> tuple[Path, ...]:
    """Remove hidden staging files and directories of ``target`` left by killed runs.

    A staging name is ``.<name>.staging-<pid>-<random>``; it is stale when no process
    with that id is running (a live run's staging is left alone).  Returns what was
    removed.
    """
    t = Path(target)
    parent = t.parent
    if not parent.is_dir():
        return ()
    removed: list[Path] = []
    head = f".{t.name}.staging-"
    for p in sorted(parent.iterdir()):
        if not p.name.startswith(head):
            continue
        pid_text = p.name[len(head) :].split("-", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return tuple(removed)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename).

    The file gets the mode any other tool would give it, ``0o666 & ~umask``
    (``tempfile`` creates ``0o600``, so the mode is set before the rename).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(target)
    fd, tmp = tempfile.mkstemp(
        prefix=_staging_prefix(target.name), suffix=".tmp", dir=target.parent
    )
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def ensure_new_directory(
    out: str | os.PathLike[str], *, error: type[TrialkitError], code: str
) -> Path:
    """Return ``out`` as a Path, raising ``error`` (a TrialkitError class) if it holds files.

    trialkit never overwrites an output directory: it must not exist or be empty.
    """
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise _output_exists(path, error, code)
    return path


def _output_exists(path: Path, error: type[TrialkitError], code: str) -> TrialkitError:
    return error.from_problem(
        path=str(path),
        code=code,
        message=f"output directory must be new or empty; got '{path}' with files",
        hint="choose a new --out directory (outputs are never overwritten)",
    )


@contextmanager
def staged_directory(
    out: str | os.PathLike[str], *, error: type[TrialkitError], code: str
) -> Iterator[Path]:
    """Write a whole output directory atomically.

    Yields a hidden temporary sibling directory (``.<name>.staging-<pid>-…``); when
    the block ends without an exception it is renamed to ``out`` (which must be new
    or empty), otherwise it is removed.  Staging directories of killed runs (whose
    process no longer exists) are removed first.  The directory gets the mode
    ``0o777 & ~umask`` like any directory the user makes (``tempfile`` creates
    ``0o700``).  When another process
    filled ``out`` in the meantime (two runs writing to one directory) this one raises
    ``error`` with ``code`` ("output exists") and leaves the other's output as it is.
    """
    target = ensure_new_directory(out, error=error, code=code)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(target)
    tmp = Path(tempfile.mkdtemp(prefix=_staging_prefix(target.name), dir=target.parent))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())
        yield tmp
        try:
            if target.exists():
                target.rmdir()
            os.replace(tmp, target)
        except OSError:
            if target.exists():  # the other writer won: ours is refused, theirs kept
                raise _output_exists(target, error, code) from None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def to_json_text(obj: Any) -> str:
    """Serialise ``obj`` as stable, indented JSON (sorted keys are not imposed)."""
    return json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n"


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    atomic_write_text(path, to_json_text(obj))


def write_frame(path: str | os.PathLike[str], frame: Any) -> None:
    """Write a pandas DataFrame atomically as CSV or Parquet (by suffix)."""
    suffix = Path(path).suffix.lower()
    buf = io.BytesIO()
    if suffix == ".csv":
        buf.write(frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    elif suffix == ".parquet":
        frame.to_parquet(buf, index=False)
    else:
        raise ValueError(f"unsupported table suffix {suffix!r}")
    atomic_write_bytes(path, buf.getvalue())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return obj.as_posix()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def versions() -> dict[str, str]:
    """Versions of trialkit, Python and the numerical libraries in use."""
    import pandas as pd
    import scipy

    return {
        "trialkit": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
    }


def provenance(
    *,
    inputs: Mapping[str, str | os.PathLike[str]] | None = None,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the provenance record every output carries.

    Parameters
    ----------
    inputs : mapping of role -> path
        Files (hashed with SHA-256) or directories (hashed over their files).
    seed : int, optional
        The random seed used, if any.
    extra : mapping, optional
        Further settings to record.
    """
    hashes: dict[str, dict[str, str]] = {}
    for role, p in (inputs or {}).items():
        path = Path(p)
        digest = sha256_dir(path) if path.is_dir() else sha256_file(path)
        hashes[role] = {"path": path.name, "sha256": digest}
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "trialkit_version": __version__,
        "versions": versions(),
        "inputs": hashes,
        "seed": seed,
    }
    if extra:
        record.update(dict(extra))
    return record
