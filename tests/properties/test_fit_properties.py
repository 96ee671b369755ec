"""Invariances of the linear mixed model fit (hypothesis)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialkit.errors import SingularFitWarning
from trialkit.models.fit import fit

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _data(seed: int, n_la: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for la in range(n_la):
        u = rng.normal(0, 0.5)
        for kw in range(int(rng.integers(2, 4))):  # >= 2 so both levels are identifiable
            v = rng.normal(0, 0.4)
            for _ in range(int(rng.integers(2, 7))):
                b = rng.normal()
                rows.append((f"L{la}", f"K{kw}", la % 2, b, u + v + 0.5 * b + rng.normal()))
    return pd.DataFrame(rows, columns=["la", "kw", "t", "b", "y"])


def _fit(d: pd.DataFrame, **kw: object):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        return fit(
            d,
            outcome="y",
            treatment="t",
            covariates=["b"],
            clusters=["la", "kw"],
            effect_sizes=False,
            **kw,
        )


def _close(a: float, b: float, rel: float = 1e-7, abs_: float = 1e-9) -> bool:
    return abs(a - b) <= abs_ + rel * max(abs(a), abs(b))


@SETTINGS
@given(seed=st.integers(0, 10_000), n_la=st.integers(6, 12), perm_seed=st.integers(0, 10_000))
def test_row_order_and_cluster_labels_do_not_matter(seed, n_la, perm_seed):
    d = _data(seed, n_la)
    a = _fit(d)
    rng = np.random.default_rng(perm_seed)
    e = d.iloc[rng.permutation(len(d))].reset_index(drop=True)
    relabel = {f"L{i}": f"Z{j}" for i, j in enumerate(rng.permutation(n_la))}
    e["la"] = e["la"].map(relabel)
    e["kw"] = "w" + e["kw"]
    b = _fit(e)
    for x, y in zip(a.fixed_effects, b.fixed_effects, strict=True):
        assert _close(x.estimate, y.estimate) and _close(x.std_error, y.std_error)
        assert _close(x.df, y.df, rel=1e-6)
    assert _close(a.loglik, b.loglik)


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    shift=st.floats(-100, 100),
    scale=st.floats(0.01, 100).map(lambda v: v) | st.floats(-100, -0.01),
)
def test_affine_outcome_transformation(seed, shift, scale):
    d = _data(seed, 8)
    a = _fit(d)
    b = _fit(d.assign(y=shift + scale * d["y"]))
    ta, tb = a.treatment, b.treatment
    assert _close(tb.estimate, scale * ta.estimate, rel=1e-6, abs_=1e-8 * abs(scale))
    assert _close(tb.std_error, abs(scale) * ta.std_error, rel=1e-6)
    assert _close(tb.df, ta.df, rel=1e-5)
    assert _close(tb.p_value, ta.p_value, rel=1e-5, abs_=1e-8)
