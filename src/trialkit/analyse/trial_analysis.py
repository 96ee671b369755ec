"""The result of running a protocol's analysis plan, and its storage on disk.

:class:`TrialAnalysis` holds only tidy tables of derived numbers (never the raw
data) plus the protocol (as JSON) and a provenance record.  :func:`write_analysis`
saves every table as Parquet and everything as one ``analysis.json``;
:func:`load_analysis` reads a directory back.  Numbers are stored unrounded: the
report is the only place that rounds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trialkit import store
from trialkit._io import SCHEMA_VERSION
from trialkit._version import __version__

__all__ = ["TABLES", "TrialAnalysis", "load_analysis", "write_analysis"]

#: Table names held by :class:`TrialAnalysis` (each saved as ``<name>.parquet``).
TABLES: tuple[str, ...] = (
    "results",
    "fixed_effects",
    "descriptives",
    "baseline_balance",
    "flow",
    "exclusions",
    "missing_outcomes",
    "la_counts",
    "fidelity_indicators",
    "fidelity_components",
    "fidelity_overall",
    "contamination",
    "cace",
    "mdes",
    "tidier",
    "logic_model",
    "feasibility",
)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in frame.astype(object).to_dict(orient="records"):
        clean: dict[str, Any] = {}
        for k, v in row.items():
            if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
                clean[str(k)] = None
            elif isinstance(v, np.generic):
                clean[str(k)] = v.item()
            else:
                clean[str(k)] = v
        out.append(clean)
    return out


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TrialAnalysis:
    """Everything the analysis plan produced, as tidy tables.

    Attributes
    ----------
    tables : mapping name -> DataFrame
        ``results`` (one row per outcome × analysis: primary model and each
        sensitivity analysis, with estimate, CI, df method, df, p, adjusted p,
        Hedges' g and ICCs), ``fixed_effects``, ``descriptives`` (n, mean, SD by
        outcome, arm and occasion), ``baseline_balance`` (LA, keyworker and family
        level), ``flow`` (CONSORT-cluster counts; each outcome's ``analysed`` rows are
        the rows its primary model used), ``exclusions`` (counts by stage, reason and
        arm), ``missing_outcomes`` (share of eligible entities without a score by
        outcome, timepoint and arm, with validation's warning codes), ``la_counts`` (families by LA and status),
        fidelity tables, ``contamination``, ``cace``, ``mdes``, ``tidier``
        (both arms, with ``how_well_actual`` from the fidelity assessment) and
        ``logic_model`` (nodes, edges and achieved fidelity per indicator) and, when the
        protocol has progression criteria, ``feasibility`` (one row per criterion and
        arm: estimate, interval, limits, zone, test against red; the recommendation is
        in ``methods["feasibility"]``).
    protocol : mapping
        The protocol as JSON (``Protocol.model_dump(mode="json")``).
    methods : mapping
        Model formulas, settings, notes on fallbacks and what was not done.
    provenance : mapping
        trialkit and library versions, input hashes, seeds.
    warnings : tuple of str
    """

    tables: Mapping[str, pd.DataFrame]
    protocol: Mapping[str, Any]
    methods: Mapping[str, Any]
    provenance: Mapping[str, Any]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def table(self, name: str) -> pd.DataFrame:
        """Return table ``name`` (an empty frame when it was not produced)."""
        frame = self.tables.get(name)
        return frame.copy() if frame is not None else pd.DataFrame()

    def to_frame(self) -> pd.DataFrame:
        """The ``results`` table."""
        return self.table("results")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary with every table as a list of records."""
        return {
            "schema_version": SCHEMA_VERSION,
            "trialkit_version": __version__,
            "tables": {k: _records(v) for k, v in self.tables.items()},
            "protocol": dict(self.protocol),
            "methods": dict(self.methods),
            "provenance": dict(self.provenance),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrialAnalysis:
        return cls(
            tables={k: pd.DataFrame(v) for k, v in d.get("tables", {}).items()},
            protocol=d.get("protocol", {}),
            methods=d.get("methods", {}),
            provenance=d.get("provenance", {}),
            warnings=tuple(d.get("warnings", ())),
        )

    def summary(self) -> str:
        res = self.table("results")
        lines = [f"Trial analysis: {res['outcome_id'].nunique() if len(res) else 0} outcomes"]
        if len(res):
            prim = res[res["analysis"] == "primary"]
            for _, r in prim.iterrows():
                status = str(r.get("status") or "estimated")
                if status != "estimated":
                    lines.append(
                        f"  {r['outcome_id']} ({r['role']}): {status.upper()}: {r.get('reason')}"
                        + (f"; FALLBACK: {r['fallback']}" if r.get("fallback") else "")
                    )
                    continue
                lines.append(
                    f"  {r['outcome_id']} ({r['role']}): {r['scale']} {r['estimate']:.4g} "
                    f"[{r['conf_low']:.4g}, {r['conf_high']:.4g}], {r['df_method']} "
                    f"df {r['df']:.4g}, p = {r['p_value']:.4g}"
                    + (
                        f" (Holm-adjusted {r['p_adjusted']:.4g})"
                        if pd.notna(r.get("p_adjusted")) and r["role"] == "secondary"
                        else ""
                    )
                    + (f"; FALLBACK: {r['fallback']}" if r.get("fallback") else "")
                )
            skipped = res[
                res.get("status", pd.Series("", index=res.index))
                .fillna("estimated")
                .astype(str)
                .isin(["not estimable", "not run"])
                & (res["analysis"] != "primary")
            ]
            for _, r in skipped.iterrows():
                lines.append(
                    f"  {r['outcome_id']} {r['analysis']}: {str(r['status']).upper()}: "
                    f"{r.get('reason')}"
                )
        if self.warnings:
            lines.append(f"  {len(self.warnings)} warning(s)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        rows = {k: len(v) for k, v in self.tables.items()}
        return f"TrialAnalysis(tables={rows})"


def write_analysis(analysis: TrialAnalysis, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``<table>.parquet`` for every table plus ``analysis.json`` to a new directory.

    Written through :func:`trialkit.store.write_analysis`, which adds the stage manifest
    (its inputs are the hashes recorded in the analysis provenance).

    Raises
    ------
    ReportError
        ``analyse.output_exists`` when ``out_dir`` exists and is not empty.
    """
    prov = analysis.provenance or {}
    inputs = {
        role: str(rec["sha256"])
        for role, rec in (prov.get("inputs") or {}).items()
        if isinstance(rec, Mapping) and "sha256" in rec
    }
    seed = prov.get("seed")
    return store.write_analysis(
        out_dir,
        tables=analysis.tables,
        document=analysis.to_dict(),
        inputs=inputs,
        seed=seed if isinstance(seed, int) else None,
    )


def load_analysis(
    directory: str | os.PathLike[str], *, allow_unverified: bool = False
) -> TrialAnalysis:
    """Read a directory written by :func:`write_analysis`, verified.

    Tables come from the Parquet files (full precision and dtypes); the rest from
    ``analysis.json`` (read through :func:`trialkit.store.read_analysis`, which
    checks every file against the SHA-256 that ``analysis.json`` and the manifest
    record).  The check is added to the provenance under
    ``custody["analysis"]``, the last link of the chain the report shows.

    Parameters
    ----------
    directory : path
    allow_unverified : bool
        Read changed files anyway; the report then states that the analysis
        directory is UNVERIFIED.

    Raises
    ------
    ReportError
        ``report.analysis_missing`` when the directory has no ``analysis.json``;
        ``report.table_missing`` when a table's file is missing;
        ``analysis.manifest_mismatch`` / ``analysis.output_mismatch`` when a file no
        longer has the recorded SHA-256 (unless ``allow_unverified``).
    """
    doc, tables, check = store.read_analysis(directory, allow_unverified=allow_unverified)
    provenance = dict(doc.get("provenance", {}))
    custody = dict(provenance.get("custody") or {})
    custody["analysis"] = check.to_dict()
    provenance["custody"] = custody
    return TrialAnalysis(
        tables=tables,
        protocol=doc.get("protocol", {}),
        methods=doc.get("methods", {}),
        provenance=provenance,
        warnings=tuple(doc.get("warnings", ())),
    )
