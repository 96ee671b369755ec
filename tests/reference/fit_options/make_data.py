"""Seeded three-level dataset for the ``fit`` option references (ML + Kenward–Roger, containment df).

Covariates at every level: ``caseload`` per LA, ``female`` per keyworker (constant within a
keyworker, varying within an LA, like ``female`` in ``mlmRev::egsingle``), ``baseline`` per family.
Run from the repository root: ``python tests/reference/fit_options/make_data.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = np.random.default_rng(20261206)
    rows = []
    n_la = 14
    for j in range(n_la):
        treat = j % 2
        caseload = float(np.round(rng.normal(1000, 180)))
        u = rng.normal(0, 1.2)
        for k in range(int(rng.integers(2, 6))):
            female = int(rng.random() < 0.6)
            v = rng.normal(0, 0.9)
            for _ in range(int(rng.integers(3, 11))):
                baseline = rng.normal(20, 4)
                y = (
                    5.0
                    + 1.5 * treat
                    + 0.004 * (caseload - 1000)
                    + 0.8 * female
                    + 0.6 * baseline
                    + u
                    + v
                    + rng.normal(0, 2.0)
                )
                rows.append(
                    {
                        "la": f"LA{j:02d}",
                        "kw": f"K{k}",
                        "treat": treat,
                        "caseload": caseload,
                        "female": female,
                        "baseline": baseline,
                        "y": y,
                    }
                )
    pd.DataFrame(rows).to_csv(HERE / "three_level.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
