"""The report's wording rules, in one place.

Plurals, units, method names and the sentences that describe an estimate
(whether its interval rules out no effect, and which direction it favours)
are all decided here, so every section and table says the same thing the
same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ACRONYMS",
    "PILOT_FRAMING",
    "ZONE_WORDS",
    "arm_label",
    "direction_phrase",
    "direction_words",
    "icc_name",
    "interval_sentence",
    "method_name",
    "not_estimated",
    "plural",
    "quantity",
    "recommendation_sentence",
    "rules_out_no_effect",
    "zone_word",
]

#: Units and words printed upper-case wherever they appear in a unit phrase.
ACRONYMS = frozenset({"fte", "la", "las", "cpd", "wte", "gp", "ci", "icc", "or"})

_IRREGULAR = {"person": "people", "child": "children", "authority": "authorities"}

_METHODS = {
    "kenward-roger": "Kenward–Roger",
    "satterthwaite": "Satterthwaite",
    "between-within": "Between–within",
    "randomisation": "Randomisation",
    "clusters-minus-2-minus-cluster-covariates": "Clusters − 2 − cluster covariates",
    "residual": "Residual",
    "z": "Normal (z)",
    "barnard-rubin": "Barnard–Rubin",
}


def _case(word: str) -> str:
    return word.upper() if word.lower() in ACRONYMS else word


def plural(word: str, n: float = 2) -> str:
    """``word`` in the plural unless ``n`` is 1 ("activity" → "activities", "fte" → "FTE").

    Acronyms are upper-cased and never take an "s" (an FTE, 3 FTE).
    """
    if word.lower() in ACRONYMS:
        return word.upper() + ("s" if n != 1 and word.lower() in {"la"} else "")
    if n == 1 or not word:
        return word
    low = word.lower()
    if low in _IRREGULAR:
        out = _IRREGULAR[low]
        return out.capitalize() if word[0].isupper() else out
    if low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        return word[:-1] + "ies"
    if low.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def _number(v: float) -> str:
    """Integers without decimals; otherwise up to 3 significant digits."""
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.3g}"


def quantity(value: Any, unit: Any = None, per: Any = None) -> str:
    """A value with its unit: "16 months", "1 FTE per LA", "5 days per keyworker".

    The unit is plural when the value is not 1; integers are printed without
    decimals; known acronyms are upper-case.  A missing value gives "–".
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(v):
        return "–"
    text = _number(v)
    u = "" if unit is None or (isinstance(unit, float) and math.isnan(unit)) else str(unit)
    if u and u != "proportion":
        text += " " + plural(u, v)
    if per is not None and str(per) and not (isinstance(per, float) and math.isnan(per)):
        text += " per " + _case(str(per))
    return text


def method_name(name: Any) -> str:
    """The display name of a df or analysis method ("kenward-roger" → "Kenward–Roger")."""
    s = str(name)
    if s in _METHODS:
        return _METHODS[s]
    return s[:1].upper() + s[1:] if s else s


def arm_label(protocol: Mapping[str, Any], arm: str) -> str:
    """The protocol's label for an arm (its id if it has none)."""
    return str(protocol.get("arms", {}).get(arm, {}).get("label") or arm)


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def rules_out_no_effect(
    conf_low: Any, conf_high: Any, *, role: str, p_adjusted: Any = None, alpha: float = 0.05
) -> bool:
    """Whether the report may say "the 95% CI rules out no effect".

    Only when the interval excludes 0 and, for a secondary outcome, the
    multiplicity-adjusted p-value is below ``alpha`` (an unadjusted interval
    that excludes 0 is not enough once several outcomes are tested).
    """
    lo, hi = _f(conf_low), _f(conf_high)
    if not (math.isfinite(lo) and math.isfinite(hi)) or not (lo > 0 or hi < 0):
        return False
    if role == "secondary":
        p = _f(p_adjusted)
        return math.isfinite(p) and p < alpha
    return True


def direction_words(estimate: Any, better: Any) -> str:
    """ "favouring the intervention" / "favouring the control" / "" from the protocol's ``better``.

    ``better`` is "higher" or "lower" (the direction of benefit on the scale the
    estimate is on, for any outcome type); a zero or missing estimate, or an
    unknown ``better``, gives no direction words.
    """
    e = _f(estimate)
    b = str(better).lower()
    if not math.isfinite(e) or e == 0 or b not in ("higher", "lower"):
        return ""
    good = (e > 0) == (b == "higher")
    return "favouring the intervention" if good else "favouring the control arm"


def interval_sentence(
    conf_low: Any, conf_high: Any, *, role: str, p_adjusted: Any = None, alpha: float = 0.05
) -> str:
    """The sentence that says what the interval means, by :func:`rules_out_no_effect`."""
    lo, hi = _f(conf_low), _f(conf_high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    if rules_out_no_effect(lo, hi, role=role, p_adjusted=p_adjusted, alpha=alpha):
        return "The 95% CI rules out no effect."
    if (lo > 0 or hi < 0) and role == "secondary":
        return (
            "The unadjusted 95% CI excludes 0, but after adjustment for multiplicity the data "
            "are compatible with no effect."
        )
    return "The data are compatible with no effect."


_MISSINGNESS = {
    "missing_pattern": "more than {miss:.0%} missing in an arm",
    "differential_missingness": "arms differ by more than {diff:.0f} percentage points",
    "outcome_missing": "no scored measurement",
}


def missingness_warning(codes: Sequence[str]) -> str:
    """Validation's missing-data warning codes in words ("" for none)."""
    from trialkit.data.missingness import DIFFERENTIAL_WARN, MISSING_WARN

    words = [
        _MISSINGNESS[c].format(miss=MISSING_WARN, diff=100 * DIFFERENTIAL_WARN)
        for c in codes
        if c in _MISSINGNESS
    ]
    return "; ".join(words).capitalize() if words else "none"


def missingness_rule() -> str:
    """The thresholds behind validation's missing-data warnings, as a sentence."""
    from trialkit.data.missingness import DIFFERENTIAL_WARN, MISSING_WARN

    return (
        f"Data validation warns when more than {MISSING_WARN:.0%} of an arm's eligible entities "
        f"lack a score, and when the arms differ by more than {100 * DIFFERENTIAL_WARN:.0f} "
        "percentage points; the analysis assumes outcome data are missing at random given the "
        "covariates."
    )


#: ``status`` values of a results row that carry no estimate.
NOT_ESTIMATED = ("not estimable", "not run")


def not_estimated(status: Any, reason: Any) -> str:
    """ "not estimable: <why>" / "not run: <why>" for a row without an estimate, else ""."""
    s = "" if status is None or (isinstance(status, float) and math.isnan(status)) else str(status)
    if s not in NOT_ESTIMATED:
        return ""
    why = (
        "" if reason is None or (isinstance(reason, float) and math.isnan(reason)) else str(reason)
    )
    return f"{s}: {why}" if why else s


def icc_name(level: str, kind: str, scale: Any = None) -> str:
    """A labelled ICC: "ICC (LA), adjusted model" / "ICC (keyworker), unconditional".

    ``kind`` is "conditional" (the covariate-adjusted analysis model) or
    "unconditional" (intercept and random effects only); a latent ``scale`` (binary
    outcomes, logistic π²/3) is named.
    """
    what = {"conditional": "adjusted model", "unconditional": "unconditional"}[kind]
    text = f"ICC ({level}), {what}"
    sc = "" if scale is None or (isinstance(scale, float) and math.isnan(scale)) else str(scale)
    if sc.startswith("latent"):
        text += ", latent scale"
    return text


# ---------------------------------------------------------------------------- feasibility
#: Traffic-light zones as printed: a distinct shape and a word, so the zone reads the same in
#: greyscale print (the colours are in the traffic-light figure).
ZONE_WORDS: dict[str, str] = {
    "green": "● GREEN: proceed",
    "amber": "▲ AMBER: amend",
    "red": "■ RED: stop",
    "not assessed": "○ NOT ASSESSED",
}

_RECOMMENDATIONS: dict[str, str] = {
    "proceed": (
        "The pilot supports proceeding to a definitive trial: every pre-specified progression "
        "criterion is green and the pilot's data rule out its red zone."
    ),
    "amend": (
        "The pilot supports proceeding to a definitive trial only with amendments: no "
        "progression criterion is red, but at least one is amber, could not be assessed, or "
        "cannot yet rule out its red zone."
    ),
    "stop": (
        "The pilot does not support proceeding to a definitive trial as designed: at least "
        "one pre-specified progression criterion is in its red zone."
    ),
}

PILOT_FRAMING = (
    "These are a pilot's preliminary estimates. The pilot was designed to test feasibility, "
    "not effectiveness, and with so few LAs every estimate is imprecise: read the effects "
    "and their intervals as a guide to the plausible range for planning a definitive trial, "
    "not as evidence that the intervention works or does not."
)


def zone_word(zone: Any) -> str:
    """The printed zone: colour mark plus a word (readable in greyscale)."""
    return ZONE_WORDS.get(str(zone), str(zone).upper())


def recommendation_sentence(decision: Any) -> str:
    """The sentence that opens the report: what the pilot supports (proceed / amend / stop)."""
    d = str(decision)
    if d not in _RECOMMENDATIONS:
        return "The pilot's progression criteria were not assessed."
    return _RECOMMENDATIONS[d]


def direction_phrase(higher_is_better: Any) -> str:
    """'higher is better' or 'lower is better'."""
    return "higher is better" if bool(higher_is_better) else "lower is better"


# ---------------------------------------------------------------------------- planning
def planning_paragraph(conf_level: Any, power: Any, alpha: Any) -> str:
    """What the planning tables hold and how the numbers of LAs were found."""
    pct = f"{float(conf_level) * 100:g}%" if conf_level is not None else "95%"
    return (
        "Planning the definitive trial (CONSORT pilot extension item 22a). For each continuous "
        "outcome, Table F.2 gives the unconditional intraclass correlations (from the null "
        "model with random intercepts for LA and, for family outcomes, keyworker; "
        f"{pct} profile-likelihood intervals), the outcome's SD and the baseline–follow-up "
        f"correlation ({pct} intervals that ignore clustering, so they are too narrow), the "
        "coefficient of variation of the number analysed per LA, and the number of LAs a "
        "definitive trial needs to detect the protocol's target effect (in SD units) with "
        f"power {float(power):g} at two-sided alpha {float(alpha):g}: at the ICC's point "
        "estimate, at its upper confidence limit (conservative), and by assurance (the "
        "expected power over the uncertainty in the LA ICC). No counts of people are shown."
    )


def not_planned_text(reason: Any) -> str:
    """The note of an outcome that could not be planned."""
    r = "" if reason is None or (isinstance(reason, float) and math.isnan(reason)) else reason
    return f"not planned: {r}" if str(r) else "not planned"


NO_TARGET_NOTE = "no target effect set"
SINGULAR_NOTE = "a variance component estimated at zero (ICC 0): plan on the upper limit"


# ---------------------------------------------------------------------------- missing outcome data
#: Bands of an LA's share of missing outcomes (LA-level shares of small counts are disclosive):
#: below 20%, 20% to 40% (both included), above 40%.
MISSING_SHARE_BANDS = ((0.2, "< 20%"), (0.4, "20–40%"), (math.inf, "> 40%"))

MISSING_DATA_NONE = (
    "No missing-data sensitivity analysis was declared in the protocol "
    "([analysis.missing_data]); outcomes were analysed complete-case (section 6)."
)


def share_band(share: Any) -> str:
    """The band of a share of missing outcomes: "< 20%", "20–40%" or "> 40%"."""
    s = _f(share)
    if not math.isfinite(s):
        return "–"
    if s < 0.2:
        return MISSING_SHARE_BANDS[0][1]
    return MISSING_SHARE_BANDS[1][1] if s <= 0.4 else MISSING_SHARE_BANDS[2][1]


def missing_data_intro(m: Any, auxiliary: str, clusters: str) -> str:
    """What the multiple imputation did and the assumption it rests on (MAR)."""
    aux = f", and the {auxiliary}" if auxiliary else ""
    return (
        f"The complete-case analysis (section 6) uses only the families with an outcome. As the "
        f"protocol's sensitivity analysis, missing outcomes were multiply imputed ({m} "
        f"imputations) from a multilevel model with random intercepts for {clusters}, including "
        f"the arm, the analysis covariates{aux}; the primary model was fitted to every completed "
        "dataset and the results combined by Rubin's rules with the Barnard–Rubin degrees of "
        "freedom. This assumes the outcomes are missing at random (MAR): that, given the arm, "
        "the covariates and the variables in the imputation model, whether an outcome is missing "
        "does not depend on its value."
    )


def fmi_sentence(fmi: Any, riv: Any) -> str:
    """The fraction of missing information and relative increase in variance in words."""
    f, r = _f(fmi), _f(riv)
    if not (math.isfinite(f) and math.isfinite(r)):
        return ""
    return (
        f"The fraction of missing information about the effect is {f:.0%}: the missing "
        f"outcomes add {r:.0%} to the variance the estimate would have with complete data "
        "(relative increase in variance)."
    )


def delta_explained(arm: str, sd: Any, scale: str = "") -> str:
    """What δ means in the tipping-point analysis."""
    unit = f" ({quantity(_f(sd))} {scale} points)".replace("  ", " ") if scale else ""
    sd_txt = f"{_f(sd):.3g}" if math.isfinite(_f(sd)) else "–"
    return (
        f"The tipping-point analysis asks how far from MAR the missing outcomes would have to be "
        f"to change the conclusion. δ is the shift added to every imputed outcome of the {arm} "
        f"arm, in standard deviations of the observed outcome (1 SD = {sd_txt}{unit}): δ = 0 is "
        "the MAR analysis, and a negative δ means the families without an outcome would have "
        "scored lower than MAR predicts (missing not at random)."
    )


def conclusion_words(conf_low: Any, conf_high: Any, better: Any) -> str:
    """The conclusion an interval supports: excludes 0 (favouring which arm) or not."""
    lo, hi = _f(conf_low), _f(conf_high)
    if lo > 0 or hi < 0:
        side = direction_words(lo if lo > 0 else hi, better)
        return "CI excludes 0" + (f", {side}" if side else "")
    return "compatible with no effect"


def tipping_sentence(below: Any, above: Any, conclusion_mar: str, arm: str) -> str:
    """Where (in δ) the conclusion of the MAR analysis changes."""
    pts = [f"δ = {x:.2f} SD" for x in (_f(below), _f(above)) if math.isfinite(x)]
    if not pts:
        return (
            f"Over the whole grid of δ the conclusion stays that of the MAR analysis "
            f"({conclusion_mar}): no tipping point within the range examined."
        )
    return (
        f"The conclusion of the MAR analysis ({conclusion_mar}) changes at "
        + " and at ".join(pts)
        + f" (interpolated between grid points): the imputed outcomes of the {arm} arm would "
        "have to differ from the MAR prediction by that much for the conclusion to change."
    )
