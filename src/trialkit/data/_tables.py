"""Reading the tables: dtype conversion, required columns, non-null cells and the allocation."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from trialkit import store
from trialkit._io import sha256_file
from trialkit.data._checks import _Collector, _str, _val
from trialkit.data.load import STRING, convert
from trialkit.data.parse import covariate_kind, match_levels, parse_numbers
from trialkit.data.schema import COLUMNS, NOT_NULL, REQUIRED
from trialkit.data.scoring import MAX_ITEMS, item_columns
from trialkit.errors import DataError
from trialkit.protocol.model import Protocol


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
    entity_level = {"clusters": "la", "keyworkers": "keyworker", "families": "family"}.get(name)
    declared_levels: dict[str, list[str]] = {}
    for cov in protocol.data.covariates:
        if cov.level.value == entity_level:
            spec.setdefault(cov.name, covariate_kind(cov.type))
            if cov.type == "categorical" and cov.levels:
                declared_levels[cov.name] = list(cov.levels)
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
        if kind in ("float", "int"):
            grouped = parse_numbers(frame[c]).grouped & ~bad
            col.rows(
                file,
                grouped,
                c,
                f"{name}.thousands_separator",
                lambda p, v=frame[c], cc=c, cv=conv: (  # type: ignore[misc]
                    f"'{cc}' {_val(v.iloc[p])} was read as the number {cv.iloc[p]:g}"
                ),
                "a thousands separator is read only between groups of three digits",
                "warning",
            )
        if c in declared_levels:
            match = match_levels(conv, declared_levels[c])
            col.rows(
                file,
                match.normalised,
                c,
                f"{name}.level_normalised",
                lambda p, v=conv, m=match, cc=c: (  # type: ignore[misc]
                    f"'{cc}' {_val(v.iloc[p])} was read as the declared level {m.values[p]!r}"
                ),
                "levels are matched to the protocol's after trimming blanks and folding case",
                "warning",
            )
            if match.normalised.any():
                conv = pd.Series(
                    [m if m is not None else pd.NA for m in match.values], index=conv.index
                ).astype(STRING)
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
    allocation: str | os.PathLike[str] | store.AllocationRecord | None,
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
        given = _str(convert(clusters["arm"], "str")[0])
        cl_arm = {i: x for i, x in zip(ids, given, strict=True) if i is not None and x is not None}
    if allocation is None:
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
    if isinstance(allocation, store.AllocationRecord):
        record = allocation
    else:
        path = store.locate_allocation(allocation)
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
        try:
            record = store.read_allocation(path, keep_default_na=False)
        except DataError as exc:
            files["allocation"] = path.name
            inputs[path.name] = sha256_file(path)
            for p in exc.problems:
                col.add(path.name, None, None, p.code, p.message, p.hint)
            return empty
    path = record.path
    files["allocation"] = path.name
    inputs[path.name] = record.sha256
    a = record.frame
    if not {"cluster", "arm"} <= set(a.columns):
        col.add(
            path.name,
            None,
            None,
            "allocation.missing_column",
            "allocation.csv must have columns 'cluster' and 'arm'",
            "use the file from 'trialkit randomise'",
        )
        return empty
    a = a[["cluster", "arm"]].apply(lambda s: s.str.strip()).astype(STRING)
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
