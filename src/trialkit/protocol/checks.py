"""Stage-aware completeness and consistency checks of a protocol.

:func:`check_protocol` gathers every problem at once.  Each is a
:class:`~trialkit.errors.Problem` with a dotted path into the protocol, a stable
code, a message and a hint.  At ``stage="protocol"`` the TIDieR items
``modifications`` and ``how_well_actual`` may be empty (nothing has happened
yet); at ``stage="report"`` every item of every arm is required.

Codes
-----
``protocol.tidier.missing_item``, ``protocol.tidier.placeholder``,
``protocol.arms.*``, ``protocol.logic_model.*``, ``protocol.quantity.*``,
``protocol.indicator.*``, ``protocol.outcome.*``, ``protocol.analysis.*``,
``protocol.randomisation.*``, ``protocol.trial.*``, ``protocol.label.placeholder``,
``protocol.scoring.*``, ``protocol.progression.*`` and the codes of the checks registered in
:mod:`trialkit.protocol.hooks` (``fidelity.indicator.*``, ``protocol.outcome.unknown_score``,
``feasibility.progression.*``) — see
docs/protocol-format.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from trialkit.errors import CheckError, Problem
from trialkit.protocol.hooks import registered_checks
from trialkit.protocol.model import (
    TIDIER_ITEMS,
    Protocol,
    Quantity,
    Unit,
)

Stage = Literal["protocol", "report"]
STAGES: tuple[str, ...] = ("protocol", "report")
REPORT_ONLY_ITEMS = ("modifications", "how_well_actual")
PLACEHOLDER = re.compile(
    r"^\s*(tbc|tbd|todo|to do|to be (confirmed|decided|determined|added|completed)|n/?a|none|"
    r"xxx+|\?+|-+|\.\.\.|lorem ipsum.*|placeholder|fill (me )?in|pending)\s*[.!]?\s*$",
    re.IGNORECASE,
)
MIN_WORDS = 4
MAX_FTE = 10.0
SPECIAL_COVARIATES = {"baseline"}


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckReport:
    """Result of :func:`check_protocol`.

    Attributes
    ----------
    stage : {"protocol", "report"}
    issues : tuple of Problem
        Errors and warnings in the order found.
    """

    stage: str
    issues: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        """True when no issue is an error (warnings allowed)."""
        return not any(p.severity == "error" for p in self.issues)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(p.code for p in self.issues)

    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.issues if p.severity == "error")

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "stage": self.stage, "issues": [p.to_dict() for p in self.issues]}

    def summary(self) -> str:
        n_err = len(self.errors())
        n_warn = len(self.issues) - n_err
        head = f"protocol check ({self.stage} stage): {n_err} error(s), {n_warn} warning(s)"
        return "\n".join([head, *(str(p) for p in self.issues)])

    def raise_for_errors(self) -> None:
        """Raise :class:`~trialkit.errors.CheckError` when any issue is an error."""
        if not self.ok:
            raise CheckError(f"protocol fails the {self.stage}-stage check", self.issues)


def check_protocol(protocol: Protocol, stage: Stage = "protocol") -> CheckReport:
    """Check ``protocol`` for completeness and consistency at ``stage``.

    Parameters
    ----------
    protocol : Protocol
        A loaded protocol (see :func:`trialkit.protocol.load_protocol`).
    stage : {"protocol", "report"}
        ``"report"`` additionally requires TIDieR items 10 (modifications) and
        12 (how well, actual) for every arm.

    Returns
    -------
    CheckReport

    Notes
    -----
    Besides the checks of this module, every check registered by a stage package
    (:mod:`trialkit.protocol.hooks`) runs: importing ``trialkit.fidelity`` adds the
    indicator checks against the metric registry, importing ``trialkit.data`` the
    instrument and score-name checks (``trialkit check`` imports both).

    The TIDieR items follow Hoffmann et al. (BMJ 2014;348:g1687); the logic-model
    checks follow the evaluator's brief to align the logic model with the planned
    activities and test it in the pilot (every resource must lead, through
    activities and outputs, to an outcome that a declared measure tests).
    """
    if stage not in STAGES:
        raise CheckError.from_problem(
            path="stage",
            code="protocol.check.stage",
            message=f"stage must be one of {', '.join(STAGES)}; got {stage!r}",
            hint="use --stage protocol before the trial and --stage report afterwards",
        )
    out: list[Problem] = []
    out += _check_trial(protocol)
    out += _check_arms(protocol, stage)
    out += _check_logic_model(protocol)
    out += _check_outcomes(protocol)
    out += _check_plans(protocol)
    out += _check_scoring(protocol)
    out += _check_labels(protocol, stage)
    out += _check_progression(protocol)
    for check in registered_checks().values():
        out += check(protocol, stage)
    return CheckReport(stage=stage, issues=tuple(out))


# --------------------------------------------------------------------------- helpers
def _p(path: str, code: str, message: str, hint: str, severity: str = "error") -> Problem:
    return Problem(path=path, code=code, message=message, hint=hint, severity=severity)  # type: ignore[arg-type]


def is_placeholder(text: str) -> bool:
    """True for text such as 'TBC', 'TODO', '...' or fewer than four words."""
    stripped = text.strip()
    if not stripped:
        return False
    if PLACEHOLDER.match(stripped):
        return True
    if re.search(r"\b(TBC|TODO|TBD)\b", stripped):
        return True
    return len(re.findall(r"\w+", stripped)) < MIN_WORDS


LABEL_PLACEHOLDER = re.compile(r"\b(tbc|tbd|todo|xxx+|lorem ipsum)\b", re.IGNORECASE)


def is_placeholder_label(text: str) -> bool:
    """True for an empty title or label, or one holding 'TBC', 'TODO', 'XXX' and the like."""
    stripped = text.strip()
    return not stripped or bool(PLACEHOLDER.match(stripped) or LABEL_PLACEHOLDER.search(stripped))


def _labels(p: Protocol) -> Iterable[tuple[str, str]]:
    yield "trial.title", p.trial.title
    for arm_id, arm in p.arms.items():
        yield f"arms.{arm_id}.label", arm.label
        for key, q in arm.tidier.quantities():
            yield f"arms.{arm_id}.tidier.{key}.quantities[{q.id}].label", q.label
    for i, node in enumerate(p.logic_model.nodes):
        yield f"logic_model.nodes[{i}].label", node.label
        for j, ind in enumerate(node.indicators):
            yield f"logic_model.nodes[{i}].indicators[{j}].label", ind.label
    for k, o in enumerate(p.outcomes):
        yield f"outcomes[{k}].label", o.label
    for k, c in enumerate(p.progression):
        yield f"progression[{k}].label", c.label


def _check_labels(p: Protocol, stage: str) -> list[Problem]:
    """Titles and labels that are empty or placeholders: warnings now, errors at report stage."""
    severity = "error" if stage == "report" else "warning"
    return [
        _p(
            path,
            "protocol.label.placeholder",
            f"{path} must be a real title or label; got {text!r}",
            "write the label that the report will print"
            + ("" if stage == "report" else " (an error at report stage)"),
            severity,
        )
        for path, text in _labels(p)
        if is_placeholder_label(text)
    ]


def _check_scoring(p: Protocol) -> list[Problem]:
    """Custom instruments: items, range, reverse items, and the outcomes that use them."""
    out: list[Problem] = []
    ids = [i.id for i in p.scoring.instruments]
    for dup in _duplicates(ids):
        out.append(
            _p(
                "scoring.instruments",
                "protocol.scoring.duplicate_instrument",
                f"custom instrument ids must be unique; got '{dup}' more than once",
                "give every custom instrument its own id",
            )
        )
    for k, ins in enumerate(p.scoring.instruments):
        path = f"scoring.instruments[{k}]"
        if ins.range[0] >= ins.range[1]:
            out.append(
                _p(
                    f"{path}.range",
                    "protocol.scoring.range_order",
                    f"range must be [min, max] with min < max; got {list(ins.range)}",
                    "swap or correct the range",
                )
            )
        bad = [i for i in ins.reverse_items if not 1 <= i <= ins.n_items]
        if bad:
            out.append(
                _p(
                    f"{path}.reverse_items",
                    "protocol.scoring.reverse_item",
                    f"reverse_items must be item numbers from 1 to {ins.n_items}; got {bad[0]}",
                    "number items from 1 as in the item_1 … item_n columns",
                )
            )
        if ins.min_answered is not None and ins.min_answered > ins.n_items:
            out.append(
                _p(
                    f"{path}.min_answered",
                    "protocol.scoring.min_answered",
                    f"min_answered must be at most n_items ({ins.n_items}); got {ins.min_answered}",
                    "lower min_answered or correct n_items",
                )
            )
    for k, o in enumerate(p.outcomes):
        if o.instrument != "custom":
            continue
        declared = p.scoring.instrument(o.score)
        if declared is None:
            close = _close(o.score, ids)
            out.append(
                _p(
                    f"outcomes[{k}].score",
                    "protocol.outcome.unknown_custom_instrument",
                    f"score of custom outcome '{o.id}' must name a [[scoring.instruments]] id"
                    f"{' (' + ', '.join(ids) + ')' if ids else ''}; got {o.score!r}",
                    f"did you mean '{close}'?"
                    if close
                    else "declare the instrument under [[scoring.instruments]] (items, range, "
                    "reverse_items, method) and set score to its id",
                )
            )
        elif o.range is not None:
            lo, hi = declared.range
            n = declared.n_items if declared.method == "sum" else 1
            if o.range[0] < lo * n or o.range[1] > hi * n:
                out.append(
                    _p(
                        f"outcomes[{k}].range",
                        "protocol.outcome.custom_range_mismatch",
                        f"range of outcome '{o.id}' must lie within the scores instrument "
                        f"'{declared.id}' can give [{lo * n:g}, {hi * n:g}]; got {list(o.range)}",
                        "correct the outcome's range or the instrument's range and method",
                    )
                )
    return out


def _check_trial(p: Protocol) -> list[Problem]:
    out: list[Problem] = []
    t = p.trial
    if t.start and t.end and t.end <= t.start:
        out.append(
            _p(
                "trial.end",
                "protocol.trial.dates",
                f"trial.end must be after trial.start; got {t.start} to {t.end}",
                "fix the dates of the trial window",
            )
        )
    if len(set(t.levels)) != len(t.levels):
        out.append(
            _p(
                "trial.levels",
                "protocol.trial.levels",
                "trial.levels must not repeat a level",
                "list each level once, top first",
            )
        )
    if t.levels and t.randomised_level != t.levels[0]:
        out.append(
            _p(
                "trial.randomised_level",
                "protocol.trial.randomised_level",
                f"trial.randomised_level must be the top level '{t.levels[0]}'; got '{t.randomised_level}'",
                "cluster trials randomise at the top level; reorder trial.levels",
            )
        )
    if len(set(t.timepoints)) != len(t.timepoints):
        out.append(
            _p(
                "trial.timepoints",
                "protocol.trial.timepoints",
                "trial.timepoints must not repeat a timepoint",
                "list each timepoint once",
            )
        )
    per_round = sum(t.allocation_ratio)
    method = p.randomisation.method if p.randomisation is not None else None
    if t.n_clusters < per_round:
        out.append(
            _p(
                "trial.n_clusters",
                "protocol.trial.n_clusters",
                f"trial.n_clusters must be at least the sum of allocation_ratio ({per_round}); "
                f"got {t.n_clusters}",
                "every arm needs at least its share of clusters",
            )
        )
    elif t.n_clusters % per_round:
        matched = method == "matched"
        out.append(
            _p(
                "trial.n_clusters",
                "protocol.trial.n_clusters",
                f"trial.n_clusters must be a multiple of the allocation ratio's total "
                f"({per_round}) for the ratio {t.allocation_ratio}"
                f"{' with matched pairs' if matched else ''}; got {t.n_clusters}",
                "correct n_clusters, or accept that the arms will not follow the ratio exactly",
                "error" if matched else "warning",
            )
        )
    if not t.registration.strip():
        out.append(
            _p(
                "trial.registration",
                "protocol.trial.registration",
                "trial.registration is empty",
                "add the trial registry id (e.g. ISRCTN) once it exists",
                "warning",
            )
        )
    return out


def _check_arms(p: Protocol, stage: str) -> list[Problem]:
    out: list[Problem] = []
    roles = [a.role for a in p.arms.values()]
    if len(p.arms) < 2:
        out.append(
            _p(
                "arms",
                "protocol.arms.count",
                f"a trial must declare at least two arms; got {len(p.arms)}",
                "add [arms.control] describing business as usual",
            )
        )
    if "control" not in roles:
        out.append(
            _p(
                "arms",
                "protocol.arms.no_control",
                "no arm has role = 'control'",
                'describe business as usual as an arm with role = "control" and its own TIDieR items',
            )
        )
    if "intervention" not in roles:
        out.append(
            _p(
                "arms",
                "protocol.arms.no_intervention",
                "no arm has role = 'intervention'",
                'mark the arm that delivers the model with role = "intervention"',
            )
        )
    if len(p.trial.allocation_ratio) != len(p.arms):
        out.append(
            _p(
                "trial.allocation_ratio",
                "protocol.arms.ratio",
                f"trial.allocation_ratio must give one number per arm ({len(p.arms)}); got {p.trial.allocation_ratio}",
                "e.g. allocation_ratio = [1, 1] for two arms",
            )
        )
    for arm_id, arm in p.arms.items():
        base = f"arms.{arm_id}.tidier"
        for key in TIDIER_ITEMS:
            item = getattr(arm.tidier, key)
            path = f"{base}.{key}"
            text = item.text.strip()
            required = stage == "report" or key not in REPORT_ONLY_ITEMS
            if not text:
                if required:
                    extra = " at report stage" if key in REPORT_ONLY_ITEMS else ""
                    out.append(
                        _p(
                            path,
                            "protocol.tidier.missing_item",
                            f"TIDieR item '{key}' must be described{extra}; it is empty",
                            f"write {key.replace('_', ' ')} for the {arm_id} arm (TIDieR, Hoffmann et al. 2014)",
                        )
                    )
            elif is_placeholder(text):
                out.append(
                    _p(
                        path,
                        "protocol.tidier.placeholder",
                        f"TIDieR item '{key}' must be a real description; got {text[:40]!r}",
                        "replace the placeholder with at least a full sentence",
                    )
                )
        for key, q in arm.tidier.quantities():
            out += _check_quantity(f"{base}.{key}.quantities[{q.id}]", q)
        ids = [q.id for _, q in arm.tidier.quantities()]
        for dup in _duplicates(ids):
            out.append(
                _p(
                    f"{base}",
                    "protocol.quantity.duplicate_id",
                    f"quantity id '{dup}' is used more than once in arm '{arm_id}'",
                    "give every quantity its own id",
                )
            )
    return out


def _check_quantity(path: str, q: Quantity) -> list[Problem]:
    out: list[Problem] = []
    for name, value in (("value", q.value), ("minimum", q.minimum), ("maximum", q.maximum)):
        if value is not None and value < 0:
            out.append(
                _p(
                    f"{path}.{name}",
                    "protocol.quantity.negative",
                    f"{name} must be ≥ 0; got {value}",
                    "amounts of time, sessions, FTE or people cannot be negative",
                )
            )
    if q.minimum is not None and q.maximum is not None and q.minimum > q.maximum:
        out.append(
            _p(
                path,
                "protocol.quantity.range",
                f"minimum must be ≤ maximum; got {q.minimum} > {q.maximum}",
                "swap or correct the range",
            )
        )
    if (
        q.minimum is not None
        and q.value < q.minimum
        or q.maximum is not None
        and q.value > q.maximum
    ):
        out.append(
            _p(
                f"{path}.value",
                "protocol.quantity.outside_range",
                f"value must lie in [{q.minimum}, {q.maximum}]; got {q.value}",
                "the planned value should sit inside its stated range",
            )
        )
    if q.unit == Unit.percent and q.value > 100:
        out.append(
            _p(
                f"{path}.value",
                "protocol.quantity.percent",
                f"a percentage must be ≤ 100; got {q.value}",
                'use unit = "percent" with values 0–100',
            )
        )
    if q.unit == Unit.proportion and q.value > 1:
        out.append(
            _p(
                f"{path}.value",
                "protocol.quantity.proportion",
                f"a proportion must be ≤ 1; got {q.value}",
                'use unit = "percent" for values above 1',
            )
        )
    if q.unit == Unit.fte and (q.value > MAX_FTE or (q.maximum or 0) > MAX_FTE):
        out.append(
            _p(
                f"{path}.value",
                "protocol.quantity.fte",
                f"FTE must be ≤ {MAX_FTE} per unit; got {max(q.value, q.maximum or 0)}",
                "FTE counts full-time equivalents (1 = one full-time post)",
            )
        )
    if q.per is not None and q.per == q.unit.value:
        out.append(
            _p(
                f"{path}.per",
                "protocol.quantity.per",
                f"'per' must differ from the unit; got {q.unit.value} per {q.per}",
                'e.g. unit = "session", per = "month"',
            )
        )
    return out


def _check_logic_model(p: Protocol) -> list[Problem]:
    out: list[Problem] = []
    nodes = p.logic_model.nodes
    if not nodes:
        return [
            _p(
                "logic_model.nodes",
                "protocol.logic_model.empty",
                "the logic model has no nodes",
                "add [[logic_model.nodes]] for resources, activities, outputs and outcomes",
            )
        ]
    ids = [n.id for n in nodes]
    for dup in _duplicates(ids):
        out.append(
            _p(
                "logic_model.nodes",
                "protocol.logic_model.duplicate_id",
                f"node id '{dup}' is used more than once",
                "give every node a unique id",
            )
        )
    by_id = {n.id: n for n in nodes}
    order = {"resource": 0, "activity": 1, "output": 2, "outcome": 3}
    for i, n in enumerate(nodes):
        path = f"logic_model.nodes[{i}]"
        for target in n.leads_to:
            if target not in by_id:
                close = _close(target, ids)
                out.append(
                    _p(
                        f"{path}.leads_to",
                        "protocol.logic_model.unknown_node",
                        f"'{n.id}' leads to '{target}', which is not a node",
                        f"did you mean '{close}'?" if close else "add the node or fix the id",
                    )
                )
            elif order[by_id[target].kind] < order[n.kind]:
                out.append(
                    _p(
                        f"{path}.leads_to",
                        "protocol.logic_model.backward_edge",
                        f"'{n.id}' ({n.kind}) leads back to '{target}' ({by_id[target].kind})",
                        "links run resource → activity → output → outcome",
                        "warning",
                    )
                )
        if n.kind in ("activity", "output"):
            if not n.indicators:
                out.append(
                    _p(
                        f"{path}.indicators",
                        "protocol.logic_model.missing_indicator",
                        f"{n.kind} '{n.id}' must have at least one fidelity indicator",
                        "add [[logic_model.nodes.indicators]] saying what is measured, at which level and the target",
                    )
                )
            for j, ind in enumerate(n.indicators):
                ipath = f"{path}.indicators[{j}]"
                if ind.target is None:
                    out.append(
                        _p(
                            f"{ipath}.target",
                            "protocol.indicator.missing_target",
                            f"indicator '{ind.id}' must have a target (intended value or threshold)",
                            "add target = <number>",
                        )
                    )
                elif ind.unit in (Unit.proportion,) and not 0 <= ind.target <= 1:
                    out.append(
                        _p(
                            f"{ipath}.target",
                            "protocol.indicator.target_range",
                            f"a proportion target must lie in [0, 1]; got {ind.target}",
                            'give proportions as 0–1, or use unit = "percent"',
                        )
                    )
                elif ind.unit == Unit.percent and not 0 <= ind.target <= 100:
                    out.append(
                        _p(
                            f"{ipath}.target",
                            "protocol.indicator.target_range",
                            f"a percentage target must lie in [0, 100]; got {ind.target}",
                            "give percentages as 0–100",
                        )
                    )
                elif ind.target < 0:
                    out.append(
                        _p(
                            f"{ipath}.target",
                            "protocol.indicator.target_range",
                            f"target must be ≥ 0; got {ind.target}",
                            "targets count sessions, days, FTE or shares",
                        )
                    )
                if ind.level not in p.trial.levels:
                    out.append(
                        _p(
                            f"{ipath}.level",
                            "protocol.indicator.level",
                            f"indicator level must be one of the trial levels {[str(x) for x in p.trial.levels]}; got '{ind.level}'",
                            "use a level listed in trial.levels",
                        )
                    )
        if n.kind == "outcome":
            if not n.measured_by:
                out.append(
                    _p(
                        f"{path}.measured_by",
                        "protocol.logic_model.unmeasured_outcome",
                        f"outcome '{n.id}' names no outcome measure",
                        "list the declared [[outcomes]] ids that test it in measured_by",
                    )
                )
            for m in n.measured_by:
                if p.outcome(m) is None:
                    close = _close(m, [o.id for o in p.outcomes])
                    out.append(
                        _p(
                            f"{path}.measured_by",
                            "protocol.logic_model.unknown_outcome",
                            f"outcome '{n.id}' is measured by '{m}', which is not a declared outcome",
                            f"did you mean '{close}'?"
                            if close
                            else "declare it under [[outcomes]] or fix the id",
                        )
                    )
        elif n.measured_by:
            out.append(
                _p(
                    f"{path}.measured_by",
                    "protocol.logic_model.measured_by_kind",
                    f"only outcome nodes name measures; '{n.id}' is a {n.kind}",
                    "move measured_by to an outcome node",
                )
            )
    out += _cycles(nodes)
    # every resource reaches an outcome
    adj = {n.id: [t for t in n.leads_to if t in by_id] for n in nodes}
    for i, n in enumerate(nodes):
        if n.kind in ("resource", "activity", "output"):
            seen = _reach(n.id, adj)
            if not any(by_id[s].kind == "outcome" for s in seen):
                code = (
                    "protocol.logic_model.resource_dead_end"
                    if n.kind == "resource"
                    else "protocol.logic_model.dead_end"
                )
                out.append(
                    _p(
                        f"logic_model.nodes[{i}].leads_to",
                        code,
                        f"{n.kind} '{n.id}' must lead to an outcome; it reaches none",
                        "add leads_to links through activities and outputs to an outcome",
                    )
                )
    # every declared outcome appears in the logic model
    measured = {m for n in nodes if n.kind == "outcome" for m in n.measured_by}
    for k, o in enumerate(p.outcomes):
        if o.id not in measured:
            out.append(
                _p(
                    f"outcomes[{k}]",
                    "protocol.logic_model.outcome_not_in_model",
                    f"declared outcome '{o.id}' is not measured_by any logic-model outcome",
                    "add it to the measured_by list of the outcome node it tests",
                )
            )
    # every activity is delivered by a TIDieR procedure
    delivered: set[str] = set()
    for arm_id, arm in p.arms.items():
        for k, proc in enumerate(arm.tidier.what_procedures.procedures):
            for act in proc.delivers:
                delivered.add(act)
                node = by_id.get(act)
                ppath = f"arms.{arm_id}.tidier.what_procedures.procedures[{k}].delivers"
                if node is None:
                    close = _close(act, ids)
                    out.append(
                        _p(
                            ppath,
                            "protocol.tidier.unknown_activity",
                            f"procedure '{proc.id}' delivers '{act}', which is not a logic-model node",
                            f"did you mean '{close}'?"
                            if close
                            else "fix the id or add the activity",
                        )
                    )
                elif node.kind != "activity":
                    out.append(
                        _p(
                            ppath,
                            "protocol.tidier.not_activity",
                            f"procedure '{proc.id}' delivers '{act}', a {node.kind}, not an activity",
                            "procedures deliver activities",
                        )
                    )
    for i, n in enumerate(nodes):
        if n.kind == "activity" and n.id not in delivered:
            out.append(
                _p(
                    f"logic_model.nodes[{i}]",
                    "protocol.logic_model.activity_not_delivered",
                    f"activity '{n.id}' is delivered by no TIDieR procedure",
                    "reference it from [[arms.<id>.tidier.what_procedures.procedures]] delivers = [...]",
                )
            )
    kinds = {n.kind for n in nodes}
    for kind in ("resource", "activity", "output", "outcome"):
        if kind not in kinds:
            out.append(
                _p(
                    "logic_model.nodes",
                    "protocol.logic_model.missing_kind",
                    f"the logic model has no {kind} node",
                    f'add at least one node with kind = "{kind}"',
                )
            )
    return out


def _cycles(nodes: Iterable[Any]) -> list[Problem]:
    adj = {n.id: list(n.leads_to) for n in nodes}
    colour: dict[str, int] = dict.fromkeys(adj, 0)
    found: list[list[str]] = []

    def visit(start: str) -> None:
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, idx = stack.pop()
            if idx == 0:
                colour[node] = 1
                path.append(node)
            children = [c for c in adj.get(node, []) if c in adj]
            if idx < len(children):
                stack.append((node, idx + 1))
                child = children[idx]
                if colour[child] == 1:
                    found.append(path[path.index(child) :] + [child])
                elif colour[child] == 0:
                    stack.append((child, 0))
            else:
                colour[node] = 2
                path.pop()

    for n in adj:
        if colour[n] == 0:
            visit(n)
    return [
        _p(
            "logic_model.nodes",
            "protocol.logic_model.cycle",
            "the logic model must be acyclic; found the cycle " + " → ".join(c),
            "remove one of the leads_to links in the cycle",
        )
        for c in found
    ]


def _reach(start: str, adj: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(adj.get(start, []))
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(adj.get(n, []))
    return seen


def _check_outcomes(p: Protocol) -> list[Problem]:
    out: list[Problem] = []
    if not p.outcomes:
        return [
            _p(
                "outcomes",
                "protocol.outcome.none",
                "no outcomes are declared",
                'declare at least one [[outcomes]] with role = "primary"',
            )
        ]
    ids = [o.id for o in p.outcomes]
    for dup in _duplicates(ids):
        out.append(
            _p(
                "outcomes",
                "protocol.outcome.duplicate_id",
                f"outcome id '{dup}' is used more than once",
                "give every outcome a unique id",
            )
        )
    if not p.primary_outcomes:
        out.append(
            _p(
                "outcomes",
                "protocol.outcome.no_primary",
                "no outcome has role = 'primary'",
                'mark the primary outcome(s) with role = "primary"',
            )
        )
    tps = set(p.trial.timepoints)
    for k, o in enumerate(p.outcomes):
        path = f"outcomes[{k}]"
        for tp in o.timepoints:
            if tp not in tps:
                out.append(
                    _p(
                        f"{path}.timepoints",
                        "protocol.outcome.unknown_timepoint",
                        f"timepoint '{tp}' of outcome '{o.id}' is not in trial.timepoints {sorted(tps)}",
                        "add it to trial.timepoints or fix the name",
                    )
                )
        for key in ("primary_timepoint", "baseline_timepoint"):
            tp = getattr(o, key)
            if tp is not None and tp not in o.timepoints:
                out.append(
                    _p(
                        f"{path}.{key}",
                        "protocol.outcome.timepoint",
                        f"{key} '{tp}' must be one of the outcome's timepoints {o.timepoints}",
                        "list it in the outcome's timepoints",
                    )
                )
        if o.level not in p.trial.levels:
            out.append(
                _p(
                    f"{path}.level",
                    "protocol.outcome.level",
                    f"outcome level must be one of trial.levels; got '{o.level}'",
                    "use a level from trial.levels",
                )
            )
        if o.instrument == "custom" and o.range is None:
            out.append(
                _p(
                    f"{path}.range",
                    "protocol.outcome.custom_range",
                    f"custom outcome '{o.id}' must declare its range",
                    "add range = [min, max]",
                )
            )
        if o.range is not None and o.range[0] >= o.range[1]:
            out.append(
                _p(
                    f"{path}.range",
                    "protocol.outcome.range_order",
                    f"range must be [min, max] with min < max; got {list(o.range)}",
                    "swap or correct the range",
                )
            )
        if o.instrument == "binary" and o.type != "binary":
            out.append(
                _p(
                    f"{path}.type",
                    "protocol.outcome.type",
                    f"a binary instrument must have type = 'binary'; got '{o.type}'",
                    'set type = "binary"',
                )
            )
        if o.instrument == "count" and o.type != "count":
            out.append(
                _p(
                    f"{path}.type",
                    "protocol.outcome.type",
                    f"a count instrument must have type = 'count'; got '{o.type}'",
                    'set type = "count"',
                )
            )
        if o.instrument not in ("binary", "count", "custom") and o.type != "continuous":
            out.append(
                _p(
                    f"{path}.type",
                    "protocol.outcome.type",
                    f"{o.instrument} scores are continuous; got type '{o.type}'",
                    'set type = "continuous"',
                )
            )
        if o.target_effect is not None and o.type != "continuous":
            out.append(
                _p(
                    f"{path}.target_effect",
                    "protocol.outcome.target_effect",
                    f"target_effect (SD units) plans continuous outcomes; '{o.id}' is {o.type} "
                    "and its target_effect is ignored",
                    "remove target_effect from this outcome",
                    severity="warning",
                )
            )
    return out


def _check_plans(p: Protocol) -> list[Problem]:
    out: list[Problem] = []
    declared = {c.name for c in p.data.covariates}
    la_covs = {c.name for c in p.data.covariates if c.level == "la"}
    for j, cov in enumerate(p.analysis.covariates):
        if cov not in declared and cov not in SPECIAL_COVARIATES:
            close = _close(cov, sorted(declared))
            out.append(
                _p(
                    f"analysis.covariates[{j}]",
                    "protocol.analysis.unknown_covariate",
                    f"analysis covariate '{cov}' is not declared in [[data.covariates]]",
                    f"did you mean '{close}'?"
                    if close
                    else "declare it under [[data.covariates]] or remove it",
                )
            )
    for j, sg in enumerate(p.analysis.subgroups):
        if sg.variable not in declared:
            out.append(
                _p(
                    f"analysis.subgroups[{j}].variable",
                    "protocol.analysis.unknown_subgroup",
                    f"subgroup variable '{sg.variable}' is not declared in [[data.covariates]]",
                    "declare it or fix the name",
                )
            )
    if p.analysis.compliance is not None:
        c = p.analysis.compliance
        for t in [c.threshold, *c.thresholds]:
            if not 0 < t <= 1:
                out.append(
                    _p(
                        "analysis.compliance",
                        "protocol.analysis.compliance_threshold",
                        f"compliance thresholds must lie in (0, 1]; got {t}",
                        "give fidelity-index thresholds as proportions",
                    )
                )
    out += _check_missing_data(p, declared)
    r = p.randomisation
    if r is not None:
        for j, cov in enumerate([*r.covariates, *r.strata]):
            if cov not in la_covs:
                close = _close(cov, sorted(la_covs))
                out.append(
                    _p(
                        f"randomisation.covariates[{j}]"
                        if j < len(r.covariates)
                        else f"randomisation.strata[{j - len(r.covariates)}]",
                        "protocol.randomisation.unknown_covariate",
                        f"randomisation variable '{cov}' is not an LA-level covariate in [[data.covariates]]",
                        f"did you mean '{close}'?" if close else 'declare it with level = "la"',
                    )
                )
        if r.arms and sorted(r.arms) != sorted(p.arms):
            out.append(
                _p(
                    "randomisation.arms",
                    "protocol.randomisation.arms",
                    f"randomisation.arms must name the protocol's arms {sorted(p.arms)}; got {r.arms}",
                    "use the ids of [arms.<id>]",
                )
            )
        if r.ratio and r.ratio != p.trial.allocation_ratio:
            out.append(
                _p(
                    "randomisation.ratio",
                    "protocol.randomisation.ratio",
                    f"randomisation.ratio {r.ratio} contradicts trial.allocation_ratio {p.trial.allocation_ratio}",
                    "make them agree (or omit randomisation.ratio)",
                )
            )
        if r.method == "constrained" and not r.covariates and not r.limits:
            out.append(
                _p(
                    "randomisation.covariates",
                    "protocol.randomisation.no_covariates",
                    "constrained randomisation needs covariates to balance",
                    "list LA covariates in randomisation.covariates",
                )
            )
        if r.method == "stratified" and not r.strata:
            out.append(
                _p(
                    "randomisation.strata",
                    "protocol.randomisation.no_strata",
                    "stratified randomisation needs strata",
                    "list categorical LA covariates in randomisation.strata",
                )
            )
        if r.method == "matched" and not r.covariates and not r.pairs_column:
            out.append(
                _p(
                    "randomisation",
                    "protocol.randomisation.no_pairs",
                    "matched randomisation needs pairs_column or covariates to form pairs",
                    "set pairs_column or covariates",
                )
            )
        for cov in r.weights:
            if cov not in r.covariates:
                out.append(
                    _p(
                        f"randomisation.weights.{cov}",
                        "protocol.randomisation.weight_unknown",
                        f"weight given for '{cov}', which is not a randomisation covariate",
                        "weights apply to randomisation.covariates",
                    )
                )
    lm_components = {ind.component for _, ind in p.logic_model.indicators()}
    for comp in p.fidelity.component_weights:
        if comp not in lm_components:
            out.append(
                _p(
                    f"fidelity.component_weights.{comp}",
                    "protocol.fidelity.unknown_component",
                    f"component '{comp}' has a weight but no logic-model indicator",
                    f"use one of {sorted(lm_components)}",
                )
            )
    lo, hi = p.fidelity.bands
    if not 0 < lo < hi <= 1:
        out.append(
            _p(
                "fidelity.bands",
                "protocol.fidelity.bands",
                f"fidelity.bands must satisfy 0 < low < high ≤ 1; got {[lo, hi]}",
                "e.g. bands = [0.5, 0.8]",
            )
        )
    out += _check_disclosure(p)
    return out


def _check_disclosure(p: Protocol) -> list[Problem]:
    """``[analysis.disclosure] min_las_for_totals``: a total over fewer LAs is an LA-level count.

    Below 3, a total over two LAs (an arm of a 4-LA trial) would be published as if it
    were a trial total although it is little more than each LA's own count; above the
    number of LAs, every count of people is protected as an LA's own (as strict mode
    does), which is allowed but worth knowing.
    """
    out: list[Problem] = []
    d = p.analysis.disclosure
    path = "analysis.disclosure.min_las_for_totals"
    if d.min_las_for_totals < 3:
        out.append(
            _p(
                path,
                "protocol.analysis.disclosure.min_las_for_totals",
                f"min_las_for_totals = {d.min_las_for_totals}: a count over "
                f"{max(d.min_las_for_totals, 2)} LAs would be published as a total, although "
                "it is little more than each LA's own count",
                "use 6 (the default) or at least 3",
                severity="warning",
            )
        )
    elif d.min_las_for_totals > p.trial.n_clusters:
        out.append(
            _p(
                path,
                "protocol.analysis.disclosure.min_las_for_totals",
                f"min_las_for_totals = {d.min_las_for_totals} is more than the trial's "
                f"{p.trial.n_clusters} LAs: every count of people is protected as an LA's "
                "own count",
                f"this is allowed; lower it to at most {p.trial.n_clusters} to publish "
                'trial totals of 1–4 people, or use mode = "strict"',
                severity="warning",
            )
        )
    return out


def _check_progression(p: Protocol) -> list[Problem]:
    """Progression criteria: unique ids, distinct limits, LAs approached vs randomised.

    Metric names and parameters are checked by the feasibility stage's registry
    (``feasibility.progression.*``, registered through :mod:`trialkit.protocol.hooks`).
    """
    out: list[Problem] = []
    for dup in _duplicates([c.id for c in p.progression]):
        out.append(
            _p(
                "progression",
                "protocol.progression.duplicate_id",
                f"progression criterion ids must be unique; got '{dup}' more than once",
                "give each [[progression]] entry its own id",
            )
        )
    for i, c in enumerate(p.progression):
        if c.green == c.red:
            out.append(
                _p(
                    f"progression[{i}].green",
                    "protocol.progression.thresholds",
                    f"green and red limits of criterion '{c.id}' must differ; got {c.green:g} "
                    "for both",
                    "put green above red when higher is better (e.g. green = 0.8, red = 0.6) "
                    "and below it when lower is better",
                )
            )
    t = p.trial
    if t.approached is not None and t.approached < t.n_clusters:
        out.append(
            _p(
                "trial.approached",
                "protocol.trial.approached",
                f"trial.approached (LAs approached) must be at least trial.n_clusters "
                f"({t.n_clusters}); got {t.approached}",
                "count every LA invited to take part, including those randomised",
            )
        )
    return out


def _check_missing_data(p: Protocol, declared: set[str]) -> list[Problem]:
    """``[analysis.missing_data]``: outcomes continuous and known, auxiliaries resolvable."""
    md = p.analysis.missing_data
    if md is None:
        return []
    out: list[Problem] = []
    known = {o.id: o for o in p.outcomes}
    targets = [known[o] for o in md.outcomes if o in known] or [
        o for o in p.outcomes if o.role == "primary" and o.type == "continuous"
    ]
    for j, oid in enumerate(md.outcomes):
        oc = known.get(oid)
        if oc is None:
            close = _close(oid, sorted(known))
            out.append(
                _p(
                    f"analysis.missing_data.outcomes[{j}]",
                    "protocol.missing_data.unknown_outcome",
                    f"outcome '{oid}' is not declared in [[outcomes]]",
                    f"did you mean '{close}'?" if close else "use the id of an [[outcomes]] entry",
                )
            )
        elif oc.type != "continuous":
            out.append(
                _p(
                    f"analysis.missing_data.outcomes[{j}]",
                    "protocol.missing_data.outcome_type",
                    f"multilevel imputation needs a continuous outcome; '{oid}' is {oc.type}",
                    "remove it from analysis.missing_data.outcomes",
                )
            )
    for j, aux in enumerate(md.auxiliary):
        timepoint_of = [o.id for o in targets if aux in o.timepoints]
        if aux in declared or timepoint_of:
            continue
        tps = sorted({t for o in targets for t in o.timepoints})
        close = _close(aux, sorted(declared | set(tps)))
        out.append(
            _p(
                f"analysis.missing_data.auxiliary[{j}]",
                "protocol.missing_data.unknown_auxiliary",
                f"auxiliary '{aux}' must be a timepoint of the imputed outcome(s) {tps} or a "
                "name in [[data.covariates]]",
                f"did you mean '{close}'?" if close else 'e.g. auxiliary = ["mid"]',
            )
        )
    for o in targets:
        if md.auxiliary and o.analysis_timepoint in md.auxiliary:
            out.append(
                _p(
                    "analysis.missing_data.auxiliary",
                    "protocol.missing_data.auxiliary_is_outcome",
                    f"auxiliary '{o.analysis_timepoint}' is the analysis timepoint of '{o.id}'",
                    "list an earlier timepoint (e.g. the mid-point) instead",
                    severity="warning",
                )
            )
    if not targets:
        out.append(
            _p(
                "analysis.missing_data",
                "protocol.missing_data.no_outcome",
                "[analysis.missing_data] applies to no continuous outcome",
                "list continuous outcomes in analysis.missing_data.outcomes",
            )
        )
    return out


def _duplicates(ids: list[str]) -> list[str]:
    """Ids used more than once, sorted."""
    return sorted({i for i in ids if ids.count(i) > 1})


def _close(word: str, options: Iterable[str]) -> str | None:
    import difflib

    m = difflib.get_close_matches(word, list(options), n=1)
    return m[0] if m else None
