"""What each published number counts: the facts the disclosure pass protects.

Every number of the report that counts or divides people is a *fact*:

* :class:`Count` — a count of people (or, with ``people=False``, of LAs or
  sessions), with the *atoms* it adds up: the finest groups of people the report
  knows (``fam:LA01:nc``, the families of LA01 who did not consent; see
  :mod:`trialkit.report.ledger`).  Two counts that add up the same atoms are the
  same number, whichever table prints them; a total is the sum of its parts.
* :class:`Ratio` — a share or rate with its numerator and denominator counts.

Table builders and section builders do not print these numbers: they print a
*token* (:func:`token`, ``⟦id⟧``) and attach the fact to the table or section.
:func:`trialkit.report.disclosure_pass.apply_disclosure` then decides, once for
the whole report, what is published, suppressed (``c``) or coarsened, and writes
the protected value wherever the token appears — table cells, typed exports,
paragraphs, figure labels and their alt text.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "TOKEN",
    "Count",
    "Fact",
    "Ratio",
    "count",
    "facts_of",
    "token",
    "token_key",
]

TOKEN = re.compile(r"⟦(n[0-9a-f]{16})⟧")


@dataclass(frozen=True, slots=True, kw_only=True)
class Count:
    """A published count.

    ``terms`` are the atoms the count adds up, with their coefficients (sorted, so
    that equal counts compare equal); ``n_la`` is the number of LAs behind the
    count (1 for an LA's own count); ``people`` is False for counts of LAs,
    sessions or other things that are not people (never suppressed);
    ``attribute`` marks counts of people *with a characteristic* (baseline
    categories), whose small values are suppressed at any level: a small count of
    a characteristic can identify a person even in an arm total.  ``implied`` marks a
    count that is never printed but follows from printed ones (the people a
    progression criterion did not count: denominator − numerator): the pass protects
    it when it is small and never treats it as published.
    """

    id: str
    value: int
    terms: tuple[tuple[str, int], ...]
    n_la: int
    people: bool = True
    attribute: bool = False
    label: str = ""
    implied: bool = False

    def display(self) -> str:
        return str(self.value)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": "count",
            "value": self.value,
            "n_la": self.n_la,
            "people": self.people,
            "attribute": self.attribute,
            "implied": self.implied,
            "label": self.label,
            "terms": dict(self.terms),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Ratio:
    """A published share or rate ``numerator / denominator``.

    ``text`` is how the exact value is printed (e.g. ``"0.0303"``).  An attacker
    who knows the printed ratio can usually reconstruct the fraction (0.0303 with a
    denominator below 100 can only be 1/33), so the disclosure pass treats an exact
    published ratio as publishing both its numerator and its denominator.
    """

    id: str
    value: float
    numerator: Count
    denominator: Count
    text: str
    coarse_text: str = ""
    label: str = ""

    @property
    def n_la(self) -> int:
        return self.denominator.n_la

    @property
    def people(self) -> bool:
        return self.numerator.people or self.denominator.people

    def display(self) -> str:
        return self.text

    def coarse(self) -> str:
        """The coarsened value: ``coarse_text`` when given, else one decimal ('<0.1' / '>0.9'
        near the ends of a share)."""
        if self.coarse_text:
            return self.coarse_text
        v = self.value
        if not math.isfinite(v):
            return "–"
        if 0 < v < 0.1:
            return "<0.1"
        if 0.9 < v < 1:
            return ">0.9"
        return f"{v:.1f}"

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": "ratio",
            "value": self.value,
            "label": self.label,
            "numerator": self.numerator.to_dict(),
            "denominator": self.denominator.to_dict(),
        }


Fact = Count | Ratio


def count(
    id: str,
    value: int,
    atoms: Iterable[str] | Mapping[str, int],
    *,
    n_la: int,
    people: bool = True,
    attribute: bool = False,
    label: str = "",
    implied: bool = False,
) -> Count:
    """A :class:`Count` of ``atoms`` (each with coefficient 1, or a mapping atom → coefficient)."""
    if isinstance(atoms, Mapping):
        terms: dict[str, int] = {k: int(v) for k, v in atoms.items() if int(v)}
    else:
        terms = {}
        for a in atoms:
            terms[a] = terms.get(a, 0) + 1
    return Count(
        id=id,
        value=int(value),
        terms=tuple(sorted(terms.items())),
        n_la=int(n_la),
        people=people,
        attribute=attribute,
        label=label,
        implied=implied,
    )


def token_key(fid: str) -> str:
    """The opaque key of a fact id inside a token (no word a relabelling could touch)."""
    return "n" + hashlib.sha1(fid.encode("utf-8")).hexdigest()[:16]


def token(fact: Fact) -> str:
    """The placeholder a builder prints for ``fact``; the disclosure pass replaces it."""
    return f"⟦{token_key(fact.id)}⟧"


def facts_of(facts: Iterable[Fact]) -> dict[str, Fact]:
    """Facts by id (for a table's or section's ``facts``)."""
    return {f.id: f for f in facts}
