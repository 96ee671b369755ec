"""The unconditional logistic GLMM behind the latent-scale ICC (issue #14 item 9).

Against ``lme4::glmer(retained ~ 1 + (1 | la), nAGQ = 1)`` (tests/reference/glmm_null).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from trialkit.models.glmm import null_glmm_variance

REF = Path(__file__).parents[1] / "reference"


@pytest.mark.parametrize("name", ["caseload", "boundary"])
def test_null_glmm_matches_lme4(name: str) -> None:
    ref = json.loads((REF / "glmm_null" / "reference.json").read_text())[name]
    d = pd.read_csv(REF / "glmm" / f"{name}.csv")
    got = null_glmm_variance(d["retained"].to_numpy(), pd.factorize(d["la"])[0])
    assert got["intercept"] == pytest.approx(ref["beta"], abs=2e-5)
    assert math.sqrt(got["sigma2"]) == pytest.approx(ref["theta"], abs=2e-5)
    assert got["icc_latent"] == pytest.approx(ref["icc_latent"], abs=1e-5)
    # trialkit's optimum is at least as good as lme4's (bobyqa stops a little early)
    assert got["loglik"] >= ref["loglik"] - 1e-9
    s2 = got["sigma2"]
    assert got["icc_latent"] == pytest.approx(s2 / (s2 + math.pi**2 / 3), rel=1e-15)
