"""Tables -> grids ``(n, 1, 1, f)`` strips or near-square ``(n, 1, h, w)`` folds."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["TabularAdapter", "similarity_order"]


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


class TabularAdapter(TransformerMixin, BaseEstimator):
    """A table -> float32 grids: a strip ``(n, 1, 1, f)`` or a fold ``(n, 1, h, w)``.

    Axes: the encoded columns laid along the width (strip), or row by row into a
    near-square ``h x w`` grid (fold; ``h = ceil(sqrt(f))``, the last cells zero),
    in the order ``feature_order_``.

    Numeric columns are imputed (median) and standardised; categorical columns
    (non-numeric dtypes, or ``categorical``) imputed (most frequent) and one-hot
    encoded, with scikit-learn's own transformers.

    Parameters
    ----------
    layout : {"strip", "square"}, default "strip"
    order : {"as_is", "similarity"}, default "as_is"
        "similarity" orders the encoded columns so that correlated ones are
        neighbours (see :func:`similarity_order`), giving a table with hidden
        structure locality a CNN can use.
    categorical : list of column names or indices, optional

    Attributes
    ----------
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
    """

    def __init__(self, *, layout="strip", order="as_is", categorical=None):
        self.layout = layout
        self.order = order
        self.categorical = categorical

    def _frame(self, X):
        try:
            import pandas as pd
        except ImportError:
            pd = None
        if pd is not None and isinstance(X, pd.DataFrame):
            return X, list(map(str, X.columns))
        A = np.asarray(X)
        if A.ndim != 2:
            raise ValueError(f"X must be a 2-D table (n, f); got shape {A.shape}")
        return A, [f"x{i}" for i in range(A.shape[1])]

    def fit(self, X, y=None):
        """Learn the encoders, the column order and the grid shape."""
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler
        if self.layout not in ("strip", "square"):
            raise ValueError(f"layout must be 'strip' or 'square'; got {self.layout!r}")
        if self.order not in ("as_is", "similarity"):
            raise ValueError(f"order must be 'as_is' or 'similarity'; got {self.order!r}")
        table, names = self._frame(X)
        if len(names) == 0 or table.shape[0] == 0:
            raise ValueError(f"X is empty: shape {table.shape}")
        cat = set(self.categorical or [])
        num_cols, cat_cols = [], []
        for i, name in enumerate(names):
            col = table.iloc[:, i] if hasattr(table, "iloc") else table[:, i]
            is_cat = name in cat or i in cat
            if not is_cat:
                try:
                    values = np.asarray(col, dtype=np.float64)
                except (TypeError, ValueError):
                    is_cat = True
                else:
                    if np.isinf(values).any():
                        row = int(np.nonzero(np.isinf(values))[0][0])
                        raise ValueError(f"column {name!r} has an infinite value (row {row})")
            (cat_cols if is_cat else num_cols).append(i)
        self.numeric_columns_ = [names[i] for i in num_cols]
        self.categorical_columns_ = [names[i] for i in cat_cols]
        steps = []
        if num_cols:
            steps.append(("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num_cols))
        if cat_cols:
            steps.append(("cat", make_pipeline(
                SimpleImputer(strategy="most_frequent", missing_values=np.nan),
                OneHotEncoder(handle_unknown="ignore", sparse_output=False)), cat_cols))
        self.encoder_ = ColumnTransformer(steps, sparse_threshold=0.0)
        data = table if hasattr(table, "iloc") else _object_if_mixed(table, cat_cols)
        try:
            Z = self.encoder_.fit_transform(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"cannot encode the table: {exc}") from None
        self.feature_names_ = np.array([_clean(n, names) for n in self.encoder_.get_feature_names_out()],
                                       dtype=object)
        self.feature_order_ = similarity_order(Z) if self.order == "similarity" else np.arange(Z.shape[1])
        f = Z.shape[1]
        if self.layout == "strip":
            self.grid_shape_ = (1, 1, f)
        else:
            h = int(np.ceil(np.sqrt(f)))
            self.grid_shape_ = (1, h, int(np.ceil(f / h)))
        return self

    def transform(self, X):
        """Table (n, f_in) -> float32 (n, 1, h, w)."""
        check_is_fitted(self, "encoder_")
        table, names = self._frame(X)
        data = table if hasattr(table, "iloc") else _object_if_mixed(
            table, [names.index(c) for c in self.categorical_columns_ if c in names])
        try:
            Z = self.encoder_.transform(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"cannot encode the table: {exc}") from None
        Z = np.asarray(Z, dtype=np.float32)[:, self.feature_order_]
        _, h, w = self.grid_shape_
        out = np.zeros((Z.shape[0], h * w), np.float32)
        out[:, :Z.shape[1]] = Z
        return out.reshape(-1, 1, h, w)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "encoder_")
        _, h, w = self.grid_shape_
        names = list(self.feature_names_[self.feature_order_])
        return np.array(names + [f"pad{i}" for i in range(h * w - len(names))], dtype=object)


def _object_if_mixed(A, cat_cols):
    return A.astype(object) if cat_cols and A.dtype.kind != "O" else A


def _clean(name, names):
    """ColumnTransformer's 'num__x3' -> 'x3'."""
    return name.split("__", 1)[1] if "__" in name else name
