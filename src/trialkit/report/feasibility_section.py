"""The report's "Feasibility and progression" section and the pilot framing of the report.

:func:`frame_as_pilot` takes the report's sections and

* inserts the feasibility section right after the summary, before any effect estimate:
  the recommendation, the rule, a traffic-light table of the progression criteria
  (estimate, interval, limits, zone as a shape *and* a word, the one-sided test against
  red), a traffic-light figure (each estimate and interval over its green, amber and red
  zones, coloured and hatched so it reads in greyscale) and the reasons;
* opens the summary with the recommendation sentence ("The pilot supports …");
* opens the outcome and sensitivity sections with the reminder that a pilot's effects
  are preliminary estimates;
* adds to the methods section a table mapping the report's sections to the CONSORT
  extensions for cluster trials (Campbell et al. 2012) and for pilot and feasibility
  trials (Eldridge et al. 2016).

Counts behind a criterion are arm- or trial-level totals of families, keyworkers or
records: the table prints tokens for them, for their share and its interval
(:meth:`trialkit.report.ledger.PeopleLedger.criterion_counts`), and declares the
complement (people not counted) too, so the report's one disclosure pass
(:mod:`trialkit.report.disclosure_pass`) protects them with every other number of
people.  Counts of LAs are organisations, not people, and are shown.

References
----------
Campbell MK, Piaggio G, Elbourne DR, Altman DG. Consort 2010 statement: extension to
cluster randomised trials. BMJ 2012;345:e5661.
Eldridge SM, Chan CL, Campbell MJ, et al. CONSORT 2010 statement: extension to
randomised pilot and feasibility trials. BMJ 2016;355:i5239.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure as MplFigure
from matplotlib.patches import Patch

from trialkit.analyse.trial_analysis import TrialAnalysis
from trialkit.plotting import OKABE_ITO, figure_to_svg, new_figure, style
from trialkit.report import wording as W
from trialkit.report.disclosure import DisclosureSettings
from trialkit.report.ledger import PeopleLedger
from trialkit.report.published import Count, Fact, Ratio, token
from trialkit.report.tables import ReportTable, fmt, fmt_ci, fmt_p

__all__ = [
    "CONSORT_ITEMS",
    "FEASIBILITY_SECTION_ID",
    "consort_table",
    "feasibility_paragraphs",
    "feasibility_table",
    "frame_as_pilot",
    "planning_arms_table",
    "planning_table",
    "traffic_light_figure",
]

FEASIBILITY_SECTION_ID = "feasibility"
FEASIBILITY_TITLE = "Feasibility and progression to a definitive trial"

#: Section id -> (CONSORT cluster-trial items, CONSORT pilot-trial items) it answers.
CONSORT_ITEMS: dict[str, tuple[str, str]] = {
    "summary": ("1b (abstract), 22 (interpretation)", "1b, 2b (objectives), 22, 22a"),
    FEASIBILITY_SECTION_ID: (
        "12a (clustering taken into account)",
        "6c (progression criteria), 12 (methods per objective), 17 (estimates with "
        "uncertainty), 22a (implications for a definitive trial)",
    ),
    "flow": ("13a, 13b (flow of clusters and individuals), 16", "13a, 13b, 16"),
    "tidier": ("5 (interventions at cluster and individual level)", "5"),
    "logic": ("5", "2a (rationale), 6a (pre-specified assessments)"),
    "baseline": ("15 (cluster and individual level)", "15"),
    "outcomes": ("17a (results and ICC), 12a", "17 (preliminary estimates), 12"),
    "fidelity": ("18 (ancillary analyses)", "5, 18"),
    "sensitivity": ("18", "18"),
    "methods": ("3a, 7a, 8–10, 12a", "3a, 7a, 8–10, 12, 24"),
}

_PEOPLE_UNITS = frozenset({"families", "keyworkers", "records"})


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


@dataclasses.dataclass(frozen=True, slots=True)
class _CriterionFacts:
    """A criterion's counts of people and the shares printed from them (all tokens)."""

    numerator: Count
    denominator: Count
    estimate: Ratio
    conf_low: Ratio
    conf_high: Ratio
    rest: Count

    def all(self) -> tuple[Fact, ...]:
        return (
            self.numerator,
            self.denominator,
            self.estimate,
            self.conf_low,
            self.conf_high,
            self.rest,
        )


def _criterion_facts(ledger: PeopleLedger, r: pd.Series) -> _CriterionFacts | None:
    """The facts of a criterion that counts people (None for LAs, means and missing counts)."""
    num, den, unit = _f(r["numerator"]), _f(r["denominator"]), str(r["unit"])
    if (
        unit not in _PEOPLE_UNITS
        or str(r["method"]) == "cluster mean t"
        or not (math.isfinite(num) and math.isfinite(den))
    ):
        return None
    clusters = _f(r["clusters"])
    n_c, d_c, rest = ledger.criterion_counts(
        str(r["id"]),
        str(r["metric"]),
        str(r["arm"] or ""),
        unit,
        int(round(num)),
        int(round(den)),
        n_la=int(clusters) if math.isfinite(clusters) else None,
    )
    tag = f"{r['id']}/{r['arm'] or 'all'}"

    def share(what: str, v: Any) -> Ratio:
        x = _f(v)
        return Ratio(
            id=f"criterion/{tag}/{what}",
            value=x,
            numerator=n_c,
            denominator=d_c,
            text=_pct(x),
            coarse_text=(f"about {10 * round(10 * x):.0f}%" if what == "estimate" else "–")
            if math.isfinite(x)
            else "–",
            label=f"progression criterion {tag}: {what}",
        )

    return _CriterionFacts(
        numerator=n_c,
        denominator=d_c,
        estimate=share("estimate", r["estimate"]),
        conf_low=share("conf_low", r["conf_low"]),
        conf_high=share("conf_high", r["conf_high"]),
        rest=rest,
    )


def _arm_text(analysis: TrialAnalysis, arm: Any) -> str:
    a = str(arm or "")
    return W.arm_label(analysis.protocol, a) if a else "all LAs"


def feasibility_table(analysis: TrialAnalysis, settings: DisclosureSettings) -> ReportTable:
    """Traffic-light table of the progression criteria (display text and typed export)."""
    f = analysis.table("feasibility")
    by_arm = bool(len(f)) and bool((f["arm"].astype(str) != "").any())
    rows: list[dict[str, str]] = []
    data: list[dict[str, Any]] = []
    ledger = PeopleLedger(analysis)
    facts: dict[str, Fact] = {}
    for _, r in f.iterrows():
        num, den, unit = _f(r["numerator"]), _f(r["denominator"]), str(r["unit"])
        mean = str(r["method"]) == "cluster mean t"
        people = _criterion_facts(ledger, r)
        if people is not None:
            facts.update({x.id: x for x in people.all()})
        if not math.isfinite(den):
            counts = "–"
        elif mean:
            counts = f"mean of {int(den)} {W.plural('LA', den)}"
        elif people is not None:
            counts = f"{token(people.numerator)} / {token(people.denominator)} {unit}"
        else:
            counts = f"{int(round(num))} / {int(round(den))} {unit}"
        est = _f(r["estimate"])
        pct = not mean
        ci = (
            f"{token(people.conf_low)} to {token(people.conf_high)}"
            if people is not None
            and math.isfinite(_f(r["conf_low"]))
            and math.isfinite(_f(r["conf_high"]))
            else _pct_ci(r["conf_low"], r["conf_high"])
            if pct
            else fmt_ci(r["conf_low"], r["conf_high"])
        )
        row = {
            "Criterion": str(r["label"]),
            **({"Arm": _arm_text(analysis, r["arm"])} if by_arm else {}),
            "Count": counts,
            "LAs": str(int(r["clusters"])) if math.isfinite(_f(r["clusters"])) else "–",
            "Estimate": token(people.estimate)
            if people is not None
            else _pct(est)
            if pct
            else fmt(est, 2),
            f"{_f(r['conf_level']) * 100:.0f}% CI"
            if math.isfinite(_f(r["conf_level"]))
            else "95% CI": ci,
            "Green": ("≥ " if bool(r["higher_is_better"]) else "≤ ")
            + (_pct(r["green"]) if pct else fmt(r["green"], 2)),
            "Red": ("≤ " if bool(r["higher_is_better"]) else "≥ ")
            + (_pct(r["red"]) if pct else fmt(r["red"], 2)),
            "Zone": W.zone_word(r["zone"]),
            "One-sided p vs red": fmt_p(r["p_value"]),
        }
        rows.append(row)
        data.append(
            {
                "criterion_id": str(r["id"]),
                "criterion": str(r["label"]),
                "arm": str(r["arm"]),
                "numerator": num if people is None else token(people.numerator),
                "denominator": den if people is None else token(people.denominator),
                "unit": unit,
                "clusters": int(r["clusters"]),
                "estimate": est if people is None else token(people.estimate),
                "conf_low": _f(r["conf_low"]) if people is None else token(people.conf_low),
                "conf_high": _f(r["conf_high"]) if people is None else token(people.conf_high),
                "green": _f(r["green"]),
                "red": _f(r["red"]),
                "zone": str(r["zone"]),
                "p_value_vs_red": _f(r["p_value"]),
                "method": str(r["method"]),
                "test": str(r["test_method"]),
            }
        )
    note = "Counts of LAs are organisations, not people, and are shown."
    columns = list(rows[0]) if rows else ["Criterion", "Estimate", "Zone"]
    return ReportTable(
        id="progression",
        section=FEASIBILITY_SECTION_ID,
        caption="Table F.1. Pre-specified progression criteria: estimate with its "
        "cluster-adjusted interval, the green and red limits, the traffic-light zone and the "
        "one-sided test of the red zone (Lewis et al. 2021). Zones are marked by shape and "
        "word here, by colour and hatching in Figure F.1.",
        frame=pd.DataFrame(rows, columns=columns),
        note=note,
        data=pd.DataFrame(data),
        facts=facts,
    )


def _outcome_labels(analysis: TrialAnalysis) -> dict[str, str]:
    return {
        str(o.get("id")): str(o.get("label") or o.get("id"))
        for o in analysis.protocol.get("outcomes", [])
    }


def _num(x: Any) -> float | None:
    v = _f(x)
    return v if math.isfinite(v) else None


def _count(x: Any) -> str:
    v = _f(x)
    return str(int(v)) if math.isfinite(v) else "–"


def planning_table(analysis: TrialAnalysis) -> ReportTable:
    """Table F.2: per continuous outcome, the parameters a definitive trial is designed on.

    Unconditional ICCs (LA, keyworker) with profile-likelihood intervals, SD and
    baseline–follow-up correlation with intervals, cluster-size CV, and the LAs needed for
    the target effect at the point ICC, at its upper limit and by assurance.  No count of
    people is shown (the n analysed is in the outcome tables), so nothing needs suppression.
    """
    f = analysis.table("planning")
    meta = analysis.methods.get("planning") or {}
    pct = f"{_f(meta.get('conf_level', 0.95)) * 100:g}%"
    labels = _outcome_labels(analysis)
    rows: list[dict[str, str]] = []
    data: list[dict[str, Any]] = []
    for _, r in f.iterrows():
        oid = str(r["outcome_id"])
        planned = str(r["status"]) == "planned"
        notes = []
        if not planned:
            notes.append(W.not_planned_text(r["reason"]))
        elif r["singular"] is not pd.NA and bool(r["singular"]):
            notes.append(W.SINGULAR_NOTE)
        if planned and not math.isfinite(_f(r["target_effect"])):
            notes.append(W.NO_TARGET_NOTE)
        rows.append(
            {
                "Outcome": labels.get(oid, oid) if oid else "all outcomes",
                "Timepoint": str(r["timepoint"]) if planned else "–",
                f"LA ICC, unconditional ({pct} CI)": _est_ci(
                    r["icc_la"], r["icc_la_low"], r["icc_la_high"], 3
                ),
                f"Keyworker ICC, unconditional ({pct} CI)": _est_ci(
                    r["icc_keyworker"], r["icc_keyworker_low"], r["icc_keyworker_high"], 3
                ),
                f"SD ({pct} CI)": _est_ci(r["sd"], r["sd_low"], r["sd_high"], 2),
                f"Baseline–follow-up r ({pct} CI)": _est_ci(
                    r["correlation"], r["correlation_low"], r["correlation_high"], 2
                ),
                "Cluster-size CV": fmt(r["cluster_size_cv"], 2),
                "Target effect (SD)": fmt(r["target_effect"], 2),
                "LAs needed: point ICC / upper limit / assurance": (
                    f"{_count(r['las_point'])} / {_count(r['las_upper'])} / "
                    f"{_count(r['las_assurance'])}"
                    if math.isfinite(_f(r["las_point"]))
                    else "–"
                ),
                "Note": "; ".join(notes),
            }
        )
        data.append(
            {
                "outcome_id": oid,
                "status": str(r["status"]),
                "reason": str(r["reason"] or ""),
                "level": None if not planned else str(r["level"]),
                "timepoint": None if not planned else str(r["timepoint"]),
                **{
                    k: _num(r[k])
                    for k in (
                        "icc_la",
                        "icc_la_low",
                        "icc_la_high",
                        "icc_keyworker",
                        "icc_keyworker_low",
                        "icc_keyworker_high",
                        "sd",
                        "sd_low",
                        "sd_high",
                        "sd_null_model",
                        "correlation",
                        "correlation_low",
                        "correlation_high",
                        "mean_cluster_size",
                        "cluster_size_cv",
                        "target_effect",
                        "power_point",
                        "power_upper",
                        "assurance_at_las",
                    )
                },  # fmt: skip
                **{
                    k: None if _num(r[k]) is None else int(_f(r[k]))
                    for k in ("n_las", "las_point", "las_upper", "las_assurance")
                },
            }
        )
    columns = list(rows[0]) if rows else ["Outcome", "Note"]
    return ReportTable(
        id="planning",
        section=FEASIBILITY_SECTION_ID,
        caption="Table F.2. Planning the definitive trial: unconditional ICCs (null model; "
        "profile-likelihood intervals), SD and baseline–follow-up correlation, the "
        "coefficient of variation of cluster size, and the LAs needed for the target effect "
        f"(power {_f(meta.get('power', math.nan)):g}, two-sided alpha "
        f"{_f(meta.get('alpha', math.nan)):g}) at the point ICC, at its upper confidence "
        "limit and by assurance.",
        frame=pd.DataFrame(rows, columns=columns),
        note=W.planning_paragraph(
            meta.get("conf_level", 0.95), meta.get("power", math.nan), meta.get("alpha", 0.05)
        ),
        data=_int_columns(pd.DataFrame(data), ("n_las", "las_point", "las_upper", "las_assurance")),
    )


def _int_columns(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Counts as Python integers in the typed export, ``None`` (an empty cell) when missing.

    An object column, so that the CSV writes ``12`` and the xlsx writer a number cell.
    """
    for c in dict.fromkeys(columns):
        if c in frame:
            frame[c] = pd.Series(
                [None if v is None or not math.isfinite(_f(v)) else int(_f(v)) for v in frame[c]],
                index=frame.index,
                dtype=object,
            )
    return frame


def _est_ci(est: Any, lo: Any, hi: Any, digits: int) -> str:
    if not math.isfinite(_f(est)):
        return "–"
    ci = fmt_ci(lo, hi, digits)
    return fmt(est, digits) + ("" if ci == "–" else f" ({ci})")


def planning_arms_table(analysis: TrialAnalysis, settings: DisclosureSettings) -> ReportTable:
    """Table F.3: consent, follow-up and keyworkers leaving post, by arm (arm totals).

    Every count is a fact of the report's people ledger (the same atoms as Tables
    2.1–2.3), and each share a :class:`~trialkit.report.published.Ratio` of two of them,
    so the one disclosure pass (:func:`trialkit.report.disclosure_pass.apply_disclosure`)
    protects them together with every other table.  ``settings`` is accepted for the
    section's uniform signature; the pass applies the report's settings.
    """
    del settings  # the disclosure pass applies the report's settings to the facts below
    f = analysis.table("planning_arms")
    ledger = PeopleLedger(analysis)
    facts: dict[str, Fact] = {}
    rows: list[dict[str, str]] = []
    data: list[dict[str, Any]] = []

    def cell(x: Fact) -> str:
        facts[x.id] = x
        return token(x)

    for _, r in f.iterrows():
        arm = str(r["arm"])
        n_la = ledger.n_la(arm)
        ref, cons = int(_f(r["families_referred"])), int(_f(r["families_consented"]))
        fol = int(_f(r["families_followed_up"]))
        kw, left = int(_f(r["keyworkers"])), int(_f(r["keyworkers_left"]))
        counts: dict[str, tuple[Count, Count]] = {}
        for key, metric, unit, n_num, n_den in (
            ("consent", "family_consent", "families", cons, ref),
            ("followed", "family_retention", "families", fol, cons),
            ("left", "keyworker_retention", "keyworkers", left, kw),
        ):
            num_c, den_c, rest_c = ledger.criterion_counts(
                f"planning_{key}", metric, arm, unit, n_num, n_den, n_la=n_la
            )
            facts[rest_c.id] = rest_c  # the complement is implied by the two: protect it too
            counts[key] = (num_c, den_c)
        row = {"Arm": _arm_text(analysis, arm), "Follow-up": str(r["followup_timepoint"])}
        rec: dict[str, Any] = {"arm": arm, "followup_timepoint": str(r["followup_timepoint"])}
        specs = (  # (key, column, numerator name, denominator name, share name)
            ("consent", "Families consented / referred", "families_consented",
             "families_referred", "consent_rate"),
            ("followed", "Consented families measured at follow-up / consented",
             "families_followed_up", "families_consented", "family_follow_up"),
            ("left", "Keyworkers who left post / in randomised LAs", "keyworkers_left",
             "keyworkers", "keyworker_attrition"),
        )  # fmt: skip
        for key, col, num_name, den_name, share_name in specs:
            num, den = counts[key]
            share = num.value / den.value if den.value else math.nan
            ratio = Ratio(
                id=f"planning-share/{arm}/{key}",
                value=share,
                numerator=num,
                denominator=den,
                text=_pct(share),
                coarse_text=f"about {10 * round(10 * share):.0f}%" if math.isfinite(share) else "–",
                label=f"{col} ({arm})",
            )
            shown = cell(ratio) if den.value else "–"
            row[col] = f"{cell(num)} / {cell(den)} ({shown})"
            rec[num_name] = token(num)
            rec[den_name] = token(den)
            rec[share_name] = shown
        rows.append(row)
        data.append(rec)
    columns = list(rows[0]) if rows else ["Arm"]
    return ReportTable(
        id="planning_arms",
        section=FEASIBILITY_SECTION_ID,
        caption="Table F.3. Consent and follow-up by arm: families consented among those "
        "referred, consented families with any measurement at the follow-up timepoint, and keyworkers "
        "who left post before the end of the trial (plain ratios of arm totals; their "
        "cluster-adjusted intervals are the progression criteria's in Table F.1).",
        frame=pd.DataFrame(rows, columns=columns),
        note="Counts are arm totals, protected by the report's disclosure rules like every "
        "other count of people (see section 9).",
        data=pd.DataFrame(data) if data else None,
        facts=facts,
    )


def _pct(x: Any) -> str:
    v = _f(x)
    return "–" if not math.isfinite(v) else f"{v * 100:.1f}%"


def _pct_ci(lo: Any, hi: Any) -> str:
    a, b = _f(lo), _f(hi)
    if not (math.isfinite(a) and math.isfinite(b)):
        return "–"
    return f"{a * 100:.1f}% to {b * 100:.1f}%"


def feasibility_paragraphs(analysis: TrialAnalysis) -> tuple[list[str], list[str]]:
    """Paragraphs and bullets (reasons) of the feasibility section."""
    meta = analysis.methods.get("feasibility") or {}
    f = analysis.table("feasibility")
    if not len(f):
        status = str(meta.get("status", "no progression criteria in the protocol"))
        return (
            [
                "A pilot's first question is whether, and how, a definitive trial should "
                "follow. The CONSORT extension for pilot trials (item 6c) asks for "
                "pre-specified progression criteria; this protocol has none "
                f"({status}). Add [[progression]] entries to the protocol "
                "(docs/howto-progression.md).",
            ],
            [],
        )
    rec = meta.get("recommendation") or {}
    paras = [
        W.recommendation_sentence(rec.get("decision")),
        "The protocol pre-specified traffic-light progression criteria (CONSORT pilot "
        "extension item 6c). Proportions of families, keyworkers or records are pooled over "
        "LAs with a design-based interval that allows for clustering by LA (logit scale, "
        "t on LAs − 1 degrees of freedom); proportions of LAs have an exact "
        "(Clopper–Pearson) interval. Each criterion's zone follows its point estimate; the "
        "one-sided test asks whether the data rule out the red zone (Lewis et al. 2021).",
        f"Rule: {rec.get('rule', '')}.",
    ]
    return paras, [str(x) for x in rec.get("reasons", [])]


def consort_table(titles: Mapping[str, str]) -> ReportTable:
    """Report sections and the CONSORT cluster-trial and pilot-trial items they answer."""
    rows = [
        {
            "Report section": titles[sid],
            "CONSORT cluster extension (Campbell 2012)": items[0],
            "CONSORT pilot extension (Eldridge 2016)": items[1],
        }
        for sid, items in CONSORT_ITEMS.items()
        if sid in titles
    ]
    return ReportTable(
        id="consort_map",
        section="methods",
        caption="Table 9.C. Where this report answers the CONSORT extensions for cluster "
        "randomised trials and for randomised pilot and feasibility trials (item numbers).",
        frame=pd.DataFrame(
            rows,
            columns=[
                "Report section",
                "CONSORT cluster extension (Campbell 2012)",
                "CONSORT pilot extension (Eldridge 2016)",
            ],
        ),
        note="Checklist items only; no data.",
    )


#: Zone colours (Okabe–Ito, light) and hatches: the hatch tells the zones apart in greyscale.
_ZONE_STYLE: dict[str, tuple[str, str]] = {
    "green": (OKABE_ITO["bluish_green"], ""),
    "amber": (OKABE_ITO["orange"], ".."),
    "red": (OKABE_ITO["vermillion"], "//"),
}


def _wrap(label: str, width: int = 40) -> str:
    """At most two lines of ``width`` characters (an ellipsis when longer)."""
    lines = textwrap.wrap(label, width)
    if len(lines) > 2:
        lines = [lines[0], lines[1][: width - 1] + "…"]
    return "\n".join(lines)


def traffic_light_figure(rows: Sequence[Mapping[str, Any]]) -> MplFigure:
    """Each criterion's estimate and interval drawn over its red, amber and green zones.

    ``rows`` have ``label``, ``estimate``, ``conf_low``, ``conf_high``, ``green``, ``red`` and
    ``zone``; the x axis is the proportion (0 to 1).  Zones are light colours with distinct
    hatches (none for green, dots for amber, diagonal lines for red), and each row ends with
    its zone in words.
    """
    n = max(len(rows), 1)
    with style():
        fig = new_figure(8.0, 0.9 + 0.5 * n)
        ax = fig.add_subplot()
        for k, r in enumerate(rows):
            g, rd = _f(r["green"]), _f(r["red"])
            spans = (
                [("red", 0.0, rd), ("amber", rd, g), ("green", g, 1.0)]
                if g > rd
                else [("green", 0.0, g), ("amber", g, rd), ("red", rd, 1.0)]
            )
            for zone, a, b in spans:
                colour, hatch = _ZONE_STYLE[zone]
                ax.barh(
                    k,
                    b - a,
                    left=a,
                    height=0.8,
                    color=to_rgba(colour, 0.35),
                    hatch=hatch,
                    edgecolor="#555555",
                    linewidth=0.0,
                    zorder=1,
                )
            lo, hi, est = _f(r["conf_low"]), _f(r["conf_high"]), _f(r["estimate"])
            if math.isfinite(lo) and math.isfinite(hi):
                ax.hlines(k, lo, hi, colors="#000000", linewidth=2.0, zorder=3)
            if math.isfinite(est):
                ax.plot([est], [k], marker="D", color="#000000", markersize=6, zorder=4)
            ax.text(1.02, k, W.zone_word(r["zone"]), va="center", ha="left", fontsize=8,
                    transform=ax.get_yaxis_transform())  # fmt: skip
        labels = [str(r["label"]) for r in rows]
        ax.set_yticks(range(len(rows)), [_wrap(x) for x in labels])
        ax.set_ylim(len(rows) - 0.5 if rows else 0.5, -0.5)
        ax.set_xlim(0.0, 1.0)
        ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0], ["0%", "20%", "40%", "60%", "80%", "100%"])
        ax.set_xlabel("Estimate (diamond) and 95% CI (line) over the red, amber and green zones")
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        ax.legend(
            handles=[
                Patch(
                    facecolor=to_rgba(_ZONE_STYLE[z][0], 0.35),
                    hatch=_ZONE_STYLE[z][1],
                    edgecolor="#555555",
                    label=z,
                )
                for z in ("green", "amber", "red")
            ],
            loc="lower left",
            bbox_to_anchor=(0.0, 1.0),
            ncols=3,
            frameon=False,
            borderaxespad=0.2,
        )
    return fig


def _figure(analysis: TrialAnalysis, make_figure: Any) -> tuple[Any, ...]:
    f = analysis.table("feasibility")
    if make_figure is None or not len(f):
        return ()
    rows = []
    shown: list[str] = []  # the alt text's estimate and interval: the table's tokens for people
    ledger = PeopleLedger(analysis)
    for _, r in f.iterrows():
        if str(r["zone"]) == "not assessed":
            continue
        arm = str(r["arm"] or "")
        label = str(r["label"]) + (f" ({_arm_text(analysis, arm)})" if arm else "")
        rows.append({**{str(k): v for k, v in r.items()}, "label": label})
        people = _criterion_facts(ledger, r)
        shown.append(
            f"{_pct(r['estimate'])} (95% CI {_pct_ci(r['conf_low'], r['conf_high'])})"
            if people is None
            else f"{token(people.estimate)} (95% CI {token(people.conf_low)} to "
            f"{token(people.conf_high)})"
        )
    if not rows:
        return ()
    alt = "Traffic-light chart of the progression criteria: " + "; ".join(
        f"{r['label']}: {txt}, {str(r['zone']).upper()}" for r, txt in zip(rows, shown, strict=True)
    )
    svg = figure_to_svg(traffic_light_figure(rows), title="Progression criteria", desc=alt)
    return (
        make_figure(
            id="progression",
            caption="Figure F.1. Progression criteria: each estimate (diamond) and its 95% CI "
            "(line) over the criterion's red (diagonal hatching), amber (dots) and green "
            "(plain) zones.",
            alt=alt,
            svg=svg,
        ),
    )


def frame_as_pilot(
    sections: Sequence[Any],
    analysis: TrialAnalysis,
    settings: DisclosureSettings,
    *,
    make_figure: Any = None,
) -> tuple[Any, ...]:
    """The report's sections with the feasibility section and the pilot framing added.

    ``sections`` are :class:`trialkit.report.build.Section` objects (any frozen
    dataclass with ``id``, ``title``, ``paragraphs``, ``bullets``, ``tables`` and
    ``figures``); ``make_figure`` is :class:`trialkit.report.build.Figure` (the
    traffic-light figure is drawn only when it is given).
    """
    if not sections:
        return tuple(sections)
    kind = type(sections[0])
    paras, bullets = feasibility_paragraphs(analysis)
    tables = (feasibility_table(analysis, settings),) if len(analysis.table("feasibility")) else ()
    planning: tuple[ReportTable, ...] = ()
    if len(analysis.table("planning")):
        planning = (planning_table(analysis),)
        if len(analysis.table("planning_arms")):
            planning += (planning_arms_table(analysis, settings),)
    feas = kind(
        id=FEASIBILITY_SECTION_ID,
        title=FEASIBILITY_TITLE,
        paragraphs=tuple(paras),
        bullets=tuple(bullets),
        tables=(*tables, *planning),
        figures=_figure(analysis, make_figure),
    )
    out: list[Any] = []
    decision = (analysis.methods.get("feasibility") or {}).get("recommendation", {})
    for s in sections:
        if s.id == "summary" and tables:
            s = dataclasses.replace(
                s,
                paragraphs=(
                    W.recommendation_sentence(decision.get("decision"))
                    + " See 'Feasibility and progression' below for each criterion.",
                    *s.paragraphs,
                ),
            )
        elif s.id in ("outcomes", "sensitivity"):
            s = dataclasses.replace(s, paragraphs=(W.PILOT_FRAMING, *s.paragraphs))
        out.append(s)
        if s.id == "summary":
            out.append(feas)
    if not any(s.id == FEASIBILITY_SECTION_ID for s in out):
        out.insert(1, feas)
    titles = {s.id: s.title for s in out}
    return tuple(
        dataclasses.replace(s, tables=(*s.tables, consort_table(titles)))
        if s.id == "methods"
        else s
        for s in out
    )
