"""Hand-computed fidelity tables for small delivery logs, one test per built-in metric."""

from __future__ import annotations

import pandas as pd
import pytest

from trialkit.fidelity import MetricValue, assess_fidelity, available_metrics, register_metric


def ind(metric: str, target: float | None = None, **params: object) -> dict[str, object]:
    d: dict[str, object] = {
        "id": f"ind.{metric}",
        "label": metric,
        "level": "la",
        "component": "comp",
        "metric": metric,
        "params": params,
    }
    if target is not None:
        d["target"] = target
    return d


def log(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def tr(la: str, kw: str, course: str, day: int, attended: bool = True) -> dict[str, object]:
    return {
        "record_type": "training",
        "la_id": la,
        "keyworker_id": kw,
        "course": course,
        "day": day,
        "date": f"2024-09-{10 + day}",
        "attended": attended,
    }


def session(
    la: str, sid: str, date: str, genogram: bool | None = True, group: str | None = None
) -> dict[str, object]:
    row: dict[str, object] = {
        "record_type": "supervision_session",
        "la_id": la,
        "session_id": sid,
        "date": date,
        "genogram_used": genogram,
        "duration_minutes": 90,
    }
    if group is not None:
        row["group_id"] = group
    return row


def value(report, la: str, column: str = "delivered") -> float:  # type: ignore[no-untyped-def]
    t = report.indicators
    return float(t.loc[t["la_id"] == la, column].iloc[0])


def run(protocol, delivery, small, **kw):  # type: ignore[no-untyped-def]
    return assess_fidelity(
        protocol, delivery, small["keyworkers"], small["families"], small["allocation"], **kw
    )


def test_registry_lists_builtins() -> None:
    assert {
        "training_days_delivered",
        "share_completing_training",
        "supervision_sessions_per_month",
        "clinician_fte_months",
        "share_sessions_with_genogram",
        "supervision_attendance",
        "share_families_with_feedback",
    } <= set(available_metrics())


def test_training_days_delivered(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    # days 1-3 attended by someone; day 4 recorded but nobody attended; foundation ignored
    d = log(
        [
            tr("A", "a1", "cpd", 1),
            tr("A", "a2", "cpd", 1),
            tr("A", "a1", "cpd", 2),
            tr("A", "a2", "cpd", 3),
            tr("A", "a1", "cpd", 4, False),
            tr("A", "a1", "foundation", 1),
        ]
    )
    p = make_protocol([ind("training_days_delivered", course="cpd")])
    r = run(p, d, small)
    assert value(r, "A") == 3.0
    assert value(r, "A", "intended") == 5.0  # from TIDieR quantity cpd_days
    assert value(r, "A", "adherence") == pytest.approx(0.6)
    assert r.indicators.loc[r.indicators["la_id"] == "A", "band"].item() == "moderate"
    assert (
        r.indicators.loc[r.indicators["la_id"] == "A", "target_source"].item()
        == "tidier quantity cpd_days"
    )


def test_share_completing_training(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    # a1: 4 days, a2: 3 days, a3: none -> 1/3 complete >= 4; champions only: a1 -> 1/1
    rows = [tr("A", "a1", "cpd", k) for k in range(1, 5)] + [
        tr("A", "a2", "cpd", k) for k in range(1, 4)
    ]
    p = make_protocol([ind("share_completing_training", course="cpd", min_days=4)])
    r = run(p, log(rows), small)
    assert value(r, "A") == pytest.approx(1 / 3)
    assert value(r, "A", "numerator") == 1.0 and value(r, "A", "denominator") == 3.0
    assert r.indicators["band"].iloc[0] == "low"
    p2 = make_protocol(
        [ind("share_completing_training", course="cpd", min_days=4, role="champion")]
    )
    r2 = run(p2, log(rows), small)
    assert value(r2, "A") == 1.0


def test_supervision_sessions_per_month(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    rows = [session("A", f"s{i}", f"2025-0{i + 1}-10") for i in range(8)]
    p = make_protocol([ind("supervision_sessions_per_month")])
    r = run(p, log(rows), small)
    assert value(r, "A") == pytest.approx(8 / 16)  # delivery_period = 16 months
    assert value(r, "A", "intended") == 1.0  # supervision_frequency
    assert r.settings["delivery_months_source"] == "tidier.when_and_how_much.delivery_period"


def test_supervision_frequency_is_per_group(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    # LA A: group 1 met 12 times, group 2 met 4 times -> (12/16 + 4/16) / 2 = 0.5 per group-month
    # LA B: one group, 16 sessions -> 1.0; a second LA's groups do not dilute the first's
    rows = [
        session("A", f"a1-{i}", f"2025-{1 + i % 12:02d}-{10 + i // 12:02d}", group="A-G1")
        for i in range(12)
    ]
    rows += [session("A", f"a2-{i}", f"2025-0{i + 1}-20", group="A-G2") for i in range(4)]
    rows += [
        session("B", f"b-{i}", f"{2024 + (i + 8) // 12}-{(i + 8) % 12 + 1:02d}-05", group="B-G1")
        for i in range(16)
    ]
    p = make_protocol([ind("supervision_sessions_per_month")])
    r = run(p, log(rows), small)
    assert value(r, "A") == pytest.approx(16 / (2 * 16))
    assert value(r, "A", "numerator") == 16.0 and value(r, "A", "denominator") == 32.0
    assert value(r, "A", "adherence") == pytest.approx(0.5)
    assert value(r, "B") == pytest.approx(1.0)
    assert r.indicators.loc[r.indicators["la_id"] == "A", "note"].item() == ""


def test_supervision_without_group_ids_counts_the_la_as_one_group(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    rows = [session("A", f"s{i}", f"2025-0{i + 1}-10") for i in range(8)]
    p = make_protocol([ind("supervision_sessions_per_month")])
    t = run(p, log(rows), small).indicators
    row = t[t["la_id"] == "A"].iloc[0]
    assert row["delivered"] == pytest.approx(8 / 16)
    assert "no group_id recorded" in row["note"] and "one group" in row["note"]


def test_clinician_fte_months(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    rows = [
        {"record_type": "clinician_month", "la_id": "A", "month": m, "fte": f}
        for m, f in (("2024-09", 1.0), ("2024-10", 1.0), ("2024-11", 0.5))
    ]
    p = make_protocol([ind("clinician_fte_months")])
    r = run(p, log(rows), small)
    assert value(r, "A") == 2.5
    assert value(r, "A", "intended") == 16.0  # 1 FTE x 16 months
    assert value(r, "A", "adherence") == pytest.approx(2.5 / 16)


def test_share_sessions_with_genogram(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    rows = [
        session("A", "s1", "2025-01-10"),
        session("A", "s2", "2025-02-10"),
        session("A", "s3", "2025-03-10", False),
        session("A", "s4", "2025-04-10", None),
    ]
    p = make_protocol([ind("share_sessions_with_genogram")])
    r = run(p, log(rows), small)
    assert value(r, "A") == 0.5  # unrecorded use counts as not used
    assert r.indicators["band"].iloc[0] == "moderate"


def test_supervision_attendance(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    rows = [session("A", "s1", "2025-01-10"), session("A", "s2", "2025-02-10")]
    for sid, kw, att in [
        ("s1", "a1", True),
        ("s1", "a2", True),
        ("s1", "a3", False),
        ("s2", "a1", True),
        ("s2", "a2", False),
        ("s2", "a3", True),
    ]:
        rows.append(
            {
                "record_type": "supervision_attendance",
                "la_id": "A",
                "session_id": sid,
                "keyworker_id": kw,
                "attended": att,
            }
        )
    p = make_protocol([ind("supervision_attendance", target=0.8)])
    r = run(p, log(rows), small)
    assert value(r, "A") == pytest.approx(4 / 6)
    assert value(r, "A", "adherence") == pytest.approx((4 / 6) / 0.8)
    dose = r.keyworker_dose.set_index("keyworker_id")
    assert (
        dose.loc["a2", "supervision_expected"] == 2 and dose.loc["a2", "supervision_attended"] == 1
    )


def test_share_families_with_feedback(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    # A has 4 consented families (fa5 not consented); fa1, fa2 administered at baseline,
    # fa3 recorded but not administered, fa4 only at 'mid'; fa5 (unconsented) ignored
    rows = [
        {
            "record_type": "feedback",
            "la_id": "A",
            "keyworker_id": "a1",
            "family_id": f,
            "timepoint": tp,
            "instrument": "SCORE-15",
            "administered": adm,
            "date": "2025-01-20",
        }
        for f, tp, adm in [
            ("fa1", "baseline", True),
            ("fa1", "baseline", True),
            ("fa2", "baseline", True),
            ("fa3", "baseline", False),
            ("fa4", "mid", True),
            ("fa5", "baseline", True),
        ]
    ]
    p = make_protocol([ind("share_families_with_feedback", timepoint="baseline")])
    r = run(p, log(rows), small)
    assert value(r, "A") == 0.5
    assert value(r, "A", "denominator") == 4.0


def test_register_custom_metric(make_protocol, small) -> None:  # type: ignore[no-untyped-def]
    @register_metric(
        "test_sessions_held", record_types=("supervision_session",), cumulative=True, replace=True
    )
    def sessions_held(ctx, la_id, params):  # type: ignore[no-untyped-def]
        s = ctx.dated(ctx.tables.sessions)
        return MetricValue(delivered=float((s["la_id"] == la_id).sum()))

    rows = [session("A", "s1", "2025-01-10"), session("A", "s2", "2025-02-10")]
    p = make_protocol([ind("test_sessions_held", target=4)])
    r = run(p, log(rows), small)
    assert value(r, "A") == 2.0 and value(r, "A", "adherence") == 0.5


def test_every_metric_declares_its_record_types_to_the_data_stage() -> None:
    from trialkit.data.schema import delivery_needs
    from trialkit.fidelity.metrics import available_metrics

    for name, metric in available_metrics().items():
        assert set(delivery_needs(name)) == set(metric.record_types), name
