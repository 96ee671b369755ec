"""Properties of analytic power and MDES."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trialkit.power import CRTDesign, analytic_mdes, analytic_power

icc = st.floats(0.0, 0.3)
size = st.integers(2, 40)
clusters = st.integers(4, 80)
effect = st.floats(0.05, 1.5)


@st.composite
def designs(draw: st.DrawFn) -> CRTDesign:
    if draw(st.booleans()):
        return CRTDesign(
            levels=2,
            clusters=draw(clusters),
            units_per_cluster=draw(size),
            icc_cluster=draw(icc),
            r2_unit=draw(st.floats(0, 0.8)),
            r2_cluster=draw(st.floats(0, 0.8)),
            treated_fraction=draw(st.floats(0.2, 0.8)),
            cv=draw(st.floats(0, 0.8)),
        )
    return CRTDesign(
        levels=3,
        clusters=draw(clusters),
        subclusters_per_cluster=draw(size),
        units_per_subcluster=draw(size),
        icc_cluster=draw(icc),
        icc_subcluster=draw(icc),
        r2_cluster=draw(st.floats(0, 0.8)),
        cv_method=draw(st.sampled_from(["eldridge", "van-breukelen"])),
        cv=draw(st.floats(0, 0.6)),
    )


@settings(max_examples=60, deadline=None)
@given(designs(), effect, st.integers(1, 20))
def test_power_increases_with_clusters(d: CRTDesign, es: float, extra: int) -> None:
    p1 = analytic_power(d, effect=es).power
    p2 = analytic_power(d.with_clusters(int(d.clusters or 0) + extra), effect=es).power
    assert p2 >= p1 - 1e-12


@settings(max_examples=60, deadline=None)
@given(designs(), effect, st.floats(0.01, 0.5))
def test_power_increases_with_effect(d: CRTDesign, es: float, more: float) -> None:
    assert analytic_power(d, effect=es + more).power >= analytic_power(d, effect=es).power - 1e-12


@settings(max_examples=60, deadline=None)
@given(designs(), st.floats(0.1, 0.99), st.booleans())
def test_mdes_power_round_trip(d: CRTDesign, target: float, two: bool) -> None:
    if target <= 0.05 + 1e-6:
        return
    m = analytic_mdes(d, power=target, two_tailed=two)
    assert abs(analytic_power(d, effect=m.mdes, two_tailed=two).power - target) < 1e-9
    assert m.conf_low < m.mdes < m.conf_high


@settings(max_examples=40, deadline=None)
@given(designs(), effect)
def test_power_in_unit_interval(d: CRTDesign, es: float) -> None:
    p = analytic_power(d, effect=es).power
    assert 0.05 - 1e-12 <= p <= 1.0
