"""The report's wording rules, in one place.

Plurals, units, method names and the sentences that describe an estimate
(whether its interval rules out no effect, and which direction it favours)
are all decided here, so every section and table says the same thing the
same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ACRONYMS",
    "arm_label",
    "direction_words",
    "interval_sentence",
    "method_name",
    "plural",
    "quantity",
    "rules_out_no_effect",
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
