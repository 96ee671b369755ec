"""Statistical disclosure control for published tables.

Counts: small counts (1 to ``min_count − 1``; strict mode: 1 to 9) are primary
suppressions, shown as ``"c"``.  Complementary (secondary) suppression then makes
sure that no suppressed value can be recovered from the published row and column
totals: in every row and every column of the table *with its margins* (each is an
additive constraint "cells sum to the total"), the number of suppressed entries is
never exactly one.  Means and SDs of fewer than ``min_people_for_mean`` people are
suppressed.

Notes
-----
Complementary suppression is greedy: while some line (row or column, including
the total row and total column) holds exactly one suppressed entry, the smallest
unsuppressed entry of that line (cells before totals, non-zero before zero) is
suppressed as well.  No line with a single unknown is not enough on its own: a
suppressed entry that lies on no cycle of suppressed entries (a "bridge") can be
found by adding and subtracting line equations.  So the result is then checked by
an exact linear attack (rank of the line equations restricted to the suppressed
entries) and widened until no suppressed entry is determined.  Suppressions only
grow, so the loops end (Hundepool et al. 2012, ch. 4; ONS disclosure control
guidance).  Bounds from non-negativity are not part of the attack.

References
----------
Hundepool A et al. Statistical Disclosure Control. Wiley, 2012.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from trialkit._settings import Settings
from trialkit.errors import ReportError

__all__ = [
    "SUPPRESSED",
    "DisclosureSettings",
    "SuppressedTable",
    "recoverable",
    "recoverable_forms",
    "suppress_counts",
    "suppress_means",
]

SUPPRESSED = "c"


class DisclosureSettings(
    Settings,
    error=ReportError,
    path="analysis.disclosure",
    code="report.disclosure",
    summary="invalid disclosure settings",
):
    """Disclosure-control settings (from the protocol's ``[analysis.disclosure]``).

    ``threshold`` is the smallest count that is published: 5 by default (counts
    1–4 suppressed) and at least 10 in ``strict`` mode.  A count over fewer than
    ``min_las_for_totals`` LAs (an arm of a small trial) is treated as an LA-level
    count; in strict mode every count of people is.  Invalid values raise
    :class:`~trialkit.errors.ReportError` (codes ``report.disclosure.<field>``).
    """

    mode: Literal["standard", "strict"] = "standard"
    min_count: int = Field(default=5, ge=1)
    min_people_for_mean: int = Field(default=10, ge=1)
    min_las_for_totals: int = Field(default=6, ge=1)

    @property
    def threshold(self) -> int:
        return max(self.min_count, 10) if self.mode == "strict" else self.min_count

    @classmethod
    def from_mapping(cls, d: dict[str, object] | None) -> DisclosureSettings:
        """Build settings from the protocol's table (other keys are ignored)."""
        d = dict(d or {})
        return cls(**{k: v for k, v in d.items() if k in cls.model_fields})

    def describe(self) -> str:
        return (
            f"{self.mode} mode: "
            + (
                "every count of people"
                if self.mode == "strict"
                else f"every count of people over fewer than {self.min_las_for_totals} LAs"
            )
            + f" from 1 to {self.threshold - 1} is shown as '{SUPPRESSED}', and so is every share "
            "whose numerator or denominator is such a count; further counts are suppressed and "
            "shares coarsened until no suppressed value can be worked out from all the numbers "
            "published anywhere in the report (tables, figures, text and exports) taken together; "
            f"means and SDs of fewer than {self.min_people_for_mean} people are suppressed"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SuppressedTable:
    """A count table with its margins and suppression masks.

    ``values`` is the (r+1)×(c+1) integer array with row totals in the last column
    and column totals in the last row; ``primary`` and ``mask`` mark primary and
    all (primary + complementary) suppressions.
    """

    values: np.ndarray
    primary: np.ndarray
    mask: np.ndarray
    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]

    @property
    def n_primary(self) -> int:
        return int(self.primary.sum())

    @property
    def n_secondary(self) -> int:
        return int(self.mask.sum() - self.primary.sum())

    def to_frame(self, *, total_label: str = "Total") -> pd.DataFrame:
        """Display frame: suppressed entries as ``"c"``, the rest as integers (object)."""
        disp = np.where(self.mask, SUPPRESSED, self.values.astype(object))
        return pd.DataFrame(
            disp,
            index=[*self.row_labels, total_label],
            columns=[*self.col_labels, total_label],
        )

    def note(self) -> str:
        if not self.mask.any():
            return "No values needed suppression."
        return (
            f"{self.n_primary} small count(s) suppressed ('{SUPPRESSED}') and "
            f"{self.n_secondary} further value(s) suppressed so that they cannot be recovered "
            "from the totals."
        )


def suppress_counts(
    counts: pd.DataFrame | np.ndarray,
    threshold: int = 5,
    *,
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
) -> SuppressedTable:
    """Primary and complementary suppression of a two-way count table with margins.

    Parameters
    ----------
    counts : DataFrame or 2-D array of non-negative integers
        Interior cells (rows × categories); margins are computed here.
    threshold : int
        Counts with ``1 <= n < threshold`` are suppressed (zeros are published).

    Returns
    -------
    SuppressedTable
    """
    if isinstance(counts, pd.DataFrame):
        row_labels = row_labels or [str(x) for x in counts.index]
        col_labels = col_labels or [str(x) for x in counts.columns]
        arr = counts.to_numpy(dtype=np.int64)
    else:
        arr = np.asarray(counts, dtype=np.int64)
    r, c = arr.shape
    row_labels = row_labels or [str(i) for i in range(r)]
    col_labels = col_labels or [str(j) for j in range(c)]
    full = np.zeros((r + 1, c + 1), dtype=np.int64)
    full[:r, :c] = arr
    full[:r, c] = arr.sum(axis=1)
    full[r, :c] = arr.sum(axis=0)
    full[r, c] = arr.sum()
    primary = (full >= 1) & (full < threshold)
    mask = primary.copy()
    lines: list[list[tuple[int, int]]] = [[(i, j) for j in range(c + 1)] for i in range(r + 1)]
    lines += [[(i, j) for i in range(r + 1)] for j in range(c + 1)]

    def cost(i: int, j: int) -> tuple[int, int, int, int, int]:
        margin = int(i == r) + int(j == c)
        v = int(full[i, j])
        return (margin, int(v == 0), v, i, j)

    def close_lines() -> None:
        changed = True
        while changed:
            changed = False
            for line in lines:
                hidden = [ij for ij in line if mask[ij]]
                if len(hidden) == 1:
                    free = [ij for ij in line if not mask[ij]]
                    if not free:
                        continue
                    pick = min(free, key=lambda ij: cost(*ij))
                    mask[pick] = True
                    changed = True

    close_lines()
    # A line with two or more unknowns can still be solved by combining lines (a suppressed
    # entry that lies on no cycle of unknowns). Widen the suppression until the exact
    # linear attack of :func:`recoverable` finds nothing.
    while True:
        exposed = np.argwhere(_determined(full, mask))
        if len(exposed) == 0:
            break
        i, j = (int(x) for x in exposed[0])
        free = [(i, jj) for jj in range(c + 1) if not mask[i, jj]]
        free += [(ii, j) for ii in range(r + 1) if not mask[ii, j]]
        if not free:
            free = [(int(a), int(b)) for a, b in np.argwhere(~mask)]
        mask[min(free, key=lambda ij: cost(*ij))] = True
        close_lines()
    return SuppressedTable(
        values=full,
        primary=primary,
        mask=mask,
        row_labels=tuple(row_labels),
        col_labels=tuple(col_labels),
    )


def _determined(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Suppressed entries fixed by the line equations of the table with its margins.

    Every row and column of the (r+1)×(c+1) table says "interior entries sum to the
    margin entry". With the published entries moved to the right-hand side, a
    suppressed entry ``k`` is determined exactly when the unit vector ``e_k`` lies in
    the row space of the equations restricted to the suppressed entries, i.e. when
    dropping its column lowers the rank by one.
    """
    r1, c1 = values.shape
    unknown = [(int(i), int(j)) for i, j in np.argwhere(mask)]
    out = np.zeros_like(mask, dtype=bool)
    if not unknown:
        return out
    rows = []
    for i in range(r1):  # row i: sum of its interior entries minus its margin entry
        rows.append({(i, j): 1.0 for j in range(c1 - 1)} | {(i, c1 - 1): -1.0})
    for j in range(c1):
        rows.append({(i, j): 1.0 for i in range(r1 - 1)} | {(r1 - 1, j): -1.0})
    A = np.array([[eq.get(u, 0.0) for u in unknown] for eq in rows])
    full_rank = np.linalg.matrix_rank(A)
    for k, u in enumerate(unknown):
        if np.linalg.matrix_rank(np.delete(A, k, axis=1)) < full_rank:
            out[u] = True
    return out


def recoverable(table: SuppressedTable) -> np.ndarray:
    """Suppressed entries an attacker can recover exactly from the published table.

    The attacker knows every published entry and that each row and column (margins
    included) adds up; any linear combination of those equations may be used, not
    only lines with a single unknown. Returns the mask of suppressed entries that are
    determined (all False when the suppression is safe). Bounds from non-negativity
    (interval attacks) are not considered.
    """
    return _determined(table.values, table.mask)


_PRIME = 2_147_483_647  # 2^31 - 1: products of two residues fit in int64


@dataclass(frozen=True, slots=True)
class _RowSpace:
    """Reduced row echelon form of integer forms over GF(p), with the row operations."""

    rows: np.ndarray  # (r, k) reduced rows
    pivots: tuple[int, ...]
    combos: np.ndarray  # (r, m): rows[i] = combos[i] @ published (mod p)

    def coefficients(self, forms: np.ndarray) -> np.ndarray:
        return np.mod(np.asarray(forms, dtype=np.int64), _PRIME)[:, list(self.pivots)]

    def residual(self, forms: np.ndarray) -> np.ndarray:
        h = np.mod(np.asarray(forms, dtype=np.int64), _PRIME)
        for i, c in enumerate(self.pivots):
            f = h[:, c].copy()
            if f.any():
                h = np.mod(h - np.mod(np.outer(f, self.rows[i]), _PRIME), _PRIME)
        return h

    def combination(self, form: np.ndarray) -> np.ndarray:
        """Multipliers ``y`` (mod p) of the published forms that add up to ``form``."""
        coef = self.coefficients(form.reshape(1, -1))[0]
        y = np.zeros(self.combos.shape[1], dtype=np.int64)
        for i, c in enumerate(coef):
            if c:
                y = np.mod(y + np.mod(int(c) * self.combos[i], _PRIME), _PRIME)
        return y


def _row_space(published: np.ndarray) -> _RowSpace:
    """Gauss–Jordan elimination of integer forms modulo a large prime.

    Exact integer arithmetic (no floating-point rank tolerance and no BLAS): the
    forms have small integer coefficients, so their rank modulo ``2^31 − 1`` is
    their rank over the rationals except with negligible probability.
    """
    a = np.mod(np.asarray(published, dtype=np.int64), _PRIME)
    m, k = a.shape
    t = np.eye(m, dtype=np.int64)
    pivots: list[int] = []
    r = 0
    for c in range(k):
        if r == m:
            break
        nz = np.flatnonzero(a[r:, c])
        if not len(nz):
            continue
        i = r + int(nz[0])
        if i != r:
            a[[r, i]] = a[[i, r]]
            t[[r, i]] = t[[i, r]]
        inv = pow(int(a[r, c]), _PRIME - 2, _PRIME)
        a[r] = np.mod(a[r] * inv, _PRIME)
        t[r] = np.mod(t[r] * inv, _PRIME)
        f = a[:, c].copy()
        f[r] = 0
        rows = np.flatnonzero(f)
        if len(rows):
            a[rows] = np.mod(a[rows] - np.mod(np.outer(f[rows], a[r]), _PRIME), _PRIME)
            t[rows] = np.mod(t[rows] - np.mod(np.outer(f[rows], t[r]), _PRIME), _PRIME)
        pivots.append(c)
        r += 1
    return _RowSpace(rows=a[:r], pivots=tuple(pivots), combos=t[:r])


def recoverable_forms(published: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Which hidden linear forms an attacker can compute from the published ones.

    Each row of ``published`` is a linear form with integer coefficients over the
    same variables (atoms) whose value is published: the attacker may add and
    subtract them in any combination.  A hidden form ``h`` is recoverable exactly
    when it lies in their row space (``rank [P; h] = rank P``).  This is the attack
    of :func:`recoverable` generalised from one table's row and column equations
    to every published number at once (Hundepool et al. 2012, sec. 4.3), computed
    by exact elimination.  Bounds from non-negativity are not part of the attack.

    Parameters
    ----------
    published : (m, k) integer array
        Coefficients of the published forms (m may be 0).
    hidden : (h, k) integer array
        Coefficients of the forms to protect.

    Returns
    -------
    (h,) bool array, True where the hidden form is determined.
    """
    hidden = np.atleast_2d(np.asarray(hidden))
    if hidden.size == 0:
        return np.zeros(hidden.shape[0], dtype=bool)
    published = np.asarray(published).reshape(-1, hidden.shape[1])
    if published.shape[0] == 0:
        return ~np.any(hidden != 0, axis=1)
    return ~np.any(_row_space(published).residual(hidden) != 0, axis=1)


def suppress_means(
    frame: pd.DataFrame,
    *,
    n_column: str = "n",
    value_columns: tuple[str, ...] = ("mean", "sd"),
    min_people: int = 10,
) -> tuple[pd.DataFrame, int]:
    """Replace means/SDs based on fewer than ``min_people`` people with ``"c"``.

    Returns the display frame (object dtype for the value columns) and the number
    of rows suppressed.
    """
    out = frame.copy()
    n = pd.to_numeric(out[n_column], errors="coerce").fillna(0).to_numpy()
    small = (n > 0) & (n < min_people)
    for col in value_columns:
        if col in out.columns:
            out[col] = out[col].astype(object)
            out.loc[small, col] = SUPPRESSED
    return out, int(small.sum())
