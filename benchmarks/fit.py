"""Benchmark: ``trialkit.fit`` + Kenward-Roger on real, unbalanced data and at 1,000,000 rows.

Workloads of issue #18, each printed beside the alternatives measured in the same run:

* **Chem97** (A-level chemistry, R package mlmRev): the 12 LEAs 6, 9, 17, 43, 51, 58, 61, 66,
  67, 96, 107 and 117, which hold 2,008 pupils in 170 schools (real, unbalanced), with a
  pseudo-treatment on alternate LEAs: ``score ~ treat + gcsecnt + gender + (1 | lea) +
  (1 | lea:school)``.  The data are read through ``Rscript`` (mlmRev); without R or mlmRev a
  simulated data set of the same shape is used instead, and the output says so.
  trialkit.fit (the default call; the same with its effect sizes read, which computes them
  since they are computed when first read; and ``effect_sizes=False``) against statsmodels
  MixedLM (REML fit only, z-tests; ``re_formula="1"`` keeps the LEA intercept beside
  ``vc_formula``) and R lme4 ``lmer`` + pbkrtest ``vcovAdj``/``get_Lb_ddf`` (timed inside R
  with ``system.time`` over repetitions), with the estimates of each for comparison.
* **1,000,000 rows**, 150 LAs x 40 keyworkers (Poisson family counts, mean 166.7; simulated):
  trialkit.fit + KR with effect sizes, and the model frame alone.  (statsmodels and R are
  not run at this size: pbkrtest forms n x n matrices.)

``--before REF`` (default: 7c1d5bd, the last commit before issue #18's engine) also runs the
trialkit workloads on ``src/`` of git revision ``REF`` (extracted to a temporary directory, in
a subprocess) in the same run.
Times are wall clock, best and median of ``--repeat`` calls after a warm-up; on a shared
machine the best is the fairer figure (the load average is printed).

Run:  .venv/bin/python benchmarks/fit.py [--repeat 30] [--no-r] [--before REF | --no-before]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _timing import BEFORE, best_of, load_note, ms, run_before, run_r

CHEM97_LEAS = (6, 9, 17, 43, 51, 58, 61, 66, 67, 96, 107, 117)
CHEM97 = dict(
    outcome="score", treatment="treat", covariates=["gcsecnt", "gender"], clusters=["lea", "school"]
)
BIG = dict(outcome="y", treatment="treat", covariates=["baseline"], clusters=["la", "kw"])

R_EXPORT = r"""
suppressPackageStartupMessages(library(mlmRev))
x <- Chem97[as.integer(as.character(Chem97$lea)) %in% as.integer(strsplit(commandArgs(TRUE)[2], ",")[[1]]), ]
write.csv(droplevels(x)[, c("lea", "school", "score", "gender", "gcsecnt")], commandArgs(TRUE)[1], row.names = FALSE)
"""

R_TIME = r"""
suppressPackageStartupMessages({library(lme4); library(pbkrtest)})
a <- commandArgs(TRUE)
d <- read.csv(a[1]); d$lea <- factor(d$lea); d$school <- factor(d$school)
f <- score ~ treat + gcsecnt + gender + (1 | lea) + (1 | lea:school)
m <- suppressMessages(lmer(f, data = d)); V <- vcovAdj(m)
reps <- as.integer(a[2])
s1 <- system.time(for (i in 1:reps) m <- suppressMessages(lmer(f, data = d))) / reps
L <- matrix(c(0, 1, 0, 0), 1)
s2 <- system.time(for (i in 1:reps) { V <- vcovAdj(m); df <- get_Lb_ddf(m, L) }) / reps
cpu <- function(s) s[["user.self"]] + s[["sys.self"]]
cat(s1[["elapsed"]], s2[["elapsed"]], fixef(m)[2], sqrt(V[2, 2]), df, cpu(s1), cpu(s2), "\n")
"""


# ---------------------------------------------------------------------- data
def chem97(use_r: bool) -> tuple[pd.DataFrame, str]:
    """The Chem97 subset (via R/mlmRev) or a simulated data set of the same shape."""
    if use_r and shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "chem97.csv"
            script = Path(tmp) / "export.R"
            script.write_text(R_EXPORT)
            proc = subprocess.run(
                ["Rscript", str(script), str(csv), ",".join(map(str, CHEM97_LEAS))],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode == 0:
                d = pd.read_csv(csv)
                return _with_treatment(d), "Chem97 (mlmRev), 12 LEAs"
    return _with_treatment(_chem97_shaped()), "SIMULATED with Chem97's shape (no R/mlmRev)"


def _chem97_shaped(seed: int = 97) -> pd.DataFrame:
    """2,008 pupils in 170 schools in 12 LEAs with unbalanced sizes (no mlmRev)."""
    rng = np.random.default_rng(seed)
    schools_per_lea = 1 + rng.multinomial(170 - 12, np.full(12, 1 / 12))
    lea = np.repeat(np.arange(12), schools_per_lea)
    pupils = 1 + rng.multinomial(2008 - 170, rng.dirichlet(np.full(170, 2.0)))
    school = np.repeat(np.arange(170), pupils)
    n = school.size
    gcse = rng.normal(0, 0.9, n)
    gender = rng.choice(["F", "M"], n)
    score = (
        5.4
        + 2.5 * gcse
        + 0.6 * (gender == "M")
        + rng.normal(0, 0.15, 12)[lea[school]]
        + rng.normal(0, 1.05, 170)[school]
        + rng.normal(0, 2.2, n)
    )
    return pd.DataFrame(
        {"lea": lea[school], "school": school, "score": score, "gender": gender, "gcsecnt": gcse}
    )


def _with_treatment(d: pd.DataFrame) -> pd.DataFrame:
    leas = sorted(d["lea"].unique())
    d = d.copy()
    d["treat"] = d["lea"].map({v: i % 2 for i, v in enumerate(leas)}).astype(float)
    return d


def big(seed: int = 2) -> pd.DataFrame:
    """About 1,000,000 rows: 150 LAs x 40 keyworkers, Poisson(166.7) families each."""
    rng = np.random.default_rng(seed)
    n_la, kw = 150, 40
    sizes = rng.poisson(166.7, n_la * kw)
    kwid = np.repeat(np.arange(n_la * kw), sizes)
    la = kwid // kw
    n = la.size
    t = (la % 2).astype(float)
    b = rng.normal(size=n)
    y = (
        1.0
        + 0.3 * t
        + 0.5 * b
        + rng.normal(0, 0.5, n_la)[la]
        + rng.normal(0, 0.3, n_la * kw)[kwid]
        + rng.normal(size=n)
    )
    return pd.DataFrame({"la": la, "kw": kwid % kw, "treat": t, "baseline": b, "y": y})


# ---------------------------------------------------------------------- trialkit workloads
def trialkit_workloads(repeat: int, use_r: bool) -> dict[str, Any]:
    """Time the trialkit workloads with whichever trialkit is importable."""
    from trialkit.models.design import build_model_frame
    from trialkit.models.fit import fit

    out: dict[str, Any] = {}
    d, label = chem97(use_r)
    out["chem97_label"] = label
    out["chem97_rows"] = len(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(d, **CHEM97)
        out["chem97_estimate"] = [res.treatment.estimate, res.treatment.std_error, res.treatment.df]
        out["chem97_fit"] = best_of(lambda: fit(d, **CHEM97), repeat)
        # effect sizes read (computed when first read since issue #18; always computed before)
        out["chem97_fit_es"] = best_of(lambda: dict(fit(d, **CHEM97).effect_sizes or {}), repeat)
        out["chem97_fit_no_es"] = best_of(lambda: fit(d, effect_sizes=False, **CHEM97), repeat)
        out["chem97_frame"] = best_of(lambda: build_model_frame(d, **CHEM97), repeat)
        b = big()
        out["big_rows"] = len(b)
        out["big_fit"] = best_of(lambda: fit(b, **BIG), 3)
        out["big_frame"] = best_of(lambda: build_model_frame(b, **BIG), 3)
    return out


def _print_trialkit(now: dict[str, Any], before: dict[str, Any] | None) -> None:
    def line(label: str, key: str) -> None:
        best, med, cpu = now[key]
        text = f"  {label:44s}{ms(best)} (median {ms(med).strip()}; CPU {ms(cpu).strip()})"
        if before is not None and key in before:
            b, _, bc = before[key]
            text += f"   before {ms(b).strip()} (CPU {ms(bc).strip()}), {bc / cpu:5.1f}x less CPU"
        print(text)

    print(f"Chem97 workload: {now['chem97_label']}, {now['chem97_rows']:,} rows")
    line("trialkit.fit + KR (default call)", "chem97_fit")
    line("trialkit.fit + KR, effect sizes read", "chem97_fit_es")
    line("trialkit.fit + KR (effect_sizes=False)", "chem97_fit_no_es")
    line("  of which the model frame", "chem97_frame")
    est = now["chem97_estimate"]
    print(f"  trialkit: treat {est[0]:.6f} (SE {est[1]:.6f}, KR df {est[2]:.4f})")


# ---------------------------------------------------------------------- alternatives
def statsmodels_chem97(d: pd.DataFrame, repeat: int) -> tuple[float, float, float, float, float]:
    import statsmodels.formula.api as smf

    def run() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return smf.mixedlm(
                "score ~ treat + gcsecnt + gender",
                d,
                groups="lea",
                re_formula="1",
                vc_formula={"school": "0 + C(school)"},
            ).fit(reml=True)

    r = run()
    best, med, cpu = best_of(run, repeat)
    return best, med, cpu, float(r.params["treat"]), float(r.bse["treat"])


def r_chem97(d: pd.DataFrame, reps: int) -> list[float] | None:
    return run_r(R_TIME, d, reps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--r-reps", type=int, default=3)
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--before", default=BEFORE, help="git revision to compare with")
    ap.add_argument("--no-before", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(trialkit_workloads(a.repeat, not a.no_r)))
        return

    print(f"benchmarks/fit.py ({load_note()})")
    now = trialkit_workloads(a.repeat, not a.no_r)
    before = None
    if not a.no_before:
        args = ["--repeat", str(a.repeat)] + (["--no-r"] if a.no_r else [])
        before = run_before(Path(__file__).resolve(), a.before, args)
        if before is not None:
            print(f"(before = trialkit at revision {a.before!r}, same run)")
    _print_trialkit(now, before)
    d, _ = chem97(not a.no_r)
    t_fit = now["chem97_fit"][0]
    t_cpu = now["chem97_fit"][2]
    best, med, cpu, est, se = statsmodels_chem97(d, max(3, a.repeat // 10))
    print(
        f"  {'statsmodels MixedLM (REML fit only, z)':44s}{ms(best)} (median {ms(med).strip()}; "
        f"CPU {ms(cpu).strip()})   {best / t_fit:6.1f}x trialkit.fit wall, {cpu / t_cpu:6.1f}x CPU;"
        f" treat {est:.6f} (SE {se:.6f})"
    )
    if a.no_r:
        print("  R: skipped (--no-r)")
    else:
        r = r_chem97(d, a.r_reps)
        if r is None:
            print("  R: skipped (Rscript not found)")
        else:
            t_r = r[0] + r[1]
            c_r = r[5] + r[6]
            print(
                f"  {'R lme4 lmer + pbkrtest KR (system.time)':44s}{ms(t_r)}"
                f" ({ms(r[0]).strip()} fit + {ms(r[1]).strip()} KR; CPU {ms(c_r).strip()})"
                f"   {t_r / t_fit:6.1f}x trialkit.fit wall, {c_r / t_cpu:6.1f}x CPU"
            )
            print(f"  R: treat {r[2]:.6f} (SE {r[3]:.6f}, KR df {r[4]:.4f})")
    print(f"1,000,000-row workload: {now['big_rows']:,} rows, 150 LAs x 40 keyworkers (simulated)")

    def big_line(label: str, key: str) -> None:
        best_, med_, cpu_ = now[key]
        text = f"  {label:44s}{best_:9.3f} s  (median {med_:.3f} s; CPU {cpu_:.3f} s)"
        if before is not None and key in before:
            b, _, bc = before[key]
            text += f"   before {b:.3f} s (CPU {bc:.3f} s), {bc / cpu_:5.1f}x less CPU"
        print(text)

    big_line("trialkit.fit + KR (default call)", "big_fit")
    big_line("  of which the model frame", "big_frame")
    print("  statsmodels / R: not run at this size (pbkrtest forms n x n matrices)")


if __name__ == "__main__":
    main()
