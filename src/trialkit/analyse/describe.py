"""Descriptive tables: outcome summaries by arm, baseline balance, LA counts.

All numbers are unrounded; the report rounds and applies disclosure control.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from trialkit.protocol.model import Protocol

__all__ = ["baseline_balance", "descriptives", "la_counts"]


def _num(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _stats(values: np.ndarray) -> dict[str, float]:
    v = values[~np.isnan(values)]
    n = len(v)
    return {
        "n": n,
        "mean": float(v.mean()) if n else float("nan"),
        "sd": float(v.std(ddof=1)) if n > 1 else float("nan"),
    }


def descriptives(
    frame: pd.DataFrame, outcome_id: str, outcome_type: str, timepoint: str, baseline_tp: str | None
) -> list[dict[str, Any]]:
    """n, mean and SD (binary: events and proportion) by arm at baseline and follow-up.

    Summaries are over the analysed entities (the analysis population).
    """
    rows: list[dict[str, Any]] = []
    for arm, g in frame.groupby(frame["arm"].astype(str), sort=True):
        occasions = [("follow-up", timepoint, _num(g["y"]))]
        if baseline_tp and "baseline" in g and g["baseline"].notna().any():
            occasions.insert(0, ("baseline", baseline_tp, _num(g["baseline"])))
        for occasion, tp, vals in occasions:
            st = _stats(vals)
            rows.append(
                {
                    "outcome_id": outcome_id,
                    "arm": arm,
                    "occasion": occasion,
                    "timepoint": tp,
                    "n": st["n"],
                    "n_la": int(g.loc[~np.isnan(vals), "la_id"].nunique()),
                    "mean": st["mean"],
                    "sd": st["sd"],
                    "events": float(np.nansum(vals)) if outcome_type == "binary" else np.nan,
                }
            )
    return rows


def baseline_balance(
    protocol: Protocol,
    tables: dict[str, pd.DataFrame],
    arms: dict[str, str],
    frames: dict[str, pd.DataFrame],
) -> pd.DataFrame:
    """Baseline characteristics by arm at LA, keyworker and family level.

    Continuous and count variables: n, mean, SD; categorical: n and proportion per
    category (``category`` column).  Baseline outcome scores are summarised over
    each outcome's analysed entities.
    """
    rows: list[dict[str, Any]] = []

    def add_var(level: str, variable: str, label: str, frame: pd.DataFrame, kind: str) -> None:
        for arm, g in frame.groupby("arm", sort=True):
            if kind == "categorical":
                col = g[variable].astype(object)
                n = int(col.notna().sum())
                for cat in sorted({str(v) for v in frame[variable].dropna().astype(str)}):
                    k = int((col.astype(str) == cat).sum())
                    rows.append(
                        {
                            "level": level,
                            "variable": variable,
                            "label": label,
                            "category": cat,
                            "arm": str(arm),
                            "n": k,
                            "denominator": n,
                            "mean": k / n if n else np.nan,
                            "sd": np.nan,
                            "kind": "proportion",
                        }
                    )
            else:
                st = _stats(_num(g[variable]))
                rows.append(
                    {
                        "level": level,
                        "variable": variable,
                        "label": label,
                        "category": "",
                        "arm": str(arm),
                        "n": st["n"],
                        "denominator": len(g),
                        "mean": st["mean"],
                        "sd": st["sd"],
                        "kind": "mean",
                    }
                )

    cl = tables.get("clusters", pd.DataFrame()).copy()
    if len(cl):
        cl["arm"] = cl["la_id"].astype(str).map(arms)
        cl = cl[cl["arm"].notna()]
        for cov in protocol.data.covariates:
            if cov.level.value == "la" and cov.name in cl.columns:
                add_var("la", cov.name, cov.description or cov.name, cl, cov.type)
        kw_counts = (
            tables.get("keyworkers", pd.DataFrame())
            .groupby("la_id")
            .size()
            .rename("keyworkers_per_la")
        )
        if len(kw_counts):
            cl = cl.merge(kw_counts, left_on="la_id", right_index=True, how="left")
            add_var("la", "keyworkers_per_la", "Keyworkers per LA", cl, "count")
    kw = tables.get("keyworkers", pd.DataFrame()).copy()
    if len(kw):
        kw["arm"] = kw["la_id"].astype(str).map(arms)
        kw = kw[kw["arm"].notna()]
        for cov in protocol.data.covariates:
            if cov.level.value == "keyworker" and cov.name in kw.columns:
                add_var("keyworker", cov.name, cov.description or cov.name, kw, cov.type)
        if "role" in kw.columns:
            add_var("keyworker", "role", "Keyworker role", kw, "categorical")
    for oc in protocol.outcomes:
        fr = frames.get(oc.id)
        if fr is None or not oc.baseline_timepoint or not fr["baseline"].notna().any():
            continue
        sub = fr[["arm", "baseline"]].copy()
        sub["arm"] = sub["arm"].astype(str)
        add_var(
            oc.level.value,
            f"{oc.id}.baseline",
            f"{oc.label} at {oc.baseline_timepoint} (analysed)",
            sub.rename(columns={"baseline": f"{oc.id}.baseline"}),
            "continuous",
        )
    cols = [
        "level",
        "variable",
        "label",
        "category",
        "arm",
        "n",
        "denominator",
        "mean",
        "sd",
        "kind",
    ]
    return pd.DataFrame(rows, columns=cols)


def la_counts(tables: dict[str, pd.DataFrame], arms: dict[str, str], end: Any) -> pd.DataFrame:
    """Families by LA and status (an additive table for disclosure control).

    Status: ``not consented``, ``withdrew``, ``continued``; the row total is the
    number referred.  Plus keyworkers per LA.
    """
    fam = tables.get("families", pd.DataFrame())
    kw = tables.get("keyworkers", pd.DataFrame())
    las = sorted(arms)
    rows: list[dict[str, Any]] = []
    for la in las:
        f = fam[fam["la_id"].astype(str) == la] if len(fam) else fam
        consented = f["consent_date"].notna() if len(f) else pd.Series(dtype=bool)
        withdrew = f["withdrawal_date"].notna() if len(f) else pd.Series(dtype=bool)
        rows.append(
            {
                "la_id": la,
                "arm": arms[la],
                "keyworkers": int((kw["la_id"].astype(str) == la).sum()) if len(kw) else 0,
                "not_consented": int((~consented).sum()),
                "withdrew": int((consented & withdrew).sum()),
                "continued": int((consented & ~withdrew).sum()),
            }
        )
    return pd.DataFrame(
        rows, columns=["la_id", "arm", "keyworkers", "not_consented", "withdrew", "continued"]
    )
