"""GridNetClassifier: the CNN core as a scikit-learn classifier. Its checks live in
validation.py, the presets in architectures.py, the training loop's parts in
training.py, the model file in model_file.py."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from . import architectures, model_file, rejection, training, validation, views, wide
from .core import is_onehot, make_optimizer, softmax
from .calibration import fit_temperature
from .explain import ExplainMixin

__all__ = ["GridNetClassifier", "load"]


class GridNetClassifier(ExplainMixin, ClassifierMixin, BaseEstimator):
    """A convolutional network classifier for grids ``(n, c, h, w)``.

    The architecture comes from a ``preset``, from plain hyperparameters, or from an
    explicit list of ``layers``. Architecture parameters left at ``None`` take the
    preset's default (see ``gridnet.architectures.PRESETS``).

    - ``preset=None`` (the default) picks one from the grid in ``fit`` (``preset_``): a
      one-hot word grid is "text"; a grid at least 16 by 16 "audio" (spectrograms,
      larger pictures); a smaller one, or a one-row strip (a table), "image".
    - ``"image"`` and ``"audio"`` (deeper): blocks of convolution and max pooling, then
      dense layers; ``"text"``: Kim's sentence CNN over word vectors, with the grid's
      pretrained vectors as a second, fixed channel and a bag of words and word pairs
      beside it. :mod:`gridnet.architectures` describes each preset's layers.

    Parameters
    ----------
    preset : {None, "image", "audio", "text"}
    layers : list of gridnet layers, optional
        The body of the network; it is copied for each fit, a Flatten is added if it
        ends in a grid, and the output Dense(n_classes) is appended.
    conv_blocks, filters, kernel_size, pool_size, pool_stride, dense_units, dropout,
    embed_dim, ngram_dim, center_rows : architecture hyperparameters (None: the preset's).
        ``filters`` may be a list, one per block; ``dense_units=0`` drops the hidden dense
        layer; ``center_rows`` (audio: True) adds each row centred as a channel;
        ``ngram_dim=0`` drops the text preset's n-gram bag and its linear member.
    batch_size : int, default 32 ; max_epochs : int, default 100
    learning_rate : float, default 1e-3 ; optimizer : {"adam", "sgd", "nesterov"}, default "adam"
    momentum : float, default 0.9 (SGD only) ; weight_decay : float, default 0.0 (L2, not biases)
    class_weight : None, "balanced" or dict {class: weight}
    early_stopping : bool, default True
        Hold out ``validation_fraction`` of the training data (stratified), stop when
        the validation accuracy has not risen by ``tol`` for ``n_iter_no_change``
        epochs, and restore the weights of the best epoch (``max_epochs`` is then a
        safety net), as scikit-learn's MLP does; with ``class_weight``, the validation
        accuracy weighs each sample by its class's weight. Without it, or when the split
        would hold fewer than ``training.MIN_VALIDATION`` (10) samples, training stops
        when the training loss stalls the same way, or after ``max_epochs``.
    validation_fraction : float, default 0.1 ; tol : float or None, default None
        ``tol``: how far the validation accuracy must rise (at equal accuracy, its loss fall)
        for a better epoch; None: the preset's (1e-3 for "audio", 1e-4 otherwise; ``tol_``).
    n_iter_no_change : int or None, default None
        Epochs without a better one before training stops; None: the preset's (7 for
        "audio", 5 otherwise; ``n_iter_no_change_``).
    augment : "auto", None or callable ``(batch, rng) -> batch``, default "auto"
        Applied to a private copy of each training batch (see :mod:`gridnet.augment`).
        "auto": the preset's (for "audio": noise, a frequency warp, masks and shifts, and
        word fragments as outliers of no class; none otherwise; ``augment_``).
    tta : "auto", None or list of (warp, shift), default "auto"
        Test-time augmentation: logits averaged over fixed views of each grid (:mod:`gridnet.views`;
        ``tta_``). "auto": the preset's (audio: small warps and shifts; none otherwise).
    calibration : {"temperature", None}, default "temperature"
        Divide the logits by ``temperature_``, fitted on the held-out early-stopping split
        (:mod:`gridnet.calibration`; 1 without one and after ``partial_fit``): the same predictions.
    reject : bool, default False
        ``predict`` answers ``reject_label`` for inputs that belong to no class (the top probability's
        log-odds, less for unseen words, under ``reject_threshold_``, or top class ``oos_label_``;
        :mod:`gridnet.rejection`). Read at predict time: no refit needed.
    reject_label : label or None, default None
        What rejected inputs are called; training samples with it are out-of-scope
        examples, learned as a class (``oos_label_``; weighted ``training.OOS_WEIGHT``
        unless ``class_weight`` names it). None: that class, else "unknown" (text) or -1.
    reject_rate : float in [0, 1), default 0.01
        ``reject_threshold_`` (fitted in ``fit`` in any case) rejects this share of the
        held-out early-stopping split's in-scope samples; None without that split or
        after ``partial_fit`` (``reject=True`` is then an error).
    ema_momentum : "auto", float in [0, 1) or None, default "auto"
        An exponential moving average of the weights (Keras's ``use_ema``;
        :class:`gridnet.training.WeightAverage`), what early stopping validates and the model keeps.
        None or 0: the weights as trained. "auto": the preset's (0.995 for "audio",
        0.99 for "image", None for "text"; ``ema_momentum_``). ``partial_fit`` does not average.
    label_smoothing : float in [0, 1) or None, default 0.0
        Each training target ``1 - e`` on its class, ``e / k`` on all (as PyTorch's); None: 0.
    ensemble_size : "auto" or int, default "auto"
        Train this many networks (their own starts, batch orders and augmentation; one
        validation split) side by side, one per core, and average their logits
        (``ensemble_size_``). "auto": the preset's (2 for "text", 1 otherwise and for ``partial_fit``).
        With an n-gram bag (text) ``fit`` adds a weighted TF-IDF linear member (``linear_share_``; gridnet.wide).
    warm_start : bool, default False
        Continue from the previous fit's weights (and optimizer state).
    random_state : int, RandomState or None
        Same seed, same machine: the same result to the bit.
    verbose : bool or int
        One tqdm progress bar for the whole fit (the epoch, the loss, the validation score).

    Attributes
    ----------
    classes_ : (k,) array of labels
    n_features_in_ : int, values per sample ``c * h * w``
    grid_shape_ : (c, h, w) of the grids seen in fit (a 2-D ``(n, f)`` input is the
        strip ``(1, 1, f)``; ``(n, h, w)`` is ``(1, h, w)``)
    network_ : gridnet.Network (an ensemble's: one averaging Branches of its members)
    history_ : list of dict, one per epoch: ``epoch``, ``loss``, ``val_loss``,
        ``val_score``, ``time`` (seconds); of the first network of an ensemble
        (``histories_``: one such list per network)
    loss_curve_ : list of float; ``validation_scores_``; ``best_loss_`` (the lowest
        training loss); ``n_iter_``; ``best_epoch_`` (the epoch whose weights were kept;
        None without a validation split): the first network's;
        ``best_validation_score_``: the model's on the validation split (None without one)
    embedding_started_ : int, embedding columns started from the grid's vectors (0: none)
    temperature_ : float, what the logits are divided by (see ``calibration``)
    reject_threshold_ : float or None, a log-odds ``log(p / (1 - p))`` of the top probability ``p``;
        ``oos_label_``: the out-of-scope class or None; ``reject_novelty_``: for pretrained word
        grids, the unseen words' reference and training's (class, word) pairs, else None
    augment_, n_iter_no_change_, ema_momentum_, tol_, tta_ : the settings used (the
        preset's where left at "auto", and for ``n_iter_no_change`` and ``tol`` at None)
    preset_ : the preset used (``preset``, or the one picked from the grid; None: ``layers``)

    Notes
    -----
    ``check_estimator(GridNetClassifier())`` passes but for sample-order and subset invariance
    (float32 rounding, ~1e-7, varies with a sample's place in a batch) and for sample weights
    as repetitions (minibatch SGD: repeating a sample changes the batches an epoch makes).

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
                 dropout=None, embed_dim=None, ngram_dim=None, center_rows=None, batch_size=32,
                 max_epochs=100, learning_rate=1e-3, optimizer="adam", momentum=0.9, weight_decay=0.0,
                 class_weight=None, early_stopping=True, validation_fraction=0.1,
                 n_iter_no_change=None, tol=None, augment="auto", tta="auto", ema_momentum="auto",
                 label_smoothing=0.0, ensemble_size="auto", calibration="temperature", reject=False, reject_label=None, reject_rate=0.01,
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
        self.center_rows = center_rows
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
        self.tta = tta
        self.ensemble_size = ensemble_size
        self.ema_momentum = ema_momentum
        self.label_smoothing = label_smoothing
        self.calibration = calibration
        self.reject = reject
        self.reject_label = reject_label
        self.reject_rate = reject_rate
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    def _validate_X(self, X, reset):     # -> an array (a memmap stays one) or a one-hot grid (n, c, h, w)
        return validation.validate_grids(self, X, reset)

    # -- training ------------------------------------------------------------------------
    def _initialize(self, grid, streams, partial):
        self.preset_ = architectures.choose_preset(self.preset, self.layers, self.grid_shape_,
                                                   is_onehot(grid))
        self.ensemble_size_ = architectures.ensemble_size(self.preset_, self.ensemble_size, partial)
        given = {name: getattr(self, name) for name in architectures.ARCHITECTURE}
        self.network_, self.embedding_started_ = architectures.build_ensemble(
            self.ensemble_size_, self.preset_, self.layers, given, grid, len(self.classes_),
            lambda m: training.member_streams(streams, m), not partial)
        self._optimizer = self._optimizers = None
        self.history_, self.loss_curve_, self.validation_scores_ = [], [], []
        self.best_loss_, self.n_iter_ = np.inf, 0

    def _optimizer_for(self, nets):
        """One optimizer per network trained (kept for ``warm_start``): ``_optimizer(s)``."""
        make = lambda: make_optimizer(self.optimizer, self.learning_rate, self.weight_decay,
                                      self.momentum)
        if nets[0] is self.network_:        # (a model loaded from a file has none)
            self._optimizer = getattr(self, "_optimizer", None) or make()
            return [self._optimizer]
        if len(getattr(self, "_optimizers", None) or ()) != len(nets):
            self._optimizers = [make() for _ in nets]
        return self._optimizers

    def _fit(self, X, y, classes=None, partial=False, sample_weight=None):
        grid, codes, first = validation.prepare_fit(self, X, y, classes, partial)
        self.oos_label_, self.reject_threshold_, self.reject_novelty_ = rejection.oos_label(self), None, None
        weights = validation.sample_weights(sample_weight, grid)
        streams = training.seed_streams(self.random_state)
        if first:
            self._initialize(grid, streams, partial)
        self.augment_, self.n_iter_no_change_, self.ema_momentum_, self.tol_ = architectures.training_settings(
            self.preset_, self.augment, self.n_iter_no_change, self.ema_momentum, self.tol)
        self.tta_ = views.resolve(self.tta, self.preset_, self.grid_shape_, not is_onehot(grid))
        rows, val = np.arange(grid.shape[0]), None
        if self.early_stopping and not partial and training.validation_size(
                grid.shape[0], self.validation_fraction) >= training.MIN_VALIDATION:
            rows, val = training.validation_split(codes, self.validation_fraction, streams["split"])
        loss_fn = training.make_loss(self.class_weight, self.classes_, codes, rejection.oos_code(self), self.label_smoothing or 0.0)
        data = training.TrainData(grid, codes, rows, val, loss_fn, self.batch_size,
                                  self.augment_, weights)
        nets = [self.network_] if partial else architectures.ensemble_members(self.network_)
        trainers = training.trainers(nets, self._optimizer_for(nets), streams, self.n_iter_,
                                     self.n_iter_no_change_, self.tol_, val is not None,
                                     None if partial else self.ema_momentum_)
        epochs = 1 if partial else int(self.max_epochs)
        with tqdm(total=epochs * len(rows) * len(nets), unit="sample", leave=bool(self.verbose),
                  disable=not self.verbose, dynamic_ncols=True) as bar:
            if partial:
                record = trainers[0].epoch(data, bar)
            else:           # the linear member, if any, fits on the first core the networks free
                lin = training.train_networks(trainers, data, epochs, bar, wide.member(
                    self.network_, grid, codes, rows, val, weights, loss_fn.class_weight))[1]
        self.histories_ = [t.history for t in trainers]
        self._record(trainers[0], partial)
        if partial:
            self.best_loss_, self.temperature_ = min(self.best_loss_, record["loss"]), 1.0
            return self
        self.network_, self.linear_share_ = wide.join(self.network_, grid, codes, rows, val, self.batch_size,
                                                      weights, loss_fn.class_weight, lin)
        self.temperature_ = 1.0
        if val is not None:         # one pass over the held-out split serves both
            z = self._logits(grid, val)
            if len(nets) > 1 or self.linear_share_:
                self.best_validation_score_ = training.score(z, codes, val, loss_fn, weights)
            if self.calibration == "temperature":
                self.temperature_ = fit_temperature(z, codes[val], None if weights is None else weights[val])
            rejection.fit(self, z / np.float32(self.temperature_), codes, grid, val)
        return self

    def _record(self, trainer, partial):
        """The fit's attributes from the (first) network's training."""
        self.history_ += trainer.history
        self.loss_curve_ += [r["loss"] for r in trainer.history]
        self.validation_scores_ += [r["val_score"] for r in trainer.history if r["val_score"] is not None]
        self.n_iter_ = trainer.epoch_no
        if not partial:
            stopper, self.best_loss_ = trainer.stopper, float(trainer.stopper.best_loss)
            self.best_validation_score_, self.best_epoch_ = (
                (stopper.best_score, stopper.best_epoch) if stopper.keep_best else (None, None))

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
    def _logits(self, X, rows=None):
        """The logits of ``rows`` of X (None: all), divided by ``temperature_``."""
        rows = np.arange(X.shape[0]) if rows is None else rows
        z = views.logits(self.network_, X, rows, len(self.classes_), self.batch_size, self.tta_)
        return z / np.float32(getattr(self, "temperature_", 1.0))

    def decision_function(self, X):
        """Logits (n, k); for two classes the margin of the second, (n,)."""
        check_is_fitted(self)
        logits = self._logits(self._validate_X(X, reset=False))
        return logits[:, 1] - logits[:, 0] if len(self.classes_) == 2 else logits

    def predict_proba(self, X):
        """Class probabilities (n, k), columns in the order of ``classes_``."""
        check_is_fitted(self)
        return softmax(self._logits(self._validate_X(X, reset=False)))

    def predict(self, X):
        """Labels (n,); with ``reject``, ``reject_label`` for the inputs to reject."""
        check_is_fitted(self)
        validation.check_reject(self.reject)        # read here, so checked here
        if not self.reject:
            return self.classes_[self._logits(self._validate_X(X, reset=False)).argmax(axis=1)]
        return rejection.predict(self, rejection.calibrated_logits(self, X), X)   # as the CLI

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
