"""A one-hot grid stored as indices: the word-by-position grids of :class:`TextAdapter`.
It implements the contract the gridnet core reads (``gridnet.core.onehot``), which is
defined there, where it is consumed; this package cannot import gridnet."""
from __future__ import annotations

import numpy as np

__all__ = ["OneHotGrid"]


class OneHotGrid:
    """A one-hot word-by-position grid ``(n, 1, positions, width)`` stored as indices.

    Row ``t`` of sample ``i`` is all zeros except a 1 in column ``indices[i, t]``
    (-1: an all-zero row, i.e. padding). It behaves as the float32 array it stands for
    where that is cheap: ``shape``, ``dtype``, ``len``, row indexing ``grid[rows]``,
    ``toarray()`` and ``np.asarray(grid)`` (which build the dense array). The gridnet
    core reads it without densifying when its first convolution spans the full width
    (Kim's sentence CNN): a vocabulary of 10,000 words costs 4 bytes per position, not
    40 kB.

    ``embedding`` (optional, ``(width, d)``) offers a starting vector per column for the
    embedding the network learns (a row of zeros: none); row indexing keeps it.
    ``fixed`` (optional, ``(width, d)``) offers a vector per column that the network keeps
    as it is (pretrained vectors: a word that training never saw still has its own), and
    ``trained`` says how many leading columns get a learned vector of their own (the
    training vocabulary; the later columns share column 0's, the unknown word's).

    Examples
    --------
    >>> import numpy as np
    >>> g = OneHotGrid(np.array([[2, 0, -1]]), width=3)
    >>> g.shape
    (1, 1, 3, 3)
    >>> g.toarray()[0, 0]
    array([[0., 0., 1.],
           [1., 0., 0.],
           [0., 0., 0.]], dtype=float32)
    """

    __onehot_grid__ = True
    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, indices, width, embedding=None, fixed=None, trained=None):
        indices = np.asarray(indices)
        if indices.ndim != 2:
            raise ValueError(f"indices must be (n, positions); got shape {indices.shape}")
        if indices.size and (indices.max() >= width or indices.min() < -1):
            raise ValueError(f"indices must lie in [-1, {width}); got [{indices.min()}, {indices.max()}]")
        self.indices = indices.astype(np.int32, copy=False)
        self.width = int(width)
        if embedding is not None:
            embedding = np.asarray(embedding)
            if embedding.ndim != 2 or embedding.shape[0] != self.width:
                raise ValueError(f"embedding must be ({self.width}, d), a row per column; got "
                                 f"shape {embedding.shape}")
        self.embedding = embedding
        if fixed is not None:
            fixed = np.asarray(fixed)
            if fixed.ndim != 2 or fixed.shape[0] != self.width:
                raise ValueError(f"fixed must be ({self.width}, d), a row per column; got "
                                 f"shape {fixed.shape}")
        if trained is not None and not 1 <= int(trained) <= self.width:
            raise ValueError(f"trained must lie in [1, {self.width}]; got {trained!r}")
        self.fixed = fixed
        self.trained = None if trained is None else int(trained)

    @property
    def shape(self):
        return (self.indices.shape[0], 1, self.indices.shape[1], self.width)

    def __len__(self):
        return self.indices.shape[0]

    def __getitem__(self, rows):
        if isinstance(rows, tuple):
            raise IndexError("a OneHotGrid is indexed by rows only; use toarray() for more")
        idx = self.indices[rows]
        if idx.ndim == 1:
            idx = idx[None]
        return OneHotGrid(idx, self.width, self.embedding, self.fixed, self.trained)

    def toarray(self):
        n, _, h, w = self.shape
        out = np.zeros((n, h, w), dtype=np.float32)
        nn, tt = np.nonzero(self.indices >= 0)
        out[nn, tt, self.indices[nn, tt]] = 1.0
        return out[:, None]

    def __array__(self, dtype=None, copy=None):
        a = self.toarray()
        return a if dtype is None else a.astype(dtype)

    def __eq__(self, other):
        return (isinstance(other, OneHotGrid) and self.width == other.width
                and np.array_equal(self.indices, other.indices))

    def __repr__(self):
        return f"OneHotGrid(shape={self.shape})"
