"""A small deterministic delivery log for tests, docs and the CLI examples (private).

:func:`example_tables` builds clusters, keyworkers, families, allocation and a
delivery log for the pilot protocol's logic model in which intervention LA *j*
delivers a known share ``level[j]`` of every component, control LAs deliver
nothing, and optionally one control LA is contaminated (one CPD day).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from trialkit.data.schema import DELIVERY_COLUMNS

__all__ = ["example_tables"]


def example_tables(
    *,
    levels: Sequence[float] = (1.0, 1.0, 0.8, 0.6, 0.4, 1.0),
    n_control: int = 6,
    keyworkers_per_la: int = 5,
    families_per_la: int = 6,
    contaminate: bool = True,
    seed: int = 1,
) -> dict[str, pd.DataFrame]:
    """Return ``{"clusters", "keyworkers", "families", "allocation", "delivery"}``.

    Intervention LA *j* (``level = L``): the first ``round(5 L)`` CPD days and
    ``round(10 L)`` Foundation days are held and attended by everyone; a
    supervision session is held in ``round(16 L)`` of the 16 months, with a genogram
    and full attendance; the clinician is in post at 1 FTE in ``round(16 L)`` months;
    ``round(n L)`` of the n families get each feedback tool.  So every adherence
    ratio (and the overall index) equals ``round(·)/total`` ≈ L.
    """
    rng = np.random.default_rng(seed)
    n_int = len(levels)
    las = [f"LA{j + 1:02d}" for j in range(n_int + n_control)]
    arms = ["intervention"] * n_int + ["control"] * n_control
    clusters = pd.DataFrame(
        {
            "la_id": las,
            "region": ["North", "South", "Midlands"] * (len(las) // 3) + ["North"] * (len(las) % 3),
        }
    )
    allocation = pd.DataFrame({"cluster": las, "arm": arms})
    kw_rows, fam_rows, rows = [], [], []
    months = pd.period_range("2024-09", "2025-12", freq="M")
    for j, la in enumerate(las):
        kws = [f"{la}-K{k + 1}" for k in range(keyworkers_per_la)]
        for k, kid in enumerate(kws):
            kw_rows.append(
                {
                    "keyworker_id": kid,
                    "la_id": la,
                    "role": "champion" if k < 2 else "keyworker",
                    "start_date": "2024-06-01",
                    "leave_date": None,
                    "years_experience": float(rng.integers(1, 15)),
                }
            )
        fams = [f"{la}-F{f + 1}" for f in range(families_per_la)]
        for f, fid in enumerate(fams):
            fam_rows.append(
                {
                    "family_id": fid,
                    "keyworker_id": kws[f % len(kws)],
                    "la_id": la,
                    "referral_date": "2024-09-15",
                    "consent_date": "2024-10-01",
                    "withdrawal_date": None,
                    "withdrawal_reason": None,
                }
            )
        if arms[j] != "intervention":
            if contaminate and j == n_int:
                rows.append(_training(la, kws[0], "cpd", 1, "2024-10-07"))
            continue
        level = float(levels[j])
        for day in range(1, round(5 * level) + 1):
            for kid in kws:
                rows.append(_training(la, kid, "cpd", day, f"2024-09-{day + 9:02d}"))
        for day in range(1, round(10 * level) + 1):
            for kid in kws[:2]:
                rows.append(_training(la, kid, "foundation", day, f"2024-10-{day + 9:02d}"))
        n_months = round(16 * level)
        for i, m in enumerate(months[:n_months]):
            sid = f"{la}-S{i + 1}"
            rows.append(
                {
                    "record_type": "supervision_session",
                    "la_id": la,
                    "session_id": sid,
                    "date": f"{m}-15",
                    "genogram_used": True,
                    "duration_minutes": 90.0,
                }
            )
            for kid in kws:
                rows.append(
                    {
                        "record_type": "supervision_attendance",
                        "la_id": la,
                        "session_id": sid,
                        "keyworker_id": kid,
                        "attended": True,
                    }
                )
        for i, m in enumerate(months):
            rows.append(
                {
                    "record_type": "clinician_month",
                    "la_id": la,
                    "month": str(m),
                    "fte": 1.0 if i < n_months else 0.0,
                }
            )
        n_fb = round(families_per_la * level)
        for tp, date in (("baseline", "2024-10-15"), ("mid", "2025-04-15"), ("end", "2025-10-15")):
            for f, fid in enumerate(fams):
                rows.append(
                    {
                        "record_type": "feedback",
                        "la_id": la,
                        "keyworker_id": kws[f % len(kws)],
                        "family_id": fid,
                        "timepoint": tp,
                        "instrument": "SCORE-15",
                        "administered": f < n_fb,
                        "date": date,
                    }
                )
    delivery = pd.DataFrame(rows).reindex(columns=list(DELIVERY_COLUMNS))
    return {
        "clusters": clusters,
        "keyworkers": pd.DataFrame(kw_rows),
        "families": pd.DataFrame(fam_rows),
        "allocation": allocation,
        "delivery": delivery,
    }


def _training(la: str, kid: str, course: str, day: int, date: str) -> dict[str, object]:
    return {
        "record_type": "training",
        "la_id": la,
        "keyworker_id": kid,
        "course": course,
        "day": day,
        "date": date,
        "attended": True,
    }
