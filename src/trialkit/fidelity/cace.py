"""Complier average causal effect (CACE) by instrumental variables with CR2 inference.

Compliance is defined in the protocol before unblinding (``[analysis.compliance]``):
an LA complies when its overall fidelity index reaches ``threshold``
(``la_fidelity_index``), or a keyworker complies when their dose index reaches it
(``keyworker_dose``).  The randomised arm instruments receipt of the model in a
two-stage least squares (2SLS) regression; with one-sided non-compliance (no
control LA receives the model) and no covariates the estimate is the ITT effect
divided by the complier share (Wald estimator).  Standard errors are CR2
cluster-robust by LA with Satterthwaite degrees of freedom (Bell & McCaffrey
2002; Pustejovsky & Tipton 2018), computed as for 2SLS in R's clubSandwich
(``vcovCR`` on an ``ivreg`` fit: the projected design with structural residuals).
Binary outcomes use the same linear model, so the CACE is a risk difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trialkit._version import __version__
from trialkit.data.parse import numeric_outcome
from trialkit.errors import FidelityError, FitError, ModelSpecError, Problem
from trialkit.fidelity.iv import iv_2sls
from trialkit.models.coding import code_categorical, is_categorical
from trialkit.models.results import TERM_COLUMNS, Exclusion, Term

__all__ = [
    "CaceResult",
    "CaceSweep",
    "cace_sweep",
    "compliance_indicator",
    "estimate_cace",
    "iv_2sls",
]

SCHEMA_VERSION = 1


# ----------------------------------------------------------------------------- compliance
def compliance_indicator(
    fidelity: Any,
    *,
    measure: str = "la_fidelity_index",
    threshold: float = 0.8,
    roles: Mapping[str, str] | None = None,
) -> pd.Series:
    """Receipt indicator (1 = complier) by LA or keyworker from a FidelityReport.

    ``la_fidelity_index``: LA overall index >= threshold, indexed by ``la_id``.
    ``keyworker_dose``: keyworker dose index >= threshold, indexed by ``keyworker_id``.
    A control LA with no delivery records (index NA) has not received the model (0).
    An intervention LA with an NA index raises FidelityError: its compliance is unknown.
    """
    if measure == "la_fidelity_index":
        tab = fidelity.overall.set_index("la_id")
        val = tab["overall_index"].astype(float)
        arm = tab["arm"]
    elif measure == "keyworker_dose":
        tab = fidelity.keyworker_dose.set_index("keyworker_id")
        val = tab["dose_index"].astype(float)
        arm = tab["arm"]
    else:
        raise FidelityError.from_problem(
            path="analysis.compliance.measure",
            code="cace.compliance.measure",
            message=f"measure must be 'la_fidelity_index' or 'keyworker_dose'; got {measure!r}",
            hint="set analysis.compliance.measure in the protocol",
        )
    intervention = arm == fidelity.intervention_arm
    unknown = val.isna() & intervention
    if unknown.any():
        raise FidelityError(
            f"compliance is unknown for {int(unknown.sum())} intervention unit(s)",
            [
                Problem(
                    path=f"fidelity {measure} {k}",
                    code="cace.compliance.missing",
                    message=f"{measure} of {k!r} is missing (a component has no delivery records)",
                    hint="complete the delivery records, or set [fidelity] missing_as_zero = true "
                    "if missing records mean nothing was delivered",
                )
                for k in val.index[unknown.to_numpy()]
            ],
        )
    return (val.fillna(0.0) >= float(threshold) - 1e-12).astype(float).rename("received")


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True, slots=True, kw_only=True)
class CaceResult:
    """Result of :func:`estimate_cace`.

    Attributes
    ----------
    cace : Term
        Complier average causal effect (2SLS), CR2 SE, Satterthwaite df.
    itt : Term
        Intention-to-treat effect (OLS of the outcome on arm and covariates, CR2).
    first_stage : Term
        Effect of the arm on receipt (the complier share difference when one-sided).
    complier_share : mapping
        Share of rows receiving the model, by arm.
    one_sided : bool
        True when no control row received the model.
    wald : float
        Unadjusted ITT / complier share difference (equals the 2SLS estimate
        without covariates).
    """

    outcome: str
    outcome_type: str
    scale: str
    measure: str
    threshold: float
    cace: Term
    itt: Term
    first_stage: Term
    complier_share: Mapping[str, float]
    one_sided: bool
    wald: float
    covariates: tuple[str, ...]
    n_obs: int
    n_clusters: int
    n_excluded: int
    exclusions: tuple[Exclusion, ...] = ()
    vcov_type: str = "CR2"
    df_method: str = "satterthwaite"
    alpha: float = 0.05
    warnings: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: rows ``cace``, ``itt``, ``first_stage``."""
        return pd.DataFrame(
            [t.to_dict() for t in (self.cace, self.itt, self.first_stage)], columns=TERM_COLUMNS
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "trialkit_version": __version__,
            "outcome": self.outcome,
            "outcome_type": self.outcome_type,
            "scale": self.scale,
            "measure": self.measure,
            "threshold": self.threshold,
            "cace": self.cace.to_dict(),
            "itt": self.itt.to_dict(),
            "first_stage": self.first_stage.to_dict(),
            "complier_share": {k: float(v) for k, v in self.complier_share.items()},
            "one_sided": self.one_sided,
            "wald": None if not math.isfinite(self.wald) else self.wald,
            "covariates": list(self.covariates),
            "n_obs": self.n_obs,
            "n_clusters": self.n_clusters,
            "n_excluded": self.n_excluded,
            "exclusions": [e.to_dict() for e in self.exclusions],
            "vcov_type": self.vcov_type,
            "df_method": self.df_method,
            "alpha": self.alpha,
            "warnings": list(self.warnings),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CaceResult:
        return cls(
            outcome=d["outcome"],
            outcome_type=d["outcome_type"],
            scale=d["scale"],
            measure=d["measure"],
            threshold=float(d["threshold"]),
            cace=Term.from_dict(d["cace"]),
            itt=Term.from_dict(d["itt"]),
            first_stage=Term.from_dict(d["first_stage"]),
            complier_share=dict(d["complier_share"]),
            one_sided=bool(d["one_sided"]),
            wald=math.nan if d.get("wald") is None else float(d["wald"]),
            covariates=tuple(d.get("covariates", ())),
            n_obs=int(d["n_obs"]),
            n_clusters=int(d["n_clusters"]),
            n_excluded=int(d["n_excluded"]),
            exclusions=tuple(Exclusion(**e) for e in d.get("exclusions", [])),
            vcov_type=d.get("vcov_type", "CR2"),
            df_method=d.get("df_method", "satterthwaite"),
            alpha=float(d.get("alpha", 0.05)),
            warnings=tuple(d.get("warnings", ())),
            extra=dict(d.get("extra", {})),
        )

    def summary(self) -> str:
        c, i, f = self.cace, self.itt, self.first_stage
        lvl = f"{100 * (1 - self.alpha):g}%"
        lines = [
            f"CACE for {self.outcome} ({self.outcome_type}, {self.scale}); compliance: "
            f"{self.measure} >= {self.threshold:g}"
            + ("; one-sided non-compliance" if self.one_sided else "; two-sided non-compliance"),
            "complier share: " + ", ".join(f"{k} {v:.4g}" for k, v in self.complier_share.items()),
            f"CACE {c.estimate:.6g} (SE {c.std_error:.6g}, {c.distribution}, p = {c.p_value:.4g}, "
            f"{lvl} CI [{c.conf_low:.6g}, {c.conf_high:.6g}]); CR2 by LA, Satterthwaite df",
            f"ITT {i.estimate:.6g} (SE {i.std_error:.6g}, {i.distribution}); first stage "
            f"{f.estimate:.6g} (SE {f.std_error:.6g})",
            f"n_obs = {self.n_obs}, clusters = {self.n_clusters}, excluded = {self.n_excluded}",
        ]
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"CaceResult(outcome={self.outcome!r}, threshold={self.threshold!r}, "
            f"estimate={self.cace.estimate!r}, std_error={self.cace.std_error!r}, "
            f"df={self.cace.df!r}, n_obs={self.n_obs})"
        )


SWEEP_COLUMNS = [
    "threshold",
    "complier_share_intervention",
    "complier_share_control",
    "estimate",
    "std_error",
    "df",
    "p_value",
    "conf_low",
    "conf_high",
    "note",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CaceSweep:
    """CACE across compliance thresholds (as eefAnalytics's threshold plots)."""

    outcome: str
    measure: str
    scale: str
    results: tuple[CaceResult | None, ...]
    thresholds: tuple[float, ...]
    notes: tuple[str, ...]

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for t, r, note in zip(self.thresholds, self.results, self.notes, strict=True):
            if r is None:
                rows.append({"threshold": t, "note": note})
                continue
            arms = list(r.complier_share.values())
            rows.append(
                {
                    "threshold": t,
                    "complier_share_intervention": arms[0],
                    "complier_share_control": arms[1] if len(arms) > 1 else math.nan,
                    "estimate": r.cace.estimate,
                    "std_error": r.cace.std_error,
                    "df": r.cace.df,
                    "p_value": r.cace.p_value,
                    "conf_low": r.cace.conf_low,
                    "conf_high": r.cace.conf_high,
                    "note": note,
                }
            )
        return pd.DataFrame(rows, columns=SWEEP_COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "trialkit_version": __version__,
            "outcome": self.outcome,
            "measure": self.measure,
            "scale": self.scale,
            "thresholds": list(self.thresholds),
            "notes": list(self.notes),
            "results": [None if r is None else r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CaceSweep:
        return cls(
            outcome=d["outcome"],
            measure=d["measure"],
            scale=d["scale"],
            thresholds=tuple(float(t) for t in d["thresholds"]),
            notes=tuple(d["notes"]),
            results=tuple(None if r is None else CaceResult.from_dict(r) for r in d["results"]),
        )

    def summary(self) -> str:
        f = self.to_frame()
        lines = [f"CACE for {self.outcome} by {self.measure} threshold ({self.scale}):"]
        for _, r in f.iterrows():
            if pd.isna(r["estimate"]):
                lines.append(f"  {r['threshold']:g}: not estimable ({r['note']})")
            else:
                lines.append(
                    f"  {r['threshold']:g}: complier share {r['complier_share_intervention']:.3g}, "
                    f"CACE {r['estimate']:.6g} [{r['conf_low']:.6g}, {r['conf_high']:.6g}]"
                )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"CaceSweep(outcome={self.outcome!r}, thresholds={list(self.thresholds)!r})"


# ----------------------------------------------------------------------------- API
def _design(frame: pd.DataFrame, covariates: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    cols: list[np.ndarray] = []
    names: list[str] = []
    for c in covariates:
        s = frame[c]
        if is_categorical(s):
            dummies, coding = code_categorical(s, c)
            cols.append(dummies)
            names.extend(coding.columns)
        else:
            cols.append(s.to_numpy(float)[:, None])
            names.append(c)
    if not cols:
        return np.zeros((len(frame), 0)), []
    return np.hstack(cols), names


def estimate_cace(
    frame: pd.DataFrame,
    received: pd.Series | np.ndarray | None = None,
    *,
    fidelity: Any = None,
    protocol: Any = None,
    outcome: str = "y",
    outcome_type: str | None = None,
    arm: str = "arm",
    cluster: str = "la_id",
    intervention_arm: str | None = None,
    measure: str | None = None,
    threshold: float | None = None,
    covariates: Sequence[str] = (),
    alpha: float | None = None,
    outcome_id: str | None = None,
) -> CaceResult:
    """Estimate the complier average causal effect by 2SLS with CR2 / Satterthwaite inference.

    Parameters
    ----------
    frame : DataFrame
        One row per analysed unit with the outcome (``outcome``), the randomised
        arm (``arm``: arm ids or 0/1), the LA (``cluster``), optional
        ``keyworker_id`` (needed for ``keyworker_dose``) and covariate columns.
    received : array-like, optional
        Receipt indicator per row (1 = received the model as defined).  When
        omitted it is derived from ``fidelity`` with the protocol's compliance
        definition (``measure``/``threshold`` override it).
    fidelity : FidelityReport, optional
    protocol : Protocol, optional
        Supplies the compliance definition, ``alpha`` and the intervention arm.
    outcome_type : {"continuous", "binary"}, optional
        Binary outcomes must be 0/1; the CACE is then a risk difference.
    covariates : sequence of str
        Baseline covariates (categorical columns are dummy-coded).

    Returns
    -------
    CaceResult

    Notes
    -----
    Model: :math:`y = \\alpha + \\beta D + \\gamma'x + e`, instrument :math:`Z`
    (randomised arm).  Under randomisation, the exclusion restriction and
    monotonicity, :math:`\\beta` is the average effect among compliers (Angrist,
    Imbens & Rubin 1996).  Without covariates :math:`\\hat\\beta =
    \\widehat{ITT} / (\\bar D_1 - \\bar D_0)`, which is ITT ÷ complier share when no
    control unit receives the model.  CR2 by LA with Satterthwaite df (Bell &
    McCaffrey 2002; Pustejovsky & Tipton 2018).

    References
    ----------
    Angrist JD, Imbens GW, Rubin DB. Identification of causal effects using
    instrumental variables. JASA 1996;91:444–455.
    Bell RM, McCaffrey DF. Bias reduction in standard errors for linear
    regression with multi-stage samples. Survey Methodology 2002;28:169–181.
    Pustejovsky JE, Tipton E. Small-sample methods for cluster-robust variance
    estimation and hypothesis testing in fixed effects models. JBES 2018;36:672–683.
    """
    comp = getattr(getattr(protocol, "analysis", None), "compliance", None)
    meas = measure or (comp.measure if comp is not None else "la_fidelity_index")
    thr = float(
        threshold if threshold is not None else (comp.threshold if comp is not None else 0.8)
    )
    a = float(
        alpha if alpha is not None else (protocol.analysis.alpha if protocol is not None else 0.05)
    )
    if intervention_arm is None:
        if protocol is not None:
            intervention_arm = protocol.intervention_arm
        elif fidelity is not None:
            intervention_arm = fidelity.intervention_arm
    oid = outcome_id or outcome
    if outcome_type is None:
        out = protocol.outcome(oid) if protocol is not None else None
        outcome_type = out.type if out is not None else "continuous"
    if outcome_type not in ("continuous", "binary"):
        raise FidelityError.from_problem(
            path=f"outcomes.{oid}.type",
            code="cace.outcome_type",
            message=f"CACE handles continuous and binary outcomes; got {outcome_type!r}",
            hint="use a continuous or binary outcome",
        )
    need = [outcome, arm, cluster, *covariates]
    missing_cols = [c for c in need if c not in frame.columns]
    if missing_cols:
        raise FidelityError.from_problem(
            path="analysis frame",
            code="cace.missing_column",
            message=f"the analysis frame must have column(s) {', '.join(missing_cols)}",
            hint=f"columns needed: {', '.join(need)}",
        )
    df = frame.reset_index(drop=True).copy()
    if received is None:
        if fidelity is None:
            raise FidelityError.from_problem(
                path="cace",
                code="cace.no_compliance",
                message="either 'received' or a fidelity report must be given",
                hint="run 'trialkit fidelity' first and pass --fidelity DIR",
            )
        ind = compliance_indicator(fidelity, measure=meas, threshold=thr)
        key = cluster if meas == "la_fidelity_index" else "keyworker_id"
        if key not in df.columns:
            raise FidelityError.from_problem(
                path="analysis frame",
                code="cace.missing_column",
                message=f"compliance measure '{meas}' needs column '{key}' in the analysis frame",
                hint="add the keyworker of each family, or use la_fidelity_index",
            )
        ids = df[key].astype(str)
        unknown = ~ids.isin(set(ind.index.astype(str)))
        if unknown.any():
            raise FidelityError.from_problem(
                path=f"analysis frame column {key}",
                code="cace.unknown_unit",
                message=f"{int(unknown.sum())} row(s) have a {key} with no fidelity record; first "
                f"{ids[unknown].iloc[0]!r}",
                hint="use the fidelity outputs of the same data",
            )
        ind.index = ind.index.astype(str)
        df["_received"] = ids.map(ind).astype(float)
    else:
        df["_received"] = np.asarray(received, dtype=float)

    # arm -> 0/1
    arm_vals = df[arm]
    if pd.api.types.is_numeric_dtype(arm_vals) and set(arm_vals.dropna().unique()) <= {0, 1}:
        z = arm_vals.astype(float)
        ia = "1"
    else:
        if intervention_arm is None:
            raise FidelityError.from_problem(
                path="analysis frame column arm",
                code="cace.arm",
                message="arm labels need the intervention arm id (pass protocol or intervention_arm)",
                hint="or code the arm as 0/1",
            )
        z = (arm_vals.astype(str) == str(intervention_arm)).astype(float)
        z[arm_vals.isna()] = np.nan
        ia = str(intervention_arm)

    # exclusions (counted, never silent)
    exclusions = []
    keep = np.ones(len(df), dtype=bool)
    for col, reason in [
        (outcome, "missing outcome"),
        (arm, "missing arm"),
        (cluster, "missing LA"),
    ]:
        bad = df[col].isna().to_numpy() & keep
        if bad.any():
            exclusions.append(Exclusion(reason=reason, n_rows=int(bad.sum())))
            keep &= ~bad
    for c in covariates:
        bad = df[c].isna().to_numpy() & keep
        if bad.any():
            exclusions.append(Exclusion(reason=f"missing covariate {c}", n_rows=int(bad.sum())))
            keep &= ~bad
    dd = df[keep].reset_index(drop=True)
    zz = z[keep].to_numpy(float)
    y = numeric_outcome(
        dd[outcome],
        name=outcome,
        path=f"analysis frame column {outcome}",
        code="cace.outcome_type",
        error=FidelityError,
    )
    d = dd["_received"].to_numpy(float)
    if outcome_type == "binary" and not set(np.unique(y)) <= {0.0, 1.0}:
        raise FidelityError.from_problem(
            path=f"analysis frame column {outcome}",
            code="cace.binary_values",
            message="a binary outcome must be coded 0/1",
            hint="recode the outcome or declare it continuous",
        )
    cl = dd[cluster].astype(str).to_numpy()
    n_cl = len(set(cl))
    warn: list[str] = []
    if n_cl < 4 or len(set(cl[zz == 1])) < 2 or len(set(cl[zz == 0])) < 2:
        raise FitError.from_problem(
            path="cace",
            code="cace.too_few_clusters",
            message=f"CACE needs at least 2 clusters per arm; got {n_cl} clusters in all",
            hint="check the analysis frame holds both arms",
        )
    if n_cl < 30:
        msg = (
            f"only {n_cl} clusters: inference uses CR2 with Satterthwaite df, which is approximate; "
            "consider a randomisation-based interval as a sensitivity analysis"
        )
        warn.append(msg)
    W, wnames = _design(dd, covariates)
    one = np.ones((len(dd), 1))
    X = np.column_stack([one, d, W])
    Zm = np.column_stack([one, zz, W])
    _b, _v, cace = iv_2sls(y, X, Zm, cl, coef=1, alpha=a, name="cace")
    _b, _v, itt = iv_2sls(y, Zm, Zm, cl, coef=1, alpha=a, name="itt")
    _b, _v, first = iv_2sls(d, Zm, Zm, cl, coef=1, alpha=a, name="first_stage")
    share1 = float(d[zz == 1].mean())
    share0 = float(d[zz == 0].mean())
    raw_itt = float(y[zz == 1].mean() - y[zz == 0].mean())
    wald = raw_itt / (share1 - share0) if share1 != share0 else math.nan
    ctrl = "0" if ia == "1" else (protocol.control_arm if protocol is not None else "control")
    return CaceResult(
        outcome=oid,
        outcome_type=outcome_type,
        scale="risk difference" if outcome_type == "binary" else "mean difference",
        measure=meas if received is None else "given",
        threshold=thr,
        cace=cace,
        itt=itt,
        first_stage=first,
        complier_share={ia: share1, ctrl: share0},
        one_sided=bool(share0 == 0.0),
        wald=wald,
        covariates=tuple(wnames),
        n_obs=int(len(dd)),
        n_clusters=n_cl,
        n_excluded=int(sum(e.n_rows for e in exclusions)),
        exclusions=tuple(exclusions),
        alpha=a,
        warnings=tuple(warn),
        extra={"itt_unadjusted": raw_itt},
    )


def cace_sweep(
    frame: pd.DataFrame,
    *,
    fidelity: Any,
    protocol: Any = None,
    thresholds: Sequence[float] | None = None,
    **kwargs: Any,
) -> CaceSweep:
    """CACE at each compliance threshold (default: the protocol's ``thresholds``).

    A threshold at which no intervention unit complies (or receipt does not
    differ between arms) is reported as not estimable rather than dropped.
    """
    comp = getattr(getattr(protocol, "analysis", None), "compliance", None)
    ths = list(
        thresholds if thresholds is not None else (comp.thresholds if comp is not None else [])
    )
    if not ths:
        raise FidelityError.from_problem(
            path="analysis.compliance.thresholds",
            code="cace.no_thresholds",
            message="a threshold sweep needs thresholds",
            hint="set analysis.compliance.thresholds or pass --thresholds",
        )
    results: list[CaceResult | None] = []
    notes: list[str] = []
    first: CaceResult | None = None
    for t in ths:
        try:
            r = estimate_cace(
                frame, fidelity=fidelity, protocol=protocol, threshold=float(t), **kwargs
            )
            results.append(r)
            notes.append("")
            first = first or r
        except (FitError, ModelSpecError) as err:  # not estimable at this threshold
            results.append(None)
            notes.append(err.problems[0].message if err.problems else str(err))
    measure = first.measure if first else (comp.measure if comp else "la_fidelity_index")
    scale = first.scale if first else ""
    outcome = (
        first.outcome if first else str(kwargs.get("outcome_id") or kwargs.get("outcome", "y"))
    )
    return CaceSweep(
        outcome=outcome,
        measure=measure,
        scale=scale,
        results=tuple(results),
        thresholds=tuple(float(t) for t in ths),
        notes=tuple(notes),
    )
