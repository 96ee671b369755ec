"""Benchmark: linear mixed model fit + Kenward-Roger (trialkit vs statsmodels vs R).

* 2,016-row 3-level model (12 LAs x 8 keyworkers x 21 families): trialkit fit + KR
  (engine, and the full ``trialkit.fit`` call), statsmodels MixedLM fit alone
  (``vc_formula`` for keyworkers with ``re_formula="1"`` to keep the LA intercept),
  and R (lme4 fit, pbkrtest KR) when ``Rscript`` is on the PATH;
* 1,000,000-row, 150-LA 3-level model: trialkit alone (model frame + fit + KR);
* 1,000 replicates of the 12-LA design fitted in one batched call.

Run:  .venv/bin/python benchmarks/fit.py [--repeat 50] [--no-r]
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

from trialkit.models import _engine
from trialkit.models.design import build_model_frame
from trialkit.models.fit import fit


def make(n_la: int, kw: int, fam: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    la = np.repeat(np.arange(n_la), kw * fam)
    k = np.tile(np.repeat(np.arange(kw), fam), n_la)
    n = la.size
    t = (la % 2).astype(float)
    b = rng.normal(size=n)
    y = (
        1
        + 0.3 * t
        + 0.5 * b
        + rng.normal(0, 0.5, n_la)[la]
        + rng.normal(0, 0.3, n_la * kw)[la * kw + k]
        + rng.normal(size=n)
    )
    return pd.DataFrame({"la": la, "kw": k, "treat": t, "baseline": b, "y": y})


def best_of(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(pbkrtest)})
d <- read.csv(commandArgs(TRUE)[1])
d$la <- factor(d$la); d$kw <- factor(d$kw)
f <- y ~ treat + baseline + (1 | la) + (1 | la:kw)
m <- lmer(f, data = d); invisible(vcovAdj(m))
reps <- as.integer(commandArgs(TRUE)[2])
t1 <- system.time(for (i in 1:reps) m <- lmer(f, data = d))[["elapsed"]] / reps
L <- matrix(c(0, 1, 0), 1)
t2 <- system.time(for (i in 1:reps) { V <- vcovAdj(m); df <- get_Lb_ddf(m, L) })[["elapsed"]] / reps
cat(t1, t2, "\n")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--no-r", action="store_true")
    a = ap.parse_args()

    d = make(12, 8, 21)
    fr = build_model_frame(
        d, outcome="y", treatment="treat", covariates=["baseline"], clusters=["la", "kw"]
    )
    lay = _engine.make_layout(fr.cluster_codes)
    e1 = np.eye(fr.X.shape[1])[1]

    def engine() -> None:
        f = _engine.fit_lmm(lay, fr.X, fr.y)
        _engine.single_df(f, e1, "kenward-roger")

    def full() -> None:
        fit(
            d,
            outcome="y",
            treatment="treat",
            covariates=["baseline"],
            clusters=["la", "kw"],
            effect_sizes=False,
        )

    t_engine = best_of(engine, a.repeat)
    t_full = best_of(full, a.repeat)
    print(f"2,016 rows, 3 levels: trialkit engine fit + KR      {t_engine * 1e3:8.2f} ms")
    print(f"                      trialkit.fit (frame+fit+KR)   {t_full * 1e3:8.2f} ms")

    import statsmodels.formula.api as smf

    def sm() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            smf.mixedlm(
                "y ~ treat + baseline",
                d,
                groups="la",
                re_formula="1",
                vc_formula={"kw": "0 + C(kw)"},
            ).fit(reml=True)

    t_sm = best_of(sm, max(3, a.repeat // 10))
    print(
        f"                      statsmodels MixedLM fit only  {t_sm * 1e3:8.2f} ms"
        f"   (ratio {t_sm / t_engine:6.1f}x engine, {t_sm / t_full:6.1f}x trialkit.fit)"
    )

    if not a.no_r and shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "d.csv"
            d.to_csv(csv, index=False)
            script = Path(tmp) / "b.R"
            script.write_text(R_SCRIPT)
            out = subprocess.run(
                ["Rscript", str(script), str(csv), "10"], capture_output=True, text=True, check=True
            ).stdout.split()
        t_lmer, t_kr = float(out[0]), float(out[1])
        print(f"                      R lme4 fit                    {t_lmer * 1e3:8.2f} ms")
        print(
            f"                      R pbkrtest KR (vcovAdj+ddf)   {t_kr * 1e3:8.2f} ms"
            f"   (R fit+KR / trialkit engine: {(t_lmer + t_kr) / t_engine:6.1f}x)"
        )
    else:
        print("                      R: skipped (Rscript not found or --no-r)")

    big = make(150, 10, 667, seed=2)
    t0 = time.perf_counter()
    frb = build_model_frame(
        big, outcome="y", treatment="treat", covariates=["baseline"], clusters=["la", "kw"]
    )
    t1 = time.perf_counter()
    layb = _engine.make_layout(frb.cluster_codes)
    fb = _engine.fit_lmm(layb, frb.X, frb.y)
    _engine.single_df(fb, e1, "kenward-roger")
    t2 = time.perf_counter()
    print(
        f"{frb.n_obs:,} rows, 150 LAs:    model frame {t1 - t0:6.3f} s, fit + KR {t2 - t1:6.3f} s,"
        f" total {t2 - t0:6.3f} s"
    )

    rng = np.random.default_rng(3)
    small = make(12, 10, 12)
    frs = build_model_frame(
        small, outcome="y", treatment="treat", covariates=["baseline"], clusters=["la", "kw"]
    )
    lays = _engine.make_layout(frs.cluster_codes)
    Y = frs.y[None, :] + rng.normal(size=(1000, frs.n_obs))
    t0 = time.perf_counter()
    _engine.fit_lmm_batch(lays, frs.X, Y)
    t1 = time.perf_counter()
    print(f"1,000 replicates x {frs.n_obs} rows (batched fit + KR): {t1 - t0:6.3f} s")


if __name__ == "__main__":
    main()
