"""Randomisation settings: one frozen record, built from keyword arguments or a TOML table.

The protocol's ``[randomisation]`` table maps one-to-one onto
:class:`RandomisationSettings` via :meth:`RandomisationSettings.from_mapping`, so
the CLI and the Python API share one set of rules and one error format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from trialkit.errors import Problem, RandomisationError

Method = Literal["simple", "stratified", "matched", "constrained"]
METHODS: tuple[str, ...] = ("simple", "stratified", "matched", "constrained")
ODD_RULES: tuple[str, ...] = ("random-extra", "error")


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomisationSettings:
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
    """

    method: Method
    id_column: str = "la_id"
    arms: tuple[str, ...] = ("intervention", "control")
    ratio: tuple[int, ...] = ()
    strata: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    weights: Mapping[str, float] = field(default_factory=dict)
    metric: Literal["l1", "l2"] = "l2"
    cutoff: float | None = 0.1
    keep: int | None = None
    limits: Mapping[str, float] = field(default_factory=dict)
    enumerate_limit: int = 50_000
    samples: int = 50_000
    odd_stratum: Literal["random-extra", "error"] = "random-extra"
    pairs_column: str | None = None
    match_distance: Literal["mahalanobis", "euclidean"] = "mahalanobis"
    validity_warn: tuple[float, float] = (0.25, 0.75)

    def __post_init__(self) -> None:
        problems: list[Problem] = []

        def bad(name: str, message: str, hint: str = "") -> None:
            problems.append(
                Problem(
                    path=f"randomisation.{name}",
                    code=f"randomise.settings.{name}",
                    message=message,
                    hint=hint,
                )
            )

        if self.method not in METHODS:
            bad("method", f"`method` must be one of {', '.join(METHODS)}; got {self.method!r}.")
        if len(self.arms) < 2 or len(set(self.arms)) != len(self.arms):
            bad("arms", f"`arms` must list two or more distinct names; got {list(self.arms)}.")
        ratio = self.ratio or tuple(1 for _ in self.arms)
        object.__setattr__(self, "ratio", tuple(int(r) for r in ratio))
        if len(self.ratio) != len(self.arms) or any(r <= 0 for r in self.ratio):
            bad(
                "ratio",
                f"`ratio` must give a positive integer for each of the {len(self.arms)} arms; "
                f"got {list(self.ratio)}.",
                "e.g. --ratio 1:1 or ratio = [2, 1]",
            )
        if self.metric not in ("l1", "l2"):
            bad("metric", f"`metric` must be l1 or l2; got {self.metric!r}.")
        if self.cutoff is not None and not 0 < self.cutoff <= 1:
            bad("cutoff", f"`cutoff` must be in (0, 1]; got {self.cutoff}.")
        if self.keep is not None and self.keep < 1:
            bad("keep", f"`keep` must be a positive integer; got {self.keep}.")
        if self.enumerate_limit < 1 or self.samples < 1:
            bad("samples", "`enumerate_limit` and `samples` must be positive integers.")
        if self.odd_stratum not in ODD_RULES:
            bad(
                "odd_stratum",
                f"`odd_stratum` must be one of {ODD_RULES}; got {self.odd_stratum!r}.",
            )
        if self.match_distance not in ("mahalanobis", "euclidean"):
            bad(
                "match_distance",
                f"`match_distance` must be mahalanobis or euclidean; got {self.match_distance!r}.",
            )
        lo, hi = self.validity_warn
        if not 0 <= lo < hi <= 1:
            bad(
                "validity_warn",
                f"`validity_warn` must be [low, high] with 0 <= low < high <= 1; got {[lo, hi]}.",
            )
        for name, w in self.weights.items():
            if not w >= 0:
                bad("weights", f"weight of `{name}` must be non-negative; got {w}.")
        for name, lim in self.limits.items():
            if not lim > 0:
                bad("limits", f"limit of `{name}` must be positive; got {lim}.")
        if self.method == "constrained":
            if len(self.arms) != 2:
                bad("arms", "constrained randomisation needs exactly two arms (as cvcrand).")
            if not self.covariates:
                bad(
                    "covariates",
                    "constrained randomisation needs at least one covariate.",
                    "add --covariates a,b,c",
                )
        if self.method == "stratified" and not self.strata:
            bad(
                "strata",
                "stratified randomisation needs at least one stratum column.",
                "add --strata region",
            )
        if self.method == "matched" and (len(self.arms) != 2 or self.ratio[0] != self.ratio[1]):
            bad("arms", "a pair-matched design needs two arms in ratio 1:1.")
        if self.method == "matched" and not self.pairs_column and not self.covariates:
            bad("covariates", "pair matching needs a pairs column or covariates to match on.")
        if problems:
            raise RandomisationError("invalid randomisation settings", problems)

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], *, default_arms: Sequence[str] | None = None
    ) -> RandomisationSettings:
        """Build settings from a mapping such as the protocol's ``[randomisation]`` table.

        Unknown keys raise :class:`~trialkit.errors.RandomisationError`; ``None``
        values fall back to the defaults, and empty ``arms`` use ``default_arms``.
        """
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise RandomisationError(
                "unknown randomisation settings",
                [
                    Problem(
                        path=f"randomisation.{k}",
                        code="randomise.settings.unknown",
                        message=f"`{k}` is not a randomisation setting.",
                        hint=f"known settings: {', '.join(sorted(known))}",
                    )
                    for k in unknown
                ],
            )
        kwargs: dict[str, Any] = {}
        for key, value in mapping.items():
            if value is None and key not in ("cutoff", "keep", "pairs_column"):
                continue
            if key in ("arms", "ratio", "strata", "covariates", "validity_warn"):
                value = tuple(value)
            elif key in ("weights", "limits"):
                value = {str(k): float(v) for k, v in dict(value).items()}
            kwargs[key] = value
        if not kwargs.get("arms"):
            kwargs["arms"] = tuple(default_arms) if default_arms else ("intervention", "control")
        if "keep" in kwargs and kwargs["keep"] is not None and "cutoff" not in mapping:
            kwargs["cutoff"] = None
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (lists for tuples, plain dicts for mappings)."""
        d = asdict(self)
        for key in ("arms", "ratio", "strata", "covariates", "validity_warn"):
            d[key] = list(d[key])
        d["weights"] = dict(self.weights)
        d["limits"] = dict(self.limits)
        return d
