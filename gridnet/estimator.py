"""GridNetClassifier: the CNN core as a scikit-learn classifier."""
from __future__ import annotations

import copy
import logging
import numbers
import time

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (check_array, check_is_fitted, column_or_1d,
                                      validate_data)

from . import layers as L
from .losses import SoftmaxCrossEntropy, softmax
from .network import Network, build_stack
from .optimizers import make_optimizer

__all__ = ["GridNetClassifier", "PRESETS"]

logger = logging.getLogger(__name__)

#: Default hyperparameters of each preset (used for every parameter left at None).
PRESETS = {
    None: dict(conv_blocks=2, filters=32, kernel_size=3, pool_size=2, dense_units=128,
               dropout=0.25, global_pool=False),
    "image": dict(conv_blocks=2, filters=32, kernel_size=3, pool_size=2, dense_units=128,
                  dropout=0.25, global_pool=False),
    "audio": dict(conv_blocks=3, filters=16, kernel_size=3, pool_size=2, dense_units=128,
                  dropout=0.3, global_pool=False),
    "text": dict(filters=100, kernel_size=(3, 4, 5), embed_dim=128, dense_units=0,
                 dropout=0.5),
}

#: Entry standard deviation of the starting word vectors a one-hot grid carries, once
#: scaled (a random column starts at sqrt(2 / width), about 0.015 for 9,000 words).
#: 0.05 was the first value tried on TREC-6 and was kept; not tuned further.
_EMBED_START_STD = 0.05

_CHECK_CHUNK = 1 << 16     # samples per chunk when checking a memmap for NaN/inf


def _n_samples(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


class GridNetClassifier(ClassifierMixin, BaseEstimator):
    """A convolutional network classifier for grids ``(n, c, h, w)``.

    The architecture comes from a ``preset``, from plain hyperparameters, or from an
    explicit list of ``layers``. Architecture parameters left at ``None`` take the
    preset's default (see ``PRESETS``).

    - ``preset=None`` / ``"image"``: ``conv_blocks`` blocks of [Conv2D(k x k, "same",
      ReLU), MaxPool2D(pool_size, pool_stride)], the features doubling from ``filters``
      in each block, then Flatten, Dense(``dense_units``, ReLU), Dropout, Dense(classes).
      A pooling window never exceeds the grid: on a 1-high strip it pools along the
      width only.
    - ``"audio"``: the same, three blocks from 16 features, for log-mel spectrograms
      (height = frequency, width = time).
    - ``"text"``: the sentence CNN (Kim, 2014) for word-by-position grids ``(n, 1,
      positions, width)``: a convolution one position tall and the full width learns a
      ``embed_dim``-wide vector per word, then branches of ``filters`` features of each
      height in ``kernel_size`` (3, 4, 5) with ReLU and max over positions,
      concatenated, Dropout, Dense(classes). When the one-hot grid carries starting
      vectors (``TextAdapter(embedding=...)``), the word vectors start from them (and
      ``embed_dim`` is their width): Kim's CNN-non-static.

    Parameters
    ----------
    preset : {None, "image", "audio", "text"}
    layers : list of gridnet layers, optional
        The body of the network; it is copied for each fit, a Flatten is added if it
        ends in a grid, and the output Dense(n_classes) is appended.
    conv_blocks, filters, kernel_size, pool_size, pool_stride, dense_units, dropout,
    embed_dim : architecture hyperparameters (None: the preset's). ``filters`` may be a
        list, one per block; ``dense_units=0`` drops the hidden dense layer.
    batch_size : int, default 32
    max_epochs : int, default 30
    learning_rate : float, default 1e-3
    optimizer : {"adam", "sgd", "nesterov"}, default "adam"
    momentum : float, default 0.9 (SGD only)
    weight_decay : float, default 0.0 (L2 on weights, not biases)
    class_weight : None, "balanced" or dict {class: weight}
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data (stratified), stop when
        the validation loss has not improved by ``tol`` for ``n_iter_no_change``
        epochs, and restore the weights of the best epoch. Without it, training stops
        when the training loss stalls the same way, or after ``max_epochs``.
    validation_fraction, n_iter_no_change, tol
    augment : callable ``(batch, rng) -> batch``, optional
        Applied to a private copy of each training batch (see :mod:`gridnet.augment`).
    warm_start : bool, default False
        Continue from the previous fit's weights (and optimizer state).
    random_state : int, RandomState or None
        Same seed, same machine: the same result to the bit.
    verbose : bool or int
        A tqdm progress bar per epoch with the loss and validation score.

    Attributes
    ----------
    classes_ : (k,) array of labels
    n_features_in_ : int, values per sample ``c * h * w``
    grid_shape_ : (c, h, w) of the grids seen in fit (a 2-D ``(n, f)`` input is the
        strip ``(1, 1, f)``; ``(n, h, w)`` is ``(1, h, w)``)
    network_ : gridnet.Network
    history_ : list of dict, one per epoch: ``epoch``, ``loss``, ``val_loss``,
        ``val_score``, ``time`` (seconds)
    loss_curve_ : list of float; ``validation_scores_``; ``best_loss_``; ``n_iter_``
    embedding_started_ : int, embedding columns started from the grid's vectors (0: none)

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from gridnet import GridNetClassifier
    >>> digits = load_digits()
    >>> X, y = digits.images[:, None] / 16.0, digits.target
    >>> clf = GridNetClassifier(max_epochs=2, random_state=0).fit(X[:200], y[:200])
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    def __init__(self, preset=None, layers=None, *, conv_blocks=None, filters=None,
                 kernel_size=None, pool_size=None, pool_stride=None, dense_units=None,
                 dropout=None, embed_dim=None, batch_size=32, max_epochs=30,
                 learning_rate=1e-3, optimizer="adam", momentum=0.9, weight_decay=0.0,
                 class_weight=None, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, tol=1e-4, augment=None, warm_start=False,
                 random_state=None, verbose=False):
        self.preset = preset
        self.layers = layers
        self.conv_blocks = conv_blocks
        self.filters = filters
        self.kernel_size = kernel_size
        self.pool_size = pool_size
        self.pool_stride = pool_stride
        self.dense_units = dense_units
        self.dropout = dropout
        self.embed_dim = embed_dim
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.augment = augment
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    # -- validation ----------------------------------------------------------------------
    def _check_params(self):
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {[p for p in PRESETS]}; got {self.preset!r}")
        for name in ("batch_size", "max_epochs", "n_iter_no_change"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        if not (isinstance(self.learning_rate, numbers.Real) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive number; got {self.learning_rate!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1); got {self.validation_fraction!r}")
        if self.augment is not None and not callable(self.augment):
            raise ValueError(f"augment must be a callable (batch, rng) -> batch; got {self.augment!r}")
        make_optimizer(self.optimizer, self.learning_rate)   # checks the name

    def _hp(self, name):
        value = getattr(self, name)
        return PRESETS[self.preset].get(name) if value is None else value

    def _validate_X(self, X, reset):
        """X -> (array or one-hot grid of shape (n, c, h, w), is_memmap)."""
        if L.is_onehot(X):
            grid = X
            shape = tuple(X.shape)
        else:
            if sp.issparse(X):
                raise TypeError("GridNetClassifier does not take scipy sparse matrices; "
                                "pass a dense array (n, f), (n, h, w) or (n, c, h, w)")
            if isinstance(X, np.memmap):
                if X.dtype.kind != "f":
                    raise ValueError(f"a memmap X must hold floats; got dtype {X.dtype}")
                if X.shape[0] == 0:
                    raise ValueError("X is empty: 0 samples; at least 1 is required")
                for start in range(0, X.shape[0], _CHECK_CHUNK):
                    block = np.asarray(X[start:start + _CHECK_CHUNK])
                    if not np.isfinite(block).all():
                        bad = start + int(np.nonzero(~np.isfinite(block.reshape(len(block), -1)).all(axis=1))[0][0])
                        raise ValueError(f"X contains NaN or infinity (first at sample {bad})")
                grid = X
            else:
                grid = check_array(X, dtype=[np.float32, np.float64], ensure_2d=False,
                                   allow_nd=True, input_name="X")
                grid = grid.astype(np.float32, copy=False)
                if grid.ndim == 2:    # feature names and counts, as scikit-learn does
                    validate_data(self, X if hasattr(X, "columns") else grid, reset=reset,
                                  skip_check_array=True)
            if grid.ndim == 2:
                grid = grid.reshape(grid.shape[0], 1, 1, grid.shape[1])
            elif grid.ndim == 3:
                grid = grid.reshape(grid.shape[0], 1, *grid.shape[1:])
            elif grid.ndim != 4:
                hint = (" Reshape your data: X.reshape(-1, 1) for one feature or "
                        "X.reshape(1, -1) for one sample." if grid.ndim == 1 else "")
                raise ValueError(f"X has {grid.ndim} dimension(s) {grid.shape}; expected "
                                 f"(n, c, h, w), (n, h, w) or (n, features).{hint}")
            shape = grid.shape
        if shape[0] == 0:
            raise ValueError(f"X is empty: shape {shape}; at least 1 sample is required")
        if 0 in shape[1:]:
            raise ValueError(f"X has an empty axis: shape {shape}")
        cell = tuple(int(s) for s in shape[1:])
        if reset:
            self.grid_shape_ = cell
            self.n_features_in_ = int(np.prod(cell))
        elif cell != self.grid_shape_:
            nf = int(np.prod(cell))
            if nf != self.n_features_in_:
                raise ValueError(
                    f"X has {nf} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input (grids of shape "
                    f"{self.grid_shape_}; got {cell})")
            raise ValueError(f"X has grids of shape {cell}, but {type(self).__name__} was "
                             f"fitted on grids of shape {self.grid_shape_}")
        return grid

    @staticmethod
    def _batch(X, idx):
        """Rows ``idx`` of X as float32 (a memmap is read only there)."""
        if L.is_onehot(X):
            return X[idx]
        return np.asarray(X[idx], dtype=np.float32)

    def _encode_y(self, y, n, classes=None):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D (one label per sample); got shape {y.shape}")
        if len(y) != n:
            raise ValueError(f"X has {n} samples but y has {len(y)} labels; they must match")
        check_classification_targets(y)
        if classes is None:
            classes, codes = np.unique(y, return_inverse=True)
            if len(classes) < 2:
                raise ValueError(f"y has only 1 class ({classes[0]!r}); a classifier needs "
                                 "samples of at least 2 classes")
            return classes, codes.astype(np.intp)
        unknown = np.setdiff1d(y, classes)
        if len(unknown):
            raise ValueError(f"y has labels {unknown.tolist()[:5]} that are not in classes "
                             f"{classes.tolist()}")
        return classes, np.searchsorted(classes, y).astype(np.intp)

    # -- architecture --------------------------------------------------------------------
    def _body(self, grid_shape, embedding=None):
        c, h, w = grid_shape
        if self.layers is not None:
            body = copy.deepcopy(list(self.layers))
            if not body:
                raise ValueError("layers is an empty list; pass None for the preset's layers")
            return body
        if self.preset == "text":
            return self._text_body(grid_shape, embedding)
        blocks = int(self._hp("conv_blocks"))
        filters = self._hp("filters")
        filters = list(filters) if isinstance(filters, (list, tuple)) else \
            [int(filters) * 2 ** b for b in range(blocks)]
        if len(filters) != blocks:
            raise ValueError(f"filters lists {len(filters)} values for {blocks} conv_blocks")
        k = self._hp("kernel_size")
        window = L._pair(self._hp("pool_size"), "pool_size")
        stride = self.pool_stride
        body = []
        for f in filters:
            body.append(L.Conv2D(int(f), k, padding="same", activation="relu"))
            pw = (min(window[0], h), min(window[1], w))
            if pw != (1, 1):
                ps = L._pair(stride, "pool_stride") if stride is not None else pw
                ps = (min(ps[0], pw[0]), min(ps[1], pw[1]))
                body.append(L.MaxPool2D(pw, ps))
                h, w = (h - pw[0]) // ps[0] + 1, (w - pw[1]) // ps[1] + 1
        return self._head(body)

    def _head(self, body):
        """Flatten, then the optional hidden Dense(dense_units, ReLU) and Dropout."""
        body.append(L.Flatten())
        units = int(self._hp("dense_units") or 0)
        if units:
            body.append(L.Dense(units, activation="relu"))
        rate = float(self._hp("dropout") or 0.0)
        if rate:
            body.append(L.Dropout(rate))
        return body

    def _text_body(self, grid_shape, embedding=None):
        c, h, w = grid_shape
        heights = self._hp("kernel_size")
        heights = [heights] if isinstance(heights, numbers.Integral) else list(heights)
        if max(heights) > h:
            raise ValueError(
                f"the text preset's tallest filter spans {max(heights)} positions, but the "
                f"grids have only {h}; use more positions or smaller kernel_size")
        emb = int(self._hp("embed_dim"))
        if embedding is not None:
            if self.embed_dim is not None and int(self.embed_dim) != embedding.shape[1]:
                raise ValueError(
                    f"embed_dim={self.embed_dim}, but the grid's starting embedding has "
                    f"{embedding.shape[1]} dimensions; leave embed_dim at None to take theirs")
            emb = int(embedding.shape[1])
        nf = int(self._hp("filters"))
        body = [L.Conv2D(emb, (1, w))]
        body.append(L.Branches([[L.Conv2D(nf, (k, 1), padding="same", activation="relu"),
                                  L.GlobalMaxPool("height")] for k in heights]))
        return self._head(body)

    def _make_network(self, grid_shape, n_classes, rng, embedding=None):
        """The network for grids ``grid_shape``; ``embedding`` ``(w, d)``: starting
        vectors for the text preset's embedding columns (zero rows: random start)."""
        text = self.layers is None and self.preset == "text"
        if embedding is not None and not text:
            logger.info("the grid carries a starting embedding; only the text preset uses it")
        embedding = embedding if text else None
        body = self._body(grid_shape, embedding)
        try:
            shape = build_stack(body, grid_shape, rng)
        except ValueError as exc:
            raise ValueError(f"the network cannot take grids of shape {grid_shape} (smaller than "
                             f"its receptive field?): {exc}") from None
        if len(shape) != 1:
            body.append(L.Flatten())
            shape = build_stack(body[-1:], shape, rng)
        head = L.Dense(n_classes)
        build_stack([head], shape, rng)
        net = Network(body + [head])
        net.in_shape, net.out_shape = tuple(grid_shape), (n_classes,)
        self.embedding_started_ = 0
        if embedding is not None:
            self.embedding_started_ = self._start_embedding(body[0], embedding)
        return net

    @staticmethod
    def _start_embedding(conv, embedding):
        """Columns of the embedding convolution (``W``: ``(d, w)``) from the rows of
        ``embedding`` that hold a vector, scaled so that their entries have standard
        deviation ``_EMBED_START_STD``; returns how many columns were set."""
        E = np.asarray(embedding, dtype=np.float32)
        found = np.any(E != 0, axis=1)
        if not found.any():
            return 0
        scale = _EMBED_START_STD / max(float(E[found].std()), 1e-12)
        W = conv.params["W"]
        W[:, found] = (E[found] * np.float32(scale)).T
        return int(found.sum())

    # -- training ------------------------------------------------------------------------
    def _streams(self):
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        init, order, split, aug = np.random.SeedSequence(seed).spawn(4)
        return {"init": np.random.default_rng(init), "order": np.random.default_rng(order),
                "split": int(np.random.default_rng(split).integers(2**31)),
                "augment": np.random.default_rng(aug)}

    def _loss_fn(self, codes):
        cw = self.class_weight
        if cw is None:
            return SoftmaxCrossEntropy()
        k = len(self.classes_)
        if isinstance(cw, str):
            if cw != "balanced":
                raise ValueError(f"class_weight must be None, 'balanced' or a dict; got {cw!r}")
            present = np.unique(codes)
            w = np.ones(k)
            w[present] = compute_class_weight("balanced", classes=present, y=codes)
        elif isinstance(cw, dict):
            w = np.ones(k)
            for label, value in cw.items():
                where = np.nonzero(self.classes_ == label)[0]
                if not len(where):
                    raise ValueError(f"class_weight names class {label!r}, which is not in y")
                w[where[0]] = float(value)
        else:
            raise ValueError(f"class_weight must be None, 'balanced' or a dict; got {cw!r}")
        return SoftmaxCrossEntropy(class_weight=w.astype(np.float32))

    def _initialize(self, grid_shape, rng, embedding=None):
        self.network_ = self._make_network(grid_shape, len(self.classes_), rng, embedding)
        self._optimizer = make_optimizer(self.optimizer, self.learning_rate, self.weight_decay,
                                         self.momentum)
        self.history_, self.loss_curve_, self.validation_scores_ = [], [], []
        self.best_loss_, self.n_iter_ = np.inf, 0

    def _run_epoch(self, X, codes, rows, loss_fn, streams, epoch):
        from tqdm.auto import tqdm
        order = rows[streams["order"].permutation(len(rows))]
        bs = int(self.batch_size)
        total, count = 0.0, 0
        bar = tqdm(total=len(order), desc=f"epoch {epoch}", unit="sample",
                   disable=not self.verbose, leave=bool(self.verbose))
        for start in range(0, len(order), bs):
            idx = np.sort(order[start:start + bs])
            xb = self._batch(X, idx)
            if self.augment is not None:
                xb = self.augment(xb if L.is_onehot(xb) else xb.copy(), streams["augment"])
            logits = self.network_.forward(xb, training=True)
            loss, grad = loss_fn(logits, codes[idx])
            if not np.isfinite(loss):
                raise FloatingPointError(f"the training loss became {loss} in epoch {epoch}; "
                                         "lower learning_rate")
            self.network_.backward(grad, input_grad=False)
            self._optimizer.step(self.network_.parameters())
            total += loss * len(idx)
            count += len(idx)
            bar.update(len(idx))
            bar.set_postfix(loss=f"{total / count:.4f}")
        return total / max(count, 1), bar

    def _evaluate(self, X, codes, rows, loss_fn):
        logits = self._logits(X, rows)
        loss, _ = loss_fn(logits, codes[rows])
        return loss, float((logits.argmax(axis=1) == codes[rows]).mean())

    def _fit(self, X, y, classes=None, partial=False):
        self._check_params()
        if partial:    # partial_fit starts afresh only on its first call
            first = not hasattr(self, "classes_")
        else:          # fit starts afresh unless warm_start continues a fitted network
            first = not (self.warm_start and hasattr(self, "network_"))
        grid = self._validate_X(X, reset=first)
        if partial:
            if first:
                if classes is None:
                    raise ValueError("classes must be passed on the first call to partial_fit")
                self.classes_ = np.unique(np.asarray(classes))
            _, codes = self._encode_y(y, grid.shape[0], self.classes_)
        else:
            classes_, codes = self._encode_y(y, grid.shape[0])
            if not first and not np.array_equal(classes_, self.classes_):
                raise ValueError(f"warm_start fit got classes {classes_.tolist()}; the model "
                                 f"has {self.classes_.tolist()}")
            self.classes_ = classes_
        streams = self._streams()
        if first:
            self._initialize(self.grid_shape_, streams["init"], getattr(grid, "embedding", None))
        elif getattr(self, "_optimizer", None) is None:     # loaded from a file
            self._optimizer = make_optimizer(self.optimizer, self.learning_rate,
                                             self.weight_decay, self.momentum)
        loss_fn = self._loss_fn(codes)
        n = grid.shape[0]
        rows, val = np.arange(n), None
        if self.early_stopping and not partial:
            strat = codes if np.bincount(codes).min() >= 2 else None
            try:
                rows, val = train_test_split(np.arange(n), test_size=self.validation_fraction,
                                             random_state=streams["split"], stratify=strat)
            except ValueError:
                rows, val = train_test_split(np.arange(n), test_size=self.validation_fraction,
                                             random_state=streams["split"])
            rows, val = np.sort(rows), np.sort(val)
        epochs = 1 if partial else int(self.max_epochs)
        best_weights, stall = None, 0
        best = np.inf
        for _ in range(epochs):
            t0 = time.perf_counter()
            self.n_iter_ += 1
            loss, bar = self._run_epoch(grid, codes, rows, loss_fn, streams, self.n_iter_)
            record = {"epoch": self.n_iter_, "loss": loss, "val_loss": None, "val_score": None}
            self.loss_curve_.append(loss)
            watched = loss
            if val is not None:
                vloss, vscore = self._evaluate(grid, codes, val, loss_fn)
                record.update(val_loss=vloss, val_score=vscore)
                self.validation_scores_.append(vscore)
                watched = vloss
                bar.set_postfix(loss=f"{loss:.4f}", val_loss=f"{vloss:.4f}", val_score=f"{vscore:.4f}")
            bar.close()
            record["time"] = time.perf_counter() - t0
            self.history_.append(record)
            if self.verbose:
                logger.info("epoch %d: %s", self.n_iter_, record)
            if partial:
                self.best_loss_ = min(self.best_loss_, loss)
                break
            if watched < best - self.tol:
                best, stall = watched, 0
                if val is not None:
                    best_weights = self.network_.get_weights()
            else:
                stall += 1
            if stall >= self.n_iter_no_change:
                break
        if not partial:
            self.best_loss_ = float(best)
            if best_weights is not None:
                self.network_.set_weights(best_weights)
        return self

    def fit(self, X, y):
        """Train on grids ``X`` (n, c, h, w) (or (n, h, w), or (n, f)) with labels ``y`` (n,)."""
        return self._fit(X, y)

    def partial_fit(self, X, y, classes=None):
        """One epoch over ``(X, y)``, continuing from the current weights.

        ``classes`` (every label that will ever be seen) is required on the first call.
        """
        return self._fit(X, y, classes=classes, partial=True)

    # -- prediction ----------------------------------------------------------------------
    def _logits(self, X, rows=None):
        n = X.shape[0]
        rows = np.arange(n) if rows is None else rows
        step = max(int(self.batch_size), 256)
        out = np.empty((len(rows), len(self.classes_)), dtype=np.float32)
        for start in range(0, len(rows), step):
            out[start:start + step] = self.network_.forward(self._batch(X, rows[start:start + step]))
        return out

    def decision_function(self, X):
        """Logits (n, k); for two classes the margin of the second, (n,)."""
        check_is_fitted(self)
        logits = self._logits(self._validate_X(X, reset=False))
        if len(self.classes_) == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, X):
        """Class probabilities (n, k), columns in the order of ``classes_``."""
        check_is_fitted(self)
        return softmax(self._logits(self._validate_X(X, reset=False)))

    def predict(self, X):
        """Labels (n,)."""
        check_is_fitted(self)
        return self.classes_[self._logits(self._validate_X(X, reset=False)).argmax(axis=1)]

    def summary(self):
        """The fitted network's Keras-style summary."""
        check_is_fitted(self)
        return self.network_.summary()

    def save(self, path):
        """Save to ``path`` (.npz, no pickle); read back with :func:`gridnet.load`."""
        from .persist import save_classifier
        save_classifier(self, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
