"""simulate_trial: determinism, truth, effect direction."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trialkit.errors import DataError
from trialkit.simulate.trial import simulate_trial


def test_same_seed_same_tables(protocol, clusters, allocation):
    a = simulate_trial(
        protocol, clusters, allocation, seed=5, n_keyworkers=4, families_per_keyworker=2
    )
    b = simulate_trial(
        protocol, clusters, allocation, seed=5, n_keyworkers=4, families_per_keyworker=2
    )
    for k in a.tables:
        pd.testing.assert_frame_equal(a.tables[k], b.tables[k])
    c = simulate_trial(
        protocol, clusters, allocation, seed=6, n_keyworkers=4, families_per_keyworker=2
    )
    assert not a.tables["measurements"].equals(c.tables["measurements"])


def test_truth_and_save(synthetic, tmp_path):
    t = synthetic.truth
    assert t["n_la"] == 12 and len(t["fidelity"]) == 12
    assert t["outcomes"]["family_functioning"]["latent_smd"] == -0.3
    assert t["outcomes"]["family_functioning"]["scale_sate_treated"] < 0
    assert t["outcomes"]["parent_wellbeing"]["scale_sate_treated"] > 0
    ctrl = [la for la, a in t["arms"].items() if a == "control"]
    assert all(t["fidelity"][la] == 0 for la in ctrl)
    out = synthetic.save(tmp_path / "s")
    rec = json.loads((out / "truth.json").read_text())
    assert rec["provenance"]["seed"] == 11
    with pytest.raises(DataError):
        synthetic.save(out)


def test_items_in_range(synthetic):
    m = synthetic.tables["measurements"]
    sc = m[m["instrument"] == "SCORE-15"]
    v = sc[[f"item_{i}" for i in range(1, 16)]].to_numpy(dtype=float, na_value=np.nan)
    assert np.nanmin(v) >= 1 and np.nanmax(v) <= 5
    assert (
        sc[[c for c in m.columns if c.startswith("item_") and int(c[5:]) > 15]].isna().all().all()
    )


def test_fidelity_recovered_in_delivery(protocol, clusters, allocation):
    fid = {la: 1.0 for la in clusters["la_id"]}
    st = simulate_trial(
        protocol,
        clusters,
        allocation,
        seed=3,
        fidelity=fid,
        contamination=0.0,
        n_keyworkers=4,
        families_per_keyworker=1,
    )
    d = st.tables["delivery"]
    cm = d[d["record_type"] == "clinician_month"]
    assert set(cm["la_id"]) == set(allocation.loc[allocation.arm == "intervention", "cluster"])
    assert (cm["fte"] == 1.0).all()
    tr = d[(d["record_type"] == "training") & (d["course"] == "cpd")]
    assert tr.groupby("la_id")["day"].max().eq(5).all()


def test_unallocated_la_is_an_error(protocol, clusters, allocation):
    with pytest.raises(DataError):
        simulate_trial(protocol, clusters, allocation.iloc[:5], seed=1)


def test_items_are_written_as_the_protocol_says_they_are_entered(
    protocol, clusters, allocation, tmp_path
):
    """SCORE-15 direction and CBI coding declared in [scoring] (issue #16 item 2)."""
    from trialkit.data import validate

    p = protocol.model_copy(
        update={
            "scoring": protocol.scoring.model_copy(
                update={"score15_reverse": "difficulties", "cbi_coding": "1-5"}
            )
        }
    )
    base = simulate_trial(protocol, clusters, allocation, seed=5, n_keyworkers=4)
    sim = simulate_trial(p, clusters, allocation, seed=5, n_keyworkers=4)
    m = sim.tables["measurements"]
    cbi = m[m["instrument"] == "CBI"].filter(like="item_").stack().dropna()
    assert len(cbi) and set(cbi.unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    out = sim.save(tmp_path / "d")
    td = validate(p, out, out)
    assert not td.errors, [str(e) for e in td.errors][:3]
    # the same latent outcomes score the same whichever way they were entered
    s0 = base.tables["measurements"]
    s1 = m
    items = [c for c in s0.columns if c.startswith("item_")]
    sc0 = s0[s0["instrument"] == "SCORE-15"][items].to_numpy(dtype=float, na_value=np.nan)
    sc1 = s1[s1["instrument"] == "SCORE-15"][items].to_numpy(dtype=float, na_value=np.nan)
    strengths = [0, 2, 5, 9, 14]
    np.testing.assert_allclose(sc0[:, strengths], 6 - sc1[:, strengths])


def test_delivery_follows_the_protocols_courses():
    """A protocol with its own courses gets training records of those courses only: the
    course meant for one role (its indicators' ``role``) is attended by that role, and an
    intervention LA holds round(fidelity x <course>_days) days."""
    from pathlib import Path

    from trialkit.protocol import load_protocol
    from trialkit.randomise import read_clusters

    base = Path(__file__).resolve().parents[2] / "protocols"
    protocol = load_protocol(base / "family-hubs-reflective-practice-pilot.toml")
    clusters = read_clusters(base / "family-hubs-clusters.csv", "la_id")
    sim = simulate_trial(protocol, clusters, seed=3, fidelity=1.0, contamination=0.0)
    d = sim.tables["delivery"]
    tr = d[d["record_type"] == "training"]
    assert set(tr["course"]) == {"induction", "practice_lead"}
    kw = sim.tables["keyworkers"].set_index("keyworker_id")["role"]
    lead = tr[tr["course"] == "practice_lead"]
    assert set(kw[lead["keyworker_id"].unique()]) == {"champion"}
    arms = dict(zip(sim.allocation["cluster"], sim.allocation["arm"], strict=True))
    for la, g in tr.groupby("la_id"):
        assert arms[la] == "reflect"  # no contamination asked for
        assert g.groupby("course")["day"].nunique().to_dict() == {
            "induction": 3,
            "practice_lead": 6,
        }
    realised = sim.truth["realised_delivery"]
    assert realised["FH01"].keys() >= {"induction_days_delivered", "practice_lead_days_delivered"}
