"""Methods, result objects and input errors of trialkit.randomise."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from trialkit.errors import RandomisationError, TrialkitWarning
from trialkit.randomise import RandomisationSettings, randomise
from trialkit.randomise._matching import distances, optimal_pairs

COVS = ("region", "imd_score", "families_referred_2023")


def _quiet(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrialkitWarning)
        return randomise(**kw)


def test_simple_arm_sizes_and_ratio(clusters: pd.DataFrame) -> None:
    a = randomise(clusters, seed=3, method="simple", arms=("a", "b", "c"), ratio=(2, 1, 1))
    assert a.arm_sizes() == {"a": 6, "b": 3, "c": 3}
    assert a.clusters == tuple(sorted(clusters["la_id"]))
    assert a.bit_generator == "PCG64"


def test_simple_matches_documented_draw(clusters: pd.DataFrame) -> None:
    a = randomise(clusters, seed=11, method="simple")
    perm = np.random.Generator(np.random.PCG64(11)).permutation(12)
    expected = ["intervention" if list(perm).index(i) < 6 else "control" for i in range(12)]
    assert list(a.arms) == expected


def test_odd_total_rule(clusters: pd.DataFrame) -> None:
    eleven = clusters.iloc[:11]
    a = randomise(eleven, seed=1, method="simple")
    assert sorted(a.arm_sizes().values()) == [5, 6]
    with pytest.raises(RandomisationError) as err:
        randomise(eleven, seed=1, method="simple", odd_stratum="error")
    assert "randomise.input.odd_stratum" in err.value.codes


def test_stratified_within_stratum_balance(clusters: pd.DataFrame) -> None:
    a = randomise(clusters, seed=5, method="stratified", strata=("region",))
    f = a.to_frame()
    counts = f.groupby(["stratum", "arm"]).size().unstack()
    assert (counts["intervention"] == 2).all() and (counts["control"] == 2).all()


def test_stratified_odd_strata(clusters: pd.DataFrame) -> None:
    a = randomise(
        clusters, seed=5, method="stratified", strata=("region", "prior_systemic_training")
    )
    f = a.to_frame()
    for _, g in f.groupby("stratum"):
        sizes = g["arm"].value_counts().reindex(["intervention", "control"], fill_value=0)
        assert abs(sizes.iloc[0] - sizes.iloc[1]) <= 1
    with pytest.raises(RandomisationError) as err:
        randomise(
            clusters,
            seed=5,
            method="stratified",
            strata=("region", "prior_systemic_training"),
            odd_stratum="error",
        )
    assert set(err.value.codes) <= {"randomise.input.small_stratum", "randomise.input.odd_stratum"}


def test_matched_given_pairs(clusters: pd.DataFrame) -> None:
    df = clusters.assign(pair=[f"p{i // 2}" for i in range(12)])
    a = randomise(df, seed=2, method="matched", pairs_column="pair")
    f = a.to_frame()
    assert (f.groupby("pair")["arm"].nunique() == 2).all()
    bad = clusters.assign(pair=["x"] * 3 + [f"p{i}" for i in range(9)])
    with pytest.raises(RandomisationError) as err:
        randomise(bad, seed=2, method="matched", pairs_column="pair")
    assert "randomise.input.bad_pair" in err.value.codes


def _brute_matching(d: np.ndarray) -> float:
    n = d.shape[0]

    def best(rest: tuple[int, ...]) -> float:
        if not rest:
            return 0.0
        i = rest[0]
        return min(d[i, j] + best(tuple(k for k in rest[1:] if k != j)) for j in rest[1:])

    return best(tuple(range(n)))


@pytest.mark.parametrize("kind", ["mahalanobis", "euclidean"])
def test_optimal_matching_is_optimal(kind: str) -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(size=(10, 3))
    d = distances(z, kind)
    pairs = optimal_pairs(d)
    assert sorted(i for p in pairs for i in p) == list(range(10))
    assert math.isclose(sum(d[i, j] for i, j in pairs), _brute_matching(d), rel_tol=1e-9)


def test_optimal_matching_fifty_units() -> None:
    z = np.random.default_rng(9).normal(size=(50, 4))
    pairs = optimal_pairs(distances(z, "mahalanobis"))
    assert len(pairs) == 25


def test_matched_optimal(clusters: pd.DataFrame) -> None:
    a = randomise(
        clusters, seed=2, method="matched", covariates=("imd_score", "families_referred_2023")
    )
    f = a.to_frame()
    assert (f.groupby("pair")["arm"].nunique() == 2).all()


def test_constrained_kept_fraction_and_choice(clusters: pd.DataFrame) -> None:
    a = _quiet(clusters=clusters, seed=1, method="constrained", covariates=COVS)
    s = a.space
    assert s is not None and s.n_possible == 924 and s.enumerated
    assert s.target == 92 and s.n_kept >= 92
    assert np.all(np.diff(s.scores) >= 0)
    chosen = int(s.codes[s.chosen_index])
    assert [a.arms[i] == "intervention" for i in range(12)] == [
        bool(chosen >> i & 1) for i in range(12)
    ]
    assert s.chosen_index == int(np.random.Generator(np.random.PCG64(1)).integers(s.n_kept))


def test_constrained_keep_and_mirror_ties(clusters: pd.DataFrame) -> None:
    a = _quiet(
        clusters=clusters, seed=1, method="constrained", covariates=COVS, keep=91, cutoff=None
    )
    s = a.space
    assert s is not None and s.rule == "keep"
    # equal arms: every allocation's mirror scores the same, so ties at the cutoff are kept together
    assert s.target == 91 and s.n_kept == 92
    full = (1 << 12) - 1
    assert {int(c) for c in s.codes} == {full ^ int(c) for c in s.codes}


def test_constrained_limits(clusters: pd.DataFrame) -> None:
    a = _quiet(
        clusters=clusters,
        seed=1,
        method="constrained",
        covariates=COVS,
        limits={"imd_score": 0.1, "families_referred_2023": 0.1},
    )
    s = a.space
    assert s is not None and s.rule == "limits"
    b = a.balance_frame().set_index("covariate")
    for cov in ("imd_score", "families_referred_2023"):
        assert abs(b.loc[cov, "std_difference"]) <= 0.1 + 1e-9
    with pytest.raises(RandomisationError) as err:
        randomise(
            clusters, seed=1, method="constrained", covariates=COVS, limits={"imd_score": 1e-9}
        )
    assert (
        "randomise.space.empty" in err.value.codes
        or "randomise.validity.always_together" in err.value.codes
    )


def test_constrained_sampling_distinct(clusters: pd.DataFrame) -> None:
    a = _quiet(
        clusters=clusters,
        seed=1,
        method="constrained",
        covariates=COVS,
        enumerate_limit=100,
        samples=300,
    )
    s = a.space
    assert s is not None and not s.enumerated and s.n_considered == 300
    assert len(np.unique(s.codes)) == s.n_kept


def test_stratified_constrained(clusters: pd.DataFrame) -> None:
    a = _quiet(
        clusters=clusters,
        seed=1,
        method="constrained",
        strata=("region",),
        covariates=("imd_score",),
    )
    assert a.space is not None and a.space.n_possible == math.comb(4, 2) ** 3
    f = a.to_frame()
    assert (f.groupby(["stratum", "arm"]).size() == 2).all()


def test_validity_warning_and_error(clusters: pd.DataFrame) -> None:
    with pytest.warns(TrialkitWarning, match="pair"):
        a = randomise(clusters, seed=1, method="constrained", covariates=COVS)
    assert a.validity is not None and a.validity.valid and a.validity.flagged
    with pytest.raises(RandomisationError) as err:
        randomise(clusters, seed=1, method="constrained", covariates=COVS, keep=1, cutoff=None)
    assert "randomise.validity.always_together" in err.value.codes


def test_validity_shares_brute_force(clusters: pd.DataFrame) -> None:
    a = _quiet(clusters=clusters, seed=1, method="constrained", covariates=COVS)
    assert a.space is not None and a.validity is not None
    codes = [int(c) for c in a.space.codes]
    i, j = 0, 5
    share = sum(((c >> i) & 1) == ((c >> j) & 1) for c in codes) / len(codes)
    assert a.validity.together[i][j] == pytest.approx(share, abs=1e-12)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (
            lambda d: d.assign(la_id=["LA01"] * 2 + list(d["la_id"][2:])),
            "randomise.input.duplicate_id",
        ),
        (lambda d: d.assign(la_id=[None] + list(d["la_id"][1:])), "randomise.input.missing_id"),
        (
            lambda d: d.assign(imd_score=[np.nan] + list(d["imd_score"][1:])),
            "randomise.input.missing_value",
        ),
        (lambda d: d.assign(imd_score=1.0), "randomise.input.constant_covariate"),
    ],
)
def test_input_errors_name_row_and_column(clusters: pd.DataFrame, mutate, code: str) -> None:
    with pytest.raises(RandomisationError) as err:
        randomise(mutate(clusters), seed=1, method="constrained", covariates=("imd_score",))
    assert code in err.value.codes
    assert any("row" in p.path or "column" in p.path for p in err.value.problems)


def test_more_arms_than_clusters_and_bad_ratio(clusters: pd.DataFrame) -> None:
    with pytest.raises(RandomisationError) as err:
        randomise(clusters.iloc[:2], seed=1, method="simple", arms=("a", "b", "c"))
    assert "randomise.input.too_few_clusters" in err.value.codes
    with pytest.raises(RandomisationError) as err:
        randomise(clusters.iloc[:4], seed=1, method="simple", ratio=(10, 1))
    assert "randomise.input.impossible_ratio" in err.value.codes
    with pytest.raises(RandomisationError) as err:
        RandomisationSettings(method="simple", ratio=(1, 0))
    assert "randomise.settings.ratio" in err.value.codes


def test_settings_from_mapping_roundtrip() -> None:
    s = RandomisationSettings.from_mapping(
        {"method": "constrained", "covariates": ["a"], "weights": {"a": 2}, "keep": 5, "arms": []},
        default_arms=["t", "c"],
    )
    assert s.arms == ("t", "c") and s.keep == 5 and s.cutoff is None
    assert RandomisationSettings.from_mapping(s.to_dict()) == s
    with pytest.raises(RandomisationError) as err:
        RandomisationSettings.from_mapping({"method": "simple", "bogus": 1})
    assert "randomise.settings.unknown" in err.value.codes


def test_result_api(clusters: pd.DataFrame) -> None:
    a = _quiet(clusters=clusters, seed=1, method="constrained", covariates=COVS)
    d = a.to_dict()
    assert d["seed"] == 1 and d["space"]["n_kept"] == a.space.n_kept  # type: ignore[union-attr]
    assert "constrained randomisation of 12 clusters" in a.summary()
    assert repr(a) == repr(_quiet(clusters=clusters, seed=1, method="constrained", covariates=COVS))
    assert list(a.balance_frame()["covariate"].unique()) == list(COVS)
    with pytest.raises(AttributeError):
        a.seed = 2  # type: ignore[misc]


def test_l1_ranking_brute_force(clusters: pd.DataFrame) -> None:
    a = _quiet(
        clusters=clusters,
        seed=1,
        method="constrained",
        covariates=("imd_score", "keyworkers"),
        metric="l1",
    )
    x = clusters.sort_values("la_id")[["imd_score", "keyworkers"]].to_numpy(float)
    z = (x - x.mean(0)) / x.std(0, ddof=1)
    scores = sorted(sum(abs(z[list(t)].sum(0))) for t in itertools.combinations(range(12), 6))
    assert a.space is not None
    np.testing.assert_allclose(a.space.scores, scores[: a.space.n_kept], rtol=1e-10, atol=1e-10)


def test_from_protocol_model_dump_shape(clusters: pd.DataFrame) -> None:
    dumped = {
        "method": "constrained",
        "id_column": "la_id",
        "arms": [],
        "ratio": [],
        "strata": [],
        "covariates": ["region", "imd_score", "families_referred_2023"],
        "weights": {},
        "metric": "l2",
        "cutoff": 0.1,
        "keep": None,
        "limits": {},
        "enumerate_limit": 50000,
        "samples": 50000,
        "odd_stratum": "random-extra",
        "pairs_column": None,
        "match_distance": "mahalanobis",
        "validity_warn": (0.25, 0.75),
    }
    s = RandomisationSettings.from_mapping(dumped, default_arms=["intervention", "control"])
    assert s.ratio == (1, 1) and s.arms == ("intervention", "control")
    a = _quiet(clusters=clusters, settings=s, seed=1)
    b = _quiet(clusters=clusters, seed=1, method="constrained", covariates=COVS)
    assert a.arms == b.arms
