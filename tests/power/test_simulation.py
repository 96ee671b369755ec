"""Simulation power: reproducibility, agreement with analytic power, loud failure counts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from trialkit.errors import PowerError
from trialkit.power import CRTDesign
from trialkit.power.backends import DaskBackend, LocalBackend, Progress, chunk_indices
from trialkit.power.dgp import make_layout, replicate_seeds, simulate_outcomes
from trialkit.power.simulation import (
    PowerSimulation,
    Scenario,
    SimulationResult,
    _aggregate,
    analyse_batch,
    load_scenarios,
    scenarios_from_config,
    simulate_power,
    simulate_power_grid,
)

ROOT = Path(__file__).parents[2]
D3 = CRTDesign(
    levels=3,
    clusters=12,
    subclusters_per_cluster=4,
    units_per_subcluster=5,
    icc_cluster=0.05,
    icc_subcluster=0.1,
)
D2 = CRTDesign(levels=2, clusters=12, units_per_cluster=10, icc_cluster=0.1)


def _same(a: SimulationResult, b: SimulationResult) -> None:
    da, db = a.to_dict(), b.to_dict()
    for k in ("seconds", "backend"):
        da.pop(k), db.pop(k)
    assert da == db


def test_identical_whatever_chunking() -> None:
    s = Scenario(design=D3, effect=0.4, reps=150, seed=11)
    ref = simulate_power(s, chunk_size=150)
    for size in (1, 7, 64):
        _same(ref, simulate_power(s, chunk_size=size))


def test_replicate_depends_only_on_its_seed() -> None:
    s = Scenario(design=D3, effect=0.2, reps=40, seed=5)
    whole = s.generate(range(40))
    part = s.generate([7, 30, 3])
    np.testing.assert_array_equal(part.y, whole.y[[7, 30, 3]])
    full = analyse_batch(whole, s)
    sub = analyse_batch(part, s)
    for k in ("estimate", "p_value", "std_error"):
        np.testing.assert_array_equal(sub[k], full[k][[7, 30, 3]])


def test_batched_equals_one_at_a_time() -> None:
    """Batched cluster-level t-test equals a per-replicate data-frame analysis to 1e-12."""
    s = Scenario(
        design=replace_design(D3, cv=0.4), effect=0.3, reps=5, seed=2, method="cluster-level"
    )
    batch = s.generate(range(5))
    got = analyse_batch(batch, s)
    for i in range(5):
        df = batch.frame(i)
        means = df.groupby("cluster")[["y", "treatment"]].mean()
        t = stats.ttest_ind(means.y[means.treatment == 1], means.y[means.treatment == 0])
        est = means.y[means.treatment == 1].mean() - means.y[means.treatment == 0].mean()
        assert got["estimate"][i] == pytest.approx(est, abs=1e-12)
        assert got["p_value"][i] == pytest.approx(t.pvalue, abs=1e-12)


def test_batched_ancova_equals_ols() -> None:
    d = CRTDesign(
        levels=2,
        clusters=14,
        units_per_cluster=6,
        icc_cluster=0.2,
        r2_unit=0.3,
        r2_cluster=0.4,
        cluster_covariates=1,
    )
    s = Scenario(design=d, effect=0.3, reps=4, seed=3, method="cluster-level")
    batch = s.generate(range(4))
    got = analyse_batch(batch, s)
    for i in range(4):
        m = batch.frame(i).groupby("cluster").mean()
        x = np.column_stack([np.ones(len(m)), m.treatment, m.x_cluster, m.x_unit])
        beta, *_ = np.linalg.lstsq(x, m.y.to_numpy(), rcond=None)
        resid = m.y.to_numpy() - x @ beta
        cov = resid @ resid / (len(m) - 4) * np.linalg.inv(x.T @ x)
        assert got["estimate"][i] == pytest.approx(beta[1], abs=1e-12)
        assert got["std_error"][i] == pytest.approx(math.sqrt(cov[1, 1]), abs=1e-12)


def replace_design(d: CRTDesign, **kw: object) -> CRTDesign:
    return CRTDesign.from_dict({**d.to_dict(), **kw})


def test_simulated_power_matches_analytic() -> None:
    """Balanced 2-level cluster-level t-test: simulated power within 3 MC SE of analytic."""
    s = Scenario(design=D2, effect=0.6, reps=4000, seed=123, method="cluster-level")
    r = simulate_power(s)
    assert abs(r.power - r.analytic_power) < 3 * math.sqrt(
        r.analytic_power * (1 - r.analytic_power) / r.reps
    )
    assert abs(r.bias) < 4 * r.mean_std_error / math.sqrt(r.reps)
    assert abs(r.coverage - 0.95) < 3 * math.sqrt(0.95 * 0.05 / r.reps)


def test_result_fields_and_round_trip() -> None:
    r = simulate_power(Scenario(design=D2, effect=0.5, reps=200, seed=1, name="x"))
    assert 0 <= r.conf_low <= r.power <= r.conf_high <= 1
    assert r.mc_se == pytest.approx(math.sqrt(r.power * (1 - r.power) / 200))
    assert r.conf_low == pytest.approx(stats.binomtest(r.rejections, 200).proportion_ci().low)
    back = SimulationResult.from_dict(json.loads(json.dumps(r.to_dict())))
    _same(back, r)
    assert repr(back) == repr(r)
    assert set(r.to_json_summary()) >= {
        "power",
        "mc_se",
        "conf_low",
        "conf_high",
        "reps",
        "singular",
        "failed",
        "coverage",
        "seconds",
    }
    assert len(r.to_frame()) == 1
    g = PowerSimulation(results=(r, r))
    assert len(g.to_frame()) == 2
    assert (
        PowerSimulation.from_dict(json.loads(json.dumps(g.to_dict()))).results[0].power == r.power
    )


def test_failed_fits_kept_and_reported() -> None:
    s = Scenario(design=D2, effect=0.5, reps=4, seed=1)
    out = {
        "estimate": np.array([0.4, np.nan, 0.6, 0.5]),
        "std_error": np.array([0.1, np.nan, 0.1, 0.1]),
        "df": np.full(4, 10.0),
        "p_value": np.array([0.001, np.nan, 0.001, 0.2]),
        "conf_low": np.array([0.2, np.nan, 0.4, 0.3]),
        "conf_high": np.array([0.6, np.nan, 0.8, 0.7]),
        "singular": np.array([False, False, True, False]),
        "failed": np.array([False, True, False, False]),
    }
    r = _aggregate(s, out, 0.0, "local")
    assert r.reps == 4 and r.failed == 1 and r.singular == 1
    assert r.power == 0.5  # the failed fit counts as not rejected
    assert any("FAILED" in w for w in r.warnings)
    assert "FAILED" in r.summary()


def test_bad_scenarios() -> None:
    with pytest.raises(PowerError) as e:
        simulate_power(Scenario(design=D2, effect=0.5, reps=0, method="magic"))
    assert {"power.reps", "power.method"} <= set(e.value.codes)
    with pytest.raises(PowerError) as e:
        simulate_power_grid([Scenario(design=replace_design(D2, treated_fraction=1.0))])
    assert "power.treated_fraction" in e.value.codes


def test_lmm_runs_and_rejects_binary() -> None:
    r = simulate_power(Scenario(design=D3, effect=0.4, reps=30, seed=1, method="lmm"))
    assert r.reps == 30 and r.failed == 0
    d = CRTDesign(
        levels=2,
        clusters=10,
        units_per_cluster=5,
        icc_cluster=0.05,
        outcome="binary",
        proportions=(0.3, 0.5),
    )
    with pytest.raises(PowerError) as e:
        simulate_power(Scenario(design=d, reps=3, method="lmm"))
    assert e.value.codes == ("power.lmm_binary",)
    assert scenarios_from_config({"defaults": d.to_dict()})[0].method == "cluster-level"


def test_binary_simulation() -> None:
    d = CRTDesign(
        levels=2,
        clusters=20,
        units_per_cluster=30,
        icc_cluster=0.05,
        outcome="binary",
        proportions=(0.3, 0.45),
    )
    r = simulate_power(Scenario(design=d, reps=400, seed=4))
    assert abs(r.power - r.analytic_power) < 0.1
    assert abs(r.mean_estimate - 0.15) < 0.02


def test_outcome_moments() -> None:
    """Variance components of the generator match the requested ICCs and R²."""
    lay = make_layout(
        levels=3, clusters=200, subclusters_per_cluster=5, units_per_subcluster=8, seed=1
    )
    b = simulate_outcomes(
        lay,
        replicate_seeds(9, 20),
        effect=0.0,
        icc_cluster=0.1,
        icc_subcluster=0.2,
        r2_unit=0.5,
        r2_cluster=0.3,
    )
    assert b.y.shape == (20, lay.n)
    assert np.var(b.y) == pytest.approx(1.0, abs=0.05)
    assert set(b.covariates) == {"x_unit", "x_cluster"}
    r = np.corrcoef(b.y.ravel(), b.covariates["x_unit"].ravel())[0, 1]
    assert r**2 == pytest.approx(0.7 * 0.5, abs=0.02)


def test_layout_cv_and_allocation() -> None:
    lay = make_layout(levels=2, clusters=400, units_per_cluster=20, cv=0.5, seed=3)
    sizes = lay.cluster_sizes
    assert sizes.std(ddof=0) / sizes.mean() == pytest.approx(0.5, abs=0.06)
    assert lay.treat_cluster.sum() == 200


def test_config_files() -> None:
    for name in ("pilot-12-la.toml", "clusters-curve.toml"):
        sc = load_scenarios(ROOT / "simulations" / name)
        assert sc and all(not s.problems() for s in sc)
    pilot = load_scenarios(ROOT / "simulations" / "pilot-12-la.toml")
    assert len(pilot) == 9
    assert pilot[0].design.clusters == 12
    with pytest.raises(PowerError) as e:
        scenarios_from_config({"defaults": {"clusterz": 3}})
    assert e.value.codes == ("power.config_key",)


def test_progress_line(capsys: pytest.CaptureFixture[str]) -> None:
    p = Progress(10, label="x", enabled=True)
    LocalBackend().map(len, [range(4), range(6)], p)
    p.close()
    err = capsys.readouterr().err
    assert "10/10" in err
    assert chunk_indices(5, 2) == [range(0, 2), range(2, 4), range(4, 5)]


def test_frame_for_fit() -> None:
    s = Scenario(design=D3, effect=0.1, reps=2, seed=1)
    df = s.generate([1]).frame(0)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns[:5]) == ["cluster", "subcluster", "unit", "treatment", "y"]
    assert df.groupby("cluster").treatment.nunique().max() == 1


def test_dask_identical_to_local() -> None:
    pytest.importorskip("distributed")
    s = Scenario(design=D3, effect=0.4, reps=260, seed=21)
    local = simulate_power(s, chunk_size=1000)
    be = DaskBackend(workers=2, processes=False)
    try:
        remote = simulate_power(s, backend=be, chunk_size=7)
    finally:
        be.close()
    _same(local, remote)
    assert remote.backend == "dask"


def _fit_quiet(fit, df, **kw):
    import warnings

    from trialkit.errors import ConvergenceWarning, SingularFitWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(df, **kw)


def test_cluster_level_equals_trialkit_fit() -> None:
    """The batched cluster-level path equals `trialkit fit --method cluster-level` per replicate."""
    from trialkit.models.fit import fit

    s = Scenario(design=D3, effect=0.3, reps=3, seed=8, method="cluster-level")
    batch = s.generate(range(3))
    got = analyse_batch(batch, s)
    for i in range(3):
        res = _fit_quiet(
            fit,
            batch.frame(i),
            outcome="y",
            treatment="treatment",
            clusters=["cluster", "subcluster"],
            method="cluster-level",
        )
        assert got["estimate"][i] == pytest.approx(res.treatment.estimate, abs=1e-12)
        assert got["std_error"][i] == pytest.approx(res.treatment.std_error, abs=1e-12)
        assert got["p_value"][i] == pytest.approx(res.treatment.p_value, abs=1e-12)


LMM_CASES = [
    (D3, "kenward-roger"),
    (D3, "satterthwaite"),
    (
        CRTDesign(
            levels=2,
            clusters=12,
            units_per_cluster=8,
            icc_cluster=0.1,
            cv=0.5,
            r2_unit=0.4,
            r2_cluster=0.3,
            cluster_covariates=1,
        ),
        "kenward-roger",
    ),
    (
        CRTDesign(
            levels=2,
            clusters=12,
            units_per_cluster=8,
            icc_cluster=0.1,
            r2_cluster=0.3,
            cluster_covariates=1,
        ),
        "between-within",
    ),
]


@pytest.mark.parametrize(("design", "df_method"), LMM_CASES)
def test_lmm_batch_equals_one_at_a_time_fit(design: CRTDesign, df_method: str) -> None:
    """Batched REML + KR equals a loop of `trialkit.models.fit.fit` to 1e-12."""
    from trialkit.models.fit import fit

    s = Scenario(design=design, effect=0.3, reps=6, seed=12, method="lmm", df_method=df_method)
    batch = s.generate(range(6))
    got = analyse_batch(batch, s)
    clusters = ["cluster", "subcluster"] if design.levels == 3 else ["cluster"]
    for i in range(6):
        res = _fit_quiet(
            fit,
            batch.frame(i),
            outcome="y",
            treatment="treatment",
            covariates=sorted(batch.covariates),
            clusters=clusters,
            method="lmm",
            df_method=df_method,
        )
        t = res.treatment
        for key, want in (
            ("estimate", t.estimate),
            ("std_error", t.std_error),
            ("df", t.df),
            ("p_value", t.p_value),
            ("conf_low", t.conf_low),
        ):
            assert got[key][i] == pytest.approx(want, abs=1e-12, rel=1e-12), key
        assert bool(got["singular"][i]) == res.singular


@pytest.mark.slow
def test_type_one_error_default_analysis_12_clusters() -> None:
    """Type I error of the default analysis with 12 LAs is within MC error of 5%."""
    d = CRTDesign(
        levels=3,
        clusters=12,
        subclusters_per_cluster=10,
        units_per_subcluster=12,
        icc_cluster=0.05,
        icc_subcluster=0.1,
    )
    method = "lmm"
    try:
        simulate_power(Scenario(design=d, effect=0.0, reps=2, seed=1, method="lmm"))
    except PowerError:
        method = "cluster-level"
    r = simulate_power(Scenario(design=d, effect=0.0, reps=4000, seed=31, method=method))
    assert abs(r.power - 0.05) < 3 * math.sqrt(0.05 * 0.95 / r.reps)
    assert r.failed == 0


def test_grid_over_processes_identical_to_in_process() -> None:
    """Worker processes of the local backend give the same numbers as one process."""
    grid = [
        Scenario(design=D3, effect=0.3, reps=250, seed=5, name="a"),
        Scenario(design=D3, effect=0.0, reps=130, seed=6, name="b"),
    ]
    one = simulate_power_grid(grid, backend=LocalBackend(workers=1), chunk_size=125)
    many = simulate_power_grid(grid, backend=LocalBackend(workers=2), chunk_size=125)
    for x, y in zip(one.results, many.results, strict=True):
        _same(x, y)
    assert [r.scenario.name for r in many.results] == ["a", "b"]


def test_grid_submits_every_task_in_one_map() -> None:
    """A grid is one map over every (scenario, chunk) task, not one map per scenario."""

    class Recording(LocalBackend):
        def __init__(self) -> None:
            super().__init__(workers=1)
            self.calls: list[int] = []

        def map(self, fn, chunks, progress=None):  # type: ignore[no-untyped-def]
            self.calls.append(len(chunks))
            return super().map(fn, chunks, progress)

    be = Recording()
    grid = [Scenario(design=D3, effect=e, reps=250, seed=1) for e in (0.1, 0.2, 0.3)]
    simulate_power_grid(grid, backend=be, chunk_size=125)
    assert be.calls == [6]


def test_local_backend_refuses_zero_workers() -> None:
    with pytest.raises(PowerError, match="workers"):
        LocalBackend(workers=0)


def test_dask_workers_with_other_versions_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("distributed")
    from trialkit.power.backends import environment_versions

    be = DaskBackend(workers=1, processes=False)
    try:
        other = {**environment_versions(), "trialkit": "0.0.0-other"}
        monkeypatch.setattr(be.client, "run", lambda fn: {"tcp://worker-1": other})
        with pytest.raises(PowerError, match="other versions") as exc:
            be.check_versions()
        assert exc.value.problems[0].code == "power.dask_versions"
    finally:
        be.close()
