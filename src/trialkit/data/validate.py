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

import datetime as dt
import io
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from trialkit._io import (
    SCHEMA_VERSION,
    atomic_write_bytes,
    sha256_file,
    staged_directory,
    versions,
    write_json,
)
from trialkit._version import __version__
from trialkit.data import scoring
from trialkit.data.load import STRING, convert, find_tables, read_table, to_object
from trialkit.data.load import isin as _isin
from trialkit.data.schema import (
    COLUMNS,
    COURSES,
    DELIVERY_NOT_NULL,
    LEVELS,
    MAX_ROWS_PER_CODE,
    NOT_NULL,
    RECORD_TYPES,
    REQUIRED,
    REQUIRED_TABLES,
    ROLES,
    TABLES,
    DataProblem,
)
from trialkit.data.scoring import MAX_ITEMS, Instrument, item_columns
from trialkit.errors import DataError
from trialkit.protocol.model import Outcome, Protocol

__all__ = ["TrialData", "save_validated", "validate"]

EXCLUSION_COLUMNS = ["entity", "entity_id", "reason", "stage"]
FLOW_COLUMNS = ["arm", "level", "stage", "detail", "n"]
MISSING_WARN = 0.2
DIFFERENTIAL_WARN = 0.1


# ============================================================================ result
@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TrialData:
    """A validated (or failed) trial dataset.

    Attributes
    ----------
    tables : mapping of str -> DataFrame
        ``clusters``, ``keyworkers``, ``families``, ``measurements``, ``delivery``
        (pyarrow-backed dtypes) and ``allocation`` (``cluster``, ``arm``).
    scores : DataFrame
        Scored outcome values: ``outcome_id, entity_id, level, timepoint, value,
        n_answered`` (value missing when the prorating rule is not met).
    problems : tuple of DataProblem
        Every error and warning.
    exclusions : DataFrame
        ``entity, entity_id, reason, stage``: who drops out of which analyses and why.
    flow : DataFrame
        ``arm, level, stage, detail, n``: CONSORT-cluster counts.
    files : mapping of str -> str
        Table name -> file name read.
    inputs : mapping of str -> str
        File name -> SHA-256 of every input read.
    trial_start, trial_end : date or None
    """

    tables: Mapping[str, pd.DataFrame]
    scores: pd.DataFrame
    problems: tuple[DataProblem, ...]
    exclusions: pd.DataFrame
    flow: pd.DataFrame
    files: Mapping[str, str] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)
    trial_start: dt.date | None = None
    trial_end: dt.date | None = None

    @property
    def errors(self) -> tuple[DataProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[DataProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(p.code for p in self.problems)

    @property
    def arms(self) -> dict[str, str]:
        a = self.tables.get("allocation")
        if a is None or a.empty:
            return {}
        return dict(zip(a["cluster"].astype(str), a["arm"].astype(str), strict=True))

    def problems_frame(self) -> pd.DataFrame:
        cols = ["file", "row", "column", "code", "message", "hint", "severity"]
        return pd.DataFrame(
            [{k: p.to_dict()[k] for k in cols} for p in self.problems], columns=cols
        )

    def to_frame(self) -> pd.DataFrame:
        """The problems as a tidy table."""
        return self.problems_frame()

    def row_counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.tables.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: ok, problems, exclusions, flow, row counts (not the tables)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "trialkit_version": __version__,
            "ok": self.ok,
            "n_errors": len(self.errors),
            "n_warnings": len(self.warnings),
            "problems": [p.to_dict() for p in self.problems],
            "exclusions": self.exclusions.astype(object).to_dict(orient="records"),
            "flow": [
                {k: (int(v) if k == "n" else v) for k, v in r.items()}
                for r in self.flow.astype(object).to_dict(orient="records")
            ],
            "row_counts": self.row_counts(),
            "files": dict(self.files),
            "inputs": dict(self.inputs),
        }

    def raise_for_errors(self) -> None:
        """Raise :class:`DataError` listing every problem when any error exists."""
        if self.errors:
            raise DataError(
                f"{len(self.errors)} error(s) and {len(self.warnings)} warning(s) in the trial data",
                [p.to_problem() for p in self.problems],
            )

    def summary(self) -> str:
        lines = [
            f"Trial data: {'valid' if self.ok else 'INVALID'} "
            f"({len(self.errors)} errors, {len(self.warnings)} warnings)",
        ]
        for name, n in self.row_counts().items():
            lines.append(f"  {name}: {n} rows")
        lines.append(f"  exclusions: {len(self.exclusions)} records")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"TrialData(ok={self.ok}, errors={len(self.errors)}, warnings={len(self.warnings)}, "
            f"rows={self.row_counts()})"
        )


# ============================================================================ collector
class _Collector:
    def __init__(self) -> None:
        self.items: list[DataProblem] = []

    def add(
        self,
        file: str,
        row: int | None,
        column: str | None,
        code: str,
        message: str,
        hint: str = "",
        severity: str = "error",
    ) -> None:
        self.items.append(
            DataProblem(
                file=file,
                row=row,
                column=column,
                code=code,
                message=message,
                hint=hint,
                severity="warning" if severity == "warning" else "error",
            )
        )

    def rows(
        self,
        file: str,
        positions: np.ndarray,
        column: str | None,
        code: str,
        message: Callable[[int], str],
        hint: str = "",
        severity: str = "error",
    ) -> None:
        """One problem per position (0-based) up to MAX_ROWS_PER_CODE, then a summary."""
        pos = np.flatnonzero(positions) if positions.dtype == bool else np.asarray(positions)
        if len(pos) == 0:
            return
        for p in pos[:MAX_ROWS_PER_CODE]:
            self.add(file, int(p) + 1, column, code, message(int(p)), hint, severity)
        rest = len(pos) - MAX_ROWS_PER_CODE
        if rest > 0:
            self.add(
                file,
                None,
                column,
                code,
                f"{rest} more row(s) with the same problem (first listed rows above)",
                hint,
                severity,
            )

    @property
    def n_errors(self) -> int:
        return sum(p.severity == "error" for p in self.items)


def _str(s: pd.Series) -> np.ndarray:
    return np.asarray(s.astype(object).where(s.notna(), None).to_numpy())


def _dates(s: pd.Series) -> np.ndarray:
    """datetime64[D] numpy array (NaT for missing) from a date32 column."""
    if len(s) == 0:
        return np.array([], dtype="datetime64[D]")
    arr = pa.chunked_array(pa.array(s.array)).cast(pa.date32()).cast(pa.int32())
    days = arr.to_numpy(zero_copy_only=False)
    nulls = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    out = (
        np.where(nulls, 0, np.nan_to_num(np.asarray(days, dtype=float)))
        .astype("int64")
        .astype("datetime64[D]")
    )
    out[nulls] = np.datetime64("NaT")
    return out


def _val(v: Any) -> str:
    return "missing" if v is None or (isinstance(v, float) and np.isnan(v)) else repr(v)


# ============================================================================ main
def validate(
    protocol: Protocol,
    data_dir: str | os.PathLike[str],
    allocation_dir: str | os.PathLike[str] | None = None,
    *,
    custom_instruments: Mapping[str, Instrument] | None = None,
    score15_reverse: str = "strengths",
) -> TrialData:
    """Read and validate a trial data directory.

    Parameters
    ----------
    protocol : Protocol
        The trial protocol (timepoints, window, outcomes, covariates, arms).
    data_dir : path-like
        Folder with ``clusters``, ``keyworkers``, ``families``, ``measurements``
        and (optionally) ``delivery`` tables as .csv, .parquet or .xlsx.
    allocation_dir : path-like, optional
        Output of ``trialkit randomise`` (holds ``allocation.csv`` with ``cluster, arm``)
        or the CSV file itself.  Without it, an ``arm`` column in ``clusters`` is used.
    custom_instruments : mapping, optional
        Instruments beyond the built-in ones, by id.
    score15_reverse : str
        SCORE-15 coding direction (see :func:`trialkit.data.scoring.score`).

    Returns
    -------
    TrialData
        Never raises for problems in the data; see ``TrialData.ok``.

    Raises
    ------
    DataError
        Only when ``data_dir`` is not a directory.
    """
    col = _Collector()
    found, amb = find_tables(data_dir, TABLES)
    col.items.extend(amb)
    inputs: dict[str, str] = {}
    files: dict[str, str] = {}
    raw: dict[str, pd.DataFrame] = {}
    root = Path(data_dir)
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
        inputs[path.name] = sha256_file(path)
        ids = tuple(c for c, k in COLUMNS[name].items() if k == "id")
        try:
            raw[name] = read_table(path, ids)
        except DataError as err:
            for p in err.problems:
                col.add(path.name, None, None, p.code, p.message, p.hint)

    tables: dict[str, pd.DataFrame] = {}
    for name, frame in raw.items():
        tables[name] = _convert_table(name, frame, files[name], protocol, col)

    start = protocol.trial.start
    end = protocol.trial.end
    allocation = _read_allocation(
        protocol, allocation_dir, tables.get("clusters"), files, inputs, col
    )
    tables["allocation"] = allocation

    ctx = _Context(
        protocol, tables, files, col, start, end, custom_instruments or {}, score15_reverse
    )
    ctx.check_clusters()
    ctx.check_keyworkers()
    ctx.check_families()
    scores = ctx.check_measurements()
    ctx.check_delivery()
    for name in TABLES:
        tables.setdefault(name, _empty(name))
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


def _empty(name: str) -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype=STRING) for c in COLUMNS[name]})
    for c, k in COLUMNS[name].items():
        if k != "id" and k != "str" and k != "month":
            out[c] = convert(pd.Series([], dtype=object), k)[0]
    return out


def _convert_table(
    name: str, frame: pd.DataFrame, file: str, protocol: Protocol, col: _Collector
) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in REQUIRED[name] if c not in frame.columns]
    for c in missing:
        col.add(
            file,
            None,
            c,
            f"{name}.missing_column",
            f"column '{c}' must be present in {file}",
            f"add the column; required columns: {', '.join(REQUIRED[name])}",
        )
    spec = dict(COLUMNS[name])
    if name == "measurements":
        for c in item_columns(MAX_ITEMS):
            spec[c] = "float"
    if name == "clusters":
        for cov in protocol.data.covariates:
            if cov.level.value == "la":
                spec.setdefault(cov.name, "str" if cov.type == "categorical" else "float")
    if name == "keyworkers":
        for cov in protocol.data.covariates:
            if cov.level.value == "keyworker":
                spec.setdefault(cov.name, "str" if cov.type == "categorical" else "float")
    if name == "families":
        for cov in protocol.data.covariates:
            if cov.level.value == "family":
                spec.setdefault(cov.name, "str" if cov.type == "categorical" else "float")
    out: dict[str, pd.Series] = {}
    for c in frame.columns:
        kind = spec.get(c)
        if kind is None:
            out[c] = frame[c]
            continue
        conv, bad = convert(frame[c], kind)
        if bad.any():
            values = frame[c]
            label = {
                "date": "an ISO date (YYYY-MM-DD)",
                "float": "a number",
                "int": "a whole number",
                "bool": "true or false",
                "month": "a month YYYY-MM",
            }[kind]
            code = (
                f"{name}.item_not_numeric"
                if c.startswith("item_")
                else f"{name}.invalid_{'date' if kind == 'date' else 'value'}"
            )
            col.rows(
                file,
                bad,
                c,
                code,
                lambda p, v=values, lab=label, cc=c: f"'{cc}' must be {lab}; got {_val(v.iloc[p])}",  # type: ignore[misc]
                "correct the cell (leave it empty if unknown)",
            )
        out[c] = conv
    for c, kind in COLUMNS[name].items():
        if c not in out:
            out[c] = _empty(name)[c].reindex(range(len(frame)))
            if kind in ("id", "str", "month"):
                out[c] = pd.Series(pd.NA, index=range(len(frame)), dtype=STRING)
    result = pd.DataFrame(out)
    for c in NOT_NULL[name]:
        if c in frame.columns:
            nul = ~np.asarray(result[c].notna().to_numpy(dtype=bool, na_value=False))
            col.rows(
                file,
                nul,
                c,
                f"{name}.missing_value",
                lambda p, cc=c: f"'{cc}' must not be empty",  # type: ignore[misc]
                "fill in the value",
            )
    return result


def _read_allocation(
    protocol: Protocol,
    allocation_dir: str | os.PathLike[str] | None,
    clusters: pd.DataFrame | None,
    files: dict[str, str],
    inputs: dict[str, str],
    col: _Collector,
) -> pd.DataFrame:
    empty = pd.DataFrame({"cluster": pd.Series(dtype=STRING), "arm": pd.Series(dtype=STRING)})
    arms = set(protocol.arm_ids)
    cl_arm: dict[str, str] = {}
    cfile = files.get("clusters", "clusters.csv")
    if clusters is not None and "arm" in clusters.columns:
        ids = _str(clusters["la_id"])
        a = _str(convert(clusters["arm"], "str")[0])
        cl_arm = {i: x for i, x in zip(ids, a, strict=True) if i is not None and x is not None}
    if allocation_dir is None:
        if not cl_arm:
            col.add(
                "allocation.csv",
                None,
                None,
                "allocation.missing",
                "no allocation given and clusters has no 'arm' column: flow and analyses need arms",
                "pass --allocation DIR (the output of 'trialkit randomise')",
                "warning",
            )
            return empty
        alloc = pd.DataFrame({"cluster": list(cl_arm), "arm": list(cl_arm.values())}).astype(STRING)
        bad = [k for k, v in cl_arm.items() if v not in arms]
        for k in bad:
            col.add(
                cfile,
                None,
                "arm",
                "allocation.unknown_arm",
                f"arm of LA {k} must be one of {', '.join(sorted(arms))}; got {cl_arm[k]!r}",
                "use the protocol's arm ids",
            )
        return alloc
    p = Path(allocation_dir)
    path = p if p.is_file() else p / "allocation.csv"
    if not path.is_file():
        col.add(
            path.name,
            None,
            None,
            "allocation.missing",
            f"allocation file '{path}' must exist",
            "pass the directory written by 'trialkit randomise'",
        )
        return empty
    files["allocation"] = path.name
    inputs[path.name] = sha256_file(path)
    try:
        a = pd.read_csv(path, dtype=str, keep_default_na=False)  # type: ignore[assignment]
    except (ValueError, OSError) as exc:
        col.add(
            path.name,
            None,
            None,
            "data.unreadable",
            f"allocation must be a readable CSV; got {exc}",
            "re-create it with 'trialkit randomise'",
        )
        return empty
    if not {"cluster", "arm"} <= set(a.columns):  # type: ignore[attr-defined]
        col.add(
            path.name,
            None,
            None,
            "allocation.missing_column",
            "allocation.csv must have columns 'cluster' and 'arm'",
            "use the file from 'trialkit randomise'",
        )
        return empty
    a = a[["cluster", "arm"]].apply(lambda s: s.str.strip()).astype(STRING)  # type: ignore[attr-defined]
    cl = _str(a["cluster"])
    ar = _str(a["arm"])
    dup = pd.Series(cl).duplicated(keep="first").to_numpy()
    col.rows(
        path.name,
        dup,
        "cluster",
        "allocation.duplicate_cluster",
        lambda i: f"cluster must appear once in the allocation; got {cl[i]!r} again",
        "fix the allocation file",
    )
    unknown = np.array([x not in arms for x in ar], dtype=bool)
    col.rows(
        path.name,
        unknown,
        "arm",
        "allocation.unknown_arm",
        lambda i: f"arm must be one of {', '.join(sorted(arms))}; got {ar[i]!r}",
        "use the protocol's arm ids",
    )
    amap = dict(zip(cl, ar, strict=True))
    if clusters is not None and "arm" in clusters.columns:
        ids = _str(clusters["la_id"])
        a2 = _str(convert(clusters["arm"], "str")[0])
        contra = np.array(
            [i in amap and x is not None and amap[i] != x for i, x in zip(ids, a2, strict=True)],
            dtype=bool,
        )
        col.rows(
            cfile,
            contra,
            "arm",
            "clusters.arm_contradicts_allocation",
            lambda i: (
                f"arm of {ids[i]} must match the allocation ({amap[ids[i]]!r}); got {a2[i]!r}"
            ),
            "correct the arm column or drop it (the allocation is authoritative)",
        )
    return a.drop_duplicates("cluster").reset_index(drop=True)


class _Context:
    def __init__(
        self,
        protocol: Protocol,
        tables: dict[str, pd.DataFrame],
        files: dict[str, str],
        col: _Collector,
        start: dt.date | None,
        end: dt.date | None,
        custom: Mapping[str, Instrument],
        score15_reverse: str,
    ) -> None:
        self.p = protocol
        self.t = tables
        self.f = files
        self.col = col
        self.start = np.datetime64(start, "D") if start else None
        self.end = np.datetime64(end, "D") if end else None
        self.custom = custom
        self.score15_reverse = score15_reverse
        self.la_ids: set[str] = set()
        self.kw_la: dict[str, str] = {}
        self.fam_ids: set[str] = set()

    def file(self, name: str) -> str:
        return self.f.get(name, f"{name}.csv")

    def window(
        self,
        name: str,
        column: str,
        d: np.ndarray,
        severity: str = "error",
        only_after_end: bool = False,
    ) -> None:
        if self.start is None and self.end is None:
            return
        ok = ~np.isnat(d)
        out = np.zeros(len(d), dtype=bool)
        if self.start is not None and not only_after_end:
            out |= ok & (d < self.start)
        if self.end is not None:
            out |= ok & (d > self.end)
        self.col.rows(
            self.file(name),
            out,
            column,
            f"{name}.date_outside_window",
            lambda i: (
                f"'{column}' must be within the trial window {self.start} to {self.end}; got {d[i]}"
            ),
            "check the date (typo in the year?)",
            severity,
        )

    # ------------------------------------------------------------------ clusters
    def check_clusters(self) -> None:
        c = self.t.get("clusters")
        if c is None:
            return
        f = self.file("clusters")
        ids = _str(c["la_id"])
        dup = pd.Series(ids).duplicated(keep="first").to_numpy() & (ids != None)  # noqa: E711
        self.col.rows(
            f,
            dup,
            "la_id",
            "clusters.duplicate_id",
            lambda i: f"la_id must be unique; got {ids[i]!r} again",
            "remove or rename the duplicate LA",
        )
        self.la_ids = {x for x in ids if x is not None}
        for cov in self.p.data.covariates:
            if cov.level.value != "la":
                continue
            if cov.name not in c.columns:
                self.col.add(
                    f,
                    None,
                    cov.name,
                    "clusters.missing_covariate",
                    f"covariate '{cov.name}' declared in the protocol must be a column of {f}",
                    "add the column or remove the covariate from the protocol",
                )
                continue
            v = c[cov.name]
            if cov.type == "categorical" and cov.levels:
                vals = _str(v)
                bad = np.array([x is not None and x not in cov.levels for x in vals], dtype=bool)
                self.col.rows(
                    f,
                    bad,
                    cov.name,
                    "clusters.invalid_level",
                    lambda i, vv=vals, cv=cov: (  # type: ignore[misc]
                        f"'{cv.name}' must be one of {', '.join(cv.levels)}; got {vv[i]!r}"
                    ),
                    "use the levels declared in the protocol",
                )
            nul = ~np.asarray(v.notna().to_numpy(dtype=bool, na_value=False))
            self.col.rows(
                f,
                nul,
                cov.name,
                "clusters.missing_covariate_value",
                lambda i, cv=cov: f"'{cv.name}' is missing for {ids[i]!r}",  # type: ignore[misc]
                "LA covariates are needed for adjusted analyses",
                "warning",
            )
        alloc = self.t["allocation"]
        if not alloc.empty:
            acl = set(_str(alloc["cluster"]))
            absent = np.array([x is not None and x not in acl for x in ids], dtype=bool)
            self.col.rows(
                f,
                absent,
                "la_id",
                "clusters.not_in_allocation",
                lambda i: f"LA {ids[i]!r} must appear in the allocation",
                "check the LA id or the allocation directory",
            )
            for x in sorted(acl - self.la_ids):
                self.col.add(
                    self.f.get("allocation", "allocation.csv"),
                    None,
                    "cluster",
                    "allocation.cluster_without_data",
                    f"randomised LA {x!r} has no row in {f}: it is counted as lost in the flow",
                    "add the LA to clusters if it took part",
                    "warning",
                )

    # ------------------------------------------------------------------ keyworkers
    def check_keyworkers(self) -> None:
        k = self.t.get("keyworkers")
        if k is None:
            return
        f = self.file("keyworkers")
        ids = _str(k["keyworker_id"])
        las = _str(k["la_id"])
        s = pd.DataFrame({"id": ids, "la": las})
        first_la = s.groupby("id", sort=False)["la"].transform("first").to_numpy()
        dup = s.duplicated("id", keep="first").to_numpy() & (ids != None)  # noqa: E711
        other = dup & (first_la != las)
        self.col.rows(
            f,
            other,
            "la_id",
            "keyworkers.in_two_las",
            lambda i: (
                f"keyworker {ids[i]!r} must belong to one LA; listed in {first_la[i]!r} and {las[i]!r}"
            ),
            "a keyworker who moved LA needs a new id; keep one row per keyworker",
        )
        self.col.rows(
            f,
            dup & ~other,
            "keyworker_id",
            "keyworkers.duplicate_id",
            lambda i: f"keyworker_id must be unique; got {ids[i]!r} again",
            "remove the duplicate row",
        )
        if self.la_ids:
            unk = np.array([x is not None and x not in self.la_ids for x in las], dtype=bool)
            self.col.rows(
                f,
                unk,
                "la_id",
                "keyworkers.unknown_la",
                lambda i: f"la_id must be an LA of the clusters table; got {las[i]!r}",
                "check the LA id",
            )
        roles = _str(k["role"])
        bad = np.array([r is not None and r not in ROLES for r in roles], dtype=bool)
        self.col.rows(
            f,
            bad,
            "role",
            "keyworkers.invalid_value",
            lambda i: f"'role' must be one of {', '.join(ROLES)}; got {roles[i]!r}",
            "use keyworker or champion",
        )
        sd = _dates(k["start_date"])
        ld = _dates(k["leave_date"])
        order = ~np.isnat(sd) & ~np.isnat(ld) & (ld < sd)
        self.col.rows(
            f,
            order,
            "leave_date",
            "keyworkers.dates_out_of_order",
            lambda i: f"leave_date must not be before start_date ({sd[i]}); got {ld[i]}",
            "check both dates",
        )
        if self.end is not None:
            late = ~np.isnat(sd) & (sd > self.end)
            self.col.rows(
                f,
                late,
                "start_date",
                "keyworkers.date_outside_window",
                lambda i: f"start_date must be on or before the trial end {self.end}; got {sd[i]}",
                "keyworkers must start before the trial ends",
            )
        if self.start is not None:
            early = ~np.isnat(ld) & (ld < self.start)
            self.col.rows(
                f,
                early,
                "leave_date",
                "keyworkers.left_before_start",
                lambda i: f"keyworker left ({ld[i]}) before the trial start {self.start}",
                "check the date or remove the keyworker",
                "warning",
            )
        ye = k["years_experience"].to_numpy(dtype=float, na_value=np.nan)
        neg = ~np.isnan(ye) & (ye < 0)
        self.col.rows(
            f,
            neg,
            "years_experience",
            "keyworkers.invalid_value",
            lambda i: f"'years_experience' must be ≥ 0; got {ye[i]}",
            "correct the value",
        )
        # first row of each keyworker wins (a second LA is reported above)
        first = s.dropna().drop_duplicates("id")
        self.kw_la = {str(k): str(v) for k, v in zip(first["id"], first["la"], strict=True)}

    # ------------------------------------------------------------------ families
    def check_families(self) -> None:
        fm = self.t.get("families")
        if fm is None:
            return
        f = self.file("families")
        ids = _str(fm["family_id"])
        kws = _str(fm["keyworker_id"])
        las = _str(fm["la_id"])
        dup = pd.Series(ids).duplicated(keep="first").to_numpy() & (ids != None)  # noqa: E711
        self.col.rows(
            f,
            dup,
            "family_id",
            "families.duplicate_id",
            lambda i: f"family_id must be unique; got {ids[i]!r} again",
            "remove the duplicate row",
        )
        self.fam_ids = {x for x in ids if x is not None}
        if self.la_ids:
            unk = np.array([x is not None and x not in self.la_ids for x in las], dtype=bool)
            self.col.rows(
                f,
                unk,
                "la_id",
                "families.unknown_la",
                lambda i: f"la_id must be an LA of the clusters table; got {las[i]!r}",
                "check the LA id",
            )
        if "keyworkers" in self.t:
            kwl = pd.Series(kws).map(self.kw_la).to_numpy()
            unk = np.array([x is not None for x in kws], dtype=bool) & pd.isna(kwl)
            self.col.rows(
                f,
                unk,
                "keyworker_id",
                "families.unknown_keyworker",
                lambda i: (
                    f"keyworker_id must be a keyworker of the keyworkers table; got {kws[i]!r}"
                ),
                "check the keyworker id",
            )
            other = (
                ~pd.isna(kwl) & np.array([x is not None for x in las], dtype=bool) & (kwl != las)
            )
            self.col.rows(
                f,
                other,
                "la_id",
                "families.keyworker_in_other_la",
                lambda i: f"family's LA must be its keyworker's LA ({kwl[i]!r}); got {las[i]!r}",
                "correct the family's LA or keyworker",
            )
        r = _dates(fm["referral_date"])
        c = _dates(fm["consent_date"])
        w = _dates(fm["withdrawal_date"])
        o1 = ~np.isnat(r) & ~np.isnat(c) & (c < r)
        self.col.rows(
            f,
            o1,
            "consent_date",
            "families.dates_out_of_order",
            lambda i: f"consent_date must not be before referral_date ({r[i]}); got {c[i]}",
            "check the dates",
        )
        base = np.where(np.isnat(c), r, c)
        o2 = ~np.isnat(base) & ~np.isnat(w) & (w < base)
        self.col.rows(
            f,
            o2,
            "withdrawal_date",
            "families.dates_out_of_order",
            lambda i: (
                f"withdrawal_date must not be before consent/referral ({base[i]}); got {w[i]}"
            ),
            "check the dates",
        )
        self.window("families", "consent_date", c)
        self.window("families", "withdrawal_date", w)
        self.window("families", "referral_date", r, only_after_end=True)
        reason = _str(fm["withdrawal_reason"])
        nor = ~np.isnat(w) & np.array([x is None for x in reason], dtype=bool)
        self.col.rows(
            f,
            nor,
            "withdrawal_reason",
            "families.withdrawal_without_reason",
            lambda i: "withdrawal_reason should be given when withdrawal_date is set",
            "record why the family withdrew (CONSORT reports reasons)",
            "warning",
        )
        nod = np.isnat(w) & np.array([x is not None for x in reason], dtype=bool)
        self.col.rows(
            f,
            nod,
            "withdrawal_date",
            "families.reason_without_date",
            lambda i: f"withdrawal_date should be given with reason {reason[i]!r}",
            "add the withdrawal date",
            "warning",
        )

    # ------------------------------------------------------------------ measurements
    def check_measurements(self) -> pd.DataFrame:
        empty = pd.DataFrame(
            {
                "outcome_id": pd.Series(dtype=object),
                "entity_id": pd.Series(dtype=object),
                "level": pd.Series(dtype=object),
                "timepoint": pd.Series(dtype=object),
                "value": pd.Series(dtype=float),
                "n_answered": pd.Series(dtype="int64"),
            }
        )
        m = self.t.get("measurements")
        if m is None:
            return empty
        f = self.file("measurements")
        n = len(m)
        level = m["level"].astype(STRING)
        lv = to_object(level)
        ent_o = to_object(m["entity_id"])
        tp_o = to_object(m["timepoint"])
        inst_o = to_object(m["instrument"])
        badl = (
            np.array([x is not None and x not in LEVELS for x in lv], dtype=bool)
            if n < 0
            else (
                ~_isin(lv, LEVELS) & np.asarray(level.notna().to_numpy(dtype=bool, na_value=False))
            )
        )
        self.col.rows(
            f,
            badl,
            "level",
            "measurements.invalid_value",
            lambda i: f"'level' must be family or keyworker; got {lv[i]!r}",
            "use family or keyworker",
        )
        ent = m["entity_id"].astype(STRING)
        is_fam = lv == "family"
        is_kw = lv == "keyworker"
        if "families" in self.t:
            known = np.asarray(_isin(ent, self.fam_ids))
            unk = is_fam & ~known & np.asarray(ent.notna().to_numpy(dtype=bool, na_value=False))
            self.col.rows(
                f,
                unk,
                "entity_id",
                "measurements.unknown_entity",
                lambda i: (
                    f"entity_id of a family measurement must be a family_id; got {ent.iloc[i]!r}"
                ),
                "check the id (or the level column)",
            )
        if "keyworkers" in self.t:
            known = np.asarray(_isin(ent, self.kw_la))
            unk = is_kw & ~known & np.asarray(ent.notna().to_numpy(dtype=bool, na_value=False))
            self.col.rows(
                f,
                unk,
                "entity_id",
                "measurements.unknown_entity",
                lambda i: (
                    f"entity_id of a keyworker measurement must be a keyworker_id; got {ent.iloc[i]!r}"
                ),
                "check the id (or the level column)",
            )
        inst = m["instrument"].astype(STRING)
        known_inst = list(scoring.INSTRUMENTS) + list(self.custom)
        badi = ~_isin(inst_o, known_inst) & np.asarray(
            inst.notna().to_numpy(dtype=bool, na_value=False)
        )
        self.col.rows(
            f,
            badi,
            "instrument",
            "measurements.unknown_instrument",
            lambda i: f"'instrument' must be one of {', '.join(known_inst)}; got {inst.iloc[i]!r}",
            "use a built-in instrument id or declare a custom instrument",
        )
        tp = m["timepoint"].astype(STRING)
        tps = list(self.p.trial.timepoints)
        badt = ~_isin(tp_o, tps) & np.asarray(tp.notna().to_numpy(dtype=bool, na_value=False))
        self.col.rows(
            f,
            badt,
            "timepoint",
            "measurements.unknown_timepoint",
            lambda i: f"'timepoint' must be one of {', '.join(tps)}; got {tp.iloc[i]!r}",
            "use the protocol's timepoints",
        )
        key = pd.DataFrame({"e": ent_o, "l": lv, "i": inst_o, "t": tp_o}, dtype=object)
        dup = key.duplicated(keep="first").to_numpy() & ~key.isna().any(axis=1).to_numpy()
        self.col.rows(
            f,
            dup,
            "timepoint",
            "measurements.duplicate",
            lambda i: (
                f"one measurement per entity, instrument and timepoint; got {ent.iloc[i]!r} "
                f"{inst.iloc[i]} {tp.iloc[i]} again"
            ),
            "remove the repeated row or fix its timepoint",
        )
        d = _dates(m["date"])
        self.window("measurements", "date", d)
        # dates versus consent / withdrawal / leaving
        if "families" in self.t and is_fam.any():
            fm = self.t["families"]
            fidx = pd.Index(_str(fm["family_id"])).drop_duplicates()
            fm1 = fm.drop_duplicates("family_id")
            pos = fidx.get_indexer(ent_o)
            cons = _dates(fm1["consent_date"])
            wd = _dates(fm1["withdrawal_date"])
            ok = (pos >= 0) & is_fam
            cc = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
            ww = cc.copy()
            cc[ok] = cons[pos[ok]]
            ww[ok] = wd[pos[ok]]
            before = ~np.isnat(d) & ~np.isnat(cc) & (d < cc)
            self.col.rows(
                f,
                before,
                "date",
                "measurements.before_consent",
                lambda i: f"measurement date must not be before consent ({cc[i]}); got {d[i]}",
                "data collected before consent cannot be used; check the date",
            )
            nocons = ok & np.isnat(cc)
            self.col.rows(
                f,
                nocons,
                "entity_id",
                "measurements.without_consent",
                lambda i: f"family {ent.iloc[i]!r} has a measurement but no consent_date",
                "record the consent date or remove the measurement",
            )
            after = ~np.isnat(d) & ~np.isnat(ww) & (d > ww)
            self.col.rows(
                f,
                after,
                "date",
                "measurements.after_withdrawal",
                lambda i: f"measurement dated {d[i]} after the family withdrew ({ww[i]})",
                "check whether the family withdrew from data collection",
                "warning",
            )
        # items
        items = item_columns(MAX_ITEMS)
        present_cols = [c for c in items if c in m.columns]
        last = np.zeros(n, dtype=np.int64)
        mats: dict[int, np.ndarray] = {}
        for j, c in enumerate(items, start=1):
            if c in m.columns:
                v = m[c].to_numpy(dtype=float, na_value=np.nan)
                mats[j] = v
                last = np.where(~np.isnan(v), j, last)
        del present_cols
        scores_out: list[pd.DataFrame] = []
        inst_arr = inst_o
        codes, uniq = pd.factorize(inst_arr, use_na_sentinel=True)
        total = m["total"].to_numpy(dtype=float, na_value=np.nan)
        for k, name in enumerate(uniq):
            if name not in known_inst:
                continue
            ins = scoring.get_instrument(name, self.custom)
            rows = np.flatnonzero(codes == k)
            extra = last[rows] > ins.n_items
            self.col.rows(
                f,
                rows[extra],
                f"item_{ins.n_items + 1}",
                "measurements.wrong_item_count",
                lambda i, ii=ins: (  # type: ignore[misc]
                    f"{ii.id} has {ii.n_items} items; got a response in item_{last[i]}"
                ),
                "check the instrument column or move the responses",
            )
            if any(j not in mats for j in range(1, ins.n_items + 1)) and not ins.total_given:
                miss = [f"item_{j}" for j in range(1, ins.n_items + 1) if j not in mats]
                self.col.add(
                    f,
                    None,
                    miss[0],
                    "measurements.wrong_item_count",
                    f"{ins.id} has {ins.n_items} items; columns {', '.join(miss[:5])}"
                    f"{'…' if len(miss) > 5 else ''} are absent",
                    "add the item columns",
                )
            x = np.full((len(rows), ins.n_items), np.nan)
            for j in range(1, ins.n_items + 1):
                if j in mats:
                    x[:, j - 1] = mats[j][rows]
            present = ~np.isnan(x)
            if ins.allowed:
                bad = present & ~np.isin(x, np.asarray(ins.allowed))
                rule = f"one of {', '.join(f'{a:g}' for a in ins.allowed)}"
            else:
                bad = present & ((x < ins.low) | (x > ins.high))
                if ins.integer:
                    bad |= present & (x != np.round(x))
                rule = f"{'a whole number ' if ins.integer else ''}from {ins.low:g} to {ins.high:g}"
            if bad.any():
                rr, cc2 = np.nonzero(bad)
                for j in np.unique(cc2):
                    sel = rows[rr[cc2 == j]]
                    self.col.rows(
                        f,
                        sel,
                        f"item_{j + 1}",
                        "measurements.item_out_of_range",
                        lambda i, jj=j, rl=rule, ii=ins: (  # type: ignore[misc]
                            f"{ii.id} item_{jj + 1} must be {rl}; got {mats[jj + 1][i]:g}"
                        ),
                        "correct the response or leave it empty",
                    )
                x[bad] = np.nan
            tot = total[rows]
            if ins.total_given and ins.total_range:
                lo, hi = ins.total_range
                badt2 = ~np.isnan(tot) & ((tot < lo) | (tot > hi))
                self.col.rows(
                    f,
                    rows[badt2],
                    "total",
                    "measurements.total_out_of_range",
                    lambda i, a=lo, b=hi: f"total must be from {a:g} to {b:g}; got {total[i]:g}",  # type: ignore[misc]
                    "correct the total",
                )
                tot = np.where(badt2, np.nan, tot)
            elif (~np.isnan(tot)).any():
                self.col.rows(
                    f,
                    rows[~np.isnan(tot)],
                    "total",
                    "measurements.total_ignored",
                    lambda i, ii=ins: (  # type: ignore[misc]
                        f"{ii.id} scores are computed from the items; the given total is ignored"
                    ),
                    "leave 'total' empty except for ORS/SRS",
                    "warning",
                )
            if ins.id == "SCORE-15" and self.score15_reverse != "strengths":
                ins = scoring._score15(self.score15_reverse)
            res = scoring.score_matrix(x, ins)
            if ins.total_given and "total" in res:
                res["total"] = np.where(np.isnan(res["total"]), tot, res["total"])
            noresp = (present.sum(axis=1) == 0) & np.isnan(tot)
            self.col.rows(
                f,
                rows[noresp],
                "item_1",
                "measurements.no_responses",
                lambda i: "measurement has no item responses and no total",
                "remove the row or enter the responses",
                "warning",
            )
            for oc in self.p.outcomes:
                if oc.instrument != name and not (oc.instrument == "custom" and oc.score == name):
                    continue
                scale = oc.score if oc.instrument != "custom" else "total"
                if scale not in res:
                    self.col.add(
                        f,
                        None,
                        "instrument",
                        "measurements.unknown_scale",
                        f"outcome '{oc.id}' asks for scale '{scale}' of {name}, which has "
                        f"{', '.join(ins.scale_names)}",
                        "fix the outcome's score in the protocol",
                    )
                    continue
                lvl_ok = lv[rows] == oc.level.value
                sel = rows[lvl_ok]
                scores_out.append(
                    pd.DataFrame(
                        {
                            "outcome_id": oc.id,
                            "entity_id": ent_o[sel],
                            "level": oc.level.value,
                            "timepoint": tp_o[sel],
                            "value": res[scale][lvl_ok],
                            "n_answered": res["n_answered"][lvl_ok].astype("int64"),
                        }
                    )
                )
        if not scores_out:
            return empty
        sc = pd.concat(scores_out, ignore_index=True)
        sc["entity_id"] = sc["entity_id"].astype(object)
        for c in ("outcome_id", "level", "timepoint"):
            sc[c] = sc[c].astype("category")
        sc = sc[sc["timepoint"].notna() & sc["entity_id"].notna()]
        sc = sc.drop_duplicates(["outcome_id", "entity_id", "timepoint"], keep="first").reset_index(
            drop=True
        )
        return sc

    # ------------------------------------------------------------------ delivery
    def check_delivery(self) -> None:
        dlv = self.t.get("delivery")
        if dlv is None:
            return
        f = self.file("delivery")
        rt = _str(dlv["record_type"])
        bad = np.array([x is not None and x not in RECORD_TYPES for x in rt], dtype=bool)
        self.col.rows(
            f,
            bad,
            "record_type",
            "delivery.unknown_record_type",
            lambda i: f"'record_type' must be one of {', '.join(RECORD_TYPES)}; got {rt[i]!r}",
            "use one of the five record types",
        )
        las = _str(dlv["la_id"])
        if self.la_ids:
            unk = np.array([x is not None and x not in self.la_ids for x in las], dtype=bool)
            self.col.rows(
                f,
                unk,
                "la_id",
                "delivery.unknown_la",
                lambda i: f"la_id must be an LA of the clusters table; got {las[i]!r}",
                "check the LA id",
            )
        kws = _str(dlv["keyworker_id"])
        kwl = np.array([self.kw_la.get(x) if x is not None else None for x in kws], dtype=object)
        if self.kw_la:
            unk = np.array([x is not None and x not in self.kw_la for x in kws], dtype=bool)
            self.col.rows(
                f,
                unk,
                "keyworker_id",
                "delivery.unknown_keyworker",
                lambda i: (
                    f"keyworker_id must be a keyworker of the keyworkers table; got {kws[i]!r}"
                ),
                "check the keyworker id",
            )
            mism = np.array(
                [a is not None and b is not None and a != b for a, b in zip(kwl, las, strict=True)],
                dtype=bool,
            )
            self.col.rows(
                f,
                mism,
                "la_id",
                "delivery.la_mismatch",
                lambda i: f"la_id must be the keyworker's LA ({kwl[i]!r}); got {las[i]!r}",
                "correct the LA or the keyworker",
            )
        fams = _str(dlv["family_id"])
        if self.fam_ids:
            unk = np.array([x is not None and x not in self.fam_ids for x in fams], dtype=bool)
            self.col.rows(
                f,
                unk,
                "family_id",
                "delivery.unknown_family",
                lambda i: f"family_id must be a family of the families table; got {fams[i]!r}",
                "check the family id",
            )
        for rtype, cols in DELIVERY_NOT_NULL.items():
            is_t = np.array([x == rtype for x in rt], dtype=bool)
            if not is_t.any():
                continue
            for c in cols:
                nul = is_t & ~np.asarray(dlv[c].notna().to_numpy(dtype=bool, na_value=False))
                self.col.rows(
                    f,
                    nul,
                    c,
                    "delivery.missing_value",
                    lambda i, cc=c, r=rtype: f"'{cc}' must be given for {r} records",  # type: ignore[misc]
                    "fill in the value",
                )
        course = _str(dlv["course"])
        badc = np.array([x is not None and x not in COURSES for x in course], dtype=bool)
        self.col.rows(
            f,
            badc,
            "course",
            "delivery.invalid_value",
            lambda i: f"'course' must be cpd or foundation; got {course[i]!r}",
            "use cpd or foundation",
        )
        day = dlv["day"].to_numpy(dtype=float, na_value=np.nan)
        self.col.rows(
            f,
            ~np.isnan(day) & (day < 1),
            "day",
            "delivery.invalid_value",
            lambda i: f"'day' must be a whole number ≥ 1; got {day[i]:g}",
            "number course days from 1",
        )
        for c in ("fte", "duration_minutes"):
            v = dlv[c].to_numpy(dtype=float, na_value=np.nan)
            self.col.rows(
                f,
                ~np.isnan(v) & (v < 0),
                c,
                "delivery.invalid_value",
                lambda i, vv=v, cc=c: f"'{cc}' must be ≥ 0; got {vv[i]:g}",  # type: ignore[misc]
                "correct the value",
            )
        self.window("delivery", "date", _dates(dlv["date"]))
        month = _str(dlv["month"])
        if self.start is not None and self.end is not None:
            lo = str(self.start)[:7]
            hi = str(self.end)[:7]
            out = np.array([x is not None and not (lo <= x <= hi) for x in month], dtype=bool)
            self.col.rows(
                f,
                out,
                "month",
                "delivery.date_outside_window",
                lambda i: f"'month' must be within {lo} to {hi}; got {month[i]!r}",
                "check the month",
            )
        sess = _str(dlv["session_id"])
        is_s = np.array([x == "supervision_session" for x in rt], dtype=bool)
        sdup = (
            is_s
            & pd.Series(np.where(is_s, sess, None)).duplicated(keep="first").to_numpy()  # type: ignore[call-overload]
            & np.array([x is not None for x in sess], dtype=bool)
        )
        self.col.rows(
            f,
            sdup,
            "session_id",
            "delivery.duplicate",
            lambda i: f"supervision session {sess[i]!r} must be recorded once",
            "remove the repeated session",
        )
        tps = set(self.p.trial.timepoints)
        ftp = _str(dlv["timepoint"])
        badt = np.array([x is not None and x not in tps for x in ftp], dtype=bool)
        self.col.rows(
            f,
            badt,
            "timepoint",
            "delivery.unknown_timepoint",
            lambda i: (
                f"'timepoint' must be one of {', '.join(self.p.trial.timepoints)}; got {ftp[i]!r}"
            ),
            "use the protocol's timepoints",
        )
        present_types = {x for x in rt if x is not None}
        need = _metric_record_types()
        for _node, ind in self.p.logic_model.indicators():
            rtn = need.get(ind.metric)
            if rtn and rtn not in present_types:
                self.col.add(
                    f,
                    None,
                    "record_type",
                    "delivery.record_type_missing",
                    f"indicator '{ind.id}' needs '{rtn}' records; none found",
                    "add the delivery records or expect this indicator to be missing",
                    "warning",
                )

    # ------------------------------------------------------------------ missing data
    def missing_patterns(self, scores: pd.DataFrame) -> None:
        alloc = self.t.get("allocation")
        if alloc is None or alloc.empty or "families" not in self.t:
            return
        arm_of = dict(zip(_str(alloc["cluster"]), _str(alloc["arm"]), strict=True))
        fam = self.t["families"]
        kw = self.t["keyworkers"]
        consented = {
            "family": pd.DataFrame(
                {
                    "id": _str(fam["family_id"]),
                    "la": _str(fam["la_id"]),
                    "ok": fam["consent_date"].notna().to_numpy(dtype=bool, na_value=False),
                },
                dtype=object,
            ),
            "keyworker": pd.DataFrame(
                {"id": _str(kw["keyworker_id"]), "la": _str(kw["la_id"]), "ok": True},
                dtype=object,
            ),
        }
        for lv_, frame_ in list(consented.items()):
            frame_ = frame_[frame_["ok"].astype(bool)].drop_duplicates("id")
            frame_["arm"] = pd.Series(
                [arm_of.get(x) for x in frame_["la"].to_numpy(dtype=object)],
                index=frame_.index,
                dtype=object,
            )
            consented[lv_] = frame_
        f = self.file("measurements")
        sc_e = scores["entity_id"].to_numpy(dtype=object)
        sc_ok = ~np.isnan(scores["value"].to_numpy(dtype=float))
        for oc in self.p.outcomes:
            if oc.instrument == "binary" and oc.level.value == "keyworker":
                continue
            base = consented[oc.level.value]
            if base.empty:
                continue
            arm = base["arm"]
            mask_o = (scores["outcome_id"] == oc.id).to_numpy(dtype=bool)
            for t in oc.timepoints:
                have = sc_e[mask_o & (scores["timepoint"] == t).to_numpy(dtype=bool) & sc_ok]
                if not mask_o.any():
                    self.col.add(
                        f,
                        None,
                        "instrument",
                        "measurements.outcome_missing",
                        f"outcome '{oc.id}' ({oc.instrument}) has no scored measurement at '{t}'",
                        "check the instrument and timepoint labels",
                        "warning",
                    )
                    continue
                got = pd.Series(_isin(base["id"].to_numpy(dtype=object), have), index=base.index)
                share = {a: 1 - float(got[arm == a].mean()) for a in sorted(set(arm.dropna()))}
                if not share:
                    continue
                worst = max(share.values())
                if worst > MISSING_WARN:
                    txt = ", ".join(f"{a} {v:.0%}" for a, v in share.items())
                    self.col.add(
                        f,
                        None,
                        "instrument",
                        "measurements.missing_pattern",
                        f"outcome '{oc.id}' at '{t}' is missing for {txt} of consented {oc.level.value} entities",
                        "check collection; the analysis assumes data missing at random given covariates",
                        "warning",
                    )
                if (
                    len(share) >= 2
                    and max(share.values()) - min(share.values()) > DIFFERENTIAL_WARN
                ):
                    self.col.add(
                        f,
                        None,
                        "instrument",
                        "measurements.differential_missingness",
                        f"outcome '{oc.id}' at '{t}': missingness differs between arms "
                        f"({', '.join(f'{a} {v:.0%}' for a, v in share.items())})",
                        "consider a sensitivity analysis for missing data",
                        "warning",
                    )
        m = self.t.get("measurements")
        if m is not None and len(m):
            items = [c for c in item_columns(MAX_ITEMS) if c in m.columns]
            if items:
                part = scores[scores["value"].isna()]
                if len(part):
                    self.col.add(
                        f,
                        None,
                        None,
                        "measurements.score_missing",
                        f"{len(part)} outcome measurement(s) have too few items answered to be "
                        "scored under the prorating rules",
                        "see docs/scoring.md (prorating)",
                        "warning",
                    )


def _metric_record_types() -> dict[str, str]:
    return {
        "training_days_delivered": "training",
        "share_completing_training": "training",
        "supervision_sessions_per_month": "supervision_session",
        "share_sessions_with_genogram": "supervision_session",
        "supervision_attendance": "supervision_attendance",
        "clinician_fte_months": "clinician_month",
        "share_families_with_feedback": "feedback",
    }


# ============================================================================ save
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


def outcome_of(protocol: Protocol, outcome_id: str) -> Outcome:
    oc = protocol.outcome(outcome_id)
    if oc is None:
        raise DataError.from_problem(
            path=f"outcome {outcome_id}",
            code="data.unknown_outcome",
            message=f"outcome must be one of {', '.join(o.id for o in protocol.outcomes)}; got {outcome_id!r}",
            hint="use an outcome id declared in the protocol",
        )
    return oc
