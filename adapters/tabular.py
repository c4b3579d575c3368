"""Tables -> grids ``(n, 1, 1, f)`` strips or near-square ``(n, 1, h, w)`` folds."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .state import StateMixin

__all__ = ["TabularAdapter", "TableError", "similarity_order", "MISSING"]

#: Cell values read as missing (compared stripped and lower-cased), besides None and NaN.
MISSING = frozenset({"", "?", "na", "n/a", "nan", "null", "none"})


class TableError(ValueError):
    """A cell or column that cannot be encoded: ``column`` (its name), ``row`` (the
    0-based data row, or None for the whole column) and ``reason``; the message says
    both, as ``"column 'x1' has an infinite value (row 3)"``."""

    def __init__(self, column, reason, row=None):
        self.column, self.reason, self.row = column, f"column {column!r} {reason}", row
        super().__init__(self.reason + (f" (row {row})" if row is not None else ""))


def _cell(value):
    """A cell as a message shows it: ``'abc'``, ``1e+300`` (not ``np.float64(1e+300)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def similarity_order(Z):
    """Column order placing correlated columns next to each other.

    Hierarchical clustering (average linkage) of the distance ``1 - |corr|`` with
    optimal leaf ordering (scipy), so that neighbouring leaves are as alike as they
    can be. Z: (n, f) -> permutation (f,).
    """
    from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
    from scipy.spatial.distance import squareform
    f = Z.shape[1]
    if f < 3:
        return np.arange(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(Z, rowvar=False)
    corr = np.nan_to_num(corr, nan=0.0)
    dist = 1.0 - np.abs(corr)
    np.fill_diagonal(dist, 0.0)
    dist = np.clip((dist + dist.T) / 2, 0.0, None)
    condensed = squareform(dist, checks=False)
    tree = optimal_leaf_ordering(linkage(condensed, method="average"), condensed)
    return leaves_list(tree)


def _is_missing(v):
    if v is None:
        return True
    if isinstance(v, str):
        return v.strip().lower() in MISSING
    try:
        return bool(np.isnan(v))
    except (TypeError, ValueError):
        return False


def _columns(X):
    """A table -> (column names, list of 1-D columns, whether the names are the
    table's own). Takes a pandas DataFrame, a mapping ``{name: values}`` (columns of
    equal length) or a 2-D array-like (columns ``x0``, ``x1``, ...)."""
    if hasattr(X, "columns") and hasattr(X, "iloc"):          # a DataFrame
        return ([str(c) for c in X.columns], [X.iloc[:, i].to_numpy() for i in range(X.shape[1])],
                True)
    if isinstance(X, dict):
        names = [str(k) for k in X]
        cols = [np.asarray(v, dtype=object) for v in X.values()]
        lengths = {len(c) for c in cols}
        if len(lengths) > 1 or any(c.ndim != 1 for c in cols):
            raise ValueError(f"the columns of X must be 1-D and of one length; got lengths {sorted(lengths)}")
        return names, cols, True
    A = np.asarray(X)
    if A.ndim != 2:
        raise ValueError(f"X must be a 2-D table (n, f); got shape {A.shape}")
    return [f"x{i}" for i in range(A.shape[1])], [A[:, i] for i in range(A.shape[1])], False


def _as_numbers(values):
    """A column -> (float64 values with NaN where missing, missing mask), or None when
    some value that is not missing is not a number."""
    if values.dtype.kind in "fiub":
        x = values.astype(np.float64)
        return x, np.isnan(x)
    x = np.empty(len(values))
    miss = np.zeros(len(values), bool)
    for i, v in enumerate(values):
        if _is_missing(v):
            x[i], miss[i] = np.nan, True
            continue
        try:
            x[i] = float(v)
        except (TypeError, ValueError):
            return None
    return x, miss


class TabularAdapter(StateMixin, TransformerMixin, BaseEstimator):
    """A table -> float32 grids: a strip ``(n, 1, 1, f)`` or a fold ``(n, 1, h, w)``.

    Each input column is encoded in its own place: a numeric column (every value that
    is not missing is a number) has its missing values set to its median and is
    standardised; any other column becomes one 0/1 column per level (named
    ``"name=level"``), a missing or unseen level all zeros. The encoded columns are
    laid along the width (strip), or row by row into a near-square ``h x w`` grid
    (fold; ``h = ceil(sqrt(f))``, the last cells zero), in the order ``feature_order_``.

    Missing values are None, NaN and the strings in :data:`MISSING` ("", "?", "NA",
    "N/A", "nan", "null", "None", in any case). Everything learned is plain data
    (:meth:`to_state` writes it as JSON, no pickle).

    Parameters
    ----------
    layout : {"strip", "square"}, default "strip"
    order : {"as_is", "similarity"}, default "as_is"
        "similarity" orders the encoded columns so that correlated ones are
        neighbours (see :func:`similarity_order`), giving a table with hidden
        structure locality a CNN can use.
    categorical : list of column names or indices, optional
        Columns encoded by level even when their values are numbers.
    max_levels : int, default 50
        A column with more levels than this is an error (it is not a category: an
        identifier or free text).

    X is a pandas DataFrame, a mapping ``{column name: values}`` or a 2-D array
    (columns named ``x0``, ``x1``, ...). ``transform`` finds a DataFrame's or mapping's
    columns by name, an array's by position.

    Attributes
    ----------
    columns_ : names of the input columns
    spec_ : one dict per input column: ``name``, and ``median``, ``mean``, ``std``,
        ``missing`` (numeric) or ``levels``, ``missing`` (categorical)
    numeric_columns_, categorical_columns_ : names
    feature_names_ : (f,) names of the encoded columns, as encoded
    feature_order_ : (f,) permutation applied to them
    grid_shape_ : (1, h, w)

    Examples
    --------
    >>> import numpy as np
    >>> from adapters import TabularAdapter
    >>> X = np.random.default_rng(0).standard_normal((20, 5))
    >>> TabularAdapter(layout="square").fit_transform(X).shape
    (20, 1, 3, 2)
    >>> t = TabularAdapter().fit({"age": [30, 40, None], "job": ["a", "b", "a"]})
    >>> list(t.feature_names_)
    ['age', 'job=a', 'job=b']
    """

    def __init__(self, *, layout="strip", order="as_is", categorical=None, max_levels=50):
        self.layout = layout
        self.order = order
        self.categorical = categorical
        self.max_levels = max_levels

    def _check_params(self):
        if self.layout not in ("strip", "square"):
            raise ValueError(f"layout must be 'strip' or 'square'; got {self.layout!r}")
        if self.order not in ("as_is", "similarity"):
            raise ValueError(f"order must be 'as_is' or 'similarity'; got {self.order!r}")
        if not (isinstance(self.max_levels, (int, np.integer)) and self.max_levels >= 1):
            raise ValueError(f"max_levels must be a positive int; got {self.max_levels!r}")

    def _fit_column(self, i, name, values, categorical):
        parsed = None if categorical else _as_numbers(values)
        if parsed is None:
            miss = np.array([_is_missing(v) for v in values], bool)
            levels = sorted({str(v) for v, m in zip(values, miss) if not m})
            if len(levels) > self.max_levels:
                raise TableError(name, f"is not numeric and has {len(levels)} distinct values; "
                                 f"it cannot be one-hot encoded (at most max_levels="
                                 f"{self.max_levels})")
            return {"name": name, "levels": levels, "missing": int(miss.sum())}
        x, miss = parsed
        if miss.all():
            raise TableError(name, "has no values")
        if np.isinf(x).any():
            raise TableError(name, "has an infinite value", int(np.nonzero(np.isinf(x))[0][0]))
        big = np.abs(x) > np.finfo(np.float32).max       # its mean and spread would overflow
        if big.any():
            bad = int(np.nonzero(big)[0][0])
            raise TableError(name, f"holds {_cell(values[bad])}, which is too large for a float32 grid",
                             bad)
        med = float(np.median(x[~miss]))
        x = np.where(miss, med, x)
        return {"name": name, "median": med, "mean": float(x.mean()),
                "std": float(x.std()) or 1.0, "missing": int(miss.sum())}

    def fit(self, X, y=None):
        """Learn each column's encoding, the column order and the grid shape."""
        self._check_params()
        names, cols, named = _columns(X)
        if not names or len(cols[0]) == 0:
            raise ValueError(f"X is empty: {len(cols[0]) if cols else 0} rows, {len(names)} columns")
        cat = set(self.categorical or [])
        self.columns_ = names
        self.spec_ = [self._fit_column(i, name, values, name in cat or i in cat)
                      for i, (name, values) in enumerate(zip(names, cols))]
        self.numeric_columns_ = [s["name"] for s in self.spec_ if "levels" not in s]
        self.categorical_columns_ = [s["name"] for s in self.spec_ if "levels" in s]
        self.feature_names_ = np.array(_encoded_names(self.spec_), dtype=object)
        f = len(self.feature_names_)
        if f == 0:
            raise ValueError("X encodes to no columns (every categorical column is empty)")
        self.feature_order_ = (similarity_order(self._encode(names, cols, named)) if self.order == "similarity"
                               else np.arange(f))
        if self.layout == "strip":
            self.grid_shape_ = (1, 1, f)
        else:
            h = int(np.ceil(np.sqrt(f)))
            self.grid_shape_ = (1, h, int(np.ceil(f / h)))
        return self

    def _encode(self, names, cols, by_name):
        """Columns -> (n, f) float64 in the encoded order (before ``feature_order_``);
        ``by_name``: find the fitted columns by name, else by position."""
        index = {n: i for i, n in enumerate(names)}
        if len(cols) != len(self.spec_) and not by_name:
            raise ValueError(f"X has {len(cols)} columns; the adapter was fitted on {len(self.spec_)}")
        blocks = []
        for j, s in enumerate(self.spec_):
            k = index.get(s["name"]) if by_name else j
            if k is None:
                raise TableError(s["name"], "is missing: the adapter was fitted on it")
            values = cols[k]
            if "levels" in s:
                text = np.array(["" if _is_missing(v) else str(v) for v in values], dtype=object)
                blocks.append((text[:, None] == np.array(s["levels"], dtype=object)[None, :])
                              .astype(np.float64).reshape(len(values), len(s["levels"])))
                continue
            parsed = _as_numbers(values)
            if parsed is None:
                bad = next(i for i, v in enumerate(values) if not _is_missing(v) and not _number(v))
                raise TableError(s["name"], f"holds {_cell(values[bad])}, which is not a number "
                                 "(the column was numeric in fit)", bad)
            x, miss = parsed
            x = np.where(miss, s["median"], x)
            z = (x - s["mean"]) / s["std"]
            big = ~(np.abs(z) <= np.finfo(np.float32).max)      # inf, or past float32 once scaled
            if big.any():
                bad = int(np.nonzero(big)[0][0])
                raise TableError(s["name"], f"holds {_cell(values[bad])}, which is "
                                 + ("infinite" if np.isinf(x[bad]) else
                                    "too large for a float32 grid"), bad)
            blocks.append(z[:, None])
        return np.hstack(blocks)

    def transform(self, X):
        """Table (n, f_in) -> float32 (n, 1, h, w)."""
        check_is_fitted(self, "spec_")
        names, cols, named = _columns(X)
        Z = self._encode(names, cols, named).astype(np.float32)[:, self.feature_order_]
        _, h, w = self.grid_shape_
        out = np.zeros((Z.shape[0], h * w), np.float32)
        out[:, :Z.shape[1]] = Z
        return out.reshape(-1, 1, h, w)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "spec_")
        _, h, w = self.grid_shape_
        names = list(self.feature_names_[self.feature_order_])
        return np.array(names + [f"pad{i}" for i in range(h * w - len(names))], dtype=object)

    @classmethod
    def from_state(cls, state):
        """Also reads the table encoder that gridnet 0.1's command line saved (format 1:
        class ``TableEncoder``, the same encoding with the columns as given)."""
        if state.get("class") == "TableEncoder":
            fitted = state.get("fitted", {})
            spec = fitted.get("spec_")
            if not isinstance(spec, list):
                raise ValueError("the TableEncoder state has no column specification")
            names = _encoded_names(spec)
            state = {"class": cls.__name__, "params": {}, "fitted": {
                "columns_": [s["name"] for s in spec], "spec_": spec,
                "numeric_columns_": [s["name"] for s in spec if "levels" not in s],
                "categorical_columns_": [s["name"] for s in spec if "levels" in s],
                "feature_names_": {"__array__": names, "dtype": "object"},
                "feature_order_": {"__array__": list(range(len(names))), "dtype": "int64"},
                "grid_shape_": [1, 1, len(names)]}}
        return super().from_state(state)


def _encoded_names(spec):
    """The encoded columns' names: a numeric column's own, ``name=level`` per level."""
    return [n for s in spec for n in ([f"{s['name']}={lv}" for lv in s["levels"]]
                                      if "levels" in s else [s["name"]])]


def _number(v):
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True
