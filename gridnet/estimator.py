"""GridNetClassifier: the CNN core as a scikit-learn classifier; saving and loading it."""
from __future__ import annotations

import copy
import logging
import numbers
import time

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (_check_sample_weight, check_array, check_is_fitted,
                                      column_or_1d, validate_data)
from tqdm.auto import tqdm

from . import architectures, model_file, training
from .core import is_onehot, make_optimizer, softmax

__all__ = ["GridNetClassifier", "load", "check_missing_labels"]

logger = logging.getLogger(__name__)

_CHECK_CHUNK = 1 << 16     # samples per chunk when checking a memmap for NaN/inf


def _check_finite_memmap(X):
    """A float memmap, checked chunk by chunk (never read whole)."""
    if X.dtype.kind != "f":
        raise ValueError(f"a memmap X must hold floats; got dtype {X.dtype}")
    if X.shape[0] == 0:
        raise ValueError("X is empty: 0 samples; at least 1 is required")
    for start in range(0, X.shape[0], _CHECK_CHUNK):
        block = np.asarray(X[start:start + _CHECK_CHUNK])
        if not np.isfinite(block).all():
            bad = start + int(np.nonzero(~np.isfinite(block.reshape(len(block), -1)).all(axis=1))[0][0])
            raise ValueError(f"X contains NaN or infinity (first at sample {bad})")
    return X


def _as_4d(grid):
    """(n, f) -> (n, 1, 1, f) strips; (n, h, w) -> (n, 1, h, w); (n, c, h, w) as is."""
    if grid.ndim == 2:
        return grid.reshape(grid.shape[0], 1, 1, grid.shape[1])
    if grid.ndim == 3:
        return grid.reshape(grid.shape[0], 1, *grid.shape[1:])
    if grid.ndim != 4:
        hint = (" Reshape your data: X.reshape(-1, 1) for one feature or "
                "X.reshape(1, -1) for one sample." if grid.ndim == 1 else "")
        raise ValueError(f"X has {grid.ndim} dimension(s) {grid.shape}; expected "
                         f"(n, c, h, w), (n, h, w) or (n, features).{hint}")
    return grid


def _validate_grids(est, X, reset):
    """X -> an array (a memmap stays one) or one-hot grid of shape (n, c, h, w); sets
    (``reset``) or checks ``est.grid_shape_`` and ``n_features_in_``."""
    if is_onehot(X):
        grid = X
    elif sp.issparse(X):
        raise TypeError("GridNetClassifier does not take scipy sparse matrices; "
                        "pass a dense array (n, f), (n, h, w) or (n, c, h, w)")
    elif isinstance(X, np.memmap):
        grid = _as_4d(_check_finite_memmap(X))
    else:
        grid = check_array(X, dtype=[np.float32, np.float64], ensure_2d=False,
                           allow_nd=True, input_name="X").astype(np.float32, copy=False)
        if grid.ndim == 2:    # feature names and counts, as scikit-learn does
            validate_data(est, X if hasattr(X, "columns") else grid, reset=reset,
                          skip_check_array=True)
        grid = _as_4d(grid)
    shape = tuple(grid.shape)
    if shape[0] == 0:
        raise ValueError(f"X is empty: shape {shape}; at least 1 sample is required")
    if 0 in shape[1:]:
        raise ValueError(f"X has an empty axis: shape {shape}")
    cell = tuple(int(s) for s in shape[1:])
    if reset:
        est.grid_shape_, est.n_features_in_ = cell, int(np.prod(cell))
    elif cell != est.grid_shape_:
        name, nf = type(est).__name__, int(np.prod(cell))
        if nf != est.n_features_in_:
            raise ValueError(f"X has {nf} features, but {name} is expecting {est.n_features_in_} "
                             f"features as input (grids of shape {est.grid_shape_}; got {cell})")
        raise ValueError(f"X has grids of shape {cell}, but {name} was fitted on grids of "
                         f"shape {est.grid_shape_}")
    return grid


def check_missing_labels(y, what="y"):
    """An object array of labels holding None or NaN: a ``ValueError`` naming the
    samples (scikit-learn's own checks would fail on sorting them)."""
    y = np.asarray(y)
    if y.dtype.kind != "O":
        return
    miss = [i for i, v in enumerate(y)
            if v is None or (isinstance(v, (float, np.floating)) and np.isnan(v))]
    if miss:
        shown = ", ".join(map(str, miss[:10])) + (", ..." if len(miss) > 10 else "")
        raise ValueError(f"{what} has {len(miss)} missing labels (None or NaN), at samples "
                         f"{shown}; drop those samples or give them a label")


def _sample_weights(sample_weight, grid):
    """``sample_weight`` checked as scikit-learn checks it (a number is every sample's
    weight): float32 (n,), non-negative, finite, not all zero; None stays None (every
    sample counts once)."""
    if sample_weight is None:
        return None
    n = grid.shape[0]
    w = np.asarray(_check_sample_weight(sample_weight, np.empty((n, 0)), dtype=np.float64,
                                        copy=True))
    bad = np.nonzero(~(w >= 0))[0]           # negative or NaN
    if len(bad):
        raise ValueError(f"sample_weight must be non-negative; sample {bad[0]} has weight "
                         f"{float(w[bad[0]])} ({len(bad)} such)")
    if not w.any():
        raise ValueError("sample_weight is 0 for every sample; at least one must be positive")
    return w.astype(np.float32)


def encode_labels(y, n, classes=None):
    """Labels ``y`` (n,) -> (classes, codes (n,) indices into classes). With ``classes``
    given, every label must be one of them."""
    if y is None:
        raise ValueError("GridNetClassifier requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per sample); got shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"X has {n} samples but y has {len(y)} labels; they must match")
    check_missing_labels(y)
    check_classification_targets(y)
    if classes is None:
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y has only 1 class ({classes[0].item()!r}); a classifier needs "
                             "samples of at least 2 classes")
        return classes, codes.astype(np.intp)
    unknown = np.setdiff1d(y, classes)
    if len(unknown):
        raise ValueError(f"y has labels {unknown.tolist()[:5]} that are not in classes "
                         f"{classes.tolist()}")
    return classes, np.searchsorted(classes, y).astype(np.intp)


# validation, presets and the loop's parts live in functions beside it and in training.py;
# the model file in model_file.py
class GridNetClassifier(ClassifierMixin, BaseEstimator):
    """A convolutional network classifier for grids ``(n, c, h, w)``.

    The architecture comes from a ``preset``, from plain hyperparameters, or from an
    explicit list of ``layers``. Architecture parameters left at ``None`` take the
    preset's default (see ``gridnet.architectures.PRESETS``).

    - ``preset=None`` (the default) picks one from the grid in ``fit`` (``preset_``): a
      one-hot word grid is "text"; a grid at least 16 by 16 "audio" (spectrograms,
      larger pictures); a smaller one, or a one-row strip (a table), "image".
    - ``"image"``: ``conv_blocks`` blocks of [Conv2D(k x k, "same",
      ReLU), MaxPool2D(pool_size, pool_stride)], the features doubling from ``filters``
      in each block, then Flatten, Dense(``dense_units``, ReLU), Dropout, Dense(classes).
      A kernel or pooling window never exceeds the grid: on a 1-high strip (a table)
      the network is one-dimensional (1 x k kernels, pooling along the width).
    - ``"audio"``: the same, three blocks from 16 features, for log-mel spectrograms
      (height = frequency, width = time).
    - ``"text"``: the sentence CNN (Kim, 2014) for word-by-position grids ``(n, 1,
      positions, width)``: a convolution one position tall and the full width learns a
      ``embed_dim``-wide vector per word, then branches of ``filters`` features of each
      height in ``kernel_size`` (3, 4, 5) with ReLU and max over positions,
      concatenated, Dropout, Dense(classes). When the one-hot grid carries starting
      vectors (``TextAdapter(embedding=...)``), the word vectors start from them (and
      ``embed_dim`` is their width): Kim's CNN-non-static; when it also carries fixed
      vectors (pretrained, the default), they are a second, untrained channel beside
      them (Kim's multichannel), and a bag of the sentence's words and word pairs
      (fastText's sentence vector, ``ngram_dim`` wide, learning faster than the CNN)
      runs beside the CNN, joined before the output layer (``ngram_dim=0``: none; a
      grid without pretrained vectors has none unless ``ngram_dim`` is given).

    Parameters
    ----------
    preset : {None, "image", "audio", "text"}
    layers : list of gridnet layers, optional
        The body of the network; it is copied for each fit, a Flatten is added if it
        ends in a grid, and the output Dense(n_classes) is appended.
    conv_blocks, filters, kernel_size, pool_size, pool_stride, dense_units, dropout,
    embed_dim, ngram_dim : architecture hyperparameters (None: the preset's). ``filters`` may be a
        list, one per block; ``dense_units=0`` drops the hidden dense layer.
    batch_size : int, default 32
    max_epochs : int, default 100
    learning_rate : float, default 1e-3
    optimizer : {"adam", "sgd", "nesterov"}, default "adam"
    momentum : float, default 0.9 (SGD only)
    weight_decay : float, default 0.0 (L2 on weights, not biases)
    class_weight : None, "balanced" or dict {class: weight}
    early_stopping : bool, default True
        Hold out ``validation_fraction`` of the training data (stratified), stop when
        the validation accuracy has not risen by ``tol`` for ``n_iter_no_change``
        epochs, and restore the weights of the best epoch (``max_epochs`` is then a
        safety net), as scikit-learn's MLP does. Without it, or with fewer than 10 samples, training stops when
        the training loss stalls the same way, or after ``max_epochs``.
    validation_fraction, tol
    n_iter_no_change : int or None, default None
        Epochs without a better one before training stops; None: the preset's (7 for
        "audio", 5 otherwise; ``n_iter_no_change_``).
    augment : "auto", None or callable ``(batch, rng) -> batch``, default "auto"
        Applied to a private copy of each training batch (see :mod:`gridnet.augment`).
        "auto": the preset's (SpecAugment-style masks and shifts for "audio", none
        otherwise; ``augment_``).
    ema_momentum : "auto", float in [0, 1) or None, default "auto"
        Keep an exponential moving average of the weights over the training steps
        (``a = d * a + (1 - d) * w`` after step ``t``, ``d = min(ema_momentum, (1 + t)
        / (10 + t))``, as Keras's ``use_ema`` with TensorFlow's ramp; see
        :class:`gridnet.training.WeightAverage`): it is what early stopping validates
        and what the model keeps (without a validation split, the average at the end).
        None or 0: the weights as trained. "auto": the preset's (0.995 for "audio",
        0.99 for "image", None for "text"; ``ema_momentum_``). ``partial_fit`` does not average.
    warm_start : bool, default False
        Continue from the previous fit's weights (and optimizer state).
    random_state : int, RandomState or None
        Same seed, same machine: the same result to the bit.
    verbose : bool or int
        One tqdm progress bar for the whole fit, showing the epoch, the loss and the
        validation score.

    Attributes
    ----------
    classes_ : (k,) array of labels
    n_features_in_ : int, values per sample ``c * h * w``
    grid_shape_ : (c, h, w) of the grids seen in fit (a 2-D ``(n, f)`` input is the
        strip ``(1, 1, f)``; ``(n, h, w)`` is ``(1, h, w)``)
    network_ : gridnet.Network
    history_ : list of dict, one per epoch: ``epoch``, ``loss``, ``val_loss``,
        ``val_score``, ``time`` (seconds)
    loss_curve_ : list of float; ``validation_scores_``; ``best_loss_`` (the lowest
        training loss); ``best_validation_score_`` (None without a validation split);
        ``n_iter_``; ``best_epoch_`` (the epoch whose weights were kept; None without a
        validation split)
    embedding_started_ : int, embedding columns started from the grid's vectors (0: none)
    augment_, n_iter_no_change_, ema_momentum_ : the training settings used (the
        preset's where the parameter was left at "auto" or None)
    preset_ : the preset used (``preset``, or the one picked from the grid; None with
        ``layers``)

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
                 dropout=None, embed_dim=None, ngram_dim=None, batch_size=32, max_epochs=100,
                 learning_rate=1e-3, optimizer="adam", momentum=0.9, weight_decay=0.0,
                 class_weight=None, early_stopping=True, validation_fraction=0.1,
                 n_iter_no_change=None, tol=1e-4, augment="auto", ema_momentum="auto",
                 warm_start=False, random_state=None, verbose=False):
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
        self.ngram_dim = ngram_dim
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
        self.ema_momentum = ema_momentum
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    # -- validation ----------------------------------------------------------------------
    def _check_params(self):
        architectures.hyperparameters(self.preset)      # checks the preset's name
        for name in ("batch_size", "max_epochs", "n_iter_no_change"):
            v = getattr(self, name)
            if name == "n_iter_no_change" and v is None:
                continue
            if not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        if not (isinstance(self.learning_rate, numbers.Real) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive number; got {self.learning_rate!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1); got {self.validation_fraction!r}")
        if not (self.augment is None or self.augment == "auto" or callable(self.augment)):
            raise ValueError(f"augment must be None, 'auto' or a callable (batch, rng) -> batch; "
                             f"got {self.augment!r}")
        m = self.ema_momentum
        if not (m is None or (isinstance(m, str) and m == "auto") or
                (isinstance(m, numbers.Real) and not isinstance(m, bool) and 0.0 <= m < 1.0)):
            raise ValueError(f"ema_momentum must be 'auto', None or a number in [0, 1); got {m!r}")
        make_optimizer(self.optimizer, self.learning_rate)   # checks the name

    def _validate_X(self, X, reset):
        """X -> an array (a memmap stays one) or one-hot grid of shape (n, c, h, w)."""
        return _validate_grids(self, X, reset)

    # -- architecture --------------------------------------------------------------------
    def _body(self, grid_shape, embedding=None, fixed=None, trained=None):
        if self.layers is not None:
            body = copy.deepcopy(list(self.layers))
            if not body:
                raise ValueError("layers is an empty list; pass None for the preset's layers")
            return body
        hp = architectures.hyperparameters(
            self.preset_, **{name: getattr(self, name) for name in (
                "conv_blocks", "filters", "kernel_size", "pool_size", "pool_stride",
                "dense_units", "dropout", "embed_dim", "ngram_dim")})
        return architectures.preset_layers(self.preset_, grid_shape, hp, embedding, self.embed_dim,
                                           fixed, trained)

    def _make_network(self, grid_shape, n_classes, rng, grid=None):
        """The network for grids ``grid_shape``; a one-hot ``grid``'s ``embedding`` ``(w,
        d)``: starting vectors for the text preset's embedding columns (zero rows: random
        start), its ``fixed`` ``(w, d)``: vectors the network keeps fixed beside them."""
        text = self.layers is None and self.preset_ == "text"
        embedding, fixed = getattr(grid, "embedding", None), getattr(grid, "fixed", None)
        if (embedding is not None or fixed is not None) and not text:
            logger.info("the grid carries word vectors; only the text preset uses them")
        embedding, fixed = (embedding, fixed) if text else (None, None)
        body = self._body(grid_shape, embedding, fixed, getattr(grid, "trained", None))
        net = architectures.classifier_network(body, grid_shape, n_classes, rng)
        self.embedding_started_ = 0
        if embedding is not None:
            self.embedding_started_ = architectures.start_embedding(
                architectures.word_vectors_layer(net), embedding)
        if fixed is not None:
            architectures.set_fixed(architectures.word_vectors_layer(net), fixed)
        return net

    # -- training ------------------------------------------------------------------------
    def _streams(self):
        return training.seed_streams(self.random_state)

    def _prepare(self, X, y, classes, partial):
        """Validate; return (grid, label codes, whether training starts afresh)."""
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
            _, codes = encode_labels(y, grid.shape[0], self.classes_)
        else:
            classes_, codes = encode_labels(y, grid.shape[0])
            if not first and not np.array_equal(classes_, self.classes_):
                raise ValueError(f"warm_start fit got classes {classes_.tolist()}; the model "
                                 f"has {self.classes_.tolist()}")
            self.classes_ = classes_
        return grid, codes, first

    def _initialize(self, grid, rng):
        grid_shape = self.grid_shape_
        self.preset_ = (None if self.layers is not None else
                        architectures.infer_preset(grid_shape, is_onehot(grid)) if self.preset is None
                        else self.preset)
        self.network_ = self._make_network(grid_shape, len(self.classes_), rng, grid)
        self._optimizer = None
        self.history_, self.loss_curve_, self.validation_scores_ = [], [], []
        self.best_loss_, self.n_iter_ = np.inf, 0

    def _epoch(self, grid, codes, rows, val, loss_fn, streams, bar, weights=None, average=None):
        """One epoch; its record (also appended to ``history_``). ``bar``: the run's
        progress bar (samples), which shows the epoch, loss and validation score;
        ``weights``: the samples' weights (n,) or None; ``average``: the weights' moving
        average (a :class:`training.WeightAverage`), which is what is validated."""
        t0 = time.perf_counter()
        self.n_iter_ += 1
        bar.set_description(f"epoch {self.n_iter_}")
        loss = training.run_epoch(self.network_, self._optimizer, loss_fn, grid, codes, rows,
                                  batch_size=int(self.batch_size), augment=self.augment_,
                                  streams=streams, bar=bar, epoch=self.n_iter_,
                                  sample_weight=weights, average=average)
        record = {"epoch": self.n_iter_, "loss": loss, "val_loss": None, "val_score": None}
        self.loss_curve_.append(loss)
        if val is not None:
            with training.averaged(average, self.network_):
                vloss, vscore = training.evaluate(self.network_, grid, codes, val, loss_fn,
                                                  self.batch_size, weights)
            record.update(val_loss=vloss, val_score=vscore)
            self.validation_scores_.append(vscore)
            bar.set_postfix(loss=f"{loss:.4f}", val_loss=f"{vloss:.4f}", val_score=f"{vscore:.4f}")
        record["time"] = time.perf_counter() - t0
        self.history_.append(record)
        if self.verbose:
            logger.info("epoch %d: %s", self.n_iter_, record)
        return record

    def _fit(self, X, y, classes=None, partial=False, sample_weight=None):
        grid, codes, first = self._prepare(X, y, classes, partial)
        weights = _sample_weights(sample_weight, grid)
        streams = self._streams()
        if first:
            self._initialize(grid, streams["init"])
        if getattr(self, "_optimizer", None) is None:     # new, or loaded from a file
            self._optimizer = make_optimizer(self.optimizer, self.learning_rate,
                                             self.weight_decay, self.momentum)
        augment, patience, ema = architectures.training_defaults(self.preset_)
        self.augment_ = augment if isinstance(self.augment, str) else self.augment
        self.n_iter_no_change_ = int(self.n_iter_no_change or patience)
        self.ema_momentum_ = ema if isinstance(self.ema_momentum, str) else self.ema_momentum
        average = (training.WeightAverage(self.ema_momentum_)
                   if self.ema_momentum_ and not partial else None)
        loss_fn = training.make_loss(self.class_weight, self.classes_, codes)
        rows, val = np.arange(grid.shape[0]), None
        if self.early_stopping and not partial and grid.shape[0] >= 10:
            rows, val = training.validation_split(codes, self.validation_fraction, streams["split"])
        epochs = 1 if partial else int(self.max_epochs)
        with tqdm(total=epochs * len(rows), unit="sample", disable=not self.verbose,
                  leave=bool(self.verbose), dynamic_ncols=True) as bar:
            if partial:
                record = self._epoch(grid, codes, rows, None, loss_fn, streams, bar, weights)
                self.best_loss_ = min(self.best_loss_, record["loss"])
                return self
            stopper = training.Stopper(self.n_iter_no_change_, self.tol, keep_best=val is not None)
            for _ in range(epochs):
                record = self._epoch(grid, codes, rows, val, loss_fn, streams, bar, weights,
                                     average)
                with training.averaged(average, self.network_):
                    stop = stopper.update(record, self.network_)
                if stop:
                    break
        self.best_loss_ = float(stopper.best_loss)
        self.best_validation_score_ = stopper.best_score if val is not None else None
        self.best_epoch_ = stopper.best_epoch if val is not None else None
        if val is None and average is not None:
            average.swap(self.network_)     # the averaged weights are the model
        stopper.restore(self.network_)
        return self

    def fit(self, X, y, sample_weight=None):
        """Train on grids ``X`` (n, c, h, w) (or (n, h, w), or (n, f)) with labels ``y`` (n,).

        ``sample_weight`` (n,), non-negative: each sample's loss counts that many times
        (times its ``class_weight``); the validation loss and accuracy that early
        stopping watches are weighted the same way. In a ``Pipeline`` pass it as
        ``gridnetclassifier__sample_weight``.
        """
        return self._fit(X, y, sample_weight=sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``(X, y)``, continuing from the current weights.

        ``classes`` (every label that will ever be seen) is required on the first call;
        ``sample_weight`` as in :meth:`fit`.
        """
        return self._fit(X, y, classes=classes, partial=True, sample_weight=sample_weight)

    # -- prediction ----------------------------------------------------------------------
    def _logits(self, X):
        return training.logits(self.network_, X, np.arange(X.shape[0]), len(self.classes_),
                               self.batch_size)

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

    # -- explanations --------------------------------------------------------------------
    def _target_codes(self, grid, target):
        """Class indices (n,) to explain: the predicted classes, or ``target`` (one
        label for every sample, or one label per sample)."""
        n = grid.shape[0]
        if target is None:
            return self._logits(grid).argmax(axis=1)
        t = np.asarray(target, dtype=object)
        labels = [t.item()] * n if t.ndim == 0 else t.tolist()
        if t.ndim > 1 or len(labels) != n:
            raise ValueError(f"target must be one label or one per sample ({n}); got shape {t.shape}")
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        unknown = [v for v in dict.fromkeys(labels) if v not in index]
        if unknown:
            raise ValueError(f"target names {unknown[:5]}, not classes of this model "
                             f"({self.classes_.tolist()})")
        return np.array([index[v] for v in labels], dtype=np.intp)

    def explain(self, X, target=None):
        """How much each cell of each grid drove the score of a class: gradient x input
        of the class's margin (its logit minus the mean of the others; see
        :mod:`gridnet.explain` for why this method).

        Parameters
        ----------
        X : grids (n, c, h, w), as for :meth:`predict`
        target : None, a label, or (n,) labels
            The class to explain; None: each sample's predicted class.

        Returns
        -------
        maps : float32 ``(n, h, w)`` (summed over channels; positive cells raised the
            class's margin, negative ones lowered it). For a one-hot word grid,
            ``(n, h)``: one value per word position (the map is 0 off the hot cells).

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> d = load_digits()
        >>> clf = GridNetClassifier(max_epochs=1, random_state=0).fit(d.images[:100], d.target[:100])
        >>> clf.explain(d.images[:2]).shape
        (2, 8, 8)
        """
        from .explain import gradient_x_input
        check_is_fitted(self)
        grid = self._validate_X(X, reset=False)
        codes = self._target_codes(grid, target)
        out = []
        step = max(int(self.batch_size), 64)
        for start in range(0, grid.shape[0], step):
            rows = np.arange(start, min(start + step, grid.shape[0]))
            out.append(gradient_x_input(self.network_, training.take_batch(grid, rows), codes[rows]))
        return np.concatenate(out)

    def explain_windows(self, X, target=None, top=3):
        """For the sentence CNN ("text" preset): the windows of word positions whose
        filters carried each sample's class (max over time names the position each
        winning filter fired at). A list per sample of up to ``top`` ``(start, stop,
        share)``: grid positions ``start:stop``, their share of the class's margin,
        largest first. ``TextAdapter.tokens_at_positions`` turns positions into words.
        """
        from .explain import winning_windows
        check_is_fitted(self)
        grid = self._validate_X(X, reset=False)
        codes = self._target_codes(grid, target)
        return winning_windows(self.network_, grid, codes, top=int(top))

    def summary(self):
        """The fitted network's Keras-style summary."""
        check_is_fitted(self)
        return self.network_.summary()

    def save(self, path, extra=None):
        """Save to ``path`` (.npz, no pickle); read back with :func:`gridnet.load`.
        ``extra`` (a JSON-able dict) is stored beside the model. To keep the adapter
        too, save the pipeline: ``gridnet.save(make_pipeline(adapter, clf), path)``."""
        model_file.save(self, path, extra)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


def load(path, return_extra=False):
    """The model saved at ``path`` (:mod:`gridnet.model_file`): a pipeline (adapter +
    classifier) when the file holds an adapter, as ``gridnet fit`` files and pipelines
    saved with :func:`gridnet.save` do, a :class:`GridNetClassifier` otherwise; with
    ``return_extra``, ``(model, extra)``.

    Examples
    --------
    >>> import gridnet, tempfile, os
    >>> from sklearn.datasets import load_digits
    >>> d = load_digits()
    >>> clf = gridnet.GridNetClassifier(max_epochs=1, random_state=0).fit(d.images[:100], d.target[:100])
    >>> path = os.path.join(tempfile.mkdtemp(), "digits.gridnet")
    >>> clf.save(path)
    >>> bool((gridnet.load(path).predict(d.images[:5]) == clf.predict(d.images[:5])).all())
    True
    """
    return model_file.load(path, GridNetClassifier, return_extra)
