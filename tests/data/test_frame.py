"""analysis_frame: columns, arms, accounting of every candidate."""

from __future__ import annotations

import pytest

from trialkit.data import analysis_frame, validate
from trialkit.errors import DataError


@pytest.fixture(scope="module")
def td(protocol, sim_dir):
    return validate(protocol, sim_dir, sim_dir)


@pytest.mark.parametrize(
    "oc",
    [
        "family_functioning",
        "keyworker_wellbeing",
        "keyworker_retention",
        "family_ors",
        "child_mental_health",
        "keyworker_burnout",
        "parent_wellbeing",
    ],
)
def test_every_candidate_accounted_for(td, protocol, oc):
    af = analysis_frame(td, protocol, oc)
    assert len(af.frame) + len(af.exclusions) == af.n_candidates
    cols = {
        "la_id",
        "keyworker_id",
        "arm",
        "treated",
        "y",
        "baseline",
        "region",
        "imd_score",
        "families_referred_2023",
        "years_experience",
    }
    assert cols <= set(af.frame.columns)
    assert af.frame["y"].notna().all()
    assert set(af.frame["treated"]) <= {0, 1}
    assert ((af.frame["arm"] == "intervention") == (af.frame["treated"] == 1)).all()
    assert af.summary().startswith(oc)


def test_family_frame_has_family_id_and_baseline(td, protocol):
    af = analysis_frame(td, protocol, "family_functioning")
    assert "family_id" in af.frame.columns
    assert af.frame["baseline"].notna().all()  # adjust_for_baseline -> required
    assert af.frame["y"].between(15, 75).all()
    reasons = set(af.exclusions["reason"])
    assert "not consented" in reasons


def test_retention_is_binary(td, protocol, synthetic):
    af = analysis_frame(td, protocol, "keyworker_retention")
    assert set(af.frame["y"]) <= {0.0, 1.0}
    assert len(af.frame) == synthetic.truth["n_keyworkers"]
    assert "family_id" not in af.frame.columns


def test_errors(td, protocol):
    with pytest.raises(DataError) as e:
        analysis_frame(td, protocol, "nope")
    assert e.value.codes == ("data.unknown_outcome",)
    with pytest.raises(DataError) as e:
        analysis_frame(td, protocol, "keyworker_wellbeing", timepoint="mid")
    assert e.value.codes == ("data.unknown_timepoint",)


def test_mid_timepoint(td, protocol):
    af = analysis_frame(td, protocol, "family_functioning", timepoint="mid")
    assert af.timepoint == "mid" and len(af.frame) > 0


def test_no_allocation(protocol, sim_dir):
    td = validate(protocol, sim_dir)
    assert "allocation.missing" in td.codes
    with pytest.raises(DataError) as e:
        analysis_frame(td, protocol, "family_functioning")
    assert e.value.codes == ("data.no_allocation",)
