"""Bands, indices, missing vs zero, contamination, over time, bad records, serialisation."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from trialkit.errors import FidelityError
from trialkit.fidelity import FidelityReport, adherence_ratio, assess_fidelity, band_of
from trialkit.fidelity._example import example_tables


def ind(
    iid: str,
    metric: str,
    component: str,
    target: float | None = None,
    weight: float = 1.0,
    comparison: str = ">=",
    **params: object,
) -> dict[str, object]:
    d: dict[str, object] = {
        "id": iid,
        "label": iid,
        "level": "la",
        "component": component,
        "metric": metric,
        "params": params,
        "weight": weight,
        "comparison": comparison,
    }
    if target is not None:
        d["target"] = target
    return d


def sess(la: str, sid: str, date: str, genogram: bool = True) -> dict[str, object]:
    return {
        "record_type": "supervision_session",
        "la_id": la,
        "session_id": sid,
        "date": date,
        "genogram_used": genogram,
    }


def run(p, rows, small, **kw):  # type: ignore[no-untyped-def]
    return assess_fidelity(
        p, pd.DataFrame(rows), small["keyworkers"], small["families"], small["allocation"], **kw
    )


# ------------------------------------------------------------------ ratios and bands
@pytest.mark.parametrize(
    ("d", "t", "cmp", "want"),
    [
        (3, 5, ">=", 0.6),
        (7, 5, ">=", 1.0),
        (0, 0, ">=", 1.0),
        (4, 5, "<=", 1.0),
        (10, 5, "<=", 0.5),
        (1, 0, "<=", 0.0),
        (4, 5, "==", 0.8),
        (10, 5, "==", 0.5),
        (5, 5, "==", 1.0),
    ],
)
def test_adherence_ratio(d: float, t: float, cmp: str, want: float) -> None:
    assert adherence_ratio(d, t, cmp) == pytest.approx(want)


def test_adherence_nan_stays_nan() -> None:
    assert math.isnan(adherence_ratio(math.nan, 5))


@pytest.mark.parametrize(
    ("v", "band"),
    [
        (0.0, "low"),
        (0.4999, "low"),
        (0.5, "moderate"),
        (0.79, "moderate"),
        (0.8, "high"),
        (1.0, "high"),
        (math.nan, "missing"),
    ],
)
def test_default_bands(v: float, band: str) -> None:
    assert band_of(v) == band


def test_configurable_bands(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    rows = [sess("A", f"s{i}", f"2025-0{i + 1}-10", genogram=i < 3) for i in range(4)]  # 0.75
    p = make_protocol([ind("g", "share_sessions_with_genogram", "genograms")])
    assert run(p, rows, small).indicators["band"].iloc[0] == "moderate"
    r = run(p, rows, small, bands=(0.6, 0.7))
    assert r.indicators["band"].iloc[0] == "high"
    p2 = make_protocol(
        [ind("g", "share_sessions_with_genogram", "genograms")], fidelity={"bands": [0.8, 0.9]}
    )
    assert run(p2, rows, small).indicators["band"].iloc[0] == "low"


def test_bad_bands_rejected(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    p = make_protocol([ind("g", "share_sessions_with_genogram", "genograms")])
    with pytest.raises(FidelityError) as e:
        run(p, [sess("A", "s1", "2025-01-10")], small, bands=(0.8, 0.5))
    assert e.value.codes == ("fidelity.settings.bands",)


# ------------------------------------------------------------------ indices and weights
def test_component_and_overall_indices_with_weights(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    # genograms: 3 of 4 sessions -> 0.75; frequency 4 sessions / 16 months vs 0.5 -> 0.5
    # supervision component = (2*0.5 + 1*... ) uses indicator weights
    rows = [sess("A", f"s{i}", f"2025-0{i + 1}-10", genogram=i < 3) for i in range(4)]
    rows += [{"record_type": "clinician_month", "la_id": "A", "month": "2024-09", "fte": 1.0}]
    inds = [
        ind("freq", "supervision_sessions_per_month", "supervision", target=0.5, weight=2.0),
        ind("geno", "share_sessions_with_genogram", "supervision", weight=1.0),
        ind("fte", "clinician_fte_months", "clinician", target=4.0),
    ]
    p = make_protocol(inds, fidelity={"component_weights": {"supervision": 3.0, "clinician": 1.0}})
    r = run(p, rows, small)
    comp = r.components[r.components["la_id"] == "A"].set_index("component")["index"]
    assert comp["supervision"] == pytest.approx((2 * 0.5 + 1 * 0.75) / 3)
    assert comp["clinician"] == pytest.approx(0.25)
    overall = r.overall.set_index("la_id").loc["A", "overall_index"]
    assert overall == pytest.approx((3 * comp["supervision"] + 1 * 0.25) / 4)
    # overriding the weights in the call
    r2 = run(p, rows, small, component_weights={"supervision": 1.0})
    assert r2.overall.set_index("la_id").loc["A", "overall_index"] == pytest.approx(
        (comp["supervision"] + 0.25) / 2
    )


# ------------------------------------------------------------------ missing vs zero
def test_missing_records_reported_as_missing_not_zero(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    rows = [sess("A", "s1", "2025-01-10")]
    inds = [
        ind("geno", "share_sessions_with_genogram", "genograms"),
        ind("fte", "clinician_fte_months", "clinician"),
    ]
    p = make_protocol(inds)
    r = run(p, rows, small)
    t = r.indicators.set_index(["la_id", "indicator_id"])
    assert t.loc[("A", "geno"), "delivered"] == 1.0
    assert bool(t.loc[("A", "fte"), "missing"]) is True
    assert math.isnan(t.loc[("A", "fte"), "delivered"]) and t.loc[("A", "fte"), "band"] == "missing"
    assert bool(t.loc[("B", "geno"), "missing"]) is True
    o = r.overall.set_index("la_id")
    assert math.isnan(o.loc["A", "overall_index"])  # a component is missing
    assert o.loc["A", "overall_index_available"] == 1.0
    assert not bool(o.loc["A", "complete"])
    assert r.counts["n_missing_cells"] == int(r.indicators["missing"].sum())

    r0 = run(p, rows, small, missing_as_zero=True)
    t0 = r0.indicators.set_index(["la_id", "indicator_id"])
    assert t0.loc[("A", "fte"), "delivered"] == 0.0 and not bool(t0.loc[("A", "fte"), "missing"])
    assert r0.overall.set_index("la_id").loc["A", "overall_index"] == pytest.approx(0.5)
    # a ratio with an empty denominator stays NA even with missing_as_zero
    assert math.isnan(t0.loc[("B", "geno"), "delivered"])


# ------------------------------------------------------------------ contamination
def test_contamination_in_control_la(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    rows = [
        sess("A", "s1", "2025-01-10"),
        sess("C", "c1", "2025-02-10", genogram=False),
        {
            "record_type": "training",
            "la_id": "C",
            "keyworker_id": "c1",
            "course": "cpd",
            "day": 1,
            "attended": False,
        },
    ]
    inds = [
        ind("freq", "supervision_sessions_per_month", "supervision"),
        ind("geno", "share_sessions_with_genogram", "genograms"),
        ind("cpd", "training_days_delivered", "training", course="cpd"),
    ]
    r = run(make_protocol(inds), rows, small)
    c = r.contamination.set_index("component")
    assert set(r.contamination["la_id"]) == {"C"}
    assert bool(c.loc["supervision", "contaminated"]) is True
    assert bool(c.loc["genograms", "contaminated"]) is False  # session held, no genogram
    assert bool(c.loc["training", "contaminated"]) is False  # recorded but not attended
    assert r.contaminated_las() == ["C"]


# ------------------------------------------------------------------ over time
def test_over_time_cumulative_as_at_period_end(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    rows = [
        sess("A", "s1", "2024-09-10"),
        sess("A", "s2", "2024-10-10"),
        sess("A", "s3", "2025-02-10"),
    ]
    rows += [
        {"record_type": "clinician_month", "la_id": "A", "month": f"2024-{m:02d}", "fte": 1.0}
        for m in (9, 10, 11, 12)
    ]
    inds = [
        ind("freq", "supervision_sessions_per_month", "supervision"),
        ind("fte", "clinician_fte_months", "clinician"),
    ]
    r = run(make_protocol(inds), rows, small)
    ot = r.over_time[(r.over_time["la_id"] == "A") & (r.over_time["scope"] == "indicator")]
    freq = ot[ot["id"] == "freq"].set_index("period")
    assert list(freq.index[:3]) == ["2024Q3", "2024Q4", "2025Q1"]
    assert freq.loc["2024Q3", "delivered"] == pytest.approx(1 / 1)  # Sep only
    assert freq.loc["2024Q4", "delivered"] == pytest.approx(2 / 4)  # Sep-Dec
    assert freq.loc["2025Q1", "delivered"] == pytest.approx(3 / 7)
    fte = ot[ot["id"] == "fte"].set_index("period")
    assert fte.loc["2024Q4", "intended"] == pytest.approx(4.0)  # prorated 16 x 4/16
    assert fte.loc["2024Q4", "adherence"] == pytest.approx(1.0)
    assert fte.loc["2025Q4", "delivered"] == pytest.approx(4.0)
    assert fte.loc["2025Q4", "intended"] == pytest.approx(16.0)
    # final period equals the whole-trial assessment
    whole = r.indicators.set_index(["la_id", "indicator_id"])
    assert fte.loc["2025Q4", "adherence"] == pytest.approx(whole.loc[("A", "fte"), "adherence"])
    monthly = run(make_protocol(inds), rows, small, period="month")
    assert monthly.over_time["period"].nunique() == 16


# ------------------------------------------------------------------ bad records
def test_bad_delivery_records_named_by_row_and_column(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    rows = [
        sess("A", "s1", "2025-01-10"),
        sess("Z", "s2", "2025-01-10"),  # unknown LA (row 2)
        {"record_type": "clinician_month", "la_id": "A", "month": "2024-10", "fte": -0.5},  # row 3
        sess("A", "s3", "2023-01-10"),  # outside window (row 4)
        {
            "record_type": "training",
            "la_id": "A",
            "keyworker_id": "a1",
            "course": "advanced",
            "day": 1,
            "attended": True,
        },  # row 5
        {"record_type": "coaching", "la_id": "A"},  # row 6
        {
            "record_type": "training",
            "la_id": "A",
            "keyworker_id": "zz",
            "course": "cpd",
            "day": 1,
            "attended": True,
        },  # row 7
    ]
    p = make_protocol([ind("geno", "share_sessions_with_genogram", "genograms")])
    with pytest.raises(FidelityError) as e:
        run(p, rows, small, sources={"delivery": "delivery.csv"})
    # the data stage's rules and codes (the only validator of delivery records)
    got = {(pr.code, pr.path) for pr in e.value.problems}
    assert got == {
        ("delivery.unknown_la", "delivery.csv row 2 column la_id"),
        ("delivery.invalid_value", "delivery.csv row 3 column fte"),
        ("delivery.date_outside_window", "delivery.csv row 4 column date"),
        ("delivery.invalid_value", "delivery.csv row 5 column course"),
        ("delivery.unknown_record_type", "delivery.csv row 6 column record_type"),
        ("delivery.unknown_keyworker", "delivery.csv row 7 column keyworker_id"),
    }
    fte = next(pr for pr in e.value.problems if pr.path.endswith("column fte"))
    assert "'fte' must be ≥ 0; got -0.5" in fte.message


def test_linked_record_rules_are_the_data_stage_rules(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    train = {"record_type": "training", "la_id": "A", "keyworker_id": "a1", "course": "cpd"}
    rows = [
        sess("A", "s1", "2025-01-10"),
        {**train, "day": 1, "attended": True},
        {**train, "day": 1, "attended": True},  # row 3: same keyworker, course and day
        {"record_type": "supervision_attendance", "la_id": "A", "session_id": "s9"}
        | {"keyworker_id": "a1", "attended": True},  # row 4: no such session
        {"record_type": "clinician_month", "la_id": "A", "month": "2025-01", "fte": 1},
        {"record_type": "clinician_month", "la_id": "A", "month": "2025-01", "fte": 1},  # row 6
        {"record_type": "feedback", "la_id": "B", "family_id": "fa1"}
        | {"timepoint": "baseline", "administered": True},  # row 7: fa1 is in LA A
    ]
    p = make_protocol([ind("geno", "share_sessions_with_genogram", "genograms")])
    with pytest.raises(FidelityError) as e:
        run(p, rows, small, sources={"delivery": "delivery.csv"})
    got = {(pr.code, pr.path) for pr in e.value.problems}
    assert got == {
        ("delivery.duplicate", "delivery.csv row 3"),
        ("delivery.unknown_session", "delivery.csv row 4 column session_id"),
        ("delivery.duplicate", "delivery.csv row 6 column month"),
        ("delivery.la_mismatch", "delivery.csv row 7 column la_id"),
    }


def test_registered_metric_declares_its_columns_to_the_data_stage(  # type: ignore[no-untyped-def]
    make_protocol, small, monkeypatch
) -> None:
    import trialkit.data.schema as schema
    import trialkit.fidelity.metrics as metrics
    from trialkit.data._checks_delivery import check_delivery_table

    monkeypatch.setattr(schema, "_METRIC_NEEDS", dict(schema._METRIC_NEEDS))
    monkeypatch.setattr(metrics, "_REGISTRY", dict(metrics._REGISTRY))

    @metrics.register_metric(
        "minutes_of_supervision",
        record_types=("supervision_session",),
        columns=("duration_minutes",),
    )
    def minutes(ctx, la_id, params):  # type: ignore[no-untyped-def]
        s = ctx.tables.sessions
        return metrics.MetricValue(
            delivered=float(s.loc[s["la_id"] == la_id, "duration_minutes"].sum())
        )

    assert schema.delivery_needs("minutes_of_supervision") == {
        "supervision_session": ("la_id", "session_id", "date", "duration_minutes")
    }
    p = make_protocol([ind("mins", "minutes_of_supervision", "supervision", target=60)])
    found = check_delivery_table(p, pd.DataFrame([sess("A", "s1", "2025-01-10")]))
    assert [(x.code, x.column) for x in found] == [("delivery.missing_column", "duration_minutes")]
    with pytest.raises(FidelityError) as e:
        run(p, [sess("A", "s1", "2025-01-10")], small)
    assert e.value.codes == ("delivery.missing_column",)


def test_unknown_metric_and_missing_param(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    p = make_protocol([ind("x", "no_such_metric", "c"), ind("y", "training_days_delivered", "t")])
    with pytest.raises(FidelityError) as e:
        run(p, [], small)
    assert set(e.value.codes) == {
        "fidelity.indicator.unknown_metric",
        "fidelity.indicator.missing_param",
    }


def test_unknown_arm_in_allocation(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    p = make_protocol([ind("geno", "share_sessions_with_genogram", "genograms")])
    bad = dict(small)
    bad["allocation"] = pd.DataFrame(
        {"cluster": ["A", "B", "C"], "arm": ["intervention", "treat", "control"]}
    )
    with pytest.raises(FidelityError) as e:
        run(p, [sess("A", "s1", "2025-01-10")], bad)
    assert "fidelity.allocation.unknown_arm" in e.value.codes


# ------------------------------------------------------------------ pilot example
def test_pilot_example_known_fidelity(pilot) -> None:  # type: ignore[no-untyped-def]
    t = example_tables(levels=(1.0, 0.5))
    r = assess_fidelity(
        pilot,
        t["delivery"],
        t["keyworkers"],
        t["families"],
        t["allocation"],
        clusters=t["clusters"],
    )
    comp = r.components.set_index(["la_id", "component"])["index"]
    assert comp[("LA01", "training")] == 1.0 and r.la_index()["LA01"] == 1.0
    # LA02 at level 0.5: CPD 2/5 days (round(2.5)=2), Foundation 5/10, nobody completes
    assert comp[("LA02", "training")] == pytest.approx((0.4 + 0.5 + 0 + 0) / 4)
    assert comp[("LA02", "clinician")] == pytest.approx(8 / 16)
    assert comp[("LA02", "supervision")] == pytest.approx((0.5 + 1.0) / 2)
    assert comp[("LA02", "genograms")] == 1.0
    assert comp[("LA02", "feedback")] == pytest.approx(0.5)
    assert r.contaminated_las() == ["LA03"]
    dose = r.keyworker_dose.set_index("keyworker_id")
    assert dose.loc["LA02-K1", "training_days"] == 2 + 5  # champion
    assert dose.loc["LA02-K3", "training_share"] == pytest.approx(2 / 5)


def test_report_round_trip_and_repr(pilot) -> None:  # type: ignore[no-untyped-def]
    t = example_tables(levels=(1.0, 0.5), n_control=2)
    r = assess_fidelity(pilot, t["delivery"], t["keyworkers"], t["families"], t["allocation"])
    d = json.loads(json.dumps(r.to_dict()))
    back = FidelityReport.from_dict(d)
    pd.testing.assert_frame_equal(back.overall, r.overall, check_dtype=False)
    pd.testing.assert_frame_equal(back.components, r.components, check_dtype=False)
    assert repr(back) == repr(r)
    assert "LA01" in r.summary() and "contamination" in r.summary()
    assert d["schema_version"] == 1 and "trialkit_version" in d


def test_keyworker_dose_follows_the_declared_courses(pilot_doc) -> None:  # type: ignore[no-untyped-def]
    """Issue #16 item 2: training courses come from the protocol, not from code."""
    import copy

    from trialkit.protocol.load import protocol_from_mapping

    doc = copy.deepcopy(pilot_doc)
    doc["data"]["courses"] = ["cpd", "foundation", "advanced"]
    quantities = doc["arms"]["intervention"]["tidier"]["when_and_how_much"]["quantities"]
    quantities.append(
        {"id": "advanced_days", "label": "Advanced course", "value": 2, "unit": "day"}
    )
    p = protocol_from_mapping(doc)
    t = example_tables(levels=(1.0, 0.5))
    r = assess_fidelity(p, t["delivery"], t["keyworkers"], t["families"], t["allocation"])
    dose = r.keyworker_dose.set_index("keyworker_id")
    assert {"cpd_days", "foundation_days", "advanced_days"} <= set(dose.columns)
    assert (dose["advanced_days"] == 0).all()
    # nobody attended the advanced course: LA01's full CPD/Foundation dose is now short of 2 days
    champion = dose.loc["LA01-K1"]
    assert champion["training_days_intended"] == 5 + 10 + 2
    assert champion["training_share"] == pytest.approx(15 / 17)
    back = FidelityReport.from_dict(json.loads(json.dumps(r.to_dict())))
    assert list(back.keyworker_dose.columns) == list(r.keyworker_dose.columns)
