"""The stage store: what each stage directory holds, and one reader and writer per output.

Every stage writes its directory through :mod:`trialkit.store.stage_io` and every
later stage reads it back through the same module.  Each directory carries a
``manifest.json`` in one format (:mod:`trialkit.store._manifest`): stage name,
``schema_version``, trialkit version, the SHA-256 of each input and output, and
the seed.  The declarations of files and columns are in
:mod:`trialkit.store.stages`; finding and reading a table is
:mod:`trialkit.store.tables`.

The store sits at the bottom of the package layers: it imports only
``trialkit.errors``, ``trialkit._io`` and ``trialkit._version``.
"""

from trialkit.store._manifest import (
    MANIFEST,
    MANIFEST_FORMAT,
    hash_inputs,
    read_manifest,
    verify_outputs,
    write_manifest,
)
from trialkit.store.custody import (
    NOT_VERIFIABLE,
    UNVERIFIED,
    VERIFIED,
    StageCheck,
    audit_record_sha256,
    check_stage_directory,
    verify_allocation,
)
from trialkit.store.stage_io import (
    AUDIT,
    AllocationRecord,
    Content,
    locate_allocation,
    read_allocation,
    read_analysis,
    read_fidelity,
    read_validated,
    verify_data_directory,
    write_allocation_files,
    write_analysis,
    write_fidelity,
    write_report,
    write_stage,
    write_trial_data,
    write_validated,
)
from trialkit.store.stages import STAGES, StageSpec
from trialkit.store.tables import DATA_SUFFIXES, PARQUET_FIRST, read_table, table_files

__all__ = [
    "NOT_VERIFIABLE",
    "UNVERIFIED",
    "VERIFIED",
    "StageCheck",
    "audit_record_sha256",
    "check_stage_directory",
    "verify_allocation",
    "AUDIT",
    "DATA_SUFFIXES",
    "MANIFEST",
    "MANIFEST_FORMAT",
    "PARQUET_FIRST",
    "STAGES",
    "AllocationRecord",
    "Content",
    "StageSpec",
    "hash_inputs",
    "locate_allocation",
    "read_allocation",
    "read_analysis",
    "read_fidelity",
    "read_manifest",
    "read_table",
    "read_validated",
    "table_files",
    "verify_data_directory",
    "verify_outputs",
    "write_allocation_files",
    "write_analysis",
    "write_fidelity",
    "write_manifest",
    "write_report",
    "write_stage",
    "write_trial_data",
    "write_validated",
]
