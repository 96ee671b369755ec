"""Seeded datasets for the multiple-imputation references (writes data/*.csv).

Run from the repository root, then the R script::

    .venv/bin/python tests/reference/imputation/make_data.py
    Rscript tests/reference/imputation/make_reference.R

* ``two_level.csv``: 16 clusters (8 per arm) of 12-24 people, an auxiliary ``x``
  correlated 0.6 with the outcome, outcome missing at random given ``x`` and arm (~30%).
* ``completed.csv``: 5 completed datasets of ``two_level.csv`` drawn by
  ``trialkit.models.imputation`` (column ``imp``), analysed in R by ``lmer`` + pbkrtest
  and pooled by ``mitml::testEstimates`` (the exact pooling reference).
* ``three_level.csv``: 60 LAs x 5 keyworkers x 8 families, 20% of outcomes missing
  completely at random: the 3-level sampler's posterior against lme4's REML fit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def two_level(seed: int = 20261207) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    arms = rng.permutation(np.repeat([0, 1], 8))
    for c in range(16):
        u = rng.normal(0, 0.4)
        for _ in range(int(rng.integers(12, 25))):
            x = rng.normal(0, 1)
            y = 0.3 * arms[c] + 0.6 * x + u + rng.normal(0, 0.8)
            p_miss = 1 / (1 + np.exp(-(-1.2 + 1.0 * x + 0.3 * arms[c])))
            rows.append(
                {
                    "la": f"C{c + 1:02d}",
                    "treat": int(arms[c]),
                    "x": round(x, 6),
                    "y": round(y, 6) if rng.random() > p_miss else np.nan,
                }
            )
    return pd.DataFrame(rows)


def three_level(seed: int = 20261208) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    arms = rng.permutation(np.repeat([0, 1], 30))
    for la in range(60):
        u = rng.normal(0, 0.5)
        for kw in range(5):
            v = rng.normal(0, 0.4)
            for _ in range(8):
                b = rng.normal(0, 1)
                y = 1.0 + 0.4 * arms[la] + 0.5 * b + u + v + rng.normal(0, 1.0)
                rows.append(
                    {
                        "la": f"L{la + 1:02d}",
                        "kw": f"K{kw + 1}",
                        "treat": int(arms[la]),
                        "baseline": round(b, 6),
                        "y": round(y, 6) if rng.random() > 0.2 else np.nan,
                    }
                )
    return pd.DataFrame(rows)


def main() -> None:
    from trialkit.models.imputation import impute_multilevel

    out = HERE / "data"
    out.mkdir(exist_ok=True)
    d2 = two_level()
    d2.to_csv(out / "two_level.csv", index=False)
    imp = impute_multilevel(
        d2, outcome="y", treatment="treat", clusters=["la"], predictors=["x"], m=5, seed=11
    )
    completed = pd.concat(
        [imp.completed(k).assign(imp=k + 1) for k in range(imp.m)], ignore_index=True
    )
    completed.to_csv(out / "completed.csv", index=False, float_format="%.17g")
    three_level().to_csv(out / "three_level.csv", index=False)


if __name__ == "__main__":
    main()
