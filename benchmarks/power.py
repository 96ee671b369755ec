"""Benchmark: simulation power for the 12-LA pilot design (3 levels).

1,000 replicates of 12 LAs × 10 keyworkers × 12 families, each generated from its own seed
and analysed; compared in the same process with a statsmodels MixedLM loop (REML, z-tests
only), which is timed on a few replicates and extrapolated to 1,000 (said so in the output).

Run:  .venv/bin/python benchmarks/power.py [--reps 1000] [--statsmodels-reps 20]
"""

from __future__ import annotations

import argparse
import time
import warnings

from trialkit.errors import PowerError
from trialkit.power import CRTDesign
from trialkit.power.simulation import Scenario, simulate_power


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--statsmodels-reps", type=int, default=20)
    a = ap.parse_args()
    design = CRTDesign(
        levels=3,
        clusters=12,
        subclusters_per_cluster=10,
        units_per_subcluster=12,
        icc_cluster=0.05,
        icc_subcluster=0.1,
    )
    timings: dict[str, float] = {}
    for method in ("lmm", "cluster-level"):
        s = Scenario(
            design=design,
            effect=0.4,
            reps=a.reps,
            seed=2024,
            method=method,
            df_method="kenward-roger",
        )
        try:
            simulate_power(Scenario(design=design, effect=0.4, reps=5, seed=1, method=method))
            t0 = time.perf_counter()
            r = simulate_power(s, chunk_size=a.reps)
            timings[method] = time.perf_counter() - t0
            print(
                f"trialkit {method:13s}: {a.reps} reps in {timings[method]:.3f} s "
                f"(power {r.power:.3f}, singular {r.singular}, failed {r.failed})"
            )
        except PowerError as err:
            print(f"trialkit {method:13s}: not available ({err.message})")

    import statsmodels.formula.api as smf

    s = Scenario(design=design, effect=0.4, reps=a.statsmodels_reps, seed=2024)
    batch = s.generate(range(a.statsmodels_reps))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(a.statsmodels_reps):
            df = batch.frame(i)
            m = smf.mixedlm(
                "y ~ treatment",
                df,
                groups="cluster",
                re_formula="1",
                vc_formula={"subcluster": "0 + C(subcluster)"},
            )
            m.fit(reml=True)
    per = (time.perf_counter() - t0) / a.statsmodels_reps
    sm_total = per * a.reps
    print(
        f"statsmodels MixedLM loop: {per * 1000:.1f} ms per replicate, timed on "
        f"{a.statsmodels_reps} replicates and extrapolated to {a.reps}: {sm_total:.1f} s "
        "(REML fit only, z-tests, no KR)"
    )
    for method, t in timings.items():
        print(f"ratio statsmodels / trialkit {method}: {sm_total / t:.0f}x")


if __name__ == "__main__":
    main()
