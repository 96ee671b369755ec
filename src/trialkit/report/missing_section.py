"""The report's "Missing outcome data" section: complete case beside MI, tipping point, predictors.

Built from the analysis tables of the protocol's missing-data sensitivity analysis
(:mod:`trialkit.analyse.missing_data`): ``results`` (the complete-case ``primary`` row and
the ``multilevel-mi`` row), ``imputation`` (m, FMI, RIV, tipping points), ``tipping_point``
(the pooled effect for each δ) and ``missingness_predictors`` (counts by arm, by thirds of
the baseline and mid-point scores, and by LA).

Disclosure: counts are arm-level; the counts by thirds of a score are suppressed
(primary and complementary, :func:`~trialkit.report.disclosure.suppress_counts`) when
below the threshold; the LAs' shares of missing outcomes are shown only as the number of
LAs in coarse bands (:data:`~trialkit.report.wording.MISSING_SHARE_BANDS`), never per LA.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from trialkit.analyse.trial_analysis import TrialAnalysis
from trialkit.report import wording as W
from trialkit.report.disclosure import SUPPRESSED, DisclosureSettings, suppress_counts
from trialkit.report.tables import ReportTable, _arms, _labels, _num, fmt, fmt_ci, fmt_p

__all__ = [
    "MISSING_SECTION_ID",
    "MISSING_SECTION_TITLE",
    "la_band_table",
    "mi_comparison_table",
    "missing_data_section",
    "predictor_table",
    "tipping_point_of",
    "tipping_table",
]

MISSING_SECTION_ID = "missing_data"
MISSING_SECTION_TITLE = "6a. Missing outcome data"
_SEC = MISSING_SECTION_ID
#: ``delta_arm`` in words.
_DELTA_ARM_WORDS = {
    "treated": "intervention",
    "control": "control",
    "both": "intervention and control",
}


def _outcomes(analysis: TrialAnalysis) -> dict[str, dict[str, Any]]:
    return {str(o["id"]): dict(o) for o in analysis.protocol.get("outcomes", [])}


def _arm_name(arm: str) -> str:
    return arm.replace("_", " ").capitalize()


def _alpha(analysis: TrialAnalysis) -> float:
    return float((analysis.protocol.get("analysis", {}) or {}).get("alpha", 0.05))


def mi_comparison_table(analysis: TrialAnalysis) -> ReportTable:
    """Table 6a.1: the complete-case (primary) analysis beside multilevel MI, per outcome."""
    res = analysis.table("results")
    imp = analysis.table("imputation")
    labels = _labels(analysis)
    rows, data = [], []
    for _, s in imp.iterrows():
        oid = str(s["outcome_id"])
        for kind, name in (("primary", "Complete case (primary)"), ("multilevel-mi", "MI (MAR)")):
            hit = res[(res["outcome_id"] == oid) & (res["analysis"] == kind)]
            if not len(hit):
                continue
            r = hit.iloc[0]
            mi = kind == "multilevel-mi"
            rows.append(
                {
                    "Outcome": labels.get(oid, oid),
                    "Analysis": name,
                    "n analysed": fmt(r["n_obs"], 0),
                    "Estimate": fmt(r["estimate"], 2),
                    "95% CI": fmt_ci(r["conf_low"], r["conf_high"]),
                    "df": f"{fmt(r['df'], 1)} ({W.method_name(r['df_method']) or r['df_method']})",
                    "p": fmt_p(r["p_value"]),
                    "FMI": fmt(s.get("fraction_missing_information"), 2) if mi else "–",
                    "RIV": fmt(s.get("relative_increase_in_variance"), 2) if mi else "–",
                    "m": fmt(s.get("imputations"), 0) if mi else "–",
                }
            )
            data.append(
                {
                    "outcome_id": oid,
                    "analysis": kind,
                    "n_obs": _num(r["n_obs"]),
                    "estimate": _num(r["estimate"]),
                    "conf_low": _num(r["conf_low"]),
                    "conf_high": _num(r["conf_high"]),
                    "df": _num(r["df"]),
                    "df_method": str(r["df_method"]),
                    "p_value": _num(r["p_value"]),
                    "fraction_missing_information": _num(s.get("fraction_missing_information"))
                    if mi
                    else None,
                    "relative_increase_in_variance": _num(s.get("relative_increase_in_variance"))
                    if mi
                    else None,
                    "m": _num(s.get("imputations")) if mi else None,
                }
            )
    cols = ["Outcome", "Analysis", "n analysed", "Estimate", "95% CI", "df", "p"]
    return ReportTable(
        id="missing_data_mi",
        section=_SEC,
        caption="Table 6a.1. Complete-case analysis beside multilevel multiple imputation "
        "(MAR): estimate, 95% CI, df (Kenward–Roger for the complete case, Barnard–Rubin "
        "for MI), fraction of missing information (FMI), relative increase in variance (RIV) "
        "and number of imputations (m).",
        frame=pd.DataFrame(rows, columns=[*cols, "FMI", "RIV", "m"]),
        note="Disclosure control: model estimates over all LAs; none suppressed.",
        data=pd.DataFrame(data) if data else None,
    )


def tipping_point_of(analysis: TrialAnalysis, outcome_id: str) -> Any:
    """The stored tipping-point analysis of one outcome as a
    :class:`~trialkit.models.multiple_imputation.TippingPoint` (None when absent)."""
    from trialkit.models.multiple_imputation import TippingPoint

    tp = analysis.table("tipping_point")
    imp = analysis.table("imputation")
    if not len(tp) or not len(imp):
        return None
    sub = tp[tp["outcome_id"] == outcome_id].drop(columns=["outcome_id"])
    hit = imp[imp["outcome_id"] == outcome_id]
    if not len(sub) or not len(hit):
        return None
    s: dict[Any, Any] = hit.iloc[0].to_dict()

    def opt(x: Any) -> float | None:
        v = _num(x)
        return None if v is None or not math.isfinite(v) else v

    return TippingPoint(
        table=sub.sort_values("delta").reset_index(drop=True),
        conclusion_mar=str(s.get("conclusion_mar", "")),
        tipping_below=opt(s.get("tipping_below")),
        tipping_above=opt(s.get("tipping_above")),
        delta_arm=str(s.get("delta_arm", "treated")),
        outcome_sd=float(_num(s.get("outcome_sd")) or math.nan),
        alpha=_alpha(analysis),
        m=int(_num(s.get("imputations")) or 0),
    )


def tipping_table(analysis: TrialAnalysis, outcome_id: str) -> ReportTable:
    """Table 6a.2: the pooled effect for each δ of the grid, with the conclusion."""
    tp = tipping_point_of(analysis, outcome_id)
    better = _outcomes(analysis).get(outcome_id, {}).get("better")
    rows, data = [], []
    t = tp.table if tp is not None else pd.DataFrame()
    for _, r in t.iterrows():
        concl = W.conclusion_words(r["conf_low"], r["conf_high"], better)
        rows.append(
            {
                "δ (SD)": fmt(r["delta"], 2),
                "Shift (outcome units)": fmt(r["delta_outcome_units"], 2),
                "Estimate": fmt(r["estimate"], 2),
                "95% CI": fmt_ci(r["conf_low"], r["conf_high"]),
                "df": fmt(r["df"], 1),
                "p": fmt_p(r["p_value"]),
                "Conclusion": concl,
            }
        )
        data.append(
            {
                "outcome_id": outcome_id,
                **{
                    k: _num(r[k])
                    for k in (
                        "delta",
                        "delta_outcome_units",
                        "estimate",
                        "conf_low",
                        "conf_high",
                        "df",
                        "p_value",
                        "fraction_missing_information",
                    )
                },
                "conclusion": concl,
            }
        )
    arm = _DELTA_ARM_WORDS.get(tp.delta_arm, tp.delta_arm) if tp is not None else "intervention"
    where = [x for x in (tp.tipping_below, tp.tipping_above) if x is not None] if tp else []
    tip = ", ".join(f"δ = {x:.2f} SD" for x in where) or "none within the grid"
    return ReportTable(
        id="missing_data_tipping_point",
        section=_SEC,
        caption=f"Table 6a.2. Tipping-point analysis: imputed outcomes of the {arm} arm shifted "
        f"by δ outcome SDs (δ = 0: MAR). Tipping point: {tip}.",
        frame=pd.DataFrame(
            rows,
            columns=["δ (SD)", "Shift (outcome units)", "Estimate", "95% CI", "df", "p"]
            + ["Conclusion"],
        ),
        note="Disclosure control: model estimates over all LAs; none suppressed.",
        data=pd.DataFrame(data) if data else None,
    )


def _cells(miss: Any, total: Any, masked_miss: bool, masked_total: bool) -> tuple[str, str]:
    m = SUPPRESSED if masked_miss else str(int(miss))
    n = SUPPRESSED if masked_total else str(int(total))
    pct = SUPPRESSED if (masked_miss or masked_total) else fmt(100 * miss / total, 0)
    return f"{m} of {n}", pct


def predictor_table(analysis: TrialAnalysis, settings: DisclosureSettings) -> ReportTable:
    """Table 6a.3: missing outcomes by arm and by thirds of the baseline and mid-point scores.

    Counts of each (factor, arm) block below the disclosure threshold are suppressed with
    complementary suppression (the arm's total is published).
    """
    mp = analysis.table("missingness_predictors")
    inter, ctrl = _arms(analysis)
    labels = _labels(analysis)
    arms = (inter, ctrl)
    cols = ["Outcome", "Factor", "Level"]
    for a in arms:
        cols += [f"{_arm_name(a)}: missing of n", f"{_arm_name(a)}: %"]
    rows: list[dict[str, str]] = []
    n_supp = 0
    sub = mp[mp["factor"] != "la"] if len(mp) else mp
    for (oid, factor), blk in sub.groupby(["outcome_id", "factor"], sort=False):
        levels = list(dict.fromkeys(blk["level"].astype(str)))
        cells: dict[tuple[str, str], tuple[str, str]] = {}
        for a in arms:
            b = blk[blk["arm"].astype(str) == a].set_index("level")
            miss = np.array([int(b["n_missing"].get(lv, 0)) for lv in levels])
            n = np.array([int(b["n"].get(lv, 0)) for lv in levels])
            if factor == "arm":
                for i, lv in enumerate(levels):
                    small = 0 < miss[i] < settings.threshold
                    n_supp += int(small)
                    cells[(lv, a)] = _cells(miss[i], n[i], small, False) if n[i] else ("–", "–")
                continue
            st = suppress_counts(
                np.column_stack([miss, n - miss]), settings.threshold, row_labels=levels
            )
            n_supp += int(st.mask[:-1, :-1].sum())
            for i, lv in enumerate(levels):
                masked_n = bool(st.mask[i, -1])
                cells[(lv, a)] = (
                    _cells(miss[i], n[i], bool(st.mask[i, 0]), masked_n) if n[i] else ("–", "–")
                )
        if factor == "arm":  # one row: each arm's total
            row = {"Outcome": labels.get(str(oid), str(oid)), "Factor": "Arm", "Level": "All"}
            for a in arms:
                c = cells.get((a, a), ("–", "–"))
                row[f"{_arm_name(a)}: missing of n"], row[f"{_arm_name(a)}: %"] = c
            rows.append(row)
            continue
        for lv in levels:
            row = {
                "Outcome": labels.get(str(oid), str(oid)),
                "Factor": f"Thirds of the {factor}",
                "Level": lv,
            }
            for a in arms:
                c = cells.get((lv, a), ("–", "–"))
                row[f"{_arm_name(a)}: missing of n"], row[f"{_arm_name(a)}: %"] = c
            rows.append(row)
    note = (
        f"Disclosure control ({settings.mode}): counts below {settings.threshold} within a "
        "factor and arm are suppressed ('c'), with complementary suppression so that they "
        f"cannot be recovered from the arm's total; {n_supp} count(s) suppressed."
    )
    return ReportTable(
        id="missing_data_predictors",
        section=_SEC,
        caption="Table 6a.3. What predicts a missing outcome: families without an end-point "
        "outcome by arm, and by thirds of the baseline and mid-point scores (cut at the "
        "tertiles of the observed values, both arms together).",
        frame=pd.DataFrame(rows, columns=cols),
        note=note,
    )


def la_band_table(analysis: TrialAnalysis) -> ReportTable:
    """Table 6a.4: the number of LAs in each band of the share of missing outcomes, by arm."""
    mp = analysis.table("missingness_predictors")
    inter, ctrl = _arms(analysis)
    labels = _labels(analysis)
    bands = [b for _, b in W.MISSING_SHARE_BANDS]
    rows, data = [], []
    la = mp[mp["factor"] == "la"] if len(mp) else mp
    for oid, blk in la.groupby("outcome_id", sort=False):
        blk = blk.assign(
            band=[W.share_band(m / n) for m, n in zip(blk["n_missing"], blk["n"], strict=True)]
        )
        for band in bands:
            row: dict[str, Any] = {"Outcome": labels.get(str(oid), str(oid)), "Share missing": band}
            for a in (inter, ctrl):
                row[f"{_arm_name(a)}: LAs"] = int(
                    ((blk["band"] == band) & (blk["arm"].astype(str) == a)).sum()
                )
            rows.append(row)
            data.append({"outcome_id": str(oid), **row})
    cols = ["Outcome", "Share missing", f"{_arm_name(inter)}: LAs", f"{_arm_name(ctrl)}: LAs"]
    return ReportTable(
        id="missing_data_la_bands",
        section=_SEC,
        caption="Table 6a.4. LAs by their share of families without an end-point outcome "
        "(coarsened bands), by arm.",
        frame=pd.DataFrame(rows, columns=cols),
        note="Disclosure control: LA-level shares of small counts are disclosive, so each LA's "
        "share is shown only as a band (< 20%, 20–40%, > 40%) and the table counts LAs, "
        "not families.",
        data=pd.DataFrame(data) if data else None,
    )


def _figures(analysis: TrialAnalysis, make_figure: Any) -> tuple[Any, ...]:
    from trialkit.models.multiple_imputation import plot_tipping_point
    from trialkit.plotting import figure_to_svg

    out = []
    labels = _labels(analysis)
    for i, oid in enumerate(analysis.table("imputation")["outcome_id"].astype(str), start=1):
        tp = tipping_point_of(analysis, oid)
        if tp is None:
            continue
        lab = labels.get(oid, oid).split(" (")[0]
        alt = f"Tipping-point plot for {lab}: pooled estimate and 95% CI against δ; " + "; ".join(
            f"δ {r.delta:.2f}: {r.estimate:.2f} ({r.conf_low:.2f} to {r.conf_high:.2f})"
            for r in tp.table.itertuples()
        )
        svg = figure_to_svg(
            plot_tipping_point(tp, title=f"Tipping point: {lab}"),
            title=f"Tipping-point analysis, {lab}",
            desc=alt,
        )
        out.append(
            make_figure(
                id=f"tipping_point_{oid}",
                caption=f"Figure 6a.{i}. Tipping-point analysis for {lab}: the pooled treatment "
                f"effect and its 95% CI when the imputed outcomes of the "
                f"{_DELTA_ARM_WORDS.get(tp.delta_arm, tp.delta_arm)} arm are "
                "shifted by δ outcome SDs; dashed line: where the conclusion changes.",
                alt=alt,
                svg=svg,
            )
        )
    return tuple(out)


def missing_data_section(
    analysis: TrialAnalysis, settings: DisclosureSettings, *, make_section: Any, make_figure: Any
) -> Any:
    """The "Missing outcome data" section (``make_section``/``make_figure``: the report's
    ``Section`` and ``Figure`` classes)."""
    imp = analysis.table("imputation")
    if not len(imp) or "tipping_point" not in analysis.tables:
        return make_section(
            id=MISSING_SECTION_ID,
            title=MISSING_SECTION_TITLE,
            paragraphs=(W.MISSING_DATA_NONE, W.missingness_rule()),
        )
    res = analysis.table("results")
    outcomes = _outcomes(analysis)
    paras: list[str] = []
    tables: list[ReportTable] = [mi_comparison_table(analysis)]
    for _, s in imp.iterrows():
        oid = str(s["outcome_id"])
        oc = outcomes.get(oid, {})
        aux = str(s.get("auxiliary") or "").split()
        aux_words = " and ".join(
            f"{a.removeprefix('aux_')}-point score" if a.startswith("aux_") else a for a in aux
        )
        clusters = "LA and keyworker" if oc.get("level") == "family" else "LA"
        paras.append(W.missing_data_intro(s.get("imputations"), aux_words, clusters))
        mi = res[(res["outcome_id"] == oid) & (res["analysis"] == "multilevel-mi")]
        if len(mi):
            paras.append(
                W.fmi_sentence(
                    s.get("fraction_missing_information"), s.get("relative_increase_in_variance")
                )
            )
        tp = tipping_point_of(analysis, oid)
        if tp is not None:
            arm = _DELTA_ARM_WORDS.get(tp.delta_arm, tp.delta_arm)
            paras.append(W.delta_explained(arm, tp.outcome_sd))
            zero = tp.table[tp.table["delta"] == 0.0].iloc[0]
            paras.append(
                W.tipping_sentence(
                    tp.tipping_below,
                    tp.tipping_above,
                    W.conclusion_words(zero["conf_low"], zero["conf_high"], oc.get("better")),
                    arm,
                )
            )
            tables.append(tipping_table(analysis, oid))
    paras.append(
        "Table 6a.3 shows whether missing outcomes were more common in one arm or among "
        "families with higher or lower baseline and mid-point scores; a clear gradient means "
        "complete-case results may be biased and supports including those scores in the "
        "imputation model. Table 6a.4 shows how the share missing varied between LAs."
    )
    tables += [predictor_table(analysis, settings), la_band_table(analysis)]
    return make_section(
        id=MISSING_SECTION_ID,
        title=MISSING_SECTION_TITLE,
        paragraphs=tuple(p for p in paras if p),
        tables=tuple(tables),
        figures=_figures(analysis, make_figure),
    )
