"""Not estimable is a result (issue #14 item 4): the design and term checks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from trialkit.models.estimability import check_design, check_term
from trialkit.models.terms import Term


def _trial(n_la: int, *, seed: int = 1, constant: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for la in range(n_la):
        for _ in range(8):
            rows.append({"la_id": f"LA{la}", "treated": la % 2, "y": rng.normal()})
    d = pd.DataFrame(rows)
    if constant:
        d["y"] = 3.0
    return d


def test_a_two_la_trial_is_not_identified() -> None:
    est = check_design(_trial(2), outcome="y", treatment="treated", cluster="la_id")
    assert not est.estimable and est.code == "not_identified"
    assert "one LA per arm" in est.reason


def test_a_constant_outcome_has_no_variance() -> None:
    est = check_design(_trial(8, constant=True), outcome="y", treatment="treated", cluster="la_id")
    assert not est.estimable and est.code == "no_variance"
    assert "every one of the 64 analysed values is 3" in est.reason


def test_la_covariates_use_up_the_between_la_df() -> None:
    d = _trial(5)
    d["imd"] = d["la_id"].str[2:].astype(float)  # constant within each LA
    # 5 LAs - 2 - 1 LA covariate = 2 df: estimable; a second LA covariate leaves 1
    assert check_design(
        d, outcome="y", treatment="treated", cluster="la_id", columns=["imd"]
    ).estimable
    d["size"] = d["imd"] ** 2
    est = check_design(
        d, outcome="y", treatment="treated", cluster="la_id", columns=["imd", "size"]
    )
    assert not est.estimable and est.code == "df_too_small"
    # an individual-level covariate costs no between-LA df
    d["age"] = np.arange(len(d), dtype=float)
    assert check_design(
        d, outcome="y", treatment="treated", cluster="la_id", columns=["imd", "age"]
    ).estimable


def test_an_arm_without_las() -> None:
    d = _trial(4)
    d["treated"] = 0
    est = check_design(d, outcome="y", treatment="treated", cluster="la_id")
    assert not est.estimable and "no intervention LA" in est.reason


def _term(df: float, se: float = 1.0) -> Term:
    return Term(
        term="treated",
        estimate=0.5,
        std_error=se,
        df=df,
        statistic=0.5 / se if se else math.inf,
        p_value=0.6,
        conf_low=-1.0,
        conf_high=2.0,
        df_method="kenward-roger",
        distribution=f"t({df})",
    )


def test_df_at_or_below_one_is_not_estimable() -> None:
    assert not check_term(_term(1.0)).estimable
    assert check_term(_term(1.0)).code == "df_too_small"
    assert not check_term(_term(1e-14)).estimable
    assert check_term(_term(1.5)).estimable
    # a z reference distribution has no df to check
    assert check_term(_term(float("nan"))).estimable
    assert check_term(_term(5.0, se=0.0)).code == "non_finite"
