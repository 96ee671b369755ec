"""TIDieR items 10/12 for a control arm are worded from the protocol (issue #14 item 12)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from trialkit.fidelity.writeback import _control_texts
from trialkit.pipeline import DemoResult


def _protocol(inter: str, ctrl: str) -> SimpleNamespace:
    return SimpleNamespace(
        intervention_arm="active",
        arms={"active": SimpleNamespace(label=inter), "usual": SimpleNamespace(label=ctrl)},
    )


def _report(contaminated: list[bool]) -> SimpleNamespace:
    return SimpleNamespace(
        contamination=pd.DataFrame(
            {
                "la_id": [f"LA{k:02d}" for k in range(len(contaminated))],
                "arm": "usual",
                "component": "coaching",
                "contaminated": contaminated,
            }
        )
    )


def test_another_trials_control_arm_is_not_called_systemic() -> None:
    proto = _protocol("Parent coaching programme", "Standard health visiting")
    for hits in ([True, False, False], [False, False]):
        texts = _control_texts(_report(hits), proto, "usual")
        for text in texts.values():
            assert "systemic" not in text.lower()
            assert "Parent coaching programme" in text or "Standard health visiting" in text
    mods = _control_texts(_report([True, False]), proto, "usual")["modifications"]
    assert "components of the Parent coaching programme were delivered in usual LAs" in mods
    assert "(Standard health visiting)" in mods


def test_demo_control_items_name_the_protocol_arms(demo: DemoResult) -> None:
    md = (demo.report / "report.md").read_text(encoding="utf-8")
    row = next(x for x in md.splitlines() if x.startswith("| 10. Modifications"))
    control_cell = row.split("|")[3]
    assert "components of the Systemically informed key worker model were delivered" in control_cell
    assert "components of the systemic model" not in md
