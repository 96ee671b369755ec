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
