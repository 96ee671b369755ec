"""Single source of the package version."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trialkit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.1.0"
