"""Model frames: from a data frame to the arrays every analysis method uses.

:func:`build_model_frame` turns a :class:`pandas.DataFrame` and column names
into a frozen :class:`ModelFrame`: the outcome vector, the fixed-effects design
matrix (intercept, treatment indicator, covariates with categorical ones
dummy-coded), integer cluster codes for each nesting level, the rows excluded
and why, and a hash of the data used.  Every analysis method (mixed model,
cluster-robust OLS, cluster-level analyses, GLMM, GEE) starts from it.

Coding rules
------------
* **Missing values**: complete-case.  A row is excluded when the outcome, the
  treatment, a covariate or a cluster id is missing; each excluded row is
  counted once, under the first missing column in the order outcome,
  treatment, covariates, clusters (reasons ``"missing outcome"``,
  ``"missing treatment"``, ``"missing covariate <name>"``,
  ``"missing cluster <name>"``).
* **Treatment**: a numeric or boolean column holding only 0 and 1 is used as
  it is (term name = the column name).  Otherwise the column must hold exactly
  two labels and ``treatment_level`` names the treated one; the indicator is
  1 for that label (term name ``"<column>[<label>]"``).
* **Categorical covariates** (string, object, boolean or ``category`` columns)
  are dummy-coded by :mod:`trialkit.models.coding`: the first level is the
  reference (the first category of a ``category`` column, otherwise the first
  level in sorted order).  Terms are named ``"<column>[<level>]"``.  Numeric
  covariates enter as they are.
* **Clusters** are listed from the top of the nesting (``("la", "keyworker")``).
  Ids at a lower level are made unique within their parent, so keyworker
  ``"1"`` in two LAs are two keyworkers.  Codes are ``0 .. G-1`` in sorted
  order of the (parent, id) keys.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from trialkit.errors import ModelSpecError, Problem
from trialkit.models.coding import code_factorised, is_categorical, order_levels
from trialkit.models.terms import Exclusion

__all__ = ["ModelFrame", "build_model_frame"]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ModelFrame:
    """Arrays for fitting one model (complete cases only).

    Attributes
    ----------
    outcome, treatment : str
        Column names.
    covariates, clusters : tuple of str
        Covariate columns and cluster columns (top of the nesting first).
    y : ndarray, shape (n,)
        Outcome.
    X : ndarray, shape (n, p)
        Fixed-effects design: intercept, treatment indicator, covariate columns.
    column_names : tuple of str
        Names of the columns of ``X`` (``"(Intercept)"`` first).
    treatment_index : int
        Column of ``X`` holding the treatment indicator (always 1).
    treatment_term : str
        Its name.
    treatment_labels : tuple of str
        ``(control, treated)`` labels as found in the data.
    cluster_codes : tuple of ndarray
        One int64 array of length n per level, top first, codes ``0..G-1``,
        nested ids made unique within their parent.
    n_clusters : tuple of int
        Number of clusters per level.
    cluster_level_columns : tuple of bool
        For each column of ``X``: constant within every top-level cluster
        (the intercept and the treatment indicator in a cluster randomised trial).
    exclusions : tuple of Exclusion
        Rows excluded and why.
    n_input : int
        Rows in the input frame.
    data_hash : str
        SHA-256 of the used columns of the input (before exclusions).
    formula : str
        An R-style formula describing the model (documentation only).
    """

    outcome: str
    treatment: str
    covariates: tuple[str, ...]
    clusters: tuple[str, ...]
    y: np.ndarray
    X: np.ndarray
    column_names: tuple[str, ...]
    treatment_index: int
    treatment_term: str
    treatment_labels: tuple[str, str]
    cluster_codes: tuple[np.ndarray, ...]
    n_clusters: tuple[int, ...]
    cluster_level_columns: tuple[bool, ...]
    exclusions: tuple[Exclusion, ...]
    n_input: int
    data_hash: str
    formula: str

    @property
    def n_obs(self) -> int:
        """Number of rows used."""
        return int(self.y.shape[0])

    @property
    def n_excluded(self) -> int:
        """Number of rows excluded."""
        return int(sum(e.n_rows for e in self.exclusions))

    @property
    def n_clusters_by_name(self) -> dict[str, int]:
        """Number of clusters keyed by cluster column name."""
        return dict(zip(self.clusters, self.n_clusters, strict=True))

    def with_outcome(self, y: np.ndarray) -> ModelFrame:
        """Copy with another outcome vector (same rows), e.g. for simulation."""
        y = np.asarray(y, dtype=float)
        if y.shape != self.y.shape:
            raise ValueError(f"y must have shape {self.y.shape}; got {y.shape}")
        return _replace(self, y=y)


def _replace(frame: ModelFrame, **changes: object) -> ModelFrame:
    import dataclasses

    return dataclasses.replace(frame, **changes)  # type: ignore[arg-type]


_FORMATTED_NUMBER = re.compile(r"\s*[-+]?\d{1,3}(,\d{3})+(\.\d+)?\s*$")
_PLAIN_NUMBER = re.compile(r"\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def _refuse_formatted_numbers(values: Sequence[object], name: str) -> None:
    """Refuse a text covariate whose values are all numbers, some with thousands separators.

    A spreadsheet's ``1,412`` is read as text; coding it as a category (one column
    per LA) would silently change the model, so it is an input error with the fix.
    ``values`` are the distinct values in order of first appearance: the same
    verdict and example as checking every row, at the cost of the distinct values.
    """
    txt = [str(v) for v in values]
    formatted = [_FORMATTED_NUMBER.match(t) is not None for t in txt]
    if any(formatted) and all(
        f or _PLAIN_NUMBER.match(t) is not None for f, t in zip(formatted, txt, strict=True)
    ):
        example = txt[formatted.index(True)]
        raise _fail(
            "a numeric covariate written with thousands separators",
            "fit.covariate_formatted_number",
            f"column {name}",
            f"covariate `{name}` must be numbers without thousands separators; got {example!r}.",
            "re-export the column unformatted (e.g. 1412, not 1,412), or remove the commas.",
        )


class _Column:
    """One used column of the input, read once.

    ``values``: the numbers of a numeric (or boolean) column with a numpy dtype,
    else ``None``; ``missing``: the missing mask (``None`` when the dtype cannot
    hold a missing value); codes and distinct values (:func:`pandas.factorize`,
    sorted for cluster columns) are computed when first asked for.  Methods take
    ``rows``, the mask of complete rows (``None``: every row).
    """

    def __init__(self, series: pd.Series, *, sort: bool) -> None:
        self.series = series
        self.dtype = series.dtype
        self.sort = sort
        plain = isinstance(self.dtype, np.dtype) and self.dtype.kind in "biuf"
        if plain:  # the answers of the pandas dtype tests below, without their cost
            self.categorical = self.dtype.kind == "b"
            self.numeric = True
            is_bool = self.dtype.kind == "b"
        else:
            self.categorical = is_categorical(series)
            is_bool = pd.api.types.is_bool_dtype(series)
            self.numeric = pd.api.types.is_numeric_dtype(series) or is_bool
        is_category = isinstance(self.dtype, pd.CategoricalDtype)
        self.declared = list(series.cat.categories) if is_category else None
        self.check_formatted = not (is_bool or is_category)
        self.values: np.ndarray | None = series.to_numpy() if plain else None
        if self.values is not None and self.dtype.kind == "f":
            self.missing: np.ndarray | None = np.isnan(self.values)
        elif plain:
            self.missing = None
        else:
            self.missing = series.isna().to_numpy(dtype=bool)
        self._codes: np.ndarray | None = None
        self._uniques: Any = None

    def _factorise(self) -> None:
        """Codes and distinct values, as :func:`pandas.factorize` gives them.

        Integer columns with a compact range (cluster ids) are coded by counting
        (O(n), sorted); pyarrow strings by Arrow's dictionary encoding (first
        appearance, sorted afterwards for clusters); anything else by pandas.
        """
        values = self.values
        if values is not None and values.dtype.kind in "iu" and self.sort and values.size:
            lo = int(values.min())
            span = int(values.max()) - lo + 1
            if span <= 4 * values.size + 1024:
                shifted = values - lo
                present = np.bincount(shifted, minlength=span) > 0
                remap = np.cumsum(present) - 1
                self._codes = remap[shifted].astype(np.int64, copy=False)
                self._uniques = (np.flatnonzero(present) + lo).astype(values.dtype)
                return
        arrow = getattr(self.series.array, "_pa_array", None)
        if arrow is not None and (
            pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)
        ):
            encoded = pc.dictionary_encode(arrow).combine_chunks()
            codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
            uniques = np.array(encoded.dictionary.to_pylist(), dtype=object)
            codes = codes.astype(np.int64)
            if self.sort and uniques.size:
                order = np.argsort(uniques, kind="stable")
                rank = np.empty(order.size, dtype=np.int64)
                rank[order] = np.arange(order.size)
                codes = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)
                uniques = uniques[order]
            self._codes = codes
            self._uniques = uniques
            return
        pd_codes, pd_uniques = pd.factorize(self.series, sort=self.sort)
        self._codes = pd_codes.astype(np.int64, copy=False)
        self._uniques = pd_uniques

    @property
    def codes(self) -> np.ndarray:
        """Position of each row's value among :attr:`uniques` (``-1``: missing)."""
        if self._codes is None:
            self._factorise()
        assert self._codes is not None
        return self._codes

    @property
    def uniques(self) -> Any:
        """Distinct non-missing values (sorted for cluster columns)."""
        if self._codes is None:
            self._factorise()
        return self._uniques

    def kept_codes(self, rows: np.ndarray | None) -> np.ndarray:
        """:attr:`codes` of the complete rows."""
        return self.codes if rows is None else self.codes[rows]

    def numbers(self, rows: np.ndarray | None) -> np.ndarray:
        """The complete rows as floats (numeric columns only)."""
        if self.values is None:
            series = self.series if rows is None else self.series[rows]
            return series.to_numpy(dtype=float)
        kept = self.values if rows is None else self.values[rows]
        return kept.astype(float, copy=False)

    def levels(self, rows: np.ndarray | None) -> list[object]:
        """Distinct values of the complete rows in coding order (:func:`order_levels`)."""
        if self.values is not None:
            kept = self.values if rows is None else self.values[rows]
            return order_levels(np.unique(kept).tolist(), self.declared)
        return order_levels(self.first_seen(rows), self.declared)

    def first_seen(self, rows: np.ndarray | None) -> list[object]:
        """Distinct values of the complete rows, in order of first appearance."""
        kept = self.kept_codes(rows)
        present, first = np.unique(kept[kept >= 0], return_index=True)
        order = present[np.argsort(first, kind="stable")]
        return list(self.uniques.take(order).tolist())

    def indicator(self, value: object, rows: np.ndarray | None) -> np.ndarray:
        """1.0 where a complete row holds ``value``, else 0.0."""
        if self.values is not None:
            kept = self.values if rows is None else self.values[rows]
            return (kept == value).astype(float)
        position = next(i for i, v in enumerate(self.uniques) if v == value)
        return (self.kept_codes(rows) == position).astype(float)


def _read_column(series: pd.Series, *, sort: bool) -> _Column:
    return _Column(series, sort=sort)


def _hash_columns(used: Sequence[str], cols: dict[str, _Column]) -> str:
    """SHA-256 of the used columns (names, dtypes and values in row order)."""
    h = hashlib.sha256()
    h.update(repr([(c, str(cols[c].dtype)) for c in used]).encode())
    for c in used:
        col = cols[c]
        if col.values is not None:
            h.update(np.ascontiguousarray(col.values).tobytes())
        else:
            h.update(col.codes.tobytes())
            h.update(repr(list(col.uniques)).encode())
    return h.hexdigest()


def _dense_sorted(codes: np.ndarray, size: int) -> np.ndarray:
    """Codes ``0 .. G-1`` keeping the order of ``codes`` (non-negative, below ``size``)."""
    if size <= 4 * codes.shape[0] + 1024:
        present = np.bincount(codes, minlength=size) > 0
        remap = np.cumsum(present) - 1
        return remap[codes].astype(np.int64, copy=False)
    return np.unique(codes, return_inverse=True)[1].astype(np.int64).ravel()


def _clearly_full_rank(X: np.ndarray, scale: np.ndarray) -> bool:
    """Whether the scaled design is far from rank deficiency (a cheap screen before the SVD).

    The eigenvalues of the scaled Gram matrix are ``σ_j²`` to an absolute error of
    about ``p·ε·σ_max²``; a smallest singular value above ``10⁻⁵·σ_max`` is then far
    above both that error and the SVD rank tolerance, so the SVD can only agree.
    Anything closer is left to the SVD, so the verdict is always the SVD's.
    """
    if max(X.shape) * np.finfo(float).eps * 10 > 1e-7:  # pragma: no cover - billions of rows
        return False
    G = (X.T @ X) / np.outer(scale, scale)
    ev = np.linalg.eigvalsh(G)
    return bool(ev[0] > 1e-10 * ev[-1])


def _fail(summary: str, code: str, path: str, message: str, hint: str = "") -> ModelSpecError:
    return ModelSpecError(summary, [Problem(path=path, code=code, message=message, hint=hint)])


def build_model_frame(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str,
    covariates: Sequence[str] = (),
    clusters: Sequence[str] = (),
    treatment_level: object | None = None,
) -> ModelFrame:
    """Build the :class:`ModelFrame` for ``outcome ~ treatment + covariates``.

    Parameters
    ----------
    data : DataFrame
        One row per observation.
    outcome, treatment : str
        Column names.
    covariates : sequence of str
        Adjustment covariates (numeric, or categorical to be dummy-coded).
    clusters : sequence of str
        Cluster id columns, top of the nesting first.
    treatment_level : optional
        The label of the treated arm when the treatment column is not 0/1.

    Returns
    -------
    ModelFrame

    Raises
    ------
    ModelSpecError
        ``fit.column_missing`` (a named column is absent), ``fit.outcome_type``,
        ``fit.treatment_levels``, ``fit.no_rows``, ``fit.rank_deficient``,
        ``fit.duplicate_column``, ``fit.duplicate_input_column``.

    Notes
    -----
    See the module docstring for the coding rules (missing values, treatment,
    categorical covariates, nested cluster ids).
    """
    covariates = tuple(covariates)
    clusters = tuple(clusters)
    if isinstance(covariates, str) or isinstance(clusters, str):  # pragma: no cover - typing guard
        raise TypeError("covariates and clusters must be sequences of column names")
    used = (outcome, treatment, *covariates, *clusters)
    problems: list[Problem] = []
    for col in used:
        if col not in data.columns:
            problems.append(
                Problem(
                    path=f"column {col}",
                    code="fit.column_missing",
                    message=f"column `{col}` must be in the data; got columns "
                    + ", ".join(map(str, data.columns))
                    + ".",
                    hint="check the spelling (names are case-sensitive).",
                )
            )
    seen: set[str] = set()
    for col in used:
        if col in seen:
            problems.append(
                Problem(
                    path=f"column {col}",
                    code="fit.duplicate_column",
                    message=f"column `{col}` must be used once; it appears twice in the model.",
                    hint="a column cannot be both outcome, treatment, covariate or cluster.",
                )
            )
        seen.add(col)
    repeated = set(data.columns[data.columns.duplicated()].tolist())
    for col in dict.fromkeys(c for c in used if c in repeated):
        problems.append(
            Problem(
                path=f"column {col}",
                code="fit.duplicate_input_column",
                message=f"column `{col}` must appear once in the data; it appears more than once.",
                hint="rename or drop the repeated column before fitting.",
            )
        )
    if problems:
        raise ModelSpecError("the model names columns that are not in the data", problems)

    n_input = int(len(data))
    # each used column read once: numeric values, or factorised codes (-1 = missing)
    cols_in = {c: _read_column(data[c], sort=c in clusters) for c in used}
    data_hash = _hash_columns(used, cols_in)

    # ---------------------------------------------------------------- exclusions
    keep = np.ones(n_input, dtype=bool)
    exclusions: list[Exclusion] = []
    reasons = [(outcome, "missing outcome"), (treatment, "missing treatment")]
    reasons += [(c, f"missing covariate {c}") for c in covariates]
    reasons += [(c, f"missing cluster {c}") for c in clusters]
    for col, reason in reasons:
        miss = cols_in[col].missing
        if miss is None:
            continue
        miss = miss & keep
        k = int(miss.sum())
        if k:
            exclusions.append(Exclusion(reason=reason, n_rows=k))
            keep &= ~miss
    rows = None if keep.all() else keep
    n = int(keep.sum())
    if n == 0:
        raise _fail(
            "no complete rows to fit",
            "fit.no_rows",
            "data",
            f"the model needs rows with no missing values in {', '.join(used)}; got none "
            f"of {n_input}.",
            "check the columns for missing values.",
        )

    # ---------------------------------------------------------------- outcome
    yc = cols_in[outcome]
    if not yc.numeric:
        raise _fail(
            "the outcome is not numeric",
            "fit.outcome_type",
            f"column {outcome}",
            f"outcome `{outcome}` must be numeric; got dtype {yc.dtype}.",
            "convert the outcome to numbers (0/1 for a binary outcome).",
        )
    y = yc.numbers(rows)

    # ---------------------------------------------------------------- treatment
    tc = cols_in[treatment]
    labels = tc.levels(rows)
    label_text = ", ".join(repr(v) for v in labels)
    # ``labels`` are the distinct non-missing values: no second pass over the column
    numeric01 = tc.numeric and set(np.asarray(labels, dtype=float).tolist()) <= {
        0.0,
        1.0,
    }
    if treatment_level is None and numeric01:
        tvec = tc.numbers(rows)
        term = treatment
        tlabels = ("0", "1")
    else:
        if len(labels) != 2 or treatment_level is None:
            raise _fail(
                "the treatment must have two arms",
                "fit.treatment_levels",
                f"column {treatment}",
                f"treatment `{treatment}` must be 0/1 or two labels with `treatment_level` "
                f"naming the treated one; got labels {label_text}"
                + ("" if treatment_level is None else f" and treatment_level={treatment_level!r}")
                + ".",
                "pass treatment_level= (CLI: --treatment-level) naming the treated arm.",
            )
        match = [v for v in labels if v == treatment_level or str(v) == str(treatment_level)]
        if not match:
            raise _fail(
                "the treated level is not in the data",
                "fit.treatment_levels",
                f"column {treatment}",
                f"treatment_level must be one of {label_text}; got {treatment_level!r}.",
                "pass one of the labels found in the treatment column.",
            )
        treated = match[0]
        control = next(v for v in labels if v is not treated and v != treated)
        tvec = tc.indicator(treated, rows)
        term = f"{treatment}[{treated}]"
        tlabels = (str(control), str(treated))
    if np.all(tvec == tvec[0]):
        raise _fail(
            "only one arm in the data",
            "fit.treatment_levels",
            f"column {treatment}",
            f"treatment `{treatment}` must take both values among complete rows; got only "
            f"{tvec[0]:g}.",
            "check the treatment column and the rows excluded for missing values.",
        )

    # ---------------------------------------------------------------- covariates
    cols: list[np.ndarray] = [np.ones(n), tvec]
    names: list[str] = ["(Intercept)", term]
    for c in covariates:
        cc = cols_in[c]
        if cc.categorical:
            if cc.check_formatted:
                _refuse_formatted_numbers(cc.first_seen(rows), c)
            dummies, coding = code_factorised(
                cc.kept_codes(rows), cc.uniques, c, levels=cc.declared
            )
            cols.extend(dummies.T)
            names.extend(coding.columns)
        else:
            cols.append(cc.numbers(rows))
            names.append(c)
    X = np.column_stack(cols)
    if not np.all(np.isfinite(X)) or not np.all(np.isfinite(y)):
        raise _fail(
            "non-finite values in the model",
            "fit.non_finite",
            "data",
            "outcome and covariates must be finite; got infinite values.",
            "replace infinite values or mark them missing.",
        )

    # ---------------------------------------------------------------- clusters
    codes: list[np.ndarray] = []
    counts: list[int] = []
    parent: np.ndarray | None = None
    for c in clusters:
        own = _dense_sorted(cols_in[c].kept_codes(rows), len(cols_in[c].uniques))
        if parent is None:
            code = own
        else:
            width = int(own.max()) + 1
            code = _dense_sorted(parent * width + own, (int(parent.max()) + 1) * width)
        codes.append(code)
        counts.append(int(code.max()) + 1)
        parent = code

    # cluster-level columns: constant within every top-level cluster
    if codes:
        top = codes[0]
        first = np.empty(counts[0], dtype=np.int64)
        first[top[::-1]] = np.arange(n - 1, -1, -1)  # first row of each top cluster
        cl_level = tuple(bool(v) for v in np.all(X == X[first][top], axis=0))
    else:
        cl_level = (True,) + tuple(False for _ in names[1:])

    # ---------------------------------------------------------------- rank
    scale = np.sqrt(np.einsum("ij,ij->j", X, X))
    scale[scale == 0] = 1.0
    if not _clearly_full_rank(X, scale):
        sv = np.linalg.svd(X / scale, compute_uv=False)
        tol = sv[0] * max(X.shape) * np.finfo(float).eps * 10
        rank = int(np.sum(sv > tol))
    else:
        rank = X.shape[1]
    if rank < X.shape[1]:
        # name the offending columns: those whose removal does not lower the rank
        bad = []
        for j in range(1, X.shape[1]):
            keep_cols = [k for k in range(X.shape[1]) if k != j]
            r = np.linalg.matrix_rank(X[:, keep_cols] / scale[keep_cols])
            if r == rank:
                bad.append(names[j])
        raise _fail(
            "the fixed-effects design is rank deficient",
            "fit.rank_deficient",
            "covariates",
            f"the design matrix must have full column rank {X.shape[1]}; got rank {rank} "
            f"(columns involved: {', '.join(bad) or 'unknown'}).",
            "drop covariates that are constant or collinear with others among complete rows.",
        )

    rhs = " + ".join([term if term == treatment else treatment, *covariates])
    re_terms = []
    for k in range(len(clusters)):
        re_terms.append("(1 | " + ":".join(clusters[: k + 1]) + ")")
    formula = f"{outcome} ~ {rhs}" + "".join(f" + {t}" for t in re_terms)

    return ModelFrame(
        outcome=outcome,
        treatment=treatment,
        covariates=covariates,
        clusters=clusters,
        y=y,
        X=X,
        column_names=tuple(names),
        treatment_index=1,
        treatment_term=term,
        treatment_labels=tlabels,
        cluster_codes=tuple(codes),
        n_clusters=tuple(counts),
        cluster_level_columns=cl_level,
        exclusions=tuple(exclusions),
        n_input=n_input,
        data_hash=data_hash,
        formula=formula,
    )
