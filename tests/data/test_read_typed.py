"""CSV tables parsed with their declared column types read as the guessing read does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas._libs.parsers import STR_NA_VALUES

from trialkit.data.load import convert_marked
from trialkit.store import read_table
from trialkit.store.tables import CSV_NULLS

KINDS = {
    "family_id": "id",
    "score": "float",
    "whole": "float",
    "empty": "float",
    "day": "int",
    "when": "date",
    "never": "date",
    "flag": "bool",
    "bit": "bool",
    "note": "str",
}

CLEAN = (
    "family_id,score,whole,empty,day,when,never,flag,bit,note,extra\n"
    "01,1.5,3,,1,2024-05-01,,true,1,a,x\n"
    "02,NaN,4,,2,,,False,0,NA,1.0\n"
    "03,-2e3,,,,2024-06-30,,,,b,\n"
    "04,inf,5,,3,2024-07-01,,TRUE,,2.0,y\n"
)


def _converted(frame: pd.DataFrame) -> dict[str, tuple[list[object], list[bool], list[bool]]]:
    out = {}
    for c, kind in KINDS.items():
        conv, bad, grouped = convert_marked(frame[c], kind)  # type: ignore[arg-type]
        out[c] = (conv.astype(object).tolist(), bad.tolist(), grouped.tolist())
        out[c + ":dtype"] = (str(conv.dtype), [], [])  # type: ignore[assignment]
    return out


def _same(a: object, b: object) -> bool:
    return (a is pd.NA and b is pd.NA) or a == b or (a != a and b != b)  # type: ignore[comparison-overlap]


def test_missing_cells_are_pandas_defaults() -> None:
    assert set(CSV_NULLS) == set(STR_NA_VALUES)


def test_typed_read_converts_as_the_guessing_read(tmp_path: Path) -> None:
    path = tmp_path / "families.csv"
    path.write_text(CLEAN, encoding="utf-8")
    guessed = read_table(path, ("family_id",))
    typed = read_table(path, ("family_id",), kinds=KINDS)
    assert str(typed["score"].dtype) == "double[pyarrow]"  # parsed as declared
    assert list(typed.columns) == list(guessed.columns)
    pd.testing.assert_series_equal(typed["extra"], guessed["extra"])
    pd.testing.assert_series_equal(typed["family_id"], guessed["family_id"])
    a, b = _converted(guessed), _converted(typed)
    assert a.keys() == b.keys()
    for c in a:
        assert len(a[c][0]) == len(b[c][0])
        assert all(_same(x, y) for x, y in zip(a[c][0], b[c][0], strict=True)), c
        assert a[c][1:] == b[c][1:], c


@pytest.mark.parametrize(
    ("column", "cell"),
    [
        ("score", "1,412"),
        ("score", "abc"),
        ("day", "2.5"),
        ("when", "01/05/2024"),
        ("bit", "maybe"),
    ],
)
def test_a_cell_that_does_not_parse_reads_as_before(tmp_path: Path, column: str, cell: str) -> None:
    frame = pd.read_csv(pd.io.common.StringIO(CLEAN), dtype=str, keep_default_na=False)
    frame.loc[1, column] = cell
    path = tmp_path / "families.csv"
    frame.to_csv(path, index=False)
    guessed = read_table(path, ("family_id",))
    typed = read_table(path, ("family_id",), kinds=KINDS)
    pd.testing.assert_frame_equal(typed, guessed)
    bad = convert_marked(typed[column], KINDS[column])[1]  # type: ignore[arg-type]
    expected = ({1} if cell != "1,412" else set()) | ({3} if column == "score" else set())
    assert np.flatnonzero(bad).tolist() == sorted(expected)  # row 4 of score is inf


def test_repeated_header_names_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "families.csv"
    path.write_text("family_id,score,score\n01,1,2\n", encoding="utf-8")
    typed = read_table(path, ("family_id",), kinds=KINDS)
    pd.testing.assert_frame_equal(typed, read_table(path, ("family_id",)))
    assert list(typed.columns) == ["family_id", "score", "score.1"]
