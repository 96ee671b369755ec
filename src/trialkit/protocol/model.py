"""The protocol file model: trial design, arms with TIDieR, logic model, outcomes, plans.

Every model is a frozen pydantic model that forbids unknown keys, so a typo in
the TOML file is reported with its path instead of being ignored.  The JSON
Schema exported by ``trialkit schema`` is generated from these classes.

References
----------
Hoffmann TC et al. Better reporting of interventions: template for intervention
description and replication (TIDieR) checklist and guide. BMJ 2014;348:g1687.
Campbell M et al. TIDieR-PHP: a reporting guideline for population health and
policy interventions. BMJ 2018;361:k1079.
Carroll C et al. A conceptual framework for implementation fidelity.
Implementation Science 2007;2:40.
Avery KNL et al. Informing efficient randomised controlled trials: exploration of
challenges in developing progression criteria for internal pilot studies. BMJ Open
2017;7:e013537.
Lewis M et al. Determining sample size for progression criteria for pragmatic pilot
RCTs: the hypothesis test strikes back! Pilot Feasibility Stud 2021;7:40.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.\-]*$", max_length=64)]

TIDIER_ITEMS: tuple[str, ...] = (
    "brief_name",
    "why",
    "what_materials",
    "what_procedures",
    "who_provided",
    "how",
    "where",
    "when_and_how_much",
    "tailoring",
    "modifications",
    "how_well_planned",
    "how_well_actual",
)
"""The 12 TIDieR items, in checklist order (Hoffmann et al. 2014)."""

TIDIER_LABELS: dict[str, str] = {
    "brief_name": "1. Brief name",
    "why": "2. Why (rationale, theory, goal)",
    "what_materials": "3. What: materials",
    "what_procedures": "4. What: procedures",
    "who_provided": "5. Who provided",
    "how": "6. How (modes of delivery)",
    "where": "7. Where",
    "when_and_how_much": "8. When and how much",
    "tailoring": "9. Tailoring",
    "modifications": "10. Modifications",
    "how_well_planned": "11. How well (planned)",
    "how_well_actual": "12. How well (actual)",
}

TIDIER_PHP_ITEMS: tuple[str, ...] = ("how_established", "provider_organisations", "wider_context")
"""Optional TIDieR-PHP additions (Campbell et al. 2018)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Unit(StrEnum):
    """Units a structured quantity may carry."""

    session = "session"
    day = "day"
    hour = "hour"
    minute = "minute"
    week = "week"
    month = "month"
    year = "year"
    fte = "fte"
    person = "person"
    keyworker = "keyworker"
    family = "family"
    percent = "percent"
    proportion = "proportion"
    number = "count"
    gbp = "gbp"


TIME_UNITS = {Unit.minute, Unit.hour, Unit.day, Unit.week, Unit.month, Unit.year}


class Quantity(_Model):
    """A structured amount: ``value`` ``unit`` per ``per`` (e.g. 1 session per month).

    ``minimum``/``maximum`` give a planned range (e.g. 1–3 FTE); ``illustrative``
    marks numbers that are not from a source document.
    """

    id: Identifier
    label: str
    value: float
    unit: Unit
    per: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    over: str | None = Field(
        default=None, description="Period the amount is spread over, e.g. '10 weeks'."
    )
    applies_to: str | None = Field(
        default=None, description="Who it applies to, e.g. 'all keyworkers'."
    )
    illustrative: bool = False


class Procedure(_Model):
    """A TIDieR procedure and the logic-model activities it delivers."""

    id: Identifier
    description: str
    delivers: list[Identifier] = Field(default_factory=list)


class TidierItem(_Model):
    """One TIDieR item: prose plus, where fidelity needs them, structured quantities.

    In TOML an item may be a plain string (prose only) or a table with ``text``,
    ``quantities`` and (for ``what_procedures``) ``procedures``.
    """

    text: str = ""
    quantities: list[Quantity] = Field(default_factory=list)
    procedures: list[Procedure] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"text": value}
        return value


class Tidier(_Model):
    """The TIDieR checklist for one arm (items may be empty at protocol stage)."""

    brief_name: TidierItem = Field(default_factory=TidierItem)
    why: TidierItem = Field(default_factory=TidierItem)
    what_materials: TidierItem = Field(default_factory=TidierItem)
    what_procedures: TidierItem = Field(default_factory=TidierItem)
    who_provided: TidierItem = Field(default_factory=TidierItem)
    how: TidierItem = Field(default_factory=TidierItem)
    where: TidierItem = Field(default_factory=TidierItem)
    when_and_how_much: TidierItem = Field(default_factory=TidierItem)
    tailoring: TidierItem = Field(default_factory=TidierItem)
    modifications: TidierItem = Field(default_factory=TidierItem)
    how_well_planned: TidierItem = Field(default_factory=TidierItem)
    how_well_actual: TidierItem = Field(default_factory=TidierItem)
    how_established: TidierItem | None = None
    provider_organisations: TidierItem | None = None
    wider_context: TidierItem | None = None

    def items(self) -> Iterator[tuple[str, TidierItem]]:
        """Yield ``(key, item)`` for the 12 items then any TIDieR-PHP items present."""
        for key in TIDIER_ITEMS:
            yield key, getattr(self, key)
        for key in TIDIER_PHP_ITEMS:
            item = getattr(self, key)
            if item is not None:
                yield key, item

    def quantities(self) -> Iterator[tuple[str, Quantity]]:
        for key, item in self.items():
            for q in item.quantities:
                yield key, q


class Arm(_Model):
    """A trial arm (``intervention``, ``control``, ...)."""

    label: str
    role: Literal["intervention", "control"] = "intervention"
    tidier: Tidier = Field(default_factory=Tidier)


class Level(StrEnum):
    la = "la"
    keyworker = "keyworker"
    family = "family"


class Trial(_Model):
    """Trial design: title, registration, nesting of levels, timing."""

    title: str
    registration: str = ""
    design: Literal["cluster-randomised-parallel"] = "cluster-randomised-parallel"
    levels: list[Level] = Field(default_factory=lambda: [Level.la, Level.keyworker, Level.family])
    randomised_level: Level = Level.la
    allocation_ratio: list[int] = Field(default_factory=lambda: [1, 1])
    n_clusters: int = Field(default=12, ge=2)
    start: dt.date | None = None
    end: dt.date | None = None
    timepoints: list[Identifier] = Field(default_factory=lambda: ["baseline", "mid", "end"])
    approached: int | None = Field(
        default=None,
        ge=1,
        description="Number of LAs approached to take part (the denominator of LA recruitment).",
    )
    illustrative_note: str = ""

    @field_validator("allocation_ratio")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if len(v) < 2 or any(x <= 0 for x in v):
            raise ValueError("allocation_ratio must list a positive integer per arm, e.g. [1, 1]")
        return v


class Covariate(_Model):
    """A covariate the data carry, at a given level (LA covariates drive randomisation)."""

    name: Identifier
    level: Level = Level.la
    type: Literal["continuous", "categorical", "binary", "count"] = "continuous"
    levels: list[str] = Field(default_factory=list)
    description: str = ""
    illustrative: bool = False


DEFAULT_COURSES: tuple[str, ...] = ("cpd", "foundation")
"""Training courses of the bundled protocol (the default ``data.courses``)."""


class DataSpec(_Model):
    """What the data files hold: id columns, declared covariates and delivery vocabularies.

    ``courses`` lists the training courses a ``training`` delivery record and a
    fidelity indicator's ``course`` parameter may name.
    """

    cluster_id: str = "la_id"
    keyworker_id: str = "keyworker_id"
    family_id: str = "family_id"
    covariates: list[Covariate] = Field(default_factory=list)
    courses: list[Identifier] = Field(default_factory=lambda: list(DEFAULT_COURSES), min_length=1)
    date_format: str = Field(
        default="ISO8601",
        description=(
            "How dates are written in the data files: 'ISO8601' (2025-02-24, the default) "
            "or a strftime pattern such as '%d/%m/%Y' (24/02/2025)"
        ),
    )

    @field_validator("date_format")
    @classmethod
    def _date_format_reads_a_date(cls, v: str) -> str:
        if v == "ISO8601":
            return v
        probe = dt.date(2025, 2, 24)
        try:
            back = dt.datetime.strptime(probe.strftime(v), v).date()
        except ValueError:
            back = None
        if back != probe:
            raise ValueError(
                "date_format must be 'ISO8601' or a strftime pattern with day, month and year "
                f"such as '%d/%m/%Y'; got {v!r}"
            )
        return v

    def covariate(self, name: str) -> Covariate | None:
        return next((c for c in self.covariates if c.name == name), None)


class Indicator(_Model):
    """A fidelity indicator on an activity or output.

    ``metric`` names how the value is computed from delivery records (see the
    fidelity stage); ``target`` with ``comparison`` is the intended value or
    threshold; ``dimension`` is Carroll et al.'s adherence dimension.
    """

    id: Identifier
    label: str
    level: Level
    component: Identifier
    dimension: Literal["content", "frequency", "duration", "coverage", "quality"] = "coverage"
    metric: str
    params: dict[str, float | int | str] = Field(default_factory=dict)
    target: float | None = None
    comparison: Literal[">=", "<=", "=="] = ">="
    unit: Unit | None = None
    weight: float = Field(default=1.0, ge=0)


NodeKind = Literal["resource", "activity", "output", "outcome"]


class Node(_Model):
    """A node of the logic model."""

    id: Identifier
    kind: NodeKind
    label: str
    leads_to: list[Identifier] = Field(default_factory=list)
    indicators: list[Indicator] = Field(default_factory=list)
    measured_by: list[Identifier] = Field(default_factory=list)
    description: str = ""


class LogicModel(_Model):
    nodes: list[Node] = Field(default_factory=list)

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def indicators(self) -> Iterator[tuple[Node, Indicator]]:
        for node in self.nodes:
            for ind in node.indicators:
                yield node, ind


class CustomInstrument(_Model):
    """A questionnaire that is not built in, declared so every stage can score it.

    ``n_items`` responses in ``item_1 … item_n``, each within ``range`` (whole
    numbers when ``integer``); ``reverse_items`` are recoded as ``min + max − x``;
    the ``total`` scale is the sum (or mean) of the answered items, prorated when
    at least ``min_answered`` (default ``ceil(0.8·n)``) are answered.  An outcome
    uses it with ``instrument = "custom"`` and ``score = "<id>"``.
    """

    id: Identifier
    n_items: int = Field(ge=1, le=47)
    range: tuple[float, float]
    integer: bool = True
    reverse_items: list[int] = Field(default_factory=list)
    method: Literal["sum", "mean"] = "sum"
    min_answered: int | None = Field(default=None, ge=1)
    description: str = ""


class ScoringPlan(_Model):
    """How questionnaires are entered and scored, used by every stage.

    ``score15_reverse`` is the SCORE-15 coding direction (which items are
    reversed); ``cbi_coding`` how CBI answers are entered (``0-100`` or codes
    ``1-5``); ``instruments`` declares custom questionnaires.
    """

    score15_reverse: Literal["strengths", "difficulties", "none"] = "strengths"
    cbi_coding: Literal["0-100", "1-5"] = "0-100"
    instruments: list[CustomInstrument] = Field(default_factory=list)

    def instrument(self, instrument_id: str) -> CustomInstrument | None:
        return next((i for i in self.instruments if i.id == instrument_id), None)


KNOWN_INSTRUMENTS = (
    "SCORE-15",
    "WEMWBS",
    "SWEMWBS",
    "ORS",
    "SRS",
    "RCADS",
    "CBI",
    "binary",
    "count",
    "custom",
)


class Outcome(_Model):
    """A declared outcome measure."""

    id: Identifier
    label: str
    level: Level
    instrument: Literal[
        "SCORE-15", "WEMWBS", "SWEMWBS", "ORS", "SRS", "RCADS", "CBI", "binary", "count", "custom"
    ]
    score: str = "total"
    range: tuple[float, float] | None = None
    timepoints: list[Identifier]
    primary_timepoint: Identifier | None = None
    baseline_timepoint: Identifier | None = None
    role: Literal["primary", "secondary"] = "secondary"
    type: Literal["continuous", "binary", "count"] = "continuous"
    better: Literal["higher", "lower"] = "higher"
    reliable_change: float | None = Field(default=None, gt=0)
    target_effect: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Standardised effect (in SD units of the outcome) a definitive trial should "
            "detect; used to plan it from the pilot (continuous outcomes)"
        ),
    )
    description: str = ""

    @property
    def analysis_timepoint(self) -> str:
        return self.primary_timepoint or self.timepoints[-1]


class RandomisationPlan(_Model):
    """How clusters are randomised (meaning defined by the randomise stage)."""

    method: Literal["simple", "stratified", "matched", "constrained"]
    id_column: str = "la_id"
    arms: list[Identifier] = Field(default_factory=list)
    ratio: list[int] = Field(default_factory=list)
    strata: list[str] = Field(default_factory=list)
    covariates: list[str] = Field(default_factory=list)
    weights: dict[str, float] = Field(default_factory=dict)
    metric: Literal["l1", "l2"] = "l2"
    cutoff: float | None = Field(default=0.1, gt=0, le=1)
    keep: int | None = Field(default=None, ge=1)
    limits: dict[str, float] = Field(default_factory=dict)
    enumerate_limit: int = Field(default=50_000, ge=1)
    samples: int = Field(default=50_000, ge=1)
    odd_stratum: Literal["random-extra", "error"] = "random-extra"
    pairs_column: str | None = None
    match_distance: Literal["mahalanobis", "euclidean"] = "mahalanobis"
    validity_warn: tuple[float, float] = (0.25, 0.75)


class Subgroup(_Model):
    id: Identifier
    variable: str
    description: str = ""


class Compliance(_Model):
    """Pre-specified definition of compliance for CACE."""

    measure: Literal["la_fidelity_index", "keyworker_dose"] = "la_fidelity_index"
    threshold: float = 0.8
    thresholds: list[float] = Field(default_factory=list)


class Disclosure(_Model):
    """Statistical disclosure control for everything the report publishes.

    ``min_las_for_totals``: a count of people over fewer LAs than this (an arm of a
    small trial) is protected like an LA's own count (see docs/report.md).
    """

    mode: Literal["standard", "strict"] = "standard"
    min_count: int = Field(default=5, ge=1)
    min_people_for_mean: int = Field(default=10, ge=1)
    min_las_for_totals: int = Field(default=6, ge=1)


class MissingDataPlan(_Model):
    """Multiple imputation of missing outcomes as a declared sensitivity analysis.

    ``auxiliary`` entries are timepoints of the analysed outcome (``"mid"``: the
    outcome measured at that timepoint) or names of ``[[data.covariates]]``;
    ``delta`` is the grid of δ-adjustments (outcome SD units) of the tipping-point
    analysis, ``delta_arm`` the arm whose imputed outcomes are shifted.
    """

    method: Literal["multilevel-mi"] = "multilevel-mi"
    auxiliary: list[str] = Field(default_factory=list)
    imputations: int = Field(default=20, ge=2, le=1000)
    seed: int = Field(default=0, ge=0)
    delta: list[float] = Field(
        default_factory=lambda: [-1.0, -0.75, -0.5, -0.25, 0.25, 0.5, 0.75, 1.0]
    )
    delta_arm: Literal["treated", "control", "both"] = "treated"
    outcomes: list[str] = Field(default_factory=list)
    by_arm: bool = False
    burn_in: int = Field(default=1000, ge=0)
    thin: int = Field(default=20, ge=1)

    @field_validator("delta", mode="before")
    @classmethod
    def _one_delta(cls, v: Any) -> Any:
        return [v] if isinstance(v, int | float) and not isinstance(v, bool) else v


class AnalysisPlan(_Model):
    """The statistical analysis plan."""

    model: Literal["lmm", "ols-cr2", "cluster-level", "gee"] = "lmm"
    df_method: Literal[
        "kenward-roger", "satterthwaite", "between-within", "containment", "residual", "z"
    ] = "kenward-roger"
    binary_df_method: Literal["kenward-roger", "satterthwaite", "between-within", "residual"] = (
        "between-within"
    )
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    covariates: list[str] = Field(default_factory=list)
    adjust_for_baseline: bool = True
    sensitivity: list[
        Literal[
            "cluster-level", "randomisation-test", "cr2", "satterthwaite", "gee", "complete-case"
        ]
    ] = Field(default_factory=list)
    multiplicity: Literal["holm", "bonferroni", "hochberg", "none"] = "holm"
    subgroups: list[Subgroup] = Field(default_factory=list)
    compliance: Compliance | None = None
    disclosure: Disclosure = Field(default_factory=Disclosure)
    missing_data: MissingDataPlan | None = None


class FidelityPlan(_Model):
    """Settings of the fidelity assessment."""

    bands: tuple[float, float] = (0.5, 0.8)
    component_weights: dict[str, float] = Field(default_factory=dict)
    missing_as_zero: bool = False
    period: Literal["month", "quarter"] = "quarter"


class ProgressionCriterion(_Model):
    """A pre-specified progression criterion: a feasibility outcome with traffic-light limits.

    ``metric`` names how the outcome is computed (the feasibility stage's registry;
    ``params`` where the metric needs them).  ``green`` and ``red`` are the limits of
    the green and red zones; their order gives the direction (green above red: higher
    is better).  The estimate is green at or beyond ``green``, red at or beyond ``red``
    and amber in between (Avery et al. 2017; Lewis et al. 2021).  ``by_arm`` assesses
    each arm separately; ``action`` says what would be amended if it is amber;
    ``alpha`` is the one-sided level of the test against the red limit.
    """

    id: Identifier
    label: str
    metric: str
    params: dict[str, float | int | str] = Field(default_factory=dict)
    green: float
    red: float
    by_arm: bool = False
    action: str = ""
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    illustrative: bool = False

    @property
    def higher_is_better(self) -> bool:
        """True when the green limit is above the red one."""
        return self.green > self.red


class Protocol(_Model):
    """A complete trial protocol."""

    trial: Trial
    data: DataSpec = Field(default_factory=DataSpec)
    arms: dict[Identifier, Arm]
    logic_model: LogicModel = Field(default_factory=LogicModel)
    outcomes: list[Outcome] = Field(default_factory=list)
    randomisation: RandomisationPlan | None = None
    analysis: AnalysisPlan = Field(default_factory=AnalysisPlan)
    fidelity: FidelityPlan = Field(default_factory=FidelityPlan)
    scoring: ScoringPlan = Field(default_factory=ScoringPlan)
    progression: list[ProgressionCriterion] = Field(default_factory=list)

    # convenience ---------------------------------------------------------
    def outcome(self, outcome_id: str) -> Outcome | None:
        return next((o for o in self.outcomes if o.id == outcome_id), None)

    @property
    def primary_outcomes(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.role == "primary"]

    @property
    def arm_ids(self) -> list[str]:
        return list(self.arms)

    @property
    def intervention_arm(self) -> str:
        return next((k for k, a in self.arms.items() if a.role == "intervention"), self.arm_ids[0])

    @property
    def control_arm(self) -> str:
        return next((k for k, a in self.arms.items() if a.role == "control"), self.arm_ids[-1])
