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
        randtest(data[data["la_id"] != "LA01"], a, outcome="y")
    assert "randomise.randtest.cluster_without_data" in err.value.codes
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
