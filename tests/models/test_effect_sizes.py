"""Hedges' g and ICC intervals on closed-form cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trialkit.models.effect_sizes import hedges_g, icc_intervals, tilde_n
from trialkit.models.fit import fit


def test_tilde_n_equal_sizes_is_cluster_size():
    assert tilde_n(np.full(10, 7.0), np.arange(10) % 2 == 1) == pytest.approx(7.0)


def test_no_clustering_reduces_to_two_sample_g():
    # ρ = 0: Var(d) = 1/NT + 1/NC + d²/(2(N-2)) and g = J(N-2) d (Hedges 1981)
    sizes = np.full(8, 10.0)
    treated = np.arange(8) % 2 == 1
    out = hedges_g(0.5, 0.0, 4.0, sizes=sizes, treated=treated)
    d = 0.5 / 2.0
    J = 1 - 3 / (4 * 78 - 1)
    assert out["g_total"] == pytest.approx(J * d)
    assert out["g_total_se"] == pytest.approx(J * np.sqrt(2 / 40 + d**2 / (2 * 78)))
    assert out["g_within"] == pytest.approx((1 - 3 / (4 * 72 - 1)) * d)


def test_equal_sizes_total_variance_formula():
    # Hedges (2007) eq. 20 with n = 5, m = 6 clusters per arm, ρ = 0.2
    sizes = np.full(12, 5.0)
    treated = np.arange(12) % 2 == 1
    out = hedges_g(0.3, 0.2, 0.8, sizes=sizes, treated=treated)
    N, n, rho, d = 60.0, 5.0, 0.2, 0.3
    v = (2 / 30) * (1 + (n - 1) * rho) + d**2 * (
        (N - 2) * (1 - rho) ** 2 + n * (N - 2 * n) * rho**2 + 2 * (N - 2 * n) * rho * (1 - rho)
    ) / (2 * (N - 2) * ((N - 2) - 2 * (n - 1) * rho))
    J = 1 - 3 / (4 * (N - 2) - 1)
    assert out["g_total_se"] == pytest.approx(J * np.sqrt(v))
    assert out["g_total_conf_low"] < out["g_total"] < out["g_total_conf_high"]


def test_icc_intervals_and_boundary():
    cov = np.diag([0.01, 0.002])
    out = icc_intervals([0.25, 0.75], cov, ["la"])
    assert out["la"]["icc"] == 0.25
    assert out["la"]["conf_low"] < 0.25 < out["la"]["conf_high"]
    zero = icc_intervals([0.0, 1.0], cov, ["la"])
    assert zero["la"]["conf_low"] == 0.0 and zero["la"]["conf_high"] > 0


def test_fit_reports_effect_sizes_and_icc():
    rng = np.random.default_rng(9)
    cl = np.repeat(np.arange(12), 10)
    d = pd.DataFrame(
        {
            "y": rng.normal(0, 0.6, 12)[cl] + rng.normal(size=120) + 0.5 * (cl % 2),
            "t": cl % 2,
            "cl": cl,
        }
    )
    res = fit(d, outcome="y", treatment="t", clusters=["cl"])
    es = res.effect_sizes
    assert set(es) >= {"conditional", "unconditional"}
    vc = res.variance_components
    g = es["conditional"]["g_total"]
    J = 1 - 3 / (4 * 118 - 1)
    assert g == pytest.approx(J * res.treatment.estimate / np.sqrt(vc["cl"] + vc["residual"]))
    assert res.icc["cl"] == pytest.approx(vc["cl"] / (vc["cl"] + vc["residual"]))
    iv = res.icc_intervals["cl"]
    assert iv["conf_low"] <= res.icc["cl"] <= iv["conf_high"]


def test_icc_interval_logit_delta_closed_form():
    # one level: logit ρ = log ψ₁ − log ψ₂, so Var = c11/ψ₁² + c22/ψ₂² − 2c12/(ψ₁ψ₂)
    from scipy import stats
    from scipy.special import expit

    psi = np.array([0.3, 1.2])
    cov = np.array([[0.02, -0.003], [-0.003, 0.01]])
    out = icc_intervals(psi, cov, ["la"], alpha=0.1)["la"]
    rho = 0.3 / 1.5
    se_logit = np.sqrt(0.02 / 0.09 + 0.01 / 1.44 - 2 * -0.003 / 0.36)
    z = stats.norm.ppf(0.95)
    lg = np.log(rho / (1 - rho))
    assert out["icc"] == pytest.approx(rho)
    assert out["conf_low"] == pytest.approx(expit(lg - z * se_logit), rel=1e-12)
    assert out["conf_high"] == pytest.approx(expit(lg + z * se_logit), rel=1e-12)
    # SE on the ICC scale: ρ(1 − ρ) × the logit-scale SE
    assert out["std_error"] == pytest.approx(rho * (1 - rho) * se_logit, rel=1e-12)


# ---- Hedges' g consistent with the model's interval (issue #14 item 7)
def test_standardised_effect_closed_form() -> None:
    from trialkit.models.effect_sizes import standardised_effect

    # N = 102 -> J(100) = 1 - 3/399; sigma_T = sqrt(4) = 2
    out = standardised_effect(1.0, -0.2, 2.2, 4.0, n_obs=102)
    j = 1 - 3 / 399
    assert out["correction"] == pytest.approx(j, rel=1e-15)
    assert out["g"] == pytest.approx(j * 0.5, rel=1e-15)
    assert out["g_conf_low"] == pytest.approx(j * -0.1, rel=1e-15)
    assert out["g_conf_high"] == pytest.approx(j * 1.1, rel=1e-15)


def test_g_interval_excludes_zero_iff_the_mean_difference_interval_does() -> None:
    from scipy import stats

    from trialkit.models.effect_sizes import standardised_effect

    rng = np.random.default_rng(14)
    for _ in range(200):
        est, se, df = rng.normal(0, 2), rng.uniform(0.2, 2), rng.uniform(1.5, 30)
        q = stats.t.ppf(0.975, df)
        lo, hi = est - q * se, est + q * se
        g = standardised_effect(est, lo, hi, rng.uniform(0.5, 50), n_obs=int(rng.integers(10, 500)))
        assert (g["g_conf_low"] > 0 or g["g_conf_high"] < 0) == (lo > 0 or hi < 0)
        assert g["g_conf_low"] < g["g"] < g["g_conf_high"]


def test_no_standardised_effect_without_variance() -> None:
    from trialkit.models.effect_sizes import standardised_effect

    for total in (0.0, -1.0, float("nan"), float("inf")):
        assert all(
            np.isnan(v) for v in standardised_effect(1.0, 0.0, 2.0, total, n_obs=50).values()
        )


def test_variance_explained_is_bounded() -> None:
    from trialkit.models.effect_sizes import variance_explained

    assert variance_explained([0.5, 0.0, 3.0, 2.0], [1.0, 0.0, 2.0, 4.0]) == [0.5, 0.0, 0.0, 0.5]
