"""The model-free statistic: the mean correlation of neighbouring columns across the
samples, against its distribution when the columns are put in random orders (a
Moran's-I-style statistic along the axis). No labels, no model."""
from __future__ import annotations

import numpy as np

__all__ = ["standardize", "neighbour_statistic", "statistic"]


def standardize(a):
    """Columns of a (n, k) to zero mean, unit norm (constant columns stay zero)."""
    a = a.astype(np.float64, copy=True)
    a -= a.mean(axis=0)
    norm = np.sqrt((a * a).sum(axis=0))
    a /= np.where(norm > 1e-12, norm, 1.0)
    return a


def _mean_corr_matrix(x, axis_len, blocks):
    """Mean over ``blocks`` of the (axis_len x axis_len) correlation matrices.

    ``x`` is (n, blocks, axis_len): for a table, one block; for grids, one block per
    channel and row (width axis) or channel and column (height axis).
    """
    M = np.zeros((axis_len, axis_len))
    for b in range(blocks):
        z = standardize(x[:, b, :])                         # (n, L)
        M += z.T @ z
    return M / blocks


def _adjacent_mean(M, order):
    return float(M[order[:-1], order[1:]].mean())


def neighbour_statistic(M, n_permutations, rng):
    """Observed mean neighbour correlation of matrix ``M`` in its given order, and the
    null distribution over ``n_permutations`` random orders. M: (L, L)."""
    L = M.shape[0]
    observed = _adjacent_mean(M, np.arange(L))
    null = np.empty(n_permutations)
    for k in range(n_permutations):
        null[k] = _adjacent_mean(M, rng.permutation(L))
    return observed, null


def _as_axes(X, axis):
    """X -> list of (n, blocks, L) views, one per axis tested, and the grid shape."""
    X = np.asarray(X)
    if X.ndim == 2:
        if axis not in ("columns", "width"):
            raise ValueError(f"a table (n, f) has only columns; axis={axis!r} needs grids (n, c, h, w)")
        return [X[:, None, :]], X.shape[1:]
    if X.ndim == 3:
        X = X[:, None]
    if X.ndim != 4:
        raise ValueError(f"X has shape {X.shape}; expected a table (n, f) or grids (n, c, h, w)")
    n, c, h, w = X.shape
    views = []
    if axis in ("columns", "width", "both"):
        views.append(X.reshape(n, c * h, w))
    if axis in ("height", "both"):
        views.append(X.transpose(0, 1, 3, 2).reshape(n, c * w, h))
    return views, X.shape[1:]


def statistic(X, axis, n_permutations, rng):
    views, _ = _as_axes(X, axis)
    observed, null, all_pairs = 0.0, np.zeros(n_permutations), 0.0
    for v in views:
        L = v.shape[2]
        if L < 3:
            raise ValueError(f"the tested axis has {L} positions; the locality check needs at least 3")
        M = _mean_corr_matrix(v, L, v.shape[1])
        o, nl = neighbour_statistic(M, n_permutations, rng)
        observed += o / len(views)
        null += nl / len(views)
        off = M[~np.eye(L, dtype=bool)]
        all_pairs += float(off.mean()) / len(views)
    std = float(null.std())
    return {
        "observed": observed,
        "mean_all_pairs": all_pairs,
        "null_mean": float(null.mean()),
        "null_std": std,
        "effect_size": (observed - float(null.mean())) / std if std > 0 else 0.0,
        "p_value": float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_permutations)),
        "n_permutations": int(n_permutations),
        "null": null.tolist(),
    }
