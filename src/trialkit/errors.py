"""Every exception and warning trialkit raises, under one root.

Errors carry a list of :class:`Problem` records so that validation can gather
every problem before it raises.  Each problem has a ``path`` (where), a stable
``code`` (what; tests assert on codes), a ``message`` and a ``hint`` (how to fix).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]

__all__ = [
    "CheckError",
    "ComputationError",
    "ConvergenceWarning",
    "DataError",
    "FewClustersWarning",
    "FidelityError",
    "FitError",
    "MissingDataWarning",
    "ModelSpecError",
    "PowerError",
    "Problem",
    "ProtocolError",
    "RandomisationError",
    "ReportError",
    "SingularFitWarning",
    "TrialkitError",
    "TrialkitWarning",
    "UsageError",
    "VerificationError",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One problem found in a user's input.

    Parameters
    ----------
    path : str
        Where the problem is, e.g. ``arms.control.tidier.when_and_how_much`` or
        ``families.csv row 37 column keyworker_id``.
    code : str
        Stable, dotted identifier such as ``protocol.tidier.missing_item``.
    message : str
        What is wrong: "`<what>` must be `<rule>`; got `<value>`."
    hint : str
        How to fix it.
    severity : {"error", "warning"}
    """

    path: str
    code: str
    message: str
    hint: str = ""
    severity: Severity = "error"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        text = f"{self.severity}: {self.path}: {self.message} [{self.code}]"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class TrialkitError(Exception):
    """Root of every error trialkit raises on purpose.

    Parameters
    ----------
    message : str
        Summary sentence.
    problems : sequence of Problem, optional
        Every problem found (validation collects them all before raising).
    exit_code : int
        Exit status the CLI uses: 1 invalid input, 2 usage, 3 computation failed.
    """

    exit_code: int = 1

    def __init__(self, message: str, problems: Sequence[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems: tuple[Problem, ...] = tuple(problems or ())

    @classmethod
    def from_problem(cls, *, path: str, code: str, message: str, hint: str = "") -> TrialkitError:
        """Build an error holding a single problem."""
        problem = Problem(path=path, code=code, message=message, hint=hint)
        return cls(f"{path}: {message}", [problem])

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(p.code for p in self.problems)

    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [self.message] + [str(p) for p in self.problems]
        return "\n".join(lines)


class UsageError(TrialkitError):
    """The command was called wrongly (CLI exit code 2)."""

    exit_code = 2


class ProtocolError(TrialkitError):
    """The protocol file cannot be read or is inconsistent."""


class CheckError(ProtocolError):
    """The protocol fails a stage-aware completeness check."""


class RandomisationError(TrialkitError):
    """Randomisation inputs or settings are invalid."""


class VerificationError(RandomisationError):
    """An allocation could not be re-derived from its audit record."""


class DataError(TrialkitError):
    """Trial data fail validation or cannot be loaded."""


class FidelityError(TrialkitError):
    """Fidelity assessment or compliance inputs are invalid."""


class FeasibilityError(TrialkitError):
    """Feasibility outcomes or progression criteria cannot be assessed from the inputs."""


class ComputationError(TrialkitError):
    """A computation failed on input that was valid (CLI exit code 3).

    Invalid input is never a ``ComputationError``: the class, not a list of codes,
    decides the exit status.
    """

    exit_code = 3


class ModelSpecError(TrialkitError):
    """A model cannot be specified from the input (missing columns, a constant
    treatment, an unknown method or option): invalid input, CLI exit code 1."""


class FitError(ComputationError):
    """A model was specified correctly but could not be fitted (exit code 3)."""


class PowerError(TrialkitError):
    """Power, MDES or simulation settings are invalid or the computation failed."""


class ReportError(TrialkitError):
    """Analysis outputs cannot be turned into a report."""


class TrialkitWarning(UserWarning):
    """Root of trialkit's warnings."""


class SingularFitWarning(TrialkitWarning):
    """A variance component was estimated on the boundary (zero)."""


class FewClustersWarning(TrialkitWarning):
    """Too few clusters for the requested inference (e.g. residual df, z-tests)."""


class MissingDataWarning(TrialkitWarning):
    """Rows were excluded because of missing values (always counted on the result)."""


class ConvergenceWarning(TrialkitWarning):
    """An optimiser stopped without meeting its convergence criterion."""


def problems_to_dicts(problems: Iterable[Problem]) -> list[dict[str, str]]:
    """Return JSON-safe dictionaries for ``problems``."""
    return [p.to_dict() for p in problems]
