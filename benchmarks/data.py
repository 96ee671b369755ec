"""Benchmark: simulate a 150-LA trial with ~1,000,000 measurement rows and validate it.

Run:  .venv/bin/python benchmarks/data.py [--n-la 150] [--families-per-keyworker 17]

Reports the simulation time, the time to write Parquet, the validation time
(target < 10 s for 1,000,000 measurement rows on a 2-core machine) and, on a
subset, the speed-up of the vectorised item-range check over a naive per-row
Python loop (the ratio).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from trialkit.data import validate
from trialkit.data.scoring import INSTRUMENTS, item_columns
from trialkit.protocol.load import load_protocol
from trialkit.simulate.trial import simulate_trial

ROOT = Path(__file__).resolve().parents[1]


def naive_item_check(m: pd.DataFrame) -> int:
    """Per-row loop: count out-of-range items (the baseline)."""
    bad = 0
    cols = item_columns(47)
    for rec in m.itertuples(index=False):
        inst = INSTRUMENTS.get(rec.instrument)
        if inst is None:
            continue
        row = rec._asdict()
        for c in cols[: inst.n_items]:
            v = row.get(c)
            if v is None or v is pd.NA or v != v:
                continue
            if inst.allowed:
                bad += v not in inst.allowed
            elif v < inst.low or v > inst.high:
                bad += 1
    return bad


def vectorised_item_check(m: pd.DataFrame) -> int:
    bad = 0
    for name, sub in m.groupby("instrument", sort=False):
        inst = INSTRUMENTS.get(str(name))
        if inst is None:
            continue
        x = sub[item_columns(inst.n_items)].to_numpy(dtype=float, na_value=np.nan)
        ok = np.isnan(x)
        if inst.allowed:
            ok |= np.isin(x, inst.allowed)
        else:
            ok |= (x >= inst.low) & (x <= inst.high)
        bad += int((~ok).sum())
    return bad


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-la", type=int, default=150)
    ap.add_argument("--keyworkers", type=float, default=40)
    ap.add_argument("--families-per-keyworker", type=float, default=25)
    ap.add_argument("--subset", type=int, default=20_000)
    args = ap.parse_args()
    protocol = load_protocol(ROOT / "protocols" / "supporting-families-systemic-pilot.toml")
    ids = [f"LA{i:03d}" for i in range(1, args.n_la + 1)]
    rng = np.random.default_rng(1)
    clusters = pd.DataFrame(
        {
            "la_id": ids,
            "region": rng.choice(["Midlands", "North", "South"], args.n_la),
            "imd_score": rng.uniform(10, 40, args.n_la).round(1),
            "families_referred_2023": rng.integers(100, 600, args.n_la),
        }
    )
    alloc = pd.DataFrame(
        {
            "cluster": ids,
            "arm": rng.permutation(
                ["intervention", "control"] * (args.n_la // 2) + ["control"] * (args.n_la % 2)
            ),
        }
    )
    t0 = time.perf_counter()
    st = simulate_trial(
        protocol,
        clusters,
        alloc,
        seed=2024,
        n_keyworkers=args.keyworkers,
        families_per_keyworker=args.families_per_keyworker,
    )
    t_sim = time.perf_counter() - t0
    print(f"simulate_trial: {t_sim:.2f} s  rows {st.row_counts()}")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "trial"
        t0 = time.perf_counter()
        st.save(d, fmt="parquet")
        print(f"save (Parquet): {time.perf_counter() - t0:.2f} s")
        t0 = time.perf_counter()
        td = validate(protocol, d, d)
        t_val = time.perf_counter() - t0
        print(
            f"validate: {t_val:.2f} s  ok={td.ok} errors={len(td.errors)} warnings={len(td.warnings)}"
            f"  ({td.row_counts()['measurements']:,} measurement rows)"
        )
    m = st.tables["measurements"].iloc[: args.subset]
    t0 = time.perf_counter()
    a = naive_item_check(m)
    t_naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = vectorised_item_check(m)
    t_vec = time.perf_counter() - t0
    assert a == b
    print(
        f"item range check on {len(m):,} rows: naive loop {t_naive:.3f} s, vectorised {t_vec:.4f} s, "
        f"ratio {t_naive / t_vec:.0f}x"
    )


if __name__ == "__main__":
    main()
