"""Tolerances (absolute) for the robust / cluster-level / GLMM / GEE reference tests.

One place so that a loosened tolerance is visible in review.  Loaded by
tests/models/test_{robust,cluster_level,glmm,gee}.py through :func:`load`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).parent

# clubSandwich (lm and lmer): CR SE, Satterthwaite df, HTZ
CR_SE = 1e-8
CR_DF = 1e-8
CR_VCOV = 1e-12
HTZ_F = 1e-8
HTZ_DF = 1e-8
# equivalences computed in Python (statsmodels HC2, scipy t-tests)
EQUIV = 1e-10
# glmer: against fits with a tight PIRLS tolerance (tolPwrss = 1e-13)
GLMM_BETA_TIGHT = 1e-6
GLMM_THETA_TIGHT = 1e-6
GLMM_LOGLIK_TIGHT = 1e-8
GLMM_SE_TIGHT = 1e-5  # both sides use finite-difference Hessians
# glmer with its default tolPwrss = 1e-7 (the target for Laplace estimates)
GLMM_BETA_DEFAULT = 1e-4
# AGQ (nAGQ = 10)
GLMM_BETA_AGQ = 1e-6
GLMM_LOGLIK_AGQ = 1e-8
# geepack (epsilon = 1e-12)
GEE_COEF = 1e-10
GEE_SE = 1e-10
GEE_ALPHA = 1e-10
# closed-form KC / MD
GEE_KC_MD = 1e-10

DATASETS = ("a", "b")


def reference() -> dict[str, Any]:
    """The stored R results (reference.json)."""
    return json.loads((HERE / "reference.json").read_text())


def data(name: str) -> pd.DataFrame:
    """A seeded dataset, rows sorted by cluster as in the R script."""
    d = pd.read_csv(HERE / f"data_{name}.csv")
    return d.sort_values("cluster", kind="stable").reset_index(drop=True)
