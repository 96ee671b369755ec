"""Benchmark: scoring every allocation for constrained randomisation.

Scores and keeps the best 10% of all C(20, 10) = 184,756 and C(24, 12) =
2,704,156 allocations of clusters with 6 continuous covariates, and compares the
rate with a naive itertools loop (numpy sum per allocation) in the same run
(the naive loop is timed on a prefix of the allocations and its rate
extrapolated).

    .venv/bin/python benchmarks/randomise.py
"""

from __future__ import annotations

import itertools
import math
import resource
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

from trialkit.errors import TrialkitWarning
from trialkit.randomise import randomise

K = 6
NAIVE_PREFIX = 100_000


def clusters(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(2026)
    data = {"id": [f"C{i:02d}" for i in range(n)]}
    data.update({f"x{k}": rng.normal(size=n) for k in range(K)})
    return pd.DataFrame(data)


def naive_rate(frame: pd.DataFrame) -> float:
    x = frame[[f"x{k}" for k in range(K)]].to_numpy()
    z = (x - x.mean(0)) / x.std(0, ddof=1)
    n = len(frame)
    start = time.perf_counter()
    scores = []
    for treated in itertools.islice(itertools.combinations(range(n), n // 2), NAIVE_PREFIX):
        s = z[list(treated)].sum(axis=0)
        scores.append(float(s @ s))
    cut = sorted(scores)[len(scores) // 10 - 1]
    _ = [s for s in scores if s <= cut]
    return NAIVE_PREFIX / (time.perf_counter() - start)


def main() -> None:
    print(
        f"{'clusters':>8} {'allocations':>12} {'seconds':>8} {'alloc/s':>12} {'naive alloc/s':>14} {'speed-up':>9} {'peak MiB':>9}"
    )
    for n in (20, 24):
        frame = clusters(n)
        total = math.comb(n, n // 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TrialkitWarning)
            randomise(
                frame.iloc[:12],
                seed=1,
                method="constrained",
                id_column="id",
                covariates=tuple(f"x{k}" for k in range(K)),
            )  # warm-up
            tracemalloc.start()
            start = time.perf_counter()
            a = randomise(
                frame,
                seed=1,
                method="constrained",
                id_column="id",
                covariates=tuple(f"x{k}" for k in range(K)),
                enumerate_limit=10**8,
            )
            secs = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        assert a.space is not None and a.space.n_considered == total
        rate = total / secs
        naive = naive_rate(frame)
        print(
            f"{n:>8} {total:>12,} {secs:>8.3f} {rate:>12,.0f} {naive:>14,.0f} {rate / naive:>8.0f}x {peak / 2**20:>9.1f}"
        )
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
