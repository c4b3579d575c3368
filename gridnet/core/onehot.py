"""The one-hot grid contract: what the core reads from a grid that stands for a 0/1
array ``(n, 1, h, w)`` without storing its zeros (a word-by-position grid, one hot
column a row). The core consumes it here; :class:`adapters.OneHotGrid` implements it,
in ``adapters`` because adapters never import gridnet (tests/test_layout.py checks
that it still satisfies this contract)."""
from __future__ import annotations

import numpy as np

__all__ = ["ONEHOT_CONTRACT", "onehot_contract_gaps", "is_onehot"]

#: What the core reads from a one-hot grid:
#:
#: - ``__onehot_grid__ = True``: the mark :func:`is_onehot` looks for;
#: - ``shape`` ``(n, 1, h, w)``; ``indices`` ``(n, h)`` int: the hot column of each row,
#:   -1 for an all-zero row (padding); ``width``: ``w``;
#: - ``toarray()``: the dense float32 array; ``grid[rows]``: the same kind of grid for
#:   those samples (a batch);
#: - ``embedding`` ``(w, d)`` or None: a starting vector per column for the learned word
#:   vectors (a zero row: none); ``fixed`` ``(w, d')`` or None: vectors kept as they
#:   are; ``trained`` (int or None): how many leading columns learn a vector of their own
#:   (the later ones share column 0's).
ONEHOT_CONTRACT = ("__onehot_grid__", "shape", "indices", "width", "toarray", "__getitem__",
                   "embedding", "fixed", "trained")


def onehot_contract_gaps(grid):
    """The names of :data:`ONEHOT_CONTRACT` that ``grid`` lacks, or whose values break
    it (an empty list: it keeps the contract)."""
    gaps = [name for name in ONEHOT_CONTRACT if not hasattr(grid, name)]
    if gaps:
        return gaps
    n, c, h, w = grid.shape
    idx = np.asarray(grid.indices)
    if not (grid.__onehot_grid__ is True and c == 1 and grid.width == w and idx.shape == (n, h)
            and idx.dtype.kind == "i" and (idx.size == 0 or (idx.min() >= -1 and idx.max() < w))):
        gaps.append("shape, indices or width")
    dense = np.asarray(grid.toarray())
    rows, cols = np.nonzero(idx >= 0)
    if dense.shape != (n, 1, h, w) or dense.dtype != np.float32 or not (
            np.array_equal(dense[:, 0].sum(axis=2), (idx >= 0).astype(np.float32))
            and (dense[rows, 0, cols, idx[rows, cols]] == 1).all()):
        gaps.append("toarray")
    last = np.array([n - 1]) if n else np.array([], dtype=int)
    part = grid[last]
    if not (is_onehot(part) and np.array_equal(np.asarray(part.indices), idx[last])):
        gaps.append("__getitem__")
    for name in ("embedding", "fixed"):
        value = getattr(grid, name)
        if value is not None and (np.ndim(value) != 2 or np.shape(value)[0] != w):
            gaps.append(name)
    return gaps


def is_onehot(x):
    """True for a one-hot grid (:data:`ONEHOT_CONTRACT`): an object with
    ``__onehot_grid__ = True``, such as the word-by-position grids of
    :class:`adapters.TextAdapter`. The core duck-types it and never imports an adapter."""
    return bool(getattr(x, "__onehot_grid__", False))
