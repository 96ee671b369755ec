"""Randomisation test (cptest statistic): brute force, ties, and the inverted CI."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from trialkit.errors import DataError, TrialkitWarning
from trialkit.randomise import randomise, randtest


def _individual(
    clusters: pd.DataFrame, effect: float, seed: int = 0
) -> tuple[pd.DataFrame, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrialkitWarning)
        a = randomise(
            clusters,
            seed=4,
            method="constrained",
            covariates=("region", "imd_score", "families_referred_2023"),
        )
    rng = np.random.default_rng(seed)
    rows = []
    arm = dict(zip(a.clusters, a.arms, strict=True))
    for la, imd in zip(clusters["la_id"], clusters["imd_score"], strict=True):
        u = rng.normal()
        for _ in range(int(rng.integers(5, 15))):
            y = 0.1 * imd + u + rng.normal() + (effect if arm[la] == "intervention" else 0.0)
            rows.append({"la_id": la, "y": y, "imd": imd, "b": int(y > 3.5)})
    return pd.DataFrame(rows), a


def _brute(data: pd.DataFrame, a, covs: list[str]) -> tuple[float, float]:
    x = np.column_stack([np.ones(len(data))] + [data[c].to_numpy(float) for c in covs])
    beta = np.linalg.lstsq(x, data["y"].to_numpy(float), rcond=None)[0]
    data = data.assign(r=data["y"] - x @ beta)
    e = data.groupby("la_id")["r"].mean().reindex(a.clusters).to_numpy()

    def stat(treated: set[int]) -> float:
        return np.mean([e[i] for i in treated]) - np.mean(
            [e[i] for i in range(12) if i not in treated]
        )

    obs = stat({i for i in range(12) if a.arms[i] == "intervention"})
    stats = [stat({i for i in range(12) if int(c) >> i & 1}) for c in a.space.codes]
    return obs, sum(abs(s) >= abs(obs) * (1 - 1e-9) for s in stats) / len(stats)


def test_p_value_matches_brute_force(clusters: pd.DataFrame) -> None:
    data, a = _individual(clusters, effect=0.0)
    r = randtest(data, a, outcome="y", covariates=["imd"])
    obs, p = _brute(data, a, ["imd"])
    assert r.statistic == pytest.approx(obs, rel=1e-10)
    assert r.p_value == pytest.approx(p, abs=1e-15)
    assert r.n_allocations == a.space.n_kept and r.space == "kept"


def test_smallest_p_and_mirror_ties(clusters: pd.DataFrame) -> None:
    data, a = _individual(clusters, effect=50.0)
    r = randtest(data, a, outcome="y")
    assert r.p_value == pytest.approx(2 / 92)


def test_ci_inversion(clusters: pd.DataFrame) -> None:
    data, a = _individual(clusters, effect=1.0)
    r = randtest(data, a, outcome="y", covariates=["imd"], conf_level=0.8)
    assert r.conf_low < r.estimate < r.conf_high
    shifted = data.assign(
        y=data["y"]
        - r.conf_high
        * 1.0001
        * (data["la_id"].map(dict(zip(a.clusters, a.arms, strict=True))) == "intervention")
    )
    assert randtest(shifted, a, outcome="y", covariates=["imd"]).p_value <= 0.2
    inside = data.assign(
        y=data["y"]
        - r.estimate
        * (data["la_id"].map(dict(zip(a.clusters, a.arms, strict=True))) == "intervention")
    )
    assert randtest(inside, a, outcome="y", covariates=["imd"]).p_value == pytest.approx(1.0)


def test_binary_and_simple_design(clusters: pd.DataFrame) -> None:
    data, _ = _individual(clusters, effect=0.0)
    s = randomise(clusters, seed=2, method="simple")
    r = randtest(data, s, outcome="b", covariates=["imd"], family="binomial")
    assert r.space == "all" and r.n_allocations == 924 and 0 < r.p_value <= 1 and r.estimate is None
    st = randomise(clusters, seed=2, method="stratified", strata=("region",))
    assert randtest(data, st, outcome="y").n_allocations == 6**3


def test_errors(clusters: pd.DataFrame) -> None:
    data, a = _individual(clusters, effect=0.0)
    with pytest.raises(DataError) as err:
        randtest(data.assign(la_id=data["la_id"].replace("LA01", "LA99")), a, outcome="y")
    assert "randomise.randtest.unknown_cluster" in err.value.codes
    with pytest.raises(DataError):
        randtest(data, a, outcome="nope")


def test_exhaustive_brute_all_space(clusters: pd.DataFrame) -> None:
    data, _ = _individual(clusters, effect=0.3)
    s = randomise(clusters, seed=8, method="simple")
    r = randtest(data, s, outcome="y")
    e = (
        data.groupby("la_id")["y"]
        .apply(lambda v: (v - data["y"].mean()).mean())
        .reindex(s.clusters)
        .to_numpy()
    )
    obs_t = [i for i in range(12) if s.arms[i] == "intervention"]

    def st(t):
        return e[list(t)].mean() - np.delete(e, list(t)).mean()

    obs = st(obs_t)
    allv = [st(t) for t in itertools.combinations(range(12), 6)]
    assert r.p_value == pytest.approx(np.mean([abs(v) >= abs(obs) * (1 - 1e-9) for v in allv]))


def test_la_without_outcome_data_is_left_out_not_a_failure(clusters: pd.DataFrame) -> None:
    # issue #15 item 9: LA05 has no outcome rows ("allocated cluster LA05 has no outcome data")
    data, a = _individual(clusters, effect=0.4)
    sub = data[data["la_id"] != "LA05"]
    with pytest.warns(TrialkitWarning, match="LA05"):
        r = randtest(sub, a, outcome="y", covariates=["imd"])
    assert r.clusters_without_data == ("LA05",)
    assert "no outcome data" in r.left_out_note()
    assert r.to_frame()["n_clusters_without_data"].iloc[0] == 1
    # brute force over the kept space: arm means over the 11 LAs with data
    x = np.column_stack([np.ones(len(sub)), sub["imd"].to_numpy(float)])
    yv = sub["y"].to_numpy(float)
    res = yv - x @ np.linalg.lstsq(x, yv, rcond=None)[0]
    e = pd.Series(res, index=sub["la_id"].to_numpy()).groupby(level=0).mean()
    arm = dict(zip(a.clusters, a.arms, strict=True))

    def stat(t: set[str]) -> float:
        return (
            e[[c for c in e.index if c in t]].mean() - e[[c for c in e.index if c not in t]].mean()
        )

    obs = stat({c for c, v in arm.items() if v == "intervention"})
    from trialkit.randomise import _space

    bits = _space.bits_of(a.space.codes, len(a.clusters))
    allv = [stat({a.clusters[i] for i in np.flatnonzero(b)}) for b in bits]
    assert r.statistic == pytest.approx(obs, rel=1e-12)
    assert r.p_value == pytest.approx(np.mean([abs(v) >= abs(obs) * (1 - 1e-9) for v in allv]))


def test_binary_uses_response_residuals(clusters: pd.DataFrame) -> None:
    # issue #15 item 10: y - p_hat (cptest >= 0.0.4), not (y - p_hat) / (p_hat (1 - p_hat))
    import statsmodels.api as sm

    data, a = _individual(clusters, effect=0.5)
    r = randtest(data, a, outcome="b", covariates=["imd"], family="binomial")
    x = np.column_stack([np.ones(len(data)), data["imd"].to_numpy(float)])
    mu = sm.GLM(data["b"].to_numpy(float), x, family=sm.families.Binomial()).fit().fittedvalues
    e = (
        pd.Series(data["b"].to_numpy(float) - mu, index=data["la_id"].to_numpy())
        .groupby(level=0)
        .mean()
    )
    arm = dict(zip(a.clusters, a.arms, strict=True))
    t = [c for c in e.index if arm[c] == "intervention"]
    c_ = [c for c in e.index if arm[c] != "intervention"]
    assert r.statistic == pytest.approx(e[t].mean() - e[c_].mean(), rel=1e-9)


def test_observed_allocation_outside_the_kept_space_is_refused(clusters: pd.DataFrame) -> None:
    # issue #15 item 6/10: two arms swapped -> not a kept allocation; p = 0 was reported
    import dataclasses

    from trialkit.errors import RandomisationError

    data, a = _individual(clusters, effect=0.0)
    arms = list(a.arms)
    i = arms.index("intervention")
    j = arms.index("control")
    arms[i], arms[j] = arms[j], arms[i]
    swapped = dataclasses.replace(a, arms=tuple(arms))
    codes = a.space.codes
    from trialkit.randomise import _space

    code = _space.codes_of(
        np.array([[1 if x == "intervention" else 0 for x in arms]], dtype=np.uint8)
    )[0]
    if np.any(codes == code):  # pragma: no cover - a swap that stays in the space
        pytest.skip("this swap stays in the kept space")
    with pytest.raises(RandomisationError) as err:
        randtest(data, swapped, outcome="y")
    assert err.value.codes == ("randomise.randtest.outside_space",)
    r = randtest(data, a, outcome="y")
    assert r.p_value >= 1 / r.n_allocations
