"""Independent reference values for constrained randomisation (Dickinson et al. 2015 data).

cvcrand (GPL R) is not installable here, so the reference is an independent,
deliberately naive pure-Python recomputation of cvcrand's documented definition
(Yu et al., cvcrand vignette; Gallis et al. 2018):

    B_l2(A) = sum_k w_k (xbar_Tk - xbar_Ck)^2,  B_l1(A) = sum_k w_k |xbar_Tk - xbar_Ck|,

with categorical covariates expanded to indicators of every level except the
reference (first level in sorted order, R's factor default) and default weights
w_k = 1 / var(x_k) (variance with n - 1).  Every one of C(16, 8) = 12,870
allocations is enumerated with itertools (no numpy, no trialkit).

Run from the repository root:

    .venv/bin/python tests/reference/randomise/make_reference.py

It writes dickinson_reference.json next to this script (full precision).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "cvcrand_Dickinson_design.csv"
COVARIATES = ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"]
CATEGORICAL = {"location", "incomecat"}


def main() -> None:
    with DATA.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    ids = sorted(r["county"] for r in rows)  # canonical order: text sort
    by_id = {r["county"]: r for r in rows}
    cols: list[list[float]] = []
    names: list[str] = []
    for cov in COVARIATES:
        values = [by_id[i][cov] for i in ids]
        if cov in CATEGORICAL:
            for lev in sorted(set(values))[1:]:
                cols.append([1.0 if v == lev else 0.0 for v in values])
                names.append(f"{cov}[{lev}]")
        else:
            cols.append([float(v) for v in values])
            names.append(cov)
    n = len(ids)
    n_t = n // 2
    var = []
    for c in cols:
        m = sum(c) / n
        var.append(sum((x - m) ** 2 for x in c) / (n - 1))
    scores_l2: list[tuple[float, tuple[str, ...]]] = []
    scores_l1: list[tuple[float, tuple[str, ...]]] = []
    for treated in itertools.combinations(range(n), n_t):
        tset = set(treated)
        l2 = l1 = 0.0
        for c, v in zip(cols, var, strict=True):
            mt = sum(c[i] for i in treated) / n_t
            mc = sum(c[i] for i in range(n) if i not in tset) / (n - n_t)
            l2 += (mt - mc) ** 2 / v
            l1 += abs(mt - mc) / math.sqrt(v)
        key = tuple(ids[i] for i in treated)
        scores_l2.append((l2, key))
        scores_l1.append((l1, key))
    out = {
        "source": "independent itertools recomputation of cvcrand's balance score (make_reference.py)",
        "data": DATA.name,
        "covariates": COVARIATES,
        "coded_columns": names,
        "n_clusters": n,
        "n_treated": n_t,
        "n_allocations": len(scores_l2),
    }
    for label, scores in (("l2", scores_l2), ("l1", scores_l1)):
        vals = sorted(s for s, _ in scores)
        m = round(0.1 * len(vals))  # round(cutoff * N), halves to even as R
        cut = vals[m - 1]
        kept = sorted((s, k) for s, k in scores if s <= cut * (1 + 1e-9))
        out[label] = {
            "mean": sum(vals) / len(vals),
            "min": vals[0],
            "max": vals[-1],
            "cutoff_target": m,
            "cutoff_score": cut,
            "n_kept": len(kept),
            "kept_scores": [s for s, _ in kept],
            "kept_treated_sets": ["|".join(k) for _, k in kept],
        }
    (HERE / "dickinson_reference.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
