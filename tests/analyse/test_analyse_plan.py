"""The analysis plan: every outcome, sensitivity analyses, multiplicity, storage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trialkit.analyse import TABLES, TrialAnalysis, adjust_pvalues, load_analysis, write_analysis
from trialkit.errors import ReportError
from trialkit.pipeline import DemoResult


def test_holm_matches_hand_calculation() -> None:
    p = np.array([0.01, 0.04, 0.03, np.nan])
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, 2*0.03, max(0.06, 1*0.04)
    np.testing.assert_allclose(
        adjust_pvalues(p, "holm")[:3], [0.03, 0.06, 0.06], rtol=0, atol=1e-15
    )
    assert np.isnan(adjust_pvalues(p, "holm")[3])


def test_bonferroni_hochberg_none() -> None:
    p = np.array([0.01, 0.04, 0.03])
    np.testing.assert_allclose(adjust_pvalues(p, "bonferroni"), [0.03, 0.12, 0.09])
    np.testing.assert_allclose(adjust_pvalues(p, "hochberg"), [0.03, 0.04, 0.04])
    np.testing.assert_allclose(adjust_pvalues(p, "none"), p)
    with pytest.raises(ValueError):
        adjust_pvalues(p, "sidak")


def test_ties_by_hand() -> None:
    p = np.array([0.02, 0.5, 0.02])
    # Holm: 3*0.02, max(0.06, 2*0.02), max(0.06, 0.5); Hochberg: 0.5, min(0.5, 2*0.02), ...
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.06, 0.5, 0.06], rtol=0, atol=1e-15)
    np.testing.assert_allclose(adjust_pvalues(p, "hochberg"), [0.04, 0.5, 0.04], rtol=0, atol=1e-15)


def test_nan_p_values_are_left_out_of_the_family() -> None:
    # adjust_pvalues delegates to statsmodels' multipletests, so comparing the two would test
    # statsmodels against itself; what is ours is that NaN stays NaN and is not counted in m.
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(size=9), [0.02, 0.02, 0.5, 0.5]])
    withnan = np.insert(p, 4, np.nan)
    for method in ("holm", "hochberg", "bonferroni", "none"):
        got = adjust_pvalues(withnan, method)
        assert np.isnan(got[4])
        np.testing.assert_array_equal(np.delete(got, 4), adjust_pvalues(p, method))


def test_every_outcome_and_sensitivity_is_analysed(demo: DemoResult) -> None:
    a = load_analysis(demo.analysis)
    res = a.table("results")
    proto = a.protocol
    ids = [o["id"] for o in proto["outcomes"]]
    assert sorted(res["outcome_id"].unique()) == sorted(ids)
    prim = res[res["analysis"] == "primary"].set_index("outcome_id")
    assert len(prim) == len(ids)
    for o in proto["outcomes"]:
        r = prim.loc[o["id"]]
        if o["type"] == "continuous":
            assert r["method"] == "lmm"
            assert r["df_method"] == "kenward-roger"
            assert r["scale"] == "mean difference"
            assert 1 < r["df"] < 12
            assert np.isfinite(r["g"]) and r["g_low"] < r["g"] < r["g_high"]
        else:
            assert r["scale"] in ("log odds ratio", "risk difference")
        assert r["conf_low"] <= r["estimate"] <= r["conf_high"]
        assert 0 <= r["p_value"] <= 1
        assert 0 <= r["icc_la"] < 1
    fam = prim.loc["family_functioning"]
    assert fam["n_la"] == 12 and fam["n_keyworker"] > 12
    sens = set(res.loc[res["outcome_id"] == "family_functioning", "analysis"])
    assert sens == {
        "primary",
        "cluster-level",
        "randomisation-test",
        "cr2",
        "satterthwaite",
        "multilevel-mi",  # the protocol's [analysis.missing_data]
    }
    rt = res[(res["analysis"] == "randomisation-test")]
    assert (rt["p_value"] > 0).all() and rt["distribution"].str.contains("allocations").all()


def test_holm_applied_to_secondary_only(demo: DemoResult) -> None:
    res = load_analysis(demo.analysis).table("results")
    prim = res[res["analysis"] == "primary"]
    sec = prim[prim["role"] == "secondary"]
    np.testing.assert_allclose(sec["p_adjusted"], adjust_pvalues(sec["p_value"].to_numpy()))
    assert prim.loc[prim["role"] == "primary", "p_adjusted"].isna().all()
    assert (sec["p_adjusted"] >= sec["p_value"]).all()


def test_tables_fidelity_cace_mdes(demo: DemoResult) -> None:
    a = load_analysis(demo.analysis)
    for name in TABLES:
        assert name in a.tables, name
        assert len(a.tables[name]) > 0, name
    ov = a.table("fidelity_overall")
    inter = ov[ov["arm"] == "intervention"]["overall_index"]
    assert inter.between(0, 1).all()
    cace = a.table("cace")
    assert set(cace["term"]) >= {"cace", "itt", "first_stage"}
    m = a.table("mdes")
    assert (m["mdes"] > 0.2).all() and (m["mdes"] < 3).all()
    # the MDES gives the stated power under the noncentral t (scipy, not trialkit.power)
    from scipy import stats

    c = stats.t.ppf(1 - m["alpha"] / 2, m["df"])
    lam = m["mdes"] / ((m["mdes_conf_high"] - m["mdes"]) / c)
    achieved = stats.nct.sf(c, m["df"], lam) + stats.nct.cdf(-c, m["df"], lam)
    np.testing.assert_allclose(achieved, m["power"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(m["mdes"] - m["mdes_conf_low"], m["mdes_conf_high"] - m["mdes"])
    tid = a.table("tidier")
    actual = tid[(tid["arm"] == "intervention") & (tid["item"] == "how_well_actual")]["text"]
    assert actual.iloc[0].strip() != ""
    assert a.methods["fidelity"] == "assessed"


def test_provenance_and_json(demo: DemoResult) -> None:
    doc = json.loads((demo.analysis / "analysis.json").read_text())
    prov = doc["provenance"]
    assert prov["trialkit_version"]
    assert set(prov["inputs"]) == {"protocol", "data", "allocation"}
    assert all(len(v["sha256"]) == 64 for v in prov["inputs"].values())
    assert prov["seeds"] == {"randomisation": demo.seed, "simulation": demo.seed + 1}
    assert "results.parquet" in doc["outputs"]


def test_round_trip_and_refuses_overwrite(demo: DemoResult, tmp_path) -> None:
    a = load_analysis(demo.analysis)
    b = TrialAnalysis.from_dict(json.loads(json.dumps(a.to_dict(), default=str)))
    pd.testing.assert_series_equal(
        a.table("results")["estimate"], b.table("results")["estimate"], check_names=False
    )
    assert "family_functioning" in a.summary()
    assert repr(a) == repr(load_analysis(demo.analysis))
    with pytest.raises(ReportError) as err:
        write_analysis(a, demo.analysis)
    assert err.value.problems[0].code == "analyse.output_exists"
    with pytest.raises(ReportError) as err:
        load_analysis(tmp_path)
    assert err.value.problems[0].code == "report.analysis_missing"


def test_prespecified_subgroup_interaction(demo: DemoResult) -> None:
    from trialkit.analyse import analyse_trial
    from trialkit.data import validate
    from trialkit.pipeline import bundled_example
    from trialkit.protocol import load_protocol
    from trialkit.protocol.model import Subgroup

    p = load_protocol(bundled_example()[0])
    plan = p.analysis.model_copy(
        update={
            "subgroups": [
                Subgroup(id="experience", variable="years_experience"),
                Subgroup(id="region", variable="region"),
            ],
            "sensitivity": [],
        }
    )
    p = p.model_copy(update={"analysis": plan})
    td = validate(p, demo.data, demo.allocation)
    a = analyse_trial(p, td, _record(demo))
    sg = a.table("subgroups")
    assert set(sg["outcome_id"]) == {"family_functioning", "keyworker_wellbeing"}
    assert (sg["subgroup_id"] == "experience").all()
    assert (sg["conf_low"] < sg["estimate"]).all() and (sg["estimate"] < sg["conf_high"]).all()
    assert any("region" in n and "two levels" in n for n in a.methods["notes"])
    from trialkit.report import build_report

    ids = [t.id for t in build_report(a, generated="x").tables()]
    assert "subgroups" in ids


def test_without_delivery_data_fidelity_is_not_assessed(demo: DemoResult, tmp_path) -> None:
    import shutil

    from trialkit.analyse import analyse_trial
    from trialkit.data import validate
    from trialkit.pipeline import bundled_example
    from trialkit.protocol import load_protocol
    from trialkit.report import build_report, render_html

    data = tmp_path / "data"
    shutil.copytree(demo.data, data, ignore=shutil.ignore_patterns("manifest.json"))
    (data / "delivery.csv").unlink()
    p = load_protocol(bundled_example()[0])
    p = p.model_copy(update={"analysis": p.analysis.model_copy(update={"sensitivity": []})})
    a = analyse_trial(p, validate(p, data, demo.allocation), _record(demo))
    assert a.methods["fidelity"].startswith("not assessed")
    assert "fidelity_components" not in a.tables
    # issue #14 item 5: the declared CACE keeps its rows, saying why it did not run
    cace = a.table("cace")
    assert set(cace["status"]) == {"not run"}
    assert cace["reason"].str.contains("no delivery data").all()
    assert any("CACE: not run" in w for w in a.warnings)
    html = render_html(build_report(a, generated="x"))
    assert "Fidelity not assessed" in html
    assert "not run: fidelity not assessed" in html
    assert "and the complier average causal effect" not in html


def test_glmm_failure_falls_back_to_cluster_level(demo: DemoResult, monkeypatch) -> None:
    import sys

    from trialkit.analyse import analyse_trial
    from trialkit.data import validate
    from trialkit.errors import FitError
    from trialkit.pipeline import bundled_example
    from trialkit.protocol import load_protocol

    fitmod = sys.modules["trialkit.models.fit"]
    real = fitmod.fit

    def failing(*args, **kw):
        if kw.get("family") == "binomial" and kw.get("method") == "lmm":
            raise FitError.from_problem(path="x", code="fit.failed", message="boom", hint="")
        return real(*args, **kw)

    monkeypatch.setattr(fitmod, "fit", failing)
    p = load_protocol(bundled_example()[0])
    p = p.model_copy(update={"analysis": p.analysis.model_copy(update={"sensitivity": []})})
    a = analyse_trial(p, validate(p, demo.data, demo.allocation), _record(demo))
    res = a.table("results")
    r = res[(res["outcome_id"] == "keyworker_retention") & (res["analysis"] == "primary")].iloc[0]
    assert r["method"] == "cluster-level"
    assert r["scale"] == "risk difference"
    assert "GLMM failed" in r["note"]
    assert any("GLMM failed" in n for n in a.methods["notes"])
    # issue 16 item 8: a visible flag on the row and in the summary
    assert r["fallback"].startswith("cluster-level analysis instead of the protocol's GLMM")
    assert "FALLBACK: cluster-level analysis" in a.summary()
    other = res[(res["analysis"] == "primary") & (res["outcome_id"] != "keyworker_retention")]
    assert (other["fallback"] == "").all()


def test_cace_for_a_binary_primary_outcome(demo: DemoResult) -> None:
    """A binary primary outcome gets a CACE on the risk-difference scale (2SLS, CR2)."""
    from trialkit.analyse import analyse_trial
    from trialkit.data import validate
    from trialkit.pipeline import bundled_example
    from trialkit.protocol import load_protocol

    p = load_protocol(bundled_example()[0])
    outcomes = [
        o.model_copy(update={"role": "primary"}) if o.id == "keyworker_retention" else o
        for o in p.outcomes
    ]
    plan = p.analysis.model_copy(update={"sensitivity": []})
    p = p.model_copy(update={"outcomes": outcomes, "analysis": plan})
    a = analyse_trial(p, validate(p, demo.data, demo.allocation), _record(demo))
    cace = a.table("cace")
    rows = cace[cace["outcome_id"] == "keyworker_retention"].set_index("term")
    assert {"cace", "itt", "first_stage"} <= set(rows.index)
    # one-sided non-compliance: CACE = ITT / first stage (Wald / 2SLS without covariates differ
    # only through covariate adjustment, so check the sign and the scale)
    assert abs(rows.loc["cace", "estimate"]) >= abs(rows.loc["itt", "estimate"])
    assert -1 <= rows.loc["itt", "estimate"] <= 1
    assert rows.loc["cace", "df_method"] == "satterthwaite"
    assert rows.loc["cace", "scale"] == "risk difference"


def _record(demo):
    """The demo's allocation read (and verified) through the store, with its kept space."""
    from trialkit import store

    return store.read_allocation(demo.allocation, keep_default_na=False, with_space=True)
