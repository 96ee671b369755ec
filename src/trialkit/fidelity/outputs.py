"""Write a fidelity assessment to an output directory.

Files written by :func:`write_fidelity_outputs`:

``fidelity_indicators``, ``fidelity_components``, ``fidelity_overall``,
``fidelity_over_time``, ``keyworker_dose``, ``contamination`` (each ``.parquet`` and ``.csv``)
    the tidy tables of :class:`~trialkit.fidelity.FidelityReport`;
``fidelity_heatmap.png`` / ``.svg``
    LA × component adherence (alt text in the JSON summary);
``fidelity_summary.json``
    the report (``FidelityReport.to_dict``), the generated TIDieR texts, alt text,
    the list of files and the provenance record (versions, input hashes);
``<protocol file name>``
    a copy of the protocol with TIDieR ``how_well_actual`` and ``modifications``
    filled in from the delivery records (the input file is not touched);
``manifest.json``
    the stage store's manifest (input and output SHA-256).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trialkit import store
from trialkit._io import provenance
from trialkit.errors import FidelityError
from trialkit.fidelity.plots import HEATMAP_TITLE, heatmap_figure
from trialkit.fidelity.report import FidelityReport
from trialkit.fidelity.writeback import tidier_texts, write_back
from trialkit.plotting import figure_to_png, figure_to_svg

__all__ = ["ensure_new_output_dir", "read_fidelity_report", "write_fidelity_outputs"]


def ensure_new_output_dir(out: str | os.PathLike[str]) -> Path:
    """Create ``out``; refuse an existing non-empty directory (outputs are never overwritten)."""
    p = Path(out)
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise FidelityError.from_problem(
            path=str(p),
            code="fidelity.output.exists",
            message=f"output directory '{p}' must be new or empty; it already holds files",
            hint="choose a new --out directory (earlier results are never overwritten)",
        )
    p.mkdir(parents=True, exist_ok=True)
    return p


def write_fidelity_outputs(
    report: FidelityReport,
    protocol: Any,
    out_dir: str | os.PathLike[str],
    *,
    protocol_path: str | os.PathLike[str] | None = None,
    inputs: Mapping[str, str | os.PathLike[str]] | None = None,
) -> dict[str, Any]:
    """Write tables, heatmap, JSON summary and the completed protocol; return the summary dict.

    Written through :func:`trialkit.store.write_fidelity` (the directory appears whole,
    with its stage manifest).

    Raises
    ------
    FidelityError
        ``fidelity.output.exists`` when ``out_dir`` holds files.
    """
    tables = report.tables()
    files = [f"{name}{suffix}" for name in tables for suffix in (".parquet", ".csv")]
    arms = [report.intervention_arm, report.control_arm]
    fig, alt = heatmap_figure(report.components, order_arms=arms)
    png = figure_to_png(fig, desc=alt)
    svg = figure_to_svg(fig, title=HEATMAP_TITLE, desc=alt).encode("utf-8")
    extra: dict[str, store.Content] = {"fidelity_heatmap.png": png, "fidelity_heatmap.svg": svg}
    files += ["fidelity_heatmap.png", "fidelity_heatmap.svg"]
    texts = tidier_texts(report, protocol)
    completed = None
    if protocol_path is not None:
        completed = Path(protocol_path).name
        extra[completed] = lambda dst: write_back(protocol_path, dst, texts)
        files.append(completed)
    summary = {
        "ok": True,
        "report": report.to_dict(),
        "summary_text": report.summary(),
        "tidier": texts,
        "completed_protocol": completed,
        "figures": {
            "fidelity_heatmap": {
                "files": ["fidelity_heatmap.png", "fidelity_heatmap.svg"],
                "alt_text": alt,
            }
        },
        "files": files + ["fidelity_summary.json"],
        "provenance": provenance(inputs=inputs or {}, seed=None),
    }
    store.write_fidelity(
        out_dir,
        tables=tables,
        files=extra,
        summary=summary,
        inputs=store.hash_inputs(inputs),
    )
    return summary


def read_fidelity_report(directory: str | os.PathLike[str]) -> FidelityReport:
    """The :class:`FidelityReport` written by ``trialkit fidelity --out DIR``, verified.

    Read through :func:`trialkit.store.read_fidelity` (the directory's manifest is
    checked).

    Raises
    ------
    FidelityError
        ``cace.fidelity_missing`` without ``fidelity_summary.json``;
        ``fidelity.manifest_mismatch`` when a file changed; ``fidelity.unreadable``
        when the summary is not a fidelity report.
    """
    root = Path(directory)
    if not (root / "fidelity_summary.json").is_file():
        path = root / "fidelity_summary.json"
        raise FidelityError.from_problem(
            path=str(path),
            code="cace.fidelity_missing",
            message=f"'{path}' must exist (written by 'trialkit fidelity')",
            hint="run 'trialkit fidelity ... --out DIR' and pass --fidelity DIR",
        )
    summary, _tables = store.read_fidelity(root)
    try:
        return FidelityReport.from_dict(summary["report"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FidelityError.from_problem(
            path=str(root / "fidelity_summary.json"),
            code="fidelity.unreadable",
            message="'fidelity_summary.json' must hold the report written by 'trialkit "
            f"fidelity'; got content it cannot read ({type(exc).__name__}: {exc})",
            hint="run 'trialkit fidelity ... --out DIR' again and pass that DIR",
        ) from None
