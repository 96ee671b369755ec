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
suppressed as well.  Every added suppression only increases the count in its
lines, so the loop ends; on exit no line has exactly one unknown, so solving the
line equations cannot start and no suppressed value is recoverable from the
totals (Hundepool et al. 2012, ch. 4; ONS disclosure control guidance).

References
----------
Hundepool A et al. Statistical Disclosure Control. Wiley, 2012.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "SUPPRESSED",
    "DisclosureSettings",
    "SuppressedTable",
    "recoverable",
    "suppress_counts",
    "suppress_means",
]

SUPPRESSED = "c"


@dataclass(frozen=True, slots=True, kw_only=True)
class DisclosureSettings:
    """Disclosure-control settings (from the protocol's ``[analysis.disclosure]``).

    ``threshold`` is the smallest count that is published: 5 by default (counts
    1–4 suppressed) and at least 10 in ``strict`` mode.
    """

    mode: str = "standard"
    min_count: int = 5
    min_people_for_mean: int = 10

    @property
    def threshold(self) -> int:
        return max(self.min_count, 10) if self.mode == "strict" else self.min_count

    @classmethod
    def from_mapping(cls, d: dict[str, object] | None) -> DisclosureSettings:
        d = dict(d or {})
        return cls(
            mode=str(d.get("mode", "standard")),
            min_count=int(d.get("min_count", 5)),  # type: ignore[call-overload]
            min_people_for_mean=int(d.get("min_people_for_mean", 10)),  # type: ignore[call-overload]
        )

    def describe(self) -> str:
        return (
            f"{self.mode} mode: LA-level counts from 1 to {self.threshold - 1} are shown as "
            f"'{SUPPRESSED}', with complementary suppression so that no suppressed value can be "
            f"recovered from row or column totals; means and SDs of fewer than "
            f"{self.min_people_for_mean} people are suppressed"
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
    return SuppressedTable(
        values=full,
        primary=primary,
        mask=mask,
        row_labels=tuple(row_labels),
        col_labels=tuple(col_labels),
    )


def recoverable(table: SuppressedTable) -> np.ndarray:
    """Entries an attacker can recover from the published values and the line totals.

    Repeatedly solves any row or column (margins included) with exactly one unknown
    entry.  Returns the mask of suppressed entries that become known (all False when
    the suppression is safe).
    """
    known = ~table.mask
    r1, c1 = table.values.shape
    lines = [[(i, j) for j in range(c1)] for i in range(r1)]
    lines += [[(i, j) for i in range(r1)] for j in range(c1)]
    progress = True
    while progress:
        progress = False
        for line in lines:
            unknown = [ij for ij in line if not known[ij]]
            if len(unknown) == 1:
                known[unknown[0]] = True
                progress = True
    return table.mask & known


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
