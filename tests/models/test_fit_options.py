"""``fit`` options against R (issue 16, item 7): ML + Kenward–Roger, containment and z df,
options a method does not use.

References: tests/reference/fit_options (pbkrtest on an ML ``lmer`` fit, ``nlme::lme``).
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialkit.errors import ModelSpecError, UsageError
from trialkit.models.fit import fit
from trialkit.models.results import FitResult, LmmResult

HERE = Path(__file__).resolve().parents[1] / "reference" / "fit_options"
_spec = importlib.util.spec_from_file_location("fit_options_tolerances", HERE / "tolerances.py")
assert _spec is not None and _spec.loader is not None
TOL = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(TOL)
REF = json.loads((HERE / "reference.json").read_text())
SPEC = dict(
    outcome="y",
    treatment="treat",
    covariates=["caseload", "female", "baseline"],
    clusters=["la", "kw"],
)


def _data() -> pd.DataFrame:
    return pd.read_csv(HERE / "three_level.csv", dtype={"la": str, "kw": str})


@cache
def _fit(**kw: object) -> LmmResult:
    r = fit(_data(), **SPEC, **kw)  # type: ignore[arg-type]
    assert isinstance(r, LmmResult)
    return r


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b))))


# ---------------------------------------------------------------- --ml with Kenward-Roger


def test_ml_kr_se_as_pbkrtest_on_the_ml_fit() -> None:
    r = _fit(reml=False)
    se = np.array([t.std_error for t in r.fixed_effects])
    assert _rel(se, REF["kr_from_ml_fit"]["se"]) < TOL.KR_SE_REL


def test_ml_kr_df_as_pbkrtest_on_the_ml_fit() -> None:
    r = _fit(reml=False)
    df = np.array([t.df for t in r.fixed_effects])
    assert _rel(df, REF["kr_from_ml_fit"]["df"]) < TOL.KR_DF_REL


def test_ml_kr_estimates_are_the_reml_refit() -> None:
    r = _fit(reml=False)
    beta = np.array([t.estimate for t in r.fixed_effects])
    assert _rel(beta, REF["reml"]["beta"]) < TOL.FIXED_REL
    assert r.inference_source == "reml-refit"
    assert any("REML refit" in w for w in r.warnings)


def test_ml_kr_multi_row_f_as_krmodcomp() -> None:
    m = REF["kr_from_ml_fit"]["multi"]
    ct = _fit(reml=False).contrast(np.array(m["L"], dtype=float))
    assert abs(ct.statistic / m["F"] - 1) < TOL.KR_F_REL
    assert abs(ct.ddf / m["ddf"] - 1) < TOL.KR_F_REL
    assert abs(ct.scale / m["scale"] - 1) < TOL.KR_F_REL


def test_ml_kr_reports_the_ml_loglik_and_variances() -> None:
    r = _fit(reml=False)
    assert r.reml is False
    assert abs(r.loglik - REF["ml"]["loglik"]) < TOL.LOGLIK_ABS
    vc = [r.variance_components[k] for k in ("la", "kw", "residual")]
    # lme4 orders VarCorr la:kw, la, Residual
    ref = dict(zip(REF["ml"]["varcomp_groups"], REF["ml"]["varcomp"], strict=True))
    assert np.allclose(vc, [ref["la"], ref["la:kw"], ref["Residual"]], atol=TOL.VARCOMP_ABS)


def test_ml_kr_survives_a_json_round_trip() -> None:
    r = _fit(reml=False)
    back = FitResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert isinstance(back, LmmResult)
    assert back.inference_source == "reml-refit"


def test_ml_between_within_uses_the_ml_fit() -> None:
    r = _fit(reml=False, df_method="between-within")
    assert r.inference_source == "fit"
    beta = np.array([t.estimate for t in r.fixed_effects])
    assert _rel(beta, REF["ml"]["beta"]) < TOL.FIXED_REL


# ---------------------------------------------------------------- containment (nlme) and z


def test_containment_df_equal_nlme() -> None:
    r = _fit(df_method="containment")
    assert [t.term for t in r.fixed_effects][1:] == REF["nlme"]["terms"][1:]
    assert [t.df for t in r.fixed_effects] == [float(v) for v in REF["nlme"]["df"]]
    assert r.df_method == "containment"


def test_containment_differs_from_between_within_below_the_top() -> None:
    """The keyworker-level covariate: nlme gives 28, the two-tier rule n - J - (p - r_b)."""
    bw = _fit(df_method="between-within").fixed_effects[3]
    ct = _fit(df_method="containment").fixed_effects[3]
    assert bw.term == ct.term == "female"
    assert ct.df == 28.0
    assert bw.df > 200


def test_containment_with_df_method_and_contrast() -> None:
    r = _fit().with_df_method("containment")
    assert r.treatment.df == 11.0
    ct = r.contrast(np.array([[0, 1, 0, 0, 0], [0, 0, 0, 1, 0]], dtype=float))
    assert ct.ddf == 11.0  # the smallest df of the columns used


def test_z_df_method() -> None:
    r = _fit(df_method="z")
    assert np.isinf(r.treatment.df)
    assert r.treatment.distribution == "z"
    ct = r.contrast(np.array([[0, 1, 0, 0, 0], [0, 0, 0, 1, 0]], dtype=float))
    assert ct.distribution == "chi2(2)/2"
    assert 0 < ct.p_value < 1


# ---------------------------------------------------------------- options a method ignores


@pytest.mark.parametrize(
    ("method", "kw", "option"),
    [
        ("cluster-level", {"df_method": "satterthwaite"}, "--df-method"),
        ("gee", {"df_method": "kenward-roger"}, "--df-method"),
        ("ols-cr2", {"reml": False}, "--ml"),
        ("lmm", {"kind": "means"}, "--kind"),
        ("gee", {"kind": "ancova"}, "--kind"),
        ("ols-cr2", {"family": "binomial"}, "--family"),
        ("cluster-level", {"corr": "independence"}, "--corr"),
        ("lmm", {"nagq": 5}, "--nagq"),
    ],
)
def test_unused_option_is_a_usage_error(method: str, kw: dict, option: str) -> None:
    with pytest.raises(UsageError) as ei:
        fit(_data(), **{**SPEC, "clusters": ["la"]}, method=method, **kw)
    assert ei.value.codes == ("fit.option_unused",)
    assert option in str(ei.value) and method in str(ei.value)


def test_glmm_refuses_containment() -> None:
    d = _data().assign(yb=lambda x: (x["y"] > x["y"].median()).astype(int))
    with pytest.raises(ModelSpecError) as ei:
        fit(d, **{**SPEC, "outcome": "yb"}, family="binomial", df_method="containment")
    assert ei.value.codes == ("fit.glmm.df_method",)
