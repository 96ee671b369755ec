"""The nested-intercept engine against closed forms: dense n x n matrices, finite differences,
the balanced-design ANOVA solution, and invariances (row order, code labels, sub-models)."""

from __future__ import annotations

import numpy as np
import pytest

from trialkit.models import _engine
from trialkit.models._tree import make_layout, make_stats, prepare
from trialkit.models.dfmethods import column_strata


def _unbalanced(
    seed: int = 3, levels: int = 3, n: int = 400
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Nested codes (top first, shuffled rows, unbalanced), X = [1, t, x] and y."""
    rng = np.random.default_rng(seed)
    top = rng.integers(0, 6, n)
    codes = [top]
    for _ in range(levels - 1):
        own = rng.integers(0, 4, n)
        codes.append(codes[-1] * 4 + own)  # unique within the parent
    t = (top % 2).astype(float)
    x = rng.normal(size=n)
    y = 0.4 * t + 0.7 * x + rng.normal(size=n)
    for c, sd in zip(codes, (0.8, 0.5, 0.4, 0.3), strict=False):
        y = y + rng.normal(0, sd, int(c.max()) + 1)[c]
    X = np.column_stack([np.ones(n), t, x])
    return codes, X, y


def _prepared(codes, X, y):
    lay = make_layout(codes)
    st = make_stats(lay, X, y)
    return lay, st, prepare(lay, st.W, st.xbar, st.p)


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_ingredients_match_dense_matrices(levels: int) -> None:
    codes, X, y = _unbalanced(levels=levels, n=300)
    lay, st, pr = _prepared(codes, X, y)
    theta = np.array([[0.7, 0.4, 0.55][:levels]])
    ev = _engine.evaluate(lay, pr, theta)
    p = X.shape[1]
    fin = _engine._ingredients(lay, ev.S, ev.ldv, theta, p, True)
    n = y.size
    G = [(c[:, None] == c[None, :]).astype(float) for c in codes] + [np.eye(n)]
    V = np.eye(n) + sum(t**2 * g for t, g in zip(theta[0], G[:-1], strict=True))
    Vi = np.linalg.inv(V)
    F = X.T @ Vi @ X
    beta = np.linalg.solve(F, X.T @ Vi @ y)
    A = np.column_stack([X, y - X @ beta])
    nr = levels + 1
    _, logdetV = np.linalg.slogdet(V)
    assert ev.ldv[0, 0] == pytest.approx(logdetV, rel=1e-11)
    assert fin.beta[0] == pytest.approx(beta, rel=1e-9, abs=1e-12)
    for r in range(nr):
        Y = A.T @ Vi @ G[r] @ Vi @ A
        np.testing.assert_allclose(fin.Yr[0, r], Y, rtol=1e-9, atol=1e-9)
        assert fin.trPGPG.shape == (1, nr, nr)
        for s in range(nr):
            Q = A.T @ Vi @ G[r] @ Vi @ G[s] @ Vi @ A
            np.testing.assert_allclose(fin.Qr[0, r, s], 0.5 * (Q + Q.T), rtol=1e-9, atol=1e-9)
    # REML P matrix traces
    s2 = fin.s2[0]
    P = (Vi - Vi @ X @ np.linalg.solve(F, X.T @ Vi)) / s2
    for r in range(nr):
        for s in range(nr):
            ref = np.trace(P @ G[r] @ P @ G[s])
            assert fin.trPGPG[0, r, s] == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("reml", [True, False])
def test_gradient_and_hessian_match_finite_differences(reml: bool) -> None:
    codes, X, y = _unbalanced(levels=3, n=350, seed=8)
    lay, st, pr = _prepared(codes, X, y)
    phi = np.array([0.5, 0.3, 0.2])
    ev = _engine.evaluate(lay, pr, np.sqrt(phi)[None], reml=reml)
    h = 1e-5
    for i in range(3):
        e = np.zeros(3)
        e[i] = h
        up = _engine.evaluate(lay, pr, np.sqrt(phi + e)[None], reml=reml)
        dn = _engine.evaluate(lay, pr, np.sqrt(phi - e)[None], reml=reml)
        assert ev.grad[0, i] == pytest.approx((up.dev[0] - dn.dev[0]) / (2 * h), rel=1e-6)
        np.testing.assert_allclose(
            ev.hess[0, i], (up.grad[0] - dn.grad[0]) / (2 * h), rtol=1e-5, atol=1e-6
        )


def test_moment_start_is_the_reml_optimum_for_a_balanced_design() -> None:
    rng = np.random.default_rng(11)
    la = np.repeat(np.arange(10), 48)
    kw = la * 6 + np.tile(np.repeat(np.arange(6), 8), 10)
    t = (la % 2).astype(float)
    y = 0.3 * t + rng.normal(0, 0.6, 10)[la] + rng.normal(0, 0.5, 60)[kw] + rng.normal(size=la.size)
    X = np.column_stack([np.ones(la.size), t])
    lay = make_layout([la, kw])
    st = make_stats(lay, X, y)
    B = _engine._standardiser(lay, st)
    pr = prepare(lay, np.swapaxes(B, -1, -2) @ st.W @ B, st.xbar @ B, st.p)
    start = _engine._moment_start(lay, pr)
    fitted = _engine.fit_stats(lay, st)
    assert start[0] == pytest.approx(fitted.theta[0], rel=1e-9)
    assert fitted.iterations[0] == 1


def test_fit_is_invariant_to_row_order_and_code_labels() -> None:
    codes, X, y = _unbalanced(levels=2, n=500, seed=5)
    one = _engine.fit_lmm(make_layout(codes), X, y)
    rng = np.random.default_rng(0)
    perm = rng.permutation(y.size)
    relabel = [rng.permutation(int(c.max()) + 1)[c] * 3 + 7 for c in codes]  # not dense either
    two = _engine.fit_lmm(make_layout([c[perm] for c in relabel]), X[perm], y[perm])
    np.testing.assert_allclose(two.theta, one.theta, rtol=1e-9)
    np.testing.assert_allclose(two.beta, one.beta, rtol=1e-9)
    np.testing.assert_allclose(two.Phi, one.Phi, rtol=1e-8)
    np.testing.assert_allclose(two.info, one.info, rtol=1e-8)


def test_sub_model_from_the_same_statistics_equals_a_separate_fit() -> None:
    codes, X, y = _unbalanced(levels=3, n=400, seed=21)
    lay = make_layout(codes)
    st = make_stats(lay, X, y)
    sub = _engine.fit_stats(lay, st.select([0]))
    ref = _engine.fit_lmm(lay, np.ones((y.size, 1)), y)
    np.testing.assert_allclose(sub.psi, ref.psi, rtol=1e-10)
    np.testing.assert_allclose(sub.loglik, ref.loglik, rtol=1e-12)


def test_boundary_is_reached_and_kept_exactly() -> None:
    rng = np.random.default_rng(4)
    la = np.repeat(np.arange(8), 50)
    kw = la * 5 + rng.integers(0, 5, la.size)
    y = rng.normal(0, 0.7, 40)[kw] + rng.normal(size=la.size)  # no LA variance at all
    X = np.column_stack([np.ones(la.size), (la % 2).astype(float)])
    f = _engine.fit_lmm(make_layout([la, kw]), X, y)
    assert f.converged[0]
    if f.theta[0, 0] == 0.0:
        assert f.theta[0, 1] > 0
    assert np.all(f.theta >= 0)


def test_layout_refuses_codes_that_are_not_nested() -> None:
    top = np.array([0, 0, 1, 1])
    low = np.array([0, 1, 1, 2])  # group 1 sits in both top clusters
    with pytest.raises(ValueError, match="not nested"):
        make_layout([top, low])


def _column_strata_reference(X: np.ndarray, cluster_codes) -> np.ndarray:
    """The per-row ufunc.at version this module's reduceat version replaced."""
    n, p = X.shape
    out = np.zeros(p, dtype=np.int64)
    const = np.all(np.isclose(X, X[:1, :], rtol=0.0, atol=1e-12), axis=0)
    for l, codes in enumerate(cluster_codes):
        G = int(codes.max()) + 1
        lo = np.full((G, p), np.inf)
        hi = np.full((G, p), -np.inf)
        np.minimum.at(lo, codes, X)
        np.maximum.at(hi, codes, X)
        varies = np.any(hi - lo > 1e-12 * np.maximum(1.0, np.abs(hi)), axis=0)
        out[varies] = l + 1
    out[const] = -1
    return out


def test_column_strata_equal_the_reference_on_unsorted_rows() -> None:
    codes, X, _ = _unbalanced(levels=3, n=300, seed=2)
    kw_level = np.asarray(codes[1], dtype=float)  # constant within level-1 groups
    X = np.column_stack([X, kw_level, X[:, 2] * 0 + 5.0])
    np.testing.assert_array_equal(column_strata(X, codes), _column_strata_reference(X, codes))


@pytest.mark.parametrize("levels", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_column_strata_screened_by_the_sufficient_statistics(levels: int, seed: int) -> None:
    """The O(groups) screen gives the row-wise answer, including near-constant columns."""
    from trialkit.models._tree import within_sums_of_squares

    rng = np.random.default_rng(seed)
    codes, X, y = _unbalanced(levels=levels, n=500, seed=seed)
    n = X.shape[0]
    cols = [X]
    for c in codes:  # constant within each level's groups, means that do not round exactly
        cols.append((3.7 + 0.1 * c.astype(float))[:, None])
    cols.append(np.full((n, 1), 5.0))  # constant
    tiny = np.full(n, 2.0)
    tiny[rng.integers(0, n)] += 1e-13  # a wobble below the tolerance: constant
    small = np.full(n, 2.0)
    small[rng.integers(0, n)] += 1e-10  # above the tolerance, below the screen: checked on rows
    cols += [tiny[:, None], small[:, None], rng.integers(0, 2, (n, 1)).astype(float)]
    X = np.column_stack(cols)
    lay = make_layout(codes)
    st = make_stats(lay, X, y)
    within = within_sums_of_squares(lay, st)[:, :-1]
    expected = column_strata(X, codes)
    np.testing.assert_array_equal(column_strata(X, codes, within=within), expected)
    np.testing.assert_array_equal(expected, _column_strata_reference(X, codes))


def test_within_sums_of_squares_equal_the_row_sums() -> None:
    from trialkit.models._tree import within_sums_of_squares

    codes, X, y = _unbalanced(levels=3, n=400, seed=5)
    lay = make_layout(codes)
    got = within_sums_of_squares(lay, make_stats(lay, X, y))
    A = np.column_stack([X, y])
    for l, c in enumerate([*codes, np.zeros(len(y), dtype=np.int64)]):
        counts = np.bincount(c)
        means = (
            np.stack([np.bincount(c, weights=a) for a in A.T], axis=1)
            / np.maximum(counts, 1)[:, None]
        )
        row = l if l < len(codes) else len(codes)
        np.testing.assert_allclose(
            got[row], ((A - means[c]) ** 2).sum(axis=0), rtol=1e-10, atol=1e-9
        )
