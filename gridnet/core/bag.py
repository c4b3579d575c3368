"""Bags of n-grams read from a one-hot word grid.

The words of a sentence (the hot columns of a one-hot grid, in order) and the pairs of
neighbouring words are hashed into ``buckets`` rows (:func:`ngram_ids`).
:class:`NgramBag` (fastText's sentence vector) averages rows of a trained table: beside
a sentence CNN (in :class:`~gridnet.core.network.Branches`, before the output layer) it
adds what a bag-of-n-grams model knows to the network's logits, learned in the same
fit. :class:`NgramLinear` is a whole linear classifier on the same n-grams, weighted as
TF-IDF: its arrays are fitted outside the core (:mod:`gridnet.wide`, a logistic
regression) and it joins an ensemble as a member of its own.
"""
from __future__ import annotations

import numpy as np

from . import kernels
from .layers import Layer, check_input, is_onehot

__all__ = ["NgramBag", "NgramLinear", "ngram_ids", "word_indices", "PAIR_HASH"]

#: multipliers of the hash of a word pair (odd, so that a pair's two words never cancel);
#: public for the ONNX exporter, which hashes pairs the same way
PAIR_HASH = (1_000_003, 7_919)
_A, _B = PAIR_HASH


def ngram_ids(idx, trained, buckets, n=2):
    """The hashed n-grams of word index rows ``idx`` ``(s, h)`` (-1: padding, indices
    from ``trained`` on: words training never saw, as 0, the unknown word): ``(rows,
    ids)``, the sentence of each n-gram and its row in ``[0, buckets)``. Unigram ``w``
    is ``w % buckets``; a pair ``(a, b)`` of neighbours ``(a * A + b * B + 1) %
    buckets``, where either is a word (padding ends a sentence).

    >>> ngram_ids(np.array([[3, 5, -1]]), trained=10, buckets=1000)
    (array([0, 0, 0]), array([  3,   5, 605]))
    """
    idx = np.asarray(idx, dtype=np.int64)
    words = np.where(idx >= trained, 0, idx)
    s = np.broadcast_to(np.arange(idx.shape[0])[:, None], idx.shape)
    keep = idx >= 0
    rows, ids = [s[keep]], [words[keep] % buckets]
    if n >= 2 and idx.shape[1] > 1:
        a, b = words[:, :-1], words[:, 1:]
        pair = (idx[:, :-1] >= 0) & (idx[:, 1:] >= 0)
        rows.append(s[:, :-1][pair])
        ids.append((a[pair] * _A + b[pair] * _B + 1) % buckets)
    return np.concatenate(rows), np.concatenate(ids)


def word_indices(layer, x):
    """The word index rows ``(n, h)`` (-1: padding) of a one-hot word grid, or of its
    dense 0/1 form, checked against ``layer.in_shape``."""
    if is_onehot(x):
        if tuple(x.shape[1:]) != layer.in_shape:
            check_input(layer, x, layer.in_shape)
        return np.asarray(x.indices)
    check_input(layer, x, layer.in_shape)
    x = np.asarray(x)
    if not ((x == 0) | (x == 1)).all() or (x.sum(axis=3) > 1).any():
        raise ValueError(f"{type(layer).__name__} reads one-hot word grids: each row one 1 (or none)")
    return np.where(x[:, 0].any(axis=2), x[:, 0].argmax(axis=2), -1)


def _check_word_grid(layer, in_shape):
    if len(in_shape) != 3 or in_shape[0] != 1:
        raise ValueError(f"{type(layer).__name__} needs one-channel word grids (1, positions, "
                         f"width); got samples of shape {tuple(in_shape)}")


class NgramBag(Layer):
    """One-hot word grid ``(n, 1, h, w)`` -> ``(n, dim, 1, 1)``: ``scale`` times the mean
    of the trained rows (``params["T"]``, ``(buckets, dim)``, starting at 0) of the
    sentence's words and neighbouring word pairs (see :func:`ngram_ids`); an empty
    sentence gives 0.

    With ``rows``, the table holds only that many rows, ``(rows, dim)``, and the buffer
    ``columns`` ``(buckets,)`` int32 (set by :meth:`set_columns`) gives each bucket's
    row, or -1: such a bucket still counts in the mean, as a row of zeros. A fit gives
    rows to the buckets its sentences hold, and nothing else: a row no sentence of the
    fit holds gets no gradient, so with the table starting at 0 (and Adam's or SGD's
    steps of a zero gradient from zero moments being 0) it would stay 0; the compact
    table trains to the same numbers in less time and memory.

    ``grads["T"]`` can be a view of a buffer the next backward pass overwrites (only
    the rows of a batch's n-grams are rewritten): copy it to keep it.

    Parameters
    ----------
    dim : int
        Width of the sentence vector.
    buckets : int
        Rows of the table the n-grams are hashed into.
    trained : int or None
        Word columns from ``trained`` on count as the unknown word (column 0). None:
        every column is a word of its own.
    n : {1, 2}, default 2
        Words only, or words and pairs.
    rows : int or None, default None
        The table's rows when it is compact (None: one per bucket).
    scale : float, default 1
        What the table's rows count for. Adam's steps do not depend on a gradient's
        size, so the bag then learns ``scale`` times faster than the layers beside it:
        a row moves only in the steps whose batch holds its n-gram (fastText trains
        its bag at a learning rate of 0.1 to 1).

    Examples
    --------
    >>> import numpy as np
    >>> from gridnet.core.bag import NgramBag
    >>> bag = NgramBag(4, buckets=64)
    >>> bag.build((1, 5, 10), np.random.default_rng(0))
    (4, 1, 1)
    """

    trainable = True
    TRANSIENT = Layer.TRANSIENT + ("_bag", "_dT", "_dirty")
    #: the mean's construction: None for the backend's, or "numba" / "numpy"
    kernels = None

    def __init__(self, dim, buckets=2**17, trained=None, n=2, scale=1.0, rows=None):
        super().__init__()
        if int(dim) < 1 or int(buckets) < 1 or not (rows is None or 1 <= int(rows) <= int(buckets)):
            raise ValueError(f"dim and buckets must be positive ints, rows None or in [1, buckets]; "
                             f"got {dim!r}, {buckets!r}, {rows!r}")
        if n not in (1, 2):
            raise ValueError(f"n must be 1 or 2; got {n!r}")
        self.dim = int(dim)
        self.buckets = int(buckets)
        self.trained = None if trained is None else int(trained)
        self.n = int(n)
        self.scale = float(scale)
        self.rows = None if rows is None else int(rows)

    def get_config(self):
        config = {"dim": self.dim, "buckets": self.buckets, "trained": self.trained, "n": self.n,
                  "scale": self.scale}
        return config if self.rows is None else {**config, "rows": self.rows}

    def describe(self):
        rows = "" if self.rows is None else f", {self.rows} rows"
        return f"NgramBag({self.dim}, {self.buckets} buckets{rows}, {self.n}-grams)"

    def build(self, in_shape, rng, dtype=np.float32):
        _check_word_grid(self, in_shape)
        self.in_shape = tuple(in_shape)
        self.out_shape = (self.dim, 1, 1)
        self.params = {"T": np.zeros((self.buckets if self.rows is None else self.rows, self.dim),
                                     dtype=dtype)}
        self.grads = {"T": np.zeros_like(self.params["T"])}
        if self.rows is not None:
            self.buffers = {"columns": np.full(self.buckets, -1, np.int32)}
        return self.out_shape

    def set_columns(self, used):
        """Give the compact table's rows, in order, to the distinct buckets ``used``
        ``(rows,)``, sorted (the order keeps the sums of the full table's, to the bit)."""
        used = np.asarray(used)
        if (self.rows is None or used.shape != (self.rows,) or used.min() < 0
                or used.max() >= self.buckets or (np.diff(used) <= 0).any()):
            raise ValueError(f"used must hold {self.rows} increasing buckets in [0, {self.buckets}) "
                             f"for a table of rows={self.rows}")
        self.buffers["columns"][...] = -1
        self.buffers["columns"][used] = np.arange(self.rows, dtype=np.int32)

    def _mean(self, idx, n_rows):
        """The sparse (n, table rows) matrix that averages each sentence's n-gram rows
        (times ``scale``)."""
        from scipy import sparse
        trained = self.in_shape[2] if self.trained is None else self.trained
        shape = (n_rows, self.params["T"].shape[0])
        if (self.kernels or kernels.backend()) == "numba":
            columns = self.buffers["columns"] if self.rows is not None else np.empty(0, np.int32)
            return sparse.csr_matrix(kernels.bag_csr(idx, trained, self.buckets, self.n, PAIR_HASH,
                                                     columns, self.scale, self.params["T"].dtype),
                                     shape=shape)
        rows, ids = ngram_ids(idx, trained, self.buckets, self.n)
        counts = np.bincount(rows, minlength=n_rows)
        weight = (self.scale / np.maximum(counts, 1))[rows].astype(self.params["T"].dtype)
        if self.rows is not None:
            ids = self.buffers["columns"][ids]
            has = ids >= 0
            rows, ids, weight = rows[has], ids[has], weight[has]
        return sparse.csr_matrix((weight, (rows, ids)), shape=shape)

    def forward(self, x, training=False):
        """x: one-hot grid (n, 1, h, w) -> (n, dim, 1, 1)"""
        idx = word_indices(self, x)
        M = self._mean(idx, idx.shape[0])
        self._bag = M if training else None
        return np.asarray(M @ self.params["T"])[:, :, None, None]

    def backward(self, grad, input_grad=True):
        """grad: (n, dim, 1, 1) -> None: the input is data (word indices); the input's
        gradient is 0 almost everywhere and is not computed (None)."""
        M = self.__dict__.get("_bag")
        if M is None:
            raise RuntimeError("backward called without a training forward pass")
        self._bag = None
        T, g = self.params["T"], grad[:, :, 0, 0]
        if (self.kernels or kernels.backend()) == "numba" and g.dtype == T.dtype == M.dtype:
            buf = self.__dict__.get("_dT")
            if buf is None or buf.shape != T.shape or buf.dtype != T.dtype:
                buf, self._dirty = np.zeros_like(T), np.empty(0, M.indices.dtype)
                self._dT = buf
            kernels.bag_dw(M, g, self._dirty, buf)
            self._dirty = M.indices.copy()
            self.grads["T"] = buf[:]     # a view: valid until the next backward pass
        else:
            self.grads["T"] = np.asarray(M.T @ g)
        return None


class NgramLinear(Layer):
    """One-hot word grid ``(n, 1, h, w)`` -> logits ``(n, k)``: a linear classifier on
    the sentence's words and neighbouring word pairs (hashed as :class:`NgramBag`
    hashes them), weighted as scikit-learn's ``TfidfVectorizer(sublinear_tf=True)``
    weighs them: each n-gram 1 + log of its count times its ``idf``, the sentence's
    vector scaled to length 1, then ``scale * (v @ W + b)``. An n-gram that fitting did
    not see (bucket ``columns == -1``) counts for nothing.

    Its arrays are buffers, set by :meth:`set_model` (``gridnet.wide`` fits them with a
    logistic regression), never moved by an optimizer: ``columns`` ``(buckets,)``
    int32, the row of ``W`` of each bucket; ``idf`` ``(n_features,)``; ``W``
    ``(n_features, k)``; ``b`` ``(k,)``.

    Parameters
    ----------
    n_classes, n_features : int
        ``k``, and the n-grams (rows of ``W``) the model knows.
    buckets, trained, n : as :class:`NgramBag`.
    scale : float, default 1
        What the logits count for (in an ensemble's mean, against the other members).

    Examples
    --------
    >>> import numpy as np
    >>> from gridnet.core.bag import NgramLinear
    >>> lin = NgramLinear(2, n_features=3, buckets=16)
    >>> lin.build((1, 4, 10), np.random.default_rng(0))
    (2,)
    >>> lin.set_model(np.array([1, 2, 3]), np.ones(3), np.eye(3, 2), np.zeros(2))
    >>> lin.forward(np.array([[[[0] * 10, [0, 1] + [0] * 8, [0] * 10, [0] * 10]]])).round(3)
    array([[1., 0.]], dtype=float32)
    """

    weightless = True

    def __init__(self, n_classes, n_features, buckets=2**17, trained=None, n=2, scale=1.0):
        super().__init__()
        if int(n_classes) < 2 or int(n_features) < 1 or int(buckets) < 1:
            raise ValueError(f"n_classes must be at least 2, n_features and buckets positive; "
                             f"got {n_classes!r}, {n_features!r}, {buckets!r}")
        if n not in (1, 2):
            raise ValueError(f"n must be 1 or 2; got {n!r}")
        self.n_classes, self.n_features = int(n_classes), int(n_features)
        self.buckets, self.n, self.scale = int(buckets), int(n), float(scale)
        self.trained = None if trained is None else int(trained)

    def get_config(self):
        return {"n_classes": self.n_classes, "n_features": self.n_features, "buckets": self.buckets,
                "trained": self.trained, "n": self.n, "scale": self.scale}

    def describe(self):
        return f"NgramLinear({self.n_features} n-grams, {self.n}-grams, TF-IDF)"

    def build(self, in_shape, rng, dtype=np.float32):
        _check_word_grid(self, in_shape)
        self.in_shape, self.out_shape = tuple(in_shape), (self.n_classes,)
        self.buffers = {"columns": np.full(self.buckets, -1, np.int32),
                        "idf": np.zeros(self.n_features, dtype),
                        "W": np.zeros((self.n_features, self.n_classes), dtype),
                        "b": np.zeros(self.n_classes, dtype)}
        return self.out_shape

    def set_model(self, used, idf, W, b):
        """Fill the buffers: ``used`` ``(n_features,)``, the bucket of each row of ``W``
        (distinct); ``idf``, ``W``, ``b`` as in the class docstring."""
        used = np.asarray(used)
        if (used.shape != (self.n_features,) or len(np.unique(used)) != len(used)
                or used.min() < 0 or used.max() >= self.buckets):
            raise ValueError(f"used must hold {self.n_features} distinct buckets in [0, {self.buckets})")
        buf = self.buffers
        buf["columns"][...] = -1
        buf["columns"][used] = np.arange(self.n_features, dtype=np.int32)
        buf["idf"][...], buf["W"][...], buf["b"][...] = idf, W, b

    def tfidf(self, idx):
        """The sparse ``(n, n_features)`` TF-IDF rows (float64) of word index rows ``idx``."""
        from scipy import sparse
        trained = self.in_shape[2] if self.trained is None else self.trained
        rows, ids = ngram_ids(idx, trained, self.buckets, self.n)
        cols = self.buffers["columns"][ids]
        keep = cols >= 0
        M = sparse.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])),
                              shape=(idx.shape[0], self.n_features))
        M.sum_duplicates()
        M.data = (1.0 + np.log(M.data)) * self.buffers["idf"][M.indices]
        norm = np.sqrt(np.asarray(M.multiply(M).sum(axis=1))).ravel()
        return sparse.diags(1.0 / np.maximum(norm, 1e-12)) @ M

    def forward(self, x, training=False):
        """x: one-hot grid (n, 1, h, w) -> (n, k)"""
        M = self.tfidf(word_indices(self, x))
        z = np.asarray(M @ self.buffers["W"].astype(np.float64)) + self.buffers["b"]
        return (self.scale * z).astype(self.buffers["W"].dtype)

    def backward(self, grad, input_grad=True):
        """Nothing to learn here (the buffers are fitted elsewhere); the input is data:
        None."""
        return None
