"""One test per check: a protocol breaking it yields that code at that path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trialkit.errors import CheckError
from trialkit.protocol import check_protocol, load_protocol, protocol_from_mapping

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"
BROKEN = Path(__file__).with_name("broken-protocol.toml")

Doc = dict[str, Any]


def _node(doc: Doc, node_id: str) -> Doc:
    return next(n for n in doc["logic_model"]["nodes"] if n["id"] == node_id)


def _index(doc: Doc, node_id: str) -> int:
    return next(i for i, n in enumerate(doc["logic_model"]["nodes"]) if n["id"] == node_id)


def test_bundled_passes_protocol_stage() -> None:
    report = check_protocol(load_protocol(BUNDLED), "protocol")
    assert report.ok, report.summary()
    assert report.issues == ()


def test_report_stage_requires_actual_and_modifications() -> None:
    report = check_protocol(load_protocol(BUNDLED), "report")
    assert not report.ok
    got = {(p.code, p.path) for p in report.issues}
    for arm in ("intervention", "control"):
        for item in ("modifications", "how_well_actual"):
            assert ("protocol.tidier.missing_item", f"arms.{arm}.tidier.{item}") in got


def test_broken_sibling_reports_every_problem() -> None:
    report = check_protocol(load_protocol(BROKEN))
    got = {(p.code, p.path) for p in report.issues}
    assert ("protocol.tidier.placeholder", "arms.intervention.tidier.why") in got
    assert ("protocol.tidier.placeholder", "arms.control.tidier.how") in got
    assert ("protocol.logic_model.cycle", "logic_model.nodes") in got
    assert ("protocol.analysis.unknown_covariate", "analysis.covariates[1]") in got
    assert ("protocol.logic_model.outcome_not_in_model", "outcomes[3]") in got
    with pytest.raises(CheckError):
        report.raise_for_errors()


def _set(path: list[Any], value: Any) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete_tidier(doc: Doc) -> None:
    del doc["arms"]["control"]["tidier"]["where"]


def _cycle(doc: Doc) -> None:
    _node(doc, "out.systemic_practice")["leads_to"].append("act.genograms")


def _dead_resource(doc: Doc) -> None:
    doc["logic_model"]["nodes"].insert(
        0, {"id": "res.money", "kind": "resource", "label": "Funding", "leads_to": []}
    )


def _no_indicator(doc: Doc) -> None:
    _node(doc, "act.genograms")["indicators"] = []


def _no_target(doc: Doc) -> None:
    del _node(doc, "act.genograms")["indicators"][0]["target"]


def _target_range(doc: Doc) -> None:
    _node(doc, "act.genograms")["indicators"][0]["target"] = 1.5


def _unmeasured(doc: Doc) -> None:
    _node(doc, "oc.retention")["measured_by"] = []


def _not_in_model(doc: Doc) -> None:
    _node(doc, "oc.retention")["measured_by"] = []


def _not_delivered(doc: Doc) -> None:
    procs = doc["arms"]["intervention"]["tidier"]["what_procedures"]["procedures"]
    for p in procs:
        p["delivers"] = [a for a in p["delivers"] if a != "act.genograms"]


def _unknown_leads_to(doc: Doc) -> None:
    _node(doc, "res.tools")["leads_to"].append("act.genogram")


def _bad_quantity_range(doc: Doc) -> None:
    q = doc["arms"]["intervention"]["tidier"]["who_provided"]["quantities"][0]
    q["minimum"], q["maximum"] = 3.0, 1.0


def _fte(doc: Doc) -> None:
    doc["arms"]["intervention"]["tidier"]["who_provided"]["quantities"][0]["value"] = 30.0
    doc["arms"]["intervention"]["tidier"]["who_provided"]["quantities"][0]["maximum"] = 40.0


def _outside(doc: Doc) -> None:
    doc["arms"]["intervention"]["tidier"]["who_provided"]["quantities"][0]["value"] = 5.0


def _negative(doc: Doc) -> None:
    doc["arms"]["intervention"]["tidier"]["when_and_how_much"]["quantities"][0]["value"] = -5


def _timepoint(doc: Doc) -> None:
    doc["outcomes"][0]["timepoints"] = ["baseline", "six_months", "end"]


def _primary_tp(doc: Doc) -> None:
    doc["outcomes"][1]["primary_timepoint"] = "mid"


def _no_primary(doc: Doc) -> None:
    for o in doc["outcomes"]:
        o["role"] = "secondary"


def _custom_range(doc: Doc) -> None:
    doc["outcomes"][0]["instrument"] = "custom"


def _binary_type(doc: Doc) -> None:
    doc["outcomes"][3]["type"] = "continuous"


def _no_control(doc: Doc) -> None:
    doc["arms"]["control"]["role"] = "intervention"


def _rand_cov(doc: Doc) -> None:
    doc["randomisation"]["covariates"] = ["region", "deprivation"]


def _rand_ratio(doc: Doc) -> None:
    doc["randomisation"]["ratio"] = [2, 1]


def _dates(doc: Doc) -> None:
    doc["trial"]["end"] = doc["trial"]["start"]


def _bands(doc: Doc) -> None:
    doc["fidelity"]["bands"] = [0.9, 0.5]


def _weight(doc: Doc) -> None:
    doc["fidelity"]["component_weights"]["coaching"] = 1.0


def _proc_unknown(doc: Doc) -> None:
    doc["arms"]["intervention"]["tidier"]["what_procedures"]["procedures"][0]["delivers"].append(
        "act.coaching"
    )


CASES: list[tuple[str, Callable[[Doc], None], str, Any]] = [
    ("missing item", _delete_tidier, "protocol.tidier.missing_item", "arms.control.tidier.where"),
    (
        "empty item",
        _set(["arms", "intervention", "tidier", "how"], ""),
        "protocol.tidier.missing_item",
        "arms.intervention.tidier.how",
    ),
    (
        "placeholder TBC",
        _set(["arms", "control", "tidier", "why"], "TBC"),
        "protocol.tidier.placeholder",
        "arms.control.tidier.why",
    ),
    (
        "few words",
        _set(["arms", "control", "tidier", "where"], "In LAs"),
        "protocol.tidier.placeholder",
        "arms.control.tidier.where",
    ),
    ("cycle", _cycle, "protocol.logic_model.cycle", "logic_model.nodes"),
    (
        "resource dead end",
        _dead_resource,
        "protocol.logic_model.resource_dead_end",
        "logic_model.nodes[0].leads_to",
    ),
    (
        "missing indicator",
        _no_indicator,
        "protocol.logic_model.missing_indicator",
        lambda d: f"logic_model.nodes[{_index(d, 'act.genograms')}].indicators",
    ),
    (
        "missing target",
        _no_target,
        "protocol.indicator.missing_target",
        lambda d: f"logic_model.nodes[{_index(d, 'act.genograms')}].indicators[0].target",
    ),
    (
        "target range",
        _target_range,
        "protocol.indicator.target_range",
        lambda d: f"logic_model.nodes[{_index(d, 'act.genograms')}].indicators[0].target",
    ),
    (
        "unmeasured outcome",
        _unmeasured,
        "protocol.logic_model.unmeasured_outcome",
        lambda d: f"logic_model.nodes[{_index(d, 'oc.retention')}].measured_by",
    ),
    (
        "outcome not in model",
        _not_in_model,
        "protocol.logic_model.outcome_not_in_model",
        "outcomes[3]",
    ),
    (
        "activity not delivered",
        _not_delivered,
        "protocol.logic_model.activity_not_delivered",
        lambda d: f"logic_model.nodes[{_index(d, 'act.genograms')}]",
    ),
    (
        "unknown node",
        _unknown_leads_to,
        "protocol.logic_model.unknown_node",
        lambda d: f"logic_model.nodes[{_index(d, 'res.tools')}].leads_to",
    ),
    (
        "procedure unknown activity",
        _proc_unknown,
        "protocol.tidier.unknown_activity",
        "arms.intervention.tidier.what_procedures.procedures[0].delivers",
    ),
    (
        "quantity range",
        _bad_quantity_range,
        "protocol.quantity.range",
        "arms.intervention.tidier.who_provided.quantities[clinician_fte]",
    ),
    (
        "quantity outside",
        _outside,
        "protocol.quantity.outside_range",
        "arms.intervention.tidier.who_provided.quantities[clinician_fte].value",
    ),
    (
        "fte",
        _fte,
        "protocol.quantity.fte",
        "arms.intervention.tidier.who_provided.quantities[clinician_fte].value",
    ),
    (
        "negative",
        _negative,
        "protocol.quantity.negative",
        "arms.intervention.tidier.when_and_how_much.quantities[cpd_days].value",
    ),
    (
        "unknown timepoint",
        _timepoint,
        "protocol.outcome.unknown_timepoint",
        "outcomes[0].timepoints",
    ),
    (
        "primary timepoint",
        _primary_tp,
        "protocol.outcome.timepoint",
        "outcomes[1].primary_timepoint",
    ),
    ("no primary", _no_primary, "protocol.outcome.no_primary", "outcomes"),
    ("custom range", _custom_range, "protocol.outcome.custom_range", "outcomes[0].range"),
    ("binary type", _binary_type, "protocol.outcome.type", "outcomes[3].type"),
    ("no control arm", _no_control, "protocol.arms.no_control", "arms"),
    (
        "randomisation covariate",
        _rand_cov,
        "protocol.randomisation.unknown_covariate",
        "randomisation.covariates[1]",
    ),
    ("randomisation ratio", _rand_ratio, "protocol.randomisation.ratio", "randomisation.ratio"),
    (
        "analysis covariate",
        _set(["analysis", "covariates"], ["region", "imd"]),
        "protocol.analysis.unknown_covariate",
        "analysis.covariates[1]",
    ),
    ("dates", _dates, "protocol.trial.dates", "trial.end"),
    ("bands", _bands, "protocol.fidelity.bands", "fidelity.bands"),
    (
        "weight component",
        _weight,
        "protocol.fidelity.unknown_component",
        "fidelity.component_weights.coaching",
    ),
]


@pytest.mark.parametrize(("name", "mutate", "code", "path"), CASES, ids=[c[0] for c in CASES])
def test_check_code_and_path(doc: Doc, name: str, mutate, code: str, path) -> None:
    mutate(doc)
    expected_path = path(doc) if callable(path) else path
    report = check_protocol(protocol_from_mapping(doc))
    got = [(p.code, p.path) for p in report.issues]
    assert (code, expected_path) in got, got
    problem = next(p for p in report.issues if p.code == code)
    assert problem.message and problem.hint


def test_warnings_do_not_fail(doc: Doc) -> None:
    doc["trial"]["registration"] = ""
    report = check_protocol(protocol_from_mapping(doc))
    assert report.ok
    assert report.codes == ("protocol.trial.registration",)


def test_unknown_stage() -> None:
    with pytest.raises(CheckError) as exc:
        check_protocol(load_protocol(BUNDLED), "final")  # type: ignore[arg-type]
    assert exc.value.codes == ("protocol.check.stage",)


def test_report_stage_passes_when_completed(doc: Doc) -> None:
    for arm in ("intervention", "control"):
        doc["arms"][arm]["tidier"]["modifications"] = "No modifications were made during the pilot."
        doc["arms"][arm]["tidier"]["how_well_actual"] = (
            "Delivered as planned in every LA, see fidelity."
        )
    assert check_protocol(protocol_from_mapping(doc), "report").ok
