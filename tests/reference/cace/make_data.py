"""Generate the seeded data set used by make_reference.R (run once; output committed)."""

import numpy as np
import pandas as pd

rng = np.random.default_rng(20261123)
rows = []
for j in range(12):
    arm = 1 if j < 6 else 0
    n = int(rng.integers(8, 25))
    u = rng.normal(0, 0.5)
    comply = 1 if (arm == 1 and j not in (1, 4)) else 0
    comply2 = 1 if (arm == 1 and j not in (1, 4)) or j == 9 else 0
    for _i in range(n):
        x = rng.normal()
        y = 1.0 + 0.8 * comply + 0.5 * x + u + rng.normal()
        yb = int(rng.random() < 1 / (1 + np.exp(-(-0.3 + 0.9 * comply + 0.4 * x + u))))
        rows.append(
            {
                "la_id": f"LA{j + 1:02d}",
                "z": arm,
                "d": comply,
                "d2": comply2,
                "x": x,
                "y": y,
                "yb": yb,
            }
        )
df = pd.DataFrame(rows)
with open("data.csv", "w") as fh:
    fh.write("la_id,z,d,d2,x,y,yb\n")
    for r in df.itertuples():
        fh.write(f"{r.la_id},{r.z},{r.d},{r.d2},{r.x!r},{r.y!r},{r.yb}\n")
