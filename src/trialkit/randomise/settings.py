"""Randomisation settings: one frozen record, built from keyword arguments or a TOML table.

The protocol's ``[randomisation]`` table maps one-to-one onto
:class:`RandomisationSettings` via :meth:`RandomisationSettings.from_mapping`, so
the CLI and the Python API share one set of rules and one error format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator, model_validator

from trialkit._settings import Settings
from trialkit.errors import Problem, RandomisationError

if TYPE_CHECKING:
    from trialkit.protocol.model import Protocol

Method = Literal["simple", "stratified", "matched", "constrained"]
METHODS: tuple[str, ...] = ("simple", "stratified", "matched", "constrained")
ODD_RULES: tuple[str, ...] = ("random-extra", "error")
Real = int | float
"""A number kept as given (an integer stays an integer in the audit record)."""


class RandomisationSettings(
    Settings,
    error=RandomisationError,
    path="randomisation",
    code="randomise.settings",
    summary="invalid randomisation settings",
):
    """Every setting that determines an allocation (recorded verbatim in the audit).

    Parameters
    ----------
    method : {"simple", "stratified", "matched", "constrained"}
    id_column : str
        Column of the clusters file holding the cluster identifier.
    arms : tuple of str
        Arm names in declared order (default ``("intervention", "control")``).
    ratio : tuple of int
        Allocation ratio, one positive integer per arm (default all ones).
    strata : tuple of str
        Categorical columns whose combinations form strata (stratified, or
        constrained within strata).
    covariates : tuple of str
        Covariates for constrained randomisation or optimal matching.
    weights : mapping str -> float
        Weight per covariate (a categorical covariate's weight applies to each of
        its dummy columns); default 1 for each.
    metric : {"l2", "l1"}
    cutoff : float or None
        Fraction of best-scoring allocations kept (default 0.1).
    keep : int or None
        Keep this many best-scoring allocations instead of a fraction.
    limits : mapping str -> float
        Per-covariate limits on the absolute standardised difference in arm means
        (as cvcrand's ``cvrcov``); replaces ``cutoff``/``keep`` when given.
    enumerate_limit : int
        Enumerate every allocation when their number is at most this (default 50,000).
    samples : int
        Number of distinct allocations sampled when not enumerating.
    odd_stratum : {"random-extra", "error"}
        What to do when a stratum (or the whole sample) cannot be split exactly in
        the ratio: give the left-over clusters to distinct arms drawn at random, or
        raise an error.
    pairs_column : str or None
        Column holding given pair labels (matched design); when absent pairs are
        formed optimally on ``covariates``.
    match_distance : {"mahalanobis", "euclidean"}
    validity_warn : tuple of float
        Warn when a pair of clusters is together in fewer than the first or more
        than the second share of kept allocations.
    declared_types : mapping str -> str
        Declared type of clusters-file columns (the protocol's
        ``[[data.covariates]]`` ``type``: ``continuous``, ``count``, ``binary``
        or ``categorical``); declared columns are read by the data stage's rules
        (:mod:`trialkit.data.parse`), the others have their type inferred.
    levels : mapping str -> tuple of str
        Declared levels of categorical columns; values are matched to them after
        trimming blanks and folding case, and the match is recorded.
    n_clusters : int or None
        Number of clusters the protocol declares; the clusters file must have
        exactly this many rows.

    Notes
    -----
    ``declared_types``, ``levels`` and ``n_clusters`` are left out of
    :meth:`to_dict` when empty, so the audit record of a design without them is
    the same as before they existed.
    """

    method: Method
    id_column: str = "la_id"
    arms: tuple[str, ...] = ("intervention", "control")
    ratio: tuple[int, ...] = ()
    strata: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    weights: dict[str, Real] = {}
    metric: Literal["l1", "l2"] = "l2"
    cutoff: Real | None = 0.1
    keep: int | None = None
    limits: dict[str, Real] = {}
    enumerate_limit: int = 50_000
    samples: int = 50_000
    odd_stratum: Literal["random-extra", "error"] = "random-extra"
    pairs_column: str | None = None
    match_distance: Literal["mahalanobis", "euclidean"] = "mahalanobis"
    validity_warn: tuple[Real, Real] = (0.25, 0.75)
    declared_types: dict[str, Literal["continuous", "count", "binary", "categorical"]] = {}
    levels: dict[str, tuple[str, ...]] = {}
    n_clusters: int | None = None

    hints = {"ratio": "e.g. --ratio 1:1 or ratio = [2, 1]"}

    @model_validator(mode="before")
    @classmethod
    def _default_ratio(cls, data: Any) -> Any:
        """An empty ratio means 1 for each arm."""
        if isinstance(data, dict) and not data.get("ratio"):
            arms = data.get("arms", ("intervention", "control"))
            if isinstance(arms, Sequence) and not isinstance(arms, str):
                data = {**data, "ratio": tuple(1 for _ in arms)}
        return data

    @field_validator("arms")
    @classmethod
    def _arms(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(v) < 2 or len(set(v)) != len(v):
            raise ValueError("a list of two or more distinct names")
        return v

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(r <= 0 for r in v):
            raise ValueError("a positive integer for each arm")
        return v

    @field_validator("cutoff")
    @classmethod
    def _cutoff(cls, v: Real | None) -> Real | None:
        if v is not None and not 0 < v <= 1:
            raise ValueError("in (0, 1]")
        return v

    @field_validator("keep", "enumerate_limit", "samples", "n_clusters")
    @classmethod
    def _positive_int(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError("a positive integer")
        return v

    @field_validator("validity_warn")
    @classmethod
    def _validity_warn(cls, v: tuple[Real, Real]) -> tuple[Real, Real]:
        lo, hi = v
        if not 0 <= lo < hi <= 1:
            raise ValueError("[low, high] with 0 <= low < high <= 1")
        return v

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, Real]) -> dict[str, Real]:
        if not all(w >= 0 for w in v.values()):
            raise ValueError("non-negative for every covariate")
        return v

    @field_validator("limits")
    @classmethod
    def _limits(cls, v: dict[str, Real]) -> dict[str, Real]:
        if not all(lim > 0 for lim in v.values()):
            raise ValueError("positive for every covariate")
        return v

    def cross_field_problems(self) -> list[Problem]:
        """Rules that involve the method, arms, ratio and covariates together."""
        problems: list[Problem] = []
        bad = problems.append
        if len(self.ratio) != len(self.arms):
            bad(
                self.problem(
                    "ratio",
                    f"`ratio` must give a positive integer for each of the {len(self.arms)} "
                    f"arms; got {list(self.ratio)}.",
                    self.hints["ratio"],
                )
            )
        if self.method == "constrained":
            if len(self.arms) != 2:
                bad(
                    self.problem(
                        "arms", "constrained randomisation needs exactly two arms (as cvcrand)."
                    )
                )
            if not self.covariates:
                bad(
                    self.problem(
                        "covariates",
                        "constrained randomisation needs at least one covariate.",
                        "add --covariates a,b,c",
                    )
                )
        if self.method == "stratified" and not self.strata:
            bad(
                self.problem(
                    "strata",
                    "stratified randomisation needs at least one stratum column.",
                    "add --strata region",
                )
            )
        if self.method == "matched" and (
            len(self.arms) != 2 or len(self.ratio) != 2 or self.ratio[0] != self.ratio[1]
        ):
            bad(self.problem("arms", "a pair-matched design needs two arms in ratio 1:1."))
        if self.method == "matched" and not self.pairs_column and not self.covariates:
            bad(
                self.problem(
                    "covariates", "pair matching needs a pairs column or covariates to match on."
                )
            )
        return problems

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], *, default_arms: Sequence[str] | None = None
    ) -> RandomisationSettings:
        """Build settings from a mapping such as the protocol's ``[randomisation]`` table.

        Unknown keys raise :class:`~trialkit.errors.RandomisationError`
        (``randomise.settings.unknown``); ``None``
        values fall back to the defaults, and empty ``arms`` use ``default_arms``.
        """
        kwargs: dict[str, Any] = {}
        for key, value in mapping.items():
            if value is None and key not in ("cutoff", "keep", "pairs_column"):
                continue
            if key in ("arms", "ratio", "strata", "covariates", "validity_warn"):
                value = tuple(value)
            elif key in ("weights", "limits"):
                value = {str(k): float(v) for k, v in dict(value).items()}
            elif key == "levels":
                value = {str(k): tuple(str(x) for x in v) for k, v in dict(value).items()}
            kwargs[key] = value
        if not kwargs.get("arms"):
            kwargs["arms"] = tuple(default_arms) if default_arms else ("intervention", "control")
        if "keep" in kwargs and kwargs["keep"] is not None and "cutoff" not in mapping:
            kwargs["cutoff"] = None
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (lists for tuples, plain dicts for mappings)."""
        d = self.model_dump()
        for key in ("arms", "ratio", "strata", "covariates", "validity_warn"):
            d[key] = list(d[key])
        d["weights"] = dict(self.weights)
        d["limits"] = dict(self.limits)
        for key in ("declared_types", "levels", "n_clusters"):
            if not d[key]:
                del d[key]
        if "levels" in d:
            d["levels"] = {k: list(v) for k, v in self.levels.items()}
        return d

    @classmethod
    def from_protocol(
        cls, protocol: Protocol, overrides: Mapping[str, Any] | None = None
    ) -> RandomisationSettings:
        """Settings from a protocol's ``[randomisation]`` table, types and cluster count.

        The protocol's declared types and levels of the LA-level covariates used
        as strata, covariates or pairs column, and ``trial.n_clusters`` when the
        protocol gives it, are added to the table; ``overrides`` (command-line
        options) replace entries of the table as given.

        Raises
        ------
        RandomisationError
            The protocol has no ``[randomisation]`` table and ``overrides`` gives
            no ``method``.
        """
        mapping: dict[str, Any] = (
            {} if protocol.randomisation is None else protocol.randomisation.model_dump()
        )
        mapping.update(dict(overrides or {}))
        if "method" not in mapping:
            raise RandomisationError.from_problem(
                path="randomisation",
                code="randomise.settings.missing_method",
                message="`randomisation.method` must be given; the protocol has no "
                "[randomisation] table.",
                hint="add a [randomisation] table to the protocol or pass --method",
            )
        used = set(mapping.get("strata") or ()) | set(mapping.get("covariates") or ())
        if mapping.get("pairs_column"):
            used.add(mapping["pairs_column"])
        types: dict[str, str] = {}
        levels: dict[str, tuple[str, ...]] = {}
        for cov in protocol.data.covariates:
            if cov.level.value != "la" or cov.name not in used:
                continue
            types[cov.name] = cov.type
            if cov.type == "categorical" and cov.levels:
                levels[cov.name] = tuple(cov.levels)
        mapping["declared_types"] = types
        mapping["levels"] = levels
        if "n_clusters" in protocol.trial.model_fields_set:
            mapping["n_clusters"] = protocol.trial.n_clusters
        return cls.from_mapping(mapping, default_arms=protocol.arm_ids)
