"""Write the fidelity findings back into a copy of the protocol as TIDieR items 10 and 12.

For each arm, :func:`tidier_texts` writes ``how_well_actual`` (TIDieR item 12: how
well the intervention was delivered, from the fidelity indices; for the control
arm, the contamination monitoring) and ``modifications`` (item 10: departures
observed in the delivery records, clearly labelled as derived from them rather
than from documented adaptations).  :func:`write_back` edits the TOML *text* so
that comments and layout survive, checks that the edited text parses to the
same document apart from the edited items, and writes it to a new file; the
input protocol is never modified.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from trialkit._io import atomic_write_text
from trialkit.errors import FidelityError
from trialkit.fidelity.report import FidelityReport

__all__ = ["MARKER", "edit_tidier_text", "tidier_texts", "write_back"]

MARKER = "Derived from delivery records by trialkit fidelity"
"""Prefix of every generated text (a later run replaces text starting with it)."""


def _pct(x: float) -> str:
    return "NA" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def _las(n: int) -> str:
    return f"{n} LA" if n == 1 else f"{n} LAs"


def _quantity(protocol: Any, qid: str) -> Any:
    arm = protocol.arms[protocol.intervention_arm]
    return next((q for _k, q in arm.tidier.quantities() if q.id == qid), None)


def tidier_texts(report: FidelityReport, protocol: Any) -> dict[str, dict[str, str]]:
    """Return ``{arm: {"how_well_actual": text, "modifications": text}}`` for every arm.

    The texts are deterministic (no dates or run ids) and start with :data:`MARKER`.
    """
    roles = {k: a.role for k, a in protocol.arms.items()}
    out: dict[str, dict[str, str]] = {}
    lo, hi = report.settings["bands"]
    for arm, role in roles.items():
        if role == "intervention":
            out[arm] = {
                "how_well_actual": _intervention_how_well(report, arm, lo, hi),
                "modifications": _intervention_modifications(report, protocol, arm),
            }
        else:
            out[arm] = _control_texts(report, protocol, arm)
    return out


def _intervention_how_well(report: FidelityReport, arm: str, lo: float, hi: float) -> str:
    ov = report.overall[report.overall["arm"] == arm]
    comp = report.components[report.components["arm"] == arm]
    ind = report.indicators[report.indicators["arm"] == arm]
    n = len(ov)
    idx = ov["overall_index"].dropna()
    parts = [
        f"{MARKER}: fidelity was assessed in {_las(n)} of the {arm} arm against {ind['indicator_id'].nunique()} "
        f"logic-model indicators in {comp['component'].nunique()} components (adherence = delivered "
        "divided by intended, capped at 1; Carroll et al. 2007)."
    ]
    if len(idx):
        counts = ov["band"].value_counts()
        parts.append(
            f"The overall fidelity index had median {_pct(float(idx.median()))} "
            f"(range {_pct(float(idx.min()))} to {_pct(float(idx.max()))}); "
            f"{_las(int(counts.get('high', 0)))} high (at least {_pct(hi)}), "
            f"{int(counts.get('moderate', 0))} moderate ({_pct(lo)} to below {_pct(hi)}) and "
            f"{int(counts.get('low', 0))} low."
        )
    n_inc = int(ov["overall_index"].isna().sum())
    if n_inc:
        parts.append(
            f"{_las(n_inc)} had no overall index because delivery records for a component are missing "
            "(reported as missing, not as zero delivery)."
        )
    means = comp.groupby("component", sort=False)["index"].mean()
    if len(means):
        parts.append(
            "Mean component adherence across LAs: "
            + ", ".join(f"{c} {_pct(float(v))}" for c, v in means.items())
            + "."
        )
    by_ind = ind.groupby("indicator_id", sort=False).agg(
        label=("label", "first"), mean=("adherence", "mean")
    )
    weak = by_ind[by_ind["mean"] < hi].sort_values("mean")
    if len(weak):
        parts.append(
            "Indicators below the high band on average: "
            + "; ".join(f"{r['label']} ({_pct(float(r['mean']))})" for _, r in weak.iterrows())
            + "."
        )
    else:
        parts.append("Every indicator was in the high band on average.")
    return " ".join(parts)


def _intervention_modifications(report: FidelityReport, protocol: Any, arm: str) -> str:
    ind = report.indicators[report.indicators["arm"] == arm]
    lines: list[str] = []
    # indicators short of target, grouped
    short = ind[(ind["adherence"] < 1.0) & ~ind["missing"].astype(bool)]
    for iid, g in short.groupby("indicator_id", sort=False):
        las = ", ".join(
            f"{r['la_id']} ({r['delivered']:.3g} of {r['intended']:.3g})" for _, r in g.iterrows()
        )
        lines.append(f"{g['label'].iloc[0]} fell short of the plan in {_las(len(g))}: {las}")
        del iid
    # supervision frequency outside the planned range
    q = _quantity(protocol, "supervision_frequency")
    freq = ind[ind["metric"] == "supervision_sessions_per_month"].drop_duplicates("la_id")
    if q is not None and (q.minimum is not None or q.maximum is not None):
        for _, r in freq.iterrows():
            d = r["delivered"]
            if pd.isna(d):
                continue
            if q.minimum is not None and d < q.minimum:
                lines.append(
                    f"group supervision in {r['la_id']} ran at {d:.2g} sessions per group per month, "
                    f"below the planned range ({q.minimum:g} to {q.maximum:g})"
                )
            elif q.maximum is not None and d > q.maximum:
                lines.append(
                    f"group supervision in {r['la_id']} ran at {d:.2g} sessions per group per month, "
                    f"above the planned range ({q.minimum:g} to {q.maximum:g})"
                )
    miss = ind[ind["missing"].astype(bool)]
    if len(miss):
        lines.append(
            f"{len(miss)} LA x indicator cells had no delivery records and are reported as missing"
        )
    head = f"{MARKER} (observed departures from the planned model, not documented adaptations): "
    if not lines:
        return head + (
            f"no departures from the planned delivery were observed in the records of the "
            f"{_las(ind['la_id'].nunique())} of the {arm} arm."
        )
    return head + "; ".join(lines) + "."


def _control_texts(report: FidelityReport, protocol: Any, arm: str) -> dict[str, str]:
    """TIDieR items 10 and 12 for a control arm, worded from the protocol's arm labels."""
    c = report.contamination[report.contamination["arm"] == arm]
    n = c["la_id"].nunique()
    hit = c[c["contaminated"].astype(bool)]
    comps = sorted(set(c["component"]))
    model = protocol.arms[protocol.intervention_arm].label
    usual = protocol.arms[arm].label
    departures = f"{MARKER} (observed departures from the control arm ({usual}), not documented adaptations): "
    if len(hit):
        detail = "; ".join(
            f"{la}: {', '.join(g['component'])}" for la, g in hit.groupby("la_id", sort=True)
        )
        how = (
            f"{MARKER}: contamination was monitored in {_las(n)} of the {arm} arm for the components "
            f"{', '.join(comps)} of the {model}. Delivery of these components was recorded in "
            f"{_las(hit['la_id'].nunique())} ({detail})"
            + ("; the other LAs recorded none." if hit["la_id"].nunique() < n else ".")
        )
        mods = departures + f"components of the {model} were delivered in {arm} LAs ({detail})."
    else:
        how = (
            f"{MARKER}: contamination was monitored in {_las(n)} of the {arm} arm for the components "
            f"{', '.join(comps)} of the {model}; none of them was recorded, so the {arm} arm "
            f"stayed as described ({usual})."
        )
        mods = (
            departures + f"no departures were detected in the delivery records of the {n} "
            f"LAs of the {arm} arm."
        )
    return {"how_well_actual": how, "modifications": mods}


# ------------------------------------------------------------------- TOML editing
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]#]+?)\s*(\]\]?)\s*(#.*)?$")
_KEY = re.compile(r"^(\s*)([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*=\s*(.*)$", re.DOTALL)


def _norm_key(key: str) -> str:
    parts = [p.strip().strip('"').strip("'") for p in key.split(".")]
    return ".".join(parts)


def _sections(lines: list[str]) -> list[tuple[int, str]]:
    """Header line numbers and their normalised table names ('' for the root)."""
    out = [(-1, "")]
    in_multi: str | None = None
    for i, line in enumerate(lines):
        if in_multi:
            if line.count(in_multi) % 2 == 1:
                in_multi = None
            continue
        m = _HEADER.match(line)
        if m:
            out.append((i, _norm_key(m.group(2))))
            continue
        km = _KEY.match(line)
        if km:
            val = km.group(3)
            for q in ('"""', "'''"):
                if val.lstrip().startswith(q) and val.count(q) == 1:
                    in_multi = q
    return out


def _value_end(lines: list[str], i: int, value: str) -> int:
    """Index of the last line of the value starting on line ``i``."""
    for q in ('"""', "'''"):
        if value.lstrip().startswith(q) and value.count(q) == 1:
            j = i + 1
            while j < len(lines) and q not in lines[j]:
                j += 1
            return j
    return i


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _combine(existing: str, new: str) -> str:
    if not existing.strip() or existing.strip().startswith(MARKER):
        return new
    return existing.rstrip() + "\n\n" + new


def edit_tidier_text(text: str, arm: str, item: str, value: str) -> str:
    """Set ``arms.<arm>.tidier.<item>`` to ``value`` in TOML ``text``, keeping comments.

    Handles the item as a plain key of ``[arms.<arm>.tidier]`` (single-line or
    multi-line string) or as a table ``[arms.<arm>.tidier.<item>]`` with ``text``;
    adds the key when absent.  A non-empty hand-written value is kept and the
    generated text appended after a blank line.
    """
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    doc = tomllib.loads(text)
    current = doc.get("arms", {}).get(arm, {}).get("tidier", {}).get(item, "")
    if isinstance(current, dict):
        current = current.get("text", "")
    new_value = _combine(str(current), value)
    secs = _sections(lines)
    target = f"arms.{arm}.tidier"
    sub = f"{target}.{item}"

    def section_range(name: str) -> tuple[int, int] | None:
        for k, (start, sname) in enumerate(secs):
            if sname == name:
                end = secs[k + 1][0] if k + 1 < len(secs) else len(lines)
                return start, end
        return None

    def set_key(rng: tuple[int, int], key: str) -> bool:
        start, end = rng
        for i in range(start + 1, end):
            km = _KEY.match(lines[i])
            if km and _norm_key(km.group(2)) == key:
                last = _value_end(lines, i, km.group(3))
                comment = ""
                if last == i:
                    cm = re.search(r"(\s+#[^\"']*)$", km.group(3).rstrip("\n"))
                    if cm:
                        comment = cm.group(1)
                lines[i : last + 1] = [
                    f"{km.group(1)}{km.group(2)} = {_toml_string(new_value)}{comment}\n"
                ]
                return True
        # insert after the last key line of the section
        insert_at = start + 1
        for i in range(start + 1, end):
            if lines[i].strip() and not lines[i].lstrip().startswith("#"):
                insert_at = i + 1
        lines.insert(insert_at, f"{key} = {_toml_string(new_value)}\n")
        return True

    rng = section_range(sub)
    if rng is not None:
        set_key(rng, "text")
    else:
        rng = section_range(target)
        if rng is not None:
            set_key(rng, item)
        else:
            lines.append(f"\n[{target}]\n{item} = {_toml_string(new_value)}\n")
    return "".join(lines)


def _get(doc: Mapping[str, Any], arm: str, item: str) -> Any:
    v = doc["arms"][arm]["tidier"][item]
    return v.get("text") if isinstance(v, dict) else v


def write_back(
    protocol_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    texts: Mapping[str, Mapping[str, str]],
) -> Path:
    """Write a copy of the protocol with the TIDieR texts set; return its path.

    Raises
    ------
    FidelityError
        ``fidelity.writeback.failed`` if the edited text would not parse to the
        original document with exactly the edited items changed.
    """
    src = Path(protocol_path)
    dst = Path(out_path)
    if src.resolve() == dst.resolve():
        raise FidelityError.from_problem(
            path=str(dst),
            code="fidelity.writeback.same_file",
            message="the completed protocol must be written to a new file, not over the input",
            hint="choose an output directory other than the protocol's own",
        )
    text = src.read_text(encoding="utf-8")
    original = tomllib.loads(text)
    edited = text
    for arm, items in texts.items():
        for item, value in items.items():
            edited = edit_tidier_text(edited, arm, item, value)
    try:
        parsed = tomllib.loads(edited)
    except tomllib.TOMLDecodeError as exc:
        raise FidelityError.from_problem(
            path=str(src),
            code="fidelity.writeback.failed",
            message=f"editing the protocol text produced invalid TOML: {exc}",
            hint="write the TIDieR items as plain keys of [arms.<arm>.tidier]",
        ) from None
    expected = json.loads(json.dumps(original, default=str))
    for arm, items in texts.items():
        for item in items:
            tid = expected.setdefault("arms", {}).setdefault(arm, {}).setdefault("tidier", {})
            want = _get(parsed, arm, item)
            if isinstance(tid.get(item), dict):
                tid[item]["text"] = want
            else:
                tid[item] = want
            if not str(want).strip() or MARKER not in str(want):
                raise FidelityError.from_problem(
                    path=f"arms.{arm}.tidier.{item}",
                    code="fidelity.writeback.failed",
                    message=f"the generated text for arms.{arm}.tidier.{item} could not be written",
                    hint="write the item as a plain string key of [arms.<arm>.tidier]",
                )
    if json.loads(json.dumps(parsed, default=str)) != expected:
        raise FidelityError.from_problem(
            path=str(src),
            code="fidelity.writeback.failed",
            message="editing the protocol text changed keys other than the TIDieR items",
            hint="report this with the protocol file; meanwhile edit the items by hand",
        )
    atomic_write_text(dst, edited)
    return dst
