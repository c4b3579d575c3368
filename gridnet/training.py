"""The training loop's parts: random streams, the loss, the validation split, one epoch,
evaluation, the weights' moving average and the stopping rule (as scikit-learn's MLP
splits ``_fit`` into ``_initialize``, ``_fit_stochastic`` and
``_update_no_improvement_count``)."""
from __future__ import annotations

import contextlib
import logging
import os
import time
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight

from .core import SoftmaxCrossEntropy, is_onehot

logger = logging.getLogger(__name__)

__all__ = ["seed_streams", "member_streams", "TrainData", "Trainer", "trainers", "train_networks", "make_loss", "OOS_WEIGHT", "MIN_VALIDATION", "validation_size", "validation_split", "take_batch", "run_epoch", "train_epoch",
           "logits", "evaluate", "score", "WeightAverage", "averaged", "Stopper"]


def seed_streams(random_state):
    """Independent random streams of one fit: ``init`` (weights), ``order`` (batches),
    ``split`` (a seed for the validation split) and ``augment``; ``seed``, the fit's
    seed, makes more (:func:`member_streams`)."""
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    init, order, split, aug = np.random.SeedSequence(seed).spawn(4)
    return {"init": np.random.default_rng(init), "order": np.random.default_rng(order),
            "split": int(np.random.default_rng(split).integers(2**31)),
            "augment": np.random.default_rng(aug), "seed": int(seed)}


def member_streams(streams, m):
    """The streams of the ensemble's network ``m``: the fit's own for the first (a
    single network trains as it always did), independent ones from the fit's seed for
    the others (their own weights, batch order and augmentation; one split for all)."""
    if m == 0:
        return streams
    init, order, aug = np.random.SeedSequence([streams["seed"], int(m)]).spawn(3)
    return {**streams, "init": np.random.default_rng(init),
            "order": np.random.default_rng(order), "augment": np.random.default_rng(aug)}


def make_loss(class_weight, classes, codes, oos_code=None, label_smoothing=0.0):
    """Softmax cross-entropy, weighted by ``class_weight`` (None, "balanced" or a dict
    {label: weight}) over ``classes``; ``codes`` are the training labels' indices. The
    out-of-scope class (column ``oos_code``, or None) counts :data:`OOS_WEIGHT` times
    what ``class_weight`` gives it, unless a dict names it. ``label_smoothing``: as
    :class:`~gridnet.core.SoftmaxCrossEntropy` takes it."""
    w = None
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be None, 'balanced' or a dict; got {class_weight!r}")
        present = np.unique(codes)
        w = np.ones(len(classes))
        w[present] = compute_class_weight("balanced", classes=present, y=codes)
    elif isinstance(class_weight, dict):
        w = np.ones(len(classes))
        for label, value in class_weight.items():
            where = np.nonzero(classes == label)[0]
            if not len(where):
                raise ValueError(f"class_weight names class {label!r}, which is not in y")
            w[where[0]] = float(value)
    elif class_weight is not None:
        raise ValueError(f"class_weight must be None, 'balanced' or a dict; got {class_weight!r}")
    if oos_code is not None and not (isinstance(class_weight, dict)
                                     and classes[oos_code] in class_weight):
        w = np.ones(len(classes)) if w is None else w
        w[oos_code] *= OOS_WEIGHT
    return SoftmaxCrossEntropy(None if w is None else w.astype(np.float32), label_smoothing)


#: what the out-of-scope class (``reject_label``'s examples) counts for in the loss: a
#: few examples stand for everything no class covers (chosen on dev data; the figures
#: are in docs/benchmarks.md)
OOS_WEIGHT = 4.0


#: the fewest samples a validation split may hold for early stopping to use it: on fewer,
#: one sample moves the accuracy by more than a tenth, and the epoch kept is luck
MIN_VALIDATION = 10


def validation_size(n, fraction):
    """How many of ``n`` samples a validation split of ``fraction`` holds (as
    ``train_test_split`` rounds it: up)."""
    return int(np.ceil(n * fraction))


def validation_split(codes, fraction, seed):
    """Sorted (training rows, validation rows), stratified when every class has two
    samples."""
    n = len(codes)
    strat = codes if np.bincount(codes).min() >= 2 else None
    try:
        rows, val = train_test_split(np.arange(n), test_size=fraction, random_state=seed,
                                     stratify=strat)
    except ValueError:
        rows, val = train_test_split(np.arange(n), test_size=fraction, random_state=seed)
    return np.sort(rows), np.sort(val)


def take_batch(X, idx):
    """Rows ``idx`` of X as float32 (a memmap is read only there; a one-hot grid stays
    one)."""
    if is_onehot(X):
        return X[idx]
    return np.asarray(X[idx], dtype=np.float32)


def run_epoch(net, optimizer, loss_fn, X, codes, rows, *, batch_size, augment, streams, bar,
              epoch, sample_weight=None, average=None):
    """One pass over ``rows`` of ``X`` in a random order; returns the mean loss (over
    the samples, or over their weights when ``sample_weight`` (n,) is given; with the
    outliers the augmentation makes, if any, labelled -1).
    ``average``: a :class:`WeightAverage` updated after each step, or None."""
    order = rows[streams["order"].permutation(len(rows))]
    total, count = 0.0, 0
    outliers = getattr(augment, "outliers", None)
    for start in range(0, len(order), batch_size):
        idx = np.sort(order[start:start + batch_size])
        xb, yb = take_batch(X, idx), codes[idx]
        wb = None if sample_weight is None else sample_weight[idx]
        if outliers is not None:          # samples of no class: label -1, a uniform target
            if is_onehot(xb):
                raise TypeError("the augmentation's outliers need dense grids, not one-hot ones")
            xo = outliers(xb, streams["augment"])
            xb, yb = np.concatenate([xb, xo]), np.concatenate([yb, np.full(len(xo), -1)])
            if wb is not None:
                wb = np.concatenate([wb, np.full(len(xo), wb.mean(), wb.dtype)])
        if augment is not None:
            xb = augment(xb if is_onehot(xb) else xb.copy(), streams["augment"])
        loss, grad = loss_fn(net.forward(xb, training=True), yb, wb)
        if not np.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss} in epoch {epoch}; "
                                     "lower learning_rate")
        net.backward(grad, input_grad=False)
        optimizer.step(net.parameters())
        if average is not None:
            average.update(net)
        share = len(yb) if wb is None else float(wb.sum())
        total += loss * share
        count += share
        if not bar.disable:     # formatting the postfix costs ~10 us a step
            bar.update(len(idx))
            bar.set_postfix(loss=f"{total / count:.4f}")
    return total / count if count > 0 else 0.0


def train_epoch(net, optimizer, loss_fn, X, codes, rows, val, *, epoch, batch_size, augment,
                streams, bar, sample_weight=None, average=None):
    """:func:`run_epoch`, then the loss and accuracy on the validation rows ``val`` (None:
    none) of the weights' moving ``average`` where there is one; -> the epoch's record
    ``{"epoch", "loss", "val_loss", "val_score", "time"}``. ``bar``: the fit's progress
    bar (samples), which shows the epoch, the loss and the validation score."""
    t0 = time.perf_counter()
    bar.set_description(f"epoch {epoch}")
    loss = run_epoch(net, optimizer, loss_fn, X, codes, rows, batch_size=batch_size,
                     augment=augment, streams=streams, bar=bar, epoch=epoch,
                     sample_weight=sample_weight, average=average)
    record = {"epoch": epoch, "loss": loss, "val_loss": None, "val_score": None}
    if val is not None:
        with averaged(average, net):
            vloss, vscore = evaluate(net, X, codes, val, loss_fn, batch_size, sample_weight)
        record.update(val_loss=vloss, val_score=vscore)
        bar.set_postfix(loss=f"{loss:.4f}", val_loss=f"{vloss:.4f}", val_score=f"{vscore:.4f}")
    record["time"] = time.perf_counter() - t0
    return record


def logits(net, X, rows, n_classes, batch_size):
    """Logits ``(len(rows), n_classes)`` of ``rows`` of ``X``, in batches."""
    step = max(int(batch_size), 256)
    out = np.empty((len(rows), n_classes), dtype=np.float32)
    for start in range(0, len(rows), step):
        out[start:start + step] = net.forward(take_batch(X, rows[start:start + step]))
    return out


def evaluate(net, X, codes, rows, loss_fn, batch_size=256, sample_weight=None):
    """(loss, accuracy) of ``net`` on ``rows`` of ``X``, each sample weighted by its
    ``sample_weight`` (n,) when given (as scikit-learn's ``score`` weighs accuracy) and by
    its class's weight in ``loss_fn`` when it has them: the choices early stopping makes
    then follow the costs the loss was given (with ``class_weight="balanced"``, the
    balanced accuracy)."""
    z = logits(net, X, rows, net.out_shape[0], batch_size)
    w = None if sample_weight is None else sample_weight[rows]
    loss, _ = loss_fn(z, codes[rows], w)
    return loss, score(z, codes, rows, loss_fn, sample_weight)


def score(z, codes, rows, loss_fn, sample_weight=None):
    """The accuracy of logits ``z`` (len(rows), k) on ``rows``, weighted as
    :func:`evaluate` weighs it."""
    w = None if sample_weight is None else sample_weight[rows]
    hit = z.argmax(axis=1) == codes[rows]
    class_weight = getattr(loss_fn, "class_weight", None)
    if class_weight is not None:
        cw = np.asarray(class_weight, dtype=np.float64)[codes[rows]]
        w = cw if w is None else w * cw
    if w is None:
        return float(hit.mean())
    return float(np.average(hit, weights=w)) if w.sum() > 0 else 0.0


class WeightAverage:
    """The exponential moving average of a network's weights over the training steps
    (Polyak averaging; Keras's ``use_ema``): after step ``t``, ``a = d * a + (1 - d) *
    w`` with ``d = min(momentum, (1 + t) / (10 + t))``, ``a`` starting at the weights
    after the first step. The ramp is TensorFlow's ``ExponentialMovingAverage(decay,
    num_updates)``: over a short fit the average spans about the last tenth of the
    steps, not a window reaching back to the untrained start. An average of the last
    few hundred steps' weights sits nearer the middle of the valley that the steps
    bounce across, and it scores more steadily from epoch to epoch, so early stopping
    picks a better epoch.

    Examples
    --------
    >>> import numpy as np
    >>> from gridnet import Dense, Network
    >>> net = Network([Dense(1)]); _ = net.build((2,), np.random.default_rng(0))
    >>> avg = WeightAverage(0.5)
    >>> avg.update(net)                       # starts at the weights
    >>> net.layers[0].params["b"][:] = 2.0
    >>> avg.update(net)                       # step 2: d = min(0.5, 3 / 12), 3/4 of the way
    >>> with averaged(avg, net):
    ...     float(net.layers[0].params["b"][0])
    1.5
    >>> avg.update(net)                       # step 3: d = min(0.5, 4 / 13)
    >>> with averaged(avg, net):
    ...     round(float(net.layers[0].params["b"][0]), 4)
    1.8462
    >>> float(net.layers[0].params["b"][0])   # the trained weights again
    2.0
    """

    def __init__(self, momentum):
        self.momentum = float(momentum)
        self.weights = None
        self._scratch = None
        self.t = 0

    def update(self, net):
        """Move the average toward the network's current weights."""
        params = net.parameters()
        self.t += 1
        if self.weights is None:
            self.weights = {name: p.copy() for name, p, _ in params}
            self._scratch = {name: np.empty_like(p) for name, p, _ in params}
            return
        d = min(self.momentum, (1.0 + self.t) / (10.0 + self.t))
        for name, p, _ in params:
            a, tmp = self.weights[name], self._scratch[name]
            np.subtract(p, a, out=tmp)
            tmp *= p.dtype.type(1.0 - d)
            a += tmp

    def swap(self, net):
        """Exchange the network's weights with the averages (a second call undoes it)."""
        if self.weights is None:
            return
        for name, p, _ in net.parameters():
            a, tmp = self.weights[name], self._scratch[name]
            tmp[...] = p
            p[...] = a
            a[...] = tmp


@contextlib.contextmanager
def averaged(average, net):
    """Within the block, ``net`` holds ``average``'s weights (nothing changes when
    ``average`` is None); the trained weights come back after it."""
    if average is None:
        yield net
        return
    average.swap(net)
    try:
        yield net
    finally:
        average.swap(net)


class Stopper:
    """The stopping rule. With a validation split, an epoch is better than the best so
    far when its validation accuracy is higher by more than ``tol``, or equal with a
    validation loss lower by more than ``tol``; training stops after
    ``n_iter_no_change`` epochs without a better one, and :meth:`restore` puts back
    the best epoch's weights. Without a split, the training loss must fall by ``tol``.

    Accuracy first, as scikit-learn's MLP watches its validation score: the validation
    loss bottoms out epochs before the accuracy does once the model grows confident
    (TREC-6). The loss breaks ties: a small validation set's accuracy saturates while
    the model still improves (digits)."""

    def __init__(self, n_iter_no_change, tol, keep_best):
        self.n_iter_no_change, self.tol, self.keep_best = n_iter_no_change, tol, keep_best
        self.best_loss, self.best_score, self.best_val_loss = np.inf, -np.inf, np.inf
        self.watched_loss, self.stall, self.best_weights = np.inf, 0, None
        self.best_epoch = None

    def update(self, record, net):
        """Record an epoch (its ``history_`` record); True when training should stop."""
        self.best_loss = min(self.best_loss, record["loss"])
        if self.keep_best:
            score, loss = record["val_score"], record["val_loss"]
            better = (score > self.best_score + self.tol or
                      (score >= self.best_score - self.tol and loss < self.best_val_loss - self.tol))
            if better:
                self.best_score, self.best_val_loss = score, loss
                self.best_weights = net.get_weights()
                self.best_epoch = record["epoch"]
        else:
            better = record["loss"] < self.watched_loss - self.tol
            if better:
                self.watched_loss = record["loss"]
        self.stall = 0 if better else self.stall + 1
        return self.stall >= self.n_iter_no_change

    def restore(self, net):
        if self.best_weights is not None:
            net.set_weights(self.best_weights)


@dataclass
class TrainData:
    """What every network of a fit trains on: ``grid`` (n, c, h, w), label ``codes``
    (n,), the training ``rows`` and validation rows ``val`` (None: none), the loss,
    the batch size, the augmentation (or None) and the sample ``weights`` (or None)."""
    grid: object
    codes: np.ndarray
    rows: np.ndarray
    val: object
    loss_fn: object
    batch_size: int
    augment: object = None
    weights: object = None


class Trainer:
    """One network's training: its ``optimizer``, random ``streams``, weight
    ``average`` (or None) and :class:`Stopper`; ``history`` holds its epochs' records,
    numbered on from ``first_epoch``."""

    def __init__(self, net, optimizer, streams, *, stopper, average=None, first_epoch=0):
        self.net, self.optimizer, self.streams = net, optimizer, streams
        self.average, self.stopper = average, stopper
        self.epoch_no, self.history = int(first_epoch), []

    def epoch(self, data, bar):
        """One epoch (:func:`train_epoch`), validated on ``data.val``; -> its record."""
        self.epoch_no += 1
        record = train_epoch(
            self.net, self.optimizer, data.loss_fn, data.grid, data.codes, data.rows,
            data.val, epoch=self.epoch_no,
            batch_size=int(data.batch_size), augment=data.augment, streams=self.streams,
            bar=bar, sample_weight=data.weights, average=self.average)
        self.history.append(record)
        if not bar.disable:         # (verbose)
            logger.info("epoch %d: %s", self.epoch_no, record)
        return record

    def run(self, data, epochs, bar, stop=None):
        """Epochs until the stopping rule says stop (at most ``epochs``, and none more
        once the event ``stop`` is set); then the model's weights: the best epoch's, or
        without a validation split the average's."""
        for _ in range(int(epochs)):
            if stop is not None and stop.is_set():
                break
            record = self.epoch(data, bar)
            with averaged(self.average, self.net):
                if self.stopper.update(record, self.net):
                    break
        if data.val is None and self.average is not None:
            self.average.swap(self.net)     # the averaged weights are the model
        self.stopper.restore(self.net)
        return self


def trainers(nets, optimizers, streams, first_epoch, patience, tol, keep_best, ema_momentum):
    """A :class:`Trainer` for each of ``nets`` (an ensemble's networks, or one), with its
    optimizer, its :func:`member_streams`, a :class:`Stopper` and, with
    ``ema_momentum``, a :class:`WeightAverage`."""
    return [Trainer(net, opt, member_streams(streams, m), first_epoch=first_epoch,
                    stopper=Stopper(patience, tol, keep_best=keep_best),
                    average=WeightAverage(ema_momentum) if ema_momentum else None)
            for m, (net, opt) in enumerate(zip(nets, optimizers))]


def train_networks(trainers, data, epochs, bar, extra=None):
    """Run each :class:`Trainer` (:meth:`Trainer.run`), and ``extra`` (a function of no
    arguments, or None) once a core is free. Several networks (an ensemble) train side
    by side in threads, one per core, each with its BLAS held at one thread: how they
    are computed then never depends on the core count, so a seed gives the same weights
    to the bit anywhere. One trains as before, with the BLAS's own threads, then
    ``extra`` runs. An error in one network or in ``extra``, or an interrupt (Ctrl-C),
    stops the networks after their current epoch (a running ``extra`` ends first) and is
    raised.
    -> (each trainer's result, ``extra``'s result or None)."""
    if len(trainers) == 1:
        return [trainers[0].run(data, epochs, bar)], (extra() if extra is not None else None)
    from threadpoolctl import threadpool_limits
    stop = threading.Event()
    jobs = len(trainers) + (extra is not None)
    with threadpool_limits(limits=1, user_api="blas"), \
            ThreadPoolExecutor(max_workers=min(jobs, os.cpu_count() or 1)) as pool:
        futures = [pool.submit(t.run, data, epochs, bar, stop) for t in trainers]
        if extra is not None:       # queued after the networks: it takes the first core they free
            futures.append(pool.submit(extra))
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for f in done:          # a failure raised before waiting on the others
                f.result()
            results = [f.result() for f in futures]
        except BaseException:
            stop.set()
            raise
    return results[:len(trainers)], (results[-1] if extra is not None else None)
