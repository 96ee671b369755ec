"""Planning the definitive trial: null-model ICCs against R, the planning table, assurance."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from trialkit import store
from trialkit.data import validate
from trialkit.errors import FeasibilityError, ModelSpecError
from trialkit.feasibility.planning import (
    _correlation,
    _design,
    _las_for_assurance,
    _sd_interval,
    _weights,
    assurance,
    plan_definitive_trial,
)
from trialkit.models.variance_components import fit_null_model
from trialkit.pipeline import DemoResult
from trialkit.power.analytic import CRTDesign, analytic_power, required_clusters
from trialkit.protocol import load_protocol

REF_DIR = Path(__file__).parents[1] / "reference" / "planning"
REF = json.loads((REF_DIR / "reference.json").read_text(encoding="utf-8"))["datasets"]
ROOT = Path(__file__).parents[2]


def _data(name: str) -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "data" / f"{name}.csv")


def _levels(d: pd.DataFrame) -> list[str]:
    return ["la", "kw"] if "kw" in d else ["la"]


# ----------------------------------------------------------------------------- null model vs R
@pytest.fixture(scope="module")
def null_fits() -> dict:
    return {
        name: fit_null_model(_data(name), outcome="y", clusters=_levels(_data(name)))
        for name in REF
    }


@pytest.mark.parametrize("name", sorted(REF))
def test_null_model_matches_lme4(name: str, null_fits: dict) -> None:
    ref, fit = REF[name], null_fits[name]
    assert fit.n_obs == ref["n_obs"]
    assert fit.deviance == pytest.approx(ref["deviance"], rel=1e-10)
    assert fit.intercept == pytest.approx(ref["intercept"], rel=1e-6)
    for k, v in ref["variance_components"].items():
        assert fit.variance_components[k] == pytest.approx(v, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(fit.theta, ref["theta"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(REF))
def test_profile_likelihood_icc_intervals_match_r(name: str, null_fits: dict) -> None:
    ref, fit = REF[name], null_fits[name]
    for level in _levels(_data(name)):
        assert fit.icc[level] == pytest.approx(ref["icc"][level], abs=1e-7)
        assert fit.icc_conf_low[level] == pytest.approx(ref["icc_conf_low"][level], abs=1e-8)
        assert fit.icc_conf_high[level] == pytest.approx(ref["icc_conf_high"][level], abs=1e-8)
        assert fit.icc_conf_low[level] <= fit.icc[level] <= fit.icc_conf_high[level]


@pytest.mark.parametrize("name", sorted(REF))
def test_stored_profile_matches_r(name: str, null_fits: dict) -> None:
    """The top level's profile grid, interpolated at R's points (grid spacing ~0.007)."""
    prof = null_fits[name].profiles["la"]
    ref = REF[name]["profile"]["la"]
    got = np.interp(ref["r"], prof.icc, prof.deviance)
    np.testing.assert_allclose(got, ref["deviance"], atol=0.02)
    assert min(prof.deviance) == pytest.approx(0.0, abs=1e-3)
    assert prof.deviance[-1] == pytest.approx(20.0, abs=1e-3)


def test_descriptives_match_r() -> None:
    d, ref = _data("three_unequal"), REF["three_unequal"]
    s, lo, hi = _sd_interval(d["y"].to_numpy(), 0.05)
    assert (s, lo, hi) == pytest.approx(
        (ref["sd"]["sd"], ref["sd"]["conf_low"], ref["sd"]["conf_high"]), rel=1e-12
    )
    r, rlo, rhi, n = _correlation(d["base"].to_numpy(), d["y"].to_numpy(), 0.05)
    c = ref["correlation"]
    assert (r, rlo, rhi) == pytest.approx((c["r"], c["conf_low"], c["conf_high"]), rel=1e-12)
    assert n == len(d)
    sizes = d.groupby("la").size().to_numpy(dtype=float)
    assert sizes.std(ddof=1) / sizes.mean() == pytest.approx(ref["cluster_size"]["cv"], rel=1e-12)


def test_null_model_bad_input() -> None:
    d = _data("two_level")
    with pytest.raises(ModelSpecError, match="nope"):
        fit_null_model(d, outcome="nope", clusters=["la"])
    with pytest.raises(ModelSpecError) as e:
        fit_null_model(d.assign(y=1.0), outcome="y", clusters=["la"])
    assert e.value.codes == ("fit.null_degenerate",)
    with pytest.raises(ModelSpecError):
        fit_null_model(d.assign(a=1, b=2), outcome="y", clusters=["la", "a", "b"])


# ----------------------------------------------------------------------------- assurance
def test_assurance_is_the_weighted_analytic_power() -> None:
    designs = [
        CRTDesign(
            levels=3,
            subclusters_per_cluster=6,
            units_per_subcluster=3,
            icc_cluster=r,
            icc_subcluster=0.1,
            cv=0.3,
        )
        for r in (0.0, 0.05, 0.2)
    ]
    w = np.array([0.2, 0.5, 0.3])
    for k in (4, 17, 60):
        want = sum(
            wi * analytic_power(d.with_clusters(k), effect=0.3, alpha=0.05).power
            for d, wi in zip(designs, w, strict=True)
        )
        assert assurance(designs, w, k, effect=0.3, alpha=0.05) == pytest.approx(want, rel=1e-12)


def test_assurance_of_a_point_mass_is_the_required_clusters() -> None:
    d = CRTDesign(levels=2, units_per_cluster=10, icc_cluster=0.05)
    k, a = _las_for_assurance([d], np.array([1.0]), effect=0.4, alpha=0.05, power=0.9)
    res = required_clusters(d, effect=0.4, power=0.9)
    assert k == res.clusters
    assert a == pytest.approx(res.power, rel=1e-12)


def test_weights_are_the_normalised_profile_likelihood() -> None:
    x = np.linspace(0, 1, 5)
    w = _weights(x, np.zeros(5))
    np.testing.assert_allclose(w, [0.125, 0.25, 0.25, 0.25, 0.125])


@pytest.mark.slow
def test_assurance_by_simulation() -> None:
    """Trials simulated with ICCs drawn from π reject at the assurance's rate.

    ρ is drawn from the normalised profile likelihood of the LA ICC of a reference
    dataset (with the keyworker ICC at its profile optimum); each trial has K LAs of
    J keyworkers with n families (equal sizes) and is analysed by the t-test on LA
    means (df K − 2), for which the CRT formula's power is exact.
    """
    fit = fit_null_model(_data("three_unequal"), outcome="y", clusters=["la", "kw"])
    prof = fit.profiles["la"]
    grid, other = np.asarray(prof.icc), np.asarray(prof.other_icc)
    w = _weights(grid, np.asarray(prof.deviance))
    J, n, effect = 5, 3, 0.35
    designs = [
        _design("family", J, n, 0.0, float(g), float(o)) for g, o in zip(grid, other, strict=True)
    ]
    K, a = _las_for_assurance(designs, w, effect=effect, alpha=0.05, power=0.8)
    K += K % 2
    a = assurance(designs, w, K, effect=effect, alpha=0.05)
    rng = np.random.default_rng(20261207)
    reps = 6000
    idx = rng.choice(grid.size, size=reps, p=w)
    rho, rkw = grid[idx], np.minimum(other[idx], 1 - grid[idx] - 1e-9)
    treat = np.repeat([0.0, 1.0], K // 2)
    u = rng.standard_normal((reps, K)) * np.sqrt(rho)[:, None]
    v = rng.standard_normal((reps, K, J)) * np.sqrt(rkw)[:, None, None]
    e = rng.standard_normal((reps, K, J, n)) * np.sqrt(1 - rho - rkw)[:, None, None, None]
    y = effect * treat[None, :, None, None] + u[:, :, None, None] + v[:, :, :, None] + e
    means = y.mean(axis=(2, 3))
    t = stats.ttest_ind(means[:, K // 2 :], means[:, : K // 2], axis=1).statistic
    rejected = np.abs(t) > stats.t.isf(0.025, K - 2)
    se = math.sqrt(a * (1 - a) / reps)
    assert abs(rejected.mean() - a) < 4 * se, (K, a, rejected.mean())


# ----------------------------------------------------------------------------- the planning table
@pytest.fixture(scope="module")
def demo_inputs(demo: DemoResult):
    protocol = load_protocol(ROOT / "protocols" / "supporting-families-systemic-pilot.toml")
    rec = store.read_allocation(demo.allocation, keep_default_na=False, with_space=True)
    return protocol, validate(protocol, demo.data, rec), rec


@pytest.fixture(scope="module")
def plan(demo_inputs):
    protocol, td, rec = demo_inputs
    return plan_definitive_trial(protocol, td, rec)


def test_plan_covers_every_continuous_outcome(plan, demo_inputs) -> None:
    protocol = demo_inputs[0]
    assert [o.outcome_id for o in plan.outcomes] == [
        o.id for o in protocol.outcomes if o.type == "continuous"
    ]
    d = plan.to_dict()
    json.dumps(d, allow_nan=False)
    assert {"outcomes", "arms", "methods", "alpha", "power"} <= set(d)
    frame = plan.to_frame()
    assert len(frame) == len(plan.outcomes) and "las_assurance" in frame
    assert "LAs for 0.3 SD" in plan.summary()


def test_plan_numbers_are_consistent(plan) -> None:
    for o in plan.outcomes:
        assert o.icc_la_low <= o.icc_la <= o.icc_la_high
        assert o.sd_low < o.sd < o.sd_high
        assert o.n_las == 12
        if o.level == "family":
            assert o.icc_keyworker_low <= o.icc_keyworker <= o.icc_keyworker_high
            assert o.mean_keyworkers_per_la * o.mean_per_keyworker == pytest.approx(
                o.mean_cluster_size
            )
        if o.target_effect is None:
            assert o.las_point is None and o.las_assurance is None
            continue
        assert o.las_point <= o.las_assurance <= o.las_upper
        assert o.power_point >= 0.9 and o.power_upper >= 0.9 and o.assurance_at_las >= 0.9


def test_las_point_is_required_clusters_on_the_pilot_design(plan) -> None:
    o = next(p for p in plan.outcomes if p.outcome_id == "family_functioning")
    d = CRTDesign(
        levels=3,
        subclusters_per_cluster=o.mean_keyworkers_per_la,
        units_per_subcluster=o.mean_per_keyworker,
        icc_cluster=o.icc_la,
        icc_subcluster=o.icc_keyworker,
        cv=o.cluster_size_cv,
    )
    assert o.las_point == required_clusters(d, effect=0.3, power=0.9, alpha=0.05).clusters
    up = CRTDesign(**{**d.to_dict(), "icc_cluster": o.icc_la_high, "proportions": None})
    assert o.las_upper == required_clusters(up, effect=0.3, power=0.9, alpha=0.05).clusters


def test_retention_by_arm_comes_from_the_flow(plan, demo_inputs) -> None:
    flow = demo_inputs[1].flow
    for a in plan.arms:
        sel = (flow["arm"] == a.arm) & (flow["level"] == "family")
        consented = int(flow.loc[sel & (flow["stage"] == "consented"), "n"].sum())
        assert a.families_consented == consented
        assert a.consent_rate == pytest.approx(consented / a.families_referred)
        assert 0 <= a.family_attrition < 1 and 0 <= a.keyworker_attrition < 1
    assert {a.arm for a in plan.arms} == {"intervention", "control"}


def test_target_effects_override_and_errors(demo_inputs) -> None:
    protocol, td, rec = demo_inputs
    with pytest.raises(FeasibilityError) as e:
        plan_definitive_trial(protocol, td, rec, target_effects={"keyworker_retention": 0.3})
    assert e.value.codes == ("planning.unknown_outcome",)
    with pytest.raises(FeasibilityError) as e:
        plan_definitive_trial(protocol, td, rec, target_effects={"family_functioning": -1})
    assert e.value.codes == ("planning.target_effect",)
    with pytest.raises(FeasibilityError) as e:
        plan_definitive_trial(protocol, td, rec, power=1.5)
    assert e.value.codes == ("planning.setting",)
