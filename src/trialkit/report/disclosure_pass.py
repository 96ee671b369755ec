"""One disclosure pass over everything the report publishes.

:func:`apply_disclosure` runs once, after every section is built and before
anything is rendered or exported.  It gathers the facts (counts and ratios of
people, :mod:`trialkit.report.published`) behind every token in the tables,
figures and text, decides what to publish with :func:`decide_disclosure`, writes
the protected value in place of every token (so HTML, Markdown, CSV, xlsx and
SVG print the same thing) and proves the result with :func:`attack_published`.

Rules (settings: :class:`~trialkit.report.disclosure.DisclosureSettings`)
------------------------------------------------------------------------
1. *Primary suppression.*  A count of people ``n`` with ``1 <= n < threshold``
   is suppressed (``c``) when it is an LA-level count: an LA's own count, or a
   total over fewer than ``min_las_for_totals`` LAs (an arm of a small trial).
   In strict mode (threshold at least 10) every count of people is, and so is a
   count of people with a characteristic (a baseline category) at any level.
   Zeros are published.
2. *Shares.*  A ratio whose numerator or denominator is such a count is
   suppressed: "0 of 2 Champions" discloses the 2.  An exact ratio also
   discloses its denominator (1/33 prints as 0.0303, and nothing else below 100
   does), so a published ratio counts as publishing both its counts.
3. *The attack.*  Every published count and every exact ratio's counts are
   linear forms over the same atoms (the ledger's finest groups of people); a
   suppressed count is recoverable when its form lies in their row space
   (:func:`~trialkit.report.disclosure.recoverable_forms`).  While some
   suppressed count is recoverable, one of the published numbers used to recover
   it is withdrawn: a ratio is coarsened (one decimal: no longer an exact
   fraction), else the smallest LA-level count is suppressed, totals last
   (complementary suppression across tables; Hundepool et al. 2012, ch. 4).

References
----------
Hundepool A et al. Statistical Disclosure Control. Wiley, 2012.
Office for National Statistics. Disclosure control guidance for tables produced
from surveys and administrative sources, 2021.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd

from trialkit.errors import ReportError
from trialkit.report.disclosure import (
    SUPPRESSED,
    DisclosureSettings,
    _row_space,
    recoverable_forms,
)
from trialkit.report.published import TOKEN, Count, Fact, Ratio, token_key

__all__ = [
    "DisclosureDecision",
    "apply_disclosure",
    "attack_published",
    "collect_facts",
    "decide_disclosure",
]

Status = Literal["published", "suppressed", "coarsened"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DisclosureDecision:
    """What the pass decided for every fact of the report.

    ``primary``: facts suppressed for being small (or a share of a small count);
    ``secondary``: counts suppressed so that no suppressed count can be worked
    out; ``coarsened``: ratios published to one decimal for the same reason.
    """

    settings: DisclosureSettings
    facts: Mapping[str, Fact]
    primary: frozenset[str]
    secondary: frozenset[str]
    coarsened: frozenset[str]
    tokens: Mapping[str, str] = field(default_factory=dict)

    def by_token(self, key: str) -> str | None:
        """The fact id behind a token key (None when no fact has it)."""
        return _keys(self).get(key)

    def status(self, fid: str) -> Status:
        if fid in self.primary or fid in self.secondary:
            return "suppressed"
        if fid in self.coarsened:
            return "coarsened"
        return "published"

    def display(self, fid: str) -> str:
        """The text printed for a fact."""
        fact = self.facts[fid]
        status = self.status(fid)
        if status == "suppressed":
            return SUPPRESSED
        if status == "coarsened" and isinstance(fact, Ratio):
            return fact.coarse()
        return fact.display()

    def value(self, fid: str) -> Any:
        """The typed value for an export cell: a number, the marker or the coarse text."""
        fact = self.facts[fid]
        status = self.status(fid)
        if status == "published":
            return fact.value
        return self.display(fid)

    def note(self, ids: Iterable[str] = ()) -> str:
        """A table's disclosure note over its facts ``ids`` (all facts when empty)."""
        ids = list(ids) or list(self.facts)
        prim = sum(1 for i in ids if i in self.primary)
        sec = sum(1 for i in ids if i in self.secondary)
        coarse = sum(1 for i in ids if i in self.coarsened)
        head = f"Disclosure control ({self.settings.mode}, counts 1–{self.settings.threshold - 1} "
        head += f"shown as '{SUPPRESSED}'"
        head += "" if self.settings.mode == "strict" else " at LA level"
        head += "): "
        if not (prim or sec or coarse):
            return head + (
                "nothing in this table needed suppression; checked against every number "
                "published in the report."
            )
        parts = []
        if prim:
            parts.append(f"{prim} small count(s) or share(s) of small counts suppressed")
        if sec:
            parts.append(f"{sec} further count(s) suppressed")
        if coarse:
            parts.append(f"{coarse} share(s) rounded to one decimal")
        return (
            head
            + "; ".join(parts)
            + ", so that no suppressed value can be worked out from the numbers published "
            "anywhere in the report."
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per fact: id, kind, value, LAs behind it, status."""
        return pd.DataFrame(
            [
                {
                    "id": fid,
                    "kind": "ratio" if isinstance(f, Ratio) else "count",
                    "value": f.value,
                    "n_la": f.n_la,
                    "people": f.people,
                    "status": self.status(fid),
                    "label": f.label,
                }
                for fid, f in sorted(self.facts.items())
            ],
            columns=["id", "kind", "value", "n_la", "people", "status", "label"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.settings.mode,
            "threshold": self.settings.threshold,
            "min_las_for_totals": self.settings.min_las_for_totals,
            "n_facts": len(self.facts),
            "primary": sorted(self.primary),
            "secondary": sorted(self.secondary),
            "coarsened": sorted(self.coarsened),
            "recoverable": list(attack_published(self)),
        }

    def summary(self) -> str:
        return (
            f"disclosure ({self.settings.mode}): {len(self.facts)} published numbers of people; "
            f"{len(self.primary)} suppressed as small, {len(self.secondary)} suppressed to "
            f"protect them, {len(self.coarsened)} shares coarsened"
        )


# ---------------------------------------------------------------------------- rules
def _small(c: Count, settings: DisclosureSettings) -> bool:
    if not c.people or not (1 <= c.value < settings.threshold):
        return False
    return settings.mode == "strict" or c.attribute or c.n_la < settings.min_las_for_totals


def _implied(fact: Fact) -> bool:
    """A count that is never printed (it follows from printed ones): protected, not published."""
    return isinstance(fact, Count) and fact.implied


def _parts(fact: Fact) -> list[Count]:
    return [fact.numerator, fact.denominator] if isinstance(fact, Ratio) else [fact]


class _System:
    """The linear forms of the facts over one atom index."""

    def __init__(self, facts: Mapping[str, Fact]) -> None:
        atoms = sorted({a for f in facts.values() for c in _parts(f) for a, _ in c.terms})
        self.index = {a: k for k, a in enumerate(atoms)}
        self.k = len(atoms)

    def form(self, c: Count) -> np.ndarray:
        v = np.zeros(self.k, dtype=np.int64)
        for a, coef in c.terms:
            v[self.index[a]] += coef
        return v


def _published_forms(
    facts: Mapping[str, Fact], hidden: set[str], coarse: set[str], system: _System
) -> tuple[list[str], np.ndarray]:
    owners: list[str] = []
    rows: list[np.ndarray] = []
    for fid in sorted(facts):
        if fid in hidden or fid in coarse or _implied(facts[fid]):
            continue
        for c in _parts(facts[fid]):
            if c.people and c.terms:
                owners.append(fid)
                rows.append(system.form(c))
    return owners, (np.array(rows) if rows else np.zeros((0, system.k), dtype=np.int64))


def _protected(
    facts: Mapping[str, Fact], hidden: set[str], settings: DisclosureSettings
) -> list[tuple[str, Count]]:
    out: list[tuple[str, Count]] = []
    for fid in sorted(hidden):
        f = facts[fid]
        if isinstance(f, Ratio):
            out += [(fid, c) for c in _parts(f) if _small(c, settings)]
        elif f.people:
            out.append((fid, f))
    return out


def _cost(f: Fact, settings: DisclosureSettings) -> tuple[int, int, int, int, str]:
    """Shares first, then LA-level counts, then totals; smallest non-zero value first."""
    if isinstance(f, Ratio):
        return (0, 0, 0, 0, f.id)
    la_level = f.n_la < settings.min_las_for_totals
    return (1, int(not la_level), int(f.value == 0), f.value, f.id)


def _atoms(c: Count) -> frozenset[str]:
    return frozenset(a for a, coef in c.terms if coef)


def _pick(
    exposed: Count,
    used: set[str],
    facts: Mapping[str, Fact],
    published: Iterable[str],
    settings: DisclosureSettings,
) -> Fact:
    """The published fact to withdraw so that ``exposed`` is no longer determined.

    A share is coarsened first (cheapest).  Otherwise, like complementary
    suppression in one table, the smallest sibling of the exposed count under its
    narrowest published total (the other cells of the same LA's row, then of the
    same arm, ...) among the numbers used to recover it; else the cheapest of them.
    """
    candidates = [facts[u] for u in sorted(used)]
    ratios = [f for f in candidates if isinstance(f, Ratio)]

    def cost(f: Fact) -> tuple[int, int, int, int, str]:
        return _cost(f, settings)

    if ratios:
        return min(ratios, key=cost)
    mine = _atoms(exposed)
    totals = sorted(
        (
            f
            for fid in published
            if isinstance(f := facts[fid], Count) and f.people and mine < _atoms(f)
        ),
        key=lambda f: (f.n_la, len(f.terms), f.id),
    )
    for total in totals:
        inside = _atoms(total)
        siblings = [
            f
            for f in candidates
            if isinstance(f, Count) and _atoms(f) <= inside and not (_atoms(f) & mine)
        ]
        if siblings:
            return min(siblings, key=cost)
    return min(candidates, key=cost)


def _component(P: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``P`` and columns linked to the atoms of ``H`` (the rest cannot matter)."""
    cols = np.any(H != 0, axis=0)
    rows = np.zeros(P.shape[0], dtype=bool)
    while True:
        new_rows = np.any(P[:, cols] != 0, axis=1) if P.shape[0] else rows
        new_cols = cols | (np.any(P[new_rows] != 0, axis=0) if new_rows.any() else cols)
        if (new_rows == rows).all() and (new_cols == cols).all():
            return np.flatnonzero(rows), np.flatnonzero(cols)
        rows, cols = new_rows, new_cols


def decide_disclosure(
    facts: Mapping[str, Fact], settings: DisclosureSettings
) -> DisclosureDecision:
    """Primary suppression, then complementary suppression and coarsening until safe.

    Parameters
    ----------
    facts : mapping of id -> Count or Ratio
        Every number of people the report publishes.
    settings : DisclosureSettings

    Returns
    -------
    DisclosureDecision
        Its :func:`attack_published` is empty: no suppressed count is determined by
        the published counts and exact ratios.
    """
    primary = {
        fid
        for fid, f in facts.items()
        if any(_small(c, settings) for c in _parts(f)) and (isinstance(f, Ratio) or f.people)
    }
    hidden = set(primary)
    coarse: set[str] = set()
    system = _System(facts)
    for _ in range(10 * len(facts) + 10):
        protect = _protected(facts, hidden, settings)
        if not protect:
            break
        owners, P = _published_forms(facts, hidden, coarse, system)
        H = np.array([system.form(c) for _, c in protect])
        rows, cols = _component(P, H)
        P, H = P[np.ix_(rows, cols)], H[:, cols]
        owners = [owners[k] for k in rows]
        if not P.shape[0]:
            break
        space = _row_space(P)
        exposed = np.flatnonzero(~np.any(space.residual(H) != 0, axis=1))
        if not len(exposed):
            break
        y = space.combination(H[exposed[0]])
        used = {owners[k] for k in np.flatnonzero(y)}
        if not used:  # pragma: no cover - a determined form always has a support
            raise ReportError.from_problem(
                path="report disclosure",
                code="report.disclosure_internal",
                message="a suppressed count is determined by nothing published",
            )
        published = [
            fid
            for fid in facts
            if fid not in hidden and fid not in coarse and not _implied(facts[fid])
        ]
        pick = _pick(protect[exposed[0]][1], used, facts, published, settings)
        if isinstance(pick, Ratio):
            coarse.add(pick.id)
        else:
            hidden.add(pick.id)
    else:  # pragma: no cover - each round withdraws one fact, so the loop ends
        raise ReportError.from_problem(
            path="report disclosure",
            code="report.disclosure_internal",
            message="the disclosure pass did not converge",
        )
    _republish(facts, hidden, primary, coarse, settings, system)
    return DisclosureDecision(
        settings=settings,
        facts=dict(facts),
        primary=frozenset(primary),
        secondary=frozenset(hidden - primary),
        coarsened=frozenset(coarse),
        tokens={token_key(fid): fid for fid in facts},
    )


def _safe(
    facts: Mapping[str, Fact],
    hidden: set[str],
    coarse: set[str],
    settings: DisclosureSettings,
    system: _System,
) -> bool:
    protect = _protected(facts, hidden, settings)
    if not protect:
        return True
    owners, P = _published_forms(facts, hidden, coarse, system)
    H = np.array([system.form(c) for _, c in protect])
    rows, cols = _component(P, H)
    return not recoverable_forms(P[np.ix_(rows, cols)], H[:, cols]).any()


def _republish(
    facts: Mapping[str, Fact],
    hidden: set[str],
    primary: set[str],
    coarse: set[str],
    settings: DisclosureSettings,
    system: _System,
) -> None:
    """Undo withdrawals that turned out unnecessary (greedy choices made early).

    Each complementary suppression, then each coarsening, most informative first
    (totals, large counts), is tried back: it stays published when the attack still
    finds nothing.  ``hidden`` and ``coarse`` are updated in place.
    """
    for fid in sorted(hidden - primary, key=lambda i: _cost(facts[i], settings), reverse=True):
        hidden.discard(fid)
        if not _safe(facts, hidden, coarse, settings, system):
            hidden.add(fid)
    for fid in sorted(coarse):
        coarse.discard(fid)
        if not _safe(facts, hidden, coarse, settings, system):
            coarse.add(fid)


def attack_published(decision: DisclosureDecision) -> tuple[str, ...]:
    """Ids of suppressed facts an attacker can recover from everything published.

    The attacker knows every published count, both counts behind every exact
    ratio, and how counts add up (their atoms); any linear combination may be
    used.  Empty when the decision is safe.
    """
    facts = decision.facts
    hidden = set(decision.primary) | set(decision.secondary)
    protect = _protected(facts, hidden, decision.settings)
    if not protect:
        return ()
    system = _System(facts)
    _, P = _published_forms(facts, hidden, set(decision.coarsened), system)
    H = np.array([system.form(c) for _, c in protect])
    found = recoverable_forms(P, H)
    return tuple(sorted({fid for (fid, _), hit in zip(protect, found, strict=True) if hit}))


# ---------------------------------------------------------------------------- the pass
R = TypeVar("R")


def collect_facts(report: Any) -> dict[str, Fact]:
    """Every fact of the report's sections and tables (one definition per id)."""
    out: dict[str, Fact] = {}
    for section in report.sections:
        holders: list[Any] = [section, *section.tables]
        for h in holders:
            for fid, f in dict(getattr(h, "facts", {}) or {}).items():
                if fid in out and out[fid] != f:
                    raise ReportError.from_problem(
                        path=f"report disclosure: number '{fid}'",
                        code="report.disclosure_conflict",
                        message="defined twice with different values or people",
                        hint="a number published in two places must be one fact (one id)",
                    )
                out[fid] = f
    return out


def _keys(decision: DisclosureDecision) -> Mapping[str, str]:
    return decision.tokens or {token_key(fid): fid for fid in decision.facts}


def _resolve(text: str, decision: DisclosureDecision, where: str) -> str:
    if "⟦" not in text:
        return text
    keys = _keys(decision)

    def sub(m: Any) -> str:
        fid = keys.get(m.group(1))
        if fid is None:
            raise ReportError.from_problem(
                path=where,
                code="report.disclosure_undeclared",
                message=f"prints a number (token {m.group(0)}) that no table or section declares",
                hint="attach the fact to the table or section that prints it",
            )
        return decision.display(fid)

    return TOKEN.sub(sub, text)


def _resolve_cell(v: Any, decision: DisclosureDecision, where: str, typed: bool) -> Any:
    if not isinstance(v, str) or "⟦" not in v:
        return v
    m = TOKEN.fullmatch(v.strip())
    fid = _keys(decision).get(m.group(1)) if m else None
    if typed and fid is not None:
        return decision.value(fid)
    return _resolve(v, decision, where)


def _resolve_frame(
    frame: pd.DataFrame | None, decision: DisclosureDecision, where: str, *, typed: bool
) -> pd.DataFrame | None:
    if frame is None:
        return None
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            vals = [_resolve_cell(v, decision, f"{where}, column '{col}'", typed) for v in s]
            out[col] = pd.Series(vals, index=out.index, dtype=object)
    out.columns = [_resolve(str(c), decision, where) if "⟦" in str(c) else c for c in out.columns]
    return out


def _texts(xs: Iterable[str], decision: DisclosureDecision, where: str) -> tuple[str, ...]:
    return tuple(_resolve(x, decision, where) for x in xs)


def apply_disclosure(report: R, settings: DisclosureSettings | None = None) -> R:
    """The report with every published number protected, in every output form.

    Parameters
    ----------
    report : Report
        As built by :func:`~trialkit.report.build_report`'s section builders, with
        tokens (``⟦id⟧``) where numbers of people go and their facts attached to
        the tables and sections.
    settings : DisclosureSettings, optional
        Defaults to ``report.disclosure``.

    Returns
    -------
    Report
        Tokens replaced by the published, suppressed (``c``) or coarsened values
        in table frames, typed export data, paragraphs, bullets, figure SVG, alt
        text and captions; tables that print facts get the pass's note; the
        decision summary under ``disclosure_check``.

    Raises
    ------
    ReportError
        ``report.disclosure_undeclared`` for a token without a fact,
        ``report.disclosure_conflict`` for an id defined twice differently, and
        ``report.disclosure_recoverable`` if the final check finds a suppressed
        count that can be worked out (a bug: the pass never returns one).
    """
    rep: Any = report
    settings = settings or rep.disclosure
    facts = collect_facts(rep)
    decision = decide_disclosure(facts, settings)
    leaked = attack_published(decision)
    if leaked:  # pragma: no cover - decide_disclosure guarantees this
        raise ReportError.from_problem(
            path="report disclosure",
            code="report.disclosure_recoverable",
            message="suppressed numbers can be worked out from the report: " + ", ".join(leaked),
        )
    sections = []
    for s in rep.sections:
        where = f"section '{s.title}'"
        tables = []
        for t in s.tables:
            tw = f"table '{t.id}'"
            tfacts = dict(getattr(t, "facts", {}) or {})
            changes: dict[str, Any] = {
                "frame": _resolve_frame(t.frame, decision, tw, typed=False),
                "data": _resolve_frame(t.data, decision, tw, typed=True),
                "caption": _resolve(t.caption, decision, tw),
                "note": (
                    decision.note(tfacts) + (" " + _resolve(t.note, decision, tw) if t.note else "")
                    if tfacts
                    else _resolve(t.note, decision, tw)
                ),
            }
            tables.append(dataclasses.replace(t, **changes))
        figures = [
            dataclasses.replace(
                f,
                svg=_resolve(f.svg, decision, f"figure '{f.id}'"),
                alt=_resolve(f.alt, decision, f"figure '{f.id}'"),
                caption=_resolve(f.caption, decision, f"figure '{f.id}'"),
            )
            for f in s.figures
        ]
        sections.append(
            dataclasses.replace(
                s,
                title=_resolve(s.title, decision, where),
                paragraphs=_texts(s.paragraphs, decision, where),
                bullets=_texts(s.bullets, decision, where),
                pre=_texts(s.pre, decision, where),
                tables=tuple(tables),
                figures=tuple(figures),
            )
        )
    out = dataclasses.replace(
        rep,
        title=_resolve(rep.title, decision, "title"),
        subtitle=_resolve(rep.subtitle, decision, "subtitle"),
        sections=tuple(sections),
        disclosure=settings,
        disclosure_check=decision.to_dict(),
    )
    return out  # type: ignore[no-any-return]
