"""Validation: round trip, one broken-dataset test per problem code, save_validated.

The rule tests break one cell of a tiny valid trial (``tiny_tables`` in ``conftest.py``);
a few tests run on the whole simulated trial (``sim_dir``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from trialkit.data import save_validated, validate
from trialkit.errors import DataError


def test_round_trip_no_errors(protocol, sim_dir, synthetic):
    td = validate(protocol, sim_dir, sim_dir)
    assert td.ok, [str(p.to_problem()) for p in td.errors]
    t = synthetic.truth
    flow = td.flow

    def n(arm, level, stage, detail=""):
        sel = flow[
            (flow.arm == arm)
            & (flow.level == level)
            & (flow.stage == stage)
            & (flow.detail == detail)
        ]
        return int(sel["n"].sum())

    assert sum(n(a, "la", "randomised") for a in ("intervention", "control")) == t["n_la"]
    assert (
        sum(
            n(a, "keyworker", "randomised", "in randomised LAs")
            for a in ("intervention", "control")
        )
        == t["n_keyworkers"]
    )
    assert (
        sum(
            n(a, "family", "randomised", "referred in randomised LAs")
            for a in ("intervention", "control")
        )
        == t["n_families"]
    )
    assert sum(n(a, "family", "consented") for a in ("intervention", "control")) == t["n_consented"]
    assert (
        sum(
            n(a, "keyworker", "lost", "left post before trial end")
            for a in ("intervention", "control")
        )
        == t["n_keyworkers_left"]
    )
    wd = flow[(flow.level == "family") & flow.detail.str.startswith("withdrawn")]["n"].sum()
    assert wd == t["n_withdrawn"]
    assert td.row_counts()["measurements"] == t["n_measurements"]


def test_parquet_and_csv_give_same_result(protocol, synthetic, sim_dir, tmp_path):
    d = tmp_path / "pq"
    synthetic.save(d, fmt="parquet")
    a = validate(protocol, sim_dir, sim_dir)
    b = validate(protocol, d, d)
    assert a.codes == b.codes
    pd.testing.assert_frame_equal(a.flow, b.flow)
    pd.testing.assert_frame_equal(a.exclusions, b.exclusions)


def write_tables(tables: dict[str, pd.DataFrame], d: Path, **edits) -> Path:
    """Write a copy of ``tables`` to ``d`` as CSV, applying ``edits[name](frame)`` first.

    An edit of ``None`` leaves that table out.
    """
    d.mkdir()
    for name, frame in tables.items():
        fn = edits.get(name, lambda df: df)
        if fn is not None:
            fn(frame.copy()).to_csv(d / f"{name}.csv", index=False)
    return d


def test_tiny_trial_is_valid_and_breaks_nothing(protocol, tiny_tables, tmp_path):
    # each rule test below is meaningful only if the unbroken trial raises none of the codes
    d = write_tables(tiny_tables, tmp_path / "tiny")
    td = validate(protocol, d, d)
    assert td.ok, [str(p.to_problem()) for p in td.errors]
    assert not set(td.codes) & set(BREAKS)
    assert {k: len(v) for k, v in tiny_tables.items() if k != "delivery"} == {
        "allocation": 4,
        "clusters": 4,
        "keyworkers": 12,
        "families": 12,
        "measurements": 122,
    }


def _set(col, value, row=0):
    def fn(df):
        df.loc[row, col] = value
        return df

    return fn


def _first(df, mask):
    return int(df.index[mask][0])


BREAKS = {
    "clusters.duplicate_id": (
        "clusters",
        lambda df: pd.concat([df, df.iloc[[0]]], ignore_index=True),
        "la_id",
        5,
    ),
    "clusters.invalid_level": ("clusters", _set("region", "Wales", 2), "region", 3),
    "clusters.not_in_allocation": ("clusters", _set("la_id", "LA99", 3), "la_id", 4),
    "keyworkers.duplicate_id": (
        "keyworkers",
        lambda df: pd.concat([df, df.iloc[[0]]], ignore_index=True),
        "keyworker_id",
        None,
    ),
    "keyworkers.in_two_las": (
        "keyworkers",
        lambda df: pd.concat([df, df.iloc[[0]].assign(la_id="LA02")], ignore_index=True),
        "la_id",
        None,
    ),
    "keyworkers.unknown_la": ("keyworkers", _set("la_id", "LA77", 4), "la_id", 5),
    "keyworkers.invalid_value": ("keyworkers", _set("role", "manager", 3), "role", 4),
    "keyworkers.dates_out_of_order": (
        "keyworkers",
        lambda df: (
            df.__setitem__("leave_date", df["leave_date"].where(df.index != 1, "2000-01-01")) or df
        ),
        "leave_date",
        2,
    ),
    "keyworkers.invalid_date": ("keyworkers", _set("start_date", "31/02/2020", 2), "start_date", 3),
    "families.duplicate_id": (
        "families",
        lambda df: pd.concat([df, df.iloc[[0]]], ignore_index=True),
        "family_id",
        None,
    ),
    "families.unknown_keyworker": (
        "families",
        _set("keyworker_id", "KW-NOBODY", 5),
        "keyworker_id",
        6,
    ),
    "families.keyworker_in_other_la": (
        "families",
        lambda df: _set("la_id", "LA02" if df.loc[7, "la_id"] != "LA02" else "LA01", 7)(df),
        "la_id",
        8,
    ),
    "families.unknown_la": ("families", _set("la_id", "LA55", 7), "la_id", 8),
    "families.date_outside_window": (
        "families",
        lambda df: _set("consent_date", "2027-03-01", _first(df, df.consent_date != ""))(df),
        "consent_date",
        None,
    ),
    "families.dates_out_of_order": (
        "families",
        lambda df: _set("consent_date", "2024-01-01", _first(df, df.consent_date != ""))(df),
        "consent_date",
        None,
    ),
    "measurements.unknown_entity": ("measurements", _set("entity_id", "GHOST", 3), "entity_id", 4),
    "measurements.unknown_instrument": (
        "measurements",
        _set("instrument", "PHQ-9", 3),
        "instrument",
        4,
    ),
    "measurements.unknown_timepoint": (
        "measurements",
        _set("timepoint", "follow-up", 3),
        "timepoint",
        4,
    ),
    "measurements.item_out_of_range": (
        "measurements",
        lambda df: _set("item_2", "9", _first(df, df.instrument == "SCORE-15"))(df),
        "item_2",
        None,
    ),
    "measurements.item_not_numeric": (
        "measurements",
        lambda df: _set("item_1", "three", _first(df, df.instrument == "WEMWBS"))(df),
        "item_1",
        None,
    ),
    "measurements.wrong_item_count": (
        "measurements",
        lambda df: _set("item_20", "2", _first(df, df.instrument == "SCORE-15"))(df),
        "item_16",
        None,
    ),
    "measurements.duplicate": (
        "measurements",
        lambda df: pd.concat([df, df.iloc[[0]]], ignore_index=True),
        "timepoint",
        None,
    ),
    "measurements.date_outside_window": ("measurements", _set("date", "2023-01-01", 0), "date", 1),
    "measurements.before_consent": (
        "measurements",
        lambda df: _set("date", "2024-09-01", _first(df, df.level == "family"))(df),
        "date",
        None,
    ),
    "measurements.invalid_value": ("measurements", _set("level", "school", 0), "level", 1),
    "measurements.total_out_of_range": (
        "measurements",
        lambda df: _set("total", "55", _first(df, df.instrument == "ORS"))(df),
        "total",
        None,
    ),
    "delivery.unknown_record_type": (
        "delivery",
        _set("record_type", "coffee", 0),
        "record_type",
        1,
    ),
    "delivery.unknown_la": ("delivery", _set("la_id", "LA66", 0), "la_id", 1),
    "delivery.la_mismatch": (
        "delivery",
        lambda df: _set(
            "la_id",
            "LA02"
            if df.loc[_first(df, df.record_type == "training"), "la_id"] != "LA02"
            else "LA03",
            _first(df, df.record_type == "training"),
        )(df),
        "la_id",
        None,
    ),
    "delivery.invalid_value": (
        "delivery",
        lambda df: _set("course", "advanced", _first(df, df.record_type == "training"))(df),
        "course",
        None,
    ),
    "delivery.missing_value": (
        "delivery",
        lambda df: _set("fte", "", _first(df, df.record_type == "clinician_month"))(df),
        "fte",
        None,
    ),
    "keyworkers.date_outside_window": (
        "keyworkers",
        _set("start_date", "2026-05-01", 2),
        "start_date",
        3,
    ),
    "keyworkers.left_before_start": (
        "keyworkers",
        lambda df: _set("leave_date", "2024-01-01", 2)(_set("start_date", "2010-01-01", 2)(df)),
        "leave_date",
        3,
    ),
    "families.withdrawal_without_reason": (
        "families",
        lambda df: (
            lambda i: _set("withdrawal_date", df.loc[i, "consent_date"], i)(
                _set("withdrawal_reason", "", i)(df)
            )
        )(_first(df, (df.consent_date != "") & (df.withdrawal_date == ""))),
        "withdrawal_reason",
        None,
    ),
    "families.reason_without_date": (
        "families",
        lambda df: _set("withdrawal_reason", "moved", _first(df, df.withdrawal_date == ""))(df),
        "withdrawal_date",
        None,
    ),
    "measurements.no_responses": (
        "measurements",
        lambda df: df.assign(
            **{
                c: df[c].where(df.index != 0, "")
                for c in df.columns
                if c.startswith("item_") or c == "total"
            }
        ),
        "item_1",
        1,
    ),
    "measurements.total_ignored": (
        "measurements",
        lambda df: _set("total", "40", _first(df, df.instrument == "SCORE-15"))(df),
        "total",
        None,
    ),
    "delivery.unknown_keyworker": (
        "delivery",
        lambda df: _set("keyworker_id", "NOBODY", _first(df, df.record_type == "training"))(df),
        "keyworker_id",
        None,
    ),
    "delivery.unknown_family": (
        "delivery",
        lambda df: _set("family_id", "NOFAM", _first(df, df.record_type == "feedback"))(df),
        "family_id",
        None,
    ),
    "delivery.date_outside_window": (
        "delivery",
        lambda df: _set("date", "2030-01-01", _first(df, df.record_type == "supervision_session"))(
            df
        ),
        "date",
        None,
    ),
    "delivery.duplicate": (
        "delivery",
        lambda df: pd.concat(
            [df, df[df.record_type == "supervision_session"].iloc[[0]]], ignore_index=True
        ),
        "session_id",
        None,
    ),
    "delivery.unknown_timepoint": (
        "delivery",
        lambda df: _set("timepoint", "later", _first(df, df.record_type == "feedback"))(df),
        "timepoint",
        None,
    ),
    "delivery.no_group_id": (
        "delivery",
        lambda df: df.drop(columns=["group_id"]),
        "group_id",
        0,
    ),
    "clusters.missing_covariate_value": ("clusters", _set("imd_score", "", 3), "imd_score", 4),
    "allocation.empty_arm": (
        "allocation",
        lambda df: df.assign(arm="control"),
        "arm",
        0,
    ),
    "measurements.before_baseline": (
        "measurements",
        lambda df: _set("date", "2024-09-02", _first(df, df.timepoint == "end"))(df),
        "date",
        None,
    ),
    "measurements.cluster_without_follow_up": (
        "measurements",
        lambda df: df[~(df.entity_id.str.startswith("LA02") & (df.timepoint != "baseline"))],
        "timepoint",
        0,
    ),
    "families.header_not_first_row": (
        "families",
        lambda df: pd.concat(
            [pd.DataFrame([df.columns], columns=df.columns), df], ignore_index=True
        ).set_axis([f"Families Q{i}" for i in range(df.shape[1])], axis=1),
        None,
        0,
    ),
    "clusters.missing_covariate": (
        "clusters",
        lambda df: df.drop(columns=["imd_score"]),
        "imd_score",
        0,
    ),
}


@pytest.mark.parametrize("code", sorted(BREAKS))
def test_each_rule_breaks(code, protocol, tiny_tables, tmp_path):
    table, fn, column, row = BREAKS[code]
    d = write_tables(tiny_tables, tmp_path / "broken", **{table: fn})
    td = validate(protocol, d, d)
    hits = [p for p in td.problems if p.code == code]
    assert hits, (code, td.codes)
    p = hits[0]
    assert p.file == f"{table}.csv"
    assert p.column == column
    if row == 0:
        assert p.row is None
    elif row is not None:
        assert p.row == row
    else:
        assert p.row is not None and p.row >= 1
    if p.severity == "error":
        assert not td.ok


def test_supervision_group_given_for_some_sessions_of_an_la(protocol, tiny_tables, tmp_path):
    # a session without its group in an LA whose other sessions name theirs cannot be assigned
    d = write_tables(
        tiny_tables,
        tmp_path / "broken",
        delivery=lambda df: _set(
            "group_id", "", _first(df, df.record_type == "supervision_session")
        )(df),
    )
    td = validate(protocol, d, d)
    hits = [p for p in td.problems if p.code == "delivery.missing_value" and p.column == "group_id"]
    assert len(hits) == 1 and not td.ok
    assert "once any has one" in hits[0].message and hits[0].row is not None
    assert "delivery.no_group_id" not in td.codes


def test_arm_contradicts_allocation(protocol, tiny_tables, tmp_path):
    arms = tiny_tables["allocation"].set_index("cluster")["arm"]
    d = write_tables(
        tiny_tables,
        tmp_path / "broken",
        clusters=lambda df: df.assign(
            arm=[
                ("control" if arms[x] == "intervention" else "intervention") if i == 0 else arms[x]
                for i, x in enumerate(df.la_id)
            ]
        ),
    )
    td = validate(protocol, d, d)
    p = next(p for p in td.problems if p.code == "clusters.arm_contradicts_allocation")
    assert (p.file, p.row, p.column) == ("clusters.csv", 1, "arm")


def test_allocation_unknown_arm_and_missing_table(protocol, tiny_tables, tmp_path):
    d = write_tables(
        tiny_tables, tmp_path / "broken", allocation=_set("arm", "placebo"), families=None
    )
    td = validate(protocol, d, d)
    codes = set(td.codes)
    assert {"allocation.unknown_arm", "data.missing_table"} <= codes
    p = next(p for p in td.problems if p.code == "allocation.unknown_arm")
    assert (p.file, p.row, p.column) == ("allocation.csv", 1, "arm")


def test_missing_column(protocol, tiny_tables, tmp_path):
    d = write_tables(
        tiny_tables, tmp_path / "broken", keyworkers=lambda df: df.drop(columns=["role"])
    )
    td = validate(protocol, d, d)
    p = next(p for p in td.problems if p.code == "keyworkers.missing_column")
    assert (p.file, p.row, p.column) == ("keyworkers.csv", None, "role")


def test_many_bad_rows_are_summarised(protocol, tiny_tables, tmp_path):
    d = write_tables(
        tiny_tables, tmp_path / "broken", measurements=lambda df: df.assign(timepoint="later")
    )
    td = validate(protocol, d, d)
    hits = [p for p in td.problems if p.code == "measurements.unknown_timepoint"]
    assert len(hits) == 21 and hits[-1].row is None


def test_not_a_directory(protocol, tmp_path):
    with pytest.raises(DataError) as e:
        validate(protocol, tmp_path / "nope")
    assert e.value.codes == ("data.not_a_directory",)


def test_save_validated(protocol, sim_dir, tmp_path):
    td = validate(protocol, sim_dir, sim_dir)
    out = save_validated(td, tmp_path / "valid")
    man = json.loads((out / "manifest.json").read_text())
    assert man["stage"] == "validated"
    assert man["details"]["row_counts"]["measurements"] == td.row_counts()["measurements"]
    assert "families.csv" in man["inputs"] and "families.parquet" in man["outputs"]
    assert (out / "flow.csv").is_file() and (out / "exclusions.csv").is_file()
    back = pd.read_parquet(out / "families.parquet")
    assert len(back) == td.row_counts()["families"]
    with pytest.raises(DataError) as e:
        save_validated(td, out)
    assert e.value.codes == ("data.output_exists",)


def test_save_refuses_errors(protocol, tiny_tables, tmp_path):
    d = write_tables(tiny_tables, tmp_path / "broken", measurements=_set("timepoint", "later", 0))
    td = validate(protocol, d, d)
    with pytest.raises(DataError) as e:
        save_validated(td, tmp_path / "out")
    assert "data.has_errors" in e.value.codes
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataError):
        td.raise_for_errors()


def test_to_dict_is_json(protocol, sim_dir):
    td = validate(protocol, sim_dir, sim_dir)
    d = td.to_dict()
    json.dumps(d, default=str)
    assert d["ok"] is True and d["flow"]
    assert "TrialData(ok=True" in repr(td)


def test_excel_tables(protocol, tiny_tables, tmp_path):
    d = write_tables(tiny_tables, tmp_path / "xlsx")
    for t in ("clusters", "keyworkers"):
        df = pd.read_csv(d / f"{t}.csv", dtype=str, keep_default_na=False)
        df.to_excel(d / f"{t}.xlsx", index=False)
        (d / f"{t}.csv").unlink()
    td = validate(protocol, d, d)
    csv = write_tables(tiny_tables, tmp_path / "csv")
    ref = validate(protocol, csv, csv)
    assert td.ok and td.files["clusters"] == "clusters.xlsx"
    pd.testing.assert_frame_equal(td.flow, ref.flow)


def test_ambiguous_table(protocol, tiny_tables, tmp_path):
    d = write_tables(tiny_tables, tmp_path / "broken")
    shutil.copy(d / "clusters.csv", d / "clusters.parquet")
    td = validate(protocol, d, d)
    assert "data.ambiguous_table" in td.codes


def test_measurement_without_consent_and_after_withdrawal(protocol, tiny_tables, tmp_path):
    d = write_tables(tiny_tables, tmp_path / "broken")
    m = pd.read_csv(d / "measurements.csv", dtype=str, keep_default_na=False)
    fam_rows = m.index[m.level == "family"]
    fid = m.loc[fam_rows[0], "entity_id"]
    later = m[(m.entity_id != fid) & (m.level == "family") & (m.timepoint == "end")].iloc[0]
    fam = pd.read_csv(d / "families.csv", dtype=str, keep_default_na=False)
    fam.loc[fam.family_id == fid, ["consent_date", "withdrawal_date", "withdrawal_reason"]] = ""
    j = fam.index[fam.family_id == later.entity_id][0]
    fam.loc[j, "withdrawal_date"] = fam.loc[j, "consent_date"]
    fam.loc[j, "withdrawal_reason"] = "family withdrew"
    fam.to_csv(d / "families.csv", index=False)
    td = validate(protocol, d, d)
    p = next(p for p in td.problems if p.code == "measurements.without_consent")
    assert (p.file, p.row, p.column) == ("measurements.csv", int(fam_rows[0]) + 1, "entity_id")
    p = next(p for p in td.problems if p.code == "measurements.after_withdrawal")
    assert p.file == "measurements.csv" and p.column == "date" and p.severity == "warning"


def test_allocation_duplicate_and_missing_column(protocol, tiny_tables, tmp_path):
    d = write_tables(tiny_tables, tmp_path / "broken")
    a = pd.read_csv(d / "allocation.csv", dtype=str)
    pd.concat([a, a.iloc[[2]]], ignore_index=True).to_csv(d / "allocation.csv", index=False)
    td = validate(protocol, d, d)
    p = next(p for p in td.problems if p.code == "allocation.duplicate_cluster")
    assert (p.file, p.row, p.column) == ("allocation.csv", 5, "cluster")
    a.rename(columns={"arm": "group"}).to_csv(d / "allocation.csv", index=False)
    td = validate(protocol, d, d)
    assert "allocation.missing_column" in td.codes
