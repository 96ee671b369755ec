"""Sample size for progression criteria (Lewis et al. 2021, Pilot Feasibility Stud 7:40)."""

from __future__ import annotations

import math

import pytest

from trialkit.errors import PowerError
from trialkit.power.progression import (
    amber_cut_point,
    exact_binomial_power,
    progression_power_cc,
    progression_sample_size,
)

Z95 = 1.6448536269514722  # Φ⁻¹(0.95)
Z90 = 1.2815515655446004  # Φ⁻¹(0.90)


@pytest.mark.parametrize(
    ("red", "green", "n"),
    [(0.50, 0.75, 34), (0.20, 0.35, 78), (0.65, 0.85, 44)],
)
def test_lewis_2021_table_4(red: float, green: float, n: int) -> None:
    """Case illustration, Table 4: α = 0.05 one-sided, power 0.9."""
    res = progression_sample_size(red, green, alpha=0.05, power=0.9)
    assert res.variant == "lewis-2021"
    assert res.n == n
    assert res.n_unclustered == n
    assert res.design_effect == 1.0
    assert res.n_clusters is None


def test_lewis_conference_abstract_uncorrected() -> None:
    """40%/70%, α = 0.05, power 0.9 → n = 22 without continuity correction."""
    assert progression_sample_size(0.4, 0.7, variant="normal").n == 22


@pytest.mark.parametrize(
    ("red", "n", "cut"),
    [(0.20, 200, 0.247), (0.50, 34, 0.641), (0.65, 68, 0.745)],
)
def test_lewis_2021_table_5_amber_cut_points(red: float, n: int, cut: float) -> None:
    assert round(amber_cut_point(n, red, 0.05), 3) == cut


def test_closed_forms() -> None:
    res = progression_sample_size(0.5, 0.75)
    n0 = ((Z95 * 0.5 + Z90 * math.sqrt(0.75 * 0.25)) / 0.25) ** 2
    assert res.n_normal == pytest.approx(n0, rel=1e-12)
    ncc = n0 / 4 * (1 + math.sqrt(1 + 2 / (n0 * 0.25))) ** 2
    assert res.n_continuity_corrected == pytest.approx(ncc, rel=1e-12)
    # n_cc solves Δn − ½ = z√n exactly: the corrected power there is the target
    assert progression_power_cc(ncc, 0.5, 0.75, 0.05) == pytest.approx(0.9, abs=1e-12)
    assert res.n == round(n0 + 4)  # n0 + 1/Δ rounded


@pytest.mark.parametrize(("red", "green"), [(0.5, 0.75), (0.2, 0.35), (0.3, 0.1), (0.05, 0.2)])
def test_normal_cc_is_the_smallest_size_reaching_the_corrected_power(
    red: float, green: float
) -> None:
    n = progression_sample_size(red, green, variant="normal-cc").n
    assert progression_power_cc(n, red, green, 0.05) >= 0.9 - 1e-12
    assert progression_power_cc(n - 1, red, green, 0.05) < 0.9


def test_lower_is_better_mirrors_higher_is_better() -> None:
    up = progression_sample_size(0.7, 0.9)
    down = progression_sample_size(0.3, 0.1)
    assert down.direction == "lower"
    assert (down.n, down.n_normal) == (up.n, pytest.approx(up.n_normal, rel=1e-12))
    assert down.power_exact == pytest.approx(up.power_exact, rel=1e-12)
    assert down.critical_count == down.n_unclustered - up.critical_count
    assert down.amber_cut_point == pytest.approx(1 - up.amber_cut_point, rel=1e-12)


def _exact_by_summation(n: int, red: float, green: float, alpha: float) -> tuple[float, int]:
    def tail(c: int, p: float) -> float:
        return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(c, n + 1))

    c = next(c for c in range(n + 2) if c > n or tail(c, red) <= alpha)
    return (tail(c, green) if c <= n else 0.0), c


@pytest.mark.parametrize(("n", "red", "green"), [(34, 0.5, 0.75), (78, 0.2, 0.35), (5, 0.5, 0.9)])
def test_exact_binomial_power_against_summation(n: int, red: float, green: float) -> None:
    pw, c = exact_binomial_power(n, red, green, 0.05)
    ref_pw, ref_c = _exact_by_summation(n, red, green, 0.05)
    assert c == ref_c
    assert pw == pytest.approx(ref_pw, rel=1e-10)


def test_exact_binomial_no_rejection_possible() -> None:
    assert exact_binomial_power(2, 0.5, 0.9, 0.05) == (0.0, 3)


def test_design_effect_and_clusters() -> None:
    res = progression_sample_size(0.5, 0.75, icc=0.05, cluster_size=10)
    assert res.design_effect == pytest.approx(1.45)
    assert res.n == math.ceil(34 * 1.45)  # 49.3 → 50
    assert res.n_clusters == 5
    assert res.n_unclustered == 34
    d = res.to_dict()
    assert {"n", "n_clusters", "design_effect", "variant"} <= set(d)
    assert "design effect" in res.summary()


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"red": 0.0, "green": 0.5}, "power.progression_limit"),
        ({"red": 0.5, "green": 1.2}, "power.progression_limit"),
        ({"red": 0.5, "green": 0.5}, "power.progression_equal"),
        ({"red": 0.2, "green": 0.5, "alpha": 0.7}, "power.alpha"),
        ({"red": 0.2, "green": 0.5, "power": 1.0}, "power.target"),
        ({"red": 0.2, "green": 0.5, "icc": 0.1}, "power.progression_cluster"),
        ({"red": 0.2, "green": 0.5, "icc": 1.5, "cluster_size": 4}, "power.icc_range"),
        ({"red": 0.2, "green": 0.5, "icc": 0.1, "cluster_size": 0}, "power.cluster_size"),
        ({"red": 0.2, "green": 0.5, "variant": "arcsine"}, "power.progression_variant"),
        ({"red": float("nan"), "green": 0.5}, "power.progression_limit"),
    ],
)
def test_bad_input(kw: dict, code: str) -> None:
    red, green = kw.pop("red"), kw.pop("green")
    with pytest.raises(PowerError) as e:
        progression_sample_size(red, green, **kw)
    assert code in {p.code for p in e.value.problems}
    assert e.value.exit_code == 1
