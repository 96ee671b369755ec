"""Result classes per model family: typed fields, the same JSON, round trips, no module cycle."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trialkit.models as models_pkg
from trialkit.errors import ModelSpecError
from trialkit.models.fit import fit
from trialkit.models.inference import distribution_label, t_inference, t_term
from trialkit.models.lmm import contrast, with_df_method
from trialkit.models.results import (
    ClusterLevelResult,
    FitResult,
    GeeResult,
    GlmmResult,
    LmmResult,
    RobustOlsResult,
)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(13)
    cl = np.repeat(np.arange(14), 12)
    arm = cl % 2
    u = rng.normal(0, 0.5, 14)[cl]
    x = rng.normal(size=cl.size)
    y = 0.4 * arm + 0.5 * x + u + rng.normal(size=cl.size)
    yb = (rng.random(cl.size) < 1 / (1 + np.exp(-(-0.3 + 0.5 * arm + u)))).astype(int)
    return pd.DataFrame({"y": y, "yb": yb, "arm": arm, "x": x, "cl": cl})


CASES = [
    ({"method": "lmm"}, "y", LmmResult),
    ({"method": "lmm", "family": "binomial"}, "yb", GlmmResult),
    ({"method": "gee", "family": "binomial"}, "yb", GeeResult),
    ({"method": "gee"}, "y", GeeResult),
    ({"method": "ols-cr2"}, "y", RobustOlsResult),
    ({"method": "cluster-level"}, "y", ClusterLevelResult),
]


@pytest.mark.parametrize(("kw", "outcome", "cls"), CASES)
def test_each_family_has_its_class_and_round_trips(data, kw, outcome, cls) -> None:
    res = fit(data, outcome=outcome, treatment="arm", covariates=["x"], clusters=["cl"], **kw)
    assert type(res) is cls and isinstance(res, FitResult)
    d = res.to_dict()
    assert json.loads(json.dumps(d)) == d  # JSON-safe
    back = FitResult.from_dict(d)
    assert type(back) is cls
    assert back.to_dict() == d
    assert repr(back) == repr(res)


def test_lmm_extra_keys_and_typed_fields(data) -> None:
    res = fit(data, outcome="y", treatment="arm", clusters=["cl"], vcov="CR2")
    assert isinstance(res, LmmResult)
    extra = res.to_dict()["extra"]
    assert set(extra) == {
        "theta",
        "iterations",
        "treatment_labels",
        "icc_intervals",
        "alpha",
        "inference",
        "column_names",
        "effect_sizes",
        "robust",
        "inference_source",
    }
    assert extra["theta"] == list(res.theta)
    assert res.robust is not None and extra["robust"]["vcov_type"] == "CR2"
    assert res.column_names == tuple(t.term for t in res.fixed_effects)


def test_binary_effects_are_written_flat_under_extra(data) -> None:
    res = fit(data, outcome="yb", treatment="arm", clusters=["cl"], family="binomial")
    assert isinstance(res, GlmmResult)
    extra = res.to_dict()["extra"]
    assert extra["odds_ratio"] == res.effects.odds_ratio == math.exp(res.treatment.estimate)
    assert extra["risk_difference_conf_low"] < extra["risk_difference"]
    assert list(extra)[-1] == "max_abs_gradient"


def test_with_df_method_only_on_lmm(data) -> None:
    lmm = fit(data, outcome="y", treatment="arm", clusters=["cl"], effect_sizes=False)
    sat = lmm.with_df_method("satterthwaite")
    assert isinstance(sat, LmmResult) and sat.df_method == "satterthwaite"
    assert sat.treatment.estimate == lmm.treatment.estimate
    assert with_df_method(lmm, "satterthwaite") == sat
    ols = fit(data, outcome="y", treatment="arm", clusters=["cl"], method="ols-cr2")
    assert not hasattr(ols, "with_df_method")
    for call in (lambda: with_df_method(ols, "residual"), lambda: contrast(ols, [0, 1])):
        with pytest.raises(ModelSpecError) as e:
            call()
        assert e.value.codes == ("fit.no_inference",)
    with pytest.raises(ModelSpecError) as e:
        lmm.with_df_method("kenward_roger")
    assert e.value.codes == ("fit.df_method",)
    assert "did you mean 'kenward-roger'?" in e.value.problems[0].hint


def test_from_dict_refuses_an_unknown_method(data) -> None:
    d = fit(data, outcome="y", treatment="arm", clusters=["cl"], method="ols-cr2").to_dict()
    with pytest.raises(ModelSpecError) as e:
        FitResult.from_dict({**d, "method": "anova"})
    assert e.value.codes == ("fit.result_method",)
    with pytest.raises(ModelSpecError):
        LmmResult.from_dict(d)


def test_t_term_rule() -> None:
    t = t_term("arm", 1.0, 0.5, 9.99712, 0.05, "residual")
    assert t.distribution == "t(9.99712)" and t.statistic == 2.0
    assert t.p_value == pytest.approx(0.07349, abs=1e-4)
    z = t_term("arm", 1.0, 0.5, math.inf, 0.05, "z")
    assert z.distribution == "z" == distribution_label(math.inf)
    assert z.conf_high == pytest.approx(1.0 + 1.959963984540054 * 0.5, rel=1e-14)
    bad = t_term("arm", 1.0, 0.0, 10.0, 0.05, "residual")
    assert math.isnan(bad.statistic) and math.isnan(bad.p_value) and math.isnan(bad.conf_low)
    stat, p, lo, hi = t_inference([1.0, -1.0], 0.5, 10.0, two_sided=False)
    assert p[0] + p[1] == pytest.approx(1.0)


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "trialkit.models":
                out.update(f"trialkit.models.{a.name}" for a in node.names)
                out.add("trialkit.models")
            else:
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_no_module_cycle_inside_models() -> None:
    root = Path(models_pkg.__file__).parent
    graph = {
        f"trialkit.models.{p.stem}": {m for m in _imports(p) if m.startswith("trialkit.models.")}
        for p in root.glob("*.py")
        if p.stem != "__init__"
    }
    for p in root.glob("*.py"):
        if p.stem != "__init__":
            assert "trialkit.models" not in _imports(p), p.name
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join([*path, node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        visit(node, [])


def test_effect_sizes_are_computed_when_first_read(data) -> None:
    """Deferred effect sizes: same numbers as computing them at once, plain dict in JSON/pickle."""
    import pickle

    from trialkit.models.results import DeferredMapping

    res = fit(data, outcome="y", treatment="arm", clusters=["cl"])
    es = res.effect_sizes
    assert isinstance(es, DeferredMapping) and not es.computed
    twin = fit(data, outcome="y", treatment="arm", clusters=["cl"])
    assert res.treatment == twin.treatment  # building the result did not need them
    assert set(es) == {"conditional", "unconditional", "unconditional_variance_components"}
    assert es.computed
    assert dict(es) == dict(twin.effect_sizes or {})
    assert json.loads(json.dumps(res.to_dict()))["extra"]["effect_sizes"] == json.loads(
        json.dumps(dict(es))
    )
    back = pickle.loads(pickle.dumps(twin))
    assert isinstance(back.effect_sizes, dict) and back.effect_sizes == dict(es)
    assert FitResult.from_dict(res.to_dict()).effect_sizes == dict(es)
    # the unconditional model is the REML null model y ~ 1 + (1 | cl), fitted independently
    from trialkit.models.variance_components import fit_null_model

    null = fit_null_model(data, outcome="y", clusters=["cl"])
    for key, value in null.variance_components.items():
        assert es["unconditional_variance_components"][key] == pytest.approx(value, rel=1e-7)
