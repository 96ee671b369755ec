"""Result objects, one class per model family on a small common base.

A :class:`FitResult` is computed up front by the function that returns it and
holds no reference to the model or the data: only the specification, the
numbers, the counts and a hash of the data.  It is frozen; asking for an
alternative (another df method of a linear mixed model) returns a new object.

==========================  ===============================================================
:class:`LmmResult`          linear mixed model (``method="lmm"``); ``with_df_method``
:class:`GlmmResult`         random-intercept logistic GLMM (``method="glmm"``)
:class:`GeeResult`          GEE with a small-sample corrected sandwich (``method="gee"``)
:class:`RobustOlsResult`    OLS with a cluster-robust covariance (``method="ols-cr2"``)
:class:`ClusterLevelResult` cluster-level analyses (``method="cluster-level"``)
==========================  ===============================================================

``to_dict()`` writes the method-specific fields under the key ``"extra"`` (the JSON
the CLI prints and the analysis stage stores); :meth:`FitResult.from_dict` rebuilds
the subclass named by ``"method"``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from trialkit._version import __version__
from trialkit.errors import ModelSpecError
from trialkit.methods import check_df_method
from trialkit.models.dfmethods import ContrastTest, Inference, coefficient_terms, test_contrast
from trialkit.models.terms import TERM_COLUMNS, Exclusion, Term, clean_float

__all__ = [
    "RESULT_SCHEMA_VERSION",
    "TERM_COLUMNS",
    "BinaryEffects",
    "ClusterLevelResult",
    "DeferredMapping",
    "Exclusion",
    "FitResult",
    "GeeResult",
    "GlmmResult",
    "LmmResult",
    "RobustInference",
    "RobustOlsResult",
    "Term",
]

RESULT_SCHEMA_VERSION = 1


class DeferredMapping(Mapping[str, Any]):
    """A read-only mapping computed when first read, then kept.

    Used for parts of a result that cost a computation of their own but that many
    callers never read (the unconditional model behind Hedges' g): the value is
    a deterministic function of the fit, so deferring it changes no number, only
    when it is paid for.  It compares, prints and pickles as the plain ``dict``
    it stands for (pickling computes it).

    Parameters
    ----------
    compute : callable
        Returns the mapping; called at most once, on first access.
    """

    __slots__ = ("_compute", "_value")

    def __init__(self, compute: Callable[[], Mapping[str, Any]]) -> None:
        self._compute: Callable[[], Mapping[str, Any]] | None = compute
        self._value: dict[str, Any] | None = None

    def _get(self) -> dict[str, Any]:
        if self._value is None:
            assert self._compute is not None
            self._value = dict(self._compute())
            self._compute = None  # drop what the computation held
        return self._value

    @property
    def computed(self) -> bool:
        """Whether the value has been computed already."""
        return self._value is not None

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return repr(self._get())

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (self._get(),))


def _f(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _matrix(rows: Sequence[Sequence[float]]) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in r) for r in rows)


@dataclass(frozen=True, slots=True, kw_only=True)
class BinaryEffects:
    """Odds ratio and marginal risk difference of a binary-outcome model (with intervals)."""

    odds_ratio: float
    odds_ratio_conf_low: float
    odds_ratio_conf_high: float
    marginal_risk_treated: float
    marginal_risk_control: float
    risk_difference: float
    risk_difference_std_error: float
    risk_difference_conf_low: float
    risk_difference_conf_high: float

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BinaryEffects:
        return cls(**{f.name: _f(d[f.name]) for f in dataclasses.fields(cls)})

    @classmethod
    def from_extra(cls, d: Mapping[str, Any]) -> BinaryEffects | None:
        return cls.from_dict(d) if "odds_ratio" in d else None


@dataclass(frozen=True, slots=True, kw_only=True)
class RobustInference:
    """Cluster-robust inference for the fixed effects of a linear mixed model."""

    vcov_type: str
    terms: tuple[Term, ...]
    vcov: tuple[tuple[float, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "vcov_type": self.vcov_type,
            "terms": [t.to_dict() for t in self.terms],
            "vcov": [list(r) for r in self.vcov],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RobustInference:
        return cls(
            vcov_type=d["vcov_type"],
            terms=tuple(Term.from_dict(t) for t in d["terms"]),
            vcov=_matrix(d["vcov"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FitResult:
    """Outcome of :func:`trialkit.fit`: the fields every model family shares.

    Attributes
    ----------
    method : str
        ``"lmm"``, ``"glmm"``, ``"ols-cr2"``, ``"cluster-level"`` or ``"gee"``
        (:data:`trialkit.methods.RESULT_METHODS`); the subclass matches it.
    family : str
        ``"gaussian"`` or ``"binomial"``.
    outcome, treatment_column : str
        Column names; ``treatment_term`` is the name of the treatment coefficient.
    treatment : Term
        Inference for the treatment effect (on the link scale for binomial models).
    fixed_effects : tuple of Term
        Every fixed-effect coefficient.
    variance_components : mapping
        Estimated variances keyed by cluster column name plus ``"residual"``.
    icc : mapping
        Intraclass correlations keyed by cluster column name.
    """

    method: str
    family: str
    outcome: str
    treatment_column: str
    treatment_term: str
    treatment: Term
    fixed_effects: tuple[Term, ...]
    variance_components: Mapping[str, float]
    icc: Mapping[str, float]
    df_method: str
    n_obs: int
    n_clusters: Mapping[str, int]
    n_excluded: int
    exclusions: tuple[Exclusion, ...] = ()
    singular: bool = False
    converged: bool = True
    loglik: float = float("nan")
    reml: bool = True
    formula: str = ""
    data_hash: str = ""
    warnings: tuple[str, ...] = ()

    _classes: ClassVar[dict[str, type[FitResult]]] = {}

    # ------------------------------------------------------------------ family specifics
    def _extra(self) -> dict[str, Any]:
        """Method-specific JSON-safe fields (written under ``"extra"``)."""
        return {}

    @classmethod
    def _fields_from_extra(cls, extra: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments of the subclass's own fields, read from ``extra``."""
        return {}

    # ------------------------------------------------------------------ output
    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per fixed-effect term."""
        rows = [t.to_dict() for t in self.fixed_effects]
        return pd.DataFrame(rows, columns=TERM_COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary with ``schema_version`` and ``trialkit_version``."""
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "trialkit_version": __version__,
            "method": self.method,
            "family": self.family,
            "outcome": self.outcome,
            "treatment_column": self.treatment_column,
            "treatment_term": self.treatment_term,
            "treatment": self.treatment.to_dict(),
            "fixed_effects": [t.to_dict() for t in self.fixed_effects],
            "variance_components": {
                k: clean_float(float(v)) for k, v in self.variance_components.items()
            },
            "icc": {k: clean_float(float(v)) for k, v in self.icc.items()},
            "df_method": self.df_method,
            "n_obs": int(self.n_obs),
            "n_clusters": {k: int(v) for k, v in self.n_clusters.items()},
            "n_excluded": int(self.n_excluded),
            "exclusions": [e.to_dict() for e in self.exclusions],
            "singular": bool(self.singular),
            "converged": bool(self.converged),
            "loglik": clean_float(float(self.loglik)),
            "reml": bool(self.reml),
            "formula": self.formula,
            "data_hash": self.data_hash,
            "warnings": list(self.warnings),
            "extra": self._extra(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FitResult:
        """Rebuild a result saved with :meth:`to_dict` as the subclass its ``method`` names.

        Raises
        ------
        ModelSpecError
            ``d["method"]`` names no result class (code ``fit.result_method``).
        """
        method = d["method"]
        target = FitResult._classes.get(method)
        if target is None or not issubclass(target, cls):
            raise ModelSpecError.from_problem(
                path="method",
                code="fit.result_method",
                message=(
                    f"a saved {cls.__name__} must have method among "
                    f"{', '.join(FitResult._classes)}; got {method!r}."
                ),
                hint="load the dictionary written by the matching result's to_dict().",
            )
        return target(
            method=method,
            family=d["family"],
            outcome=d["outcome"],
            treatment_column=d["treatment_column"],
            treatment_term=d["treatment_term"],
            treatment=Term.from_dict(d["treatment"]),
            fixed_effects=tuple(Term.from_dict(t) for t in d["fixed_effects"]),
            variance_components={k: _f(v) for k, v in d["variance_components"].items()},
            icc={k: _f(v) for k, v in d["icc"].items()},
            df_method=d["df_method"],
            n_obs=int(d["n_obs"]),
            n_clusters={k: int(v) for k, v in d["n_clusters"].items()},
            n_excluded=int(d["n_excluded"]),
            exclusions=tuple(Exclusion(**e) for e in d.get("exclusions", [])),
            singular=bool(d["singular"]),
            converged=bool(d["converged"]),
            loglik=_f(d["loglik"]),
            reml=bool(d.get("reml", True)),
            formula=d.get("formula", ""),
            data_hash=d.get("data_hash", ""),
            warnings=tuple(d.get("warnings", [])),
            **target._fields_from_extra(d.get("extra", {})),
        )

    def summary(self) -> str:
        """Plain-text summary (the report stage does the rounding for publication)."""
        t = self.treatment
        lines = [
            f"{self.method} ({self.family}) for {self.outcome}: {self.formula}",
            f"n_obs = {self.n_obs}, clusters = "
            + ", ".join(f"{k}: {v}" for k, v in self.n_clusters.items())
            + f", excluded = {self.n_excluded}",
            f"treatment ({self.treatment_term}): estimate {t.estimate:.6g}, SE {t.std_error:.6g}, "
            f"{t.distribution}, p = {t.p_value:.4g}, 95% CI [{t.conf_low:.6g}, {t.conf_high:.6g}]",
            "variance components: "
            + ", ".join(f"{k} {v:.6g}" for k, v in self.variance_components.items()),
            f"df method: {self.df_method}",
        ]
        effects = getattr(self, "effects", None)
        if isinstance(effects, BinaryEffects):
            lines.append(
                f"odds ratio {effects.odds_ratio:.6g} [{effects.odds_ratio_conf_low:.6g}, "
                f"{effects.odds_ratio_conf_high:.6g}]; risk difference "
                f"{effects.risk_difference:.6g} [{effects.risk_difference_conf_low:.6g}, "
                f"{effects.risk_difference_conf_high:.6g}]"
            )
        if self.singular:
            lines.append("singular fit: a variance component is estimated at zero")
        if not self.converged:
            lines.append("WARNING: the optimiser did not converge")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def __repr__(self) -> str:
        t = self.treatment
        return (
            f"{type(self).__name__}(method={self.method!r}, outcome={self.outcome!r}, "
            f"estimate={t.estimate!r}, std_error={t.std_error!r}, df={t.df!r}, "
            f"df_method={self.df_method!r}, n_obs={self.n_obs})"
        )


def _register(method: str) -> Any:
    def deco(cls: type[FitResult]) -> type[FitResult]:
        FitResult._classes[method] = cls
        return cls

    return deco


@_register("lmm")
@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class LmmResult(FitResult):
    """Linear mixed model fitted by REML or ML (:func:`trialkit.models.lmm.fit_lmm_frame`).

    Attributes
    ----------
    theta : tuple of float
        Relative standard deviations of the random intercepts (top level first).
    iterations : int
        Optimiser iterations.
    treatment_labels : tuple
        Control and treated labels of the treatment column.
    icc_intervals : mapping
        Per cluster column: ``icc``, ``std_error``, ``conf_low``, ``conf_high``.
    alpha : float
        1 - confidence level of the intervals.
    inference : Inference
        The small matrices every df method needs (no data rows), so that
        :meth:`with_df_method` and :meth:`contrast` need no refit.
    column_names : tuple of str
        Fixed-effect columns, in the order of ``fixed_effects``.
    effect_sizes : mapping or None
        Hedges' g (conditional and unconditional), when requested; computed when
        first read (a :class:`DeferredMapping`), so a caller who never reads it
        does not pay for the unconditional model.
    robust : RobustInference or None
        Cluster-robust inference for the fixed effects, when a ``vcov`` was requested.
    inference_source : {"fit", "reml-refit"}
        Where the fixed effects and ``inference`` come from: the fit itself, or (an ML
        fit with Kenward–Roger or Satterthwaite df) its REML refit, as pbkrtest.
    """

    theta: tuple[float, ...]
    iterations: int
    treatment_labels: tuple[Any, ...]
    icc_intervals: Mapping[str, Mapping[str, float]]
    alpha: float
    inference: Inference = field(compare=False)
    column_names: tuple[str, ...]
    effect_sizes: Mapping[str, Any] | None = None
    robust: RobustInference | None = None
    inference_source: str = "fit"

    def _extra(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "inference_source": self.inference_source,
            "theta": list(self.theta),
            "iterations": self.iterations,
            "treatment_labels": list(self.treatment_labels),
            "icc_intervals": {k: dict(v) for k, v in self.icc_intervals.items()},
            "alpha": self.alpha,
            "inference": self.inference.to_dict(),
            "column_names": list(self.column_names),
        }
        if self.effect_sizes is not None:
            out["effect_sizes"] = dict(self.effect_sizes)
        if self.robust is not None:
            out["robust"] = self.robust.to_dict()
        return out

    @classmethod
    def _fields_from_extra(cls, extra: Mapping[str, Any]) -> dict[str, Any]:
        robust = extra.get("robust")
        return {
            "theta": tuple(float(t) for t in extra["theta"]),
            "iterations": int(extra["iterations"]),
            "treatment_labels": tuple(extra["treatment_labels"]),
            "icc_intervals": {k: dict(v) for k, v in extra["icc_intervals"].items()},
            "alpha": float(extra["alpha"]),
            "inference": Inference.from_dict(extra["inference"]),
            "column_names": tuple(extra["column_names"]),
            "effect_sizes": extra.get("effect_sizes"),
            "robust": None if robust is None else RobustInference.from_dict(robust),
            "inference_source": str(extra.get("inference_source", "fit")),
        }

    def with_df_method(self, df_method: str) -> LmmResult:
        """The same fit with another denominator-df method (a new result; no refit).

        Raises
        ------
        ModelSpecError
            Unknown ``df_method`` (code ``fit.df_method``).
        """
        check_df_method(df_method)
        terms = coefficient_terms(self.inference, self.column_names, df_method, self.alpha)
        idx = [t.term for t in self.fixed_effects].index(self.treatment_term)
        return dataclasses.replace(
            self, fixed_effects=tuple(terms), treatment=terms[idx], df_method=df_method
        )

    def contrast(self, L: Any, df_method: str | None = None) -> ContrastTest:
        """Test ``H0: Lβ = 0``; columns of ``L`` follow ``fixed_effects``.

        ``L`` is a vector (one contrast: t test) or a matrix (several rows: F test;
        Kenward–Roger uses the full KR F approximation).  ``df_method`` defaults to the
        result's.
        """
        return test_contrast(self.inference, L, df_method or self.df_method)


def _binary_extra(effects: BinaryEffects | None) -> dict[str, float]:
    return {} if effects is None else effects.to_dict()


@_register("glmm")
@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class GlmmResult(FitResult):
    """Random-intercept logistic GLMM (:func:`trialkit.models.glmm.fit_glmm`).

    Attributes
    ----------
    nagq : int
        Quadrature nodes (1 = Laplace).
    theta : float or tuple of float
        Random-intercept standard deviation(s) (one per level, top first).
    approximation : str
        ``"laplace"`` or ``"adaptive-gauss-hermite"``.
    icc_scale : str
        Scale of the ICCs (latent, ``π²/3`` residual variance).
    effects : BinaryEffects
        Odds ratio and marginal risk difference with intervals.
    max_abs_gradient : float
        Largest absolute gradient of the deviance at the solution.
    """

    nagq: int
    theta: float | tuple[float, ...]
    approximation: str
    icc_scale: str
    effects: BinaryEffects
    max_abs_gradient: float

    def _extra(self) -> dict[str, Any]:
        theta = self.theta if isinstance(self.theta, float) else list(self.theta)
        return {
            "nagq": self.nagq,
            "theta": theta,
            "approximation": self.approximation,
            "icc_scale": self.icc_scale,
            **self.effects.to_dict(),
            "max_abs_gradient": self.max_abs_gradient,
        }

    @classmethod
    def _fields_from_extra(cls, extra: Mapping[str, Any]) -> dict[str, Any]:
        th = extra["theta"]
        return {
            "nagq": int(extra["nagq"]),
            "theta": tuple(float(v) for v in th) if isinstance(th, list) else float(th),
            "approximation": extra["approximation"],
            "icc_scale": extra["icc_scale"],
            "effects": BinaryEffects.from_dict(extra),
            "max_abs_gradient": float(extra["max_abs_gradient"]),
        }


@_register("gee")
@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class GeeResult(FitResult):
    """GEE with a small-sample corrected sandwich variance (:func:`trialkit.models.gee.fit_gee`).

    Attributes
    ----------
    corr : str
        Working correlation (``"exchangeable"`` or ``"independence"``).
    alpha_corr : float
        Estimated working correlation.
    scale : float
        Estimated dispersion φ.
    vcov_type, vcov_name : str
        ``"CR2"`` and ``"Kauermann-Carroll"``, for example.
    effects : BinaryEffects or None
        Odds ratio and marginal risk difference (binomial family only).
    """

    corr: str
    alpha_corr: float
    scale: float
    vcov_type: str
    vcov_name: str
    effects: BinaryEffects | None = None

    def _extra(self) -> dict[str, Any]:
        return {
            "corr": self.corr,
            "alpha_corr": self.alpha_corr,
            "scale": self.scale,
            "vcov_type": self.vcov_type,
            "vcov_name": self.vcov_name,
            **_binary_extra(self.effects),
        }

    @classmethod
    def _fields_from_extra(cls, extra: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "corr": extra["corr"],
            "alpha_corr": float(extra["alpha_corr"]),
            "scale": float(extra["scale"]),
            "vcov_type": extra["vcov_type"],
            "vcov_name": extra["vcov_name"],
            "effects": BinaryEffects.from_extra(extra),
        }


@_register("ols-cr2")
@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class RobustOlsResult(FitResult):
    """OLS with a cluster-robust covariance (:func:`trialkit.models.robust.fit_ols_cr`).

    Attributes
    ----------
    vcov_type : str
        ``"CR0"`` ... ``"CR3"``.
    vcov : tuple of tuple of float
        Cluster-robust covariance of the coefficients.
    n_top_clusters : int
        Clusters the variance is robust to.
    """

    vcov_type: str
    vcov: tuple[tuple[float, ...], ...]
    n_top_clusters: int

    def _extra(self) -> dict[str, Any]:
        return {
            "vcov_type": self.vcov_type,
            "vcov": [list(r) for r in self.vcov],
            "n_top_clusters": self.n_top_clusters,
        }

    @classmethod
    def _fields_from_extra(cls, extra: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "vcov_type": extra["vcov_type"],
            "vcov": _matrix(extra["vcov"]),
            "n_top_clusters": int(extra["n_top_clusters"]),
        }


@_register("cluster-level")
@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class ClusterLevelResult(FitResult):
    """Cluster-level analysis (:func:`trialkit.models.cluster_level.fit_cluster_level`).

    Attributes
    ----------
    kind : str
        ``"means"``, ``"two-stage"`` or ``"ancova"``.
    welch : bool
        Welch's unequal-variance t-test.
    n_clusters_treated, n_clusters_control : int
        Top-level clusters per arm.
    cluster_summaries : tuple of float
        The per-cluster values analysed.
    cluster_arm : tuple of int
        1 for treated clusters, 0 for control, in the order of ``cluster_summaries``.
    """

    kind: str
    welch: bool
    n_clusters_treated: int
    n_clusters_control: int
    cluster_summaries: tuple[float, ...]
    cluster_arm: tuple[int, ...]

    def _extra(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "welch": self.welch,
            "n_clusters_treated": self.n_clusters_treated,
            "n_clusters_control": self.n_clusters_control,
            "cluster_summaries": list(self.cluster_summaries),
            "cluster_arm": list(self.cluster_arm),
        }

    @classmethod
    def _fields_from_extra(cls, extra: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "kind": extra["kind"],
            "welch": bool(extra["welch"]),
            "n_clusters_treated": int(extra["n_clusters_treated"]),
            "n_clusters_control": int(extra["n_clusters_control"]),
            "cluster_summaries": tuple(float(v) for v in extra["cluster_summaries"]),
            "cluster_arm": tuple(int(a) for a in extra["cluster_arm"]),
        }
