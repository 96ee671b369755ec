"""Arbitrary input to the protocol loader raises only ProtocolError; the CLI exits 1 or 2."""

from __future__ import annotations

import tomllib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialkit.cli import main
from trialkit.errors import ProtocolError
from trialkit.protocol import check_protocol, parse_protocol, protocol_from_mapping

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"
DOC = tomllib.loads(BUNDLED.read_text("utf-8"))

scalars = st.one_of(
    st.none().map(lambda _: ""),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=20),
)
toml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    ["trial", "arms", "logic_model", "outcomes", "randomisation", "analysis", "data", "x"]
)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_protocol_error(data: bytes) -> None:
    try:
        parse_protocol(data)
    except ProtocolError as err:
        assert err.problems and all(p.code.startswith("protocol.") for p in err.problems)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(keys, toml_values, max_size=6))
def test_arbitrary_documents_raise_only_protocol_error(doc: dict) -> None:
    try:
        protocol_from_mapping(doc)
    except ProtocolError as err:
        assert err.problems


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["trial", "arms", "logic_model", "outcomes", "analysis", "randomisation"]),
    toml_values,
)
def test_replacing_a_section_never_crashes_check(section: str, value: object) -> None:
    doc = dict(DOC)
    doc[section] = value
    try:
        protocol = protocol_from_mapping(doc)
    except ProtocolError:
        return
    check_protocol(protocol)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=200))
def test_cli_exit_codes_on_garbage(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("p") / "p.toml"
    path.write_bytes(data)
    assert main(["check", str(path), "--format", "json"]) in (1, 2)
