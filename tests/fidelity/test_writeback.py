"""TIDieR write-back into a copy of the protocol (comments kept, input untouched)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from trialkit.errors import FidelityError
from trialkit.fidelity import assess_fidelity, tidier_texts, write_back
from trialkit.fidelity._example import example_tables
from trialkit.fidelity.writeback import MARKER, edit_tidier_text


@pytest.fixture(scope="module")
def texts(pilot):  # type: ignore[no-untyped-def]
    t = example_tables(levels=(1.0, 0.6, 0.9), n_control=3)
    r = assess_fidelity(pilot, t["delivery"], t["keyworkers"], t["families"], t["allocation"])
    return tidier_texts(r, pilot)


def test_texts_for_both_arms(texts) -> None:  # type: ignore[no-untyped-def]
    assert set(texts) == {"intervention", "control"}
    for arm in texts.values():
        for item in ("how_well_actual", "modifications"):
            assert arm[item].startswith(MARKER)
            assert len(arm[item].split()) > 15
    assert "LA04" in texts["control"]["how_well_actual"]  # the contaminated control LA
    assert "not documented adaptations" in texts["intervention"]["modifications"]


def test_write_back_copy_parses_and_keeps_comments(pilot_path: Path, texts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from trialkit.protocol.load import load_protocol

    before = pilot_path.read_bytes()
    dst = write_back(pilot_path, tmp_path / pilot_path.name, texts)
    assert pilot_path.read_bytes() == before  # input never modified
    p = load_protocol(dst)
    for arm in ("intervention", "control"):
        tid = p.arms[arm].tidier
        assert tid.how_well_actual.text == texts[arm]["how_well_actual"]
        assert tid.modifications.text == texts[arm]["modifications"]
    new = dst.read_text(encoding="utf-8")
    old = pilot_path.read_text(encoding="utf-8")
    assert [ln for ln in new.splitlines() if ln.startswith("#")] == [
        ln for ln in old.splitlines() if ln.startswith("#")
    ]
    assert len(new.splitlines()) == len(old.splitlines())  # edited in place, line for line


def test_write_back_refuses_same_file(pilot_path: Path, texts) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FidelityError) as e:
        write_back(pilot_path, pilot_path, texts)
    assert e.value.codes == ("fidelity.writeback.same_file",)


def test_edit_variants() -> None:
    base = (
        '[arms.a]\nlabel = "A"\n\n[arms.a.tidier]\nwhy = "x" # why\n'
        'how_well_actual = """\nold\ntext\n"""\n\n# a comment\n[arms.a.tidier.modifications]\n'
        'text = ""\n\n[arms.b]\nlabel = "B"\n[arms.b.tidier]\nwhy = "y"\n'
    )
    out = edit_tidier_text(base, "a", "how_well_actual", f"{MARKER}: new")
    out = edit_tidier_text(out, "a", "modifications", f"{MARKER}: mods")
    out = edit_tidier_text(out, "b", "how_well_actual", f'{MARKER}: b "quoted"')
    doc = tomllib.loads(out)
    # hand-written text kept, generated text appended
    assert doc["arms"]["a"]["tidier"]["how_well_actual"] == f"old\ntext\n\n{MARKER}: new"
    assert doc["arms"]["a"]["tidier"]["modifications"]["text"] == f"{MARKER}: mods"
    assert doc["arms"]["b"]["tidier"]["how_well_actual"] == f'{MARKER}: b "quoted"'
    assert "# a comment" in out and "# why" in out
    # a second run replaces generated text rather than appending again
    again = edit_tidier_text(out, "b", "how_well_actual", f"{MARKER}: b2")
    assert tomllib.loads(again)["arms"]["b"]["tidier"]["how_well_actual"] == f"{MARKER}: b2"


def test_completed_copy_passes_report_stage_check(pilot_path: Path, texts, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import trialkit.protocol.checks as checks
    from trialkit.protocol.load import load_protocol

    original = load_protocol(pilot_path)
    before = checks.check_protocol(original, stage="report")
    assert {"arms.intervention.tidier.how_well_actual", "arms.control.tidier.modifications"} & {
        p.path for p in before.errors()
    }  # the bundled protocol is incomplete for the report stage ...
    done = load_protocol(write_back(pilot_path, tmp_path / pilot_path.name, texts))
    after = checks.check_protocol(done, stage="report")
    assert after.ok, after.summary()  # ... and complete once fidelity has filled items 10 and 12
