"""Scoring against hand-worked examples (see docs/scoring.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trialkit.data.scoring import (
    SWEMWBS_CONVERSION,
    clinical_cutoff,
    rcads_instrument,
    rcads_tscores,
    reliable_change,
    score,
    swemwbs_metric,
)
from trialkit.errors import DataError


def _row(values, n=None):
    n = n or len(values)
    return pd.DataFrame([{f"item_{i + 1}": v for i, v in enumerate(values[:n])}])


def test_score15_default_reverses_strengths():
    # items 1..15 = 1,2,3,4,5,1,2,3,4,5,1,2,3,4,5
    vals = [1, 2, 3, 4, 5] * 3
    out = score(_row(vals), "SCORE-15")
    # strengths items 1,3,6,10,15 raw 1,3,1,5,5 -> reversed 5,3,5,1,1 = 15
    assert out["strengths"].iloc[0] == 15
    # overwhelmed 5,7,9,11,14 raw 5,2,4,1,4 = 16
    assert out["overwhelmed"].iloc[0] == 16
    # communication 2,4,8,12,13 raw 2,4,3,2,3 = 14
    assert out["communication"].iloc[0] == 14
    assert out["total"].iloc[0] == 45
    assert out["mean"].iloc[0] == pytest.approx(3.0)


def test_score15_no_reverse_and_bounds():
    out = score(_row([5] * 15), "SCORE-15", score15_reverse="none")
    assert out["total"].iloc[0] == 75
    out = score(_row([1] * 15), "SCORE-15")
    assert out["total"].iloc[0] == 1 * 10 + 5 * 5


def test_prorating_80_percent():
    vals = [2.0] * 14 + [np.nan]
    out = score(_row(vals), "SCORE-15", score15_reverse="none")
    # strengths has 4 of 5 (item 15 missing) -> mean 2 * 5 = 10
    assert out["strengths"].iloc[0] == 10
    assert out["total"].iloc[0] == 30
    vals2 = [2.0] * 13 + [np.nan, np.nan]
    out2 = score(_row(vals2), "SCORE-15", score15_reverse="none")
    # items 14 and 15 missing: strengths and overwhelmed keep 4 of 5, total 13 of 15
    assert out2["strengths"].iloc[0] == 10 and out2["overwhelmed"].iloc[0] == 10
    assert out2["total"].iloc[0] == 30
    assert out2["n_answered"].iloc[0] == 13


def test_prorating_subscale_fails_below_rule():
    vals = [3.0] * 15
    vals[0] = vals[2] = np.nan  # strengths items 1 and 3 missing -> 3 of 5 < 4
    out = score(_row(vals), "SCORE-15", score15_reverse="none")
    assert np.isnan(out["strengths"].iloc[0])
    assert out["total"].iloc[0] == pytest.approx(45.0)  # 13 of 15 >= 12 -> 3*15


def test_wemwbs_total():
    out = score(_row([1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4]), "WEMWBS")
    assert out["total"].iloc[0] == 40


def test_swemwbs_table_and_conversion():
    assert SWEMWBS_CONVERSION[7] == 7.0 and SWEMWBS_CONVERSION[35] == 35.0
    vals = list(SWEMWBS_CONVERSION.values())
    assert all(a < b for a, b in zip(vals, vals[1:], strict=False))
    out = score(_row([3] * 7), "SWEMWBS")
    assert out["raw"].iloc[0] == 21
    assert out["metric"].iloc[0] == pytest.approx(19.25)
    assert swemwbs_metric([20.5])[0] == pytest.approx(19.25)  # half rounds up to 21


def test_cbi_scales_and_reverse_item():
    vals = [50] * 6 + [100, 100, 100, 100, 100, 100, 0] + [25] * 6
    out = score(_row(vals), "CBI")
    assert out["personal"].iloc[0] == 50
    assert out["work"].iloc[0] == 100  # item 13 reversed: 0 -> 100
    assert out["client"].iloc[0] == 25
    coded = [3] * 6 + [5] * 6 + [1] + [2] * 6
    out2 = score(_row(coded), "CBI", cbi_coding="1-5")
    assert out2["work"].iloc[0] == 100 and out2["personal"].iloc[0] == 50


def test_cbi_min_answered():
    vals = [50, 50, np.nan, np.nan, np.nan, np.nan] + [50] * 13
    out = score(_row(vals), "CBI")
    assert np.isnan(out["personal"].iloc[0])
    vals[2] = 50
    assert score(_row(vals), "CBI")["personal"].iloc[0] == 50


def test_rcads_subscales_and_total():
    vals = [1] * 47
    out = score(_row(vals), "RCADS")
    assert out["separation_anxiety"].iloc[0] == 7
    assert out["depression"].iloc[0] == 10
    assert out["total_anxiety"].iloc[0] == 37
    assert out["total"].iloc[0] == 47


def test_rcads_bad_key():
    with pytest.raises(DataError):
        rcads_instrument({"a": (1, 2)})


def test_rcads_tscores():
    s = pd.DataFrame({"depression": [10.0, 20.0], "sex": ["f", "m"]})
    norms = pd.DataFrame(
        {
            "scale": ["depression", "depression"],
            "sex": ["f", "m"],
            "mean": [10.0, 10.0],
            "sd": [5.0, 10.0],
        }
    )
    t = rcads_tscores(s, norms)
    assert t["t_depression"].tolist() == [50.0, 60.0]


def test_ors_total_given_and_items():
    df = pd.DataFrame(
        {
            "item_1": [5.5, np.nan],
            "item_2": [6, np.nan],
            "item_3": [7, np.nan],
            "item_4": [8, np.nan],
            "total": [np.nan, 31.2],
        }
    )
    out = score(df, "ORS")
    assert out["total"].tolist() == [26.5, 31.2]


def test_cutoffs():
    assert clinical_cutoff("SRS") == 36
    assert clinical_cutoff("ORS") == 25
    assert list(clinical_cutoff("ORS", np.array([8, 15, 40]))) == [32, 28, 25]


def test_reliable_change_hand_worked():
    # SD 10, r 0.75: SE = 10*0.5 = 5, Sdiff = 7.0711; change 15 -> RC 2.1213
    rc = reliable_change([20, 20, 20], [35, 25, 5], sd_pre=10, reliability=0.75, cutoff=25)
    assert rc["rc"].iloc[0] == pytest.approx(15 / (np.sqrt(2) * 5))
    assert rc["direction"].tolist() == ["improved", "no reliable change", "deteriorated"]
    assert rc["clinically_significant"].tolist() == [True, False, False]


def test_reliable_change_bad_parameters():
    with pytest.raises(DataError):
        reliable_change([1], [2], sd_pre=0, reliability=0.5)


def test_unknown_instrument_and_scale():
    with pytest.raises(DataError):
        score(_row([1]), "NOPE")
    with pytest.raises(DataError):
        score(_row([1] * 14), "WEMWBS", scales=["nope"])
