"""The multilevel imputation sampler: input rules, determinism, and R jomo / lme4 references.

The jomo comparison (2-level) and the lme4 comparison (3-level) read stored values
(``tests/reference/imputation/reference.json``); see that folder's README for the
Monte Carlo error allowed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialkit.errors import ModelSpecError
from trialkit.models.imputation import impute_multilevel

HERE = Path(__file__).resolve().parents[1] / "reference" / "imputation"


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads((HERE / "reference.json").read_text())


@pytest.fixture(scope="module")
def two_level() -> pd.DataFrame:
    return pd.read_csv(HERE / "data" / "two_level.csv")


def _small(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for la in range(8):
        u = rng.normal(0, 0.5)
        for kw in range(3):
            v = rng.normal(0, 0.3)
            for _ in range(5):
                x = rng.normal()
                y = 0.5 * (la % 2) + x + u + v + rng.normal()
                rows.append(
                    {
                        "la": f"L{la}",
                        "kw": f"K{kw}",
                        "arm": "intervention" if la % 2 else "control",
                        "x": x if rng.random() > 0.1 else np.nan,
                        "region": "north" if la < 4 else "south",
                        "y": y if rng.random() > 0.3 else np.nan,
                    }
                )
    return pd.DataFrame(rows)


KW = {"outcome": "y", "treatment": "arm", "treatment_level": "intervention"}


def test_same_seed_same_draws_and_observed_values_untouched() -> None:
    d = _small()
    a = impute_multilevel(d, **KW, clusters=["la", "kw"], predictors=["x", "region"], m=3, seed=5)
    b = impute_multilevel(d, **KW, clusters=["la", "kw"], predictors=["x", "region"], m=3, seed=5)
    c = impute_multilevel(d, **KW, clusters=["la", "kw"], predictors=["x", "region"], m=3, seed=6)
    assert a.imputed == ("y", "x")
    for col in a.imputed:
        np.testing.assert_array_equal(a.values[col], b.values[col])
        assert not np.array_equal(a.values[col], c.values[col])
    done = a.completed(1)
    assert not done[["y", "x"]].isna().any().any()
    obs = d["y"].notna()
    np.testing.assert_array_equal(done.loc[obs, "y"], d.loc[obs, "y"])
    np.testing.assert_array_equal(done.loc[d["y"].isna(), "y"], a.values["y"][1])
    assert a.n_missing == {"y": int(d["y"].isna().sum()), "x": int(d["x"].isna().sum())}


def test_delta_shifts_only_the_chosen_arms_imputed_outcomes() -> None:
    d = _small()
    imp = impute_multilevel(d, **KW, clusters=["la"], predictors=["x"], m=2, seed=1)
    base = imp.completed(0)
    treated = (d["arm"] == "intervention").to_numpy()
    miss = d["y"].isna().to_numpy()
    for arm, rows in (
        ("treated", treated & miss),
        ("control", ~treated & miss),
        ("both", miss),
    ):
        shifted = imp.completed(0, delta=0.5, delta_arm=arm)
        diff = (shifted["y"] - base["y"]).to_numpy()
        np.testing.assert_allclose(diff[rows], 0.5 * imp.outcome_sd, rtol=1e-12)
        assert np.all(diff[~rows] == 0)
        # the imputed auxiliary is never shifted
        np.testing.assert_array_equal(shifted["x"], base["x"])
    with pytest.raises(ModelSpecError):
        imp.completed(0, delta=0.5, delta_arm="intervention")


def test_by_arm_and_diagnostics() -> None:
    d = _small()
    imp = impute_multilevel(
        d,
        **KW,
        clusters=["la", "kw"],
        predictors=["x"],
        m=4,
        seed=2,
        burn_in=50,
        thin=5,
        by_arm=True,
    )
    diag = imp.diagnostics
    assert diag.iterations == 50 + 4 * 5
    assert diag.trace.shape == (70, len(diag.parameters))
    assert "sigma2|treated" in diag.parameters and "sigma2|control" in diag.parameters
    assert set(diag.to_dict()) >= {"split_rhat", "autocorrelation", "posterior_mean"}
    assert len(diag.to_frame()) == 70
    assert json.dumps(imp.to_dict())


@pytest.mark.parametrize(
    ("change", "kwargs", "code"),
    [
        (
            lambda d: d.assign(y=d["y"].fillna(0.0), x=d["x"].fillna(0.0)),
            {},
            "impute.nothing_missing",
        ),
        (
            lambda d: d.assign(region=d["region"].where(d.index != 3)),
            {},
            "impute.categorical_missing",
        ),
        (lambda d: d.assign(la=d["la"].where(d.index != 3)), {}, "impute.incomplete_design"),
        (lambda d: d, {"predictors": ["nope"]}, "impute.column_missing"),
        (lambda d: d, {"m": 1}, "impute.settings"),
        (lambda d: d, {"prior": "flat"}, "impute.settings"),
        (lambda d: d, {"clusters": []}, "impute.settings"),
        (
            lambda d: d.assign(y=d["y"].astype(object).where(d["y"].isna(), "a")),
            {},
            "impute.outcome_type",
        ),
        (lambda d: d, {"treatment_level": None}, "impute.treatment_levels"),
    ],
)
def test_bad_input_is_refused_with_a_code(change, kwargs, code) -> None:
    args = {**KW, "clusters": ["la", "kw"], "predictors": ["x", "region"], "m": 2, **kwargs}
    with pytest.raises(ModelSpecError) as err:
        impute_multilevel(change(_small()), **args)
    assert err.value.problems[0].code == code


# ---------------------------------------------------------------------------- R references
def _z(a: float, se_a: float, b: float, se_b: float) -> float:
    return (a - b) / math.sqrt(se_a**2 + se_b**2)


def test_two_level_imputations_agree_with_jomo(two_level: pd.DataFrame, reference: dict) -> None:
    """Same model and priors as jomo1rancon; agreement within Monte Carlo error.

    Each missing value's mean over M imputations has MC SE sqrt(var/M) in each program;
    the z-score of the difference is compared cell by cell (max |z| < 4.5 over the
    ~90 cells; each z is N(0, 1) when the two samplers draw from the same
    distribution) and for the arm means of the imputed values (|z| < 4).
    """
    ref = reference["jomo"]
    M = 1000
    imp = impute_multilevel(
        two_level,
        outcome="y",
        treatment="treat",
        clusters=["la"],
        predictors=["x"],
        m=M,
        seed=3,
        burn_in=1000,
        thin=20,
        prior="jomo",
    )
    draws = imp.values["y"]
    assert list(imp.missing_rows["y"]) == ref["missing_rows"]
    mean, var = draws.mean(axis=0), draws.var(axis=0, ddof=1)
    rmean, rvar = np.array(ref["cell_mean"]), np.array(ref["cell_var"])
    z = (mean - rmean) / np.sqrt(var / M + rvar / M)
    assert np.max(np.abs(z)) < 4.5
    # the imputation variance (posterior predictive spread) within 10% on average
    assert np.mean(var) / np.mean(rvar) == pytest.approx(1.0, abs=0.1)
    treat = two_level["treat"].to_numpy()[imp.missing_rows["y"]] == 1
    for arm, rows in (("treated", treat), ("control", ~treat)):
        per_imp = draws[:, rows].mean(axis=1)
        zz = _z(
            per_imp.mean(),
            per_imp.std(ddof=1) / math.sqrt(M),
            ref["imputed_mean"][arm],
            ref["imputed_mean_sd"][arm] / math.sqrt(M),
        )
        assert abs(zz) < 4.0, arm
    # posterior of the parameters: trace after burn-in against jomo's MCMC chain
    d = imp.diagnostics
    post = d.trace[d.burn_in :]
    names = list(d.parameters)
    n_eff = post.shape[0] / 20  # conservative: one independent draw per 20 sweeps
    for ours, theirs in (("beta[treat]", "treat"), ("tau2[la]", "tau2"), ("sigma2", "sigma2")):
        x = post[:, names.index(ours)]
        se = math.sqrt(x.var() / n_eff + ref["posterior_sd"][theirs] ** 2 / (20000 / 20))
        assert abs(x.mean() - ref["posterior_mean"][theirs]) < 4 * se, ours


def test_three_level_posterior_agrees_with_lme4_reml(reference: dict) -> None:
    """The 3-level sampler has no R twin: with 60 LAs its posterior means of the fixed
    effects and variances match lme4's REML estimates on the observed rows (only the
    outcome is missing, so the outcome model uses exactly those rows) within a small
    fraction of the posterior SD plus the Monte Carlo error."""
    ref = reference["three_level"]
    d = pd.read_csv(HERE / "data" / "three_level.csv")
    imp = impute_multilevel(
        d,
        outcome="y",
        treatment="treat",
        clusters=["la", "kw"],
        predictors=["baseline"],
        m=100,
        seed=4,
        burn_in=500,
        thin=20,
    )
    diag = imp.diagnostics
    post = diag.trace[diag.burn_in :]
    names = list(diag.parameters)
    n_eff = post.shape[0] / 20
    for ours, want in (
        ("beta[treat]", ref["fixef"]["treat"]),
        ("tau2[la]", ref["tau2_la"]),
        ("tau2[kw]", ref["tau2_kw"]),
        ("sigma2", ref["sigma2"]),
    ):
        x = post[:, names.index(ours)]
        sd = x.std()
        assert abs(x.mean() - want) < 0.35 * sd + 4 * sd / math.sqrt(n_eff), ours
    tr = post[:, names.index("beta[treat]")]
    assert tr.std() == pytest.approx(ref["se"]["treat"], rel=0.2)
