"""Checking the clusters table, canonical order and covariate coding.

Canonical order: cluster identifiers are read as strings and sorted by Python's
string order, so the allocation never depends on the row order of the file.

Coding (as cvcrand): a string (or boolean) covariate with L levels becomes L - 1
indicator columns by :mod:`trialkit.models.coding`; the reference level, which
gets no column, is the first level in sorted order (R's default for ``factor``).
Every column is then standardised, z = (x - mean) / sd with the n - 1 denominator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trialkit.data.load import convert
from trialkit.data.parse import case_variants, match_levels, parse_numbers
from trialkit.errors import Problem, RandomisationError
from trialkit.models.coding import code_categorical, is_categorical


@dataclass(frozen=True, slots=True, kw_only=True)
class CovariateCoding:
    """How covariates became standardised columns.

    Attributes
    ----------
    columns : tuple of str
        Names of the coded columns (``region[North]`` for an indicator).
    source : tuple of str
        The covariate each coded column came from.
    reference : dict
        Reference (omitted) level of each categorical covariate.
    means, sds : tuple of float
        Mean and sd (n - 1) used to standardise each coded column.
    weights : tuple of float
        Weight of each coded column.
    """

    columns: tuple[str, ...]
    source: tuple[str, ...]
    reference: dict[str, str]
    means: tuple[float, ...]
    sds: tuple[float, ...]
    weights: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "source": list(self.source),
            "reference": dict(self.reference),
            "means": list(self.means),
            "sds": list(self.sds),
            "weights": list(self.weights),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CovariateCoding:
        """Rebuild a coding saved with :meth:`to_dict`."""
        return cls(
            columns=tuple(str(c) for c in d["columns"]),
            source=tuple(str(s) for s in d["source"]),
            reference={str(k): str(v) for k, v in dict(d["reference"]).items()},
            means=tuple(float(m) for m in d["means"]),
            sds=tuple(float(s) for s in d["sds"]),
            weights=tuple(float(w) for w in d["weights"]),
        )


def _problem(path: str, code: str, message: str, hint: str = "") -> Problem:
    return Problem(path=path, code=code, message=message, hint=hint)


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnReading:
    """How each column the design uses was read from the clusters table.

    Attributes
    ----------
    types : dict
        Column -> ``"number"`` or ``"category"`` (strata and pairs columns are
        always categories).
    declared : tuple of str
        Columns whose type was declared (the protocol); the others were inferred.
    notes : tuple of str
        Every reading that changed what was written: a number with a thousands
        separator, a level matched to its declared spelling.
    """

    types: dict[str, str]
    declared: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def interpreted(self) -> bool:
        """Whether reading needed declarations or changed a cell.

        The audit records the reading either way (``input.reading``): the type of
        every column, declared or inferred, and every reinterpreted cell.
        """
        return bool(self.notes or self.declared)

    def to_dict(self) -> dict[str, Any]:
        return {
            "types": dict(self.types),
            "declared": list(self.declared),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnReading:
        """Rebuild a reading saved with :meth:`to_dict`."""
        return cls(
            types={str(k): str(v) for k, v in dict(d["types"]).items()},
            declared=tuple(str(c) for c in d["declared"]),
            notes=tuple(str(x) for x in d["notes"]),
        )

    def summary(self) -> str:
        """One line: each column with its type and whether it was declared or inferred."""
        return "columns read as: " + ", ".join(
            f"{c} {t} ({'declared' if c in self.declared else 'inferred'})"
            for c, t in self.types.items()
        )


def _row(pos: int) -> str:
    """Row label: 1-based data rows, header not counted (as ``validate``)."""
    return f"row {pos + 1}"


def _read_number(
    s: pd.Series,
    col: str,
    source: str,
    problems: list[Problem],
    notes: list[str],
    *,
    declared: bool,
) -> pd.Series:
    parsed = parse_numbers(s)
    for pos in np.flatnonzero(parsed.bad):
        problems.append(
            _problem(
                f"{source} {_row(int(pos))} column {col}",
                "randomise.input.not_a_number",
                f"`{col}` must be a number{' (declared ' + 'in the protocol)' if declared else ''}"
                f"; got {str(s.iloc[pos])!r}.",
                "correct the cell; a thousands separator is read only between groups of three "
                "digits (1,412 or 1 412)",
            )
        )
    for pos in np.flatnonzero(parsed.grouped):
        notes.append(
            f"{col} {_row(int(pos))}: {str(s.iloc[pos]).strip()!r} read as "
            f"{parsed.values[pos]:g} (thousands separator)"
        )
    return pd.Series(parsed.values, index=s.index, name=s.name)


def _read_category(
    s: pd.Series,
    col: str,
    source: str,
    problems: list[Problem],
    notes: list[str],
    levels: tuple[str, ...] | None,
    *,
    declared: bool,
) -> pd.Series:
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        if not declared:
            return s  # undeclared numeric labels (stratum codes) are kept as written
        s = convert(s, "str")[0].astype(object)
    if levels is not None:
        match = match_levels(s, levels)
        for pos in np.flatnonzero(match.unmatched):
            problems.append(
                _problem(
                    f"{source} {_row(int(pos))} column {col}",
                    "randomise.input.invalid_level",
                    f"`{col}` must be one of the declared levels {', '.join(levels)}; "
                    f"got {str(s.iloc[pos])!r}.",
                    "correct the cell or the protocol's levels (case and surrounding blanks are "
                    "ignored when matching)",
                )
            )
        for pos in np.flatnonzero(match.normalised):
            notes.append(
                f"{col} {_row(int(pos))}: {str(s.iloc[pos])!r} read as level "
                f"{match.values[pos]!r} (blanks and case ignored)"
            )
        return pd.Series(match.values, index=s.index, name=s.name, dtype=object)
    variants = case_variants(s)
    for spellings in variants.values():
        rows = [
            _row(int(p)) for p in np.flatnonzero(s.map(lambda v, sp=spellings: v in sp).to_numpy())
        ]
        problems.append(
            _problem(
                f"{source} column {col}",
                "randomise.input.inconsistent_levels",
                f"`{col}` must spell each level one way; got "
                f"{', '.join(repr(v) for v in spellings)} ({', '.join(rows)}), which differ only "
                "in case or surrounding blanks.",
                "write the level the same way in every row, or declare the levels in the "
                "protocol ([[data.covariates]] levels) so they are matched",
            )
        )
    return s


def _read_columns(
    frame: pd.DataFrame,
    needed: list[str],
    labels: set[str],
    declared_types: Mapping[str, str],
    levels: Mapping[str, tuple[str, ...]],
    source: str,
    problems: list[Problem],
) -> tuple[dict[str, pd.Series], ColumnReading]:
    """Read each needed column as a number or a category (see :func:`prepare_clusters`)."""
    out: dict[str, pd.Series] = {}
    types: dict[str, str] = {}
    notes: list[str] = []
    for col in dict.fromkeys(needed):
        s = frame[col]
        declared = declared_types.get(col)
        if col in labels or declared == "categorical":
            kind = "category"
        elif declared is not None:
            kind = "number"
        elif pd.api.types.is_bool_dtype(s.dtype):
            kind = "category"
        elif pd.api.types.is_numeric_dtype(s.dtype):
            kind = "number"
        else:
            parsed = parse_numbers(s)
            present = parsed.bad | ~np.isnan(parsed.values)
            if not present.any() or parsed.bad[present].all():
                kind = "category"
            elif parsed.bad.any():
                for pos in np.flatnonzero(parsed.bad):
                    problems.append(
                        _problem(
                            f"{source} {_row(int(pos))} column {col}",
                            "randomise.input.mixed_column",
                            f"`{col}` must hold only numbers or only text; got "
                            f"{str(s.iloc[pos])!r} among numbers.",
                            "correct the cell, or declare the covariate's type in the protocol",
                        )
                    )
                kind = "number"
            else:
                kind = "number"
        types[col] = kind
        if kind == "number":
            if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
                out[col] = s
            else:
                out[col] = _read_number(
                    s, col, source, problems, notes, declared=declared is not None
                )
        else:
            out[col] = _read_category(
                s, col, source, problems, notes, levels.get(col), declared=declared is not None
            )
    reading = ColumnReading(
        types=types,
        declared=tuple(c for c in types if c in declared_types),
        notes=tuple(notes),
    )
    return out, reading


def prepare_clusters(
    frame: pd.DataFrame,
    id_column: str,
    needed: list[str],
    *,
    labels: tuple[str, ...] = (),
    declared_types: Mapping[str, str] | None = None,
    levels: Mapping[str, tuple[str, ...]] | None = None,
    n_clusters: int | None = None,
    source: str = "clusters",
) -> tuple[pd.DataFrame, ColumnReading]:
    """Check ids and needed columns; read them; return the frame in canonical order.

    Parameters
    ----------
    frame : DataFrame
        The clusters table as read (text cells as text).
    id_column : str
    needed : list of str
        Columns the design uses.
    labels : tuple of str
        Columns that hold labels (strata, pairs): always categories.
    declared_types : mapping, optional
        Declared type of a column (``continuous``, ``count``, ``binary``: a
        number; ``categorical``: a category).
    levels : mapping, optional
        Declared levels of categorical columns.
    n_clusters : int, optional
        Declared number of clusters; the table must have that many rows.
    source : str
        Name of the table in problem paths.

    Returns
    -------
    frame : DataFrame
        String index of cluster ids (sorted) and the needed columns only: numbers
        as floats (or as read when the file held numbers), categories as text.
    reading : ColumnReading
        How each column was read.

    Notes
    -----
    Numbers and levels follow :mod:`trialkit.data.parse` (the rules of
    ``validate``).  An undeclared column is a number when the file holds numbers
    or every cell reads as one (``1,412`` included), a category when no cell
    does; a mix is refused.  Categories must spell each level one way, or match
    the declared levels after trimming and folding case.  Row numbers are 1-based
    data rows (header not counted).  Every problem is gathered before raising.
    """
    problems: list[Problem] = []
    if id_column not in frame.columns:
        raise RandomisationError.from_problem(
            path=f"{source} column {id_column}",
            code="randomise.input.missing_id_column",
            message=f"id column `{id_column}` must exist; columns are {list(frame.columns)}.",
            hint="pass --id-column with the name of the cluster identifier column",
        )
    frame = frame.reset_index(drop=True)
    if n_clusters is not None and len(frame) != n_clusters:
        problems.append(
            _problem(
                source,
                "randomise.input.n_clusters",
                f"the number of clusters must be the protocol's `trial.n_clusters` = {n_clusters}; "
                f"got {len(frame)} rows in the clusters file.",
                "add the missing clusters (or remove extra rows), or correct trial.n_clusters",
            )
        )
    for col in needed:
        if col not in frame.columns:
            problems.append(
                _problem(
                    f"{source} column {col}",
                    "randomise.input.missing_column",
                    f"column `{col}` must exist; columns are {list(frame.columns)}.",
                    "check the spelling of --covariates/--strata",
                )
            )
    ids = frame[id_column]
    for i, v in enumerate(ids):
        if pd.isna(v) or str(v).strip() == "":
            problems.append(
                _problem(
                    f"{source} {_row(i)} column {id_column}",
                    "randomise.input.missing_id",
                    "cluster id must not be empty.",
                    "give every cluster an identifier",
                )
            )
    sid = ids.astype("string").str.strip()
    dup_mask = (sid.duplicated(keep=False) & sid.notna()).to_numpy(dtype=bool)
    for pos in np.flatnonzero(dup_mask):
        v = sid.iloc[pos]
        problems.append(
            _problem(
                f"{source} {_row(int(pos))} column {id_column}",
                "randomise.input.duplicate_id",
                f"cluster id must be unique; `{v}` appears more than once.",
                "remove or rename the duplicate row",
            )
        )
    present = [c for c in dict.fromkeys(needed) if c in frame.columns]
    for col in present:
        miss = frame[col].isna() | frame[col].map(lambda v: isinstance(v, str) and not v.strip())
        for pos in np.flatnonzero(miss.to_numpy(dtype=bool)):
            problems.append(
                _problem(
                    f"{source} {_row(int(pos))} column {col}",
                    "randomise.input.missing_value",
                    f"`{col}` must not be missing for cluster `{sid.iloc[pos]}`.",
                    "fill in the value; randomisation never drops clusters",
                )
            )
    columns, reading = _read_columns(
        frame,
        present,
        set(labels),
        dict(declared_types or {}),
        dict(levels or {}),
        source,
        problems,
    )
    if problems:
        raise RandomisationError(f"{len(problems)} problem(s) in {source}", problems)
    out = pd.DataFrame(columns, index=frame.index)[list(dict.fromkeys(needed))]
    out.index = pd.Index([str(s) for s in sid], name="cluster")
    return out.sort_index(kind="stable"), reading


def code_covariates(
    frame: pd.DataFrame,
    covariates: list[str],
    weights: dict[str, float] | None = None,
    *,
    source: str = "clusters",
) -> tuple[np.ndarray, CovariateCoding]:
    """Dummy-code and standardise ``covariates`` (rows in canonical order).

    Returns
    -------
    z : ndarray, shape (n, K)
        Standardised coded columns.
    coding : CovariateCoding
    """
    weights = dict(weights or {})
    problems: list[Problem] = []
    unknown = sorted(set(weights) - set(covariates))
    for name in unknown:
        problems.append(
            _problem(
                f"randomisation.weights.{name}",
                "randomise.settings.weight_unknown",
                f"weight given for `{name}`, which is not a covariate.",
                f"covariates are {covariates}",
            )
        )
    cols: list[np.ndarray] = []
    names: list[str] = []
    source_of: list[str] = []
    reference: dict[str, str] = {}
    for cov in covariates:
        s = frame[cov]
        if is_categorical(s):
            dummies, cat = code_categorical(s, cov)
            if not cat.columns:
                problems.append(
                    _problem(
                        f"{source} column {cov}",
                        "randomise.input.constant_covariate",
                        f"covariate `{cov}` must vary between clusters; every value is "
                        f"`{cat.reference}`.",
                        "drop it from the covariates",
                    )
                )
                continue
            reference[cov] = cat.reference
            cols.extend(dummies.T)
            names.extend(cat.columns)
            source_of.extend([cov] * len(cat.columns))
        else:
            cols.append(s.to_numpy(dtype=float))
            names.append(cov)
            source_of.append(cov)
    if problems:
        raise RandomisationError("covariates cannot be coded", problems)
    x = np.column_stack(cols) if cols else np.zeros((len(frame), 0))
    means = x.mean(axis=0)
    sds = x.std(axis=0, ddof=1) if len(frame) > 1 else np.zeros(len(cols))
    for j, sd in enumerate(sds):
        if not sd > 0:
            problems.append(
                _problem(
                    f"{source} column {source_of[j]}",
                    "randomise.input.constant_covariate",
                    f"covariate `{source_of[j]}` must vary between clusters; it is constant.",
                    "drop it from the covariates",
                )
            )
    if problems:
        raise RandomisationError("covariates cannot be coded", problems)
    z = (x - means) / sds
    w = tuple(float(weights.get(src, 1.0)) for src in source_of)
    coding = CovariateCoding(
        columns=tuple(names),
        source=tuple(source_of),
        reference=reference,
        means=tuple(float(m) for m in means),
        sds=tuple(float(s) for s in sds),
        weights=w,
    )
    return z, coding
