"""``[analysis.missing_data]`` run by ``analyse``: an MI row beside complete case, tipping table."""

from __future__ import annotations

import numpy as np

from trialkit.pipeline import DemoResult
from trialkit.store import read_allocation


def test_declared_mi_sensitivity_analysis(demo: DemoResult, tmp_path) -> None:
    from trialkit.analyse import analyse_trial, load_analysis, write_analysis
    from trialkit.data import validate
    from trialkit.pipeline import bundled_example
    from trialkit.protocol import load_protocol
    from trialkit.protocol.model import MissingDataPlan

    p = load_protocol(bundled_example()[0])
    md = MissingDataPlan(
        auxiliary=["mid"],
        imputations=3,
        seed=5,
        delta=[-0.5, 0.5],
        burn_in=100,
        thin=5,
        outcomes=["family_functioning"],
    )
    plan = p.analysis.model_copy(update={"missing_data": md, "sensitivity": []})
    p = p.model_copy(update={"analysis": plan})
    td = validate(p, demo.data, demo.allocation)
    rec = read_allocation(demo.allocation, keep_default_na=False, with_space=True)
    a = analyse_trial(p, td, rec)
    res = a.table("results")
    ff = res[res["outcome_id"] == "family_functioning"].set_index("analysis")
    assert {"primary", "multilevel-mi"} <= set(ff.index)
    cc, mi = ff.loc["primary"], ff.loc["multilevel-mi"]
    assert mi["method"] == "multilevel-mi" and mi["df_method"] == "barnard-rubin"
    assert mi["n_obs"] > cc["n_obs"]  # every consented family, observed or imputed
    assert "multiple imputation (m = 3)" in mi["note"]
    imp = a.table("imputation").set_index("outcome_id").loc["family_functioning"]
    assert imp["auxiliary"] == "aux_mid"
    assert imp["n_rows"] == mi["n_obs"] and imp["n_missing_outcome"] > 0
    assert 0 < imp["fraction_missing_information"] < 1
    tp = a.table("tipping_point")
    assert list(tp["delta"]) == [-0.5, 0.0, 0.5]
    assert np.isclose(tp.loc[tp["delta"] == 0, "estimate"].iloc[0], mi["estimate"])
    # stored and read back with the other tables
    out = tmp_path / "analysis"
    write_analysis(a, out)
    back = load_analysis(out)
    assert len(back.table("tipping_point")) == 3
