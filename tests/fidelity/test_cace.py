"""CACE: agreement with R (AER::ivreg + clubSandwich CR2), the Wald identity and an
independent two-stage computation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialkit.errors import FidelityError, FitError
from trialkit.fidelity import (
    CaceResult,
    CaceSweep,
    assess_fidelity,
    cace_sweep,
    compliance_indicator,
    estimate_cace,
    iv_2sls,
)
from trialkit.fidelity._example import example_tables

REF = Path(__file__).resolve().parents[1] / "reference" / "cace"
# all tolerances in one place
TOL_EST = 1e-10
TOL_SE = 1e-10
TOL_DF = 1e-8
TOL_P = 1e-10


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(REF / "data.csv")


@pytest.fixture(scope="module")
def ref() -> dict:  # type: ignore[type-arg]
    return json.loads((REF / "reference.json").read_text())


CASES = {
    "iv_continuous": ("y", ["d"], ["z"], 1),
    "iv_continuous_cov": ("y", ["d", "x"], ["z", "x"], 1),
    "iv_binary": ("yb", ["d"], ["z"], 1),
    "iv_two_sided_cov": ("y", ["d2", "x"], ["z", "x"], 1),
    "itt_continuous_cov": ("y", ["z", "x"], ["z", "x"], 1),
    "first_stage_cov": ("d", ["z", "x"], ["z", "x"], 1),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("quantity", ["estimate", "std_error", "df", "p_value"])
def test_against_clubsandwich(data, ref, case: str, quantity: str) -> None:  # type: ignore[no-untyped-def]
    y, xs, zs, k = CASES[case]
    one = np.ones(len(data))
    X = np.column_stack([one, *[data[c] for c in xs]])
    Z = np.column_stack([one, *[data[c] for c in zs]])
    _b, _v, term = iv_2sls(data[y].to_numpy(float), X, Z, data["la_id"].to_numpy(), coef=k)
    tol = {"estimate": TOL_EST, "std_error": TOL_SE, "df": TOL_DF, "p_value": TOL_P}[quantity]
    assert getattr(term, quantity) == pytest.approx(ref[case][quantity], abs=tol, rel=tol)


def test_one_sided_cace_is_itt_over_complier_share(data) -> None:  # type: ignore[no-untyped-def]
    r = estimate_cace(data, data["d"], outcome="y", arm="z")
    itt = data.loc[data.z == 1, "y"].mean() - data.loc[data.z == 0, "y"].mean()
    share = data.loc[data.z == 1, "d"].mean()
    assert r.one_sided
    assert r.cace.estimate == pytest.approx(itt / share, rel=1e-12)
    assert r.wald == pytest.approx(itt / share, rel=1e-12)
    assert r.itt.estimate == pytest.approx(itt, rel=1e-12)
    assert r.first_stage.estimate == pytest.approx(share, rel=1e-12)


def test_matches_independent_two_stage(data) -> None:  # type: ignore[no-untyped-def]
    # two explicit OLS stages with numpy lstsq
    one = np.ones(len(data))
    Z = np.column_stack([one, data.z, data.x])
    dhat = Z @ np.linalg.lstsq(Z, data.d2.to_numpy(float), rcond=None)[0]
    second = np.linalg.lstsq(
        np.column_stack([one, dhat, data.x]), data.y.to_numpy(float), rcond=None
    )[0]
    r = estimate_cace(data, data["d2"], outcome="y", arm="z", covariates=["x"])
    assert not r.one_sided
    assert r.cace.estimate == pytest.approx(second[1], rel=1e-10)


def test_binary_outcome_is_risk_difference(data) -> None:  # type: ignore[no-untyped-def]
    r = estimate_cace(data, data["d"], outcome="yb", arm="z", outcome_type="binary")
    assert r.scale == "risk difference"
    with pytest.raises(FidelityError):
        estimate_cace(data, data["d"], outcome="y", arm="z", outcome_type="binary")


def test_no_compliers_is_a_fit_error(data) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FitError) as e:
        estimate_cace(data, np.zeros(len(data)), outcome="y", arm="z")
    assert e.value.codes == ("cace.weak_instrument",)


def test_exclusions_counted(data) -> None:  # type: ignore[no-untyped-def]
    d = data.copy()
    d.loc[[0, 5], "y"] = np.nan
    r = estimate_cace(d, d["d"], outcome="y", arm="z")
    assert r.n_excluded == 2 and r.n_obs == len(d) - 2
    assert r.exclusions[0].reason == "missing outcome"


@pytest.fixture(scope="module")
def pilot_fidelity(pilot):  # type: ignore[no-untyped-def]
    t = example_tables(levels=(1.0, 1.0, 0.8, 0.6, 0.4, 1.0))
    return assess_fidelity(
        pilot, t["delivery"], t["keyworkers"], t["families"], t["allocation"], missing_as_zero=True
    )


def frame_for(report, seed: int = 3) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    rows = []
    comply = report.overall.set_index("la_id")["overall_index"] >= 0.8
    for la, arm in report.overall.set_index("la_id")["arm"].items():
        for i in range(10):
            rows.append(
                {
                    "la_id": la,
                    "arm": arm,
                    "keyworker_id": f"{la}-K{i % 5 + 1}",
                    "y": 2.0 * comply[la] + rng.normal() + 0.3 * rng.normal(),
                }
            )
    return pd.DataFrame(rows)


def test_compliance_from_protocol_definition(pilot, pilot_fidelity) -> None:  # type: ignore[no-untyped-def]
    c = compliance_indicator(pilot_fidelity, measure="la_fidelity_index", threshold=0.8)
    assert c.to_dict() == {
        "LA01": 1.0,
        "LA02": 1.0,
        "LA03": 1.0,
        "LA04": 0.0,
        "LA05": 0.0,
        "LA06": 1.0,
        **{f"LA{j:02d}": 0.0 for j in range(7, 13)},
    }
    frame = frame_for(pilot_fidelity)
    r = estimate_cace(
        frame, fidelity=pilot_fidelity, protocol=pilot, outcome="y", outcome_id="family_functioning"
    )
    assert r.threshold == 0.8 and r.measure == "la_fidelity_index"
    assert r.complier_share == {"intervention": pytest.approx(4 / 6), "control": 0.0}
    itt = frame[frame.arm == "intervention"].y.mean() - frame[frame.arm == "control"].y.mean()
    assert r.cace.estimate == pytest.approx(itt / (4 / 6), rel=1e-12)
    back = CaceResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert repr(back) == repr(r)
    assert list(r.to_frame()["term"]) == ["cace", "itt", "first_stage"]
    kd = estimate_cace(
        frame,
        fidelity=pilot_fidelity,
        protocol=pilot,
        outcome="y",
        outcome_id="family_functioning",
        measure="keyworker_dose",
        threshold=0.9,
    )
    assert kd.measure == "keyworker_dose"


def test_missing_intervention_compliance_is_an_error(pilot) -> None:  # type: ignore[no-untyped-def]
    t = example_tables(levels=(1.0, 0.5), n_control=2)
    d = t["delivery"]
    d = d[~((d.la_id == "LA02") & (d.record_type == "clinician_month"))]
    rep = assess_fidelity(pilot, d, t["keyworkers"], t["families"], t["allocation"])
    with pytest.raises(FidelityError) as e:
        compliance_indicator(rep)
    assert e.value.codes == ("cace.compliance.missing",)


def test_threshold_sweep(pilot, pilot_fidelity) -> None:  # type: ignore[no-untyped-def]
    frame = frame_for(pilot_fidelity)
    s = cace_sweep(
        frame,
        fidelity=pilot_fidelity,
        protocol=pilot,
        outcome="y",
        outcome_id="family_functioning",
        thresholds=[0.5, 0.8, 0.95, 1.01],
    )
    f = s.to_frame()
    assert list(f["threshold"]) == [0.5, 0.8, 0.95, 1.01]
    assert f["complier_share_intervention"].iloc[0] == pytest.approx(6 / 6)
    assert math.isnan(f["estimate"].iloc[3]) and "first stage" in f["note"].iloc[3]
    assert CaceSweep.from_dict(json.loads(json.dumps(s.to_dict()))).to_frame().equals(f)
    assert "not estimable" in s.summary()


def test_collinear_covariates_named(data) -> None:  # type: ignore[no-untyped-def]
    d = data.assign(x2=2 * data["x"] + 1)
    with pytest.raises(FitError) as e:
        estimate_cace(d, d["d"], outcome="y", arm="z", covariates=["x", "x2"])
    assert e.value.codes == ("cace.collinear",)


def _independent_cr2(X: np.ndarray, e: np.ndarray, cluster: np.ndarray, c: np.ndarray):  # type: ignore[no-untyped-def]
    """CR2 covariance and Satterthwaite df written from the formulas, independently of
    ``trialkit.models.robust`` (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018).

    With :math:`M = (X'X)^{-1}`, :math:`A_j = (I - H_{jj})^{-1/2}` and
    :math:`V = M[\\sum_j X_j' A_j e_j e_j' A_j X_j]M`; the df is
    :math:`(\\sum_j p_j'p_j)^2 / \\sum_i\\sum_j (p_i'p_j)^2` with
    :math:`p_j = (I - H)_{\\cdot j} A_j X_j M c`.
    """

    def inv_sqrt_psd(m: np.ndarray) -> np.ndarray:
        vals, vecs = np.linalg.eigh((m + m.T) / 2.0)
        keep = vals > 1e-10 * max(1.0, float(np.max(np.abs(vals))))
        inv = np.zeros_like(vals)
        inv[keep] = 1.0 / np.sqrt(vals[keep])
        return (vecs * inv) @ vecs.T

    codes, _ = pd.factorize(pd.Series(cluster), sort=True)
    M = np.linalg.inv(X.T @ X)
    groups = [np.flatnonzero(codes == k) for k in range(int(codes.max()) + 1)]
    adjust = [inv_sqrt_psd(np.eye(len(g)) - X[g] @ M @ X[g].T) for g in groups]
    meat = np.zeros((X.shape[1], X.shape[1]))
    P = np.zeros((X.shape[0], len(groups)))
    for k, (g, A) in enumerate(zip(groups, adjust, strict=True)):
        u = X[g].T @ (A @ e[g])
        meat += np.outer(u, u)
        w = A @ (X[g] @ (M @ c))
        col = -X @ (M @ (X[g].T @ w))
        col[g] += w
        P[:, k] = col
    V = M @ meat @ M
    G = P.T @ P
    return (V + V.T) / 2.0, float(np.trace(G) ** 2 / np.sum(G * G))


def test_independent_cr2_equals_shared(data) -> None:  # type: ignore[no-untyped-def]
    from trialkit.models.robust import vcov_cr

    one = np.ones(len(data))
    X = np.column_stack([one, data.d2, data.x])
    Z = np.column_stack([one, data.z, data.x])
    Xh = Z @ np.linalg.lstsq(Z, X, rcond=None)[0]
    e = data.y.to_numpy() - X @ np.linalg.lstsq(Xh, data.y.to_numpy(), rcond=None)[0]
    c = np.array([0.0, 1.0, 0.0])
    vcov, df = _independent_cr2(Xh, e, data.la_id.to_numpy(), c)
    shared = vcov_cr(Xh, e, data.la_id.to_numpy(), type="CR2")
    np.testing.assert_allclose(vcov, shared.vcov, rtol=1e-10, atol=1e-12)
    assert df == pytest.approx(shared.satterthwaite_df(c), rel=1e-10)
