"""trialkit: evaluate a cluster randomised pilot trial from protocol to report.

The public API is imported lazily so that ``import trialkit`` stays fast and
each stage only loads what it needs.
"""

from __future__ import annotations

import importlib
from typing import Any

from trialkit._version import __version__

# public name -> module that defines it
_API: dict[str, str] = {
    "load_protocol": "trialkit.protocol",
    "check_protocol": "trialkit.protocol",
    "Protocol": "trialkit.protocol",
}

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str) -> Any:
    try:
        module = _API[name]
    except KeyError:
        raise AttributeError(f"module 'trialkit' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
