"""Settings records: pydantic validation errors become one stage error with a problem per field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trialkit.errors import RandomisationError, ReportError
from trialkit.randomise.settings import RandomisationSettings
from trialkit.report.disclosure import DisclosureSettings


def test_every_bad_field_is_one_problem_with_path_and_code():
    with pytest.raises(RandomisationError) as err:
        RandomisationSettings(method="coin", ratio=(1, 0), cutoff=2)
    assert err.value.codes == (
        "randomise.settings.method",
        "randomise.settings.ratio",
        "randomise.settings.cutoff",
    )
    paths = [p.path for p in err.value.problems]
    assert paths == ["randomisation.method", "randomisation.ratio", "randomisation.cutoff"]
    first = err.value.problems[0].message
    assert first == "`method` must be one of simple, stratified, matched, constrained; got 'coin'."


def test_type_errors_read_as_rules():
    with pytest.raises(RandomisationError) as err:
        RandomisationSettings(method="simple", samples="many")
    (p,) = err.value.problems
    assert p.code == "randomise.settings.samples"
    assert p.message.startswith("`samples` must be a valid integer")
    assert p.message.endswith("; got 'many'.")


def test_unknown_keyword_is_refused_with_the_known_settings():
    with pytest.raises(RandomisationError) as err:
        RandomisationSettings(method="simple", seed=1)
    (p,) = err.value.problems
    assert p.code == "randomise.settings.unknown" and "known settings: arms" in p.hint


def test_cross_field_rules_and_frozen():
    with pytest.raises(RandomisationError) as err:
        RandomisationSettings(method="constrained")
    assert err.value.codes == ("randomise.settings.covariates",)
    s = RandomisationSettings(method="simple")
    assert s.ratio == (1, 1)
    with pytest.raises(ValidationError):
        s.method = "matched"  # type: ignore[misc]


def test_numbers_are_recorded_as_given():
    s = RandomisationSettings(method="constrained", covariates=("a",), cutoff=1, weights={"a": 2})
    d = s.to_dict()
    assert d["cutoff"] == 1 and isinstance(d["cutoff"], int)
    # the protocol's declarations (issue 15) are recorded only when given
    optional = ("declared_types", "levels", "n_clusters")
    assert list(d) == [f for f in RandomisationSettings.model_fields if f not in optional]
    full = RandomisationSettings(method="simple", n_clusters=4, levels={"r": ("a", "b")}).to_dict()
    assert list(full) == [f for f in RandomisationSettings.model_fields if f != "declared_types"]


def test_disclosure_settings_raise_report_error():
    with pytest.raises(ReportError) as err:
        DisclosureSettings(mode="lenient", min_count=0)
    assert err.value.codes == ("report.disclosure.mode", "report.disclosure.min_count")
    assert err.value.problems[1].path == "analysis.disclosure.min_count"
    assert DisclosureSettings.from_mapping({"mode": "strict", "other": 1}).threshold == 10
