"""The space of two-arm allocations: enumeration, sampling, scoring and selection.

An allocation of ``n <= 63`` clusters (canonical order) is a 64-bit code whose bit
``i`` is set when cluster ``i`` is in the first arm ("treated").  Scores use the
Raab-Butcher sum form on standardised columns,

    l2(A) = sum_k w_k (sum_{i in A} z_ik)^2,   l1(A) = sum_k w_k |sum_{i in A} z_ik|,

which, with n_T fixed, is cvcrand's score times the constant (1/n_T + 1/n_C)^2
(l2) or (1/n_T + 1/n_C) (l1), so allocations rank identically.

Unstratified enumeration is meet-in-the-middle: the clusters are split into two
halves, the sums of every subset of each half are computed once, and the scores
of all pairs (a subset of size a from the first half with one of size n_T - a
from the second) are evaluated block by block, for l2 with one matrix product
``q_a + q_b + 2 (S_a w) S_b'``.  Memory is bounded by the block size plus 16 bytes
(score and code) per allocation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

MAX_CLUSTERS = 63
_BLOCK = 1 << 21  # elements per scoring block


def bits_of(codes: np.ndarray, n: int) -> np.ndarray:
    """Return the (m, n) 0/1 uint8 matrix of ``codes``."""
    codes = np.asarray(codes, dtype=np.uint64)
    shifts = np.arange(n, dtype=np.uint64)
    return ((codes[:, None] >> shifts[None, :]) & np.uint64(1)).astype(np.uint8)


def codes_of(bits: np.ndarray) -> np.ndarray:
    """Inverse of :func:`bits_of`."""
    n = bits.shape[1]
    weights = np.left_shift(np.uint64(1), np.arange(n, dtype=np.uint64))
    return (bits.astype(np.uint64) * weights[None, :]).sum(axis=1, dtype=np.uint64)


def quantise(scores: np.ndarray, reference: float) -> np.ndarray:
    """Round scores to 12 significant digits relative to ``reference``.

    Mathematically equal scores (an allocation and its mirror) can differ in the
    last bits of floating point; rounding makes ties exact and the ranking the
    same on every platform.
    """
    ref = max(abs(reference), 1e-300)
    decimals = 12 - math.ceil(math.log10(ref))
    return np.round(scores, decimals)


def score_sums(sums: np.ndarray, w: np.ndarray, metric: str) -> np.ndarray:
    """Score rows of per-column sums."""
    if metric == "l2":
        return (sums * sums) @ w
    return np.abs(sums) @ w


def score_codes(
    codes: np.ndarray, z: np.ndarray, w: np.ndarray, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and per-column sums of the given allocation codes (chunked)."""
    n, k = z.shape
    out = np.empty(len(codes))
    sums_all = np.empty((len(codes), k))
    step = max(1, _BLOCK // max(n, 1))
    for start in range(0, len(codes), step):
        b = bits_of(codes[start : start + step], n).astype(float)
        s = b @ z
        sums_all[start : start + step] = s
        out[start : start + step] = score_sums(s, w, metric)
    return out, sums_all


def _half_table(z: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h = z.shape[0]
    codes = np.arange(1 << h, dtype=np.uint64)
    bits = bits_of(codes, h)
    sums = bits.astype(float) @ z
    return codes << np.uint64(offset), bits.sum(axis=1), sums


def enumerate_scores(
    z: np.ndarray,
    w: np.ndarray,
    n_treated: int,
    metric: str,
    limits: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Score every allocation of ``n_treated`` of ``n`` clusters.

    Returns codes (uint64), raw scores and, when ``limits`` is given (one
    bound per column on |sum_k|), a boolean feasibility vector.
    """
    n = z.shape[0]
    h = n // 2
    ca, pa, sa = _half_table(z[:h], 0)
    cb, pb, sb = _half_table(z[h:], h)
    wa = sa * w
    qa = score_sums(sa, w, metric)
    qb = score_sums(sb, w, metric)
    codes_out: list[np.ndarray] = []
    scores_out: list[np.ndarray] = []
    feas_out: list[np.ndarray] = []
    k = z.shape[1]
    for a in range(max(0, n_treated - (n - h)), min(h, n_treated) + 1):
        ia = np.flatnonzero(pa == a)
        ib = np.flatnonzero(pb == n_treated - a)
        if len(ia) == 0 or len(ib) == 0:
            continue
        sbb = sb[ib]
        per_row = len(ib) * (k if (metric == "l1" or limits is not None) else 1)
        rows = max(1, _BLOCK // max(per_row, 1))
        for start in range(0, len(ia), rows):
            blk = ia[start : start + rows]
            if metric == "l2" and limits is None:
                sc = qa[blk][:, None] + qb[ib][None, :] + 2.0 * (wa[blk] @ sbb.T)
            else:
                s3 = sa[blk][:, None, :] + sbb[None, :, :]
                sc = score_sums(s3.reshape(-1, k), w, metric).reshape(len(blk), len(ib))
                if limits is not None:
                    feas_out.append(np.all(np.abs(s3) <= limits, axis=2).ravel())
            scores_out.append(sc.ravel())
            codes_out.append((ca[blk][:, None] | cb[ib][None, :]).ravel())
    codes = np.concatenate(codes_out)
    scores = np.concatenate(scores_out)
    feas = np.concatenate(feas_out) if limits is not None else None
    return codes, scores, feas


def stratified_sizes(
    strata_sizes: Sequence[int], n_treated_total: int | None, allowed: Sequence[Sequence[int]]
) -> list[tuple[int, ...]]:
    """Every vector of per-stratum treated counts (one of ``allowed[s]``) with the right total."""
    combos: list[tuple[int, ...]] = [()]
    for opts in allowed:
        combos = [c + (t,) for c in combos for t in opts]
    if n_treated_total is not None:
        combos = [c for c in combos if sum(c) == n_treated_total]
    return combos


def group_positions(labels: Sequence[str] | None, n: int) -> list[np.ndarray]:
    """Positions of each stratum/pair label (sorted labels); one group of ``n`` when unlabelled."""
    if labels is None:
        return [np.arange(n)]
    return [np.array([i for i, g in enumerate(labels) if g == lab]) for lab in sorted(set(labels))]


def count_stratified(groups: Sequence[np.ndarray], combos: Sequence[tuple[int, ...]]) -> int:
    """Number of allocations in a stratified space."""
    return sum(
        math.prod(math.comb(len(g), t) for g, t in zip(groups, c, strict=True)) for c in combos
    )


def _subsets(positions: np.ndarray, size: int) -> np.ndarray:
    """Codes of every ``size``-subset of ``positions`` (lexicographic order)."""
    from itertools import combinations

    bit = np.left_shift(np.uint64(1), positions.astype(np.uint64))
    if size == 0:
        return np.zeros(1, dtype=np.uint64)
    idx = np.array(list(combinations(range(len(positions)), size)), dtype=np.intp)
    return np.bitwise_or.reduce(bit[idx], axis=1)


def enumerate_stratified(
    groups: Sequence[np.ndarray], combos: Sequence[tuple[int, ...]]
) -> np.ndarray:
    """Codes of every allocation in a stratified space."""
    out: list[np.ndarray] = []
    for combo in combos:
        acc = np.zeros(1, dtype=np.uint64)
        for g, t in zip(groups, combo, strict=True):
            sub = _subsets(g, t)
            acc = (acc[:, None] | sub[None, :]).ravel()
        out.append(acc)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)


def sample_codes(
    rng: np.random.Generator,
    groups: Sequence[np.ndarray],
    allowed: Sequence[Sequence[int]],
    n_treated_total: int,
    n: int,
    size: int,
) -> np.ndarray:
    """Draw ``size`` distinct allocations uniformly (order of first draw kept).

    Within each stratum a treated count ``t`` is drawn with probability
    proportional to C(n_s, t), then a uniformly random subset; draws whose total
    is not ``n_treated_total`` are rejected, which makes the draw uniform over
    the space.  Duplicates are discarded, keeping the first occurrence.
    """
    kept = np.zeros(0, dtype=np.uint64)
    batch = max(1024, size)
    for _ in range(1000):
        bits = np.zeros((batch, n), dtype=np.uint8)
        total = np.zeros(batch, dtype=np.int64)
        for g, opts in zip(groups, allowed, strict=True):
            p = np.array([math.comb(len(g), t) for t in opts], dtype=float)
            t = np.asarray(opts)[rng.choice(len(opts), size=batch, p=p / p.sum())]
            order = np.argsort(rng.random((batch, len(g))), axis=1)
            rank = np.argsort(order, axis=1)
            bits[:, g] = (rank < t[:, None]).astype(np.uint8)
            total += t
        codes = codes_of(bits[total == n_treated_total])
        allc = np.concatenate([kept, codes])
        _, first = np.unique(allc, return_index=True)
        kept = allc[np.sort(first)]
        if len(kept) >= size:
            return kept[:size]
    return kept  # pragma: no cover - only when the space is nearly exhausted


def select(
    codes: np.ndarray,
    scores: np.ndarray,
    *,
    keep: int | None,
    cutoff: float | None,
    feasible: np.ndarray | None,
) -> tuple[np.ndarray, float, int]:
    """Indices of kept allocations ordered by (score, code); the cutoff score; target count.

    Rule: with a target ``m`` (``keep``, or ``round(cutoff * N)`` with halves to even
    as in R and cvcrand, but at least 1)
    every allocation whose score is at most the m-th smallest score is kept, so
    allocations tied at the cutoff are all kept (the set is never split, and
    mirror pairs stay together).  With per-covariate limits every feasible
    allocation is kept.
    """
    n_all = len(scores)
    if feasible is not None:
        idx = np.flatnonzero(feasible)
        target = len(idx)
        cut = float(scores[idx].max()) if len(idx) else float("nan")
    else:
        if keep is not None:
            target = min(int(keep), n_all)
        else:
            assert cutoff is not None
            target = max(1, min(n_all, round(cutoff * n_all)))
        cut = float(np.partition(scores, target - 1)[target - 1])
        idx = np.flatnonzero(scores <= cut)
    order = np.lexsort((codes[idx], scores[idx]))
    return idx[order], cut, target


def pair_together(codes: np.ndarray, n: int) -> np.ndarray:
    """(n, n) share of allocations putting clusters i and j in the same arm."""
    m = len(codes)
    together = np.zeros((n, n))
    step = max(1, _BLOCK // max(n, 1))
    for start in range(0, m, step):
        b = bits_of(codes[start : start + step], n).astype(float)
        c = 1.0 - b
        together += b.T @ b + c.T @ c
    return together / m


def iter_chunks(m: int, n: int) -> Iterator[slice]:
    step = max(1, _BLOCK // max(n, 1))
    for start in range(0, m, step):
        yield slice(start, min(m, start + step))


def design_together(
    groups: Sequence[np.ndarray], combos: Sequence[tuple[int, ...]], n: int
) -> np.ndarray:
    """(n, n) share of the whole stratified space putting clusters i and j in the same arm.

    Exact: a mixture over the admissible vectors of treated counts, each weighted
    by its number of allocations; within a vector, strata are independent
    uniformly drawn subsets.
    """
    weights = [
        math.prod(math.comb(len(g), t) for g, t in zip(groups, c, strict=True)) for c in combos
    ]
    total = sum(weights)
    out = np.zeros((n, n))
    for combo, wt in zip(combos, weights, strict=True):
        p = np.zeros(n)
        for g, t in zip(groups, combo, strict=True):
            p[g] = t / len(g)
        share = np.outer(p, p) + np.outer(1 - p, 1 - p)
        for g, t in zip(groups, combo, strict=True):
            m = len(g)
            within = 1.0 if m < 2 else (t * (t - 1) + (m - t) * (m - t - 1)) / (m * (m - 1))
            share[np.ix_(g, g)] = within
        out += (wt / total) * share
    np.fill_diagonal(out, 1.0)
    return out
