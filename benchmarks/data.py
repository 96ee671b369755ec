"""Benchmark: validate a 150-LA trial with ~1,000,000 measurement rows, before and after.

Run:  .venv/bin/python benchmarks/data.py [--n-la 150] [--data DIR] [--before-src PATH]

Simulates the trial (or reads ``--data DIR``, a directory of Parquet tables as
``trialkit simulate`` writes them), writes it as Parquet and as CSV, and times
``trialkit.data.validate`` on both in fresh processes: this checkout's code
("after") and the code under ``--before-src`` ("before", default the main
checkout's ``src``), alternately, ``--repeat`` times each.  It prints wall and
CPU time (``time.process_time``, which counts every thread of the process, so
it says less about the load of the machine than wall time does), the ratio of
the best times, whether both versions give the same problems, flow,
exclusions and scores, and with ``--profile`` the largest cumulative shares of
this checkout's validation.  Target: validation of 1,000,000 measurement rows
in 3 s or less on a 2-core machine.

It ends with the item-range check on a subset: a naive per-row Python loop
against the vectorised check (the ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from trialkit.data.scoring import INSTRUMENTS, item_columns
from trialkit.protocol.load import load_protocol

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"
TABLES = ("clusters", "keyworkers", "families", "measurements", "delivery")

# run in a fresh interpreter with PYTHONPATH set to the version under test
RUN_VALIDATE = """
import cProfile, hashlib, io, json, pstats, sys, time
from pathlib import Path
from trialkit.data import validate
from trialkit.protocol.load import load_protocol
protocol = load_protocol(Path(sys.argv[1]))
data, profile = Path(sys.argv[2]), sys.argv[3] == "1"
prof = cProfile.Profile(time.process_time) if profile else None  # CPU, not the load
t0, c0 = time.perf_counter(), time.process_time()
if prof:
    prof.enable()
td = validate(protocol, data, data)
if prof:
    prof.disable()
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
digest = hashlib.sha256()
for p in td.problems:
    digest.update(repr((p.file, p.row, p.column, p.code, p.message, p.hint, p.severity)).encode())
for frame in (td.flow, td.exclusions, td.scores):
    digest.update(frame.to_csv(index=False).encode())
shares = []
if prof:
    st = pstats.Stats(prof, stream=io.StringIO())
    total = max(st.total_tt, 1e-9)
    for (file, line, name), (_, _, _, cum, _) in st.stats.items():
        if "trialkit" in file and name not in ("validate", "_validate"):
            shares.append((cum / total, file.split("trialkit/")[-1] + ":" + name))
    shares.sort(reverse=True)
print(json.dumps({"wall": wall, "cpu": cpu, "digest": digest.hexdigest(),
                  "rows": td.row_counts()["measurements"], "ok": td.ok,
                  "shares": shares[:14]}))
"""


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


def simulate(n_la: int, keyworkers: float, families: float, out: Path) -> None:
    from trialkit.simulate.trial import simulate_trial

    protocol = load_protocol(PROTOCOL)
    ids = [f"LA{i:03d}" for i in range(1, n_la + 1)]
    rng = np.random.default_rng(1)
    clusters = pd.DataFrame(
        {
            "la_id": ids,
            "region": rng.choice(["Midlands", "North", "South"], n_la),
            "imd_score": rng.uniform(10, 40, n_la).round(1),
            "families_referred_2023": rng.integers(100, 600, n_la),
        }
    )
    alloc = pd.DataFrame(
        {
            "cluster": ids,
            "arm": rng.permutation(
                ["intervention", "control"] * (n_la // 2) + ["control"] * (n_la % 2)
            ),
        }
    )
    t0 = time.perf_counter()
    st = simulate_trial(
        protocol,
        clusters,
        alloc,
        seed=2024,
        n_keyworkers=keyworkers,
        families_per_keyworker=families,
    )
    print(f"simulate_trial: {time.perf_counter() - t0:.2f} s  rows {st.row_counts()}")
    st.save(out, fmt="parquet")


def copy_tables(src: Path, dst: Path, fmt: str) -> None:
    """The tables of ``src`` (Parquet) and its allocation, as ``fmt``, without a manifest."""
    dst.mkdir(parents=True)
    for name in TABLES:
        frame = pd.read_parquet(src / f"{name}.parquet")
        if fmt == "csv":
            frame.to_csv(dst / f"{name}.csv", index=False)
        else:
            frame.to_parquet(dst / f"{name}.parquet", index=False)
    (dst / "allocation.csv").write_bytes((src / "allocation.csv").read_bytes())


def run(src: Path, data: Path, profile: bool = False) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    res = subprocess.run(
        [sys.executable, "-c", RUN_VALIDATE, str(PROTOCOL), str(data), "1" if profile else "0"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise SystemExit(f"validate failed with PYTHONPATH={src}:\n{res.stderr[-2000:]}")
    out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def compare(
    data: Path, label: str, before: Path, after: Path, repeat: int, profile: bool
) -> tuple[float, float]:
    """Time both versions on ``data``; return this checkout's best (wall, CPU) seconds."""
    times: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
    digests: dict[str, str] = {}
    rows = 0
    for _ in range(repeat):
        for which, src in (("before", before), ("after", after)):
            r = run(src, data)
            times[which].append((float(r["wall"]), float(r["cpu"])))  # type: ignore[arg-type]
            digests[which] = str(r["digest"])
            rows = int(r["rows"])  # type: ignore[call-overload]
    bw = min(t[0] for t in times["before"])
    bc = min(t[1] for t in times["before"])
    aw = min(t[0] for t in times["after"])
    ac = min(t[1] for t in times["after"])
    print(
        f"validate {label} ({rows:,} measurement rows), best of {repeat}: "
        f"before {bw:.2f} s wall / {bc:.2f} s CPU, after {aw:.2f} s wall / {ac:.2f} s CPU; "
        f"ratio {bw / aw:.2f}x wall, {bc / ac:.2f}x CPU; "
        f"same results: {'yes' if digests['before'] == digests['after'] else 'NO'}"
    )
    if profile:
        r = run(after, data, profile=True)
        print(f"  where the CPU time goes now ({label}, cumulative share under cProfile):")
        for share, name in r["shares"]:  # type: ignore[attr-defined]
            print(f"    {share:6.1%}  {name}")
    return aw, ac


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-la", type=int, default=150)
    ap.add_argument("--keyworkers", type=float, default=40)
    ap.add_argument("--families-per-keyworker", type=float, default=25)
    ap.add_argument("--data", type=Path, help="Parquet trial directory to use instead")
    ap.add_argument("--before-src", type=Path, default=Path("/work/main/src"))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-csv", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--subset", type=int, default=20_000)
    args = ap.parse_args()
    after = ROOT / "src"
    with tempfile.TemporaryDirectory() as tmp:
        src = args.data
        if src is None:
            src = Path(tmp) / "trial"
            simulate(args.n_la, args.keyworkers, args.families_per_keyworker, src)
        parquet = Path(tmp) / "parquet"
        copy_tables(src, parquet, "parquet")
        pw, pc = compare(parquet, "Parquet", args.before_src, after, args.repeat, args.profile)
        if not args.no_csv:
            csv = Path(tmp) / "csv"
            copy_tables(src, csv, "csv")
            cw, cc = compare(csv, "CSV", args.before_src, after, args.repeat, args.profile)
            print(
                f"CSV against Parquet (after): {cw / pw:.2f}x wall, {cc / pc:.2f}x CPU "
                "(target: within 1.5x)"
            )
        m = pd.read_parquet(src / "measurements.parquet").iloc[: args.subset]
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
