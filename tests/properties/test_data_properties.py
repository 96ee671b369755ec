"""Properties: scoring invariants, simulate determinism, row-order invariance, no crashes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from trialkit.data import validate
from trialkit.data.scoring import INSTRUMENTS, score_matrix
from trialkit.errors import DataError
from trialkit.protocol.load import load_protocol
from trialkit.simulate.trial import simulate_trial

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = load_protocol(ROOT / "protocols" / "supporting-families-systemic-pilot.toml")
CLUSTERS = pd.read_csv(
    ROOT / "protocols" / "supporting-families-clusters.csv", dtype={"la_id": str}
)
ALLOC = pd.DataFrame({"cluster": CLUSTERS["la_id"], "arm": ["intervention", "control"] * 6})


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["SCORE-15", "WEMWBS", "SWEMWBS", "RCADS", "CBI"]), st.data())
def test_scores_within_bounds_and_monotone(name, data):
    inst = INSTRUMENTS[name]
    grid = list(inst.allowed) if inst.allowed else list(range(int(inst.low), int(inst.high) + 1))
    row = data.draw(st.lists(st.sampled_from(grid), min_size=inst.n_items, max_size=inst.n_items))
    x = np.array([row], dtype=float)
    res = score_matrix(x, inst)
    for sc in inst.scales:
        if sc.method == "sum_of_scales":
            continue
        k = len(sc.items)
        lo, hi = (inst.low, inst.high) if sc.method == "mean" else (inst.low * k, inst.high * k)
        v = res[sc.name][0]
        if name == "SWEMWBS" and sc.name == "metric":
            lo, hi = 7, 35
        assert lo - 1e-9 <= v <= hi + 1e-9
    # raising a non-reversed item never lowers the total-like first scale
    j = next(i for i in range(1, inst.n_items + 1) if i not in inst.reversed_items)
    y = x.copy()
    y[0, j - 1] = max(grid)
    first = inst.scales[0].name
    if j in inst.scales[0].items:
        assert score_matrix(y, inst)[first][0] >= res[first][0]


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_simulate_same_seed_same_output(seed):
    a = simulate_trial(
        PROTOCOL, CLUSTERS, ALLOC, seed=seed, n_keyworkers=3, families_per_keyworker=1
    )
    b = simulate_trial(
        PROTOCOL, CLUSTERS, ALLOC, seed=seed, n_keyworkers=3, families_per_keyworker=1
    )
    for k in a.tables:
        pd.testing.assert_frame_equal(a.tables[k], b.tables[k])
    assert a.truth == b.truth


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    st_ = simulate_trial(
        PROTOCOL, CLUSTERS, ALLOC, seed=21, n_keyworkers=3, families_per_keyworker=2
    )
    d = tmp_path_factory.mktemp("prop") / "d"
    st_.save(d, fmt="csv")
    return d


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.integers(0, 10_000))
def test_row_order_irrelevant(base_dir, tmp_path_factory, perm_seed):
    ref = validate(PROTOCOL, base_dir, base_dir)
    d = tmp_path_factory.mktemp("perm") / "d"
    shutil.copytree(base_dir, d, ignore=shutil.ignore_patterns("manifest.json"))
    rng = np.random.default_rng(perm_seed)
    for t in ("keyworkers", "families", "measurements", "delivery", "clusters"):
        f = d / f"{t}.csv"
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
        df.iloc[rng.permutation(len(df))].to_csv(f, index=False)
    got = validate(PROTOCOL, d, d)
    assert sorted(got.codes) == sorted(ref.codes)
    pd.testing.assert_frame_equal(got.flow, ref.flow)
    pd.testing.assert_frame_equal(got.exclusions, ref.exclusions)


cell = st.one_of(
    st.none(),
    st.text(max_size=6),
    st.integers(-5, 200),
    st.floats(allow_nan=True, allow_infinity=True),
)


# Fuzzing: 25 whole validations (the slowest non-demo test); the rule tests in
# tests/data/test_validate.py cover every problem code in the default run.
@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    st.sampled_from(["clusters", "keyworkers", "families", "measurements", "delivery"]),
    st.lists(
        st.sampled_from(
            [
                "la_id",
                "keyworker_id",
                "family_id",
                "entity_id",
                "level",
                "instrument",
                "timepoint",
                "date",
                "item_1",
                "item_3",
                "total",
                "role",
                "consent_date",
                "record_type",
                "fte",
                "month",
                "attended",
                "day",
            ]
        ),
        min_size=1,
        max_size=5,
        unique=True,
    ),
    st.lists(st.lists(cell, min_size=5, max_size=5), min_size=0, max_size=6),
)
def test_arbitrary_tables_never_crash(base_dir, tmp_path_factory, table, cols, rows):
    d = tmp_path_factory.mktemp("fuzz") / "d"
    shutil.copytree(base_dir, d, ignore=shutil.ignore_patterns("manifest.json"))
    frame = pd.DataFrame([r[: len(cols)] for r in rows], columns=cols)
    frame.to_csv(d / f"{table}.csv", index=False)
    try:
        td = validate(PROTOCOL, d, d)
    except DataError:
        return
    assert isinstance(td.ok, bool)
