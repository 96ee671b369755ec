"""Missing outcome data: the share of eligible entities without a score, by outcome, timepoint and arm.

One computation serves two readers: ``trialkit validate`` turns the shares into its
warnings (``measurements.missing_pattern``, ``measurements.differential_missingness``,
``measurements.outcome_missing``), and the analysis stage stores the same shares and
flags for the report's missing-data table, so the table and the warnings cannot disagree.

The eligible entities of a family outcome are the consented families (non-empty
``consent_date``) of allocated LAs; of a keyworker outcome, every keyworker of an
allocated LA.  An entity is *missing* at a timepoint when it has no scored measurement
of the outcome there (no row, or a row whose score failed the prorating rules).
Withdrawn families stay in the denominator: their later measurements are missing.
Derived outcomes (keyworker retention: instrument ``binary`` at keyworker level) have
no measurements and are left out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from trialkit.data._checks import _str
from trialkit.data.load import isin as _isin
from trialkit.protocol.model import Protocol

__all__ = [
    "DIFFERENTIAL_WARN",
    "MISSING_WARN",
    "SHARE_COLUMNS",
    "missing_outcome_shares",
    "missingness_flags",
]

MISSING_WARN = 0.2
"""Warn when more than this share of an arm's eligible entities lack a score."""
DIFFERENTIAL_WARN = 0.1
"""Warn when the arms' missing shares differ by more than this (10 percentage points)."""

SHARE_COLUMNS = [
    "outcome_id",
    "level",
    "timepoint",
    "arm",
    "n_eligible",
    "n_missing",
    "share_missing",
    "has_scores",
]
FLAG_COLUMNS = ["outcome_id", "timepoint", "code", "message"]


def _eligible(
    tables: Mapping[str, pd.DataFrame], arm_of: Mapping[str, str]
) -> dict[str, pd.DataFrame]:
    fam = tables["families"]
    kw = tables["keyworkers"]
    base = {
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
    for level, frame in list(base.items()):
        frame = frame[frame["ok"].astype(bool)].drop_duplicates("id")
        frame["arm"] = pd.Series(
            [arm_of.get(x) for x in frame["la"].to_numpy(dtype=object)],
            index=frame.index,
            dtype=object,
        )
        base[level] = frame
    return base


def missing_outcome_shares(
    protocol: Protocol,
    tables: Mapping[str, pd.DataFrame],
    scores: pd.DataFrame,
) -> pd.DataFrame:
    """Share of eligible entities without a score, per outcome, timepoint and arm.

    Parameters
    ----------
    protocol : Protocol
    tables : mapping of table name to DataFrame
        The validated tables: ``allocation`` (``cluster, arm``), ``families``,
        ``keyworkers``.
    scores : DataFrame
        ``TrialData.scores`` (``outcome_id, entity_id, timepoint, value``).

    Returns
    -------
    DataFrame
        ``outcome_id, level, timepoint, arm, n_eligible, n_missing, share_missing,
        has_scores`` (``has_scores`` is False when the outcome has no scored
        measurement at any timepoint), in protocol order of outcomes and timepoints and
        sorted by arm; empty without an allocation.
    """
    alloc = tables.get("allocation")
    if alloc is None or alloc.empty or "families" not in tables or "keyworkers" not in tables:
        return pd.DataFrame(columns=SHARE_COLUMNS)
    arm_of = {
        a: b
        for a, b in zip(_str(alloc["cluster"]), _str(alloc["arm"]), strict=True)
        if a is not None and b is not None
    }
    eligible = _eligible(tables, arm_of)
    sc_e = scores["entity_id"].to_numpy(dtype=object)
    sc_ok = ~np.isnan(scores["value"].to_numpy(dtype=float))
    rows: list[dict[str, object]] = []
    for oc in protocol.outcomes:
        if oc.instrument == "binary" and oc.level.value == "keyworker":
            continue
        base = eligible[oc.level.value]
        if base.empty:
            continue
        arm = base["arm"]
        mask_o = (scores["outcome_id"] == oc.id).to_numpy(dtype=bool)
        for t in oc.timepoints:
            have = sc_e[mask_o & (scores["timepoint"] == t).to_numpy(dtype=bool) & sc_ok]
            got = pd.Series(_isin(base["id"].to_numpy(dtype=object), have), index=base.index)
            for a in sorted(set(arm.dropna())):
                in_arm = (arm == a).to_numpy(dtype=bool)
                n = int(in_arm.sum())
                n_got = int(got[in_arm].sum())
                rows.append(
                    {
                        "outcome_id": oc.id,
                        "level": oc.level.value,
                        "timepoint": t,
                        "arm": a,
                        "n_eligible": n,
                        "n_missing": n - n_got,
                        "share_missing": (n - n_got) / n if n else float("nan"),
                        "has_scores": bool(mask_o.any()),
                    }
                )
    out = pd.DataFrame(rows, columns=SHARE_COLUMNS)
    return out.astype({"n_eligible": "int64", "n_missing": "int64", "has_scores": bool})


def missingness_flags(shares: pd.DataFrame) -> pd.DataFrame:
    """The missing-data warnings implied by :func:`missing_outcome_shares`.

    Per outcome and timepoint: ``measurements.outcome_missing`` when the outcome has
    no scored measurement at all; else ``measurements.missing_pattern`` when more than
    :data:`MISSING_WARN` of an arm's eligible entities lack a score, and
    ``measurements.differential_missingness`` when the arms' shares differ by more than
    :data:`DIFFERENTIAL_WARN`.

    Returns
    -------
    DataFrame
        ``outcome_id, timepoint, code, message``, one row per warning.
    """
    rows: list[dict[str, str]] = []
    if not len(shares):
        return pd.DataFrame(columns=FLAG_COLUMNS)
    keys = shares[["outcome_id", "timepoint"]].drop_duplicates()
    for oid, t in keys.itertuples(index=False):
        sub = shares[(shares["outcome_id"] == oid) & (shares["timepoint"] == t)]
        sub = sub[sub["n_eligible"] > 0]
        if not len(sub):
            continue
        level = str(sub["level"].iloc[0])
        if not bool(sub["has_scores"].iloc[0]):
            rows.append(
                {
                    "outcome_id": oid,
                    "timepoint": t,
                    "code": "measurements.outcome_missing",
                    "message": f"outcome '{oid}' has no scored measurement at '{t}'",
                }
            )
            continue
        share = dict(zip(sub["arm"].astype(str), sub["share_missing"].astype(float), strict=True))
        txt = ", ".join(f"{a} {v:.0%}" for a, v in share.items())
        if max(share.values()) > MISSING_WARN:
            rows.append(
                {
                    "outcome_id": oid,
                    "timepoint": t,
                    "code": "measurements.missing_pattern",
                    "message": f"outcome '{oid}' at '{t}' is missing for {txt} of consented "
                    f"{level} entities",
                }
            )
        if len(share) >= 2 and max(share.values()) - min(share.values()) > DIFFERENTIAL_WARN:
            rows.append(
                {
                    "outcome_id": oid,
                    "timepoint": t,
                    "code": "measurements.differential_missingness",
                    "message": f"outcome '{oid}' at '{t}': missingness differs between arms "
                    f"({txt})",
                }
            )
    return pd.DataFrame(rows, columns=FLAG_COLUMNS)
