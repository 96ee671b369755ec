"""Settings records: frozen pydantic models whose validation errors are trialkit errors.

A settings class subclasses :class:`Settings` and names the stage error class,
the path prefix and the code prefix of its problems::

    class DisclosureSettings(Settings, error=ReportError, path="analysis.disclosure",
                             code="report.disclosure"):
        mode: Literal["standard", "strict"] = "standard"

Every field that fails validation becomes one :class:`~trialkit.errors.Problem`
with path ``<path>.<field>``, code ``<code>.<field>`` (``<code>.unknown`` for a
keyword that is not a setting), a message of the form "`<field>` must be
<rule>; got <value>." and a hint; all problems are gathered and raised as one
error of the stage's class.  Rules that involve several fields go in
:meth:`Settings.cross_field_problems`, checked once every field is valid.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import ErrorDetails

from trialkit.errors import Problem, TrialkitError

__all__ = ["Settings", "settings_problems"]


class _CrossFieldProblems(Exception):
    """Carries the problems of the cross-field rules out of pydantic (internal)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


def _rule(err: ErrorDetails) -> str:
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "literal_error":
        return f"one of {ctx.get('expected', '')}".replace("'", "").replace(" or ", ", ")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        sign = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<"}.get(kind, "<=")
        bound = next(iter(ctx.values()), "")
        return f"{sign} {bound}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    msg = err["msg"].removeprefix("Input should be ")
    return msg[:1].lower() + msg[1:] if msg else "valid"


def settings_problems(
    exc: ValidationError, *, path: str, code: str, known: list[str], hints: dict[str, str]
) -> list[Problem]:
    """One :class:`Problem` per field in a pydantic :class:`ValidationError`.

    Parameters
    ----------
    exc : ValidationError
    path, code : str
        Prefixes of each problem's path and code.
    known : list of str
        The settings' field names (for the hint on an unknown keyword).
    hints : dict
        Hint per field name.

    Returns
    -------
    list of Problem
        In the order pydantic reports them; several errors on the same field
        (e.g. one per member of a union type) are reported once.
    """
    problems: list[Problem] = []
    seen: set[str] = set()
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        if field in seen:
            continue
        seen.add(field)
        if err["type"] == "extra_forbidden":
            problems.append(
                Problem(
                    path=f"{path}.{field}",
                    code=f"{code}.unknown",
                    message=f"`{field}` is not a {path.rsplit('.', 1)[-1]} setting.",
                    hint=f"known settings: {', '.join(sorted(known))}",
                )
            )
            continue
        problems.append(
            Problem(
                path=f"{path}.{field}",
                code=f"{code}.{field}",
                message=f"`{field}` must be {_rule(err)}; got {err['input']!r}.",
                hint=hints.get(field, ""),
            )
        )
    return problems


class Settings(BaseModel):
    """Base of the settings records (frozen, unknown keywords refused).

    Subclasses pass ``error`` (a :class:`~trialkit.errors.TrialkitError`
    subclass), ``path`` and ``code`` as class keywords and may give ``hints``
    (per field) and override :meth:`cross_field_problems`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    _error: ClassVar[type[TrialkitError]] = TrialkitError
    _path: ClassVar[str] = "settings"
    _code: ClassVar[str] = "settings"
    _summary: ClassVar[str] = "invalid settings"
    hints: ClassVar[dict[str, str]] = {}

    def __init_subclass__(
        cls,
        *,
        error: type[TrialkitError] = TrialkitError,
        path: str = "settings",
        code: str = "settings",
        summary: str = "invalid settings",
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls._error = error
        cls._path = path
        cls._code = code
        cls._summary = summary

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = settings_problems(
                exc,
                path=self._path,
                code=self._code,
                known=list(type(self).model_fields),
                hints=self.hints,
            )
            raise self._error(self._summary, problems) from None
        except _CrossFieldProblems as exc:
            raise self._error(self._summary, exc.problems) from None

    @model_validator(mode="after")
    def _check_cross_field(self) -> Settings:
        problems = self.cross_field_problems()
        if problems:
            raise _CrossFieldProblems(problems)
        return self

    def cross_field_problems(self) -> list[Problem]:
        """Problems with rules that involve several fields (none by default)."""
        return []

    def problem(self, name: str, message: str, hint: str = "") -> Problem:
        """A problem on field ``name`` with this settings' path and code prefixes."""
        return Problem(
            path=f"{self._path}.{name}", code=f"{self._code}.{name}", message=message, hint=hint
        )
