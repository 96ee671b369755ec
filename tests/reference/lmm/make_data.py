"""Seeded generator of the LMM reference datasets (writes data/<case>.csv).

Run from the repository root::

    .venv/bin/python tests/reference/lmm/make_data.py
    Rscript tests/reference/lmm/make_reference.R

Every case is described in CASES (see README.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def three_level(
    seed: int,
    n_la: int,
    kw_range: tuple[int, int],
    fam_range: tuple[int, int],
    s_la: float,
    s_kw: float,
    s_e: float = 1.0,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    arms = rng.permutation(np.repeat([0, 1], n_la // 2 + 1)[:n_la])
    for la in range(n_la):
        u = rng.normal(0, s_la)
        imd = rng.normal(0, 1)
        for kw in range(rng.integers(kw_range[0], kw_range[1] + 1)):
            v = rng.normal(0, s_kw)
            for _ in range(rng.integers(fam_range[0], fam_range[1] + 1)):
                base = rng.normal(10, 2)
                y = 20 + 0.5 * arms[la] + 0.6 * base + 0.3 * imd + u + v + rng.normal(0, s_e)
                rows.append((f"LA{la:02d}", f"K{kw}", arms[la], base, imd, y))
    return pd.DataFrame(rows, columns=["la", "kw", "treat", "baseline", "imd", "y"])


def two_level(seed: int, n_la: int, size_range: tuple[int, int], s_la: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    arms = rng.permutation(np.repeat([0, 1], n_la // 2 + 1)[:n_la])
    for la in range(n_la):
        u = rng.normal(0, s_la)
        for _ in range(rng.integers(size_range[0], size_range[1] + 1)):
            base = rng.normal(0, 1)
            y = 1 + 0.4 * arms[la] + 0.5 * base + u + rng.normal()
            rows.append((f"C{la:02d}", arms[la], base, y))
    return pd.DataFrame(rows, columns=["la", "treat", "baseline", "y"])


def main() -> None:
    out = HERE / "data"
    out.mkdir(exist_ok=True)
    cases = {}
    cases["two_level"] = two_level(101, 12, (15, 45), 0.5)
    cases["unequal"] = two_level(102, 14, (1, 80), 0.7)
    # singular: no cluster variance; the seed is chosen so that REML gives 0
    cases["singular"] = two_level(108, 10, (5, 12), 0.0)
    cases["three_level"] = three_level(201, 12, (2, 5), (3, 12), 0.4, 0.5)
    d = three_level(202, 16, (1, 4), (2, 9), 0.6, 0.3)
    rng = np.random.default_rng(203)
    d.loc[rng.choice(len(d), 15, replace=False), "baseline"] = np.nan
    d.loc[rng.choice(len(d), 4, replace=False), "y"] = np.nan
    d["region"] = np.array(["north", "south", "midlands"])[rng.integers(0, 3, len(d))]
    d["arm"] = np.where(d["treat"] == 1, "intervention", "control")
    cases["missing_categorical"] = d
    cases["three_level_singular_top"] = three_level(207, 10, (2, 4), (3, 8), 0.0, 0.6)
    for name, frame in cases.items():
        frame.to_csv(out / f"{name}.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
