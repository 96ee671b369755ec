"""Proportions for feasibility outcomes against R's survey and binom.test (stored values),
closed forms, the test/interval duality and (slow) the coverage of the clustered interval."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from trialkit.errors import ModelSpecError
from trialkit.models.proportion import (
    cluster_mean,
    clustered_proportion,
    compare_with_limit,
    exact_proportion,
)

REF = json.loads(
    (
        Path(__file__).resolve().parents[1] / "reference" / "feasibility" / "reference.json"
    ).read_text()
)
TOL = 1e-8


@pytest.mark.parametrize("name", sorted(REF["clustered"]))
def test_clustered_proportion_matches_survey_svyciprop(name: str) -> None:
    c: dict[str, Any] = REF["clustered"][name]
    est = clustered_proportion(c["y"], c["n"])
    assert est.method == "design-based logit"
    assert est.clusters == len(c["n"]) and est.df == c["df"]
    for key in ("estimate", "conf_low", "conf_high", "std_error", "std_error_logit"):
        assert getattr(est, key) == pytest.approx(c[key], abs=TOL), key
    test = compare_with_limit(est, c["red"], higher_is_better=c["higher_is_better"])
    assert test.statistic == pytest.approx(c["statistic"], abs=TOL)
    assert test.p_value == pytest.approx(c["p_value"], abs=TOL)
    assert test.df == c["df"]


@pytest.mark.parametrize("name", sorted(REF["exact"]))
def test_exact_proportion_matches_binom_test(name: str) -> None:
    c = REF["exact"][name]
    est = exact_proportion(c["x"], c["n"])
    assert est.method == "clopper-pearson"
    assert est.estimate == pytest.approx(c["estimate"], abs=TOL)
    assert est.conf_low == pytest.approx(c["conf_low"], abs=TOL)
    assert est.conf_high == pytest.approx(c["conf_high"], abs=TOL)
    test = compare_with_limit(est, c["red"], higher_is_better=c["higher_is_better"])
    assert test.p_value == pytest.approx(c["p_value"], abs=TOL)


@pytest.mark.parametrize("name", sorted(REF["cluster_mean"]))
def test_cluster_mean_matches_t_test_and_svymean(name: str) -> None:
    c = REF["cluster_mean"][name]
    est = cluster_mean(c["v"])
    for key in ("estimate", "conf_low", "conf_high", "std_error"):
        assert getattr(est, key) == pytest.approx(c[key], abs=TOL), key
    test = compare_with_limit(est, c["red"], higher_is_better=c["higher_is_better"])
    assert test.statistic == pytest.approx(c["statistic"], abs=TOL)
    assert test.p_value == pytest.approx(c["p_value"], abs=TOL)


def test_equal_cluster_sizes_give_the_se_of_the_mean_of_cluster_proportions() -> None:
    # closed form: with n_j = m for all j, p̂ is the mean of p_j and V = s²(p_j)/J
    y = np.array([3, 5, 7, 4, 6, 8])
    p_j = y / 10
    est = clustered_proportion(y, np.full(6, 10))
    assert est.estimate == pytest.approx(p_j.mean(), abs=1e-14)
    assert est.std_error == pytest.approx(p_j.std(ddof=1) / math.sqrt(6), abs=1e-14)
    q = stats.t.ppf(0.975, 5)
    lp = math.log(est.estimate / (1 - est.estimate))
    se_l = est.std_error / (est.estimate * (1 - est.estimate))
    assert est.conf_low == pytest.approx(1 / (1 + math.exp(-(lp - q * se_l))), abs=1e-14)


def test_clusters_without_units_are_not_counted() -> None:
    a = clustered_proportion([3, 0, 5, 4], [10, 0, 9, 8])
    b = clustered_proportion([3, 5, 4], [10, 9, 8])
    assert a.clusters == 3 and a.df == 2
    assert a.to_dict() == b.to_dict()


@pytest.mark.parametrize(
    ("y", "n", "fragment"),
    [([5, 7, 3], [5, 7, 3], "no variation"), ([0, 0], [4, 6], "no variation"), ([3], [5], "fewer")],
)
def test_degenerate_cases_fall_back_to_exact_interval(y: Any, n: Any, fragment: str) -> None:
    est = clustered_proportion(y, n)
    ref = exact_proportion(sum(y), sum(n))
    assert est.method == "clopper-pearson" and fragment in est.note
    assert (est.conf_low, est.conf_high) == (ref.conf_low, ref.conf_high)
    assert est.clusters == len(n)


def test_empty_and_invalid_input() -> None:
    assert math.isnan(clustered_proportion([0, 0], [0, 0]).estimate)
    assert math.isnan(
        compare_with_limit(exact_proportion(0, 0), 0.5, higher_is_better=True).p_value
    )
    for y, n in (([3, 4], [2, 5]), ([1, -1], [2, 2]), ([1, 2], [3]), ([math.nan], [2])):
        with pytest.raises(ModelSpecError):
            clustered_proportion(y, n)


@pytest.mark.parametrize("higher", [True, False])
def test_one_sided_test_is_dual_to_the_interval(higher: bool) -> None:
    # p < 0.025 exactly when the red limit lies beyond the 95% interval (on the bad side)
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = rng.integers(5, 40, size=8)
        y = rng.binomial(n, 0.6)
        est = clustered_proportion(y, n)
        if est.method != "design-based logit":
            continue
        for red in np.linspace(0.05, 0.95, 19):
            p = compare_with_limit(est, red, higher_is_better=higher).p_value
            outside = red < est.conf_low if higher else red > est.conf_high
            if abs(red - est.conf_low) > 1e-9 and abs(red - est.conf_high) > 1e-9:
                assert (p < 0.025) == outside


@pytest.mark.slow
def test_coverage_of_the_clustered_interval_at_12_las() -> None:
    """Coverage of the 95% design-based logit interval: 12 LAs, unequal sizes, ICC about 0.05.

    Beta-binomial clusters (LA proportions ~ Beta with mean 0.7 and ICC 0.05), sizes 10 to 40;
    4000 trials give a Monte Carlo SE of about 0.35 percentage points.
    """
    rng = np.random.default_rng(20260412)
    pi, icc, reps = 0.7, 0.05, 4000
    ab = (1 - icc) / icc
    hits = 0
    for _ in range(reps):
        n = rng.integers(10, 41, size=12)
        p_j = rng.beta(pi * ab, (1 - pi) * ab, size=12)
        est = clustered_proportion(rng.binomial(n, p_j), n)
        hits += est.conf_low <= pi <= est.conf_high
    coverage = hits / reps
    assert 0.925 <= coverage <= 0.965, coverage


@st.composite
def _cluster_counts(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    n = draw(st.lists(st.integers(0, 60), min_size=1, max_size=15))
    y = [draw(st.integers(0, k)) for k in n]
    return y, n


@given(_cluster_counts())
@settings(max_examples=200, deadline=None)
def test_interval_is_ordered_inside_0_1_and_ignores_cluster_order(
    counts: tuple[list[int], list[int]],
) -> None:
    y, n = counts
    est = clustered_proportion(y, n)
    if sum(n) == 0:
        assert math.isnan(est.estimate)
        return
    assert 0.0 <= est.conf_low <= est.estimate <= est.conf_high <= 1.0
    assert est.estimate == pytest.approx(sum(y) / sum(n))
    rev = clustered_proportion(y[::-1], n[::-1])
    assert rev.conf_low == pytest.approx(est.conf_low, abs=1e-12)
    assert rev.conf_high == pytest.approx(est.conf_high, abs=1e-12)
    for red in (0.1, 0.5, 0.9):
        p = compare_with_limit(est, red, higher_is_better=True).p_value
        q = compare_with_limit(est, red, higher_is_better=False).p_value
        assert 0.0 <= p <= 1.0 and 0.0 <= q <= 1.0
