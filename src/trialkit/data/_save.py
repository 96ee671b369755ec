"""Writing a validated dataset: :func:`save_validated`."""

from __future__ import annotations

import io
import os
from pathlib import Path

from trialkit._io import (
    SCHEMA_VERSION,
    atomic_write_bytes,
    sha256_file,
    staged_directory,
    versions,
    write_json,
)
from trialkit._version import __version__
from trialkit.data._result import TrialData
from trialkit.data.schema import DataProblem
from trialkit.errors import DataError


def save_validated(trial_data: TrialData, out_dir: str | os.PathLike[str]) -> Path:
    """Write the validated tables as Parquet with ``manifest.json``, ``exclusions.csv``, ``flow.csv``.

    The directory is assembled in a temporary sibling and renamed into place, so
    a crash leaves nothing half-written.

    Raises
    ------
    DataError
        ``data.has_errors`` when the data have errors; ``data.output_exists`` when
        ``out_dir`` exists and is not empty.
    """
    if not trial_data.ok:
        raise DataError(
            f"the validated dataset is not written: {len(trial_data.errors)} error(s)",
            [p.to_problem() for p in trial_data.errors][:50]
            + [
                DataProblem(
                    file=str(out_dir),
                    row=None,
                    column=None,
                    code="data.has_errors",
                    message="data with errors are never written",
                    hint="fix the errors and validate again",
                ).to_problem()
            ],
        )
    out = Path(out_dir)
    with staged_directory(out, error=DataError, code="data.output_exists") as tmp:
        outputs: dict[str, str] = {}
        rows: dict[str, int] = {}
        for name, frame in [*trial_data.tables.items(), ("scores", trial_data.scores)]:
            buf = io.BytesIO()
            frame.to_parquet(buf, index=False)
            fn = f"{name}.parquet"
            atomic_write_bytes(tmp / fn, buf.getvalue())
            outputs[fn] = sha256_file(tmp / fn)
            rows[name] = len(frame)
        for fn, frame in (("exclusions.csv", trial_data.exclusions), ("flow.csv", trial_data.flow)):
            atomic_write_bytes(tmp / fn, frame.to_csv(index=False, lineterminator="\n").encode())
            outputs[fn] = sha256_file(tmp / fn)
        write_json(tmp / "problems.json", [p.to_dict() for p in trial_data.problems])
        outputs["problems.json"] = sha256_file(tmp / "problems.json")
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "trialkit_version": __version__,
            "versions": versions(),
            "row_counts": rows,
            "inputs": {k: {"sha256": v} for k, v in trial_data.inputs.items()},
            "outputs": {k: {"sha256": v} for k, v in outputs.items()},
            "n_warnings": len(trial_data.warnings),
            "seed": None,
        }
        write_json(tmp / "manifest.json", manifest)
    return out
