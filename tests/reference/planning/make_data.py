"""Seeded datasets for the null-model (unconditional ICC) reference.

Run from the repository root: ``python tests/reference/planning/make_data.py``.
Writes ``data/<name>.csv`` with ``la, kw, y, base`` (3 levels) or ``la, y`` (2 levels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).parent / "data"


def three_level(seed: int, n_la: int, sd_la: float, sd_kw: float, unequal: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(n_la):
        u = rng.normal(0, sd_la)
        n_kw = int(rng.integers(2, 7)) if unequal else 4
        for k in range(n_kw):
            v = rng.normal(0, sd_kw)
            n_fam = int(rng.integers(1, 6)) if unequal else 3
            for _ in range(n_fam):
                e = rng.normal(0, 6)
                base = 28 + u + 0.5 * v + 0.6 * e + rng.normal(0, 5)
                rows.append((f"LA{j:02d}", f"LA{j:02d}-K{k}", 30 + u + v + e, base))
    return pd.DataFrame(rows, columns=["la", "kw", "y", "base"])


def two_level(seed: int, n_la: int, sd_la: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(n_la):
        u = rng.normal(0, sd_la)
        for _ in range(int(rng.integers(3, 12))):
            rows.append((f"LA{j:02d}", 50 + u + rng.normal(0, 8)))
    return pd.DataFrame(rows, columns=["la", "y"])


def main() -> None:
    OUT.mkdir(exist_ok=True)
    three_level(1, 12, 2.0, 2.5, unequal=True).to_csv(OUT / "three_unequal.csv", index=False)
    three_level(2, 12, 1.5, 1.0, unequal=False).to_csv(OUT / "three_balanced.csv", index=False)
    three_level(3, 12, 0.0, 3.0, unequal=True).to_csv(OUT / "three_small_la.csv", index=False)
    two_level(4, 12, 3.0).to_csv(OUT / "two_level.csv", index=False)


if __name__ == "__main__":
    main()
