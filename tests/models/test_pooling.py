"""Rubin's rules and the Barnard–Rubin df: closed forms and mitml::testEstimates."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import trialkit
from trialkit.errors import ModelSpecError
from trialkit.models.pooling import PooledEstimate, barnard_rubin_df, pool

REF = Path(__file__).resolve().parents[1] / "reference" / "imputation" / "reference.json"


def test_closed_form_by_hand() -> None:
    q = np.array([1.0, 1.2, 0.9, 1.1])
    u = np.array([0.04, 0.05, 0.04, 0.03])
    r = pool(q, u, df_complete=20)
    m = 4
    b = q.var(ddof=1)
    t = u.mean() + (1 + 1 / m) * b
    lam = (1 + 1 / m) * b / t
    nu_m = (m - 1) / lam**2
    nu_obs = (21 / 23) * 20 * (1 - lam)
    nu = 1 / (1 / nu_m + 1 / nu_obs)
    riv = (1 + 1 / m) * b / u.mean()
    assert r.estimate == pytest.approx(q.mean(), abs=1e-15)
    assert r.total_variance == pytest.approx(t, rel=1e-14)
    assert r.std_error == pytest.approx(math.sqrt(t), rel=1e-14)
    assert r.df == pytest.approx(nu, rel=1e-14)
    assert r.df_large_sample == pytest.approx(nu_m, rel=1e-14)
    assert r.relative_increase_in_variance == pytest.approx(riv, rel=1e-14)
    assert r.fraction_missing_information == pytest.approx((riv + 2 / (nu + 3)) / (riv + 1))
    assert r.df_method == "barnard-rubin"


def test_no_between_variance_gives_the_observed_data_df() -> None:
    r = pool([2.0, 2.0, 2.0], [0.1, 0.1, 0.1], df_complete=10)
    assert r.between_variance == 0.0
    assert r.relative_increase_in_variance == 0.0
    assert r.df == pytest.approx(11 / 13 * 10)
    assert math.isinf(r.df_large_sample)
    assert barnard_rubin_df(5, 0.0, math.inf) == (math.inf, math.inf)


def test_infinite_complete_data_df_is_rubins_df() -> None:
    r = pool([1.0, 1.5, 0.7], [0.2, 0.25, 0.2])
    assert r.df == r.df_large_sample
    assert math.isinf(r.df_complete)


def test_exported_from_the_package_root_and_round_trips() -> None:
    r = trialkit.pool([1.0, 1.2, 0.9], [0.04, 0.05, 0.04], 10)
    assert isinstance(r, PooledEstimate)
    back = PooledEstimate.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    term = r.to_term("treated")
    assert term.estimate == r.estimate and term.df == r.df and term.conf_low == r.conf_low


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (([1.0], [0.1]), "pool.too_few"),
        (([1.0, 2.0], [0.1]), "pool.lengths"),
        (([1.0, float("nan")], [0.1, 0.1]), "pool.not_finite"),
        (([1.0, 2.0], [0.1, -0.1]), "pool.not_finite"),
        (([1.0, 2.0], [0.1, 0.1], 0.0), "pool.df_complete"),
    ],
)
def test_bad_input_is_refused(args: tuple, code: str) -> None:
    with pytest.raises(ModelSpecError) as err:
        pool(*args)
    assert err.value.problems[0].code == code


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(REF.read_text())


@pytest.mark.parametrize("term", ["treat", "x"])
@pytest.mark.parametrize("rule", ["barnard_rubin", "rubin"])
def test_matches_mitml_test_estimates(reference: dict, term: str, rule: str) -> None:
    ref = reference["pooling"][term]
    dfc = ref["df_complete"] if rule == "barnard_rubin" else math.inf
    r = pool(ref["estimates"], ref["variances"], dfc)
    want = ref[rule]
    for ours, key in [
        (r.estimate, "estimate"),
        (r.std_error, "std_error"),
        (r.statistic, "statistic"),
        (r.df, "df"),
        (r.p_value, "p_value"),
        (r.relative_increase_in_variance, "riv"),
        (r.fraction_missing_information, "fmi"),
    ]:
        assert ours == pytest.approx(want[key], rel=1e-10, abs=1e-12), key
