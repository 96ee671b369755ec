"""Checks that stage packages add to :func:`~trialkit.protocol.check_protocol`.

The protocol layer sits below the stages that give a protocol's names their
meaning (the fidelity metric registry, the data stage's instruments), so it
cannot import them.  Instead each of those stages registers a check here when it
is imported (``trialkit.fidelity.metrics`` checks indicators' metrics and
parameters; ``trialkit.data.scoring`` checks instruments and score names), and
:func:`~trialkit.protocol.check_protocol` runs every registered check.
``trialkit check`` imports those stages first, so the command always runs them.
"""

from __future__ import annotations

from collections.abc import Callable

from trialkit.errors import Problem
from trialkit.protocol.model import Protocol

__all__ = ["StageCheck", "register_check", "registered_checks"]

StageCheck = Callable[[Protocol, str], list[Problem]]
"""``check(protocol, stage) -> problems``."""

_CHECKS: dict[str, StageCheck] = {}


def register_check(name: str, check: StageCheck) -> None:
    """Register (or replace) the protocol check ``name``; the latest registration wins."""
    _CHECKS[name] = check


def registered_checks() -> dict[str, StageCheck]:
    """The registered checks by name, in registration order."""
    return dict(_CHECKS)
