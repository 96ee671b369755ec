"""Benchmark: simulation power for the 12-LA pilot design (3 levels), REML + Kenward-Roger.

1,000 replicates of 12 LAs x 10 keyworkers x 12 families, each generated from its own seed
and analysed (``simulate_power``: generation included); compared in the same run with

* trialkit at an earlier git revision (``--before REF``, default 7c1d5bd, the last commit
  before issue #18's engine; its ``src/`` is extracted to a temporary directory and run in a
  subprocess),
* a statsmodels MixedLM loop (REML, z-tests only) and an R loop (lme4 ``lmer`` + pbkrtest
  ``vcovAdj``/``get_Lb_ddf``, timed inside R with ``system.time``), each timed on a few
  replicates and extrapolated to 1,000 (said so in the output).

Times are wall clock, best of ``--repeat`` runs after a warm-up (the load average of the
shared machine is printed).

Run:  .venv/bin/python benchmarks/power.py [--reps 1000] [--statsmodels-reps 20] [--r-reps 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from _timing import BEFORE, best_of, load_note, run_before, run_r

R_LOOP = r"""
suppressPackageStartupMessages({library(lme4); library(pbkrtest)})
a <- commandArgs(TRUE)
d <- read.csv(a[1]); reps <- as.integer(a[2])
L <- matrix(c(0, 1), 1)
s <- system.time(for (i in 0:(reps - 1)) {
  di <- d[d$replicate == i, ]
  di$cluster <- factor(di$cluster); di$subcluster <- factor(di$subcluster)
  m <- suppressMessages(lmer(y ~ treatment + (1 | cluster) + (1 | cluster:subcluster), data = di))
  V <- vcovAdj(m); df <- get_Lb_ddf(m, L)
}) / reps
cat(s[["elapsed"]], s[["user.self"]] + s[["sys.self"]], "\n")
"""


def _scenario(reps: int, method: str) -> Any:
    from trialkit.power import CRTDesign
    from trialkit.power.simulation import Scenario

    design = CRTDesign(
        levels=3,
        clusters=12,
        subclusters_per_cluster=10,
        units_per_subcluster=12,
        icc_cluster=0.05,
        icc_subcluster=0.1,
    )
    return Scenario(
        design=design, effect=0.4, reps=reps, seed=2024, method=method, df_method="kenward-roger"
    )


def trialkit_workloads(reps: int, repeat: int) -> dict[str, Any]:
    """Time ``simulate_power`` with whichever trialkit is importable."""
    from trialkit.errors import PowerError
    from trialkit.power.simulation import simulate_power

    out: dict[str, Any] = {}
    for method in ("lmm", "cluster-level"):
        s = _scenario(reps, method)
        try:
            r = simulate_power(s, chunk_size=reps)
            out[method] = best_of(lambda s=s: simulate_power(s, chunk_size=reps), repeat)
            out[method + "_result"] = [r.power, r.singular, r.failed]
        except PowerError as err:
            out[method + "_error"] = err.message
    return out


def statsmodels_loop(n: int) -> tuple[float, float]:
    import statsmodels.formula.api as smf

    batch = _scenario(n, "lmm").generate(range(n))
    t0 = time.perf_counter()
    c0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(n):
            smf.mixedlm(
                "y ~ treatment",
                batch.frame(i),
                groups="cluster",
                re_formula="1",
                vc_formula={"subcluster": "0 + C(subcluster)"},
            ).fit(reml=True)
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def r_loop(n: int) -> list[float] | None:
    import pandas as pd

    if not shutil.which("Rscript"):
        return None
    batch = _scenario(n, "lmm").generate(range(n))
    frames = []
    for i in range(n):
        f = batch.frame(i)
        f["replicate"] = i
        frames.append(f)
    return run_r(R_LOOP, pd.concat(frames), n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--statsmodels-reps", type=int, default=20)
    ap.add_argument("--r-reps", type=int, default=5)
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--before", default=BEFORE, help="git revision to compare with")
    ap.add_argument("--no-before", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(trialkit_workloads(a.reps, a.repeat)))
        return
    print(f"benchmarks/power.py ({load_note()})")
    now = trialkit_workloads(a.reps, a.repeat)
    before = None
    if not a.no_before:
        before = run_before(
            Path(__file__).resolve(),
            a.before,
            ["--reps", str(a.reps), "--repeat", str(a.repeat)],
        )
    print(f"{a.reps} replicates of 12 LAs x 10 keyworkers x 12 families (generation + analysis)")
    for method in ("lmm", "cluster-level"):
        if method not in now:
            print(f"  trialkit {method:13s}: not available ({now.get(method + '_error')})")
            continue
        best, med, cpu = now[method]
        power, singular, failed = now[method + "_result"]
        text = (
            f"  trialkit {method:13s} {best:7.3f} s (median {med:.3f} s; CPU {cpu:.3f} s; "
            f"power {power:.3f}, singular {singular}, failed {failed})"
        )
        if before is not None and method in before:
            b, _, bc = before[method]
            text += f"   before ({a.before}) {b:.3f} s (CPU {bc:.3f} s), {bc / cpu:4.1f}x less CPU"
        print(text)
    t_lmm = now["lmm"][0] if "lmm" in now else float("nan")
    c_lmm = now["lmm"][2] if "lmm" in now else float("nan")
    per, per_cpu = statsmodels_loop(a.statsmodels_reps)
    print(
        f"  statsmodels MixedLM loop: {per * 1e3:.1f} ms per replicate (CPU {per_cpu * 1e3:.1f} ms;"
        f" timed on {a.statsmodels_reps}, extrapolated): {per * a.reps:.1f} s for {a.reps} "
        f"(REML fit only, z-tests), {per * a.reps / t_lmm:.0f}x trialkit lmm wall, "
        f"{per_cpu * a.reps / c_lmm:.0f}x CPU"
    )
    if a.no_r:
        print("  R: skipped (--no-r)")
        return
    r = r_loop(a.r_reps)
    if r is None:
        print("  R: skipped (Rscript not found)")
    else:
        print(
            f"  R lme4 + pbkrtest loop: {r[0] * 1e3:.0f} ms per replicate (CPU {r[1] * 1e3:.0f} ms;"
            f" system.time over {a.r_reps}, extrapolated): {r[0] * a.reps:.0f} s for {a.reps}, "
            f"{r[0] * a.reps / t_lmm:.0f}x trialkit lmm wall, {r[1] * a.reps / c_lmm:.0f}x CPU"
        )


if __name__ == "__main__":
    main()
