"""Model frames: coding, exclusions, nested ids and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trialkit.errors import ModelSpecError
from trialkit.models.design import build_model_frame


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 120
    la = np.repeat([f"LA{i}" for i in range(6)], 20)
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "arm": np.where(np.repeat(np.arange(6), 20) % 2 == 1, "int", "ctl"),
            "t01": (np.repeat(np.arange(6), 20) % 2).astype(int),
            "la": la,
            "kw": np.tile(np.repeat(["1", "2"], 10), 6),
            "imd": np.repeat(rng.normal(size=6), 20),
            "age": rng.normal(40, 10, n),
            "sex": rng.choice(["m", "f", "x"], n),
        }
    )


def test_column_missing_lists_available(data):
    with pytest.raises(ModelSpecError) as e:
        build_model_frame(data, outcome="yy", treatment="arm", clusters=["lax"])
    assert e.value.codes == ("fit.column_missing", "fit.column_missing")
    assert "yy" in str(e.value)
    assert "la, kw" in e.value.problems[0].message


def test_treatment_labels_need_level(data):
    with pytest.raises(ModelSpecError) as e:
        build_model_frame(data, outcome="y", treatment="arm", clusters=["la"])
    assert e.value.codes == ("fit.treatment_levels",)
    assert "'ctl', 'int'" in e.value.problems[0].message


def test_treatment_level_not_found(data):
    with pytest.raises(ModelSpecError) as e:
        build_model_frame(data, outcome="y", treatment="arm", clusters=["la"], treatment_level="x")
    assert e.value.codes == ("fit.treatment_levels",)


def test_treatment_labels_and_01_agree(data):
    a = build_model_frame(
        data, outcome="y", treatment="arm", treatment_level="int", clusters=["la"]
    )
    b = build_model_frame(data, outcome="y", treatment="t01", clusters=["la"])
    np.testing.assert_array_equal(a.X, b.X)
    assert a.treatment_term == "arm[int]" and b.treatment_term == "t01"
    assert a.treatment_labels == ("ctl", "int")


def test_categorical_first_sorted_level_is_reference(data):
    f = build_model_frame(data, outcome="y", treatment="t01", covariates=["sex"], clusters=["la"])
    assert f.column_names == ("(Intercept)", "t01", "sex[m]", "sex[x]")


def test_category_dtype_uses_category_order(data):
    d = data.assign(sex=pd.Categorical(data["sex"], categories=["x", "m", "f"]))
    f = build_model_frame(d, outcome="y", treatment="t01", covariates=["sex"], clusters=["la"])
    assert f.column_names[2:] == ("sex[m]", "sex[f]")


def test_exclusions_counted_once_with_reasons(data):
    d = data.copy()
    d.loc[0, "y"] = np.nan
    d.loc[0, "age"] = np.nan  # same row: counted under the outcome
    d.loc[[1, 2], "age"] = np.nan
    d.loc[3, "kw"] = None
    f = build_model_frame(
        d, outcome="y", treatment="t01", covariates=["age"], clusters=["la", "kw"]
    )
    assert [(e.reason, e.n_rows) for e in f.exclusions] == [
        ("missing outcome", 1),
        ("missing covariate age", 2),
        ("missing cluster kw", 1),
    ]
    assert f.n_excluded == 4 and f.n_obs == 116


def test_nested_ids_unique_within_parent(data):
    f = build_model_frame(data, outcome="y", treatment="t01", clusters=["la", "kw"])
    assert f.n_clusters == (6, 12)
    assert f.n_clusters_by_name == {"la": 6, "kw": 12}
    # every keyworker code sits in one LA
    pairs = pd.DataFrame({"la": f.cluster_codes[0], "kw": f.cluster_codes[1]}).drop_duplicates()
    assert pairs["kw"].is_unique


def test_cluster_level_columns(data):
    f = build_model_frame(
        data, outcome="y", treatment="t01", covariates=["imd", "age"], clusters=["la"]
    )
    assert f.cluster_level_columns == (True, True, True, False)


def test_rank_deficient(data):
    d = data.assign(age2=data["age"] * 2)
    with pytest.raises(ModelSpecError) as e:
        build_model_frame(
            d, outcome="y", treatment="t01", covariates=["age", "age2"], clusters=["la"]
        )
    assert e.value.codes == ("fit.rank_deficient",)
    assert "age2" in e.value.problems[0].message


def test_no_rows(data):
    d = data.assign(y=np.nan)
    with pytest.raises(ModelSpecError) as e:
        build_model_frame(d, outcome="y", treatment="t01", clusters=["la"])
    assert e.value.codes == ("fit.no_rows",)


def test_outcome_must_be_numeric(data):
    with pytest.raises(ModelSpecError) as e:
        build_model_frame(data, outcome="sex", treatment="t01", clusters=["la"])
    assert e.value.codes == ("fit.outcome_type",)


def test_duplicate_column(data):
    with pytest.raises(ModelSpecError) as e:
        build_model_frame(data, outcome="y", treatment="t01", covariates=["y"], clusters=["la"])
    assert "fit.duplicate_column" in e.value.codes


def test_data_hash_stable_and_sensitive(data):
    a = build_model_frame(data, outcome="y", treatment="t01", clusters=["la"])
    b = build_model_frame(data.copy(), outcome="y", treatment="t01", clusters=["la"])
    c = build_model_frame(
        data.assign(y=data["y"] + 1), outcome="y", treatment="t01", clusters=["la"]
    )
    assert a.data_hash == b.data_hash != c.data_hash


def test_with_outcome(data):
    f = build_model_frame(data, outcome="y", treatment="t01", clusters=["la"])
    g = f.with_outcome(np.zeros(f.n_obs))
    assert g.y.sum() == 0 and g.X is f.X
    with pytest.raises(ValueError):
        f.with_outcome(np.zeros(3))


@pytest.mark.parametrize(
    "kind", ["int", "wide-int", "negative-int", "str", "object", "category", "float"]
)
def test_cluster_codes_follow_sorted_ids_whatever_the_dtype(kind: str) -> None:
    """Codes are 0..G-1 in sorted order of the ids (the counting and Arrow paths too)."""
    rng = np.random.default_rng(7)
    n = 300
    ids = rng.integers(0, 9, n)
    kw = rng.integers(0, 4, n)
    la: object
    if kind == "int":
        la = ids
    elif kind == "wide-int":
        la = ids * 10**9  # too wide to count: pandas factorises
    elif kind == "negative-int":
        la = ids - 5
    elif kind == "float":
        la = ids.astype(float) / 3
    else:
        text = np.array([f"LA-{v:02d}" if v != 3 else "la-é" for v in ids], dtype=object)
        la = pd.Series(text, dtype={"str": "str", "object": object, "category": "category"}[kind])
    data = pd.DataFrame(
        {"la": la, "kw": pd.Series([f"k{v}" for v in kw], dtype="str"), "t": ids % 2}
    )
    data["y"] = rng.normal(size=n)
    data.loc[rng.integers(0, n, 15), "y"] = np.nan
    f = build_model_frame(data, outcome="y", treatment="t", clusters=["la", "kw"])
    kept = data.loc[data["y"].notna()]
    top, _ = pd.factorize(kept["la"], sort=True)
    np.testing.assert_array_equal(f.cluster_codes[0], top)
    pairs = pd.MultiIndex.from_arrays([top, kept["kw"].to_numpy(dtype=object)])
    low, _ = pd.factorize(pairs, sort=True)
    np.testing.assert_array_equal(f.cluster_codes[1], low)


def test_categorical_covariate_from_arrow_strings_with_missing_values() -> None:
    rng = np.random.default_rng(3)
    n = 200
    g = pd.Series(rng.choice(["b", "a", "c", None], n), dtype="str")
    data = pd.DataFrame({"y": rng.normal(size=n), "t": np.arange(n) % 2, "g": g})
    data["la"] = np.arange(n) % 10
    f = build_model_frame(data, outcome="y", treatment="t", covariates=["g"], clusters=["la"])
    kept = g.notna().to_numpy()
    assert f.column_names == ("(Intercept)", "t", "g[b]", "g[c]")
    assert f.exclusions[0].reason == "missing covariate g"
    np.testing.assert_array_equal(f.X[:, 2], (g[kept] == "b").to_numpy(dtype=float))
    np.testing.assert_array_equal(f.X[:, 3], (g[kept] == "c").to_numpy(dtype=float))


def test_a_repeated_input_column_is_an_input_error(data):
    twice = pd.concat([data, data[["y"]]], axis=1)
    with pytest.raises(ModelSpecError) as e:
        build_model_frame(twice, outcome="y", treatment="t01", clusters=["la"])
    assert e.value.codes == ("fit.duplicate_input_column",)
