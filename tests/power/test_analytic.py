"""Analytic power/MDES against independently computed reference values (R, see README)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from scipy import stats

from trialkit.errors import PowerError
from trialkit.power import (
    AnalyticResult,
    CRTDesign,
    analytic_mdes,
    analytic_power,
    binary_icc_from_latent,
    required_clusters,
    standard_error,
)

REF = json.loads((Path(__file__).parents[1] / "reference" / "power" / "reference.json").read_text())

# all tolerances in one place
TOL_SE = 1e-12  # closed form
TOL_POWERUP = 1e-10  # t quantiles
TOL_EXACT = 1e-8  # root of the noncentral t power (R's pt vs scipy's nct)
TOL_POWER = 1e-9
TOL_ICC = 1e-8


def _design(inp: dict) -> CRTDesign:
    kw = dict(
        levels=int(inp["levels"]),
        clusters=int(inp["K"]),
        icc_cluster=inp["rho"],
        r2_unit=inp.get("r21", 0.0),
        cluster_covariates=int(inp.get("g", 0)),
        treated_fraction=inp.get("P", 0.5),
        cv=inp.get("cv", 0.0),
        cv_method=inp.get("cvm", "eldridge"),
    )
    if inp["levels"] == 2:
        kw.update(units_per_cluster=inp["n"], r2_cluster=inp.get("r22", 0.0))
    else:
        kw.update(
            subclusters_per_cluster=inp["J"],
            units_per_subcluster=inp["n"],
            icc_subcluster=inp["rho2"],
            r2_subcluster=inp.get("r22", 0.0),
            r2_cluster=inp.get("r23", 0.0),
        )
    return CRTDesign(**kw)


CASES = sorted(REF["continuous"])


def _settings(inp: dict) -> dict:
    return {"alpha": inp.get("alpha", 0.05), "two_tailed": inp.get("two", True)}


@pytest.mark.parametrize("case", CASES)
def test_se_and_df(case: str) -> None:
    ref = REF["continuous"][case]
    d = _design(ref["input"])
    assert standard_error(d) == pytest.approx(ref["output"]["se"], rel=TOL_SE)
    assert d.df == ref["output"]["df"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", ["powerup", "exact"])
def test_mdes_and_ci(case: str, kind: str) -> None:
    ref = REF["continuous"][case]
    out = ref["output"]
    r = analytic_mdes(_design(ref["input"]), multiplier=kind, **_settings(ref["input"]))
    tol = TOL_POWERUP if kind == "powerup" else TOL_EXACT
    assert r.mdes == pytest.approx(out[f"mdes_{kind}"], rel=tol)
    assert r.conf_low == pytest.approx(out[f"conf_low_{kind}"], rel=tol, abs=1e-12)
    assert r.conf_high == pytest.approx(out[f"conf_high_{kind}"], rel=tol)


@pytest.mark.parametrize("case", CASES)
def test_power(case: str) -> None:
    ref = REF["continuous"][case]
    out = ref["output"]
    d = _design(ref["input"])
    s = _settings(ref["input"])
    assert analytic_power(d, effect=0.3, **s).power == pytest.approx(
        out["power_at_0.3"], rel=TOL_POWER
    )
    assert analytic_power(d, effect=out["mdes_powerup"], **s).power == pytest.approx(
        out["power_at_powerup_mdes"], rel=TOL_POWER
    )


@pytest.mark.parametrize("case", CASES)
def test_power_mdes_round_trip_exact(case: str) -> None:
    ref = REF["continuous"][case]
    d = _design(ref["input"])
    s = _settings(ref["input"])
    for target in (0.5, 0.8, 0.9):
        m = analytic_mdes(d, power=target, **s)
        assert analytic_power(d, effect=m.mdes, **s).power == pytest.approx(target, abs=1e-10)


def test_powerup_multiplier_underpowers_small_df() -> None:
    """PowerUp!'s multiplier gives slightly less than the target power with few clusters."""
    d = CRTDesign(levels=2, clusters=6, units_per_cluster=10, icc_cluster=0.1)
    m = analytic_mdes(d, multiplier="powerup")
    assert analytic_power(d, effect=m.mdes).power < 0.8
    assert analytic_mdes(d).mdes > m.mdes


@pytest.mark.parametrize("key", sorted(REF["required_clusters"]))
def test_required_clusters(key: str) -> None:
    es = float(key.split("_")[0][2:])
    kind = key.split("_")[1]
    d = CRTDesign(
        levels=3,
        subclusters_per_cluster=10,
        units_per_subcluster=12,
        icc_cluster=0.05,
        icc_subcluster=0.1,
    )
    r = required_clusters(d, effect=es, multiplier=kind)
    assert r.clusters == REF["required_clusters"][key]
    assert r.power >= 0.8 - 1e-3
    if kind == "exact":
        assert r.power >= 0.8
        below = analytic_power(d.with_clusters(r.clusters - 1), effect=es).power
        assert below < 0.8


@pytest.mark.parametrize("case", sorted(REF["binary"]))
def test_binary(case: str) -> None:
    ref = REF["binary"][case]
    inp = ref["input"]
    d = CRTDesign(
        levels=2,
        clusters=inp["K"],
        units_per_cluster=inp["m"],
        icc_cluster=inp["rho"],
        outcome="binary",
        proportions=(inp["p0"], inp["p1"]),
        test=inp["test"],
    )
    assert standard_error(d) == pytest.approx(ref["output"]["se"], rel=TOL_SE)
    assert analytic_power(d).power == pytest.approx(ref["output"]["power"], rel=TOL_POWER)
    m = analytic_mdes(d)
    d2 = CRTDesign(**{**d.to_dict(), "proportions": (inp["p0"], inp["p0"] + m.mdes)})
    assert analytic_power(d2).power == pytest.approx(0.8, abs=1e-9)


@pytest.mark.parametrize("i", range(len(REF["latent_icc"])))
@pytest.mark.parametrize("link", ["logit", "probit"])
def test_latent_icc(i: int, link: str) -> None:
    ref = REF["latent_icc"][i]
    got = binary_icc_from_latent(ref["icc_latent"], ref["prevalence"], link=link)
    assert got == pytest.approx(ref[link], rel=TOL_ICC)


def test_latent_probit_matches_bivariate_normal() -> None:
    z = stats.norm.ppf(0.3)
    both = stats.multivariate_normal([0, 0], [[1, 0.2], [0.2, 1]]).cdf([z, z])
    assert binary_icc_from_latent(0.2, 0.3, link="probit") == pytest.approx(
        (both - 0.09) / 0.21, abs=1e-5
    )


def test_closed_form_2_level() -> None:
    """Hand computation: J=20, n=25, ρ=0.1 → SE² = (0.1 + 0.9/25)/(0.25·20)."""
    d = CRTDesign(levels=2, clusters=20, units_per_cluster=25, icc_cluster=0.1)
    se = math.sqrt((0.1 + 0.9 / 25) / 5)
    m = analytic_mdes(d, multiplier="powerup")
    assert m.mdes == pytest.approx((stats.t.ppf(0.975, 18) + stats.t.ppf(0.8, 18)) * se, rel=1e-14)


def test_eldridge_design_effect_form() -> None:
    """The Eldridge factor reproduces DE = 1 + ((CV²+1)m̄ − 1)ρ without covariates."""
    rho, m, cv, j = 0.05, 20, 0.6, 24
    d = CRTDesign(levels=2, clusters=j, units_per_cluster=m, icc_cluster=rho, cv=cv)
    de = 1 + ((cv**2 + 1) * m - 1) * rho
    assert standard_error(d) ** 2 == pytest.approx(de / (m * 0.25 * j), rel=1e-14)


def test_large_lambda_no_nan() -> None:
    d = CRTDesign(levels=2, clusters=400, units_per_cluster=100, icc_cluster=0.01)
    r = analytic_power(d, effect=3.0)
    assert r.power == pytest.approx(1.0)
    assert not math.isnan(r.power)


def test_result_round_trip() -> None:
    d = CRTDesign(
        levels=3,
        clusters=12,
        subclusters_per_cluster=10,
        units_per_subcluster=12,
        icc_cluster=0.05,
        icc_subcluster=0.1,
    )
    for r in (analytic_mdes(d), analytic_power(d, effect=0.4), required_clusters(d, effect=0.3)):
        back = AnalyticResult.from_dict(json.loads(json.dumps(r.to_dict())))
        assert back.to_dict() == r.to_dict()
        assert repr(back) == repr(r)
        assert len(r.to_frame()) == 1
        assert "cluster" in r.summary()
    b = CRTDesign(
        levels=2,
        clusters=20,
        units_per_cluster=30,
        icc_cluster=0.05,
        outcome="binary",
        proportions=(0.3, float("nan")),
        test="z",
    )
    r = analytic_mdes(b)
    back = AnalyticResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back.mdes == r.mdes and back.df == math.inf


# ------------------------------------------------------------------- bad inputs
def _codes(**kw) -> tuple[str, ...]:
    with pytest.raises(PowerError) as info:
        analytic_mdes(CRTDesign(**kw))
    return info.value.codes


BASE3 = dict(
    levels=3,
    clusters=12,
    subclusters_per_cluster=10,
    units_per_subcluster=12,
    icc_cluster=0.05,
    icc_subcluster=0.1,
)


def test_icc_sum() -> None:
    assert "power.icc_sum" in _codes(**{**BASE3, "icc_cluster": 0.6, "icc_subcluster": 0.4})


def test_too_few_clusters() -> None:
    assert "power.too_few_clusters" in _codes(**{**BASE3, "clusters": 3, "cluster_covariates": 1})


@pytest.mark.parametrize("p", [0.0, 1.0, -0.2, 1.5])
def test_fraction(p: float) -> None:
    assert "power.treated_fraction" in _codes(**{**BASE3, "treated_fraction": p})


def test_r2_and_icc_ranges_all_reported() -> None:
    codes = _codes(**{**BASE3, "r2_unit": 1.0, "icc_cluster": -0.1})
    assert "power.r2_range" in codes and "power.icc_range" in codes


def test_bad_power_alpha_multiplier() -> None:
    d = CRTDesign(**BASE3)
    with pytest.raises(PowerError) as e:
        analytic_mdes(d, power=0.01)
    assert e.value.codes == ("power.power_range",)
    with pytest.raises(PowerError) as e:
        analytic_mdes(d, alpha=1.2)
    assert e.value.codes == ("power.alpha",)
    with pytest.raises(PowerError) as e:
        analytic_mdes(d, multiplier="bogus")  # type: ignore[arg-type]
    assert e.value.codes == ("power.multiplier",)


def test_binary_needs_proportions() -> None:
    assert "power.proportions_missing" in _codes(
        levels=2, clusters=10, units_per_cluster=5, icc_cluster=0.1, outcome="binary"
    )
