"""The CONSORT-cluster flow of the report: boxes that add up, and the check that they do.

:func:`consort_flow` turns an analysis's ``flow`` and ``exclusions`` tables into one
column of boxes per arm.  *Main* boxes hold counts (LAs, keyworkers, families, then
each primary outcome's analysed entities); *side* boxes hold the exclusions and losses
between two main boxes, with reasons.  Every count of a main box names the count it
comes from (``from_key``) and every loss names the count it leads to, so

    count = its source count − the losses listed on the way

can be checked for every box (:meth:`ConsortFlow.gaps`); the report refuses to write
a diagram that does not close.  Per arm:

1. allocated: LAs, keyworkers, families referred;
2. excluded at consent: families not consented → families consented;
3. lost to follow-up: families withdrawn (by reason), keyworkers who left post →
   families followed up, keyworkers in post at the end;
4. not analysed, per primary outcome: the reasons of the analysis's exclusions (no
   follow-up measurement, score or baseline missing, a covariate missing), and LAs
   without data or without an analysed entity → analysed, per primary outcome.

An outcome whose analysis keeps entities lost to follow-up (keyworker retention is
recorded for keyworkers who left) starts from the allocated count and lists all its
exclusions instead.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from trialkit.report.wording import plural

__all__ = ["ArmFlow", "Box", "ConsortFlow", "Count", "Loss", "consort_flow"]


_SLOT = "\ue000"  # a character of a count's value while a line is wrapped


@dataclass(frozen=True, slots=True, kw_only=True)
class Count:
    """A count in a main box; ``from_key`` names the count it is derived from (None: shown only).

    ``source`` says what the count counts, for the report's disclosure pass:
    ``("flow", level, stage[, detail])`` a row of the flow table, ``("followed", level)``
    families not withdrawn or keyworkers in post, ``("excluded", outcome, level, reason)``
    an analysis's exclusions, ``("las", ...)`` a derived count of LAs.
    """

    key: str
    label: str
    n: int
    from_key: str | None = None
    source: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Loss:
    """Entities leaving the count ``key`` (of the next main box), for one reason (``source``:
    as :class:`Count`'s)."""

    key: str
    label: str
    n: int
    source: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Box:
    """A box of the diagram: ``main`` (counts) or ``side`` (losses with reasons)."""

    kind: Literal["main", "side"]
    title: str
    counts: tuple[Count, ...] = ()
    losses: tuple[Loss, ...] = ()
    notes: tuple[str, ...] = ()

    def lines(
        self,
        fmt: Callable[[int], str] = str,
        width: int = 52,
        *,
        item_fmt: Callable[[Count | Loss], str] | None = None,
    ) -> list[str]:
        """The box's text: title, then one line per count or loss (wrapped), then notes.

        ``fmt`` formats a count's value; ``item_fmt``, when given, formats each count or
        loss from the item itself (the report prints a disclosure token for its fact).
        """
        out = [self.title]
        show = item_fmt or (lambda item: fmt(item.n))
        items: list[Count | Loss] = [*self.counts, *self.losses]
        for item in items:
            # wrapped as if the value were the count's own digits (a token printed for the
            # disclosure pass is longer than the number, or 'c', that replaces it)
            slot = _SLOT * len(str(item.n))
            wrapped = textwrap.wrap(
                f"{item.label}: {slot}", width=width, subsequent_indent="    "
            ) or [""]
            out += [line.replace(slot, show(item)) for line in wrapped]
        for note in self.notes:
            out += textwrap.wrap(note, width=width, subsequent_indent="    ")
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ArmFlow:
    arm: str
    label: str
    boxes: tuple[Box, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsortFlow:
    """The diagram's content: the top box's lines and one column of boxes per arm."""

    top: tuple[str, ...]
    arms: tuple[ArmFlow, ...]
    gaps_found: tuple[str, ...] = field(default=())

    def gaps(self) -> list[str]:
        """Every count that is not its source count minus the losses listed; empty when it closes."""
        out = list(self.gaps_found)
        for arm in self.arms:
            seen: dict[str, tuple[int, int]] = {}  # key -> (n, box index)
            for b, box in enumerate(arm.boxes):
                if box.kind != "main":
                    continue
                for c in box.counts:
                    if c.n < 0:
                        out.append(f"{arm.label}: '{c.label}' is negative ({c.n})")
                    if c.from_key is not None:
                        if c.from_key not in seen:
                            out.append(f"{arm.label}: '{c.label}' has no source count")
                        else:
                            n0, b0 = seen[c.from_key]
                            lost = sum(
                                x.n
                                for side in arm.boxes[b0 + 1 : b]
                                for x in side.losses
                                if side.kind == "side" and x.key == c.key
                            )
                            if n0 - lost != c.n:
                                out.append(
                                    f"{arm.label}: '{c.label}' is {c.n}, but its source count "
                                    f"({n0}) minus the losses listed ({lost}) is {n0 - lost}"
                                )
                    seen[c.key] = (c.n, b)
            for b, box in enumerate(arm.boxes):
                for x in box.losses:
                    if x.n < 0:
                        out.append(f"{arm.label}: loss '{x.label}' is negative ({x.n})")
                    later = [c for nxt in arm.boxes[b + 1 :] for c in nxt.counts if c.key == x.key]
                    if not later:
                        out.append(f"{arm.label}: loss '{x.label}' leads to no box")
        return out

    def columns(
        self,
        fmt: Callable[[int], str] = str,
        *,
        item_fmt: Callable[[ArmFlow, Count | Loss], str] | None = None,
    ) -> list[tuple[str, list[tuple[str, list[str]]]]]:
        """``(arm label, [(kind, lines), ...])`` for :func:`trialkit.report.diagrams.flow_svg`.

        ``item_fmt(arm, item)``, when given, formats each count or loss (see :meth:`Box.lines`).
        """
        return [
            (
                a.label,
                [
                    (
                        box.kind,
                        box.lines(
                            fmt,
                            item_fmt=None
                            if item_fmt is None
                            else (lambda item, a=a: item_fmt(a, item)),  # type: ignore[misc]
                        ),
                    )
                    for box in a.boxes
                ],
            )
            for a in self.arms
        ]


def _n(flow: pd.DataFrame, arm: str, level: str, stage: str, detail: str | None = None) -> int:
    if not len(flow):
        return 0
    s = flow[(flow["arm"] == arm) & (flow["level"] == level) & (flow["stage"] == stage)]
    if detail is not None:
        s = s[s["detail"] == detail]
    return int(s["n"].sum()) if len(s) else 0


def _short(label: str) -> str:
    """An outcome label without its bracketed instrument detail ('Family functioning')."""
    return label.split(" (")[0]


def _reason_label(reason: str) -> str:
    """An exclusion reason as the diagram words it ('baseline missing (baseline)' → 'baseline
    score missing')."""
    if reason.startswith("baseline missing"):
        return "baseline score missing"
    return reason.replace(" (too few items answered)", ": too few items answered")


def consort_flow(
    flow: pd.DataFrame,
    exclusions: pd.DataFrame,
    protocol: Mapping[str, Any],
    arms: Sequence[str],
) -> ConsortFlow:
    """Build the CONSORT-cluster boxes from an analysis's tables.

    Parameters
    ----------
    flow : DataFrame
        ``arm, level, stage, detail, n`` (the analysis's ``flow``).
    exclusions : DataFrame
        ``stage, entity, reason, arm, n`` (the analysis's ``exclusions``).
    protocol : mapping
        The protocol as JSON (arm and outcome labels, primary outcomes).
    arms : sequence of str
        Arm ids in display order.
    """
    arm_labels = {k: str(v.get("label", k)) for k, v in protocol.get("arms", {}).items()}
    outcomes = [o for o in protocol.get("outcomes", []) if o.get("role") == "primary"]
    has_arm = "arm" in exclusions.columns
    found: list[str] = []
    if not has_arm and len(exclusions):
        found.append(
            "the exclusions table has no arm column (an analysis written by an older "
            "trialkit): re-run trialkit analyse"
        )
    columns: list[ArmFlow] = []
    n_la_total = 0
    for arm in arms:
        lab = arm_labels.get(arm, arm)
        las = _n(flow, arm, "la", "randomised")
        n_la_total += las
        kws = _n(flow, arm, "keyworker", "randomised")
        referred = _n(flow, arm, "family", "randomised")
        boxes: list[Box] = [
            Box(
                kind="main",
                title=f"Allocated to {lab}",
                counts=(
                    Count(key="la", label="LAs", n=las, source=("flow", "la", "randomised")),
                    Count(
                        key="kw",
                        label="Keyworkers",
                        n=kws,
                        source=("flow", "keyworker", "randomised"),
                    ),
                    Count(
                        key="fam",
                        label="Families referred",
                        n=referred,
                        source=("flow", "family", "randomised"),
                    ),
                ),
            )
        ]
        not_consented = _n(flow, arm, "family", "excluded", "not consented")
        boxes.append(
            Box(
                kind="side",
                title="Excluded at consent",
                losses=(
                    Loss(
                        key="fam_c",
                        label="Families not consented",
                        n=not_consented,
                        source=("flow", "family", "excluded", "not consented"),
                    ),
                ),
            )
        )
        boxes.append(
            Box(
                kind="main",
                title="Consented",
                counts=(
                    Count(
                        key="fam_c",
                        label="Families consented",
                        n=_n(flow, arm, "family", "consented"),
                        from_key="fam",
                        source=("flow", "family", "consented"),
                    ),
                ),
            )
        )
        lost = flow[(flow["arm"] == arm) & (flow["stage"] == "lost")] if len(flow) else flow
        withdrawn = lost[(lost["level"] == "family") & lost["detail"].str.startswith("withdrawn")]
        left = lost[lost["level"] == "keyworker"]
        follow_losses = tuple(
            Loss(
                key="fam_f",
                label="Families " + str(r["detail"]).replace("withdrawn: ", "withdrawn (") + ")",
                n=int(r["n"]),
                source=("flow", "family", "lost", str(r["detail"])),
            )
            for _, r in withdrawn.iterrows()
        ) + tuple(
            Loss(
                key="kw_f",
                label=f"Keyworkers who {r['detail']}",
                n=int(r["n"]),
                source=("flow", "keyworker", "lost", str(r["detail"])),
            )
            for _, r in left.iterrows()
        )
        n_withdrawn = int(withdrawn["n"].sum()) if len(withdrawn) else 0
        n_left = int(left["n"].sum()) if len(left) else 0
        consented = _n(flow, arm, "family", "consented")
        boxes.append(
            Box(
                kind="side",
                title="Lost to follow-up",
                losses=follow_losses,
                notes=() if follow_losses else ("none recorded",),
            )
        )
        boxes.append(
            Box(
                kind="main",
                title="Followed up to the end of the trial",
                counts=(
                    Count(
                        key="fam_f",
                        label="Families not withdrawn",
                        n=consented - n_withdrawn,
                        from_key="fam_c",
                        source=("followed", "family"),
                    ),
                    Count(
                        key="kw_f",
                        label="Keyworkers in post",
                        n=kws - n_left,
                        from_key="kw",
                        source=("followed", "keyworker"),
                    ),
                ),
            )
        )
        # ---- per primary outcome: not analysed, then analysed
        side: list[Loss] = []
        main: list[Count] = []
        notes: list[str] = []
        chain_reasons = {
            "family": {"not consented": not_consented}
            | {str(r["detail"]): int(r["n"]) for _, r in withdrawn.iterrows()},
            "keyworker": {"left post": n_left},
        }
        no_data = _n(flow, arm, "la", "lost", "no data received")
        for oc in outcomes:
            oid = str(oc["id"])
            level = str(oc.get("level", "family"))
            name = _short(str(oc.get("label") or oid))
            ex = (
                exclusions[exclusions["stage"] == f"analysis:{oid}"]
                if len(exclusions)
                else exclusions
            )
            if has_arm and len(ex):
                ex = ex[ex["arm"] == arm]
            by_reason = (
                ex.groupby("reason", sort=True)["n"].sum().astype(int).to_dict() if len(ex) else {}
            )
            chain = {k: v for k, v in chain_reasons.get(level, {}).items() if v}
            follows = all(by_reason.get(k, 0) == v for k, v in chain.items())
            key = f"oc:{oid}"
            if follows:
                base = "fam_f" if level == "family" else "kw_f"
                rest = {k: v for k, v in by_reason.items() if k not in chain}
            else:
                base = "fam" if level == "family" else "kw"
                rest = dict(by_reason)
            for reason, n in rest.items():
                side.append(
                    Loss(
                        key=key,
                        label=f"{name}: {_reason_label(str(reason))}",
                        n=int(n),
                        source=("excluded", oid, level, str(reason)),
                    )
                )
            ents = plural(level, 2)
            analysed = _n(flow, arm, level, "analysed", oid)
            main.append(
                Count(
                    key=key,
                    label=f"{name}: {ents} analysed",
                    n=analysed,
                    from_key=base,
                    source=("flow", level, "analysed", oid),
                )
            )
            la_an = _n(flow, arm, "la", "analysed", oid)
            if no_data:
                side.append(
                    Loss(
                        key=f"{key}:la",
                        label=f"{name}: LAs with no data received",
                        n=no_data,
                        source=("flow", "la", "lost", "no data received"),
                    )
                )
            none = las - no_data - la_an
            if none:
                side.append(
                    Loss(
                        key=f"{key}:la",
                        label=f"{name}: LAs with no {level} analysed (every {level} excluded)",
                        n=none,
                        source=("las", oid, "none analysed"),
                    )
                )
            main.append(
                Count(
                    key=f"{key}:la",
                    label=f"{name}: LAs analysed",
                    n=la_an,
                    from_key="la",
                    source=("flow", "la", "analysed", oid),
                )
            )
            if level == "family":
                main.append(
                    Count(
                        key=f"{key}:kw",
                        label=f"{name}: keyworkers of the analysed families",
                        n=_n(flow, arm, "keyworker", "analysed", oid),
                        source=("flow", "keyworker", "analysed", oid),
                    )
                )
            if not follows:
                notes.append(
                    f"{name} is analysed from all {_n_label(level)}, including those lost "
                    "to follow-up"
                )
        losses = tuple(x for x in side if x.n)
        boxes.append(
            Box(
                kind="side",
                title="Not analysed (primary outcomes), with reasons",
                losses=losses,
                notes=tuple(notes) if losses or notes else ("none",),
            )
        )
        boxes.append(Box(kind="main", title="Analysed (primary outcomes)", counts=tuple(main)))
        columns.append(ArmFlow(arm=arm, label=lab, boxes=tuple(boxes)))
    top = (f"Local authorities randomised: {n_la_total}", "(cluster randomisation of LAs)")
    return ConsortFlow(top=top, arms=tuple(columns), gaps_found=tuple(found))


def _n_label(level: str) -> str:
    return "families referred" if level == "family" else "keyworkers"
