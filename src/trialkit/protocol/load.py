"""Read a protocol TOML file into a validated :class:`~trialkit.protocol.model.Protocol`.

Every failure (unreadable file, bad encoding, TOML syntax, unknown or missing
keys, wrong types) becomes a :class:`~trialkit.errors.ProtocolError` holding one
:class:`~trialkit.errors.Problem` per mistake, each with the dotted path of the
key, a stable code and a hint.  Nothing else escapes the loader.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trialkit.errors import Problem, ProtocolError
from trialkit.protocol.model import Protocol

MAX_BYTES = 5_000_000


def load_protocol(path: str | os.PathLike[str]) -> Protocol:
    """Load and validate a protocol file.

    Parameters
    ----------
    path : path-like
        A TOML file (see ``docs/protocol-format.md``).

    Returns
    -------
    Protocol
        The frozen, validated protocol.

    Raises
    ------
    ProtocolError
        With every problem found; codes ``protocol.file_not_found``,
        ``protocol.encoding``, ``protocol.toml_syntax``, ``protocol.unknown_key``,
        ``protocol.missing_key``, ``protocol.invalid_value``.
    """
    p = Path(path)
    name = str(p)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ProtocolError.from_problem(
            path=name,
            code="protocol.file_not_found",
            message=f"protocol file '{name}' does not exist",
            hint="check the path, or create a template with 'trialkit init DIR'",
        ) from None
    except (IsADirectoryError, PermissionError, OSError) as exc:
        raise ProtocolError.from_problem(
            path=name,
            code="protocol.unreadable",
            message=f"protocol file '{name}' cannot be read: {exc.strerror or exc}",
            hint="pass a readable TOML file",
        ) from None
    return parse_protocol(raw, source=name)


def parse_protocol(data: bytes | str, *, source: str = "<protocol>") -> Protocol:
    """Parse protocol text (bytes or str) named ``source`` in messages."""
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise ProtocolError.from_problem(
                path=source,
                code="protocol.too_large",
                message=f"protocol file must be at most {MAX_BYTES} bytes; got {len(data)}",
                hint="a protocol is a short TOML text file; check you passed the right file",
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError.from_problem(
                path=source,
                code="protocol.encoding",
                message=f"protocol file must be UTF-8 text; byte {exc.start} is not valid UTF-8",
                hint="save the file as UTF-8 (it should be a TOML text file)",
            ) from None
    else:
        text = data
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError.from_problem(
            path=source,
            code="protocol.toml_syntax",
            message=f"protocol file is not valid TOML: {exc}",
            hint="fix the TOML syntax at the line given (quotes, brackets, '=' between key and value)",
        ) from None
    except (ValueError, RecursionError) as exc:  # pragma: no cover - pathological input
        raise ProtocolError.from_problem(
            path=source,
            code="protocol.toml_syntax",
            message=f"protocol file is not valid TOML: {exc}",
            hint="fix the TOML syntax",
        ) from None
    return protocol_from_mapping(doc, source=source)


def protocol_from_mapping(doc: Mapping[str, Any], *, source: str = "<protocol>") -> Protocol:
    """Validate an already parsed mapping as a protocol."""
    try:
        return Protocol.model_validate(dict(doc))
    except ValidationError as exc:
        problems = [_problem(err, doc) for err in exc.errors(include_url=False)]
        raise ProtocolError(
            f"{source}: {len(problems)} problem(s) in the protocol", problems
        ) from None
    except RecursionError:  # pragma: no cover
        raise ProtocolError.from_problem(
            path=source,
            code="protocol.too_deep",
            message="protocol file nests tables too deeply",
            hint="a protocol nests at most a few levels",
        ) from None


def _dotted(loc: tuple[Any, ...]) -> str:
    """``('arms', 0, 'id')`` -> ``arms[0].id`` (validator steps already removed)."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "<root>"


def _siblings(doc: Mapping[str, Any], loc: tuple[Any, ...]) -> list[str]:
    node: Any = doc
    for item in loc[:-1]:
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            return []
    return list(node) if isinstance(node, Mapping) else []


def _problem(err: Mapping[str, Any], doc: Mapping[str, Any]) -> Problem:
    loc = tuple(x for x in err["loc"] if not str(x).startswith("function-"))
    path = _dotted(loc)
    etype = err["type"]
    if etype == "extra_forbidden":
        key = str(loc[-1]) if loc else ""
        known = _known_keys(Protocol, loc[:-1])
        close = difflib.get_close_matches(key, known, n=1)
        hint = (
            f"did you mean '{close[0]}'?"
            if close
            else (
                "remove the key"
                + (f"; allowed keys here: {', '.join(sorted(known))}" if known else "")
            )
        )
        return Problem(
            path=path,
            code="protocol.unknown_key",
            message=f"'{key}' is not a key the protocol format knows",
            hint=hint,
        )
    if etype == "missing":
        return Problem(
            path=path,
            code="protocol.missing_key",
            message=f"'{path}' must be given",
            hint="add the key; see 'trialkit schema' or docs/protocol-format.md",
        )
    value = err.get("input")
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return Problem(
        path=path,
        code="protocol.invalid_value",
        message=f"'{path}' {err['msg'].lower()}; got {shown}",
        hint=_hint_for(etype, err),
    )


def _hint_for(etype: str, err: Mapping[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    if etype in ("literal_error", "enum") and "expected" in ctx:
        return f"use one of {ctx['expected']}"
    if etype == "string_pattern_mismatch":
        return "identifiers start with a letter and use letters, digits, '_', '.' or '-'"
    if etype.endswith("_type") or etype.endswith("_parsing"):
        return "give a value of the expected type (see 'trialkit schema')"
    return "see docs/protocol-format.md for what this key accepts"


def _known_keys(model: Any, loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model reached by following ``loc`` (best effort)."""
    from pydantic import BaseModel

    current: Any = model
    skip_next = False
    for item in loc:
        if skip_next:
            skip_next = False
            continue
        if isinstance(item, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(item))
        if field is None:
            return []
        current, skip_next = _unwrap(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The model class inside ``annotation`` and whether it sits in a dict."""
    import typing

    from pydantic import BaseModel

    origin = typing.get_origin(annotation)
    is_dict = origin is dict
    stack = [annotation]
    while stack:
        a = stack.pop()
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a, is_dict
        stack.extend(typing.get_args(a))
    return None, is_dict
