"""Generate the seeded datasets used by the robust/binary reference tests.

Run from this directory: ``python make_data.py``; then ``Rscript reference.R``.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def two_level(seed: int, n_clusters: int, sizes: tuple[int, int]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    m = rng.integers(sizes[0], sizes[1] + 1, size=n_clusters)
    treat_c = np.array([0, 1] * (n_clusters // 2))
    rng.shuffle(treat_c)
    z_c = rng.normal(size=n_clusters)
    u_c = rng.normal(scale=0.6, size=n_clusters)
    rows = []
    for j in range(n_clusters):
        x = rng.normal(size=m[j])
        eta = 0.3 * treat_c[j] + 0.5 * x + 0.4 * z_c[j] + u_c[j]
        y = 1.0 + eta + rng.normal(size=m[j])
        p = 1.0 / (1.0 + np.exp(-(-0.3 + eta)))
        yb = (rng.uniform(size=m[j]) < p).astype(int)
        for i in range(m[j]):
            rows.append((f"c{j + 1:02d}", treat_c[j], x[i], z_c[j], y[i], yb[i]))
    return pd.DataFrame(rows, columns=["cluster", "treat", "x", "z", "y", "yb"])


if __name__ == "__main__":
    two_level(20261123, 14, (3, 15)).to_csv(HERE / "data_a.csv", index=False, float_format="%.17g")
    two_level(7, 24, (5, 30)).to_csv(HERE / "data_b.csv", index=False, float_format="%.17g")
