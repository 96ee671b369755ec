"""Seeded binary-outcome datasets for the GLMM references (an LA covariate on its natural scale).

``caseload.csv``: 16 LAs, 25–60 families each, LA caseload ≈ 1,000 (unscaled), a family-level
covariate and a 0/1 outcome.  ``boundary.csv``: the same design with no LA variance, so that the
ML estimate of the LA standard deviation is on the boundary (0).
Run from the repository root: ``python tests/reference/glmm/make_data.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

HERE = Path(__file__).resolve().parent


def _make(seed: int, sigma: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(16):
        treat = j % 2
        caseload = float(np.round(rng.normal(1000, 200)))
        u = rng.normal(0, sigma)
        for _ in range(int(rng.integers(25, 61))):
            x = rng.normal(0, 1)
            eta = -0.4 + 0.5 * treat + 0.003 * (caseload - 1000) + 0.4 * x + u
            rows.append(
                {
                    "la": f"LA{j:02d}",
                    "arm": "intervention" if treat else "control",
                    "caseload": caseload,
                    "x": x,
                    "retained": int(rng.random() < expit(eta)),
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    _make(20261207, 0.6).to_csv(HERE / "caseload.csv", index=False, float_format="%.17g")
    _make(20261209, 0.0).to_csv(HERE / "boundary.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
