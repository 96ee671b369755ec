"""Writing a validated dataset: :func:`save_validated`."""

from __future__ import annotations

import os
from pathlib import Path

from trialkit import store
from trialkit.data._result import TrialData
from trialkit.data.schema import DataProblem
from trialkit.errors import DataError


def save_validated(trial_data: TrialData, out_dir: str | os.PathLike[str]) -> Path:
    """Write the validated tables as Parquet with ``exclusions.csv``, ``flow.csv``, ``problems.json``.

    Written through :func:`trialkit.store.write_validated`: the directory is assembled
    in a temporary sibling and renamed into place (a crash leaves nothing
    half-written) and ends with the stage manifest ``manifest.json`` (input and
    output hashes, row counts in ``details``).

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
    return store.write_validated(
        out_dir,
        tables={**trial_data.tables, "scores": trial_data.scores},
        exclusions=trial_data.exclusions,
        flow=trial_data.flow,
        problems=[p.to_dict() for p in trial_data.problems],
        inputs=dict(trial_data.inputs),
        n_warnings=len(trial_data.warnings),
    )
