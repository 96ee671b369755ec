"""Check the allocation, keyworkers and families tables the delivery log refers to.

Each function gathers its problems (1-based data row, header not counted) into
the list it is given; :func:`trialkit.fidelity._tables.prepare_tables` raises them
together with the delivery log's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from trialkit.data.schema import ROLES
from trialkit.errors import FidelityError, Problem
from trialkit.fidelity._convert import _as_date, _as_id, _not_in, _row


def _allocation_arms(
    protocol: Any, allocation: pd.DataFrame, name: str, problems: list[Problem]
) -> pd.Series:
    cols = {c.lower(): c for c in allocation.columns}
    id_col = cols.get("cluster") or cols.get("la_id")
    arm_col = cols.get("arm")
    if id_col is None or arm_col is None:
        raise FidelityError.from_problem(
            path=name,
            code="fidelity.allocation.missing_column",
            message=f"allocation must have columns 'cluster' and 'arm'; got {list(allocation.columns)}",
            hint="pass the allocation.csv written by 'trialkit randomise'",
        )
    ids = _as_id(allocation[id_col])
    arms = allocation[arm_col].astype("object").map(lambda v: str(v).strip() if pd.notna(v) else v)
    known = set(protocol.arms)
    for i, (la, arm) in enumerate(zip(ids, arms, strict=False)):
        if arm not in known:
            problems.append(
                Problem(
                    path=f"{name} {_row(i)} column arm",
                    code="fidelity.allocation.unknown_arm",
                    message=f"'arm' must be one of {', '.join(sorted(known))}; got {arm!r}",
                    hint="the arms are those declared in the protocol",
                )
            )
        if la is pd.NA:
            problems.append(
                Problem(
                    path=f"{name} {_row(i)} column {id_col}",
                    code="fidelity.allocation.missing_value",
                    message="'cluster' must be given; got an empty cell",
                    hint="fill in the LA id",
                )
            )
    s = pd.Series(list(arms), index=list(ids), name="arm")
    s = s[np.asarray(~pd.isna(s.index), dtype=bool)]
    dups = s.index[s.index.duplicated()]
    for la in dups.unique():
        problems.append(
            Problem(
                path=f"{name} column {id_col}",
                code="fidelity.allocation.duplicate",
                message=f"each LA must be allocated once; got {la!r} more than once",
                hint="use the allocation written by 'trialkit randomise'",
            )
        )
    return s[~s.index.duplicated()]


def _prepare_keyworkers(
    keyworkers: pd.DataFrame, name: str, known_las: set[str], problems: list[Problem]
) -> pd.DataFrame:
    kw = _with_ids(
        keyworkers,
        name,
        "keyworkers",
        ("keyworker_id", "la_id"),
        "columns: keyworker_id, la_id, role, start_date, leave_date",
    )
    if "role" not in kw.columns:
        kw["role"] = "keyworker"
    kw["role"] = kw["role"].map(lambda v: str(v).strip().lower() if pd.notna(v) else "keyworker")
    # (role is never empty here: a missing role defaults to 'keyworker')
    _not_in(
        problems,
        kw,
        "role",
        ROLES,
        name,
        "fidelity.keyworkers.unknown_role",
        f"one of {', '.join(ROLES)}",
        "use 'keyworker' or 'champion'",
    )
    _not_in(
        problems,
        kw,
        "la_id",
        known_las,
        name,
        "fidelity.keyworkers.unknown_la",
        "an allocated LA",
        "check the LA id against the allocation",
    )
    for col in ("start_date", "leave_date"):
        kw[col] = _as_date(kw[col], name, col, problems) if col in kw.columns else pd.NaT
    return kw[["keyworker_id", "la_id", "role", "start_date", "leave_date"]]


def _prepare_families(
    families: pd.DataFrame, name: str, known_las: set[str], problems: list[Problem]
) -> pd.DataFrame:
    fam = _with_ids(
        families,
        name,
        "families",
        ("family_id", "la_id"),
        "columns: family_id, keyworker_id, la_id, referral_date, consent_date, ...",
    )
    _not_in(
        problems,
        fam,
        "la_id",
        known_las,
        name,
        "fidelity.families.unknown_la",
        "an allocated LA",
        "check the LA id against the allocation",
    )
    if "consent_date" in fam.columns:
        fam["consent_date"] = _as_date(fam["consent_date"], name, "consent_date", problems)
        fam["consented"] = fam["consent_date"].notna()
    else:
        fam["consent_date"] = pd.NaT
        fam["consented"] = True
    return fam[["family_id", "la_id", "consent_date", "consented"]]


def _with_ids(
    frame: pd.DataFrame, name: str, table: str, id_cols: tuple[str, ...], hint: str
) -> pd.DataFrame:
    """A copy of ``frame`` with its id columns as strings; raise when one is absent."""
    out = frame.reset_index(drop=True).copy()
    for col in id_cols:
        if col not in out.columns:
            raise FidelityError.from_problem(
                path=f"{name} column {col}",
                code=f"fidelity.{table}.missing_column",
                message=f"{table} table must have a '{col}' column",
                hint=hint,
            )
        out[col] = _as_id(out[col])
    return out
