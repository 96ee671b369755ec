"""Degenerate trials give "not estimable" rows, never absurd numbers (issue #14 items 4, 5).

A 2-LA trial (one LA per arm), a 4-LA trial whose two LA covariates use up the between-LA
degrees of freedom (J − 2 − g = 0), and a constant outcome.  Every declared analysis keeps its
row with the reason; the report says "not estimable" and never words a direction.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialkit.analyse import analyse_trial
from trialkit.pipeline import DemoResult, bundled_example
from trialkit.protocol import load_protocol

_NUMBERS = ["estimate", "std_error", "conf_low", "conf_high", "p_value", "g", "g_low", "g_high"]


def _small_trial(tmp: Path, n_la: int, covariates: list[str]):
    from trialkit.data import validate
    from trialkit.randomise import read_clusters
    from trialkit.simulate.trial import simulate_trial

    p_path, c_path = bundled_example()
    p = load_protocol(p_path)
    p = p.model_copy(update={"analysis": p.analysis.model_copy(update={"covariates": covariates})})
    cl = read_clusters(c_path, "la_id").iloc[:n_la].astype(object)
    cl = cl.where(cl.notna(), None)
    alloc = pd.DataFrame(
        {"cluster": cl["la_id"].astype(str), "arm": (["intervention", "control"] * n_la)[:n_la]}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = simulate_trial(p, cl, alloc, seed=3)
    sim.save(tmp / "data", fmt="csv")
    return p, validate(p, tmp / "data", tmp / "data" / "allocation.csv")


@pytest.fixture(scope="module")
def two_la(tmp_path_factory: pytest.TempPathFactory):
    p, td = _small_trial(tmp_path_factory.mktemp("two"), 2, [])
    return analyse_trial(p, td, None)


def _check_rows(res: pd.DataFrame, code_words: str) -> None:
    prim = res[res["analysis"] == "primary"]
    assert len(prim) == res["outcome_id"].nunique() > 0
    assert (res["status"] == "not estimable").all()
    assert res["reason"].str.contains(code_words).all()
    assert res[_NUMBERS].isna().all().all()


def test_two_la_trial_is_not_estimable_with_every_declared_row(two_la) -> None:
    res = two_la.table("results")
    _check_rows(res, "one LA per arm")
    declared = set(two_la.methods["plan"]["sensitivity"]) | {"primary"}
    for _, g in res.groupby("outcome_id"):
        assert set(g["analysis"]) == declared
    assert any("not estimable" in w for w in two_la.warnings)
    assert "NOT ESTIMABLE" in two_la.summary()
    assert "mdes" not in two_la.tables or not len(two_la.table("mdes"))


def test_two_la_report_says_not_estimable_and_never_favouring(two_la) -> None:
    from trialkit.report import build_report, render_html

    html = render_html(build_report(two_la, generated="x"))
    assert "not estimable" in html
    assert "favouring" not in html
    # no absurd numbers: every number in the effects table is short
    rep = build_report(two_la, generated="x")
    effects = next(t for t in rep.tables() if t.id == "outcome_effects").frame
    assert (effects["Adjusted difference"] == "not estimable").all()
    assert (effects["95% CI"] == "–").all()


def test_la_covariates_leaving_no_between_la_df(tmp_path: Path) -> None:
    p, td = _small_trial(tmp_path, 4, ["imd_score", "families_referred_2023"])
    res = analyse_trial(p, td, None).table("results")
    _check_rows(res, r"4 LAs leave 0 between-LA degrees of freedom")


def test_constant_outcome_is_not_estimable(demo: DemoResult, monkeypatch) -> None:
    import trialkit.data as data_pkg
    from trialkit.data import validate

    real = data_pkg.analysis_frame

    def constant(trial_data, protocol, outcome_id, **kw):
        af = real(trial_data, protocol, outcome_id, **kw)
        if outcome_id == "keyworker_burnout":
            af.frame["y"] = np.where(af.frame["y"].notna(), 7.0, np.nan)
        return af

    monkeypatch.setattr(data_pkg, "analysis_frame", constant)
    p = load_protocol(bundled_example()[0])
    p = p.model_copy(update={"analysis": p.analysis.model_copy(update={"sensitivity": ["cr2"]})})
    a = analyse_trial(p, validate(p, demo.data, demo.allocation), None)
    res = a.table("results")
    burn = res[res["outcome_id"] == "keyworker_burnout"]
    _check_rows(burn, "the outcome has no variance")
    assert burn["reason"].str.contains("is 7").all()
    others = res[(res["outcome_id"] != "keyworker_burnout") & (res["analysis"] == "primary")]
    assert (others["status"] == "estimated").all()
    # Holm over the secondary outcomes leaves the not estimable one out
    assert burn["p_adjusted"].isna().all()
    assert np.isfinite(
        others.loc[others["role"] == "secondary", "p_adjusted"].to_numpy(dtype=float)
    ).all()
