"""Word vectors looked up from a one-hot grid: a trained table, and beside it a fixed one.

A one-hot grid's column ``j`` names a word. :class:`Embedding` gives each position the
trained vector of its word and, optionally, a fixed vector that no optimizer changes
(pretrained vectors, Kim's "static" channel). Only the first ``trained`` columns have a
trained vector of their own (the training vocabulary); the columns after them (words
known only to the pretrained vectors) share column 0's, the unknown word's. So a large
pretrained vocabulary costs one lookup table in memory, and the optimizer's work stays
the size of the training vocabulary.
"""
from __future__ import annotations

import numpy as np

from . import kernels
from .layers import Layer, check_input, is_onehot

__all__ = ["Embedding"]


class Embedding(Layer):
    """One-hot grid ``(n, 1, h, w)`` -> ``(n, dim + fixed_dim, h, 1)``: at each
    position, the trained vector of its column beside its fixed vector.

    Parameters
    ----------
    dim : int
        Width of the trained vectors ``params["W"]``, ``(dim, trained)``.
    trained : int or None
        Columns ``0 .. trained - 1`` each have a trained vector; every later column
        uses column 0's. None: every column (``w``).
    fixed_dim : int, default 0
        Width of the fixed vectors ``buffers["fixed"]``, ``(w, fixed_dim)`` float16: saved
        with the weights, never trained. 0: none.

    Padding rows (index -1, all-zero rows) give zeros. A dense 0/1 grid gives the same
    as its one-hot form (the lookup is a product with the grid).

    Examples
    --------
    >>> import numpy as np
    >>> from gridnet.core.embedding import Embedding
    >>> e = Embedding(2, trained=3, fixed_dim=1)
    >>> e.build((1, 4, 5), np.random.default_rng(0))
    (3, 4, 1)
    >>> e.params["W"].shape, e.buffers["fixed"].shape
    ((2, 3), (5, 1))
    """

    trainable = True
    TRANSIENT = Layer.TRANSIENT + ("_lookup",)
    #: the weight gradient's implementation: None for the backend's, or "numba" / "numpy"
    kernels = None

    def __init__(self, dim, trained=None, fixed_dim=0):
        super().__init__()
        if int(dim) < 1:
            raise ValueError(f"dim must be a positive int; got {dim!r}")
        if trained is not None and int(trained) < 1:
            raise ValueError(f"trained must be a positive int or None; got {trained!r}")
        if int(fixed_dim) < 0:
            raise ValueError(f"fixed_dim must be a non-negative int; got {fixed_dim!r}")
        self.dim = int(dim)
        self.trained = None if trained is None else int(trained)
        self.fixed_dim = int(fixed_dim)
        self.buffers = {}

    def get_config(self):
        return {"dim": self.dim, "trained": self.trained, "fixed_dim": self.fixed_dim}

    def describe(self):
        fixed = f" + {self.fixed_dim} fixed" if self.fixed_dim else ""
        return f"Embedding({self.dim} trained{fixed}, {self.n_trained} words trained)"

    def build(self, in_shape, rng, dtype=np.float32):
        if len(in_shape) != 3 or in_shape[0] != 1:
            raise ValueError(f"Embedding needs one-channel word grids (1, positions, width); "
                             f"got samples of shape {tuple(in_shape)}")
        _, h, w = in_shape
        t = w if self.trained is None else self.trained
        if t > w:
            raise ValueError(f"trained={t} columns, but the grid has only {w}")
        self.n_trained = int(t)
        self.in_shape = tuple(in_shape)
        self.out_shape = (self.dim + self.fixed_dim, h, 1)
        # Glorot over the equivalent convolution one position tall and the grid's width
        self.params = {"W": self._init_weights(rng, (self.dim, t), t, self.dim * t, dtype)}
        self.grads = {"W": np.zeros_like(self.params["W"])}
        self.buffers = ({"fixed": np.zeros((w, self.fixed_dim), np.float16)}
                        if self.fixed_dim else {})
        return self.out_shape

    def _columns(self, idx):
        """(trained column of each position, padding mask), both (n, h)."""
        pad = idx < 0
        cols = np.where(idx >= self.n_trained, 0, idx)
        return np.where(pad, 0, cols), pad

    def forward(self, x, training=False):
        """x: one-hot grid or dense (n, 1, h, w) -> (n, dim + fixed_dim, h, 1), a view
        of positions-first rows ``(n, h, dim + fixed_dim)`` (what a sentence
        convolution reads, :func:`~gridnet.core.kernels.ragged_rows`)."""
        W = self.params["W"]
        if not is_onehot(x):
            check_input(self, x, self.in_shape)
            return self._forward_dense(np.asarray(x, dtype=W.dtype), training)
        idx = np.asarray(x.indices)
        if tuple(x.shape[1:]) != self.in_shape:
            check_input(self, x, self.in_shape)
        cols, pad = self._columns(idx)
        fixed = self.buffers["fixed"] if self.fixed_dim else np.zeros((1, 0), np.float16)
        if ((self.kernels or kernels.backend()) == "numba" and W.dtype == np.float32
                and fixed.dtype == np.float16):
            out = np.empty(idx.shape + (self.dim + self.fixed_dim,), W.dtype)
            kernels.embedding_rows(W, fixed, idx, self.n_trained, out)
        else:
            parts = [W.T[cols]]                                   # (n, h, dim)
            if self.fixed_dim:
                parts.append(fixed[np.where(pad, 0, idx)].astype(W.dtype))
            out = np.concatenate(parts, axis=2) if len(parts) > 1 else parts[0]
            out[pad] = 0
        out = out.transpose(0, 2, 1)[..., None]      # a view: the rows stay positions-first
        self._lookup = (cols, pad, out) if training else None
        return out

    def lookup_table(self, dtype=np.float32):
        """The dense lookup: (w, dim + fixed_dim), column j's vectors in row j (columns
        past the trained ones take column 0's trained vector)."""
        W = self.params["W"]
        w = self.in_shape[2]
        rows = np.zeros((w, self.dim), dtype)
        rows[:self.n_trained] = W.T
        rows[self.n_trained:] = W[:, 0]
        if self.fixed_dim:
            rows = np.concatenate([rows, self.buffers["fixed"].astype(dtype)], axis=1)
        return rows

    def _forward_dense(self, x, training):
        out = x[:, 0] @ self.lookup_table(x.dtype)                  # (n, h, D)
        self._lookup = ("dense", x) if training else None
        return np.ascontiguousarray(out.transpose(0, 2, 1))[..., None]

    def backward(self, grad, input_grad=True):
        """grad: (n, dim + fixed_dim, h, 1) -> after a one-hot grid, the gradient at each
        row's hot cell ``(n, h)`` (0 for padding); after a dense grid, ``(n, 1, h, w)``."""
        from scipy import sparse
        lookup = self.__dict__.get("_lookup")
        if lookup is None:
            raise RuntimeError("backward called without a training forward pass")
        self._lookup = None
        g = grad[..., 0].transpose(0, 2, 1)                  # (n, h, D)
        if isinstance(lookup[0], str):         # ("dense", x)
            x = lookup[1][:, 0]                               # (n, h, w)
            xt = x[..., :self.n_trained].copy()
            xt[..., 0] += x[..., self.n_trained:].sum(axis=-1)
            gt = g[..., :self.dim].reshape(-1, self.dim)
            self.grads["W"] = gt.T @ xt.reshape(-1, self.n_trained)
            return (g @ self.lookup_table(g.dtype).T)[:, None] if input_grad else None
        cols, pad, out = lookup
        if (self.kernels or kernels.backend()) == "numba" and g.dtype == self.params["W"].dtype:
            dW = np.zeros((self.dim, self.n_trained), g.dtype)
            self.grads["W"] = kernels.embedding_dw(grad[:, :self.dim, :, 0], cols, pad, dW)
            return (grad[..., 0] * out[..., 0]).sum(axis=1) if input_grad else None
        keep = ~pad.reshape(-1)
        gt = np.ascontiguousarray(g[..., :self.dim]).reshape(-1, self.dim)
        hot = sparse.csr_matrix((np.ones(int(keep.sum()), dtype=g.dtype),
                                 (cols.reshape(-1)[keep], np.flatnonzero(keep))),
                                shape=(self.n_trained, gt.shape[0]))
        self.grads["W"] = np.ascontiguousarray((hot @ gt).T)
        if not input_grad:
            return None
        # out is linear in the hot cell's value (1): d out / d x_hot = out
        return (grad[..., 0] * out[..., 0]).sum(axis=1)
