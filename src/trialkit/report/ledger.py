"""The people behind the report's counts: one set of atoms for every table.

The disclosure pass can only see that Table 2.3's "not consented 107" is the
total of Table 2.2's hidden LA cells if both are written over the same
variables.  :class:`PeopleLedger` names those variables (*atoms*), the finest
groups of people the analysis knows, and writes each published count as a sum of
them:

=========================  ======================================================
atom                       people
=========================  ======================================================
``fam:<LA>:nc``            families referred in the LA who did not consent
``fam:<LA>:wd:<reason>``   consented families of the LA who withdrew for the reason
``fam:<LA>:cont``          consented families of the LA who continued
``kw:<LA>:left``           keyworkers of the LA who left post
``kw:<LA>:stay``           keyworkers of the LA who stayed
``ex:<arm>:<o>:<reason>``  entities of the arm not analysed for outcome ``o``
``flow:<arm>:<key>``       any other flow count of the arm (measured at a timepoint)
``ind:<LA>:<id>:num``      numerator of a fidelity indicator of people in the LA
``den:<LA>:<level>:<n>``   a denominator of people that is no other count of the LA
``miss:<arm>:<o>:<tp>``    eligible entities of the arm without a score for ``o`` at ``tp``
``feas:<id>:<arm>:num``    a progression criterion's numerator that is no other count
=========================  ======================================================

A family outcome's analysed count is then ``continued − Σ other exclusions`` of
its arm (and a keyworker outcome's ``keyworkers − left post − Σ other``), when
the trial-wide accounting closes (analysed + excluded = referred); otherwise it
is its own atom.  Counts the ledger cannot place get an atom of their own: then
only the threshold protects them, never the linear attack (a known limit, said
in ``docs/report.md``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, MutableMapping, Sequence

import pandas as pd

from trialkit.analyse.trial_analysis import TrialAnalysis
from trialkit.report.published import Count, Fact, Ratio, count, token

__all__ = ["PeopleLedger"]

_WD = "withdrawn: "
_NUM = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"
_DELIVERED = re.compile(rf"(?<![\w.])(ind\.[\w.-]+) delivered ({_NUM})")
_SHORT = re.compile(r"([^;:]+?) fell short of the plan in [^:;]+: ((?:[^;()]+ \([^()]*\)(?:, )?)+)")
_LA_OF = re.compile(rf"([^,()]+?) \(({_NUM}) of ({_NUM})\)")


def _f(x: object) -> float:
    try:
        return float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


class PeopleLedger:
    """Atoms and counts for one analysis (see the module docstring)."""

    def __init__(self, analysis: TrialAnalysis) -> None:
        self.analysis = analysis
        lc = analysis.table("la_counts")
        self.la_counts = lc
        self.la_arm: dict[str, str] = (
            dict(zip(lc["la_id"].astype(str), lc["arm"].astype(str), strict=True))
            if len(lc)
            else {}
        )
        flow = analysis.table("flow")
        self.flow = flow
        if not self.la_arm and len(flow):
            # no LA table: LAs only as numbers per arm; atoms per arm then
            for arm in flow["arm"].astype(str).unique():
                self.la_arm[f"{arm}-LAs"] = arm
        self.arms = list(dict.fromkeys(self.la_arm.values()))
        self.reasons: dict[str, list[str]] = {}
        for arm in self.arms:
            details: list[str] = []
            if len(flow):
                sel = (flow["arm"] == arm) & (flow["level"] == "family") & (flow["stage"] == "lost")
                details = [str(d) for d in flow.loc[sel, "detail"]]
            self.reasons[arm] = [d[len(_WD) :] for d in details if d.startswith(_WD)] or [""]
        self._closes = self._accounting_closes()

    # ------------------------------------------------------------------ atoms
    def las(self, arm: str | None = None) -> list[str]:
        return [la for la, a in self.la_arm.items() if arm is None or a == arm]

    def n_la(self, arm: str | None = None) -> int:
        """LAs behind a count of ``arm`` (all arms when None), from the flow when it has them."""
        if len(self.flow):
            s = self.flow[(self.flow["level"] == "la") & (self.flow["stage"] == "randomised")]
            if arm is not None:
                s = s[s["arm"] == arm]
            if len(s):
                return int(s["n"].sum())
        return len(self.las(arm))

    def _withdrew(self, la: str, reason: str | None = None) -> list[str]:
        reasons = self.reasons.get(self.la_arm.get(la, ""), [""])
        return [f"fam:{la}:wd:{r}" for r in reasons if reason is None or r == reason]

    def family_atoms(self, la: str, status: str) -> list[str]:
        """Atoms of an LA's families: ``not_consented``, ``withdrew``, ``continued``,
        ``consented`` or ``referred``."""
        parts = {
            "not_consented": [f"fam:{la}:nc"],
            "withdrew": self._withdrew(la),
            "continued": [f"fam:{la}:cont"],
        }
        parts["consented"] = parts["withdrew"] + parts["continued"]
        parts["referred"] = parts["not_consented"] + parts["consented"]
        return parts[status]

    def keyworker_atoms(self, la: str, status: str = "all") -> list[str]:
        return {
            "left": [f"kw:{la}:left"],
            "stay": [f"kw:{la}:stay"],
            "all": [f"kw:{la}:left", f"kw:{la}:stay"],
        }[status]

    # ------------------------------------------------------------------ counts
    def la_count(self, la: str, status: str, value: int) -> Count:
        """An LA's count of families (Table 2.2)."""
        return count(
            f"families/{la}/{status}",
            value,
            self.family_atoms(la, status),
            n_la=1,
            label=f"families of {la}: {status}",
        )

    def total_count(self, status: str, value: int, arm: str | None = None) -> Count:
        """Families of every LA (of ``arm``) with ``status``."""
        atoms = [a for la in self.las(arm) for a in self.family_atoms(la, status)]
        return count(
            f"families/{arm or 'all'}/{status}",
            value,
            atoms,
            n_la=self.n_la(arm),
            label=f"families ({arm or 'all arms'}): {status}",
        )

    def _analysed_terms(self, arm: str, level: str, outcome: str) -> dict[str, int] | None:
        if not self._closes.get((level, outcome)):
            return None
        terms: dict[str, int] = {}
        for la in self.las(arm):
            base = (
                self.family_atoms(la, "continued")
                if level == "family"
                else self.keyworker_atoms(la, "stay")
            )
            for a in base:
                terms[a] = terms.get(a, 0) + 1
        for reason in self._other_reasons(outcome):
            key = f"ex:{arm}:{outcome}:{reason}"
            terms[key] = terms.get(key, 0) - 1
        return terms

    def flow_count(self, arm: str, level: str, stage: str, detail: str, value: int) -> Count:
        """A row of the flow table (Table 2.1, the CONSORT figure) for one arm."""
        fid = f"flow/{arm}/{level}/{stage}/{detail}"
        n_la = self.n_la(arm)
        las = self.las(arm)
        atoms: list[str] | dict[str, int] | None = None
        if level == "la":
            return count(fid, value, [fid], n_la=n_la, people=False, label=fid)
        if level == "family" and stage == "randomised":
            atoms = [a for la in las for a in self.family_atoms(la, "referred")]
        elif level == "family" and stage == "consented":
            atoms = [a for la in las for a in self.family_atoms(la, "consented")]
        elif level == "family" and stage in ("excluded", "lost") and detail == "not consented":
            atoms = [a for la in las for a in self.family_atoms(la, "not_consented")]
        elif level == "family" and stage == "lost" and detail.startswith(_WD):
            atoms = [a for la in las for a in self._withdrew(la, detail[len(_WD) :])]
        elif level == "keyworker" and stage == "randomised":
            atoms = [a for la in las for a in self.keyworker_atoms(la)]
        elif level == "keyworker" and stage == "lost":
            atoms = [a for la in las for a in self.keyworker_atoms(la, "left")]
        elif stage == "analysed" and level in ("family", "keyworker"):
            atoms = self._analysed_terms(arm, level, detail)
        if atoms is None:
            atoms = [f"flow:{arm}:{level}:{stage}:{detail}"]
        return count(fid, value, atoms, n_la=n_la, label=f"{level} {stage} {detail} ({arm})")

    def analysed_count(self, arm: str, outcome: str, value: int) -> Count:
        """An arm's number analysed for ``outcome`` as printed outside Table 2.1.

        The same fact (same id) as Table 2.1's "analysed" cell when the flow has a row
        with this value, so that a count suppressed there is suppressed everywhere.
        """
        flow = self.flow
        if len(flow):
            s = flow[
                (flow["arm"] == arm)
                & (flow["stage"] == "analysed")
                & (flow["detail"].astype(str) == outcome)
                & flow["level"].isin(["family", "keyworker"])
                & (flow["n"] == value)
            ]
            if len(s):
                return self.flow_count(arm, str(s["level"].iloc[0]), "analysed", outcome, value)
        return count(
            f"analysed/{arm}/{outcome}/{value}",
            value,
            [f"analysed:{arm}:{outcome}:{value}"],
            n_la=self.n_la(arm),
            label=f"analysed for {outcome} ({arm})",
        )

    def events_share(self, arm: str, outcome: str, events: int, n: int, text: str) -> Ratio:
        """A binary outcome's events among the analysed of an arm ("37 (77.1%)")."""
        return Ratio(
            id=f"events/{arm}/{outcome}/{n}",
            value=events / n if n else math.nan,
            numerator=count(
                f"events/{arm}/{outcome}/{n}/n",
                events,
                [f"events:{arm}:{outcome}:{n}"],
                n_la=self.n_la(arm),
                label=f"events for {outcome} ({arm})",
            ),
            denominator=self.analysed_count(arm, outcome, n),
            text=text,
            coarse_text=f"about {10 * round(10 * events / n):.0f}%" if n else "–",
            label=f"events for {outcome} ({arm})",
        )

    def analysed_total(self, outcome: str, value: int) -> Count:
        """The number analysed for ``outcome`` over both arms (Tables 1.1, 6.2, 8.1).

        The sum of the arms' :meth:`analysed_count` facts when they add up to
        ``value`` (so a total and one arm's count give the other arm's count, and the
        attack sees it); otherwise a count of its own (a sensitivity analysis that
        analyses another set of entities).
        """
        flow = self.flow
        parts: list[Count] = []
        if len(flow):
            for arm in self.arms:
                s = flow[
                    (flow["arm"] == arm)
                    & (flow["stage"] == "analysed")
                    & (flow["detail"].astype(str) == outcome)
                    & flow["level"].isin(["family", "keyworker"])
                ]
                if len(s) == 1:
                    parts.append(self.analysed_count(arm, outcome, int(s["n"].iloc[0])))
        if parts and len(parts) == len(self.arms) and sum(c.value for c in parts) == value:
            terms: dict[str, int] = {}
            for c in parts:
                for atom, coef in c.terms:
                    terms[atom] = terms.get(atom, 0) + coef
            atoms: Mapping[str, int] | list[str] = terms
        else:
            atoms = [f"analysed:all:{outcome}:{value}"]
        return count(
            f"analysed/all/{outcome}/{value}",
            value,
            atoms,
            n_la=self.n_la(),
            label=f"analysed for {outcome} (both arms)",
        )

    def followed_count(self, arm: str, level: str, value: int) -> Count:
        """An arm's families not withdrawn or keyworkers in post (CONSORT follow-up box)."""
        atoms = [
            a
            for la in self.las(arm)
            for a in (
                self.family_atoms(la, "continued")
                if level == "family"
                else self.keyworker_atoms(la, "stay")
            )
        ]
        return count(
            f"followed/{arm}/{level}",
            value,
            atoms or [f"followed:{arm}:{level}"],
            n_la=self.n_la(arm),
            label=f"{level} followed up ({arm})",
        )

    def _reason_atoms(self, las: Sequence[str], entity: str, reason: str) -> list[str] | None:
        """Atoms of the LAs' entities excluded for a reason the flow already counts, else None.

        Not consented and withdrawn families and keyworkers who left post are the flow's
        own atoms, so Table 2.3, the CONSORT boxes and the flow publish one set of counts.
        """
        if entity == "family" and reason == "not consented":
            return [a for la in las for a in self.family_atoms(la, "not_consented")]
        if entity == "family" and reason.startswith(_WD):
            return [a for la in las for a in self._withdrew(la, reason[len(_WD) :])]
        if entity == "keyworker" and reason.startswith("left post"):
            return [a for la in las for a in self.keyworker_atoms(la, "left")]
        return None

    def arm_exclusion_count(
        self, arm: str, outcome: str, entity: str, reason: str, value: int
    ) -> Count:
        """An arm's entities not analysed for ``outcome`` for ``reason`` (CONSORT boxes).

        Over the same atoms as Table 2.3's trial-wide row (the sum over arms) and the
        arm's analysed count (continued − the other exclusions).
        """
        atoms = self._reason_atoms(self.las(arm), entity, reason)
        if atoms is None and self._closes.get((entity, outcome)):
            atoms = [f"ex:{arm}:{outcome}:{reason}"]
        if not atoms:
            atoms = [f"exclusions:{arm}:{outcome}:{entity}:{reason}"]
        return count(
            f"exclusions/{arm}/{outcome}/{entity}/{reason}",
            value,
            atoms,
            n_la=self.n_la(arm),
            label=f"{entity} not analysed for {outcome}: {reason} ({arm})",
        )

    def eligible_count(self, arm: str, level: str, value: int) -> Count:
        """An arm's eligible entities for an outcome (consented families; all keyworkers).

        The flow's consented families or keyworkers of the arm when the value is theirs,
        else a count of its own.
        """
        las = self.las(arm)
        known = self._arm_value(arm)
        atoms: list[str] = []
        if level == "family" and known.get("consented") == value:
            atoms = [a for la in las for a in self.family_atoms(la, "consented")]
        elif level == "keyworker" and known.get("keyworkers") == value:
            atoms = [a for la in las for a in self.keyworker_atoms(la)]
        return count(
            f"eligible/{arm}/{level}/{value}",
            value,
            atoms or [f"eligible:{arm}:{level}:{value}"],
            n_la=self.n_la(arm),
            label=f"eligible {level} ({arm})",
        )

    def missing_count(self, arm: str, outcome: str, timepoint: str, value: int) -> Count:
        """An arm's eligible entities without a score for ``outcome`` at ``timepoint``."""
        return count(
            f"missing/{arm}/{outcome}/{timepoint}",
            value,
            [f"miss:{arm}:{outcome}:{timepoint}"],
            n_la=self.n_la(arm),
            label=f"missing {outcome} at {timepoint} ({arm})",
        )

    def criterion_counts(
        self,
        criterion: str,
        metric: str,
        arm: str,
        unit: str,
        num: int,
        den: int,
        *,
        n_la: int | None = None,
    ) -> tuple[Count, Count, Count]:
        """A progression criterion's numerator, denominator and their difference.

        Counts of ``families`` or ``keyworkers`` are written over the ledger's atoms when
        the metric says what they count and the value agrees (consent: consented of
        referred; retention: followed up of consented families or of all keyworkers);
        other numerators are counts of their own.  ``n_la``: the LAs behind the counts
        (the criterion's clusters; default the arm's).  Counts of LAs are not people.  The
        difference (people not consenting, not followed up, records missing) is not
        printed but is implied by the two, so the pass protects it too.
        """
        people = unit in ("families", "keyworkers", "records")
        las = self.las(arm or None)
        known = self._arm_value(arm or None)
        tag = f"{criterion}/{arm or 'all'}"
        behind = self.n_la(arm or None) if n_la is None else n_la
        num_atoms: list[str] = []
        den_atoms: list[str] = []
        if metric == "family_consent" and unit == "families":
            if known.get("consented") == num:
                num_atoms = [a for la in las for a in self.family_atoms(la, "consented")]
            if known.get("referred") == den:
                den_atoms = [a for la in las for a in self.family_atoms(la, "referred")]
        elif metric == "family_retention" and known.get("consented") == den:
            den_atoms = [a for la in las for a in self.family_atoms(la, "consented")]
        elif metric == "keyworker_retention" and known.get("keyworkers") == den:
            den_atoms = [a for la in las for a in self.keyworker_atoms(la)]
        num_c = count(
            f"criterion/{tag}/numerator",
            num,
            num_atoms or [f"feas:{tag}:num"],
            n_la=behind,
            people=people,
            label=f"progression criterion {criterion} ({arm or 'all'}): numerator",
        )
        den_c = count(
            f"criterion/{tag}/denominator",
            den,
            den_atoms or [f"feas:{tag}:den"],
            n_la=behind,
            people=people,
            label=f"progression criterion {criterion} ({arm or 'all'}): denominator",
        )
        rest: dict[str, int] = dict(den_c.terms)
        for atom, coef in num_c.terms:
            rest[atom] = rest.get(atom, 0) - coef
        rest_c = count(
            f"criterion/{tag}/rest",
            den - num,
            rest,
            n_la=behind,
            people=people,
            label=f"progression criterion {criterion} ({arm or 'all'}): not counted",
            implied=True,
        )
        return num_c, den_c, rest_c

    def exclusion_count(self, stage: str, entity: str, reason: str, value: int) -> Count:
        """A trial-wide row of the exclusions table (Table 2.3)."""
        fid = f"exclusions/{stage}/{entity}/{reason}"
        atoms = self._reason_atoms(self.las(), entity, reason)
        outcome = stage.split(":", 1)[1] if stage.startswith("analysis:") else None
        if atoms is None and outcome is not None and self._closes.get((entity, outcome)):
            atoms = [f"ex:{arm}:{outcome}:{reason}" for arm in self.arms]
        if atoms is None:
            atoms = [f"exclusions:{stage}:{entity}:{reason}"]
        return count(
            fid, value, atoms, n_la=self.n_la(), label=f"{entity} not analysed: {stage}, {reason}"
        )

    def indicator_ratio(self, la: str, indicator_id: str, text: str) -> Ratio | None:
        """An LA's fidelity indicator of people (numerator/denominator), or None.

        None for indicators that count sessions, days or FTE (LA level) and for
        indicators without a numerator and denominator.
        """
        ind = self.analysis.table("fidelity_indicators")
        if not len(ind):
            return None
        row = ind[
            (ind["la_id"].astype(str) == la) & (ind["indicator_id"].astype(str) == indicator_id)
        ]
        if not len(row):
            return None
        r = row.iloc[0]
        level = str(r.get("level", ""))
        num, den = _f(r.get("numerator")), _f(r.get("denominator"))
        if level not in ("family", "keyworker") or not (math.isfinite(num) and math.isfinite(den)):
            return None
        den_atoms: list[str] = [f"den:{la}:{level}:{int(den)}"]
        known = self._la_value(la)
        if level == "family" and known.get("consented") == int(den):
            den_atoms = self.family_atoms(la, "consented")
        elif level == "family" and known.get("referred") == int(den):
            den_atoms = self.family_atoms(la, "referred")
        elif level == "keyworker" and known.get("keyworkers") == int(den):
            den_atoms = self.keyworker_atoms(la)
        label = str(r.get("label", indicator_id))
        return Ratio(
            id=f"indicator/{la}/{indicator_id}",
            value=_f(r.get("delivered")),
            numerator=count(
                f"indicator/{la}/{indicator_id}/numerator",
                int(num),
                [f"ind:{la}:{indicator_id}:num"],
                n_la=1,
                label=f"{label} ({la}): numerator",
            ),
            denominator=count(
                f"indicator/{la}/{indicator_id}/denominator",
                int(den),
                den_atoms,
                n_la=1,
                label=f"{label} ({la}): denominator",
            ),
            text=text,
            label=f"{label} ({la})",
        )

    def range_endpoint(
        self, indicator_id: str, which: str, adherence: float, text: str, arm: str | None = None
    ) -> Ratio | None:
        """The LA share behind the minimum or maximum adherence of an indicator (Table 4.1).

        A range "0.00 to 1.00" over LAs prints two LAs' own shares; the endpoint is the
        share of the (first) LA that attains it, under its own id.
        """
        ind = self.analysis.table("fidelity_indicators")
        if not len(ind) or not math.isfinite(adherence):
            return None
        sub = ind[ind["indicator_id"].astype(str) == indicator_id]
        if arm is not None:
            sub = sub[sub["arm"].astype(str) == arm]
        sub = sub[(pd.to_numeric(sub["adherence"], errors="coerce") - adherence).abs() < 1e-9]
        if not len(sub):
            return None
        la = sorted(sub["la_id"].astype(str))[0]
        r = self.indicator_ratio(la, indicator_id, text)
        if r is None:
            return None
        return Ratio(
            id=f"indicator-range/{indicator_id}/{which}",
            value=adherence,
            numerator=r.numerator,
            denominator=r.denominator,
            text=text,
            label=f"{which} over LAs of {r.label}",
        )

    # ------------------------------------------------------------------ text
    def protect_delivered(
        self,
        la: str,
        text: str,
        facts: MutableMapping[str, Fact],
        fmt: Callable[[str], str] = str,
    ) -> str:
        """``text`` with each "ind.x delivered v" share of people replaced by its token.

        ``fmt`` formats the printed number (e.g. rounding); the fact is registered
        in ``facts``.
        """

        def sub(m: re.Match[str]) -> str:
            r = self.indicator_ratio(la, m.group(1), fmt(m.group(2)))
            if r is None:
                return m.group(1) + " delivered " + fmt(m.group(2))
            facts[r.id] = r
            return f"{m.group(1)} delivered {token(r)}"

        return _DELIVERED.sub(sub, text)

    def protect_short_of_plan(self, text: str, facts: MutableMapping[str, Fact]) -> str:
        """TIDieR item 10: "label fell short ... in k LAs: LA02 (0.5 of 1), ..." shares
        of people replaced by tokens."""
        ind = self.analysis.table("fidelity_indicators")
        if not len(ind) or "fell short" not in text:
            return text
        by_label = dict(
            zip(ind["label"].astype(str), ind["indicator_id"].astype(str), strict=False)
        )

        def segment(m: re.Match[str]) -> str:
            iid = by_label.get(m.group(1).strip())
            if iid is None:
                return m.group(0)

            def item(mm: re.Match[str]) -> str:
                la = mm.group(1).strip()
                r = self.indicator_ratio(la, iid, mm.group(2))
                if r is None:
                    return mm.group(0)
                facts[r.id] = r
                lead = mm.group(1)[: len(mm.group(1)) - len(mm.group(1).lstrip())]
                return f"{lead}{la} ({token(r)} of {mm.group(3)})"

            return m.group(0)[: m.start(2) - m.start(0)] + _LA_OF.sub(item, m.group(2))

        return _SHORT.sub(segment, text)

    # ------------------------------------------------------------------ internals
    def _la_value(self, la: str) -> dict[str, int]:
        lc = self.la_counts
        if not len(lc):
            return {}
        row = lc[lc["la_id"].astype(str) == la]
        if not len(row):
            return {}
        r = row.iloc[0]
        nc, wd, co = int(r["not_consented"]), int(r["withdrew"]), int(r["continued"])
        out = {"consented": wd + co, "referred": nc + wd + co}
        if "keyworkers" in lc.columns:
            out["keyworkers"] = int(r["keyworkers"])
        return out

    def _arm_value(self, arm: str | None) -> dict[str, int]:
        """An arm's (all arms' when None) referred, consented and keyworkers, from the flow."""
        flow = self.flow
        if not len(flow):
            return {}
        s = flow if arm is None else flow[flow["arm"] == arm]

        def n(level: str, stage: str) -> int | None:
            x = s[(s["level"] == level) & (s["stage"] == stage)]
            return int(x["n"].sum()) if len(x) else None

        out = {
            "referred": n("family", "randomised"),
            "consented": n("family", "consented"),
            "keyworkers": n("keyworker", "randomised"),
        }
        return {k: v for k, v in out.items() if v is not None}

    def _other_reasons(self, outcome: str) -> list[str]:
        ex = self.analysis.table("exclusions")
        if not len(ex):
            return []
        sub = ex[ex["stage"].astype(str) == f"analysis:{outcome}"]
        return [
            str(r)
            for r in sub["reason"].astype(str)
            if not (r == "not consented" or r.startswith(_WD) or r.startswith("left post"))
        ]

    def _accounting_closes(self) -> Mapping[tuple[str, str], bool]:
        """Per outcome: referred (families) or keyworkers = analysed + excluded, trial-wide."""
        flow, ex = self.flow, self.analysis.table("exclusions")
        out: dict[tuple[str, str], bool] = {}
        if not (len(flow) and len(ex)):
            return out
        analysed = flow[(flow["stage"] == "analysed") & flow["level"].isin(["family", "keyworker"])]
        for (level, outcome), g in analysed.groupby(["level", "detail"], sort=False):
            base_stage = "randomised"
            base = flow[(flow["level"] == level) & (flow["stage"] == base_stage)]["n"].sum()
            sub = ex[(ex["stage"].astype(str) == f"analysis:{outcome}") & (ex["entity"] == level)]
            out[(str(level), str(outcome))] = bool(
                len(sub) and int(g["n"].sum()) + int(sub["n"].sum()) == int(base)
            )
        return out
