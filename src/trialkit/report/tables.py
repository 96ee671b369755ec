"""The report's tables as tidy display DataFrames (rounded, disclosure-controlled).

Every builder takes a :class:`~trialkit.analyse.TrialAnalysis` and returns
:class:`ReportTable` objects whose ``frame`` holds strings ready to print; this is
the only place numbers are rounded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from trialkit.analyse.trial_analysis import TrialAnalysis
from trialkit.report import wording as W
from trialkit.report.disclosure import (
    SUPPRESSED,
    DisclosureSettings,
    suppress_means,
)
from trialkit.report.export import typed_frame
from trialkit.report.ledger import PeopleLedger
from trialkit.report.published import Fact, Ratio, count, token

__all__ = [
    "ReportTable",
    "baseline_tables",
    "cace_table",
    "contamination_table",
    "descriptive_table",
    "effects_table",
    "exclusions_table",
    "fidelity_table",
    "flow_table",
    "fmt",
    "icc_table",
    "fmt_ci",
    "fmt_p",
    "indicator_table",
    "la_count_table",
    "mdes_table",
    "missing_outcome_table",
    "sensitivity_table",
    "subgroup_table",
    "tidier_table",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportTable:
    """A published table: ``id`` (file stem), caption, display frame and a disclosure note.

    ``frame`` holds the formatted text the HTML and Markdown print;
    :meth:`export_frame` gives the typed values the CSV and xlsx exports carry.
    ``facts`` are the numbers of people the table prints (as tokens, see
    :mod:`trialkit.report.published`) until the disclosure pass replaces them.
    """

    id: str
    caption: str
    frame: pd.DataFrame
    note: str
    section: str
    data: pd.DataFrame | None = None
    facts: Mapping[str, Fact] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def export_frame(self) -> pd.DataFrame:
        """Typed values for analysts: numbers as numbers, CI bounds in their own columns.

        ``data`` (unrounded, one row per display row) when the table keeps it, else the
        display frame parsed by :func:`~trialkit.report.export.typed_frame`.
        """
        if self.data is not None:
            return self.data.copy()
        return typed_frame(self.frame)


def _round_text(x: Any) -> str:
    """Round long decimals embedded in free text (from upstream stages) to 3 significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return re.sub(r"-?\d+\.\d{4,}", lambda m: f"{float(m.group()):.3g}", str(x))


def _f(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v


def _num(x: Any) -> float | None:
    """An unrounded number for the typed export; ``None`` (an empty cell) when missing."""
    v = _f(x)
    return v if math.isfinite(v) else None


def _int(x: Any) -> int | None:
    v = _f(x)
    return int(v) if math.isfinite(v) else None


def fmt(x: Any, digits: int = 2) -> str:
    """Round for display; NaN/None as an en dash."""
    v = _f(x)
    if not math.isfinite(v):
        return "–"
    s = f"{v:.{digits}f}"
    return "0" + s[2:] if s.startswith("-0") and float(s) == 0 else s


def fmt_ci(lo: Any, hi: Any, digits: int = 2) -> str:
    if not (math.isfinite(_f(lo)) and math.isfinite(_f(hi))):
        return "–"
    return f"{fmt(lo, digits)} to {fmt(hi, digits)}"


def fmt_p(p: Any) -> str:
    v = _f(p)
    if not math.isfinite(v):
        return "–"
    if v < 0.001:
        return "<0.001"
    return f"{v:.3f}"


def _mean_sd(mean: Any, sd: Any, digits: int = 1) -> str:
    if mean == SUPPRESSED or sd == SUPPRESSED:
        return SUPPRESSED
    m = fmt(mean, digits)
    s = fmt(sd, digits)
    return f"{m} ({s})" if s != "–" else m


def _note(settings: DisclosureSettings, n_suppressed: int, what: str) -> str:
    if n_suppressed:
        return f"Disclosure control ({settings.mode}): {n_suppressed} {what} suppressed ('{SUPPRESSED}')."
    return f"Disclosure control ({settings.mode}): nothing needed suppression in this table."


def _arms(analysis: TrialAnalysis) -> tuple[str, str]:
    arms = analysis.protocol.get("arms", {})
    inter = next((k for k, a in arms.items() if a.get("role") == "intervention"), "intervention")
    ctrl = next((k for k, a in arms.items() if a.get("role") == "control"), "control")
    return inter, ctrl


def _labels(analysis: TrialAnalysis) -> dict[str, str]:
    return {o["id"]: o["label"] for o in analysis.protocol.get("outcomes", [])}


def _indicator_labels(analysis: TrialAnalysis) -> dict[str, str]:
    lm = analysis.table("logic_model")
    if not len(lm) or "indicator_id" not in lm:
        return {}
    sub = lm[lm["indicator_id"].astype(str) != ""]
    return dict(
        zip(sub["indicator_id"].astype(str), sub["indicator_label"].astype(str), strict=True)
    )


def _relabel(text: str, labels: Mapping[str, str]) -> str:
    """``text`` with every whole-word id in ``labels`` replaced by its label."""
    if not labels or not text:
        return text
    ids = sorted(labels, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w.])(" + "|".join(re.escape(i) for i in ids) + r")(?![\w])")
    return pattern.sub(lambda m: labels[m.group(1)], text)


# ---------------------------------------------------------------------------- section 2
def flow_table(analysis: TrialAnalysis, settings: DisclosureSettings) -> ReportTable:
    flow = analysis.table("flow")
    inter, ctrl = _arms(analysis)
    labels = _labels(analysis)
    ledger = PeopleLedger(analysis)
    facts: dict[str, Fact] = {}

    def cell(arm: str, k: pd.Series, n: pd.Series) -> str:
        f = ledger.flow_count(
            arm,
            str(k["level"]),
            str(k["stage"]),
            str(k["detail"]),
            int(n.iloc[0]) if len(n) else 0,
        )
        facts[f.id] = f
        return token(f)

    rows: list[dict[str, str]] = []
    if len(flow):
        keys = flow[["level", "stage", "detail"]].drop_duplicates()
        for _, k in keys.iterrows():
            sel = (
                (flow["level"] == k["level"])
                & (flow["stage"] == k["stage"])
                & (flow["detail"] == k["detail"])
            )
            vals = {a: flow.loc[sel & (flow["arm"] == a), "n"] for a in (inter, ctrl)}
            rows.append(
                {
                    "Level": str(k["level"]),
                    "Stage": str(k["stage"]),
                    "Detail": _relabel(str(k["detail"]), labels),
                    inter: cell(inter, k, vals[inter]),
                    ctrl: cell(ctrl, k, vals[ctrl]),
                }
            )
    return ReportTable(
        id="flow",
        section="flow",
        caption="Table 2.1. Participant flow (CONSORT extension for cluster trials): LAs, "
        "keyworkers and families by arm, with losses and reasons.",
        frame=pd.DataFrame(rows, columns=["Level", "Stage", "Detail", inter, ctrl]),
        note="",
        facts=facts,
    )


def la_count_table(analysis: TrialAnalysis, settings: DisclosureSettings) -> ReportTable:
    lc = analysis.table("la_counts")
    cols = ["not_consented", "withdrew", "continued"]
    names = {
        "not_consented": "Not consented",
        "withdrew": "Consented, withdrew",
        "continued": "Consented, continued",
    }
    if not len(lc):
        frame = pd.DataFrame(columns=["LA", "Arm", *names.values(), "Referred (total)"])
        return ReportTable(
            id="la_counts",
            section="flow",
            caption="Table 2.2. Families by LA.",
            frame=frame,
            note="No LA-level counts.",
        )
    lc = lc.sort_values(["arm", "la_id"], kind="stable").reset_index(drop=True)
    ledger = PeopleLedger(analysis)
    facts: dict[str, Fact] = {}

    def cell(f: Fact) -> str:
        facts[f.id] = f
        return token(f)

    rows = []
    for _, r in lc.iterrows():
        la = str(r["la_id"])
        values = {c: int(r[c]) for c in cols}
        values["referred"] = sum(values.values())
        rows.append(
            [la, str(r["arm"])] + [cell(ledger.la_count(la, c, v)) for c, v in values.items()]
        )
    totals = {c: int(lc[c].sum()) for c in cols}
    totals["referred"] = sum(totals.values())
    rows.append(["Total", "All"] + [cell(ledger.total_count(c, v)) for c, v in totals.items()])
    return ReportTable(
        id="la_counts",
        section="flow",
        caption="Table 2.2. Families referred by local authority and consent/withdrawal status.",
        frame=pd.DataFrame(rows, columns=["LA", "Arm", *names.values(), "Referred (total)"]),
        note="",
        facts=facts,
    )


def exclusions_table(analysis: TrialAnalysis, settings: DisclosureSettings) -> ReportTable:
    ex = analysis.table("exclusions")
    if "arm" in ex.columns and len(ex):  # counted by arm for the flow diagram; totals here
        ex = ex.groupby(["stage", "entity", "reason"], sort=True)["n"].sum().reset_index()
    labels = _labels(analysis)
    stage = ex.get("stage", pd.Series(dtype=str)).astype(str)
    ledger = PeopleLedger(analysis)
    facts: dict[str, Fact] = {}

    def cell(r: pd.Series) -> str:
        f = ledger.exclusion_count(str(r["stage"]), str(r["entity"]), str(r["reason"]), int(r["n"]))
        facts[f.id] = f
        return token(f)

    frame = pd.DataFrame(
        {
            "Stage": [
                f"analysis: {labels.get(s.split(':', 1)[1], s.split(':', 1)[1])}"
                if s.startswith("analysis:")
                else s
                for s in stage
            ],
            "Entity": ex.get("entity", pd.Series(dtype=str)).astype(str),
            "Reason": [
                _relabel(x, labels) for x in ex.get("reason", pd.Series(dtype=str)).astype(str)
            ],
            "n": [cell(r) for _, r in ex.iterrows()],
        }
    )
    return ReportTable(
        id="exclusions",
        section="flow",
        caption="Table 2.3. Entities not analysed, by analysis and reason (nothing is dropped silently).",
        frame=frame,
        note="",
        facts=facts,
    )


def missing_outcome_table(analysis: TrialAnalysis, settings: DisclosureSettings) -> ReportTable:
    """Table 2.4: share of eligible entities without a score, by outcome, timepoint and arm.

    The shares and warnings are those ``trialkit validate`` reports
    (:mod:`trialkit.data.missingness`), stored by the analysis as ``missing_outcomes``.
    """
    mo = analysis.table("missing_outcomes")
    inter, ctrl = _arms(analysis)
    labels = _labels(analysis)
    arm_names = {a: a.replace("_", " ").capitalize() for a in (inter, ctrl)}
    cols = ["Outcome", "Timepoint"]
    for a in (inter, ctrl):
        cols += [f"{arm_names[a]}: missing of eligible", f"{arm_names[a]}: %"]
    cols.append("Validation warning")
    rows: list[dict[str, str]] = []
    data: list[dict[str, Any]] = []
    ledger = PeopleLedger(analysis)
    facts: dict[str, Fact] = {}
    levels = {
        str(o["id"]): str(o.get("level", "family")) for o in analysis.protocol.get("outcomes", [])
    }

    def cell(f: Fact) -> str:
        facts[f.id] = f
        return token(f)

    if len(mo):
        for (oid, tp), sub in mo.groupby(["outcome_id", "timepoint"], sort=False):
            row: dict[str, str] = {
                "Outcome": labels.get(str(oid), str(oid)),
                "Timepoint": str(tp),
            }
            rec: dict[str, Any] = {"outcome_id": str(oid), "Outcome": row["Outcome"]}
            rec["timepoint"] = str(tp)
            for a in (inter, ctrl):
                r = sub[sub["arm"] == a]
                if len(r):
                    n_m, n_e = int(r["n_missing"].iloc[0]), int(r["n_eligible"].iloc[0])
                    share = _f(r["share_missing"].iloc[0])
                else:
                    n_m, n_e, share = 0, 0, math.nan
                missing = ledger.missing_count(a, str(oid), str(tp), n_m)
                eligible = ledger.eligible_count(a, levels.get(str(oid), "family"), n_e)
                shown = (
                    cell(
                        Ratio(
                            id=f"missing-share/{a}/{oid}/{tp}",
                            value=share,
                            numerator=missing,
                            denominator=eligible,
                            text=fmt(100 * share, 0),
                            coarse_text=f"about {10 * round(10 * share):.0f}",
                            label=f"share missing for {oid} at {tp} ({a})",
                        )
                    )
                    if n_e and math.isfinite(share)
                    else None
                )
                row[f"{arm_names[a]}: missing of eligible"] = f"{cell(missing)} of {cell(eligible)}"
                row[f"{arm_names[a]}: %"] = shown or "–"
                rec[f"{a} n_missing"] = token(missing)
                rec[f"{a} n_eligible"] = token(eligible)
                rec[f"{a} share_missing"] = shown
            codes = [c for c in str(sub["warnings"].iloc[0] or "").split("; ") if c]
            row["Validation warning"] = W.missingness_warning(codes)
            rec["validation_warnings"] = "; ".join(codes)
            rows.append(row)
            data.append(rec)
    return ReportTable(
        id="missing_outcomes",
        section="flow",
        caption="Table 2.4. Missing outcome data by arm and timepoint: eligible entities "
        "(consented families; all keyworkers) without a score, with the warnings of data "
        "validation.",
        frame=pd.DataFrame(rows, columns=cols),
        note="Missing = no scored measurement at the timepoint (not measured, withdrawn, or too "
        "few items answered). Counts are arm totals. " + W.missingness_rule(),
        data=pd.DataFrame(data) if data else None,
        facts=facts,
    )


# ---------------------------------------------------------------------------- section 3/4
def _tidier_text(analysis: TrialAnalysis, arm: str, item: str, text: str) -> str:
    """A TIDieR cell with the protocol's quantities worded by :func:`wording.quantity`.

    The analysis stage appends "label: value unit per x" for each declared quantity;
    the report rewrites that tail from the protocol ("1 FTE per LA", "16 months").
    """
    entry = analysis.protocol.get("arms", {}).get(arm, {}).get("tidier", {}).get(item)
    if item in ("how_well_actual", "modifications") or not isinstance(entry, Mapping):
        return text
    qs = [q for q in entry.get("quantities") or [] if isinstance(q, Mapping)]
    if not qs:
        return text
    base = str(entry.get("text") or "")
    tail = "; ".join(
        f"{q.get('label')}: {W.quantity(q.get('value'), q.get('unit'), q.get('per'))}"
        + (" [illustrative]" if q.get("illustrative") else "")
        for q in qs
    )
    return (base + " " if base else "") + tail


def tidier_table(analysis: TrialAnalysis) -> ReportTable:
    t = analysis.table("tidier")
    inter, ctrl = _arms(analysis)
    ledger = PeopleLedger(analysis)
    facts: dict[str, Fact] = {}
    rows: list[dict[str, str]] = []
    if len(t):
        for item in dict.fromkeys(t["item"]):
            sub = t[t["item"] == item]
            label = str(sub["item_label"].iloc[0])
            vals = {a: sub.loc[sub["arm"] == a, "text"] for a in (inter, ctrl)}
            rows.append(
                {
                    "TIDieR item": label,
                    **{
                        a: ledger.protect_short_of_plan(
                            _tidier_text(analysis, a, str(item), str(vals[a].iloc[0])), facts
                        )
                        if len(vals[a])
                        else ""
                        for a in (inter, ctrl)
                    },
                }
            )
    return ReportTable(
        id="tidier",
        section="tidier",
        caption="Table 3.1. TIDieR description of both arms; item 12 (how well, actual) comes "
        "from the fidelity assessment.",
        frame=pd.DataFrame(rows, columns=["TIDieR item", inter, ctrl]),
        note="",  # the disclosure pass writes the note over this table's facts
        facts=facts,
    )


def indicator_table(analysis: TrialAnalysis) -> ReportTable:
    lm = analysis.table("logic_model")
    inter, _ = _arms(analysis)
    ledger = PeopleLedger(analysis)
    facts: dict[str, Fact] = {}

    def end(r: pd.Series, which: str) -> str:
        v = _f(r.get(f"achieved_{which}"))
        f = ledger.range_endpoint(str(r["indicator_id"]), which, v, fmt(v, 2), inter)
        if f is None:
            return fmt(v, 2)
        facts[f.id] = f
        return token(f)

    rows: list[dict[str, str]] = []
    if len(lm):
        for _, r in lm[lm["indicator_id"].astype(str) != ""].iterrows():
            rows.append(
                {
                    "Logic-model node": str(r["node_label"]),
                    "Indicator": str(r["indicator_label"]),
                    "Target": W.quantity(r.get("target"), r.get("unit")),
                    "Achieved adherence, mean": fmt(r.get("achieved_mean"), 2),
                    "Range over LAs": (
                        f"{end(r, 'min')} to {end(r, 'max')}"
                        if math.isfinite(_f(r.get("achieved_min")))
                        else "–"
                    ),
                    "LAs": str(int(_f(r.get("n_la")))) if math.isfinite(_f(r.get("n_la"))) else "0",
                }
            )
    return ReportTable(
        id="logic_model_indicators",
        section="logic",
        caption="Table 4.1. Logic-model indicators: target and achieved adherence (delivered ÷ "
        "intended, capped at 1) in the intervention LAs.",
        frame=pd.DataFrame(
            rows,
            columns=[
                "Logic-model node",
                "Indicator",
                "Target",
                "Achieved adherence, mean",
                "Range over LAs",
                "LAs",
            ],
        ),
        note="",  # the disclosure pass writes the note over this table's facts
        facts=facts,
    )


# ---------------------------------------------------------------------------- section 5
def baseline_tables(analysis: TrialAnalysis, settings: DisclosureSettings) -> list[ReportTable]:
    bb = analysis.table("baseline_balance")
    inter, ctrl = _arms(analysis)
    ledger = PeopleLedger(analysis)
    out: list[ReportTable] = []
    titles = {"la": "local authority", "keyworker": "keyworker", "family": "family"}
    for k, level in enumerate(("la", "keyworker", "family"), start=1):
        sub = bb[bb["level"] == level] if len(bb) else bb
        facts: dict[str, Fact] = {}
        n_supp = 0
        if len(sub) and level != "la":
            means = sub[sub["kind"] == "mean"]
            _, n_supp = suppress_means(means, min_people=settings.min_people_for_mean)
        rows: list[dict[str, str]] = []
        if len(sub):
            for (_var, cat), g in sub.groupby(["variable", "category"], sort=False):
                rec = {"Characteristic": str(g["label"].iloc[0]) + (f": {cat}" if cat else "")}
                for arm in (inter, ctrl):
                    a = g[g["arm"] == arm]
                    if not len(a):
                        rec[f"{arm} n"] = "0"
                        rec[arm] = "–"
                        continue
                    r = a.iloc[0]
                    n = int(r["n"])
                    if r["kind"] == "proportion" and level != "la":
                        share = _category_share(ledger, sub, r, arm)
                        facts[share.id] = share
                        facts[share.denominator.id] = share.denominator
                        rec[f"{arm} n"] = token(share.denominator)
                        rec[arm] = token(share)
                    elif r["kind"] == "proportion":
                        rec[f"{arm} n"] = str(int(r["denominator"]))
                        rec[arm] = f"{n} ({100 * _f(r['mean']):.0f}%)"
                    else:
                        small = level != "la" and 0 < n < settings.min_people_for_mean
                        rec[f"{arm} n"] = str(n)
                        rec[arm] = SUPPRESSED if small else _mean_sd(r["mean"], r["sd"], 2)
                rows.append(rec)
        cols = ["Characteristic", f"{inter} n", inter, f"{ctrl} n", ctrl]
        supp = sum(1 for r in rows for c in (inter, ctrl) if r.get(c) == SUPPRESSED)
        note = (
            "Disclosure control: LA characteristics describe LAs, not people; none suppressed."
            if level == "la"
            else (
                f"Means and SDs of fewer than {settings.min_people_for_mean} people: "
                f"{supp} suppressed."
                if facts
                else _note(settings, supp, "mean(s)/count(s) of too few people")
            )
        )
        out.append(
            ReportTable(
                id=f"baseline_{level}",
                section="baseline",
                caption=f"Table 5.{k}. Baseline characteristics at {titles[level]} level by arm: "
                "mean (SD) or n (%).",
                frame=pd.DataFrame(rows, columns=cols),
                note=note,
                facts=facts,
            )
        )
    return out


def _category_share(ledger: PeopleLedger, sub: pd.DataFrame, r: pd.Series, arm: str) -> Ratio:
    """A baseline category "n (%)" of one arm as a share of people with a characteristic.

    The denominator adds up the variable's categories when they are exhaustive (so a
    hidden category cannot be worked out as the denominator minus the others).
    """
    level, var, cat = str(r["level"]), str(r["variable"]), str(r["category"])
    same = sub[(sub["variable"].astype(str) == var) & (sub["arm"].astype(str) == arm)]
    same = same[same["kind"] == "proportion"]
    den = int(r["denominator"])
    cats = [str(c) for c in same["category"]]
    key = f"base:{level}:{var}:{arm}"
    exhaustive = int(same["n"].sum()) == den
    n_la = ledger.n_la(arm)
    denominator = count(
        f"baseline/{level}/{var}/{arm}/n",
        den,
        [f"{key}:{c}" for c in cats] if exhaustive else [f"{key}:n"],
        n_la=n_la,
        label=f"{level}s with {var} recorded ({arm})",
    )
    return Ratio(
        id=f"baseline/{level}/{var}/{arm}/{cat}",
        value=_f(r["mean"]),
        numerator=count(
            f"baseline/{level}/{var}/{arm}/{cat}/n",
            int(r["n"]),
            [f"{key}:{cat}"],
            n_la=n_la,
            attribute=True,
            label=f"{level}s with {var} = {cat} ({arm})",
        ),
        denominator=denominator,
        text=f"{int(r['n'])} ({100 * _f(r['mean']):.0f}%)",
        coarse_text=f"about {10 * round(10 * _f(r['mean'])):.0f}%",
        label=f"{var} = {cat} ({arm})",
    )


# ---------------------------------------------------------------------------- section 6
def descriptive_table(analysis: TrialAnalysis, settings: DisclosureSettings) -> ReportTable:
    d = analysis.table("descriptives")
    labels = _labels(analysis)
    inter, ctrl = _arms(analysis)
    ledger = PeopleLedger(analysis)
    facts: dict[str, Fact] = {}
    rows: list[dict[str, str]] = []
    n_supp = 0
    if len(d):
        d, n_supp = suppress_means(d, min_people=settings.min_people_for_mean)
        for (oc, occ), g in d.groupby(["outcome_id", "occasion"], sort=False):
            rec = {"Outcome": labels.get(str(oc), str(oc)), "Occasion": str(occ)}
            for arm in (inter, ctrl):
                a = g[g["arm"] == arm]
                if not len(a):
                    rec[f"{arm} n"], rec[f"{arm} mean (SD)"] = "0", "–"
                    continue
                r = a.iloc[0]
                n_fact = ledger.analysed_count(arm, str(oc), int(r["n"]))
                facts[n_fact.id] = n_fact
                rec[f"{arm} n"] = token(n_fact)
                if math.isfinite(_f(r.get("events"))) and r["mean"] != SUPPRESSED:
                    ev = ledger.events_share(
                        arm,
                        str(oc),
                        int(_f(r["events"])),
                        int(r["n"]),
                        f"{int(_f(r['events']))} ({100 * _f(r['mean']):.1f}%)",
                    )
                    facts[ev.id] = ev
                    rec[f"{arm} mean (SD)"] = token(ev)
                else:
                    rec[f"{arm} mean (SD)"] = _mean_sd(r["mean"], r["sd"], 2)
            rows.append(rec)
    cols = [
        "Outcome",
        "Occasion",
        f"{inter} n",
        f"{inter} mean (SD)",
        f"{ctrl} n",
        f"{ctrl} mean (SD)",
    ]
    return ReportTable(
        id="outcome_descriptives",
        section="outcomes",
        caption="Table 6.1. Outcomes by arm at baseline and follow-up among those analysed: n and "
        "mean (SD); binary outcomes: events (%).",
        frame=pd.DataFrame(rows, columns=cols),
        note=f"Means and SDs of fewer than {settings.min_people_for_mean} people: "
        f"{n_supp} suppressed.",
        facts=facts,
    )


def _n_analysed(
    ledger: PeopleLedger, facts: dict[str, Fact], outcome: str, n_obs: Any
) -> str | None:
    """The token of an outcome's number analysed over both arms (None when there is none)."""
    v = _f(n_obs)
    if not math.isfinite(v):
        return None
    f = ledger.analysed_total(outcome, int(v))
    facts[f.id] = f
    return token(f)


def effects_table(analysis: TrialAnalysis) -> ReportTable:
    res = analysis.table("results")
    labels = _labels(analysis)
    ledger = PeopleLedger(analysis)
    facts: dict[str, Fact] = {}
    rows: list[dict[str, str]] = []
    data: list[dict[str, Any]] = []
    prim = res[res["analysis"] == "primary"] if len(res) else res
    remarks: list[str] = []
    for _, r in prim.iterrows():
        binary = r["type"] == "binary"
        use_or = binary and math.isfinite(_f(r.get("odds_ratio")))
        label = labels.get(str(r["outcome_id"]), str(r["outcome_id"]))
        missing = W.not_estimated(r.get("status"), r.get("reason"))
        n_an = _n_analysed(ledger, facts, str(r["outcome_id"]), r["n_obs"])
        if missing:
            remarks.append(f"{label}: {missing}.")
        if str(r.get("fallback") or "") not in ("", "nan"):
            remarks.append(f"{label}: {r['fallback']}.")
        data.append(
            {
                "Outcome": label,
                "Role": str(r["role"]),
                "Better": str(r["better"]),
                "Status": str(r.get("status") or "estimated"),
                "Scale": "odds ratio" if use_or else str(r["scale"]),
                "Adjusted difference": _num(r.get("odds_ratio") if use_or else r["estimate"]),
                "conf_low": _num(r.get("odds_ratio_low") if use_or else r["conf_low"]),
                "conf_high": _num(r.get("odds_ratio_high") if use_or else r["conf_high"]),
                "df method": W.method_name(r["df_method"]),
                "df": _num(r["df"]),
                "p": _num(r["p_value"]),
                "Holm-adjusted p": _num(r["p_adjusted"]) if r["role"] == "secondary" else None,
                "Hedges' g": _num(r["g"]),
                "Hedges' g conf_low": _num(r["g_low"]),
                "Hedges' g conf_high": _num(r["g_high"]),
                "ICC (LA)": _num(r["icc_la"]),
                "ICC (LA) conf_low": _num(r["icc_la_low"]),
                "ICC (LA) conf_high": _num(r["icc_la_high"]),
                "ICC (keyworker)": _num(r["icc_keyworker"]),
                "ICC (LA), unconditional": _num(r.get("icc_la_unconditional")),
                "ICC (keyworker), unconditional": _num(r.get("icc_keyworker_unconditional")),
                "ICC scale": str(r.get("icc_scale") or ""),
                "n analysed": n_an,
            }
        )
        if missing:
            rows.append(
                {
                    "Outcome": label,
                    "Role": str(r["role"]),
                    "Better": str(r["better"]),
                    "Scale": str(r["scale"]),
                    "Adjusted difference": str(r["status"]),
                    "95% CI": "–",
                    "df method": W.method_name(r["df_method"]) if r["df_method"] else "–",
                    "df": "–",
                    "p": "–",
                    "Holm-adjusted p": "–",
                    "Hedges' g (95% CI)": "–",
                    "n analysed": n_an or "–",
                }
            )
            continue
        est = fmt(r["estimate"], 2)
        ci = fmt_ci(r["conf_low"], r["conf_high"])
        if binary and math.isfinite(_f(r.get("odds_ratio"))):
            est = f"OR {fmt(r['odds_ratio'], 2)}"
            ci = fmt_ci(r.get("odds_ratio_low"), r.get("odds_ratio_high"))
        rows.append(
            {
                "Outcome": labels.get(str(r["outcome_id"]), str(r["outcome_id"])),
                "Role": str(r["role"]),
                "Better": str(r["better"]),
                "Scale": "odds ratio" if binary and est.startswith("OR") else str(r["scale"]),
                "Adjusted difference": est,
                "95% CI": ci,
                "df method": W.method_name(r["df_method"]) or "–",
                "df": fmt(r["df"], 1),
                "p": fmt_p(r["p_value"]),
                "Holm-adjusted p": fmt_p(r["p_adjusted"]) if r["role"] == "secondary" else "–",
                "Hedges' g (95% CI)": (
                    f"{fmt(r['g'])} ({fmt_ci(r['g_low'], r['g_high'])})"
                    if math.isfinite(_f(r["g"]))
                    else "–"
                ),
                "n analysed": n_an or "–",
            }
        )
    cols = [
        "Outcome",
        "Role",
        "Better",
        "Scale",
        "Adjusted difference",
        "95% CI",
        "df method",
        "df",
        "p",
        "Holm-adjusted p",
        "Hedges' g (95% CI)",
        "n analysed",
    ]
    return ReportTable(
        id="outcome_effects",
        section="outcomes",
        caption="Table 6.2. Adjusted intervention − control differences (primary analysis), with "
        "denominator-df method and Hedges' g (the model's interval divided by the "
        "unconditional total SD); intraclass correlations in Table 6.3.",
        frame=pd.DataFrame(rows, columns=cols),
        data=pd.DataFrame(data, columns=list(_EFFECT_COLUMNS)),
        note=" ".join(remarks),
        facts=facts,
    )


def _count_text(x: Any) -> str:
    v = _f(x)
    return str(int(v)) if math.isfinite(v) else "–"


def icc_table(analysis: TrialAnalysis) -> ReportTable:
    """Conditional and unconditional ICCs of every primary analysis, labelled with their scale."""
    res = analysis.table("results")
    labels = _labels(analysis)
    prim = res[res["analysis"] == "primary"] if len(res) else res
    rows: list[dict[str, str]] = []
    data: list[dict[str, Any]] = []
    for _, r in prim.iterrows():
        scale = str(r.get("icc_scale") or "")
        if scale in ("", "nan"):
            continue
        label = labels.get(str(r["outcome_id"]), str(r["outcome_id"]))
        shown = "latent (logistic, π²/3)" if scale.startswith("latent") else "outcome scale"
        three = str(r["level"]) == "family"
        data.append(
            {
                "Outcome": label,
                "Scale": shown,
                "ICC (LA), adjusted model": _num(r["icc_la"]),
                "conf_low": _num(r["icc_la_low"]),
                "conf_high": _num(r["icc_la_high"]),
                "ICC (LA), unconditional": _num(r.get("icc_la_unconditional")),
                "ICC (keyworker), adjusted model": _num(r["icc_keyworker"]) if three else None,
                "ICC (keyworker), unconditional": (
                    _num(r.get("icc_keyworker_unconditional")) if three else None
                ),
            }
        )
        rows.append(
            {
                "Outcome": label,
                "Scale": shown,
                "ICC (LA), adjusted model": fmt(r["icc_la"], 3)
                + (
                    f" ({fmt_ci(r['icc_la_low'], r['icc_la_high'], 3)})"
                    if math.isfinite(_f(r["icc_la_low"]))
                    else ""
                ),
                "ICC (LA), unconditional": fmt(r.get("icc_la_unconditional"), 3),
                "ICC (keyworker), adjusted model": fmt(r["icc_keyworker"], 3) if three else "–",
                "ICC (keyworker), unconditional": (
                    fmt(r.get("icc_keyworker_unconditional"), 3) if three else "–"
                ),
            }
        )
    cols = [
        "Outcome",
        "Scale",
        "ICC (LA), adjusted model",
        "ICC (LA), unconditional",
        "ICC (keyworker), adjusted model",
        "ICC (keyworker), unconditional",
    ]
    return ReportTable(
        id="icc",
        section="outcomes",
        caption="Table 6.3. Intraclass correlations: from the adjusted analysis model "
        "(conditional on the covariates, with 95% CI) and from the unconditional model "
        "(intercept and random effects only, the ICC for planning). Binary outcomes are on "
        "the latent logistic scale (level variance / (total + π²/3)); keyworker ICCs apply "
        "to family outcomes.",
        frame=pd.DataFrame(rows, columns=cols),
        data=pd.DataFrame(data, columns=list(_ICC_COLUMNS)),
        note="Disclosure control: model estimates over all LAs; none suppressed.",
    )


def mdes_table(analysis: TrialAnalysis) -> ReportTable:
    m = analysis.table("mdes")
    labels = _labels(analysis)
    ledger = PeopleLedger(analysis)
    facts: dict[str, Fact] = {}
    rows: list[dict[str, str]] = []
    n_tokens: list[str | None] = []
    for _, r in m.iterrows():
        n_tokens.append(_n_analysed(ledger, facts, str(r["outcome_id"]), r["n_obs"]))
        three = str(r.get("level")) == "family"
        # a keyworker outcome has no keyworker level: "–" keeps every cell in the header's order
        r2 = [fmt(r.get("r2_la"), 2), fmt(r.get("r2_keyworker"), 2) if three else "–"]
        rows.append(
            {
                "Outcome": labels.get(str(r["outcome_id"]), str(r["outcome_id"])),
                "LAs": _count_text(r["n_la"]),
                "n analysed": n_tokens[-1] or "–",
                "CV of LA sizes": fmt(r.get("cv_cluster_size"), 2),
                "Unconditional ICC (LA; keyworker)": fmt(r["icc_la"], 3)
                + f"; {fmt(r.get('icc_keyworker'), 3) if three else '–'}",
                "R² credited (LA; keyworker; individual)": "; ".join(
                    [*r2, fmt(r.get("r2_residual"), 2)]
                ),
                "MDES without covariates (95% CI)": f"{fmt(r.get('mdes_unadjusted'), 2)} "
                f"({fmt_ci(r.get('mdes_unadjusted_conf_low'), r.get('mdes_unadjusted_conf_high'))})",
                "MDES with covariate adjustment (95% CI)": f"{fmt(r['mdes'], 2)} "
                f"({fmt_ci(r['mdes_conf_low'], r['mdes_conf_high'])})",
            }
        )
    return ReportTable(
        id="mdes",
        section="summary",
        caption="Table 1.1. Minimum detectable effect size in SD units (80% power, two-sided 5% "
        "test) for the achieved sample: unconditional ICCs (intercept-only model), the "
        "coefficient of variation of the analysed LA sizes (Eldridge et al. 2006), and, in the "
        "last column, the share of each level's variance explained by the primary model's "
        "covariates (R²).",
        frame=pd.DataFrame(
            rows,
            columns=[
                "Outcome",
                "LAs",
                "n analysed",
                "CV of LA sizes",
                "Unconditional ICC (LA; keyworker)",
                "R² credited (LA; keyworker; individual)",
                "MDES without covariates (95% CI)",
                "MDES with covariate adjustment (95% CI)",
            ],
        ),
        data=m.assign(n_obs=pd.Series(n_tokens, index=m.index, dtype=object)) if len(m) else None,
        facts=facts,
        note="Pilot ICCs are imprecise: the MDES is a guide, not a power calculation for the "
        "definitive trial. – : no keyworker level (keyworker outcomes)."
        + (
            " An R² of 1.00 means the adjusted model estimated that level's variance at 0 "
            "(a singular fit): the MDES with covariate adjustment is then optimistic."
            if len(m) and bool((m.get("r2_la", pd.Series(dtype=float)) >= 0.995).any())
            else ""
        ),
    )


def subgroup_table(analysis: TrialAnalysis) -> ReportTable:
    sg = analysis.table("subgroups")
    labels = _labels(analysis)
    rows = [
        {
            "Subgroup": str(r["subgroup_id"]),
            "Outcome": labels.get(str(r["outcome_id"]), str(r["outcome_id"])),
            "Contrast": str(r["contrast"]),
            "Interaction": fmt(r["estimate"], 2),
            "95% CI": fmt_ci(r["conf_low"], r["conf_high"]),
            "df method": W.method_name(r["df_method"]) or "–",
            "df": fmt(r["df"], 1),
            "p": fmt_p(r["p_value"]),
        }
        for _, r in sg.iterrows()
    ]
    return ReportTable(
        id="subgroups",
        section="outcomes",
        caption="Table 6.4. Pre-specified subgroup analyses: treatment × subgroup interaction "
        "in the primary model (exploratory; a pilot has little power for interactions).",
        frame=pd.DataFrame(
            rows,
            columns=[
                "Subgroup",
                "Outcome",
                "Contrast",
                "Interaction",
                "95% CI",
                "df method",
                "df",
                "p",
            ],
        ),
        note="Disclosure control: model estimates; none suppressed.",
    )


# ---------------------------------------------------------------------------- section 7
def fidelity_table(analysis: TrialAnalysis) -> ReportTable:
    comp = analysis.table("fidelity_components")
    ov = analysis.table("fidelity_overall")
    if not len(comp):
        return ReportTable(
            id="fidelity",
            section="fidelity",
            caption="Table 7.1. Fidelity by LA and component.",
            frame=pd.DataFrame(),
            note="Fidelity was not assessed.",
        )
    components = list(dict.fromkeys(comp["component"].astype(str)))
    _, ctrl = _arms(analysis)
    rows: list[dict[str, str]] = []
    for (la, arm), g in comp.groupby(["la_id", "arm"], sort=True):
        rec = {"LA": str(la), "Arm": str(arm)}
        for c in components:
            v = g.loc[g["component"] == c, "index"]
            rec[c] = fmt(v.iloc[0], 2) if len(v) else "–"
        o = ov[ov["la_id"] == la]
        rec["Overall"] = fmt(o["overall_index"].iloc[0], 2) if len(o) else "–"
        rec["Band"] = (
            "not applicable (control)"
            if str(arm) == ctrl
            else (str(o["band"].iloc[0]) if len(o) else "–")
        )
        rows.append(rec)
    frame = pd.DataFrame(rows, columns=["LA", "Arm", *components, "Overall", "Band"])
    frame = frame.sort_values(["Arm", "LA"], key=lambda s: s.astype(str), kind="stable")
    return ReportTable(
        id="fidelity",
        section="fidelity",
        caption="Table 7.1. Fidelity index (0–1) by LA and component; overall index and band.",
        frame=frame.reset_index(drop=True),
        note="Disclosure control: indices, not counts; none suppressed.",
    )


def contamination_table(analysis: TrialAnalysis) -> ReportTable:
    c = analysis.table("contamination")
    ind_labels = _indicator_labels(analysis)
    ledger = PeopleLedger(analysis)
    facts: dict[str, Fact] = {}
    rows = [
        {
            "LA": str(r["la_id"]),
            "Component": str(r["component"]),
            "Any delivered": "yes" if bool(r["contaminated"]) else "no",
            "Indicators delivered": str(int(r["n_indicators_delivered"])),
            "Detail": _relabel(
                ledger.protect_delivered(
                    str(r["la_id"]),
                    "" if pd.isna(r["detail"]) else str(r["detail"]),
                    facts,
                    _round_text,
                ),
                ind_labels,
            ),
        }
        for _, r in c.iterrows()
    ]
    return ReportTable(
        id="contamination",
        section="fidelity",
        caption="Table 7.2. Contamination: intervention components delivered in control LAs.",
        frame=pd.DataFrame(
            rows, columns=["LA", "Component", "Any delivered", "Indicators delivered", "Detail"]
        ),
        note="",  # the disclosure pass writes the note over this table's facts
        facts=facts,
    )


def cace_table(analysis: TrialAnalysis) -> ReportTable:
    c = analysis.table("cace")
    labels = _labels(analysis)
    names = {"cace": "CACE", "itt": "ITT", "first_stage": "First stage (complier share difference)"}
    rows = [
        {
            "Outcome": labels.get(str(r["outcome_id"]), str(r["outcome_id"])),
            "Estimand": names.get(str(r["term"]), str(r["term"]))
            + (" (risk difference)" if r.get("scale") == "risk difference" else ""),
            "Estimate": W.not_estimated(r.get("status"), r.get("reason"))
            or fmt(r.get("estimate"), 2),
            "95% CI": fmt_ci(r.get("conf_low"), r.get("conf_high")),
            "df (Satterthwaite)": fmt(r.get("df"), 1),
            "p": fmt_p(r.get("p_value")),
            "Compliance": f"{r['measure']} ≥ {fmt(r['threshold'], 2)}"
            if str(r.get("measure") or "") not in ("", "nan")
            else "–",
        }
        for _, r in c.iterrows()
    ]
    return ReportTable(
        id="cace",
        section="fidelity",
        caption="Table 7.3. Complier average causal effect (2SLS, CR2 by LA, Satterthwaite df) "
        "for the primary outcomes.",
        frame=pd.DataFrame(
            rows,
            columns=[
                "Outcome",
                "Estimand",
                "Estimate",
                "95% CI",
                "df (Satterthwaite)",
                "p",
                "Compliance",
            ],
        ),
        note="Disclosure control: model estimates; none suppressed.",
    )


# ---------------------------------------------------------------------------- section 8
def sensitivity_table(analysis: TrialAnalysis) -> ReportTable:
    res = analysis.table("results")
    labels = _labels(analysis)
    names = {
        "primary": "Primary (as planned)",
        "cluster-level": "Cluster-level",
        "randomisation-test": "Randomisation test (kept allocation space)",
        "cr2": "OLS with CR2 cluster-robust SE",
        "satterthwaite": "Mixed model, Satterthwaite df",
        "gee": "GEE",
        "multilevel-mi": "Multilevel multiple imputation (MAR)",
    }
    rows = [
        {
            "Outcome": labels.get(str(r["outcome_id"]), str(r["outcome_id"])),
            "Analysis": names.get(str(r["analysis"]), str(r["analysis"])),
            "Scale": str(r["scale"]),
            "Estimate": fmt(r["estimate"], 2),
            "95% CI": fmt_ci(r["conf_low"], r["conf_high"]),
            "df method": W.method_name(r["df_method"]) or "–",
            "df": fmt(r["df"], 1),
            "p": fmt_p(r["p_value"]),
            "Note": _sens_note(r),
        }
        for _, r in res.iterrows()
    ]
    data = [
        {
            "Outcome": labels.get(str(r["outcome_id"]), str(r["outcome_id"])),
            "Analysis": names.get(str(r["analysis"]), str(r["analysis"])),
            "Scale": str(r["scale"]),
            "Estimate": _num(r["estimate"]),
            "conf_low": _num(r["conf_low"]),
            "conf_high": _num(r["conf_high"]),
            "df method": W.method_name(r["df_method"]),
            "df": _num(r["df"]),
            "p": _num(r["p_value"]),
            "Note": _sens_note(r),
        }
        for _, r in res.iterrows()
    ]
    return ReportTable(
        id="sensitivity",
        section="sensitivity",
        caption="Table 8.1. Sensitivity analyses beside the primary analysis for every outcome.",
        data=pd.DataFrame(data, columns=list(_SENS_COLUMNS)),
        frame=pd.DataFrame(
            rows,
            columns=[
                "Outcome",
                "Analysis",
                "Scale",
                "Estimate",
                "95% CI",
                "df method",
                "df",
                "p",
                "Note",
            ],
        ),
        note="Disclosure control: model estimates over all LAs; none suppressed.",
    )


def _sens_note(r: pd.Series) -> str:
    """The row's status (not estimable / not run, with why), fallback and model notes."""
    parts = [
        W.not_estimated(r.get("status"), r.get("reason")),
        str(r.get("fallback") or ""),
        str(r.get("note") or ""),
    ]
    return "; ".join(p for p in parts if p and p != "nan")


_ICC_COLUMNS = (
    "Outcome",
    "Scale",
    "ICC (LA), adjusted model",
    "conf_low",
    "conf_high",
    "ICC (LA), unconditional",
    "ICC (keyworker), adjusted model",
    "ICC (keyworker), unconditional",
)
_EFFECT_COLUMNS = (
    "Outcome",
    "Role",
    "Better",
    "Status",
    "Scale",
    "Adjusted difference",
    "conf_low",
    "conf_high",
    "df method",
    "df",
    "p",
    "Holm-adjusted p",
    "Hedges' g",
    "Hedges' g conf_low",
    "Hedges' g conf_high",
    "ICC (LA)",
    "ICC (LA) conf_low",
    "ICC (LA) conf_high",
    "ICC (keyworker)",
    "ICC (LA), unconditional",
    "ICC (keyworker), unconditional",
    "ICC scale",
    "n analysed",
)
_SENS_COLUMNS = (
    "Outcome",
    "Analysis",
    "Scale",
    "Estimate",
    "conf_low",
    "conf_high",
    "df method",
    "df",
    "p",
    "Note",
)


def describe_settings(d: Mapping[str, Any] | None) -> DisclosureSettings:
    return DisclosureSettings.from_mapping(dict(d or {}))


def heatmap_data(analysis: TrialAnalysis) -> tuple[list[str], list[str], list[list[float]]]:
    comp = analysis.table("fidelity_components")
    if not len(comp):
        return [], [], []
    comps = list(dict.fromkeys(comp["component"].astype(str)))
    order = (
        comp[["la_id", "arm"]]
        .drop_duplicates()
        .sort_values(["arm", "la_id"], key=lambda s: s.astype(str), kind="stable")
    )
    rows: list[str] = []
    vals: list[list[float]] = []
    for _, r in order.iterrows():
        g = comp[comp["la_id"] == r["la_id"]]
        rows.append(f"{r['la_id']} ({W.arm_label(analysis.protocol, str(r['arm']))})")
        vals.append(
            [
                _f(g.loc[g["component"] == c, "index"].iloc[0])
                if (g["component"] == c).any()
                else float("nan")
                for c in comps
            ]
        )
    return rows, comps, vals
