"""Hypothesis properties of trialkit.randomise."""

from __future__ import annotations

import itertools
import json
import math
import warnings

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from trialkit.errors import RandomisationError, TrialkitWarning
from trialkit.randomise import _space, randomise

FAST = settings(max_examples=25, deadline=None)


@st.composite
def cluster_tables(draw, min_n: int = 4, max_n: int = 12):
    n = draw(st.integers(min_n, max_n))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    ids = [f"C{i:03d}" for i in rng.permutation(900)[:n]]
    frame = pd.DataFrame(
        {
            "id": pd.array(ids, dtype="string"),
            "x1": rng.normal(size=n),
            "x2": rng.integers(0, 100, size=n).astype(float),
            "grp": pd.array(rng.choice(["a", "b", "c"], size=n), dtype="string"),
        }
    )
    return frame


def _run(frame: pd.DataFrame, seed: int, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrialkitWarning)
        try:
            return randomise(frame, seed=seed, id_column="id", **kw)
        except RandomisationError:
            return None


METHODS = [
    {"method": "simple"},
    {"method": "stratified", "strata": ("grp",)},
    {"method": "constrained", "covariates": ("x1", "x2"), "cutoff": 0.5},
]


@FAST
@given(cluster_tables(), st.integers(0, 2**31), st.sampled_from(METHODS))
def test_same_seed_same_allocation(frame, seed, kw) -> None:
    a, b = _run(frame, seed, **kw), _run(frame, seed, **kw)
    assert (a is None) == (b is None)
    if a is not None and b is not None:
        assert a.arms == b.arms and a.to_dict() == b.to_dict()


@FAST
@given(
    cluster_tables(),
    st.integers(0, 2**31),
    st.sampled_from(METHODS),
    st.randoms(use_true_random=False),
)
def test_row_order_invariance(frame, seed, kw, rnd) -> None:
    order = list(range(len(frame)))
    rnd.shuffle(order)
    a, b = _run(frame, seed, **kw), _run(frame.iloc[order].reset_index(drop=True), seed, **kw)
    if a is not None and b is not None:
        assert a.to_frame().equals(b.to_frame())


@FAST
@given(cluster_tables(min_n=2), st.integers(0, 2**31))
def test_arm_sizes_within_strata(frame, seed) -> None:
    a = _run(frame, seed, method="stratified", strata=("grp",))
    assert a is not None
    f = a.to_frame()
    for _, g in f.groupby("stratum"):
        counts = g["arm"].value_counts().reindex(["intervention", "control"], fill_value=0)
        assert abs(int(counts.iloc[0]) - int(counts.iloc[1])) <= 1


@FAST
@given(cluster_tables(min_n=4, max_n=12), st.sampled_from(["l1", "l2"]))
def test_mirror_scores_equal(frame, metric) -> None:
    n = len(frame) - len(frame) % 2
    frame = frame.iloc[:n]
    z = frame[["x1", "x2"]].to_numpy(float)
    z = (z - z.mean(0)) / z.std(0, ddof=1)
    w = np.ones(2)
    codes, raw, _ = _space.enumerate_scores(z, w, n // 2, metric)
    full = np.uint64((1 << n) - 1)
    order = np.argsort(codes)
    mirror = np.searchsorted(codes[order], codes ^ full)
    np.testing.assert_allclose(raw, raw[order][mirror], rtol=1e-9, atol=1e-9)


@FAST
@given(cluster_tables(min_n=3, max_n=12), st.data())
def test_mean_l2_identity(frame, data) -> None:
    n = len(frame)
    n_t = data.draw(st.integers(1, n - 1))
    x = frame[["x1", "x2"]].to_numpy(float)
    if (x.std(0, ddof=1) == 0).any():
        return
    z = (x - x.mean(0)) / x.std(0, ddof=1)
    _, raw, _ = _space.enumerate_scores(z, np.ones(2), n_t, "l2")
    assert len(raw) == math.comb(n, n_t)
    assert (
        raw.mean() == np.float64(2 * n_t * (n - n_t) / n)
        or abs(raw.mean() - 2 * n_t * (n - n_t) / n) < 1e-9
    )


@FAST
@given(cluster_tables(min_n=6, max_n=10), st.integers(0, 2**31))
def test_validity_matches_brute_force(frame, seed) -> None:
    a = _run(frame, seed, method="constrained", covariates=("x1", "x2"), cutoff=0.5)
    if a is None:
        return
    codes = [int(c) for c in a.space.codes]
    n = len(a.clusters)
    for i, j in itertools.combinations(range(n), 2):
        share = sum(((c >> i) & 1) == ((c >> j) & 1) for c in codes) / len(codes)
        assert abs(a.validity.together[i][j] - share) < 1e-12


# --- to_dict(full=True) / from_dict round trips -------------------------------------------
# Allocation and ConstrainedSpace define value equality (arrays elementwise, NaN equal to
# NaN, as NaN sds occur in balance rows), so the rebuilt object is compared with ``==``
# directly; the dictionaries and the short form are compared as well.

ROUND_TRIP_DESIGNS = [
    {"method": "simple"},
    {"method": "simple", "arms": ("a", "b", "c"), "ratio": (2, 1, 1)},
    {"method": "stratified", "strata": ("grp",)},
    {"method": "matched", "covariates": ("x1", "x2")},
    {"method": "matched", "covariates": ("x1", "grp"), "match_distance": "euclidean"},
    {"method": "constrained", "covariates": ("x1", "x2"), "cutoff": 0.5},
    {"method": "constrained", "covariates": ("x1", "grp"), "metric": "l1", "keep": 30},
    {"method": "constrained", "covariates": ("x2",), "strata": ("grp",), "cutoff": 0.6},
]


def _round_trip(a) -> None:
    from trialkit.randomise import Allocation

    d = a.to_dict(full=True)
    text = json.dumps(d, allow_nan=False)
    b = Allocation.from_dict(json.loads(text))
    assert b == a
    assert b.to_dict(full=True) == d
    assert json.dumps(b.to_dict(full=True), allow_nan=False) == text

    def norm(x: dict) -> object:  # ints as floats, NaN as a string
        return json.loads(json.dumps(x), parse_int=float, parse_constant=str)

    assert norm(b.to_dict()) == norm(a.to_dict())
    if a.space is not None:
        assert b.space is not None and len(d["space"]["codes"]) == a.space.n_kept
        assert b.space.codes.dtype == a.space.codes.dtype
        assert np.array_equal(b.space.codes, a.space.codes)
        assert np.array_equal(b.space.scores, a.space.scores)


@settings(max_examples=80, deadline=None)
@given(
    cluster_tables(min_n=4, max_n=14),
    st.integers(0, 2**31),
    st.sampled_from(ROUND_TRIP_DESIGNS),
)
def test_allocation_round_trip(frame, seed, kw) -> None:
    if kw["method"] == "matched":
        frame = frame.iloc[: len(frame) - len(frame) % 2]
    a = _run(frame, seed, **kw)
    if a is not None:
        _round_trip(a)
