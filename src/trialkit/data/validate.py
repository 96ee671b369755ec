"""Validate a trial data directory against the protocol and the allocation.

:func:`validate` reads every table, converts it to pyarrow-backed dtypes, runs
every rule and returns a frozen :class:`TrialData` holding the tables, every
problem found (errors and warnings, each naming file, 1-based data row and
column), the exclusions table and the CONSORT-cluster flow counts.  It never
raises for problems in the data: the caller decides (``TrialData.raise_for_errors``;
``trialkit validate`` exits 1).  :func:`save_validated` writes the dataset only
when there is no error.

Problem codes are listed in ``docs/data-spec.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from trialkit._io import sha256_file
from trialkit.data._checks import _Collector
from trialkit.data._checks_delivery import _DeliveryChecks
from trialkit.data._checks_entities import _EntityChecks
from trialkit.data._checks_measurements import _MeasurementChecks
from trialkit.data._columns import column_cache
from trialkit.data._result import TrialData
from trialkit.data._save import save_validated
from trialkit.data._tables import (
    _convert_table,
    _empty,
    _read_allocation,
    column_kinds,
    table_label,
)
from trialkit.data.load import find_tables, read_table
from trialkit.data.schema import COLUMNS, REQUIRED, REQUIRED_TABLES, TABLES
from trialkit.data.scoring import Instrument
from trialkit.data.scoring import custom_instruments as custom_instruments_of
from trialkit.errors import DataError
from trialkit.protocol.model import Protocol
from trialkit.store import AllocationRecord

__all__ = ["TrialData", "save_validated", "validate"]

EXCLUSION_COLUMNS = ["entity", "entity_id", "reason", "stage"]
FLOW_COLUMNS = ["arm", "level", "stage", "detail", "n"]


class _Context(_EntityChecks, _MeasurementChecks, _DeliveryChecks):
    """All the validation rules over one dataset."""


# ============================================================================ main
def validate(
    protocol: Protocol,
    data_dir: str | os.PathLike[str],
    allocation_dir: str | os.PathLike[str] | AllocationRecord | None = None,
    *,
    custom_instruments: Mapping[str, Instrument] | None = None,
    score15_reverse: str | None = None,
) -> TrialData:
    """Read and validate a trial data directory.

    Parameters
    ----------
    protocol : Protocol
        The trial protocol (timepoints, window, outcomes, covariates, arms).
    data_dir : path-like
        Folder with ``clusters``, ``keyworkers``, ``families``, ``measurements``
        and (optionally) ``delivery`` tables as .csv, .parquet or .xlsx.
    allocation_dir : path-like or AllocationRecord, optional
        The allocation as read by :func:`trialkit.store.read_allocation`, or the
        output of ``trialkit randomise`` (holds ``allocation.csv`` with ``cluster, arm``)
        or the CSV file itself, read through the store.  Without it, an ``arm`` column
        in ``clusters`` is used.
    custom_instruments : mapping, optional
        Instruments beyond the built-in ones and the protocol's
        ``[[scoring.instruments]]``, by id.
    score15_reverse : str, optional
        SCORE-15 coding direction (see :func:`trialkit.data.scoring.score`); default
        the protocol's ``scoring.score15_reverse``.  CBI answers are read with the
        protocol's ``scoring.cbi_coding``.

    Returns
    -------
    TrialData
        Never raises for problems in the data; see ``TrialData.ok``.

    Raises
    ------
    DataError
        Only when ``data_dir`` is not a directory, or when a file of a data directory
        with a manifest no longer has its recorded SHA-256 (``data.manifest_mismatch``).
    VerificationError
        When a file of the allocation directory no longer has its recorded SHA-256.
    """
    with column_cache():  # each text column is converted and factorised once
        return _validate(
            protocol,
            data_dir,
            allocation_dir,
            custom_instruments=custom_instruments,
            score15_reverse=score15_reverse,
        )


def _read_tables(
    protocol: Protocol,
    found: Mapping[str, Path],
    root: Path,
    files: dict[str, str],
    hashes: dict[str, Future[str]],
    raw: dict[str, pd.DataFrame],
    col: _Collector,
    hashing: ThreadPoolExecutor,
) -> None:
    """Read every table found (as written), reporting absent and unreadable ones."""
    for name in TABLES:
        if name not in found:
            if name in REQUIRED_TABLES:
                col.add(
                    f"{name}.csv",
                    None,
                    None,
                    "data.missing_table",
                    f"table '{name}' must be present in the data directory",
                    f"add {name}.csv, {name}.parquet or {name}.xlsx to '{root}'",
                )
            else:
                col.add(
                    f"{name}.csv",
                    None,
                    None,
                    "data.missing_table",
                    f"table '{name}' is absent: fidelity cannot be assessed",
                    "add the delivery log for the fidelity stage",
                    "warning",
                )
            continue
        path = found[name]
        files[name] = path.name
        hashes[path.name] = hashing.submit(sha256_file, path)
        ids = tuple(c for c, k in COLUMNS[name].items() if k == "id")
        try:
            raw[name] = read_table(path, ids, REQUIRED[name], kinds=column_kinds(name, protocol))
        except DataError as err:
            for p in err.problems:
                col.add(path.name, None, None, p.code, p.message, p.hint)


def _validate(
    protocol: Protocol,
    data_dir: str | os.PathLike[str],
    allocation_dir: str | os.PathLike[str] | AllocationRecord | None,
    *,
    custom_instruments: Mapping[str, Instrument] | None,
    score15_reverse: str | None,
) -> TrialData:
    col = _Collector()
    found, amb = find_tables(data_dir, TABLES)
    col.items.extend(amb)
    inputs: dict[str, str] = {}
    files: dict[str, str] = {}
    raw: dict[str, pd.DataFrame] = {}
    root = Path(data_dir)
    # each file's SHA-256 is computed in a thread beside the reading (hashlib and the
    # readers release the GIL), in the order the files are read
    hashes: dict[str, Future[str]] = {}
    with ThreadPoolExecutor(max_workers=1) as hashing:
        _read_tables(protocol, found, root, files, hashes, raw, col, hashing)
        for file, digest in hashes.items():
            inputs[file] = digest.result()

    tables: dict[str, pd.DataFrame] = {}
    labels: dict[str, str] = {}
    for name, frame in raw.items():
        labels[name] = table_label(files[name], frame)
        converted = _convert_table(name, frame, labels[name], protocol, col)
        if name not in col.broken:
            # a table without its required columns is reported once and then treated as
            # absent, so that rules over other tables do not report every row again
            tables[name] = converted

    start = protocol.trial.start
    end = protocol.trial.end
    allocation = _read_allocation(
        protocol, allocation_dir, tables.get("clusters"), files, inputs, col, labels
    )
    tables["allocation"] = allocation

    custom = {**custom_instruments_of(protocol), **(custom_instruments or {})}
    reverse = score15_reverse or protocol.scoring.score15_reverse
    ctx = _Context(protocol, tables, files, col, start, end, custom, reverse)
    ctx.labels = labels
    ctx.check_clusters()
    ctx.check_keyworkers()
    ctx.check_families()
    scores = ctx.check_measurements()
    ctx.check_follow_up()
    if "delivery" in tables:
        ctx.delivery_columns = {str(c).strip() for c in raw["delivery"].columns}
    ctx.check_delivery()
    for name in TABLES:
        if name not in tables:  # build an empty table only for an absent one
            tables[name] = _empty(name)
    from trialkit.data.frame import build_flow_and_exclusions

    ctx.missing_patterns(scores)
    flow, exclusions = build_flow_and_exclusions(protocol, tables, scores, start, end)
    problems = tuple(
        sorted(
            col.items,
            key=lambda p: (
                p.severity != "error",
                p.file,
                p.code,
                p.row if p.row is not None else 10**12,
                p.column or "",
            ),
        )
    )
    return TrialData(
        tables=tables,
        scores=scores,
        problems=problems,
        exclusions=exclusions,
        flow=flow,
        files=files,
        inputs=inputs,
        trial_start=start,
        trial_end=end,
    )
