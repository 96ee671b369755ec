"""Reading the tables: dtype conversion, required columns, non-null cells and the allocation."""

from __future__ import annotations

import difflib
import os

import numpy as np
import pandas as pd

from trialkit import store
from trialkit._io import sha256_file
from trialkit.data._checks import _Collector, _str, _val
from trialkit.data.load import (
    ISO,
    STRING,
    convert,
    convert_marked,
    date_format_label,
    guess_date_format,
)
from trialkit.data.parse import covariate_kind, match_levels
from trialkit.data.schema import COLUMNS, NOT_NULL, REQUIRED, Kind
from trialkit.data.scoring import MAX_ITEMS, item_columns
from trialkit.errors import DataError
from trialkit.protocol.model import Protocol
from trialkit.store.tables import normalise_column


def _empty(name: str) -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype=STRING) for c in COLUMNS[name]})
    for c, k in COLUMNS[name].items():
        if k != "id" and k != "str" and k != "month":
            out[c] = convert(pd.Series([], dtype=object), k)[0]
    return out


def table_label(file: str, frame: pd.DataFrame) -> str:
    """How problems name a table's file: with the sheet read, for a workbook."""
    sheet = frame.attrs.get("sheet")
    return file if sheet is None else f"{file} (sheet '{sheet}')"


def _did_you_mean(column: str, found: list[str]) -> str | None:
    """The column of ``found`` that ``column`` was probably renamed to, if one is close."""
    key = normalise_column(column)
    same = [c for c in found if normalise_column(c) == key]
    if same:
        return same[0]
    close = difflib.get_close_matches(key, [normalise_column(c) for c in found], n=1, cutoff=0.8)
    return next((c for c in found if close and normalise_column(c) == close[0]), None)


def _listing(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(c) for c in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "") or "none"


def _check_layout(name: str, frame: pd.DataFrame, file: str, col: _Collector) -> bool:
    """Report absent required columns (one problem each, or one for a misplaced header).

    Returns True when the table cannot be checked: it is then left out of every
    later rule, as an absent table is, so that nothing is reported twice.
    """
    missing = [c for c in REQUIRED[name] if c not in frame.columns]
    if not missing:
        return False
    col.broken.add(name)
    found = [str(c) for c in frame.columns]
    sheets = frame.attrs.get("sheets") or []
    where = (
        f"; read sheet '{frame.attrs['sheet']}' of {_listing(list(sheets))}"
        if len(sheets) > 1
        else ""
    )
    header_row = frame.attrs.get("header_row")
    if header_row is not None:
        col.add(
            file,
            None,
            None,
            f"{name}.header_not_first_row",
            f"the header of {file} must be on row 1; got the columns "
            f"{', '.join(REQUIRED[name])} on row {header_row}",
            f"the header seems to be on row {header_row}; remove the rows above it{where}",
        )
        return True
    for c in missing:
        guess = _did_you_mean(c, found)
        fix = f"did you mean {guess!r}? rename it to '{c}'" if guess else "add the column"
        col.add(
            file,
            None,
            c,
            f"{name}.missing_column",
            f"column '{c}' must be present in {file}; got columns {_listing(found)}",
            f"{fix}; required columns: {', '.join(REQUIRED[name])}{where}",
        )
    return True


def _unreadable_hint(kind: Kind, values: pd.Series, date_format: str) -> str:
    if kind != "date":
        return "check the column holds only values of its kind (no text, units or notes)"
    guesses = guess_date_format(values)
    if not guesses:
        return "write the dates as YYYY-MM-DD, or set date_format under [data] in the protocol"
    (fmt, lab), *rest = guesses
    if rest and rest[0][1] == "MM/DD/YYYY" and lab == "DD/MM/YYYY":
        return (
            "this column looks like DD/MM/YYYY (or MM/DD/YYYY: every day is 12 or less): set "
            f'date_format = "{fmt}" (or "{rest[0][0]}") under [data] in the protocol'
        )
    current = "" if date_format == ISO else f" instead of {date_format!r}"
    return (
        f'this column looks like {lab}: set date_format = "{fmt}"{current} under [data] in '
        "the protocol, or write the dates as YYYY-MM-DD"
    )


def _convert_column(
    name: str, c: str, kind: Kind, values: pd.Series, file: str, fmt: str, col: _Collector
) -> tuple[pd.Series, np.ndarray]:
    """The converted column and its cells read with a thousands separator."""
    conv, bad, grouped = convert_marked(values, kind, date_format=fmt)
    col.bad[(name, c)] = bad
    if not bad.any():
        return conv, grouped
    label = {
        "date": date_format_label(fmt),
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
    n_bad = int(bad.sum())
    n_present = int(np.asarray(values.notna().to_numpy(dtype=bool, na_value=False)).sum())
    if n_bad >= 2 and 2 * n_bad >= n_present:
        # the column is written another way: one problem, and its dependants are skipped
        col.unreadable.add((name, c))
        shown = ", ".join(_val(v) for v in values[bad].iloc[:2])
        col.add(
            file,
            None,
            c,
            code,
            f"'{c}' must be {label}; got {n_bad} of {n_present} values that are not (e.g. {shown})",
            _unreadable_hint(kind, values[bad], fmt),
        )
        return conv, grouped
    hint = "correct the cell (leave it empty if unknown)"
    if kind == "date" and guess_date_format(values[bad]):
        hint += f"; {_unreadable_hint(kind, values[bad], fmt)}"
    col.rows(
        file,
        bad,
        c,
        code,
        lambda p: f"'{c}' must be {label}; got {_val(values.iloc[p])}",
        hint,
    )
    return conv, grouped


_ENTITY_LEVEL = {"clusters": "la", "keyworkers": "keyworker", "families": "family"}


def column_kinds(name: str, protocol: Protocol) -> dict[str, Kind]:
    """The kind each column of table ``name`` is converted to.

    The schema's columns (:data:`trialkit.data.schema.COLUMNS`), ``item_1`` …
    ``item_47`` of ``measurements`` and the protocol's covariates of the table's
    level.
    """
    spec = dict(COLUMNS[name])
    if name == "measurements":
        for c in item_columns(MAX_ITEMS):
            spec[c] = "float"
    entity_level = _ENTITY_LEVEL.get(name)
    for cov in protocol.data.covariates:
        if cov.level.value == entity_level:
            spec.setdefault(cov.name, covariate_kind(cov.type))
    return spec


def _convert_table(
    name: str, frame: pd.DataFrame, file: str, protocol: Protocol, col: _Collector
) -> pd.DataFrame:
    """Convert one table's columns to their dtypes, reporting what cannot be read.

    ``file`` names the table in problems (with its sheet, see :func:`table_label`).
    """
    attrs = dict(frame.attrs)
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.attrs.update(attrs)
    _check_layout(name, frame, file, col)
    spec = column_kinds(name, protocol)
    entity_level = _ENTITY_LEVEL.get(name)
    declared_levels: dict[str, list[str]] = {}
    for cov in protocol.data.covariates:
        if cov.level.value == entity_level and cov.type == "categorical" and cov.levels:
            declared_levels[cov.name] = list(cov.levels)
    fmt = protocol.data.date_format
    out: dict[str, pd.Series] = {}
    for c in frame.columns:
        kind = spec.get(c)
        if kind is None:
            out[c] = frame[c]
            continue
        conv, grouped = _convert_column(name, c, kind, frame[c], file, fmt, col)
        if kind in ("float", "int") and grouped.any():
            grouped = grouped & conv.notna().to_numpy(dtype=bool)
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
    empty: pd.DataFrame | None = None
    for c, kind in COLUMNS[name].items():
        if c not in out:
            empty = _empty(name) if empty is None else empty
            out[c] = empty[c].reindex(range(len(frame)))
            if kind in ("id", "str", "month"):
                out[c] = pd.Series(pd.NA, index=range(len(frame)), dtype=STRING)
    result = pd.DataFrame(out)
    for c in NOT_NULL[name]:
        if c in frame.columns:
            nul = ~np.asarray(result[c].notna().to_numpy(dtype=bool, na_value=False))
            col.rows(
                file,
                nul & ~col.bad_cells(name, c, len(result)),
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
    labels: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The allocation (``cluster, arm``), checked; every arm must have an LA."""
    alloc = _allocation_frame(protocol, allocation, clusters, files, inputs, col, labels or {})
    if alloc.empty:
        return alloc
    given = {x for x in _str(alloc["arm"]) if x is not None}
    empty_arms = [a for a in protocol.arm_ids if a not in given]
    if empty_arms and given & set(protocol.arm_ids):
        file = files.get("allocation") or (labels or {}).get("clusters", "clusters.csv")
        counts = alloc["arm"].value_counts()
        got = ", ".join(f"{n} in {a!r}" for a, n in counts.items())
        col.add(
            file,
            None,
            "arm",
            "allocation.empty_arm",
            f"the allocation must put LAs in every arm ({', '.join(protocol.arm_ids)}); "
            f"got {got} and none in {', '.join(repr(a) for a in empty_arms)}",
            "use the allocation written by 'trialkit randomise' for this protocol; an arm "
            "without LAs cannot be compared",
        )
    return alloc


def _allocation_frame(
    protocol: Protocol,
    allocation: str | os.PathLike[str] | store.AllocationRecord | None,
    clusters: pd.DataFrame | None,
    files: dict[str, str],
    inputs: dict[str, str],
    col: _Collector,
    labels: dict[str, str],
) -> pd.DataFrame:
    empty = pd.DataFrame({"cluster": pd.Series(dtype=STRING), "arm": pd.Series(dtype=STRING)})
    arms = set(protocol.arm_ids)
    cl_arm: dict[str, str] = {}
    cfile = labels.get("clusters") or files.get("clusters", "clusters.csv")
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
