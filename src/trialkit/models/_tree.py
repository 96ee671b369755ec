"""Nested cluster layout and the one pass over the data for the mixed-model engine (private).

The layout
----------
Cluster codes for levels ``l = 0 .. L-1`` (top first) are turned into a tree whose
nodes are numbered level by level so that the children of every node are
contiguous (lexicographic order of the ancestors).  Sums over the children of
every node are then one ``np.add.reduceat`` call, whatever the number of levels
or the (unbalanced) number of children: nothing is padded to the largest cluster.

The sufficient statistics
-------------------------
For ``A = [X, y]`` (``q = p + 1`` columns) one O(n) pass gives the lowest-level
group means ``ā_k`` and the pooled *centred* within-group scatter
``W = Σ_k Σ_{i∈k} (A_i - ā_k)(A_i - ā_k)'``.  Everything the engine evaluates
afterwards costs O(groups · q²) per evaluation: the means ``z_g`` of every node
(row-weighted averages of its children's means), the deviations
``δ_c = z_c - z_{parent(c)}`` and, for the lowest level, the outer products
``δ_k δ_k'`` (``ā_k ā_k'`` when the lowest level is the top).

Every array carries a leading replicate axis ``R`` (simulated data sets or
imputations sharing the rows and the cluster layout).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Layout",
    "Prepared",
    "Stats",
    "make_layout",
    "make_stats",
    "prepare",
    "top_means",
    "within_sums_of_squares",
]


@dataclass(frozen=True, eq=False)
class Layout:
    """Nested cluster structure shared by every fit on the same rows.

    Attributes
    ----------
    n, L, K, C : int
        Rows, levels, lowest-level groups and top-level clusters.
    lowest : ndarray (n,)
        Lowest-level group (tree numbering) of each row.
    sizes : tuple of ndarray
        Rows per node, one float array per level (top first).
    starts : tuple of ndarray
        For levels ``0 .. L-2``: index of each node's first child in the next level.
    parent : tuple of ndarray
        For each level: the parent node of each node (level 0: zeros).
    row_starts : ndarray or None
        First row of each lowest-level group when the rows are sorted by group
        (then group sums are a ``reduceat``), else ``None``.
    moment : ndarray (L, L)
        ``c[l, m]``: coefficient of the level-``m`` variance in the expected
        between-node sum of squares at level ``l`` (nested ANOVA, for the start).
    dof : ndarray (L,)
        Degrees of freedom of those sums of squares, ``G_l - G_{l-1}`` (``G_{-1} = 1``).
    """

    n: int
    L: int
    K: int
    C: int
    lowest: np.ndarray
    sizes: tuple[np.ndarray, ...]
    starts: tuple[np.ndarray, ...]
    parent: tuple[np.ndarray, ...]
    row_starts: np.ndarray | None
    moment: np.ndarray
    dof: np.ndarray

    @property
    def nk(self) -> np.ndarray:
        """Rows per lowest-level group."""
        return self.sizes[-1]

    @property
    def groups(self) -> tuple[int, ...]:
        """Number of nodes per level (top first)."""
        return tuple(int(s.size) for s in self.sizes)


def _dense(codes: np.ndarray) -> np.ndarray:
    """Codes ``0 .. G-1`` with every code used (remapped only when needed)."""
    if codes.size and codes.min() >= 0 and np.bincount(codes).all():
        return codes
    return np.unique(codes, return_inverse=True)[1].astype(np.int64)


def _run_starts(x: np.ndarray) -> np.ndarray:
    """Index of the first element of each run of equal values of ``x`` (non-empty)."""
    out = np.empty(0, dtype=np.intp) if x.size == 0 else np.flatnonzero(x[1:] != x[:-1]) + 1
    return np.concatenate((np.zeros(min(x.size, 1), dtype=np.intp), out))


def make_layout(cluster_codes: Sequence[np.ndarray]) -> Layout:
    """Build the tree from nested cluster codes (top level first; one array of n ints each).

    Raises
    ------
    ValueError
        No level, codes of different lengths, or a group that is not nested in
        one group of the level above.
    """
    codes = [_dense(np.asarray(c, dtype=np.int64).ravel()) for c in cluster_codes]
    if not codes:
        raise ValueError("a mixed model needs at least one cluster level")
    n = int(codes[0].shape[0])
    if any(c.shape[0] != n for c in codes):
        raise ValueError("cluster codes of every level must have one entry per row")
    L = len(codes)
    low = codes[-1]
    K = int(low.max()) + 1
    # ancestors of each lowest group at every level (from any of its rows)
    first_row = np.empty(K, dtype=np.int64)
    first_row[low[::-1]] = np.arange(n - 1, -1, -1)
    anc = [c[first_row] for c in codes]
    for l in range(L - 1):
        if not np.array_equal(anc[l][low], codes[l]):
            raise ValueError(f"cluster level {l + 1} is not nested within level {l}")
    order = np.lexsort(tuple(reversed(anc)))  # primary key: the top level
    new_low = np.empty(K, dtype=np.int64)
    new_low[order] = np.arange(K)
    lowest = new_low[low]
    # relabel every level by first appearance along the sorted lowest groups
    labels: list[np.ndarray] = []  # (K,) node of each sorted lowest group, per level
    for l in range(L):
        key = np.stack([a[order] for a in anc[: l + 1]])
        change = np.ones(K, dtype=bool)
        change[1:] = (key[:, 1:] != key[:, :-1]).any(axis=0)
        labels.append(np.cumsum(change) - 1)
    nk_sorted = np.bincount(lowest, minlength=K).astype(float)
    sizes = tuple(np.bincount(lab, weights=nk_sorted).astype(float) for lab in labels)
    parent: list[np.ndarray] = [np.zeros(sizes[0].size, dtype=np.int64)]
    starts: list[np.ndarray] = []
    for l in range(1, L):
        par = np.zeros(sizes[l].size, dtype=np.int64)
        par[labels[l]] = labels[l - 1]
        if not np.array_equal(par[labels[l]], labels[l - 1]):  # pragma: no cover - guarded above
            raise ValueError(f"cluster level {l + 1} is not nested within level {l}")
        parent.append(par)
        st = _run_starts(par)
        starts.append(st)
    row_starts = None
    if n and np.all(lowest[1:] >= lowest[:-1]):
        row_starts = _run_starts(lowest)
    moment, dof = _moment_coefficients(n, sizes, parent)
    return Layout(
        n=n,
        L=L,
        K=K,
        C=int(sizes[0].size),
        lowest=lowest,
        sizes=sizes,
        starts=tuple(starts),
        parent=tuple(parent),
        row_starts=row_starts,
        moment=moment,
        dof=dof,
    )


def _moment_coefficients(
    n: int, sizes: tuple[np.ndarray, ...], parent: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Expected sums of squares of a nested random-effects ANOVA (unbalanced).

    With ``SS_l = Σ_{g at l} n_g (ē_g - ē_{parent(g)})²`` (the grand mean as the
    parent of the top level), ``E[SS_l] = dof_l σ² + Σ_{m≥l} c_{lm} σ_m²`` with
    ``c_{lm} = Σ_{h at m} n_h² (1/n_{anc_l(h)} - 1/n_{anc_{l-1}(h)})`` and
    ``n_{anc_{-1}} = n`` (Searle, Casella & McCulloch 1992, ch. 5).
    """
    L = len(sizes)
    # ancestor index at each level of every node of level m
    anc: list[list[np.ndarray]] = []
    for m in range(L):
        row = [np.empty(0, dtype=np.int64)] * L
        cur = np.arange(sizes[m].size)
        row[m] = cur
        for l in range(m, 0, -1):
            cur = parent[l][cur]
            row[l - 1] = cur
        anc.append(row)
    c = np.zeros((L, L))
    for m in range(L):
        nh2 = sizes[m] ** 2
        for l in range(m + 1):
            inner = 1.0 / sizes[l][anc[m][l]]
            outer = 1.0 / sizes[l - 1][anc[m][l - 1]] if l > 0 else np.full(nh2.size, 1.0 / n)
            c[l, m] = float(np.sum(nh2 * (inner - outer)))
    G = [1] + [s.size for s in sizes]
    dof = np.array([G[l + 1] - G[l] for l in range(L)], dtype=float)
    return c, dof


# ---------------------------------------------------------------------- the data pass
@dataclass(frozen=True, eq=False)
class Stats:
    """Sufficient statistics of ``[X, y]`` for ``R`` replicates.

    ``W`` (R, q, q): centred within-lowest-group scatter; ``xbar`` (R, K, q):
    lowest-group means.  ``p = q - 1`` fixed-effect columns.
    """

    p: int
    W: np.ndarray
    xbar: np.ndarray

    def select(self, columns: Sequence[int]) -> Stats:
        """Statistics of a sub-model using the given columns of ``X`` (and ``y``)."""
        idx = np.append(np.asarray(columns, dtype=np.int64), self.p)
        return Stats(p=len(columns), W=self.W[:, idx][:, :, idx], xbar=self.xbar[..., idx])

    def take(self, rows: np.ndarray) -> Stats:
        """Replicates ``rows`` only."""
        return Stats(p=self.p, W=self.W[rows], xbar=self.xbar[rows])


def _sums(lay: Layout, A: np.ndarray) -> np.ndarray:
    """Sums of ``A`` (R, n, q) by lowest group -> (R, K, q)."""
    if lay.row_starts is not None:
        return np.add.reduceat(A, lay.row_starts, axis=1)
    R, n, q = A.shape
    flat = np.swapaxes(A, 1, 2).reshape(R * q, n)
    return np.swapaxes(_sums_shared(lay, flat).reshape(R, q, lay.K), 1, 2)


def _sums_shared(lay: Layout, A: np.ndarray) -> np.ndarray:
    """Sums of ``A`` (m, n) by lowest group -> (m, K), for many rows of data at once."""
    if lay.row_starts is not None:
        return np.add.reduceat(A, lay.row_starts, axis=1)
    m = A.shape[0]
    idx = (np.arange(m)[:, None] * lay.K + lay.lowest[None, :]).ravel()
    return np.bincount(idx, weights=A.ravel(), minlength=m * lay.K).reshape(m, lay.K)


def make_stats(lay: Layout, X: np.ndarray, Y: np.ndarray) -> Stats:
    """One O(n) pass: lowest-group means and the centred within-group scatter.

    ``X`` is ``(n, p)`` (shared by the replicates) or ``(R, n, p)``; ``Y`` is
    ``(n,)`` or ``(R, n)``.
    """
    Y = np.asarray(Y, dtype=float)
    if Y.ndim == 1:
        Y = Y[None, :]
    R = Y.shape[0]
    X = np.asarray(X, dtype=float)
    p = X.shape[-1]
    nk = lay.nk
    if X.ndim == 2:
        mx = (_sums_shared(lay, np.ascontiguousarray(X.T)) / nk).T  # (K, p)
        Dx = X - mx[lay.lowest]
        Wxx = Dx.T @ Dx
        my = _sums_shared(lay, Y) / nk  # (R, K)
        Wxy = Y @ Dx  # (R, p): Dx sums to zero within groups
        Dy = Y - my[:, lay.lowest]
        Wyy = np.einsum("rn,rn->r", Dy, Dy)
        W = np.empty((R, p + 1, p + 1))
        W[:, :p, :p] = Wxx
        W[:, :p, p] = Wxy
        W[:, p, :p] = Wxy
        W[:, p, p] = Wyy
        xbar = np.empty((R, lay.K, p + 1))
        xbar[:, :, :p] = mx[None]
        xbar[:, :, p] = my
    else:
        A = np.concatenate([X, Y[:, :, None]], axis=2)
        xbar = _sums(lay, A) / nk[None, :, None]
        D = A - xbar[:, lay.lowest]
        W = np.swapaxes(D, 1, 2) @ D
    return Stats(p=p, W=W, xbar=xbar)


# ---------------------------------------------------------------------- per-evaluation inputs
@dataclass(frozen=True, eq=False)
class Prepared:
    """What every evaluation reads (θ-free), on the scale the optimiser works on.

    ``means[l]`` (R, G_l, q) node means, ``delta[l]`` (R, G_l, q) deviation of
    each node's mean from its parent's (level 0: from zero) and ``outer``
    (R, K, q*q) the outer products ``δ_k δ_k'`` of the lowest level.
    """

    p: int
    W: np.ndarray
    means: tuple[np.ndarray, ...]
    delta: tuple[np.ndarray, ...]
    outer: np.ndarray

    def take(self, rows: np.ndarray) -> Prepared:
        """Replicates ``rows`` only."""
        return Prepared(
            p=self.p,
            W=self.W[rows],
            means=tuple(m[rows] for m in self.means),
            delta=tuple(d[rows] for d in self.delta),
            outer=self.outer[rows],
        )


def prepare(lay: Layout, W: np.ndarray, xbar: np.ndarray, p: int) -> Prepared:
    """Node means of every level, deviations from the parent and the lowest outer products."""
    L = lay.L
    means: list[np.ndarray] = [np.empty(0)] * L
    means[L - 1] = xbar
    for l in range(L - 2, -1, -1):
        child = means[l + 1] * lay.sizes[l + 1][None, :, None]
        means[l] = np.add.reduceat(child, lay.starts[l], axis=1) / lay.sizes[l][None, :, None]
    delta: list[np.ndarray] = [means[0]]
    for l in range(1, L):
        delta.append(means[l] - means[l - 1][:, lay.parent[l]])
    d = delta[-1]
    R, K, q = d.shape
    outer = (d[:, :, :, None] * d[:, :, None, :]).reshape(R, K, q * q)
    return Prepared(p=p, W=W, means=tuple(means), delta=tuple(delta), outer=outer)


def top_means(lay: Layout, st: Stats, column: int) -> np.ndarray:
    """Mean of column ``column`` of ``X`` in each top-level cluster (tree order), replicate 0.

    Row-weighted sums of the lowest-group means up the tree; a column that is
    constant within a cluster gets exactly that constant (sums of equal terms).
    """
    x = st.xbar[0, :, column] * lay.sizes[-1]
    for level in range(lay.L - 2, -1, -1):
        x = np.add.reduceat(x, lay.starts[level])
    return x / lay.sizes[0]


def within_sums_of_squares(lay: Layout, st: Stats) -> np.ndarray:
    """Each column's sum of squared deviations from its group means, per level (replicate 0).

    Row ``l`` (levels top first) holds ``Σ_i (a_i - z_{g_l(i)})²`` for every column of
    ``[X, y]``, with ``z_g`` the mean of group ``g`` of level ``l``; row ``L`` the
    deviations from the grand mean.  By the nested analysis of variance these are
    the within-lowest-group scatter plus the between-node sums below level ``l``,
    so they come from the sufficient statistics in O(groups):
    ``SS_l = W + Σ_{m > l} Σ_{c at m} n_c (z_c - z_{parent(c)})²``.
    """
    pr = prepare(lay, st.W[:1], st.xbar[:1], st.p)
    L = lay.L
    out = np.empty((L + 1, st.p + 1))
    acc = np.diagonal(st.W[0]).copy()
    out[L - 1] = acc
    for level in range(L - 1, -1, -1):
        if level > 0:
            dev = pr.delta[level][0]
        else:
            grand = (pr.means[0][0] * lay.sizes[0][:, None]).sum(axis=0) / lay.n
            dev = pr.means[0][0] - grand
        acc = acc + (dev**2 * lay.sizes[level][:, None]).sum(axis=0)
        out[level - 1 if level > 0 else L] = acc
    return out
