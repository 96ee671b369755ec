"""Issue 15 items 1-5: a council analyst's clusters file cannot fool ``randomise``.

Every test reads a 16-LA, 4-region clusters file (``council.py``) through
``read_clusters``, as the command line does.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import council
import numpy as np
import pytest

from trialkit.errors import RandomisationError, TrialkitWarning
from trialkit.randomise import RandomisationSettings, randomise, read_clusters

DECLARED = {
    "declared_types": {"region": "categorical", "imd_score": "continuous", "caseload": "count"},
    "levels": {"region": ("London", "Midlands", "North", "South")},
}


def _read(tmp_path: Path, table, name: str = "clusters.csv"):
    return read_clusters(council.write(tmp_path, name, table))


def _run(frame, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrialkitWarning)
        return randomise(frame, seed=kw.pop("seed", 20260401), **kw)


def _problem(err: pytest.ExceptionInfo[RandomisationError], code: str):
    hits = [p for p in err.value.problems if p.code == code]
    assert hits, err.value.codes
    return hits


# ----------------------------------------------------------------------------- item 1: numbers


@pytest.mark.parametrize("declared", [True, False])
def test_thousands_separators_are_read_as_numbers_and_recorded(tmp_path: Path, declared) -> None:
    kw = {"method": "constrained", "covariates": ("region", "imd_score", "caseload")}
    if declared:
        kw.update(DECLARED)
    clean = _run(_read(tmp_path, council.rows(), "clean.csv"), **kw)
    messy = _run(_read(tmp_path, council.with_separators()), **kw)
    # the same numbers, so the same coding, space and allocation (never 15 dummy columns)
    assert messy.coding is not None and messy.coding.columns == clean.coding.columns  # type: ignore[union-attr]
    assert "caseload" in messy.coding.columns and len(messy.coding.columns) == 5
    assert messy.space is not None and clean.space is not None
    assert messy.space.cutoff_score == clean.space.cutoff_score
    assert messy.arms == clean.arms
    reading = messy.reading
    assert reading is not None and reading.types["caseload"] == "number"
    assert ("caseload" in reading.declared) is declared
    assert reading.interpreted
    notes = "\n".join(reading.notes)
    assert "caseload row 1: '1,412' read as 1412" in notes
    assert "caseload row 4: '1 356' read as 1356" in notes
    assert "row 16" in notes and len(reading.notes) == 5


@pytest.mark.parametrize("text", ["abc", "12,3", "1,41,2"])
def test_text_in_a_declared_number_is_refused_with_row_and_column(tmp_path: Path, text) -> None:
    frame = _read(tmp_path, council.with_cell(7, "caseload", text, council.with_separators()))
    with pytest.raises(RandomisationError) as err:
        _run(
            frame, method="constrained", covariates=("region", "imd_score", "caseload"), **DECLARED
        )
    (p,) = _problem(err, "randomise.input.not_a_number")
    assert p.path == "clusters row 7 column caseload"
    assert f"got {text!r}" in p.message and "must be a number" in p.message


def test_text_among_undeclared_numbers_is_refused_not_made_categorical(tmp_path: Path) -> None:
    frame = _read(tmp_path, council.with_cell(7, "caseload", "abc", council.with_separators()))
    with pytest.raises(RandomisationError) as err:
        _run(frame, method="constrained", covariates=("region", "imd_score", "caseload"))
    (p,) = _problem(err, "randomise.input.mixed_column")
    assert p.path == "clusters row 7 column caseload" and "'abc'" in p.message


def test_inferred_types_are_reported(tmp_path: Path) -> None:
    a = _run(
        _read(tmp_path, council.rows()),
        method="constrained",
        covariates=("region", "imd_score", "caseload"),
    )
    assert a.reading is not None and not a.reading.interpreted
    assert a.reading.types == {"region": "category", "imd_score": "number", "caseload": "number"}
    assert "region category (inferred)" in a.summary()
    assert "caseload number (inferred)" in a.summary()


def test_declared_categorical_numeric_codes_are_levels(tmp_path: Path) -> None:
    table = council.rows()
    for r in table:
        r["region"] = str(council.REGIONS.index(r["region"]) + 1)
    frame = _read(tmp_path, table)
    a = _run(
        frame,
        method="constrained",
        covariates=("region", "imd_score"),
        declared_types={"region": "categorical"},
    )
    assert a.coding is not None and a.coding.reference == {"region": "1"}
    assert a.reading is not None and a.reading.types["region"] == "category"


# ----------------------------------------------------------------------------- item 2: strata


def test_stratum_spellings_matched_to_declared_levels(tmp_path: Path) -> None:
    frame = _read(tmp_path, council.with_region_spellings())
    a = _run(frame, method="stratified", strata=("region",), **DECLARED)
    assert a.stratum is not None and sorted(set(a.stratum)) == list(council.REGIONS)
    f = a.to_frame()
    assert (f.groupby(["stratum", "arm"]).size() == 2).all()  # never a 3:1 split
    assert a.reading is not None
    assert a.reading.notes == (
        "region row 2: 'north' read as level 'North' (blanks and case ignored)",
        "region row 3: 'NORTH ' read as level 'North' (blanks and case ignored)",
    )


def test_level_not_declared_is_refused_naming_row_column_value_and_levels(tmp_path: Path) -> None:
    frame = _read(tmp_path, council.with_cell(5, "region", "Mid lands"))
    with pytest.raises(RandomisationError) as err:
        _run(frame, method="stratified", strata=("region",), **DECLARED)
    (p,) = _problem(err, "randomise.input.invalid_level")
    assert p.path == "clusters row 5 column region"
    assert "'Mid lands'" in p.message and "London, Midlands, North, South" in p.message


def test_spellings_without_declared_levels_are_refused_not_three_strata(tmp_path: Path) -> None:
    frame = _read(tmp_path, council.with_region_spellings())
    with pytest.raises(RandomisationError) as err:
        _run(frame, method="stratified", strata=("region",))
    (p,) = _problem(err, "randomise.input.inconsistent_levels")
    assert p.path == "clusters column region"
    assert "'NORTH ', 'North', 'north'" in p.message and "row 1, row 2, row 3, row 4" in p.message


# ----------------------------------------------------------------------------- item 3: validity


def test_two_la_stratum_at_cutoff_one_is_valid(tmp_path: Path) -> None:
    table = council.rows()
    table[0]["region"] = table[1]["region"] = "East"  # two strata of two LAs: East, North
    frame = _read(tmp_path, table)
    a = _run(
        frame,
        method="constrained",
        strata=("region",),
        covariates=("imd_score", "caseload"),
        cutoff=1.0,
    )
    assert a.validity is not None and a.validity.valid
    assert ("LA01", "LA02") in a.validity.by_design
    assert a.validity.together[0][1] == 0.0
    assert a.space is not None and a.space.n_kept == a.space.n_possible == 2 * 2 * 6 * 6 * 6


def test_real_over_constraint_within_strata_is_still_refused(tmp_path: Path) -> None:
    frame = _read(tmp_path, council.rows())
    with pytest.raises(RandomisationError) as err:
        _run(
            frame,
            method="constrained",
            strata=("region",),
            covariates=("imd_score", "caseload"),
            keep=1,
            cutoff=None,
        )
    assert "randomise.validity.never_together" in err.value.codes


def test_design_shares_match_the_enumerated_space() -> None:
    from trialkit.randomise import _space

    groups = [np.array([0, 1]), np.array([2, 3, 4]), np.array([5, 6, 7])]
    settings = RandomisationSettings(method="constrained", covariates=("x",), strata=("s",))
    from trialkit.randomise.core import stratified_design

    _, combos, _ = stratified_design(groups, settings)
    codes = _space.enumerate_stratified(groups, combos)
    np.testing.assert_allclose(
        _space.design_together(groups, combos, 8), _space.pair_together(codes, 8), atol=1e-12
    )


# ----------------------------------------------------------------------------- item 4: odd strata


def test_odd_strata_keep_the_trial_ratio_over_many_seeds(tmp_path: Path) -> None:
    table = council.rows()
    # strata of 5, 5, 3 and 3 LAs: every stratum has one left-over LA
    sizes = {"North": 5, "Midlands": 5, "South": 3, "London": 3}
    labels = [r for r, k in sizes.items() for _ in range(k)]
    for r, lab in zip(table, labels, strict=True):
        r["region"] = lab
    frame = _read(tmp_path, table)
    seen = set()
    for seed in range(200):
        a = _run(frame, method="stratified", strata=("region",), seed=seed)
        assert a.arm_sizes() == {"intervention": 8, "control": 8}
        f = a.to_frame()
        for lab, g in f.groupby("stratum"):
            counts = g["arm"].value_counts()
            assert abs(counts.get("intervention", 0) - counts.get("control", 0)) == 1, lab
        seen.add(a.arms)
    assert len(seen) > 150  # still random
    # every left-over pattern occurs: each stratum's extra LA goes to either arm
    extra = set()
    for seed in range(40):
        f = _run(frame, method="stratified", strata=("region",), seed=seed).to_frame()
        treated = f[f["arm"] == "intervention"].groupby("stratum").size()
        extra.add(tuple(int(treated[lab] > sizes[lab] // 2) for lab in sorted(sizes)))
    assert len(extra) == math.comb(4, 2)


def test_even_strata_allocation_is_unchanged(tmp_path: Path) -> None:
    frame = _read(tmp_path, council.rows())
    a = _run(frame, method="stratified", strata=("region",), seed=5)
    rng = np.random.Generator(np.random.PCG64(5))
    expected = {}
    for lab in sorted(council.REGIONS):
        ids = sorted(r["la_id"] for r in council.rows() if r["region"] == lab)
        perm = rng.permutation(4)
        for k, unit in enumerate(perm):
            expected[ids[int(unit)]] = "intervention" if k < 2 else "control"
    assert dict(zip(a.clusters, a.arms, strict=True)) == expected


def test_odd_total_gives_the_nearest_split(tmp_path: Path) -> None:
    table = council.rows()[:15]
    frame = _read(tmp_path, table)
    sizes = {
        tuple(
            sorted(
                _run(frame, method="stratified", strata=("region",), seed=s).arm_sizes().values()
            )
        )
        for s in range(30)
    }
    assert sizes == {(7, 8)}


# ----------------------------------------------------------------------------- item 5: n_clusters


def test_n_clusters_is_compared_with_the_file(tmp_path: Path) -> None:
    frame = _read(tmp_path, council.rows()[:15])
    with pytest.raises(RandomisationError) as err:
        _run(frame, method="simple", n_clusters=16)
    (p,) = _problem(err, "randomise.input.n_clusters")
    assert "16" in p.message and "got 15" in p.message
    assert _run(_read(tmp_path, council.rows(), "all.csv"), method="simple", n_clusters=16)


# ----------------------------------------------------------------------------- item 12: rows


def test_row_numbers_count_data_rows_as_validate(tmp_path: Path) -> None:
    table = council.rows()
    table[2]["la_id"] = "LA01"  # third data row repeats the first
    with pytest.raises(RandomisationError) as err:
        _run(_read(tmp_path, table), method="simple")
    paths = {p.path for p in _problem(err, "randomise.input.duplicate_id")}
    assert paths == {"clusters row 1 column la_id", "clusters row 3 column la_id"}


def test_settings_without_declarations_keep_their_dictionary() -> None:
    s = RandomisationSettings(method="simple")
    assert not {"declared_types", "levels", "n_clusters"} & set(s.to_dict())
    d = RandomisationSettings(method="simple", n_clusters=16, **DECLARED).to_dict()
    assert d["levels"] == {"region": ["London", "Midlands", "North", "South"]}
    assert RandomisationSettings.from_mapping(d).to_dict() == d


def test_spreadsheet_csv_with_bom_and_padded_headers(tmp_path: Path) -> None:
    text = council.clean_csv().replace("la_id,la_name,region,", "la_id,la_name, region ,", 1)
    p = tmp_path / "excel.csv"
    p.write_bytes("\ufeff".encode() + text.encode())
    a = _run(read_clusters(p), method="stratified", strata=("region",))
    assert a.clusters[0] == "LA01" and a.stratum is not None and len(set(a.stratum)) == 4


@pytest.mark.parametrize(
    "kw",
    [
        {"method": "stratified", "strata": ("region",)},
        {"method": "constrained", "covariates": ("region", "imd_score")},
    ],
)
def test_missing_category_cell_is_one_problem(tmp_path: Path, kw) -> None:
    frame = _read(tmp_path, council.with_cell(6, "region", ""))
    with pytest.raises(RandomisationError) as err:
        _run(frame, **kw)
    assert list(err.value.codes) == ["randomise.input.missing_value"]
    assert err.value.problems[0].path == "clusters row 6 column region"
