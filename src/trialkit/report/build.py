"""Build the commissioner's report from an analysis and write it out.

:func:`build_report` turns a :class:`~trialkit.analyse.TrialAnalysis` into a
:class:`Report` (nine sections of paragraphs, tables and figures);
:func:`write_report` writes ``report.html`` (self-contained: inline CSS, SVG
figures as data URIs, no network requests, A4 print CSS), ``report.md``,
``tables/<id>.csv`` and ``tables/<id>.xlsx`` for every table,
``figures/<id>.svg`` and ``report.json`` (provenance).  The output is
byte-identical for the same inputs except the generation time.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import math
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from trialkit import store
from trialkit._io import versions
from trialkit._version import __version__
from trialkit.analyse.accounting import accounting_gaps
from trialkit.analyse.trial_analysis import TrialAnalysis
from trialkit.errors import Problem, ReportError
from trialkit.fidelity.plots import HEATMAP_TITLE, heatmap_figure
from trialkit.plotting import figure_to_svg
from trialkit.report import consort, diagrams
from trialkit.report import tables as T
from trialkit.report import wording as W
from trialkit.report.disclosure import DisclosureSettings
from trialkit.report.disclosure_pass import apply_disclosure
from trialkit.report.feasibility_section import frame_as_pilot
from trialkit.report.figures import forest_figure
from trialkit.report.ledger import PeopleLedger
from trialkit.report.missing_section import missing_data_section
from trialkit.report.published import Count, Fact, count, token
from trialkit.report.templates import CSS, HTML_TEMPLATE

__all__ = [
    "SECTION_IDS",
    "Figure",
    "Report",
    "Section",
    "build_report",
    "check_accounting",
    "custody_lines",
    "custody_warning",
    "write_report",
]

SECTION_IDS = (
    "summary",
    "feasibility",
    "flow",
    "tidier",
    "logic",
    "baseline",
    "outcomes",
    "missing_data",
    "fidelity",
    "sensitivity",
    "methods",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    id: str
    caption: str
    alt: str
    svg: str
    width: int = 0

    @property
    def display_width(self) -> int:
        """Width in CSS pixels: as given, else the SVG's own width (points are 4/3 px)."""
        if self.width:
            return self.width
        m = re.search(r"<svg[^>]*?\swidth=['\"]([0-9.]+)(pt)?['\"]", self.svg)
        if not m:
            return 800
        return round(float(m.group(1)) * (4 / 3 if m.group(2) else 1))

    @property
    def kind(self) -> str:
        return "svg"

    @property
    def data_uri(self) -> str:
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg.encode()).decode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    id: str
    title: str
    paragraphs: tuple[str, ...] = ()
    bullets: tuple[str, ...] = ()
    tables: tuple[T.ReportTable, ...] = ()
    figures: tuple[Figure, ...] = ()
    pre: tuple[str, ...] = ()
    facts: Mapping[str, Fact] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """The report: title, nine sections, disclosure settings and provenance."""

    title: str
    subtitle: str
    sections: tuple[Section, ...]
    disclosure: DisclosureSettings
    provenance: Mapping[str, Any] = field(default_factory=dict)
    generated: str = ""
    version: str = __version__
    disclosure_check: Mapping[str, Any] = field(default_factory=dict)

    def tables(self) -> list[T.ReportTable]:
        return [t for s in self.sections for t in s.tables]

    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]

    def to_frame(self) -> pd.DataFrame:
        """One row per table: section, id, caption, rows, disclosure note."""
        return pd.DataFrame(
            [
                {
                    "section": t.section,
                    "id": t.id,
                    "caption": t.caption,
                    "rows": len(t.frame),
                    "disclosure": t.note,
                }
                for t in self.tables()
            ]
        )

    def summary(self) -> str:
        text = (
            f"Report '{self.title}': {len(self.sections)} sections, {len(self.tables())} tables, "
            f"{len(self.figures())} figures"
        )
        chain = self.provenance.get("custody") if isinstance(self.provenance, Mapping) else None
        if isinstance(chain, Mapping):
            broken = [
                k
                for k, c in chain.items()
                if isinstance(c, Mapping) and c.get("status") == "UNVERIFIED"
            ]
            if broken:
                text += f"\nWARNING: chain of custody NOT verified ({', '.join(broken)})"
        return text

    def __repr__(self) -> str:
        return f"Report(sections={len(self.sections)}, tables={len(self.tables())})"


# ---------------------------------------------------------------------------- helpers
def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _outcome_sentence(r: pd.Series, label: str, alpha: float) -> str:
    """One outcome's result in words; the claims follow :mod:`trialkit.report.wording`."""
    missing = W.not_estimated(r.get("status"), r.get("reason"))
    if missing:
        return f"{label}: {missing}." + (f" ({r['fallback']})" if r.get("fallback") else "")
    est, lo, hi, p = _f(r["estimate"]), _f(r["conf_low"]), _f(r["conf_high"]), _f(r["p_value"])
    role = str(r["role"])
    direction = W.direction_words(est, r["better"])
    if str(r["type"]) == "binary":
        or_ = _f(r.get("odds_ratio"))
        txt = (
            f"{label}: odds ratio {T.fmt(or_)} (95% CI {T.fmt_ci(r.get('odds_ratio_low'), r.get('odds_ratio_high'))}), "
            f"p = {T.fmt_p(p)}"
            if math.isfinite(or_)
            else f"{label}: {r['scale']} {T.fmt(est)} (95% CI {T.fmt_ci(lo, hi)}), p = {T.fmt_p(p)}"
        )
        txt += f" ({direction})." if direction else "."
    else:
        word = "higher" if est > 0 else "lower"
        txt = (
            f"{label}: {T.fmt(abs(est))} points {word} in the intervention arm after "
            f"adjustment ({direction + '; ' if direction else ''}95% CI "
            f"{T.fmt_ci(lo, hi)}; p = {T.fmt_p(p)}"
            + (f"; Hedges' g {T.fmt(r['g'])}" if math.isfinite(_f(r["g"])) else "")
            + ")."
        )
    if math.isfinite(p):
        p_adj = r.get("p_adjusted")
        if role == "secondary" and math.isfinite(_f(p_adj)):
            txt += f" After Holm adjustment for the secondary outcomes, p = {T.fmt_p(p_adj)}."
        sentence = W.interval_sentence(lo, hi, role=role, p_adjusted=p_adj, alpha=alpha)
        txt += (" " + sentence) if sentence else ""
    return txt


def _flow_fact(
    ledger: PeopleLedger, arms: tuple[str, ...], level: str, stage: str, detail: str | None = None
) -> Count:
    """The flow count of ``arms`` at ``level``/``stage`` (one ``detail`` or all), as a fact.

    One arm and one flow row: the same fact (same id) as Table 2.1's cell, so the
    table, the figure and the text publish one protected value.
    """
    flow = ledger.flow
    parts: list[Count] = []
    for arm in arms:
        s = flow[(flow["arm"] == arm) & (flow["level"] == level) & (flow["stage"] == stage)]
        if detail is not None:
            s = s[s["detail"] == detail]
        parts += [
            ledger.flow_count(arm, level, stage, str(r["detail"]), int(r["n"]))
            for _, r in s.iterrows()
        ]
    if len(parts) == 1:
        return parts[0]
    terms: dict[str, int] = {}
    for c in parts:
        for atom, coef in c.terms:
            terms[atom] = terms.get(atom, 0) + coef
    return count(
        f"flow/{'+'.join(arms)}/{level}/{stage}/{'*' if detail is None else detail}",
        sum(c.value for c in parts),
        terms or [f"flow:{'+'.join(arms)}:{level}:{stage}:{detail}"],
        n_la=sum(ledger.n_la(arm) for arm in arms),
        people=level != "la",
        label=f"{level} {stage} {detail or ''} ({', '.join(arms)})",
    )


def _consort_fact(ledger: PeopleLedger, arm: str, item: consort.Count | consort.Loss) -> Count:
    """The fact behind a count or loss of the CONSORT diagram (see ``consort.Count.source``).

    Flow rows are Table 2.1's facts (same ids); exclusions per arm and analysis are
    written over the atoms of Table 2.3's trial-wide rows, so one protected value is
    printed in the table, the diagram, its alt text and the summary.
    """
    src = item.source
    if src and src[0] == "flow":
        detail = src[3] if len(src) > 3 else None
        return _flow_fact(ledger, (arm,), src[1], src[2], detail)
    if src and src[0] == "followed":
        return ledger.followed_count(arm, src[1], item.n)
    if src and src[0] == "excluded":
        return ledger.arm_exclusion_count(arm, src[1], src[2], src[3], item.n)
    fid = f"consort/{arm}/{'/'.join(src) or item.key}/{item.label}"
    return count(
        fid, item.n, [fid], n_la=ledger.n_la(arm), people=not src or src[0] != "las", label=fid
    )


def _has_cace(a: TrialAnalysis) -> bool:
    """Whether the analysis holds an estimated CACE (not only rows saying why not)."""
    c = a.table("cace")
    if not len(c):
        return False
    if "status" not in c.columns:
        return True
    return bool((c["status"].fillna("estimated").astype(str) == "estimated").any())


def _summary_section(a: TrialAnalysis, disclosure: DisclosureSettings) -> Section:
    proto = a.protocol
    trial = proto.get("trial", {})
    res = a.table("results")
    flow = a.table("flow")
    labels = {o["id"]: o["label"] for o in proto.get("outcomes", [])}
    inter, ctrl = T._arms(a)
    alpha = _f(proto.get("analysis", {}).get("alpha", 0.05))

    def n_of(arm: str, level: str, stage: str) -> int:
        if not len(flow):
            return 0
        s = flow[(flow["arm"] == arm) & (flow["level"] == level) & (flow["stage"] == stage)]
        return int(s["n"].sum()) if len(s) else 0

    n_la = n_of(inter, "la", "randomised") + n_of(ctrl, "la", "randomised")
    ledger = PeopleLedger(a)
    n_kw = _flow_fact(ledger, (inter, ctrl), "keyworker", "randomised")
    n_fam = _flow_fact(ledger, (inter, ctrl), "family", "consented")
    paras = [
        f"What was tested: {trial.get('title', 'the trial')}. "
        f"{n_la} {W.plural('local authority', n_la)} (LAs) were "
        f"randomised: {n_of(inter, 'la', 'randomised')} to the "
        f"{proto.get('arms', {}).get(inter, {}).get('label', inter).lower()} and "
        f"{n_of(ctrl, 'la', 'randomised')} to {proto.get('arms', {}).get(ctrl, {}).get('label', ctrl).lower()}. "
        f"{token(n_kw)} keyworkers and {token(n_fam)} consenting families took part.",
    ]
    if trial.get("illustrative_note"):
        paras.append(f"Note on the protocol: {trial['illustrative_note']}")
    bullets: list[str] = []
    if len(res):
        prim = res[res["analysis"] == "primary"]
        for role in ("primary", "secondary"):
            for _, r in prim[prim["role"] == role].iterrows():
                bullets.append(
                    f"{role.capitalize()} outcome — "
                    + _outcome_sentence(
                        r, labels.get(str(r["outcome_id"]), str(r["outcome_id"])), alpha
                    )
                )
    ov = a.table("fidelity_overall")
    if len(ov):
        io_ = ov[ov["arm"] == inter]
        high = int((io_["band"] == "high").sum())
        bands = a.protocol.get("fidelity", {}).get("bands", [0.5, 0.8])
        hi_band = _f(bands[1]) if len(bands) > 1 else 0.8
        paras.append(
            f"Fidelity: {high} of {len(io_)} intervention LAs delivered the model with high "
            f"fidelity (overall index at or above {T.fmt(hi_band, 2)}); "
            "see section 7 for components, contamination in control LAs"
            + (
                " and the complier average causal effect."
                if _has_cace(a)
                else "; no complier average causal effect could be estimated"
                + (" (see section 7)." if len(a.table("cace")) else ".")
            )
        )
    else:
        paras.append(f"Fidelity: {a.methods.get('fidelity', 'not assessed')}.")
    m = a.table("mdes")
    if len(m):
        parts = [
            f"{labels.get(str(r['outcome_id']), str(r['outcome_id']))}: {T.fmt(r['mdes'])} SD"
            + (
                f" ({T.fmt(r['mdes_unadjusted'])} SD without credit for the covariates)"
                if "mdes_unadjusted" in m.columns
                else ""
            )
            for _, r in m[m["role"] == "primary"].iterrows()
        ]
        paras.append(
            "What a pilot of this size can and cannot conclude: with "
            f"{int(m['n_la'].iloc[0])} LAs and the sample achieved, the smallest effects the "
            "trial could detect with 80% power at the two-sided 5% level (with the observed "
            "unconditional ICCs, unequal LA sizes and the credit for covariate adjustment; "
            "Table 1.1) are about "
            + "; ".join(parts)
            + ". Smaller effects, which may still matter to families and services, cannot be "
            "ruled out, and with so few clusters every estimate is imprecise. A pilot tests "
            "feasibility, delivery and the trial's methods; its effect estimates should inform, "
            "not replace, a definitive trial."
        )
    return Section(
        id="summary",
        title="1. Summary in plain English",
        paragraphs=tuple(paras),
        bullets=tuple(bullets),
        tables=(T.mdes_table(a),),
        facts={n_kw.id: n_kw, n_fam.id: n_fam},
    )


def _flow_section(a: TrialAnalysis, disclosure: DisclosureSettings) -> Section:
    flow_model = _consort(a)
    ledger = PeopleLedger(a)
    facts: dict[str, Fact] = {}

    def num(arm: consort.ArmFlow, item: consort.Count | consort.Loss) -> str:
        f = _consort_fact(ledger, arm.arm, item)
        facts[f.id] = f
        return token(f)

    fig = diagrams.flow_svg(
        flow_model.columns(item_fmt=num),
        list(flow_model.top),
        title="CONSORT-cluster flow diagram",
    )
    alt = (
        "Flow diagram: "
        + " ".join(flow_model.top)
        + "; "
        + "; ".join(
            f"{arm.label}: "
            + ", ".join(f"{c.label} {num(arm, c)}" for box in arm.boxes for c in box.counts)
            for arm in flow_model.arms
        )
    )
    return Section(
        id="flow",
        title="2. Participant flow (CONSORT cluster diagram)",
        paragraphs=(
            "LAs were randomised; keyworkers and families were recruited within LAs. Each "
            "box of the diagram is the box above it minus the exclusions and losses listed "
            "between them, with their reasons; every entity not analysed is counted once, "
            "with one reason, in Table 2.3. Table 2.4 shows how much outcome data are "
            "missing in each arm at each timepoint.",
        ),
        figures=(
            Figure(
                id="flow", caption="Figure 2.1. CONSORT-cluster flow diagram.", alt=alt, svg=fig
            ),
        ),
        tables=(
            T.flow_table(a, disclosure),
            T.la_count_table(a, disclosure),
            T.exclusions_table(a, disclosure),
            T.missing_outcome_table(a, disclosure),
        ),
        facts=facts,
    )


def _consort(a: TrialAnalysis) -> consort.ConsortFlow:
    return consort.consort_flow(
        a.table("flow"), a.table("exclusions"), a.protocol, list(T._arms(a))
    )


def check_accounting(a: TrialAnalysis) -> None:
    """Refuse an analysis whose accounting does not close (before anything is written).

    Per analysis and arm, analysed + excluded (each entity once, with one reason) must
    equal the eligible entities and the analysed count the primary model's ``n_obs``
    (:func:`trialkit.analyse.accounting.accounting_gaps`); every box of the CONSORT
    diagram must be the box above minus the losses listed (:meth:`ConsortFlow.gaps`).

    Raises
    ------
    ReportError
        ``report.accounting_gap``, one problem per gap, naming the analysis, arm and
        numbers.
    """
    gaps = accounting_gaps(
        a.table("results"), a.table("exclusions"), a.table("flow"), list(T._arms(a))
    )
    gaps += [f"CONSORT diagram, {g}" for g in _consort(a).gaps()]
    if gaps:
        raise ReportError(
            f"the analysis does not account for every entity ({len(gaps)} gap(s)); "
            "the report is not written",
            [
                Problem(
                    path="analysis",
                    code="report.accounting_gap",
                    message=g,
                    hint="re-run trialkit analyse on the validated data; if the gap remains, "
                    "report it as a bug",
                )
                for g in gaps
            ],
        )


def _logic_section(a: TrialAnalysis) -> Section:
    lm = a.table("logic_model")
    nodes: list[dict[str, object]] = []
    for node_id in dict.fromkeys(lm["node_id"]) if len(lm) else []:
        g = lm[lm["node_id"] == node_id]
        r0 = g.iloc[0]
        inds = []
        for _, r in g.iterrows():
            if str(r["indicator_id"]):
                ach = _f(r.get("achieved_mean"))
                inds.append(
                    f"{r['indicator_label']}: "
                    + (f"{100 * ach:.0f}% of target" if math.isfinite(ach) else "not measured")
                )
        nodes.append(
            {
                "id": node_id,
                "kind": r0["kind"],
                "label": r0["node_label"],
                "leads_to": str(r0["leads_to"]).split(),
                "indicators": inds,
            }
        )
    fig = diagrams.logic_model_svg(nodes, title="Logic model with achieved fidelity")
    alt = "Logic model: " + "; ".join(
        f"{n['label']} ({n['kind']})"
        + (": " + "; ".join(n["indicators"]) if n["indicators"] else "")  # type: ignore[arg-type]
        for n in nodes
    )
    return Section(
        id="logic",
        title="4. Logic model and achieved fidelity",
        paragraphs=(
            "Resources lead to activities, outputs and outcomes. Under each activity and output "
            "is its indicator's achieved adherence (mean over intervention LAs, delivered ÷ "
            "intended, capped at 100%).",
        ),
        figures=(
            Figure(
                id="logic_model",
                caption="Figure 4.1. Logic model with achieved fidelity per indicator.",
                alt=alt,
                svg=fig,
            ),
        ),
        tables=(T.indicator_table(a),),
    )


def _outcome_section(a: TrialAnalysis, disclosure: DisclosureSettings) -> Section:
    res = a.table("results")
    labels = {o["id"]: o["label"] for o in a.protocol.get("outcomes", [])}
    rows = []
    if len(res):
        prim = res[(res["analysis"] == "primary")]
        for _, r in prim.iterrows():
            if math.isfinite(_f(r["g"])):
                lab = labels.get(str(r["outcome_id"]), str(r["outcome_id"])).split(" (")[0]
                # oriented so that positive favours the intervention for every outcome
                g, g_low, g_high = _f(r["g"]), _f(r["g_low"]), _f(r["g_high"])
                if str(r.get("better", "higher")) == "lower":
                    g, g_low, g_high = -g, -g_high, -g_low
                    lab += "*"
                rows.append((lab, g, g_low, g_high, str(r["role"])))
    figs: tuple[Figure, ...] = ()
    if rows:
        alt = "Forest plot of Hedges' g, positive favouring the intervention: " + "; ".join(
            f"{lab} {e:.2f} (95% CI {lo:.2f} to {hi:.2f})" for lab, e, lo, hi, _ in rows
        )
        fig = figure_to_svg(
            forest_figure(
                rows,
                xlabel="Hedges' g, 95% CI (positive favours the intervention)",
                favours=("favours control", "favours intervention"),
            ),
            title="Forest plot of Hedges' g",
            desc=alt,
        )
        figs = (
            Figure(
                id="forest",
                caption="Figure 6.1. Standardised effects (Hedges' g with 95% CI) for "
                "continuous outcomes, oriented so that positive values favour the intervention: "
                "for outcomes where lower is better the sign of g in Table 6.2 is reversed here "
                "(marked *).",
                alt=alt,
                svg=fig,
            ),
        )
    return Section(
        id="outcomes",
        title="6. Primary and secondary outcomes",
        paragraphs=(
            "Outcomes were analysed by intention to treat among those with data, with the "
            "model and denominator degrees of freedom declared in the protocol, adjusting for "
            "the baseline score and the pre-specified LA covariates. Secondary outcomes are "
            "adjusted for multiplicity with Holm's method.",
            "Pre-specified subgroup analyses are reported in Table 6.4."
            if "subgroups" in a.tables
            else "No subgroup analyses were pre-specified.",
        ),
        tables=(T.descriptive_table(a, disclosure), T.effects_table(a), T.icc_table(a))
        + ((T.subgroup_table(a),) if "subgroups" in a.tables else ()),
        figures=figs,
    )


def _fidelity_section(a: TrialAnalysis) -> Section:
    if not len(a.table("fidelity_components")):
        return Section(
            id="fidelity",
            title="7. Fidelity, contamination and CACE",
            paragraphs=(f"Fidelity {a.methods.get('fidelity', 'not assessed')}; no CACE.",),
            tables=(T.cace_table(a),) if len(a.table("cace")) else (),
        )
    rows, cols, vals = T.heatmap_data(a)
    alt = "Heatmap of fidelity index by LA and component: " + "; ".join(
        f"{r}: "
        + ", ".join(
            f"{c} {'NA' if not math.isfinite(v) else f'{v:.2f}'}"
            for c, v in zip(cols, vs, strict=True)
        )
        for r, vs in zip(rows, vals, strict=True)
    )
    components = a.table("fidelity_components")
    heatmap, _ = heatmap_figure(
        components, order_arms=sorted(dict.fromkeys(components["arm"].astype(str)))
    )
    fig = figure_to_svg(heatmap, title=HEATMAP_TITLE, desc=alt)
    cace = a.table("cace")
    paras = [
        "Fidelity compares what was delivered with what the logic model intended, by LA and "
        "component. Control LAs are assessed too: any intervention component delivered there "
        "is contamination.",
    ]
    if _has_cace(a):
        paras.append(
            "The complier average causal effect (CACE) estimates the effect in LAs that "
            "delivered the model as defined (compliance as declared in the protocol); it relies "
            "on the exclusion restriction and is less precise than the ITT estimate."
        )
    tables = [T.fidelity_table(a), T.contamination_table(a)]
    if len(cace):
        tables.append(T.cace_table(a))
    return Section(
        id="fidelity",
        title="7. Fidelity, contamination and CACE",
        paragraphs=tuple(paras),
        figures=(
            Figure(
                id="fidelity_heatmap",
                caption="Figure 7.1. Fidelity index by LA and component (NA: no delivery records).",
                alt=alt,
                svg=fig,
            ),
        ),
        tables=tuple(tables),
    )


def _methods_section(a: TrialAnalysis, disclosure: DisclosureSettings) -> Section:
    prov = a.provenance
    lines = []
    for oc, m in a.methods.get("outcomes", {}).items():
        lines.append(f"{oc} (at {m.get('timepoint')}): {m.get('formula')}")
    inputs = prov.get("inputs", {}) if isinstance(prov.get("inputs"), Mapping) else {}
    hash_lines = [f"{role}: {v.get('path')} sha256 {v.get('sha256')}" for role, v in inputs.items()]
    ver = prov.get("versions", {})
    seeds = {
        **({"analysis": prov.get("seed")} if prov.get("seed") is not None else {}),
        **dict(prov.get("seeds", {}) if isinstance(prov.get("seeds"), Mapping) else {}),
    }
    plan = a.methods.get("plan", {})
    paras = [
        f"Primary model: {plan.get('model')} with {W.method_name(plan.get('df_method'))} denominator df for "
        f"continuous outcomes; binary outcomes: logistic GLMM with {W.method_name(plan.get('binary_df_method'))} "
        "df (cluster-level analysis if the GLMM fails). Random intercepts for LA, and for "
        "keyworker within LA for family outcomes. Effect sizes: "
        f"{a.methods.get('hedges_g')}. Multiplicity: {a.methods.get('multiplicity')} over the "
        "secondary outcomes. Sensitivity analyses: "
        f"{', '.join(plan.get('sensitivity', [])) or 'none'}.",
        f"Disclosure control: {disclosure.describe()}.",
        "Software: " + ", ".join(f"{k} {v}" for k, v in ver.items()) + ".",
        "Seeds: " + (", ".join(f"{k} {v}" for k, v in seeds.items()) or "none") + ".",
    ]
    notes = [str(n) for n in a.methods.get("notes", [])]
    pre = [
        "Model formulas\n" + "\n".join(lines),
        "Input hashes (SHA-256)\n" + "\n".join(hash_lines),
    ]
    chain = custody_lines(a)
    if chain:
        pre.append(
            "Chain of custody (each stage directory read, its manifest SHA-256 and whether "
            "every recorded hash matched)\n" + "\n".join(chain)
        )
    if notes:
        pre.append("Notes\n" + "\n".join(notes))
    if a.warnings:
        pre.append("Warnings raised during the analysis\n" + "\n".join(a.warnings))
    return Section(
        id="methods", title="9. Methods and provenance", paragraphs=tuple(paras), pre=tuple(pre)
    )


_CHAIN = ("allocation", "data", "analysis")


def _custody(a: TrialAnalysis) -> dict[str, Mapping[str, Any]]:
    chain = a.provenance.get("custody") if isinstance(a.provenance, Mapping) else None
    if not isinstance(chain, Mapping):
        return {}
    order = [k for k in _CHAIN if k in chain] + [k for k in chain if k not in _CHAIN]
    return {k: chain[k] for k in order if isinstance(chain[k], Mapping)}


def custody_lines(a: TrialAnalysis) -> list[str]:
    """The chain of custody, one line per stage read: status and manifest SHA-256."""
    lines = []
    for stage, c in _custody(a).items():
        line = (
            f"{stage}: {c.get('status')} — {c.get('path')} "
            f"(manifest sha256 {c.get('manifest_sha256') or 'none'})"
        )
        lines.append(line)
        lines += [f"    {p.get('path')}: {p.get('message')}" for p in c.get("problems", [])]
    return lines


def custody_warning(a: TrialAnalysis) -> str:
    """The prominent statement for a chain with an UNVERIFIED link ('' when none)."""
    broken = [stage for stage, c in _custody(a).items() if c.get("status") == "UNVERIFIED"]
    if not broken:
        return ""
    return (
        "WARNING — CHAIN OF CUSTODY NOT VERIFIED: the "
        + " and ".join(broken)
        + " read for this report did not match the hashes recorded when "
        + ("it was" if len(broken) == 1 else "they were")
        + " written, and were used only because --allow-unverified was given. "
        "The results below may not come from the randomised allocation or the analysis "
        "as recorded; see 'Chain of custody' in section 9."
    )


def build_report(
    analysis: TrialAnalysis,
    *,
    generated: str | None = None,
    disclosure: DisclosureSettings | None = None,
) -> Report:
    """Build the nine-section report from an analysis.

    Parameters
    ----------
    analysis : TrialAnalysis
    generated : str, optional
        Generation time shown in the report (default: now, UTC, to the second).
        The only part of the output that differs between runs on the same inputs.
    disclosure : DisclosureSettings, optional
        Defaults to the protocol's ``[analysis.disclosure]``.

    Raises
    ------
    ReportError
        ``report.accounting_gap`` when the analysis does not account for every entity
        (:func:`check_accounting`).
    """
    check_accounting(analysis)
    settings = disclosure or DisclosureSettings.from_mapping(
        dict(analysis.protocol.get("analysis", {}).get("disclosure", {}) or {})
    )
    when = generated or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    trial = analysis.protocol.get("trial", {})
    sections = (
        _summary_section(analysis, settings),
        _flow_section(analysis, settings),
        Section(
            id="tidier",
            title="3. The intervention and the comparison (TIDieR)",
            paragraphs=(
                "The Template for Intervention Description and Replication for both "
                "arms; 'how well (actual)' is filled in from the fidelity assessment.",
            ),
            tables=(T.tidier_table(analysis),),
        ),
        _logic_section(analysis),
        Section(
            id="baseline",
            title="5. Baseline balance",
            paragraphs=(
                "Characteristics by arm at LA, keyworker and family level. With few "
                "LAs, chance imbalances are expected; the analysis adjusts for the "
                "pre-specified covariates.",
            ),
            tables=tuple(T.baseline_tables(analysis, settings)),
        ),
        _outcome_section(analysis, settings),
        missing_data_section(analysis, settings, make_section=Section, make_figure=Figure),
        _fidelity_section(analysis),
        Section(
            id="sensitivity",
            title="8. Sensitivity analyses",
            paragraphs=(
                "Each outcome's primary result beside the sensitivity analyses declared "
                "in the protocol. Consistent results across methods make conclusions "
                "less dependent on modelling choices.",
            ),
            tables=(T.sensitivity_table(analysis),),
        ),
        _methods_section(analysis, settings),
    )
    # a pilot: feasibility and progression first, effects framed as preliminary estimates
    sections = frame_as_pilot(sections, analysis, settings, make_figure=Figure)
    warning = custody_warning(analysis)
    if warning:
        first = sections[0]
        sections = (
            dataclasses.replace(first, paragraphs=(warning, *first.paragraphs)),
            *sections[1:],
        )
    built = Report(
        title=str(trial.get("title", "Trial report")),
        subtitle=(
            f"Trial registration: {trial['registration']}. "
            if str(trial.get("registration") or "").strip()
            else ""
        )
        + "Statistical report generated from the protocol's analysis plan.",
        sections=sections,
        disclosure=settings,
        provenance=analysis.provenance,
        generated=when,
    )
    # the one disclosure pass: after every section is built, before any rendering
    return apply_disclosure(built, settings)


# ---------------------------------------------------------------------------- rendering
_NUM = re.compile(r"^(?:[<≥]?-?\d+(?:\.\d+)?%?(?: \(.*\))?(?: to -?\d+(?:\.\d+)?)?|–|c|OR -?\d.*)$")


def _is_num(s: str) -> bool:
    """Whether a display cell is numeric (right-aligned): numbers, CIs, '–' and 'c'."""
    return bool(_NUM.match(s.strip()))


def render_html(report: Report) -> str:
    """Render the self-contained HTML report."""
    import jinja2

    env = jinja2.Environment(autoescape=True, keep_trailing_newline=True)
    tmpl = env.from_string(HTML_TEMPLATE)
    sections = []
    for s in report.sections:
        tabs = [
            {
                "id": t.id,
                "caption": t.caption,
                "note": t.note,
                "columns": [str(c) for c in t.frame.columns],
                "rows": [
                    [(str(v), _is_num(str(v))) for v in row]
                    for row in t.frame.astype(str).itertuples(index=False)
                ],
            }
            for t in s.tables
        ]
        sections.append(
            {
                "id": s.id,
                "title": s.title,
                "paragraphs": s.paragraphs,
                "bullets": s.bullets,
                "figures": s.figures,
                "tables": tabs,
                "pre": s.pre,
            }
        )
    return tmpl.render(
        report={
            "title": report.title,
            "subtitle": report.subtitle,
            "generated": report.generated,
            "version": report.version,
            "sections": sections,
        },
        css=CSS,
    )


def _md_cell(v: object) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    """Render the report as Markdown (figures referenced as files under ``figures/``)."""
    out = [
        f"# {report.title}",
        "",
        report.subtitle,
        "",
        f"Generated {report.generated} by trialkit {report.version}.",
        "",
    ]
    for s in report.sections:
        out += [f"## {s.title}", ""]
        for p in s.paragraphs:
            out += [p, ""]
        for b in s.bullets:
            out.append(f"- {b}")
        if s.bullets:
            out.append("")
        for f in s.figures:
            out += [f"![{f.alt}](figures/{f.id}.svg)", "", f"*{f.caption}*", ""]
        for t in s.tables:
            out += [f"**{t.caption}**", ""]
            cols = [str(c) for c in t.frame.columns]
            if cols:
                out.append("| " + " | ".join(_md_cell(c) for c in cols) + " |")
                out.append("|" + "|".join("---" for _ in cols) + "|")
                for row in t.frame.astype(str).itertuples(index=False):
                    out.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
            out += ["", f"*{t.note}*", ""]
        for pre in s.pre:
            out += ["```", pre, "```", ""]
    return "\n".join(out)


_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _cell(v: object) -> object:
    """An xlsx cell: numbers stay numbers, missing is empty, anything else is text."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v.item() if hasattr(v, "item") else v
    return str(v)


def xlsx_bytes(
    frame: pd.DataFrame, *, sheet: str = "table", caption: str = "", note: str = ""
) -> bytes:
    """An .xlsx workbook of ``frame`` with fixed timestamps (byte-identical across runs)."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet[:31]
    if caption:
        ws.append([caption])
    ws.append([str(c) for c in frame.columns])
    for row in frame.itertuples(index=False):
        ws.append([_cell(v) for v in row])
    if note:
        ws.append([])
        ws.append([note])
    fixed = dt.datetime(2000, 1, 1)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    wb.properties.creator = "trialkit"
    raw = io.BytesIO()
    wb.save(raw)
    # rewrite the zip with fixed member times so the bytes do not depend on the clock
    src = zipfile.ZipFile(io.BytesIO(raw.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = data.decode("utf-8")
                text = re.sub(
                    r"(<dcterms:(created|modified)[^>]*>)[^<]*(<)",
                    r"\g<1>2000-01-01T00:00:00Z\3",
                    text,
                )
                data = text.encode("utf-8")
            zi = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, data)
    return out.getvalue()


def write_report(
    report: Report,
    out_dir: str | os.PathLike[str],
    *,
    inputs: Mapping[str, str | os.PathLike[str]] | None = None,
) -> Path:
    """Write ``report.html``, ``report.md``, tables (CSV, xlsx), figures (SVG), ``report.json``.

    Written through :func:`trialkit.store.write_report`, which adds the stage manifest.

    Parameters
    ----------
    report : Report
    out_dir : path
        Must not exist or be empty.
    inputs : mapping of role -> path, optional
        Inputs hashed into the manifest (e.g. ``{"analysis": analysis_dir}``).

    Raises
    ------
    ReportError
        ``report.output_exists`` when ``out_dir`` exists and is not empty.
    """
    files: dict[str, store.Content] = {
        "report.html": render_html(report),
        "report.md": render_markdown(report),
    }
    for t in report.tables():
        typed = t.export_frame()
        files[f"tables/{t.id}.csv"] = typed
        files[f"tables/{t.id}.xlsx"] = xlsx_bytes(typed, sheet=t.id, caption=t.caption, note=t.note)
    for f in report.figures():
        files[f"figures/{f.id}.svg"] = f.svg

    def record(outputs: dict[str, str]) -> dict[str, Any]:
        return {
            "trialkit_version": __version__,
            "versions": versions(),
            "generated": report.generated,
            "disclosure": {
                "mode": report.disclosure.mode,
                "min_count": report.disclosure.min_count,
                "min_people_for_mean": report.disclosure.min_people_for_mean,
                "min_las_for_totals": report.disclosure.min_las_for_totals,
            },
            "disclosure_check": dict(report.disclosure_check),
            "tables": report.to_frame().to_dict(orient="records"),
            "analysis_provenance": dict(report.provenance),
            "outputs": dict(sorted(outputs.items())),
        }

    return store.write_report(out_dir, files=files, record=record, inputs=store.hash_inputs(inputs))
