"""Benchmark: multilevel MI of the demo's primary outcome (m = 50) and the pooled analysis.

* trialkit: ``trialkit.fit(..., missing="multilevel-mi", imputations=50)`` on the demo's
  family-functioning frame (every consented family, 3 levels, the mid-point score as
  auxiliary, baseline and the LA covariates): the imputation alone, and imputation + 50
  linear mixed model fits (Kenward–Roger, one batched engine call) + Rubin's rules; the
  same with the loop of 50 ``fit`` calls; the tipping-point grid (8 values of δ besides 0,
  400 completed datasets) batched and looped;
* R, when ``Rscript`` is on the PATH: ``jomo::jomo1rancon`` (2-level, LA clusters; jomo has
  no 3-level model) with the same burn-in and thinning, then ``lmer`` + pbkrtest KR on each
  completed dataset and ``mitml::testEstimates``.

Run:  .venv/bin/python benchmarks/imputation.py [--repeat 3] [--m 50] [--no-r] [--no-loop]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import trialkit
from trialkit.models.imputation import impute_multilevel
from trialkit.models.multiple_imputation import BatchedLmm, impute_and_fit, tipping_point

COVARIATES = ["baseline", "region", "imd_score", "families_referred_2023"]
GRID = [-1.0, -0.75, -0.5, -0.25, 0.25, 0.5, 0.75, 1.0]


def demo_frame(workdir: Path) -> pd.DataFrame:
    """The demo's primary-outcome frame with missing outcomes and the mid-point score."""
    from trialkit import store
    from trialkit.data import analysis_frame, validate
    from trialkit.pipeline import bundled_example, run_demo
    from trialkit.protocol import load_protocol

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo = run_demo(workdir / "demo", generated="benchmark")
        protocol = load_protocol(bundled_example()[0])
        rec = store.read_allocation(demo.allocation, keep_default_na=False, with_space=True)
        td = validate(protocol, demo.data, rec)
    oc = protocol.primary_outcomes[0]
    frame = analysis_frame(td, protocol, oc.id, include_missing=True).frame
    mid = analysis_frame(td, protocol, oc.id, timepoint="mid", require_baseline=False).frame
    vals = pd.Series(mid["y"].to_numpy(), index=mid["family_id"].to_numpy())
    frame["aux_mid"] = frame["family_id"].map(vals).astype(float)
    return frame


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """Median wall-clock and CPU (process) seconds; CPU time is what the run costs when the
    machine is shared (other processes inflate the wall clock, not the process time)."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return float(np.median(walls)), float(np.median(cpus)), out


R_SCRIPT = r"""
suppressPackageStartupMessages({library(jomo); library(lme4); library(pbkrtest); library(mitml)})
args <- commandArgs(TRUE); d <- read.csv(args[1]); M <- as.integer(args[2])
n <- nrow(d)
d$region <- factor(d$region)
X <- model.matrix(~ treated + baseline + region + imd_score + families_referred_2023, d)
cpu <- function() { p <- proc.time(); p[["user.self"]] + p[["sys.self"]] }
t0 <- proc.time()[["elapsed"]]; c0 <- cpu()
set.seed(1)
imp <- jomo1rancon(Y = data.frame(y = d$y, aux_mid = d$aux_mid), X = as.data.frame(X),
                   Z = data.frame(int = rep(1, n)), clus = as.integer(factor(d$la_id)),
                   nburn = 1000, nbetween = 20, nimp = M, output = 0)
t1 <- proc.time()[["elapsed"]]; c1 <- cpu()
q <- list(); u <- list(); dfs <- numeric(M)
for (k in seq_len(M)) {
  dk <- imp[imp$Imputation == k, ]; dk <- dk[order(dk$id), ]
  dk$la_id <- d$la_id; dk$keyworker_id <- d$keyworker_id; dk$region <- d$region
  f <- lmer(y ~ treated + baseline + region + imd_score + families_referred_2023 +
              (1 | la_id) + (1 | la_id:keyworker_id), data = dk)
  V <- as.matrix(vcovAdj(f)); q[[k]] <- c(treated = fixef(f)[["treated"]])
  u[[k]] <- matrix(V[2, 2], 1, 1); L <- rep(0, length(fixef(f))); L[2] <- 1
  dfs[k] <- get_Lb_ddf(f, L)
}
est <- testEstimates(qhat = q, uhat = u, df.com = mean(dfs))$estimates
t2 <- proc.time()[["elapsed"]]; c2 <- cpu()
cat(sprintf("%.6f %.6f %.6f %.6f %.6f %.6f %.6f %.6f\n", t1 - t0, t2 - t1, t2 - t0, c1 - c0,
            c2 - c1, c2 - c0, est[1, 1], est[1, 2]))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--m", type=int, default=50)
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--no-loop", action="store_true", help="skip the loop-of-fit comparisons")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        frame = demo_frame(Path(tmp))
        n_miss = int(frame["y"].isna().sum())
        print(
            f"demo primary outcome: {len(frame)} families, {n_miss} outcomes missing, "
            f"{int(frame['aux_mid'].isna().sum())} mid-point scores missing; m = {args.m}"
        )
        kw = dict(
            outcome="y",
            treatment="treated",
            covariates=COVARIATES,
            clusters=["la_id", "keyworker_id"],
        )

        def impute_only():
            return impute_multilevel(
                frame,
                outcome="y",
                treatment="treated",
                clusters=["la_id", "keyworker_id"],
                predictors=[*COVARIATES, "aux_mid"],
                m=args.m,
                seed=1,
                burn_in=1000,
                thin=20,
            )

        def full():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return trialkit.fit(
                    frame,
                    **kw,
                    missing="multilevel-mi",
                    auxiliary=["aux_mid"],
                    imputations=args.m,
                    seed=1,
                )

        def analyse(data: pd.DataFrame):
            return trialkit.fit(data, **kw, effect_sizes=False)

        spec = BatchedLmm(
            outcome="y",
            treatment="treated",
            covariates=tuple(COVARIATES),
            clusters=("la_id", "keyworker_id"),
        )

        def with_fits(batched):
            def run():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return impute_and_fit(
                        frame,
                        **kw,
                        analyse=analyse,
                        auxiliary=["aux_mid"],
                        imputations=args.m,
                        seed=1,
                        batched=batched,
                    )

            return run

        t_imp, c_imp, _ = timed(impute_only, args.repeat)
        t_all, c_all, res = timed(full, args.repeat)
        tr = res.treatment  # type: ignore[attr-defined]
        print(f"trialkit imputation (burn-in 1000, thin 20): {t_imp:.3f} s wall, {c_imp:.3f} s CPU")
        print(
            f"trialkit imputation + {args.m} LMM fits (KR, batched) + pooling: {t_all:.3f} s "
            f"wall, {c_all:.3f} s CPU"
        )
        print(
            f"  pooled treatment effect {tr.estimate:.4f} (SE {tr.std_error:.4f}, df {tr.df:.3g})"
        )
        mar, imp = with_fits(spec)()

        def grid(batched):
            def run():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return tipping_point(imp, analyse, GRID, mar=mar, batched=batched)

            return run

        t_g, c_g, tp = timed(grid(spec), args.repeat)
        print(
            f"trialkit tipping-point grid ({len(GRID)} δ x {args.m} = {len(GRID) * args.m} "
            f"completed datasets, batched): {t_g:.3f} s wall, {c_g:.3f} s CPU; {tp.summary()}"
        )
        if not args.no_loop:
            t_l, c_l, loop = timed(with_fits(None), 1)
            print(
                f"trialkit imputation + {args.m} fits as a loop of fit() + pooling: {t_l:.3f} s "
                f"wall, {c_l:.3f} s CPU; |batched - loop| estimate "
                f"{abs(loop[0].treatment.estimate - mar.treatment.estimate):.2e}, df "
                f"{abs(loop[0].treatment.df - mar.treatment.df):.2e}"
            )
            t_gl, c_gl, tpl = timed(grid(None), 1)
            diff = (tpl.table["estimate"] - tp.table["estimate"]).abs().max()
            print(
                f"trialkit tipping-point grid as a loop of fit(): {t_gl:.3f} s wall, "
                f"{c_gl:.3f} s CPU; max |batched - loop| estimate {diff:.2e}"
            )
        if not args.no_r and shutil.which("Rscript"):
            csv = Path(tmp) / "frame.csv"
            frame.to_csv(csv, index=False)
            script = Path(tmp) / "bench.R"
            script.write_text(R_SCRIPT)
            out = subprocess.run(
                ["Rscript", str(script), str(csv), str(args.m)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            r_imp, r_fit, r_all, rc_imp, rc_fit, rc_all, r_est, r_se = map(float, out[-8:])
            print(
                f"R jomo1rancon (2-level, LA clusters), same burn-in/thinning: {r_imp:.3f} s "
                f"wall, {rc_imp:.3f} s CPU"
            )
            print(
                f"R lmer + pbkrtest KR on {args.m} datasets + mitml pooling: {r_fit:.3f} s wall, "
                f"{rc_fit:.3f} s CPU"
            )
            print(
                f"R total: {r_all:.3f} s wall, {rc_all:.3f} s CPU "
                f"(pooled {r_est:.4f}, SE {r_se:.4f})"
            )


if __name__ == "__main__":
    main()
