"""JSON Schema of the protocol format, for editors (``trialkit schema``)."""

from __future__ import annotations

from typing import Any

from trialkit._version import __version__
from trialkit.protocol.model import Protocol


def protocol_json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of the protocol TOML format."""
    schema = Protocol.model_json_schema(mode="validation")
    schema = _allow_string_items(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://trialkit.invalid/schema/protocol-{__version__}.json"
    schema["title"] = "trialkit protocol"
    schema["description"] = (
        "A cluster randomised trial protocol: trial design, arms with TIDieR, logic model, "
        "outcomes, randomisation, analysis and fidelity plans."
    )
    return schema


def _allow_string_items(node: Any) -> Any:
    """A TIDieR item may be written as a plain string: say so in the schema."""
    if isinstance(node, dict):
        if node.get("$ref") == "#/$defs/TidierItem":
            return {"anyOf": [{"type": "string"}, dict(node)]}
        return {k: _allow_string_items(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_allow_string_items(v) for v in node]
    return node
