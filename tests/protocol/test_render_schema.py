from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from trialkit.protocol import load_protocol, protocol_json_schema, render_tidier
from trialkit.protocol.model import TIDIER_LABELS

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"


def test_markdown_has_every_item_and_arm() -> None:
    md = render_tidier(load_protocol(BUNDLED), "md")
    for label in TIDIER_LABELS.values():
        assert f"| {label} |" in md
    assert "(intervention)" in md and "(control)" in md
    assert "Systemic CPD training: 5 day per keyworker over 10 weeks" in md


def test_html_is_escaped_table() -> None:
    html = render_tidier(load_protocol(BUNDLED), "html")
    assert html.startswith("<!DOCTYPE html>")
    assert "<caption>" in html and html.count("<tr>") == 1 + 12 + 2
    assert "http" not in html.split("<body>")[1]


def test_unknown_format() -> None:
    with pytest.raises(ValueError):
        render_tidier(load_protocol(BUNDLED), "pdf")  # type: ignore[arg-type]


def test_schema_validates_bundled(bundled_doc) -> None:
    schema = protocol_json_schema()
    doc = dict(bundled_doc)
    doc["trial"] = {
        k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in doc["trial"].items()
    }
    jsonschema.validate(doc, schema)
    bad = dict(doc, trial=dict(doc["trial"], design="crossover"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
