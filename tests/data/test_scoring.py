"""Scoring against hand-worked examples (see docs/scoring.md)."""

from __future__ import annotations

from pathlib import Path

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


# ----------------------------------------------------------------------------- issue #16 item 1
# `score` applies the data stage's item rules (the ones validate applies), so a file a council
# analyst writes by hand is refused with the row, column, code and a hint.


def _csv_frame(tmp_path, text):
    from trialkit.data.load import read_table

    f = tmp_path / "measurements.csv"
    f.write_text(text)
    return read_table(f, ("entity_id",))


def _items_csv(rows):
    n = len(rows[0][1])
    head = "entity_id," + ",".join(f"item_{i}" for i in range(1, n + 1))
    return "\n".join([head, *(f"{e}," + ",".join(v) for e, v in rows)]) + "\n"


def test_score15_item_out_of_range_is_an_error(tmp_path):
    vals = ["3"] * 15
    vals[5] = "6"  # item 6 entered as 6 on a 1-5 scale
    frame = _csv_frame(tmp_path, _items_csv([("F001", ["3"] * 15), ("F002", vals)]))
    with pytest.raises(DataError) as exc:
        score(frame, "SCORE-15", file="measurements.csv")
    (p,) = exc.value.problems
    assert p.code == "measurements.item_out_of_range"
    assert p.path == "measurements.csv row 2 column item_6"
    assert "must be a whole number from 1 to 5; got 6" in p.message and p.hint


def test_swemwbs_extreme_values_are_errors_without_runtime_warnings(tmp_path):
    frame = _csv_frame(tmp_path, _items_csv([("K01", ["99", "-3", "1e308", "3", "3", "3", "3"])]))
    with pytest.raises(DataError) as exc:  # filterwarnings = error: no RuntimeWarning escapes
        score(frame, "SWEMWBS")
    got = [(p.code, p.path.rsplit(" ", 1)[-1]) for p in exc.value.problems]
    assert got == [("measurements.item_out_of_range", f"item_{j}") for j in (1, 2, 3)]


def test_dash_and_dot_are_not_numbers_as_in_validate(tmp_path):
    frame = _csv_frame(tmp_path, _items_csv([("K01", ["3", "-", ".", "3", "3", "3", "3"])]))
    with pytest.raises(DataError) as exc:
        score(frame, "SWEMWBS")
    assert [p.code for p in exc.value.problems] == ["measurements.item_not_numeric"] * 2
    assert "got '-'" in exc.value.problems[0].message


def test_cbi_coding_mismatch_is_detected(tmp_path):
    frame = _csv_frame(tmp_path, _items_csv([("K01", ["50"] * 10 + ["100"] * 9)]))
    with pytest.raises(DataError) as exc:
        score(frame, "CBI", cbi_coding="1-5")
    p = exc.value.problems[0]
    assert p.code == "measurements.item_out_of_range" and "one of 1, 2, 3, 4, 5" in p.message
    assert "0-100" in p.hint
    codes = _csv_frame(tmp_path, _items_csv([("K01", ["3"] * 10 + ["5"] * 9)]))
    with pytest.raises(DataError) as exc:
        score(codes, "CBI")
    assert "1-5" in exc.value.problems[0].hint


def test_cbi_codes_score_as_published_scale():
    codes = pd.DataFrame([{f"item_{i}": 1 + (i % 5) for i in range(1, 20)}])
    published = codes.map(lambda v: (v - 1) * 25)
    a = score(codes, "CBI", cbi_coding="1-5")
    b = score(published, "CBI")
    pd.testing.assert_frame_equal(a, b)


def test_item_rule_is_shared_with_validate():
    from trialkit.data import _checks_measurements, scoring

    src = Path(_checks_measurements.__file__).read_text()
    assert "scoring.invalid_items" in src and "scoring.item_message" in src
    ins = scoring.entered_instrument("CBI", cbi_coding="1-5")
    x = np.array([[1.0, 2.5, np.inf, 6.0, np.nan] + [1.0] * 14])
    assert scoring.invalid_items(x, ins)[0, :5].tolist() == [False, True, True, True, False]


# --------------------------------------------------------------- the protocol's [scoring] section
def _write(tables, d):
    d.mkdir()
    for name, frame in tables.items():
        frame.to_csv(d / f"{name}.csv", index=False)
    return d


def _with_scoring(protocol, **scoring):
    from trialkit.protocol import protocol_from_mapping

    doc = protocol.model_dump(mode="json", exclude_none=True)
    doc["scoring"] = {**doc.get("scoring", {}), **scoring}
    return doc, protocol_from_mapping


def test_validate_reads_cbi_coding_from_protocol(protocol, tiny_tables, tmp_path):
    from trialkit.data import validate

    base = validate(protocol, _write(tiny_tables, tmp_path / "a"), tmp_path / "a")
    t = {k: v.copy() for k, v in tiny_tables.items()}
    m = t["measurements"]
    cbi = m["instrument"] == "CBI"
    for c in [f"item_{i}" for i in range(1, 20)]:
        v = pd.to_numeric(m.loc[cbi, c], errors="coerce")
        m.loc[cbi, c] = (v / 25 + 1).map(lambda x: "" if pd.isna(x) else f"{x:g}")
    doc, make = _with_scoring(protocol, cbi_coding="1-5")
    coded = validate(make(doc), _write(t, tmp_path / "b"), tmp_path / "b")
    assert coded.ok, [str(p.to_problem()) for p in coded.errors]
    pd.testing.assert_frame_equal(coded.scores, base.scores)
    # the 1-5 file read with the default coding is refused, with the coding in the hint
    wrong = validate(protocol, tmp_path / "b", tmp_path / "b")
    hit = [p for p in wrong.errors if p.code == "measurements.item_out_of_range"]
    assert hit and "1-5" in hit[0].hint


def test_validate_reads_score15_direction_from_protocol(protocol, tiny_tables, tmp_path):
    from trialkit.data import validate

    d = _write(tiny_tables, tmp_path / "a")
    base = validate(protocol, d, d).scores
    doc, make = _with_scoring(protocol, score15_reverse="difficulties")
    flipped = validate(make(doc), d, d).scores
    oc = next(o.id for o in protocol.outcomes if o.instrument == "SCORE-15")
    a = base[base["outcome_id"] == oc]["value"].to_numpy()
    b = flipped[flipped["outcome_id"] == oc]["value"].to_numpy()
    assert not np.allclose(a, b, equal_nan=True)


def test_validate_scores_a_custom_instrument_declared_in_protocol(protocol, tiny_tables, tmp_path):
    from trialkit.data import validate

    doc, make = _with_scoring(
        protocol,
        instruments=[{"id": "FAD", "n_items": 4, "range": [1, 4], "reverse_items": [2]}],
    )
    doc["outcomes"].append(
        {
            "id": "fad",
            "label": "Family functioning (FAD)",
            "level": "family",
            "instrument": "custom",
            "score": "FAD",
            "range": [4, 16],
            "timepoints": ["baseline", "end"],
        }
    )
    t = {k: v.copy() for k, v in tiny_tables.items()}
    fams = t["families"]["family_id"].tolist()[:2]
    extra = pd.DataFrame(
        {
            "entity_id": fams,
            "level": "family",
            "instrument": "FAD",
            "timepoint": "baseline",
            "item_1": ["4", "1"],
            "item_2": ["1", "5"],  # reversed; 5 is out of range
            "item_3": ["4", "1"],
            "item_4": ["4", "1"],
        }
    )
    t["measurements"] = pd.concat([t["measurements"], extra], ignore_index=True).fillna("")
    td = validate(make(doc), _write(t, tmp_path / "c"), tmp_path / "c")
    bad = [p for p in td.errors if p.code == "measurements.item_out_of_range"]
    assert [(p.column, p.row) for p in bad] == [("item_2", len(t["measurements"]))]
    fad = td.scores[td.scores["outcome_id"] == "fad"]
    assert fad["value"].iloc[0] == 16.0


def test_ors_given_total_follows_validate_rules(tmp_path):
    frame = _csv_frame(tmp_path, "entity_id,total\nF1,41\nF2,-\nF3,30\n")
    with pytest.raises(DataError) as exc:
        score(frame, "ORS")
    got = {(p.code, p.path) for p in exc.value.problems}
    assert got == {
        ("measurements.total_out_of_range", "measurements row 1 column total"),
        ("measurements.invalid_value", "measurements row 2 column total"),
    }


def test_validate_takes_training_courses_from_protocol(protocol, tiny_tables, tmp_path):
    from trialkit.data import validate

    t = {k: v.copy() for k, v in tiny_tables.items()}
    dl = t["delivery"]
    first = dl.index[dl["course"] == "foundation"][0]
    dl.loc[first, "course"] = "advanced"
    d = _write(t, tmp_path / "a")
    refused = [p for p in validate(protocol, d, d).errors if p.column == "course"]
    assert refused and "cpd, foundation" in refused[0].message
    doc = protocol.model_dump(mode="json", exclude_none=True)
    doc["data"]["courses"] = ["cpd", "foundation", "advanced"]
    from trialkit.protocol import protocol_from_mapping

    td = validate(protocol_from_mapping(doc), d, d)
    assert not [p for p in td.errors if p.column == "course"]
