"""Typed frames for the analysts' exports (``tables/<id>.csv`` and ``.xlsx``).

The HTML and Markdown show a table's formatted text; the exports carry the same
table with typed values, so a spreadsheet can compute with it: numbers as
numbers, an interval "a to b" as two columns (``conf_low``, ``conf_high``), an
"estimate (a to b)" cell as three, "mean (SD)" and "n (%)" as two, and a missing
value ("–") as an empty cell.  Suppressed cells keep their marker (also as one
end of a range, "c to 1.00"), and a coarsened share its coarse text, so nothing
the disclosure pass hid in the report reappears in an export: the exports are
made from the tables after the pass.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from trialkit.report.disclosure import SUPPRESSED

__all__ = ["typed_frame", "typed_value"]

_NUM = r"-?\d+(?:\.\d+)?"
_END = rf"{_NUM}|{SUPPRESSED}|<0\.1|>0\.9"  # a range end may be suppressed or coarsened
_PLAIN = re.compile(rf"^({_NUM})%?$")
_RANGE = re.compile(rf"^({_END}) to ({_END})$")
_PAIR = re.compile(rf"^({_NUM}) \(({_NUM})%?\)$")
_EST_CI = re.compile(rf"^({_NUM}) \(({_NUM}) to ({_NUM})\)$")
_MISSING = {"", "–", "-", "nan", "None"}


def typed_value(s: Any) -> Any:
    """A display cell as a number (int when integral), ``None`` when missing, else the text."""
    if s is None:
        return None
    if isinstance(s, (int, float)) and not isinstance(s, bool):
        return None if s != s else s  # NaN → None
    t = str(s).strip()
    if t in _MISSING:
        return None
    m = _PLAIN.match(t.removeprefix("OR "))
    if m:
        v = float(m.group(1))
        return int(v) if re.fullmatch(r"-?\d+", m.group(1)) else v
    return t


def _shape(cells: list[str]) -> str:
    """The one shape every non-missing text cell of a column has ('' when mixed or plain)."""
    shapes = set()
    for c in cells:
        t = c.strip()
        if t in _MISSING or t == SUPPRESSED:
            continue
        if _RANGE.match(t):
            shapes.add("range")
        elif _EST_CI.match(t):
            shapes.add("est_ci")
        elif _PAIR.match(t):
            shapes.add("pair")
        elif _PLAIN.match(t):
            shapes.add("plain")
        else:
            shapes.add("text")
    if len(shapes) == 2 and shapes & {"est_ci", "pair"}:
        shapes.discard("plain")  # an estimate printed without its interval or SD
    return shapes.pop() if len(shapes) == 1 else ""


def _names(col: str, shape: str, n_ci: int) -> list[str]:
    base = re.sub(r"\s*\((?:95% CI|SD|%)\)\s*$", "", col).strip()
    if shape == "range":
        if "CI" in col:
            return (
                ["conf_low", "conf_high"] if n_ci == 1 else [f"{col} conf_low", f"{col} conf_high"]
            )
        return [f"{col} low", f"{col} high"]
    if shape == "est_ci":
        return [base, f"{base} conf_low", f"{base} conf_high"]
    inner = re.search(r"\(([^()]*)\)\s*$", col)
    if inner and inner.group(1) in ("SD", "%"):
        words = base.rsplit(" ", 1)
        stem = words[0] if len(words) == 2 else base
        return [base, f"{stem} {inner.group(1)}"]
    return [base, f"{base} (SD or %)"]


def _unique(name: str, taken: dict[str, Any]) -> str:
    k, out = 2, name
    while out in taken:
        out, k = f"{name} ({k})", k + 1
    return out


def typed_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The export form of a display frame: typed cells, compound cells split into columns."""
    text = frame.astype(str)
    ranges = [c for c in text.columns if _shape(list(text[c])) == "range" and "CI" in str(c)]
    out: dict[str, list[Any]] = {}
    for col in text.columns:
        cells = list(text[col])
        shape = _shape(cells)
        if shape in ("range", "est_ci", "pair"):
            pattern = {"range": _RANGE, "est_ci": _EST_CI, "pair": _PAIR}[shape]
            names = _names(str(col), shape, len(ranges))
            parts: list[list[Any]] = [[] for _ in names]
            for c in cells:
                m = pattern.match(c.strip())
                plain = m is None and _PLAIN.match(c.strip()) is not None
                for k in range(len(names)):
                    if m:
                        parts[k].append(typed_value(m.group(k + 1)))
                    elif plain:
                        parts[k].append(typed_value(c) if k == 0 else None)
                    else:
                        parts[k].append(typed_value(c))
            for name, values in zip(names, parts, strict=True):
                out[_unique(name, out)] = values
        else:
            out[_unique(str(col), out)] = [typed_value(c) for c in cells]
    return pd.DataFrame(out)
