"""Questionnaire scoring: item responses to scale scores, with declared prorating rules.

Every instrument is described by an :class:`Instrument` record (number of items,
allowed response range, scales with their items, reversed items, prorating rule).
:func:`score` turns the ``item_1 … item_k`` columns of a measurements table into
one column per scale, vectorised over rows.  The rules and their sources are in
``docs/scoring.md``; item wording is never reproduced.

Notes
-----
Prorating (default rule): a scale is scored when at least ``ceil(0.8·k)`` of its
``k`` items are answered; the score is then ``mean(answered) × k`` (sums) or
``mean(answered)`` (mean-scored scales such as the CBI).  Otherwise the score is
missing and counted on the result (``n_missing``).  The CBI uses the published
minimum number of answered items (Kristensen et al. 2005: 3 of 6, 4 of 7, 3 of 6).

Reliable change (Jacobson & Truax 1991): ``SE = SD_pre·√(1 − r)``,
``S_diff = √2·SE``, ``RC = (post − pre)/S_diff``; reliable when ``|RC| > 1.96``.

References
----------
Stratton P et al. (2014) SCORE-15. Journal of Family Therapy 36:3–19.
Tennant R et al. (2007) WEMWBS. Health and Quality of Life Outcomes 5:63.
Stewart-Brown S et al. (2009) SWEMWBS Rasch analysis. Health Qual Life Outcomes 7:15.
Kristensen TS et al. (2005) The Copenhagen Burnout Inventory. Work & Stress 19:192–207.
Chorpita BF et al. (2000) RCADS. Behaviour Research and Therapy 38:835–855.
Miller SD et al. (2003) ORS; Duncan BL et al. (2003) SRS. J Brief Therapy 2:91–100; 3:3–12.
Jacobson NS, Truax P (1991) J Consult Clin Psychol 59:12–19.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from trialkit.data.load import convert
from trialkit.data.schema import MAX_ROWS_PER_CODE, DataProblem
from trialkit.errors import DataError, Problem
from trialkit.protocol.hooks import register_check
from trialkit.protocol.model import Protocol

__all__ = [
    "INSTRUMENTS",
    "MAX_ITEMS",
    "RCADS_SUBSCALES",
    "SWEMWBS_CONVERSION",
    "SWEMWBS_CONVERSION_SOURCE",
    "Instrument",
    "Scale",
    "clinical_cutoff",
    "custom_instruments",
    "entered_instrument",
    "invalid_items",
    "item_columns",
    "item_message",
    "item_rule",
    "item_matrix",
    "rcads_tscores",
    "reliable_change",
    "score",
    "score_matrix",
    "swemwbs_metric",
]

MAX_ITEMS = 47
"""Largest number of items of a built-in instrument (RCADS); columns item_1 … item_47."""


def item_columns(n: int = MAX_ITEMS) -> list[str]:
    """Names of the first ``n`` item columns (``item_1`` … ``item_n``)."""
    return [f"item_{i}" for i in range(1, n + 1)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scale:
    """One scale of an instrument.

    Parameters
    ----------
    name : str
        Scale name used as the output column (e.g. ``strengths``, ``total``).
    items : tuple of int
        1-based item numbers.
    method : {"sum", "mean", "sum_of_scales"}
        How answered items combine.  ``sum_of_scales`` adds other scales (missing
        when any is missing).
    min_answered : int, optional
        Items that must be answered; default ``ceil(0.8·len(items))``.
    of_scales : tuple of str
        Scales added by ``sum_of_scales``.
    """

    name: str
    items: tuple[int, ...] = ()
    method: Literal["sum", "mean", "sum_of_scales"] = "sum"
    min_answered: int | None = None
    of_scales: tuple[str, ...] = ()

    @property
    def required(self) -> int:
        if self.min_answered is not None:
            return self.min_answered
        return math.ceil(0.8 * len(self.items) - 1e-9)


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    """Description of a questionnaire.

    Parameters
    ----------
    id : str
        Instrument id as written in the ``instrument`` column.
    n_items : int
    low, high : float
        Allowed response range of every item.
    allowed : tuple of float, optional
        Exhaustive set of allowed responses (e.g. CBI 0/25/50/75/100).
    integer : bool
        Whether responses must be whole numbers.
    scales : tuple of Scale
    reversed_items : tuple of int
        Items recoded as ``low + high − x`` before scoring.
    total_given : bool
        Whether a ``total`` column may replace the items (ORS/SRS).
    total_range : (float, float), optional
        Allowed range of a given total.
    level : {"family", "keyworker"}, optional
        Usual respondent level (informative only).
    """

    id: str
    n_items: int
    low: float
    high: float
    allowed: tuple[float, ...] = ()
    integer: bool = True
    scales: tuple[Scale, ...] = ()
    reversed_items: tuple[int, ...] = ()
    total_given: bool = False
    total_range: tuple[float, float] | None = None
    level: str | None = None
    notes: str = ""
    sources: tuple[str, ...] = field(default_factory=tuple)

    def scale(self, name: str) -> Scale | None:
        return next((s for s in self.scales if s.name == name), None)

    @property
    def scale_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.scales)


# ----------------------------------------------------------------------------- tables
SCORE15_SUBSCALES: dict[str, tuple[int, ...]] = {
    "strengths": (1, 3, 6, 10, 15),
    "overwhelmed": (5, 7, 9, 11, 14),
    "communication": (2, 4, 8, 12, 13),
}

RCADS_SUBSCALES: dict[str, tuple[int, ...]] = {
    "separation_anxiety": (5, 9, 17, 18, 33, 45, 46),
    "social_phobia": (4, 7, 8, 12, 20, 30, 32, 38, 43),
    "generalised_anxiety": (1, 13, 22, 27, 35, 37),
    "panic": (3, 14, 24, 26, 28, 34, 36, 39, 41),
    "ocd": (10, 16, 23, 31, 42, 44),
    "depression": (2, 6, 11, 15, 19, 21, 25, 29, 40, 47),
}
"""Standard RCADS (47-item) item-to-subscale key.

Status: *to be verified against the RCADS User's Guide* (Chorpita, Ebesutani &
Spence).  Items 1–29 were checked against the content of a public scoring aid; the
rest follow the commonly cited key.  Pass ``subscales=`` to :func:`rcads_instrument`
to use another key.
"""

SWEMWBS_CONVERSION: dict[int, float] = {
    7: 7.00, 8: 9.51, 9: 11.25, 10: 12.40, 11: 13.33, 12: 14.08, 13: 14.75,
    14: 15.32, 15: 15.84, 16: 16.36, 17: 16.88, 18: 17.43, 19: 17.98, 20: 18.59,
    21: 19.25, 22: 19.98, 23: 20.73, 24: 21.54, 25: 22.35, 26: 23.21, 27: 24.11,
    28: 25.03, 29: 26.02, 30: 27.03, 31: 28.13, 32: 29.31, 33: 30.70, 34: 32.55,
    35: 35.00,
}  # fmt: skip
SWEMWBS_CONVERSION_SOURCE = (
    "SWEMWBS raw score to metric score conversion table (Rasch), Stewart-Brown S et al. "
    "Health Qual Life Outcomes 2009;7:15 (CC-BY) and the Warwick Medical School WEMWBS "
    "user guide. Values as widely reproduced; not verified verbatim against the source in "
    "this build (the search corpus held the Warwick scoring guidance but not the table): "
    "check against the Warwick table before publication."
)


def rcads_instrument(subscales: Mapping[str, Sequence[int]] | None = None) -> Instrument:
    """Build the RCADS instrument from an item key (default :data:`RCADS_SUBSCALES`)."""
    key = {k: tuple(int(i) for i in v) for k, v in (subscales or RCADS_SUBSCALES).items()}
    items = sorted(i for v in key.values() for i in v)
    if items != list(range(1, 48)):
        raise DataError.from_problem(
            path="rcads subscales",
            code="scoring.rcads_key",
            message="RCADS subscale key must use each item 1–47 exactly once",
            hint="check the item-to-subscale table",
        )
    anxiety = tuple(k for k in key if k != "depression")
    scales = [Scale(name=k, items=v) for k, v in key.items()]
    scales.append(Scale(name="total_anxiety", method="sum_of_scales", of_scales=anxiety))
    scales.append(Scale(name="total", method="sum_of_scales", of_scales=tuple(key)))
    return Instrument(
        id="RCADS",
        n_items=47,
        low=0,
        high=3,
        scales=tuple(scales),
        level="family",
        notes="Raw subscale sums; total = total internalising (sum of 6 subscales). "
        "T-scores only with a user-supplied norms table.",
        sources=("Chorpita et al. 2000", "RCADS User's Guide (Chorpita, Ebesutani, Spence)"),
    )


def _score15(reverse: str = "strengths") -> Instrument:
    rev: tuple[int, ...]
    if reverse == "strengths":
        rev = SCORE15_SUBSCALES["strengths"]
    elif reverse == "difficulties":
        rev = SCORE15_SUBSCALES["overwhelmed"] + SCORE15_SUBSCALES["communication"]
    else:
        rev = ()
    scales = [Scale(name=k, items=v) for k, v in SCORE15_SUBSCALES.items()]
    scales.append(Scale(name="total", items=tuple(range(1, 16))))
    scales.append(Scale(name="mean", items=tuple(range(1, 16)), method="mean"))
    return Instrument(
        id="SCORE-15",
        n_items=15,
        low=1,
        high=5,
        scales=tuple(scales),
        reversed_items=tuple(sorted(rev)),
        level="family",
        notes=f"reverse={reverse!r}: higher scores = more difficulties when items are entered "
        "so that higher = more of what the item describes.",
        sources=("Stratton et al. 2014",),
    )


CBI_SCALES = {
    "personal": tuple(range(1, 7)),
    "work": tuple(range(7, 14)),
    "client": tuple(range(14, 20)),
}
CBI_MIN_ANSWERED = {"personal": 3, "work": 4, "client": 3}


def _builtins(score15_reverse: str = "strengths") -> dict[str, Instrument]:
    return {
        "SCORE-15": _score15(score15_reverse),
        "WEMWBS": Instrument(
            id="WEMWBS",
            n_items=14,
            low=1,
            high=5,
            scales=(Scale(name="total", items=tuple(range(1, 15))),),
            level="family",
            sources=("Tennant et al. 2007",),
        ),
        "SWEMWBS": Instrument(
            id="SWEMWBS",
            n_items=7,
            low=1,
            high=5,
            scales=(
                Scale(name="raw", items=tuple(range(1, 8))),
                Scale(name="metric", items=tuple(range(1, 8))),
            ),
            level="keyworker",
            notes="metric = Rasch conversion of the raw total (prorated raw rounded half up first).",
            sources=("Stewart-Brown et al. 2009",),
        ),
        "CBI": Instrument(
            id="CBI",
            n_items=19,
            low=0,
            high=100,
            allowed=(0.0, 25.0, 50.0, 75.0, 100.0),
            scales=tuple(
                Scale(name=k, items=v, method="mean", min_answered=CBI_MIN_ANSWERED[k])
                for k, v in CBI_SCALES.items()
            ),
            reversed_items=(13,),
            level="keyworker",
            notes="Items 1–6 personal, 7–13 work-related (item 13, the last work item, reverse-"
            "scored), 14–19 client-related; answers 0/25/50/75/100 (map 1–5 codes with "
            "cbi_from_codes).",
            sources=("Kristensen et al. 2005",),
        ),
        "RCADS": rcads_instrument(),
        "ORS": Instrument(
            id="ORS",
            n_items=4,
            low=0,
            high=10,
            integer=False,
            scales=(Scale(name="total", items=(1, 2, 3, 4), min_answered=4),),
            total_given=True,
            total_range=(0, 40),
            level="family",
            sources=("Miller et al. 2003",),
        ),
        "SRS": Instrument(
            id="SRS",
            n_items=4,
            low=0,
            high=10,
            integer=False,
            scales=(Scale(name="total", items=(1, 2, 3, 4), min_answered=4),),
            total_given=True,
            total_range=(0, 40),
            level="family",
            sources=("Duncan et al. 2003",),
        ),
    }


INSTRUMENTS: dict[str, Instrument] = _builtins()
"""Built-in instruments by id (SCORE-15 with the default coding direction)."""


def custom_instruments(protocol: Protocol) -> dict[str, Instrument]:
    """The protocol's ``[[scoring.instruments]]`` as :class:`Instrument` records, by id.

    Each has one scale, ``total``: the sum (or mean) of its items, reverse items
    recoded as ``min + max − x``, prorated under the default rule unless
    ``min_answered`` is given.
    """
    out: dict[str, Instrument] = {}
    for ci in protocol.scoring.instruments:
        out[ci.id] = Instrument(
            id=ci.id,
            n_items=ci.n_items,
            low=float(ci.range[0]),
            high=float(ci.range[1]),
            integer=ci.integer,
            scales=(
                Scale(
                    name="total",
                    items=tuple(range(1, ci.n_items + 1)),
                    method=ci.method,
                    min_answered=ci.min_answered,
                ),
            ),
            reversed_items=tuple(sorted(set(ci.reverse_items))),
            notes=ci.description,
            sources=("declared in the protocol",),
        )
    return out


def check_outcome_scores(protocol: Protocol, stage: str = "protocol") -> list[Problem]:
    """Protocol check (registered with :mod:`trialkit.protocol.hooks`): every outcome on a
    built-in instrument names one of its scales (``protocol.outcome.unknown_score``)."""
    import difflib

    del stage
    out: list[Problem] = []
    for k, o in enumerate(protocol.outcomes):
        if o.instrument not in INSTRUMENTS:
            continue
        names = INSTRUMENTS[o.instrument].scale_names
        if o.score in names:
            continue
        close = difflib.get_close_matches(o.score, list(names), n=1)
        out.append(
            Problem(
                path=f"outcomes[{k}].score",
                code="protocol.outcome.unknown_score",
                message=f"score of outcome '{o.id}' must be a scale of {o.instrument} "
                f"({', '.join(names)}); got {o.score!r}",
                hint=f"did you mean '{close[0]}'?" if close else "see docs/scoring.md",
            )
        )
    return out


def get_instrument(
    instrument: str | Instrument, custom: Mapping[str, Instrument] | None = None
) -> Instrument:
    """Return the :class:`Instrument` for an id (built-in or custom)."""
    if isinstance(instrument, Instrument):
        return instrument
    if custom and instrument in custom:
        return custom[instrument]
    if instrument in INSTRUMENTS:
        return INSTRUMENTS[instrument]
    raise DataError.from_problem(
        path=f"instrument {instrument}",
        code="scoring.unknown_instrument",
        message=f"instrument must be one of {', '.join(INSTRUMENTS)} or a declared custom "
        f"instrument; got {instrument!r}",
        hint="declare a custom instrument with trialkit.data.Instrument",
    )


# ----------------------------------------------------------------------------- core
def item_matrix(frame: pd.DataFrame, n_items: int) -> np.ndarray:
    """Float matrix (rows × n_items) of ``item_1 … item_n`` (missing columns → NaN).

    Cells are read with the data stage's number rule (:func:`trialkit.data.load.convert`);
    a cell that is not a number becomes NaN here, and :func:`item_problems` reports it.
    """
    out = np.full((len(frame), n_items), np.nan)
    for j, col in enumerate(item_columns(n_items)):
        if col in frame.columns:
            out[:, j] = convert(frame[col], "float")[0].to_numpy(dtype=float, na_value=np.nan)
    return out


CBI_CODES: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0)
"""CBI answers entered as codes 1–5 (``cbi_coding = "1-5"``)."""


def entered_instrument(
    instrument: str | Instrument,
    *,
    custom: Mapping[str, Instrument] | None = None,
    score15_reverse: str = "strengths",
    cbi_coding: str = "0-100",
) -> Instrument:
    """The instrument with the responses as they are entered.

    SCORE-15 takes the declared reverse-coding direction; the CBI entered as codes
    1–5 allows exactly 1, 2, 3, 4, 5 (its items are mapped to 0/25/50/75/100 by
    :func:`to_published_scale` before scoring).  Everything else is
    :func:`get_instrument`.
    """
    if isinstance(instrument, str) and instrument == "SCORE-15" and score15_reverse != "strengths":
        return _score15(score15_reverse)
    inst = get_instrument(instrument, custom)
    if inst.id == "CBI" and cbi_coding == "1-5" and inst.allowed != CBI_CODES:
        return Instrument(
            id=inst.id,
            n_items=inst.n_items,
            low=1.0,
            high=5.0,
            allowed=CBI_CODES,
            scales=inst.scales,
            reversed_items=inst.reversed_items,
            level=inst.level,
            notes=inst.notes,
            sources=inst.sources,
        )
    return inst


def to_published_scale(items: np.ndarray, instrument: Instrument) -> tuple[np.ndarray, Instrument]:
    """Map entered responses to the scale the instrument is scored on.

    Returns the responses and the instrument to score them with: CBI codes 1–5
    become ``25·(x − 1)`` (0/25/50/75/100) scored by the published CBI; anything
    else is returned unchanged.
    """
    if instrument.id == "CBI" and instrument.allowed == CBI_CODES:
        return (np.asarray(items, dtype=float) - 1.0) * 25.0, _builtins()["CBI"]
    return np.asarray(items, dtype=float), instrument


def item_rule(instrument: Instrument) -> str:
    """The rule every response of ``instrument`` must meet, in words."""
    if instrument.allowed:
        return f"one of {', '.join(f'{a:g}' for a in instrument.allowed)}"
    whole = "a whole number " if instrument.integer else ""
    return f"{whole}from {instrument.low:g} to {instrument.high:g}"


def invalid_items(items: np.ndarray, instrument: Instrument) -> np.ndarray:
    """Mask of answered responses that break :func:`item_rule` (NaN = unanswered).

    The one item rule of trialkit: ``validate`` and ``score`` both apply it.  A
    response outside the declared set or range, a fraction for a whole-number
    instrument, or a non-finite value is invalid.
    """
    x = np.asarray(items, dtype=float)
    present = ~np.isnan(x)
    with np.errstate(invalid="ignore"):
        if instrument.allowed:
            bad = present & ~np.isin(x, np.asarray(instrument.allowed))
        else:
            bad = present & ((x < instrument.low) | (x > instrument.high))
            if instrument.integer:
                bad |= present & np.isfinite(x) & (x != np.round(x))
    return np.asarray(bad | (present & ~np.isfinite(x)), dtype=bool)


def invalid_totals(totals: np.ndarray, instrument: Instrument) -> np.ndarray:
    """Mask of given totals (ORS/SRS ``total`` column) outside the instrument's total range."""
    t = np.asarray(totals, dtype=float)
    if not (instrument.total_given and instrument.total_range):
        return np.zeros(t.shape, dtype=bool)
    lo, hi = instrument.total_range
    with np.errstate(invalid="ignore"):
        return np.asarray(~np.isnan(t) & ((t < lo) | (t > hi)), dtype=bool)


def total_message(instrument: Instrument, value: float) -> str:
    """Message for a given total outside the instrument's total range."""
    lo, hi = instrument.total_range or (instrument.low, instrument.high)
    return f"total must be from {lo:g} to {hi:g}; got {value:g}"


def item_message(instrument: Instrument, item: int, value: float) -> str:
    """Message for a response that breaks the item rule (``item`` is 1-based)."""
    return f"{instrument.id} item_{item} must be {item_rule(instrument)}; got {value:g}"


def item_hint(instrument: Instrument, values: np.ndarray) -> str:
    """How to fix out-of-range responses; names a CBI coding that the values fit."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if instrument.id == "CBI" and len(v):
        if instrument.allowed == CBI_CODES and np.isin(v, (0.0, 25.0, 50.0, 75.0, 100.0)).all():
            return 'the answers look coded 0/25/50/75/100: set cbi_coding = "0-100" in [scoring] (or --cbi-coding 0-100)'
        if instrument.allowed != CBI_CODES and np.isin(v, CBI_CODES).all():
            return 'the answers look coded 1–5: set cbi_coding = "1-5" in [scoring] (or --cbi-coding 1-5)'
    return "correct the response or leave it empty"


ITEM_OUT_OF_RANGE = "measurements.item_out_of_range"
ITEM_NOT_NUMERIC = "measurements.item_not_numeric"


def item_problems(
    frame: pd.DataFrame, instrument: Instrument, *, file: str = "measurements"
) -> list[DataProblem]:
    """Every response of ``frame`` that is not a number or breaks the item rule.

    The same codes as ``validate``: ``measurements.item_not_numeric`` (text such as
    ``-`` or ``.``, infinities) and ``measurements.item_out_of_range``; rows are
    1-based data rows of ``frame`` (at most ``MAX_ROWS_PER_CODE`` per column and
    code, then one summary record).
    """
    out: list[DataProblem] = []
    index = frame.index.to_numpy()
    numbered = pd.api.types.is_integer_dtype(frame.index.dtype)

    def add(rows: np.ndarray, column: str, code: str, msg: Any, hint: str) -> None:
        for r in rows[:MAX_ROWS_PER_CODE]:
            row = int(index[r]) + 1 if numbered else int(r) + 1
            out.append(
                DataProblem(
                    file=file, row=row, column=column, code=code, message=msg(int(r)), hint=hint
                )
            )
        if len(rows) > MAX_ROWS_PER_CODE:
            out.append(
                DataProblem(
                    file=file,
                    row=None,
                    column=column,
                    code=code,
                    message=f"{len(rows) - MAX_ROWS_PER_CODE} more row(s) with the "
                    "same problem (first listed rows above)",
                    hint=hint,
                )
            )

    x = np.full((len(frame), instrument.n_items), np.nan)
    for j, col in enumerate(item_columns(instrument.n_items)):
        if col not in frame.columns:
            continue
        values, bad = convert(frame[col], "float")
        raw = frame[col].astype(object).to_numpy()
        add(
            np.flatnonzero(bad),
            col,
            ITEM_NOT_NUMERIC,
            lambda r, raw=raw, col=col: f"'{col}' must be a number; got {raw[r]!r}",
            "correct the cell (leave it empty if unanswered)",
        )
        x[:, j] = values.to_numpy(dtype=float, na_value=np.nan)
    if instrument.total_given and "total" in frame.columns:
        given, bad_total = convert(frame["total"], "float")
        raw_total = frame["total"].astype(object).to_numpy()
        add(
            np.flatnonzero(bad_total),
            "total",
            "measurements.invalid_value",
            lambda r: f"'total' must be a number; got {raw_total[r]!r}",
            "correct the cell (leave it empty if unknown)",
        )
        tot = given.to_numpy(dtype=float, na_value=np.nan)
        add(
            np.flatnonzero(invalid_totals(tot, instrument)),
            "total",
            "measurements.total_out_of_range",
            lambda r: total_message(instrument, float(tot[r])),
            "correct the total",
        )
    bad = invalid_items(x, instrument)
    for jj in np.flatnonzero(bad.any(axis=0)):
        k = int(jj)
        rows = np.flatnonzero(bad[:, k])
        add(
            rows,
            f"item_{k + 1}",
            ITEM_OUT_OF_RANGE,
            lambda r, k=k: item_message(instrument, k + 1, float(x[r, k])),
            item_hint(instrument, x[rows, k]),
        )
    return out


def score_matrix(items: np.ndarray, instrument: Instrument) -> dict[str, np.ndarray]:
    """Score a float item matrix (NaN = unanswered); returns ``scale -> values`` and ``n_answered``.

    Items are assumed in range (validation checks that); reversed items are
    recoded as ``low + high − x``.
    """
    x = np.asarray(items, dtype=float)[:, : instrument.n_items].copy()
    for i in instrument.reversed_items:
        x[:, i - 1] = instrument.low + instrument.high - x[:, i - 1]
    answered = ~np.isnan(x)
    out: dict[str, np.ndarray] = {"n_answered": answered.sum(axis=1).astype(float)}
    x0 = np.where(answered, x, 0.0)  # unanswered as 0 once, for every scale's sum (as nansum)
    for sc in instrument.scales:
        if sc.method == "sum_of_scales":
            vals = np.zeros(len(x))
            for name in sc.of_scales:
                vals = vals + out[name]
            out[sc.name] = vals
            continue
        idx = [i - 1 for i in sc.items]
        n = answered[:, idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = x0[:, idx].sum(axis=1) / np.where(n > 0, n, 1)
        mean = np.where(n >= max(sc.required, 1), mean, np.nan)
        out[sc.name] = mean if sc.method == "mean" else mean * len(idx)
    if instrument.id == "SWEMWBS" and "metric" in out:
        out["metric"] = swemwbs_metric(out["raw"])
    return out


def swemwbs_metric(raw: np.ndarray | Sequence[float]) -> np.ndarray:
    """Convert SWEMWBS raw totals (7–35; non-integers rounded half up) to metric scores."""
    r = np.asarray(raw, dtype=float)
    out = np.full(r.shape, np.nan)
    ok = ~np.isnan(r)
    ri = np.floor(r[ok] + 0.5).astype(int)
    table = np.full(36, np.nan)
    for k, v in SWEMWBS_CONVERSION.items():
        table[k] = v
    vals = np.full(ri.shape, np.nan)
    inside = (ri >= 7) & (ri <= 35)
    vals[inside] = table[ri[inside]]
    out[ok] = vals
    return out


def cbi_from_codes(values: np.ndarray | pd.Series) -> np.ndarray:
    """Map CBI answers coded 1–5 (1 = never/to a very low degree … 5 = always/to a very
    high degree) to the published 0/25/50/75/100 scale."""
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    return (v - 1.0) * 25.0


def score(
    measurements: pd.DataFrame,
    instrument: str | Instrument,
    *,
    scales: Sequence[str] | None = None,
    score15_reverse: Literal["strengths", "difficulties", "none"] = "strengths",
    cbi_coding: Literal["0-100", "1-5"] = "0-100",
    custom: Mapping[str, Instrument] | None = None,
    file: str = "measurements",
) -> pd.DataFrame:
    """Score item responses for one instrument.

    Parameters
    ----------
    measurements : DataFrame
        Rows of one instrument with columns ``item_1 … item_k`` (and ``total`` for
        ORS/SRS); other columns are carried over (``entity_id``, ``timepoint``...).
    instrument : str or Instrument
        ``SCORE-15``, ``WEMWBS``, ``SWEMWBS``, ``CBI``, ``RCADS``, ``ORS``, ``SRS`` or custom.
    scales : sequence of str, optional
        Scales to return (default all).
    score15_reverse : {"strengths", "difficulties", "none"}
        Declared SCORE-15 coding direction: which items to reverse (default the
        strengths items, so higher = more difficulties; see ``docs/scoring.md``).
    cbi_coding : {"0-100", "1-5"}
        How CBI answers are entered.
    custom : mapping, optional
        Custom instruments by id.
    file : str
        Name of the input, used in problem paths.

    Returns
    -------
    DataFrame
        The carried-over id columns, ``n_answered`` and one column per scale
        (missing when the prorating rule is not met), index as the input.

    Raises
    ------
    DataError
        When a response is not a number or breaks the item rule (the rules of
        ``validate``, :func:`item_problems`); every such cell is listed.
    """
    inst = entered_instrument(
        instrument, custom=custom, score15_reverse=score15_reverse, cbi_coding=cbi_coding
    )
    problems = item_problems(measurements, inst, file=file)
    if problems:
        raise DataError(
            f"{file}: {len(problems)} problem(s) with the {inst.id} item responses",
            [p.to_problem() for p in problems],
        )
    items, inst = to_published_scale(item_matrix(measurements, inst.n_items), inst)
    res = score_matrix(items, inst)
    if inst.total_given and "total" in measurements.columns:
        given = convert(measurements["total"], "float")[0].to_numpy(dtype=float, na_value=np.nan)
        res["total"] = np.where(np.isnan(res["total"]), given, res["total"])
    wanted = list(scales) if scales is not None else list(inst.scale_names)
    unknown = [s for s in wanted if s not in res]
    if unknown:
        raise DataError.from_problem(
            path=f"instrument {inst.id}",
            code="scoring.unknown_scale",
            message=f"scale must be one of {', '.join(inst.scale_names)}; got {unknown[0]!r}",
            hint="see docs/scoring.md for each instrument's scales",
        )
    keep = [
        c
        for c in ("entity_id", "level", "instrument", "timepoint", "date")
        if c in measurements.columns
    ]
    out = measurements[keep].copy()
    out["n_answered"] = res["n_answered"].astype(int)
    for s in wanted:
        out[s] = res[s]
    return out


# ----------------------------------------------------------------------------- extras
def clinical_cutoff(instrument: str, age: float | np.ndarray | None = None) -> float | np.ndarray:
    """Commonly cited clinical cutoffs: ORS 25 (adult), 28 (13–17), 32 (6–12); SRS 36.

    Returns NaN for ORS ages under 6 (no cutoff).  Totals *below* the cutoff are in
    the clinical range (ORS) or flag a weak alliance (SRS).
    """
    if instrument == "SRS":
        return 36.0
    if instrument != "ORS":
        raise DataError.from_problem(
            path=f"instrument {instrument}",
            code="scoring.no_cutoff",
            message=f"clinical cutoffs are defined for ORS and SRS; got {instrument!r}",
            hint="use ORS or SRS",
        )
    if age is None:
        return 25.0
    a = np.asarray(age, dtype=float)
    out = np.where(a >= 18, 25.0, np.where(a >= 13, 28.0, np.where(a >= 6, 32.0, np.nan)))
    out = np.where(np.isnan(a), 25.0, out)
    return float(out) if out.ndim == 0 else out


def reliable_change(
    pre: np.ndarray | Sequence[float],
    post: np.ndarray | Sequence[float],
    *,
    sd_pre: float,
    reliability: float,
    better: Literal["higher", "lower"] = "higher",
    cutoff: float | np.ndarray | None = None,
    criterion: float = 1.959963984540054,
) -> pd.DataFrame:
    """Reliable and clinically significant change (Jacobson & Truax 1991).

    Parameters
    ----------
    pre, post : array-like
        Scores at the two timepoints (same person per position).
    sd_pre : float
        Standard deviation of pre scores (sample or normative).
    reliability : float
        Test–retest or internal-consistency reliability ``r`` in (0, 1).
    better : {"higher", "lower"}
    cutoff : float or array, optional
        Clinical cutoff; clinically significant improvement = reliable improvement
        and moving from the clinical to the non-clinical side of the cutoff.
    criterion : float
        |RC| threshold (1.96).

    Returns
    -------
    DataFrame
        ``change, rc, reliable, direction`` (``improved``, ``deteriorated``,
        ``no reliable change``, missing) and, with a cutoff, ``clinically_significant``.

    Notes
    -----
    :math:`SE = SD_{pre}\\sqrt{1-r}`, :math:`S_{diff} = \\sqrt{2}\\,SE`,
    :math:`RC = (x_{post}-x_{pre})/S_{diff}`.
    """
    if not (0 < reliability < 1) or not sd_pre > 0:
        raise DataError.from_problem(
            path="reliable_change",
            code="scoring.rci_parameters",
            message=f"reliability must be in (0, 1) and sd_pre > 0; got {reliability}, {sd_pre}",
            hint="pass the instrument's reliability and the baseline SD",
        )
    a = np.asarray(pre, dtype=float)
    b = np.asarray(post, dtype=float)
    s_diff = math.sqrt(2.0) * sd_pre * math.sqrt(1.0 - reliability)
    change = b - a
    rc = change / s_diff
    sign = 1.0 if better == "higher" else -1.0
    improved = sign * rc > criterion
    worse = sign * rc < -criterion
    missing = np.isnan(rc)
    direction = np.where(
        improved, "improved", np.where(worse, "deteriorated", "no reliable change")
    )
    out = pd.DataFrame(
        {
            "change": change,
            "rc": rc,
            "reliable": pd.array(np.where(missing, None, np.abs(rc) > criterion), dtype="boolean"),  # type: ignore[call-overload]
            "direction": pd.array(np.where(missing, None, direction), dtype="string"),  # type: ignore[call-overload]
        }
    )
    if cutoff is not None:
        c = np.asarray(cutoff, dtype=float)
        if better == "higher":
            crossed = (a < c) & (b >= c)
        else:
            crossed = (a > c) & (b <= c)
        out["clinically_significant"] = pd.array(
            np.where(missing, None, crossed & improved), dtype="boolean"
        )
    return out


def rcads_tscores(scores: pd.DataFrame, norms: pd.DataFrame) -> pd.DataFrame:
    """RCADS T-scores ``50 + 10·(raw − mean)/sd`` from a user-supplied norms table.

    Parameters
    ----------
    scores : DataFrame
        Raw scale columns (from :func:`score`) plus the grouping columns the
        norms use (e.g. ``grade``, ``sex``).
    norms : DataFrame
        Columns ``scale``, ``mean``, ``sd`` and any grouping columns.

    Returns
    -------
    DataFrame
        ``t_<scale>`` for every scale in the norms; missing where no norm matches.
    """
    need = {"scale", "mean", "sd"}
    if not need <= set(norms.columns):
        raise DataError.from_problem(
            path="norms",
            code="scoring.norms_columns",
            message=f"norms table must have columns scale, mean, sd; got {list(norms.columns)}",
            hint="one row per scale (and group) with the normative mean and SD",
        )
    keys = [c for c in norms.columns if c not in need]
    missing_keys = [k for k in keys if k not in scores.columns]
    if missing_keys:
        raise DataError(
            "norms grouping columns missing from scores",
            [
                Problem(
                    path=f"scores column {k}",
                    code="scoring.norms_group_missing",
                    message=f"scores must carry the norms grouping column '{k}'",
                    hint="merge the respondent's grade/sex into the scores first",
                )
                for k in missing_keys
            ],
        )
    out = pd.DataFrame(index=scores.index)
    for scale, sub in norms.groupby("scale", sort=True):
        if scale not in scores.columns:
            continue
        if keys:
            m = scores[keys].merge(sub[keys + ["mean", "sd"]], on=keys, how="left")
            mean = m["mean"].to_numpy(dtype=float)
            sd = m["sd"].to_numpy(dtype=float)
        else:
            mean = np.full(len(scores), float(sub["mean"].iloc[0]))
            sd = np.full(len(scores), float(sub["sd"].iloc[0]))
        raw = pd.to_numeric(scores[scale], errors="coerce").to_numpy(dtype=float)
        out[f"t_{scale}"] = 50.0 + 10.0 * (raw - mean) / sd
    return out


register_check("data.outcome_scores", check_outcome_scores)
