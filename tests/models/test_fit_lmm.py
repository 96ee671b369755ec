"""``trialkit.models.fit.fit`` for linear mixed models: result object and dispatch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trialkit.errors import FitError, ModelSpecError, SingularFitWarning
from trialkit.models import _engine
from trialkit.models.design import build_model_frame
from trialkit.models.fit import fit
from trialkit.models.lmm import with_df_method
from trialkit.models.result import FitResult


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    rows = []
    for la in range(12):
        u = rng.normal(0, 0.5)
        for kw in range(3):
            v = rng.normal(0, 0.4)
            for _ in range(rng.integers(4, 9)):
                b = rng.normal()
                rows.append(
                    (
                        f"L{la}",
                        str(kw),
                        "int" if la % 2 else "ctl",
                        b,
                        u + v + 0.5 * b + rng.normal(),
                    )
                )
    return pd.DataFrame(rows, columns=["la", "kw", "arm", "baseline", "score"])


@pytest.fixture(scope="module")
def result(data) -> FitResult:
    return fit(
        data,
        outcome="score",
        treatment="arm",
        treatment_level="int",
        covariates=["baseline"],
        clusters=["la", "kw"],
    )


def test_result_fields(result, data):
    assert result.method == "lmm" and result.family == "gaussian"
    assert result.treatment_term == "arm[int]"
    assert result.n_obs == len(data) and result.n_clusters == {"la": 12, "kw": 36}
    assert set(result.variance_components) == {"la", "kw", "residual"}
    assert set(result.icc) == {"la", "kw"}
    assert result.df_method == "kenward-roger"
    assert result.treatment.distribution.startswith("t(")
    assert result.formula == "score ~ arm + baseline + (1 | la) + (1 | la:kw)"
    assert list(result.to_frame()["term"]) == ["(Intercept)", "arm[int]", "baseline"]


def test_round_trip_and_json(result):
    d = result.to_dict()
    json.dumps(d)
    back = FitResult.from_dict(d)
    assert back.treatment == result.treatment
    assert repr(back) == repr(result)
    assert "treatment (arm[int])" in result.summary()


def test_with_df_method_returns_new_result(result):
    sat = with_df_method(result, "satterthwaite")
    assert sat.df_method == "satterthwaite" and result.df_method == "kenward-roger"
    assert sat.treatment.estimate == result.treatment.estimate
    assert sat.treatment.df != result.treatment.df


def test_ml(data):
    ml = fit(
        data,
        outcome="score",
        treatment="arm",
        treatment_level="int",
        covariates=["baseline"],
        clusters=["la", "kw"],
        reml=False,
        effect_sizes=False,
    )
    assert ml.reml is False and np.isfinite(ml.loglik)


def test_singular_flag_and_warning():
    d = pd.read_csv("tests/reference/lmm/data/singular.csv")
    with pytest.warns(SingularFitWarning):
        res = fit(d, outcome="y", treatment="treat", covariates=["baseline"], clusters=["la"])
    assert res.singular and res.variance_components["la"] == 0.0
    assert any("singular" in w for w in res.warnings)


def test_exclusions_on_result(data):
    d = data.copy()
    d.loc[[0, 5], "baseline"] = np.nan
    res = fit(
        d,
        outcome="score",
        treatment="arm",
        treatment_level="int",
        covariates=["baseline"],
        clusters=["la", "kw"],
        effect_sizes=False,
    )
    assert res.n_excluded == 2 and res.exclusions[0].reason == "missing covariate baseline"


def test_no_clusters_error(data):
    with pytest.raises(FitError) as e:
        fit(data, outcome="score", treatment="arm", treatment_level="int")
    assert e.value.codes == ("fit.no_clusters",)


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"method": "bogus"}, "fit.method"),
        ({"family": "poisson"}, "fit.family"),
        ({"alpha": 1.5}, "fit.alpha"),
        ({"colour": 1}, "fit.option"),
    ],
)
def test_argument_errors(data, kw, code):
    with pytest.raises(ModelSpecError) as e:
        fit(data, outcome="score", treatment="arm", treatment_level="int", clusters=["la"], **kw)
    assert e.value.codes == (code,)


def test_batch_matches_single_fit_result(data):
    fr = build_model_frame(
        data,
        outcome="score",
        treatment="arm",
        treatment_level="int",
        covariates=["baseline"],
        clusters=["la", "kw"],
    )
    lay = _engine.make_layout(fr.cluster_codes)
    rng = np.random.default_rng(0)
    Y = np.vstack([fr.y, fr.y + rng.normal(size=fr.n_obs), 3 * fr.y])
    for method in ("kenward-roger", "satterthwaite", "between-within", "residual"):
        out = _engine.fit_lmm_batch(lay, fr.X, Y, df_method=method)
        single = (
            fit(
                data,
                outcome="score",
                treatment="arm",
                treatment_level="int",
                covariates=["baseline"],
                clusters=["la", "kw"],
                df_method=method,
                effect_sizes=False,
            )
            if method != "residual"
            else None
        )
        if single is not None:
            assert abs(out["estimate"][0] - single.treatment.estimate) < 1e-10
            assert abs(out["std_error"][0] - single.treatment.std_error) < 1e-10
            assert abs(out["df"][0] - single.treatment.df) < 1e-8
            assert abs(out["p_value"][0] - single.treatment.p_value) < 1e-10
        np.testing.assert_allclose(out["estimate"][2], 3 * out["estimate"][0], rtol=1e-9)


def test_batch_with_replicate_specific_X(data):
    fr = build_model_frame(
        data,
        outcome="score",
        treatment="arm",
        treatment_level="int",
        covariates=["baseline"],
        clusters=["la", "kw"],
    )
    lay = _engine.make_layout(fr.cluster_codes)
    rng = np.random.default_rng(1)
    X = np.stack([fr.X, fr.X.copy()])
    X[1, :, 2] = rng.normal(size=fr.n_obs)
    Y = np.vstack([fr.y, fr.y])
    both = _engine.fit_lmm_batch(lay, X, Y)
    for r in range(2):
        one = _engine.fit_lmm_batch(lay, X[r], Y[r : r + 1])
        assert abs(both["std_error"][r] - one["std_error"][0]) < 1e-10
        assert abs(both["df"][r] - one["df"][0]) < 1e-8


@pytest.mark.parametrize("method", ["ols-cr2", "cluster-level", "gee"])
def test_dispatch_to_other_methods(data, method):
    res = fit(
        data,
        outcome="score",
        treatment="arm",
        treatment_level="int",
        covariates=["baseline"],
        clusters=["la"],
        method=method,
    )
    assert res.method == method and res.treatment_term == "arm[int]"
    assert res.n_obs == len(data)


def test_lmm_with_robust_vcov(data):
    res = fit(
        data,
        outcome="score",
        treatment="arm",
        treatment_level="int",
        covariates=["baseline"],
        clusters=["la", "kw"],
        vcov="CR2",
        effect_sizes=False,
    )
    rob = res.extra["robust"]
    assert rob["vcov_type"] == "CR2" and rob["terms"][1]["df_method"] == "cr2-satterthwaite"
    assert rob["terms"][1]["estimate"] == res.treatment.estimate


def test_confounded_levels_are_flagged():
    import warnings as _w

    import numpy as _np
    import pandas as _pd

    from trialkit.errors import SingularFitWarning as _SFW
    from trialkit.models import fit as _fit

    rng = _np.random.default_rng(3)
    rows = [(la, f"k{la}", la % 2, rng.normal()) for la in range(8) for _ in range(5)]
    d = _pd.DataFrame(rows, columns=["la", "kw", "t", "y"])
    with _w.catch_warnings(record=True) as caught:
        _w.simplefilter("always")
        r = _fit(d, outcome="y", treatment="t", clusters=["la", "kw"])
    assert any("not separately identifiable" in m for m in r.warnings)
    assert any(issubclass(c.category, _SFW) for c in caught)
    assert _np.isfinite(r.treatment.std_error) and _np.isfinite(r.treatment.df)
