"""Messy files as a council analyst writes them: one precise problem each, no cascade.

Issue 16 items 3 and 4.  Each test writes the messy file itself, starting from the tiny valid
trial of ``conftest.py`` (``tiny_tables``: text cells, so nothing is reformatted on the way).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from trialkit.data import validate
from trialkit.data.load import guess_date_format
from trialkit.protocol.model import Protocol
from trialkit.store.tables import read_table

DATE_COLUMNS = {
    "keyworkers": ("start_date", "leave_date"),
    "families": ("referral_date", "consent_date", "withdrawal_date"),
    "measurements": ("date",),
    "delivery": ("date",),
}


def uk(iso: str) -> str:
    """``2025-02-24`` written the British way, ``24/02/2025``; empty stays empty."""
    return f"{iso[8:10]}/{iso[5:7]}/{iso[:4]}" if iso else ""


def write(tables: dict[str, pd.DataFrame], d: Path, **edits) -> Path:
    d.mkdir()
    for name, frame in tables.items():
        fn = edits.get(name, lambda df: df)
        fn(frame.copy()).to_csv(d / f"{name}.csv", index=False)
    return d


def with_date_format(protocol: Protocol, fmt: str) -> Protocol:
    raw = protocol.model_dump(mode="json")
    raw["data"]["date_format"] = fmt
    return Protocol.model_validate(raw)


def errors(td) -> list:
    return [p for p in td.problems if p.severity == "error"]


# ---------------------------------------------------------------- item 3: dates
def _uk_dates(df: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    for c in columns:
        df[c] = [uk(x) for x in df[c]]
    return df


def test_uk_dates_give_one_error_per_column_with_the_format(protocol, tiny_tables, tmp_path):
    # the families file re-saved from Excel with a UK locale: every date is 24/02/2025
    d = write(
        tiny_tables,
        tmp_path / "uk",
        families=lambda df: _uk_dates(df, DATE_COLUMNS["families"]),
    )
    td = validate(protocol, d, d)
    errs = errors(td)
    assert sorted((p.code, p.column, p.row) for p in errs) == [
        ("families.invalid_date", "consent_date", None),
        ("families.invalid_date", "referral_date", None),
        ("families.invalid_date", "withdrawal_date", None),
    ]
    p = next(p for p in errs if p.column == "consent_date")
    assert "looks like DD/MM/YYYY" in p.hint and 'date_format = "%d/%m/%Y"' in p.hint
    assert "YYYY-MM-DD" in p.message and "got 10 of 10 values" in p.message
    # the dependants of the unreadable consent dates are not reported again
    assert "measurements.without_consent" not in td.codes


def test_date_format_setting_reads_uk_dates(protocol, tiny_tables, tmp_path):
    d = write(
        tiny_tables,
        tmp_path / "uk",
        **{t: (lambda df, cs=cs: _uk_dates(df, cs)) for t, cs in DATE_COLUMNS.items()},
    )
    iso = write(tiny_tables, tmp_path / "iso")
    ref = validate(protocol, iso, iso)
    td = validate(with_date_format(protocol, "%d/%m/%Y"), d, d)
    assert td.ok, [str(p.to_problem()) for p in errors(td)]
    assert td.codes == ref.codes
    pd.testing.assert_frame_equal(td.flow, ref.flow)
    pd.testing.assert_series_equal(
        td.tables["families"]["consent_date"], ref.tables["families"]["consent_date"]
    )


def test_a_few_uk_dates_are_reported_by_row_with_the_hint(protocol, tiny_tables, tmp_path):
    def two_cells(df):
        for i in (1, 4):
            df.loc[i, "consent_date"] = uk(df.loc[i, "consent_date"])
        return df

    d = write(tiny_tables, tmp_path / "mixed", families=two_cells)
    td = validate(protocol, d, d)
    hits = [p for p in td.problems if p.code == "families.invalid_date"]
    assert [(p.row, p.column) for p in hits] == [(2, "consent_date"), (5, "consent_date")]
    assert all("looks like DD/MM/YYYY" in p.hint for p in hits)
    # the two families' measurements are not reported as "no consent_date" on top
    assert "measurements.without_consent" not in td.codes


def test_guess_date_format():
    assert guess_date_format(["24/02/2025", "3/11/2024", None])[0] == ("%d/%m/%Y", "DD/MM/YYYY")
    both = [f for f, _ in guess_date_format(["01/02/2025", "11/12/2024"])]
    assert both[:2] == ["%d/%m/%Y", "%m/%d/%Y"]
    assert guess_date_format(["12/24/2025"])[0][1] == "MM/DD/YYYY"
    assert guess_date_format(["24 Feb 2025"])[0][1] == "DD Mon YYYY"
    assert guess_date_format(["soon", "24/02/2025"]) == []


def test_ambiguous_day_month_order_says_so(protocol, tiny_tables, tmp_path):
    def early_days(df):
        df["consent_date"] = [
            f"0{i % 9 + 1}/03/2025" if x else "" for i, x in enumerate(df.consent_date)
        ]
        return df

    d = write(tiny_tables, tmp_path / "amb", families=early_days)
    td = validate(protocol, d, d)
    p = next(p for p in td.problems if p.code == "families.invalid_date")
    assert "MM/DD/YYYY" in p.hint and "every day is 12 or less" in p.hint


def test_date_format_must_read_a_date(protocol):
    assert protocol.data.date_format == "ISO8601"
    assert with_date_format(protocol, "%d.%m.%Y").data.date_format == "%d.%m.%Y"
    for bad in ("%d/%m", "DD/MM/YYYY", "%Y"):
        with pytest.raises(ValidationError, match="date_format must be"):
            with_date_format(protocol, bad)


def test_excel_date_cells_are_read_whatever_the_format(protocol, tiny_tables, tmp_path):
    d = write(tiny_tables, tmp_path / "xl")
    fam = pd.read_csv(d / "families.csv", dtype=str, keep_default_na=False)
    for c in DATE_COLUMNS["families"]:
        fam[c] = pd.to_datetime(fam[c].replace("", None))
    fam.to_excel(d / "families.xlsx", index=False)
    (d / "families.csv").unlink()
    td = validate(with_date_format(protocol, "%d/%m/%Y"), d, d)
    assert td.ok, [str(p.to_problem()) for p in errors(td)]


def test_unreadable_session_dates_are_not_also_missing(protocol, tiny_tables, tmp_path):
    def bad_dates(df):
        s = df.record_type == "supervision_session"
        df.loc[s, "date"] = "w/c Monday"
        return df

    d = write(tiny_tables, tmp_path / "dlv", delivery=bad_dates)
    td = validate(protocol, d, d)
    hits = [p for p in errors(td) if p.code == "delivery.invalid_date"]
    assert hits and all(p.column == "date" for p in hits)
    # supervision sessions need a date: one that could not be read is not "missing" as well
    assert {p.code for p in errors(td)} == {"delivery.invalid_date"}


def test_uk_dates_in_the_delivery_log(protocol, tiny_tables, tmp_path):
    d = write(tiny_tables, tmp_path / "dlv", delivery=lambda df: _uk_dates(df, ("date",)))
    td = validate(protocol, d, d)
    assert [(p.code, p.row, p.column) for p in errors(td)] == [
        ("delivery.invalid_date", None, "date")
    ]
    assert "DD/MM/YYYY" in errors(td)[0].hint


def test_thousands_separators_are_numbers(protocol, tiny_tables, tmp_path):
    d = write(tiny_tables, tmp_path / "num", clusters=lambda df: df.assign(imd_score="1,412.5"))
    td = validate(protocol, d, d)
    assert td.ok
    assert td.tables["clusters"]["imd_score"].tolist() == [1412.5] * 4


# ---------------------------------------------------------------- item 3: columns, sheets, header
def test_renamed_column_gives_did_you_mean_and_no_cascade(protocol, tiny_tables, tmp_path):
    d = write(
        tiny_tables,
        tmp_path / "renamed",
        families=lambda df: df.rename(columns={"family_id": "Family ID"}),
    )
    td = validate(protocol, d, d)
    errs = errors(td)
    assert [(p.code, p.column) for p in errs] == [("families.missing_column", "family_id")]
    p = errs[0]
    assert p.message.startswith("column 'family_id' must be present in families.csv; got columns")
    assert "'Family ID'" in p.message and "'consent_date'" in p.message
    assert "did you mean 'Family ID'? rename it to 'family_id'" in p.hint
    assert "measurements.unknown_entity" not in td.codes


def test_misspelt_column_gets_a_close_match(protocol, tiny_tables, tmp_path):
    d = write(
        tiny_tables,
        tmp_path / "typo",
        keyworkers=lambda df: df.rename(columns={"keyworker_id": "keywoker_id"}),
    )
    td = validate(protocol, d, d)
    errs = errors(td)
    assert [p.code for p in errs] == ["keyworkers.missing_column"]
    assert "did you mean 'keywoker_id'?" in errs[0].hint
    assert not {"families.unknown_keyworker", "measurements.unknown_entity"} & set(td.codes)


def test_renamed_measurement_column_gives_no_follow_on_warnings(protocol, tiny_tables, tmp_path):
    d = write(
        tiny_tables,
        tmp_path / "renamed",
        measurements=lambda df: df.rename(columns={"timepoint": "Time point"}),
    )
    td = validate(protocol, d, d)
    assert [(p.code, p.column) for p in td.problems if p.file == "measurements.csv"] == [
        ("measurements.missing_column", "timepoint")
    ]
    assert "did you mean 'Time point'?" in td.problems[0].hint


def _notes_first(path: Path, frame: pd.DataFrame, sheet: str) -> None:
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"Notes": ["Exported from the case system", "Do not edit"]}).to_excel(
            xl, sheet_name="Notes", index=False
        )
        frame.to_excel(xl, sheet_name=sheet, index=False)


def test_workbook_with_notes_sheet_first(protocol, tiny_tables, tmp_path):
    d = write(tiny_tables, tmp_path / "xl")
    _notes_first(d / "families.xlsx", tiny_tables["families"], "Families data")
    (d / "families.csv").unlink()
    td = validate(protocol, d, d)
    assert td.ok, [str(p.to_problem()) for p in errors(td)]
    assert len(td.tables["families"]) == len(tiny_tables["families"])
    frame = read_table(d / "families.xlsx", ("family_id",), ("family_id", "la_id"))
    assert frame.attrs["sheet"] == "Families data"
    assert frame.attrs["sheets"] == ["Notes", "Families data"]


def test_workbook_errors_name_the_sheet(protocol, tiny_tables, tmp_path):
    d = write(tiny_tables, tmp_path / "xl")
    fam = tiny_tables["families"].copy()
    fam.loc[2, "la_id"] = "LA77"
    _notes_first(d / "families.xlsx", fam, "Sheet2")
    (d / "families.csv").unlink()
    td = validate(protocol, d, d)
    p = next(p for p in td.problems if p.code == "families.unknown_la")
    assert p.file == "families.xlsx (sheet 'Sheet2')" and p.row == 3
    # a workbook without the columns on any sheet: the sheets read and found are named
    _notes_first(d / "families.xlsx", fam.rename(columns={"la_id": "LA"}), "families")
    td = validate(protocol, d, d)
    p = next(p for p in td.problems if p.code == "families.missing_column")
    assert p.file == "families.xlsx (sheet 'families')"
    assert "read sheet 'families' of 'Notes', 'families'" in p.hint


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_title_row_above_the_header(protocol, tiny_tables, tmp_path, suffix):
    d = write(tiny_tables, tmp_path / "title")
    fam = tiny_tables["families"]
    title = pd.DataFrame(
        [["Families referred, Q3 2024"] + [""] * (fam.shape[1] - 1), [""] * fam.shape[1]]
    )
    body = pd.concat([pd.DataFrame([fam.columns]), pd.DataFrame(fam.to_numpy())], ignore_index=True)
    sheet = pd.concat([title, body], ignore_index=True)
    (d / "families.csv").unlink()
    if suffix == ".csv":
        sheet.to_csv(d / "families.csv", index=False, header=False)
    else:
        sheet.to_excel(d / "families.xlsx", index=False, header=False)
    td = validate(protocol, d, d)
    errs = errors(td)
    assert [p.code for p in errs] == ["families.header_not_first_row"]
    assert "the header seems to be on row 3; remove the rows above it" in errs[0].hint
    assert "measurements.unknown_entity" not in td.codes


# ---------------------------------------------------------------- item 4: semantic gaps
def test_follow_up_dated_before_baseline(protocol, tiny_tables, tmp_path):
    m = tiny_tables["measurements"]
    row = int(m.index[(m.level == "family") & (m.timepoint == "end")][0])
    ent, inst = m.loc[row, "entity_id"], m.loc[row, "instrument"]
    base = m[(m.entity_id == ent) & (m.instrument == inst) & (m.timepoint == "baseline")]
    assert len(base) == 1

    def swap(df):
        # the analyst typed the follow-up's year one too low
        b = pd.Timestamp(df.loc[base.index[0], "date"])
        df.loc[row, "date"] = (b - pd.Timedelta(days=365)).date().isoformat()
        return df

    d = write(tiny_tables, tmp_path / "order", measurements=swap)
    td = validate(protocol, d, d)
    hits = [p for p in td.problems if p.code == "measurements.before_baseline"]
    assert [(p.row, p.column, p.severity) for p in hits] == [(row + 1, "date", "error")]
    assert "'baseline'" in hits[0].message and not td.ok


def test_allocation_with_every_la_in_one_arm_fails(protocol, tiny_tables, tmp_path):
    d = write(tiny_tables, tmp_path / "onearm", allocation=lambda df: df.assign(arm="intervention"))
    td = validate(protocol, d, d)
    p = next(p for p in td.problems if p.code == "allocation.empty_arm")
    assert (p.file, p.column, p.severity) == ("allocation.csv", "arm", "error")
    assert "4 in 'intervention'" in p.message and "'control'" in p.message
    assert not td.ok


def test_la_without_follow_up_gets_its_own_warning(protocol, tiny_tables, tmp_path):
    fam = tiny_tables["families"]
    kw = tiny_tables["keyworkers"]
    in_la01 = set(fam.family_id[fam.la_id == "LA01"]) | set(kw.keyworker_id[kw.la_id == "LA01"])
    d = write(
        tiny_tables,
        tmp_path / "nofu",
        measurements=lambda df: df[~(df.entity_id.isin(in_la01) & (df.timepoint != "baseline"))],
    )
    td = validate(protocol, d, d)
    hits = [p for p in td.problems if p.code == "measurements.cluster_without_follow_up"]
    assert len(hits) == 1 and hits[0].severity == "warning"
    assert "LA 'LA01'" in hits[0].message


def test_title_line_alone_above_a_csv_header(protocol, tiny_tables, tmp_path):
    d = write(tiny_tables, tmp_path / "title")
    body = (d / "keyworkers.csv").read_text(encoding="utf-8")
    (d / "keyworkers.csv").write_text("Keyworkers in post, March 2025\n" + body, encoding="utf-8")
    td = validate(protocol, d, d)
    errs = errors(td)
    assert [(p.code, p.file) for p in errs] == [
        ("keyworkers.header_not_first_row", "keyworkers.csv")
    ]
    assert "the header seems to be on row 2; remove the rows above it" in errs[0].hint
