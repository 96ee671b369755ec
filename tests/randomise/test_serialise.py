"""to_dict/from_dict round trips of the randomisation results."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from trialkit.errors import RandomisationError, TrialkitWarning
from trialkit.randomise import (
    Allocation,
    ConstrainedSpace,
    CovariateCoding,
    RandTestResult,
    Validity,
    randomise,
)

COVS = ("region", "imd_score", "families_referred_2023")

DESIGNS = {
    "simple": {"method": "simple"},
    "stratified": {"method": "stratified", "strata": ("region",)},
    "matched": {"method": "matched", "covariates": ("imd_score",)},
    "constrained": {"method": "constrained", "covariates": COVS, "weights": {"imd_score": 2}},
    "constrained_strata": {
        "method": "constrained",
        "strata": ("region",),
        "covariates": ("imd_score",),
    },
    "constrained_sampled": {
        "method": "constrained",
        "covariates": COVS,
        "enumerate_limit": 100,
        "samples": 300,
        "keep": 40,
    },
}


def _quiet(clusters: pd.DataFrame, **kw) -> Allocation:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrialkitWarning)
        return randomise(clusters, seed=3, **kw)


def _through_json(d: dict) -> dict:
    return json.loads(json.dumps(d, allow_nan=False))


def _norm(d: dict) -> object:
    """Comparable form: ints as floats (a weight of 2 is rebuilt as 2.0), NaN as a string."""
    return json.loads(json.dumps(d), parse_int=float, parse_constant=str)


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_allocation_round_trip(clusters: pd.DataFrame, design: str) -> None:
    a = _quiet(clusters, **DESIGNS[design])
    d = a.to_dict(full=True)
    b = Allocation.from_dict(_through_json(d))
    assert b == a and not (b != a)
    assert b.to_dict(full=True) == d
    assert _norm(b.to_dict()) == _norm(a.to_dict())
    assert b.to_frame().equals(a.to_frame())
    assert b.balance_frame().equals(a.balance_frame())
    if a.space is not None:
        assert b.space is not None
        assert b.space.codes.dtype == np.uint64 and b.space.scores.dtype == np.float64
        assert b.space.to_frame(b.clusters, b.settings.arms).equals(
            a.space.to_frame(a.clusters, a.settings.arms)
        )


def test_default_to_dict_is_the_short_form(clusters: pd.DataFrame) -> None:
    a = _quiet(clusters, **DESIGNS["constrained"])
    short, full = a.to_dict(), a.to_dict(full=True)
    assert "balance" not in short and "codes" not in short["space"]
    assert short["space"] == a.space.summary_dict()  # type: ignore[union-attr]
    assert set(full) == set(short) | {"balance"}
    assert {k: v for k, v in full["space"].items() if k not in ("codes", "scores")} == short[
        "space"
    ]
    assert len(full["space"]["codes"]) == a.space.n_kept  # type: ignore[union-attr]


def test_equality_compares_values(clusters: pd.DataFrame) -> None:
    a = _quiet(clusters, **DESIGNS["constrained"])
    assert a == _quiet(clusters, **DESIGNS["constrained"])
    other = _quiet(clusters, **{**DESIGNS["constrained"], "cutoff": 0.2})
    assert a != other and a.space != other.space
    assert a != "not an allocation"


def test_from_dict_rejects_the_short_form_and_bad_input(clusters: pd.DataFrame) -> None:
    a = _quiet(clusters, **DESIGNS["constrained"])
    with pytest.raises(RandomisationError) as err:
        Allocation.from_dict({**a.to_dict(), "balance": []})
    assert "randomise.from_dict.invalid" in err.value.codes
    with pytest.raises(RandomisationError) as err:
        Allocation.from_dict(a.to_dict())
    assert "randomise.from_dict.missing_key" in err.value.codes
    with pytest.raises(RandomisationError) as err:
        Allocation.from_dict({**a.to_dict(full=True), "schema_version": 99})
    assert "randomise.from_dict.invalid" in err.value.codes
    space = a.to_dict(full=True)["space"]
    with pytest.raises(RandomisationError) as err:
        ConstrainedSpace.from_dict({**space, "scores": space["scores"][:-1]})
    assert "randomise.from_dict.invalid" in err.value.codes
    with pytest.raises(RandomisationError) as err:
        ConstrainedSpace.from_dict({**space, "chosen_index": len(space["codes"])})
    assert "randomise.from_dict.invalid" in err.value.codes


def test_space_with_one_kept_allocation_round_trips() -> None:
    # one kept allocation: the kept sd is NaN and is written as null
    s = ConstrainedSpace(
        n_possible=20,
        n_considered=20,
        enumerated=True,
        rule="keep",
        target=1,
        cutoff_score=0.25,
        codes=np.array([7], dtype=np.uint64),
        scores=np.array([0.25]),
        chosen_index=0,
        score_summary={"kept_mean": 0.25, "kept_sd": float("nan")},
    )
    d = _through_json(s.to_dict())
    assert d["score_summary"]["kept_sd"] is None
    assert ConstrainedSpace.from_dict(d) == s


def test_coding_and_validity_round_trip(clusters: pd.DataFrame) -> None:
    a = _quiet(clusters, **DESIGNS["constrained"])
    assert a.coding is not None and a.validity is not None
    assert CovariateCoding.from_dict(_through_json(a.coding.to_dict())) == a.coding
    assert Validity.from_dict(_through_json(a.validity.to_dict())) == a.validity


def test_randtest_result_round_trip() -> None:
    r = RandTestResult(
        outcome="y",
        family="gaussian",
        covariates=("imd",),
        statistic=0.5,
        p_value=0.25,
        n_allocations=92,
        space="kept",
        tolerance=1e-9,
        estimate=0.4,
        conf_low=-0.1,
        conf_high=0.9,
        conf_level=0.95,
        n_clusters=12,
        n_obs=120,
        n_excluded=0,
        arms=("intervention", "control"),
    )
    assert RandTestResult.from_dict(_through_json(r.to_dict())) == r
