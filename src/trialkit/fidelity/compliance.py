"""Compliance analysis of a trial: the CACE at the protocol's threshold and across a sweep.

:func:`analyse_compliance` takes the analysis frame, the fidelity report and the
protocol, settles what the protocol leaves to the data (the arm of each row,
the covariates to adjust for, the thresholds of a sweep) and returns a
:class:`ComplianceAnalysis` holding the :class:`~trialkit.fidelity.cace.CaceResult`
and, when asked for, the :class:`~trialkit.fidelity.cace.CaceSweep`.
:func:`compliance_inputs` builds the fidelity report and analysis frame from a
validated trial; :func:`write_compliance_outputs` writes the tables, the sweep
figure and ``cace.json``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from trialkit._io import provenance, write_frame, write_json
from trialkit._version import __version__
from trialkit.data.frame import analysis_frame
from trialkit.fidelity.assess import assess_fidelity
from trialkit.fidelity.cace import CaceResult, CaceSweep, cace_sweep, estimate_cace
from trialkit.fidelity.plots import sweep_figure
from trialkit.fidelity.report import FidelityReport
from trialkit.plotting import write_figure

__all__ = [
    "ComplianceAnalysis",
    "analyse_compliance",
    "compliance_inputs",
    "write_compliance_outputs",
]

SCHEMA_VERSION = 1

_TRIAL_TABLES = ("delivery", "keyworkers", "families", "allocation")


@dataclass(frozen=True, slots=True, kw_only=True)
class ComplianceAnalysis:
    """Result of :func:`analyse_compliance`.

    Attributes
    ----------
    outcome_id : str
        The outcome as declared in the protocol.
    result : CaceResult
        The CACE at the protocol's (or the given) compliance threshold.
    sweep : CaceSweep or None
        The CACE across thresholds, when a sweep was asked for.
    """

    outcome_id: str
    result: CaceResult
    sweep: CaceSweep | None = None

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of the main result: rows ``cace``, ``itt``, ``first_stage``."""
        return self.result.to_frame()

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "trialkit_version": __version__,
            "outcome_id": self.outcome_id,
            "result": self.result.to_dict(),
            "sweep": None if self.sweep is None else self.sweep.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ComplianceAnalysis:
        return cls(
            outcome_id=d["outcome_id"],
            result=CaceResult.from_dict(d["result"]),
            sweep=None if d.get("sweep") is None else CaceSweep.from_dict(d["sweep"]),
        )

    def summary(self) -> str:
        parts = [self.result.summary()]
        if self.sweep is not None:
            parts.append(self.sweep.summary())
        return "\n".join(parts)

    def __repr__(self) -> str:
        n = 0 if self.sweep is None else len(self.sweep.thresholds)
        return (
            f"ComplianceAnalysis(outcome_id={self.outcome_id!r}, "
            f"estimate={self.result.cace.estimate!r}, sweep_thresholds={n})"
        )


def compliance_inputs(
    trial: Any,
    protocol: Any,
    outcome_id: str,
    *,
    fidelity: FidelityReport | None = None,
) -> tuple[FidelityReport, pd.DataFrame]:
    """Fidelity report and analysis frame of a validated trial.

    Parameters
    ----------
    trial : TrialData
        The data stage's validated trial (its tables serve both the fidelity
        assessment and the analysis frame, so the data are validated once).
    protocol : Protocol
    outcome_id : str
        Outcome declared in the protocol.
    fidelity : FidelityReport, optional
        An assessment made earlier; without it fidelity is assessed from ``trial``.

    Returns
    -------
    (FidelityReport, DataFrame)
    """
    if fidelity is None:
        t = trial.tables
        fidelity = assess_fidelity(
            protocol,
            t["delivery"],
            t["keyworkers"],
            t["families"],
            t["allocation"],
            clusters=t.get("clusters"),
            sources={k: trial.files[k] for k in _TRIAL_TABLES if k in trial.files},
        )
    return fidelity, analysis_frame(trial, protocol, outcome_id).frame


def _default_covariates(frame: pd.DataFrame, protocol: Any) -> list[str]:
    """The protocol's covariates present in ``frame``, plus ``baseline`` when adjusted for."""
    covs = [c for c in protocol.analysis.covariates if c in frame.columns]
    if (
        protocol.analysis.adjust_for_baseline
        and "baseline" in frame.columns
        and frame["baseline"].notna().any()
    ):
        covs.append("baseline")
    return covs


def analyse_compliance(
    frame: pd.DataFrame,
    fidelity: FidelityReport,
    protocol: Any,
    *,
    outcome_id: str,
    outcome_column: str | None = None,
    threshold: float | None = None,
    thresholds: Sequence[float] | None = None,
    sweep: bool = False,
    covariates: Sequence[str] | None = None,
) -> ComplianceAnalysis:
    """Estimate the CACE of ``outcome_id`` and, when asked, sweep compliance thresholds.

    Parameters
    ----------
    frame : DataFrame
        One row per analysed unit: ``la_id``, the outcome, optional ``arm`` (taken
        from the fidelity report's allocation when absent), ``keyworker_id`` and
        covariates.
    fidelity : FidelityReport
    protocol : Protocol
        Supplies the compliance definition, covariates and thresholds.
    outcome_id : str
        Outcome declared in the protocol.
    outcome_column : str, optional
        Outcome column in ``frame`` (default ``y`` when present, else ``outcome_id``).
    threshold : float, optional
        Overrides the protocol's compliance threshold.
    thresholds : sequence of float, optional
        Also estimate at each of these thresholds.
    sweep : bool
        Without ``thresholds``, sweep the protocol's ``analysis.compliance.thresholds``.
    covariates : sequence of str, optional
        Default: the protocol's covariates present in ``frame`` and ``baseline``
        when the protocol adjusts for it.

    Returns
    -------
    ComplianceAnalysis
    """
    column = outcome_column or ("y" if "y" in frame.columns else outcome_id)
    if "arm" not in frame.columns and "la_id" in frame.columns:
        arms = fidelity.overall.set_index("la_id")["arm"]
        frame = frame.assign(arm=frame["la_id"].astype(str).map(arms))
    covs = _default_covariates(frame, protocol) if covariates is None else list(covariates)
    common: dict[str, Any] = dict(
        fidelity=fidelity,
        protocol=protocol,
        outcome=column,
        outcome_id=outcome_id,
        covariates=covs,
    )
    result = estimate_cace(frame, threshold=threshold, **common)
    ths = list(thresholds) if thresholds is not None else None
    if ths is None and sweep and protocol.analysis.compliance is not None:
        ths = list(protocol.analysis.compliance.thresholds)
    swept = cace_sweep(frame, thresholds=ths, **common) if ths else None
    return ComplianceAnalysis(outcome_id=outcome_id, result=result, sweep=swept)


def write_compliance_outputs(
    analysis: ComplianceAnalysis,
    out_dir: str | os.PathLike[str],
    *,
    inputs: Mapping[str, str | os.PathLike[str]],
) -> list[str]:
    """Write ``cace.csv``, the sweep (table and figure) and ``cace.json`` into ``out_dir``.

    Returns the names of the files written, ``cace.json`` last.
    """
    out = Path(out_dir)
    result, sweep = analysis.result, analysis.sweep
    write_frame(out / "cace.csv", result.to_frame())
    files = ["cace.csv"]
    figures: dict[str, Any] = {}
    if sweep is not None:
        write_frame(out / "cace_sweep.csv", sweep.to_frame())
        files.append("cace_sweep.csv")
        fig, alt = sweep_figure(sweep.to_frame(), outcome=analysis.outcome_id, scale=result.scale)
        write_figure(fig, out / "cace_sweep", title="CACE by compliance threshold", desc=alt)
        files += ["cace_sweep.png", "cace_sweep.svg"]
        figures["cace_sweep"] = {"files": ["cace_sweep.png", "cace_sweep.svg"], "alt_text": alt}
    write_json(
        out / "cace.json",
        {
            "ok": True,
            "result": result.to_dict(),
            "sweep": None if sweep is None else sweep.to_dict(),
            "figures": figures,
            "files": [*files, "cace.json"],
            "provenance": provenance(inputs=inputs, seed=None),
        },
    )
    return [*files, "cace.json"]
