"""What each stage directory holds: its files, the columns of each table, a schema version.

One :class:`StageSpec` per stage directory.  The declarations are the contract
between a stage that writes a directory and the stages that read it; readers and
writers in :mod:`trialkit.store.io` follow them, and ``manifest.json`` records the
``schema_version`` declared here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ALLOCATION",
    "ALLOCATION_COLUMNS",
    "ANALYSIS",
    "DATA",
    "DATA_TABLES",
    "FIDELITY",
    "FIDELITY_TABLES",
    "REPORT",
    "REQUIRED_DATA_TABLES",
    "REQUIRED_DATA_COLUMNS",
    "STAGES",
    "VALIDATED",
    "StageSpec",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class StageSpec:
    """Declaration of one stage directory.

    Parameters
    ----------
    name : str
        Stage name, as recorded in ``manifest.json``.
    schema_version : int
        Version of this directory's layout; raised when files or columns change.
    files : tuple of str
        Files the stage always writes (``<table>.<fmt>`` patterns spelt out in ``tables``).
    optional : tuple of str
        Files written only in some cases.
    tables : dict of str -> tuple of str
        For each table file, its columns (required columns; further columns may follow).
    """

    name: str
    schema_version: int
    files: tuple[str, ...]
    optional: tuple[str, ...] = ()
    tables: dict[str, tuple[str, ...]] = field(default_factory=dict)


ALLOCATION_COLUMNS: tuple[str, ...] = ("cluster", "arm")
"""Columns of ``allocation.csv``; ``stratum`` or ``pair`` follows for those designs."""

DATA_TABLES: tuple[str, ...] = ("clusters", "keyworkers", "families", "measurements", "delivery")
REQUIRED_DATA_TABLES: tuple[str, ...] = DATA_TABLES[:4]
REQUIRED_DATA_COLUMNS: dict[str, tuple[str, ...]] = {
    "clusters": ("la_id",),
    "keyworkers": ("keyworker_id", "la_id", "role"),
    "families": ("family_id", "keyworker_id", "la_id"),
    "measurements": ("entity_id", "level", "instrument", "timepoint"),
    "delivery": ("record_type", "la_id"),
}
"""Columns each data table must have (types and optional columns: ``trialkit.data.schema``)."""

FIDELITY_TABLES: tuple[str, ...] = (
    "fidelity_indicators",
    "fidelity_components",
    "fidelity_overall",
    "fidelity_over_time",
    "keyworker_dose",
    "contamination",
)

ALLOCATION = StageSpec(
    name="allocation",
    schema_version=1,
    files=("allocation.csv", "audit.json", "manifest.json"),
    optional=("space.parquet", "balance.csv"),
    tables={
        "allocation.csv": ALLOCATION_COLUMNS,
        "space.parquet": ("<one column per cluster>", "score", "chosen"),
        "balance.csv": ("covariate", "<statistics by arm>"),
    },
)
DATA = StageSpec(
    name="data",
    schema_version=1,
    files=tuple(f"{t}.<fmt>" for t in DATA_TABLES)
    + ("allocation.csv", "truth.json", "manifest.json"),
    tables={
        **{f"{t}.<fmt>": c for t, c in REQUIRED_DATA_COLUMNS.items()},
        "allocation.csv": ALLOCATION_COLUMNS,
    },
)
VALIDATED = StageSpec(
    name="validated",
    schema_version=1,
    files=tuple(f"{t}.parquet" for t in (*DATA_TABLES, "allocation", "scores"))
    + ("exclusions.csv", "flow.csv", "problems.json", "manifest.json"),
    tables={
        **{f"{t}.parquet": c for t, c in REQUIRED_DATA_COLUMNS.items()},
        "allocation.parquet": ALLOCATION_COLUMNS,
        "exclusions.csv": ("entity", "entity_id", "reason", "stage"),
        "flow.csv": ("arm", "level", "stage", "detail", "n"),
    },
)
FIDELITY = StageSpec(
    name="fidelity",
    schema_version=1,
    files=tuple(f"{t}{s}" for t in FIDELITY_TABLES for s in (".parquet", ".csv"))
    + ("fidelity_heatmap.png", "fidelity_heatmap.svg", "fidelity_summary.json", "manifest.json"),
    optional=("<protocol file name>",),
    tables={f"{t}.parquet": () for t in FIDELITY_TABLES},
)
ANALYSIS = StageSpec(
    name="analysis",
    schema_version=1,
    files=("<table>.parquet", "analysis.json", "manifest.json"),
    tables={
        "results.parquet": (
            "outcome_id",
            "role",
            "analysis",
            "estimate",
            "conf_low",
            "conf_high",
            "df",
            "df_method",
            "p_value",
        ),
        # written when the protocol has [[progression]] criteria (trialkit.feasibility)
        "feasibility.parquet": (
            "id",
            "label",
            "metric",
            "arm",
            "numerator",
            "denominator",
            "clusters",
            "estimate",
            "conf_low",
            "conf_high",
            "green",
            "red",
            "zone",
            "p_value",
        ),
    },
)
REPORT = StageSpec(
    name="report",
    schema_version=1,
    files=(
        "report.html",
        "report.md",
        "report.json",
        "tables/<id>.csv",
        "tables/<id>.xlsx",
        "figures/<id>.svg",
        "manifest.json",
    ),
)

STAGES: dict[str, StageSpec] = {
    s.name: s for s in (ALLOCATION, DATA, VALIDATED, FIDELITY, ANALYSIS, REPORT)
}
"""Every stage directory by name, in pipeline order."""
