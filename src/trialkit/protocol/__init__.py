"""The protocol: model, loading, stage-aware checks, JSON Schema and rendering."""

from trialkit.protocol.checks import CheckReport, check_protocol
from trialkit.protocol.load import load_protocol, parse_protocol, protocol_from_mapping
from trialkit.protocol.model import (
    TIDIER_ITEMS,
    TIDIER_LABELS,
    AnalysisPlan,
    Arm,
    Indicator,
    LogicModel,
    Node,
    Outcome,
    Protocol,
    Quantity,
    RandomisationPlan,
    Tidier,
    TidierItem,
)
from trialkit.protocol.render import render_tidier
from trialkit.protocol.schema import protocol_json_schema

__all__ = [
    "TIDIER_ITEMS",
    "TIDIER_LABELS",
    "AnalysisPlan",
    "Arm",
    "CheckReport",
    "Indicator",
    "LogicModel",
    "Node",
    "Outcome",
    "Protocol",
    "Quantity",
    "RandomisationPlan",
    "Tidier",
    "TidierItem",
    "check_protocol",
    "load_protocol",
    "parse_protocol",
    "protocol_from_mapping",
    "protocol_json_schema",
    "render_tidier",
]
