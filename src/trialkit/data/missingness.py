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
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trialkit.data._checks import _codes, _first_seen, _str
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


@dataclass(frozen=True, slots=True)
class _Eligible:
    """The eligible entities of one level.

    ``ids`` (distinct), ``arm`` (each entity's position in ``arms``, -1 without an
    arm), ``arms`` (the arms that have an eligible entity, sorted) and ``n`` (the
    number of eligible entities per arm).
    """

    ids: np.ndarray
    arm: np.ndarray
    arms: list[str]
    n: np.ndarray


def _eligible(
    tables: Mapping[str, pd.DataFrame], arm_of: Mapping[str, str]
) -> dict[str, _Eligible]:
    fam = tables["families"]
    kw = tables["keyworkers"]
    out: dict[str, _Eligible] = {}
    for level, frame, id_col, ok in (
        (
            "family",
            fam,
            "family_id",
            fam["consent_date"].notna().to_numpy(dtype=bool, na_value=False),
        ),
        ("keyworker", kw, "keyworker_id", np.ones(len(kw), dtype=bool)),
    ):
        id_c, id_u, id_o = _codes(frame[id_col])
        la_c, la_u, _ = _codes(frame["la_id"])
        rows = np.flatnonzero(ok)
        # an entity's first eligible row (and one row without an id)
        first = rows[_first_seen(id_c[rows] + 1, len(id_u) + 1)]
        arm_u = [arm_of.get(x) for x in la_u]  # one look-up per distinct LA
        names = sorted({a for a in arm_u if a is not None})
        code = {a: i for i, a in enumerate(names)}
        arm_c = np.array([-1 if a is None else code[a] for a in arm_u] + [-1], dtype=np.int64)
        arm_c = arm_c[la_c[first]]
        n = np.bincount(arm_c[arm_c >= 0], minlength=len(names))
        present = np.flatnonzero(n > 0)
        renumber = np.full(len(names) + 1, -1, dtype=np.int64)
        renumber[present] = np.arange(len(present))
        out[level] = _Eligible(
            ids=id_o[first],
            arm=renumber[arm_c],
            arms=[names[i] for i in present],
            n=n[present],
        )
    return out


def _codes_of(values: pd.Series) -> tuple[np.ndarray, dict[object, int]]:
    """Integer codes of a column and the code of each value (-1 for missing)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = np.asarray(values.cat.codes.to_numpy(), dtype=np.int64)
        return codes, {v: i for i, v in enumerate(values.cat.categories)}
    codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    return codes.astype(np.int64), {v: i for i, v in enumerate(uniques)}


def missing_outcome_shares(
    protocol: Protocol,
    tables: Mapping[str, pd.DataFrame],
    scores: pd.DataFrame,
    *,
    entity_codes: tuple[np.ndarray, np.ndarray] | None = None,
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
    entity_codes : (ndarray, ndarray), optional
        ``scores.entity_id`` numbered: one ``int64`` code per row (``-1`` for
        missing) and the values the codes stand for, when the caller has them
        (validation does); else the column is factorised here.

    Returns
    -------
    DataFrame
        ``outcome_id, level, timepoint, arm, n_eligible, n_missing, share_missing,
        has_scores`` (``has_scores`` is False when the outcome has no scored
        measurement at any timepoint), in protocol order of outcomes and timepoints and
        sorted by arm; empty without an allocation.

    Notes
    -----
    Columnar: the scores' entities are numbered once and looked up once per level
    among the eligible entities; an entity counts as scored at a timepoint when any
    of its rows there has a value.
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
    outcome_c, outcome_code = _codes_of(scores["outcome_id"])
    tp_c, tp_code = _codes_of(scores["timepoint"])
    scored = np.flatnonzero(~np.isnan(scores["value"].to_numpy(dtype=float)))
    if entity_codes is not None and len(entity_codes[0]) == len(scores):
        ent_c, ent_u = entity_codes
    else:
        ent_c, ent_u = pd.factorize(
            scores["entity_id"].to_numpy(dtype=object), use_na_sentinel=True
        )
    # each scored row's (outcome, timepoint) among the protocol's, numbered 0 … G-1
    outcome_at = {oc.id: i for i, oc in reversed(list(enumerate(protocol.outcomes)))}
    times = list(dict.fromkeys(t for oc in protocol.outcomes for t in oc.timepoints))
    time_at = {t: i for i, t in enumerate(times)}
    o_map = np.full(len(outcome_code) + 1, -1, dtype=np.int64)  # the last entry: missing
    for v, c in outcome_code.items():
        o_map[c] = outcome_at.get(v, -1)  # type: ignore[call-overload]
    t_map = np.full(len(tp_code) + 1, -1, dtype=np.int64)
    for v, c in tp_code.items():
        t_map[c] = time_at.get(v, -1)  # type: ignore[call-overload]
    o_s, t_s = o_map[outcome_c[scored]], t_map[tp_c[scored]]
    group = np.where((o_s >= 0) & (t_s >= 0), o_s * len(times) + t_s, -1)
    ent_s = np.asarray(ent_c, dtype=np.int64)[scored]
    got_by_level: dict[str, np.ndarray] = {}  # per level: scored (group × eligible entity)
    rows: list[dict[str, object]] = []
    for oc in protocol.outcomes:
        if oc.instrument == "binary" and oc.level.value == "keyworker":
            continue
        base = eligible[oc.level.value]
        if not len(base.ids):
            continue
        if oc.level.value not in got_by_level:
            # one look-up per distinct scored entity (a missing id is never found)
            pos_u = pd.Index(base.ids, dtype=object).get_indexer(np.asarray(ent_u, dtype=object))
            pos = np.append(pos_u, -1)[ent_s]
            hit = (pos >= 0) & (group >= 0)
            got2 = np.zeros((len(protocol.outcomes) * len(times), len(base.ids)), dtype=bool)
            got2[group[hit], pos[hit]] = True
            got_by_level[oc.level.value] = got2
        got2 = got_by_level[oc.level.value]
        has_scores = bool((outcome_c == outcome_code.get(oc.id, -2)).any())
        for t in oc.timepoints:
            got = got2[outcome_at[oc.id] * len(times) + time_at[t]]
            n_got = np.bincount(base.arm[got & (base.arm >= 0)], minlength=len(base.arms))
            for i, a in enumerate(base.arms):
                n, k = int(base.n[i]), int(n_got[i])
                rows.append(
                    {
                        "outcome_id": oc.id,
                        "level": oc.level.value,
                        "timepoint": t,
                        "arm": a,
                        "n_eligible": n,
                        "n_missing": n - k,
                        "share_missing": (n - k) / n if n else float("nan"),
                        "has_scores": has_scores,
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
    rows: list[dict[str, object]] = []
    if not len(shares):
        return pd.DataFrame(columns=FLAG_COLUMNS)
    # one pass over the (few) share rows, grouped by outcome and timepoint in order of
    # first appearance
    groups: dict[tuple[object, object], list[tuple[object, object, object, float]]] = {}
    for oid, t, n, level, scored, arm, share_missing in zip(
        shares["outcome_id"].tolist(),
        shares["timepoint"].tolist(),
        shares["n_eligible"].tolist(),
        shares["level"].tolist(),
        shares["has_scores"].tolist(),
        shares["arm"].tolist(),
        shares["share_missing"].tolist(),
        strict=True,
    ):
        sub = groups.setdefault((oid, t), [])
        if n > 0:
            sub.append((level, scored, arm, share_missing))
    for (oid, t), sub in groups.items():
        if not sub:
            continue
        level = str(sub[0][0])
        if not bool(sub[0][1]):
            rows.append(
                {
                    "outcome_id": oid,
                    "timepoint": t,
                    "code": "measurements.outcome_missing",
                    "message": f"outcome '{oid}' has no scored measurement at '{t}'",
                }
            )
            continue
        share = {str(a): float(v) for _, _, a, v in sub}
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
