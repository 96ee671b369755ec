"""The shared parsing rules (trialkit.data.parse) and validate's use of them (issue 15 item 1-2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trialkit.data import validate
from trialkit.data.load import convert
from trialkit.data.parse import case_variants, match_levels, parse_numbers


def test_numbers_with_thousands_separators() -> None:
    cells = ["1,412", "1 356", "1\u2009189", "1\u202f000", "-2,000.5", " 12 ", "", None]
    bad_cells = ["abc", "12,3", "1,41,2", "1,000 000", "1.412,5"]
    p = parse_numbers(pd.Series(cells + bad_cells, dtype=object))
    np.testing.assert_array_equal(p.values[:7], [1412, 1356, 1189, 1000, -2000.5, 12, np.nan])
    assert p.grouped.tolist() == [True] * 5 + [False] * 8
    assert p.bad.tolist() == [False] * 8 + [True] * 5


def test_levels_matched_after_trim_and_case() -> None:
    m = match_levels(["North", "north", "NORTH ", "Nrth", None], ["Midlands", "North", "South"])
    assert m.values == ("North", "North", "North", "Nrth", None)
    assert m.normalised.tolist() == [False, True, True, False, False]
    assert m.unmatched.tolist() == [False, False, False, True, False]
    assert case_variants(["North", "north", "NORTH ", "South"]) == {
        "north": ("NORTH ", "North", "north")
    }


def test_convert_uses_the_same_rules() -> None:
    vals, bad = convert(pd.Series(["1,412", "abc", "7"], dtype=object), "float")
    assert vals.iloc[0] == 1412 and vals.iloc[2] == 7 and bad.tolist() == [False, True, False]


def _write(tables: dict[str, pd.DataFrame], d: Path, clusters) -> Path:
    d.mkdir()
    for name, frame in tables.items():
        (clusters(frame.copy()) if name == "clusters" else frame).to_csv(
            d / f"{name}.csv", index=False
        )
    return d


def test_validate_reads_council_spellings_and_records_them(protocol, tiny_tables, tmp_path):
    def council(df: pd.DataFrame) -> pd.DataFrame:
        df["families_referred_2023"] = df["families_referred_2023"].astype(object)
        df.loc[0, "families_referred_2023"] = "1,412"
        df.loc[1, "region"] = str(df.loc[1, "region"]).upper() + " "
        return df

    d = _write(tiny_tables, tmp_path / "council", council)
    td = validate(protocol, d, d)
    assert td.ok, [str(p.to_problem()) for p in td.errors]
    sep = next(p for p in td.problems if p.code == "clusters.thousands_separator")
    assert (sep.row, sep.column, sep.severity) == (1, "families_referred_2023", "warning")
    assert "1412" in sep.message
    lev = next(p for p in td.problems if p.code == "clusters.level_normalised")
    assert (lev.row, lev.column) == (2, "region")
    assert td.tables["clusters"]["families_referred_2023"].iloc[0] == 1412
    assert set(td.tables["clusters"]["region"]) <= set(protocol.data.covariate("region").levels)


def test_validate_still_refuses_text_in_a_number(protocol, tiny_tables, tmp_path):
    def council(df: pd.DataFrame) -> pd.DataFrame:
        df["families_referred_2023"] = df["families_referred_2023"].astype(object)
        df.loc[2, "families_referred_2023"] = "12,3"
        return df

    td = validate(protocol, _write(tiny_tables, tmp_path / "bad", council), None)
    p = next(p for p in td.problems if p.code == "clusters.invalid_value")
    assert (p.row, p.column) == (3, "families_referred_2023")
