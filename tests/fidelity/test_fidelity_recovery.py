"""A synthetic trial with known delivered fidelity (trialkit.simulate.trial) is recovered."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from trialkit.fidelity import assess_fidelity


def test_simulated_delivery_is_recovered(pilot) -> None:  # type: ignore[no-untyped-def]
    import trialkit.simulate.trial as sim

    las = [f"LA{i:02d}" for i in range(1, 13)]
    clusters = pd.DataFrame(
        {
            "la_id": las,
            "region": ["North", "South", "Midlands"] * 4,
            "imd_score": np.linspace(10, 40, 12),
            "families_referred_2023": np.arange(20, 32),
        }
    )
    allocation = pd.DataFrame({"cluster": las, "arm": ["intervention", "control"] * 6})
    levels = dict(zip(las[::2], [1.0, 0.9, 0.75, 0.6, 0.5, 0.8], strict=True))
    st = sim.simulate_trial(pilot, clusters, allocation, seed=7, fidelity=levels)
    t = st.tables
    r = assess_fidelity(
        pilot, t["delivery"], t["keyworkers"], t["families"], st.allocation, clusters=t["clusters"]
    )
    got = r.indicators.set_index(["la_id", "indicator_id"])["delivered"]
    real = st.truth["realised_delivery"]
    for la in las[::2]:  # intervention LAs: every element has records
        rd = real[la]
        assert got[(la, "ind.cpd_days_delivered")] == rd["cpd_days_delivered"]
        # a Foundation day counts as held only when a champion attended it
        assert got[(la, "ind.foundation_days_delivered")] <= rd["foundation_days_delivered"]
        assert got[(la, "ind.clinician_fte_months")] == pytest.approx(rd["clinician_fte_months"])
        assert got[(la, "ind.genogram_use")] == pytest.approx(rd["share_sessions_with_genogram"])
        assert got[(la, "ind.feedback_baseline")] == pytest.approx(
            rd["share_families_with_feedback_baseline"]
        )
        assert abs(r.la_index()[la] - levels[la]) < 0.15
    for la in las[1::2]:  # control LAs: delivered elements are flagged as contamination
        rd = real[la]
        if rd["cpd_days_delivered"] > 0:
            assert la in r.contaminated_las()
        g = rd["share_sessions_with_genogram"]
        if g is not None and not math.isnan(g):
            assert got[(la, "ind.genogram_use")] == pytest.approx(g)
    idx = r.la_index()
    order = sorted(las[::2], key=lambda la: levels[la])
    assert np.corrcoef([levels[la] for la in order], [idx[la] for la in order])[0, 1] > 0.9
