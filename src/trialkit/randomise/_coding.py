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


def prepare_clusters(
    frame: pd.DataFrame, id_column: str, needed: list[str], *, source: str = "clusters"
) -> pd.DataFrame:
    """Check ids and needed columns; return the frame sorted into canonical order.

    The returned frame has a string index of cluster ids (sorted) and the needed
    columns only.  Every problem is gathered before raising.
    """
    problems: list[Problem] = []
    if id_column not in frame.columns:
        raise RandomisationError.from_problem(
            path=f"{source} column {id_column}",
            code="randomise.input.missing_id_column",
            message=f"id column `{id_column}` must exist; columns are {list(frame.columns)}.",
            hint="pass --id-column with the name of the cluster identifier column",
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
                    f"{source} row {i + 2} column {id_column}",
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
                f"{source} row {pos + 2} column {id_column}",
                "randomise.input.duplicate_id",
                f"cluster id must be unique; `{v}` appears more than once.",
                "remove or rename the duplicate row",
            )
        )
    for col in needed:
        if col not in frame.columns:
            continue
        miss = frame[col].isna()
        for pos in np.flatnonzero(miss.to_numpy()):
            problems.append(
                _problem(
                    f"{source} row {pos + 2} column {col}",
                    "randomise.input.missing_value",
                    f"`{col}` must not be missing for cluster `{sid.iloc[pos]}`.",
                    "fill in the value; randomisation never drops clusters",
                )
            )
    if problems:
        raise RandomisationError(f"{len(problems)} problem(s) in {source}", problems)
    out = frame[list(dict.fromkeys(needed))].copy()
    out.index = pd.Index([str(s) for s in sid], name="cluster")
    return out.sort_index(kind="stable")


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
