"""Rejecting inputs that belong to no class ("none of these").

The score is the top calibrated probability: of the scores measured on dev data (the
top logit, the energy of the logits, distances to the training samples or to the class
means in the last hidden features), it was the best on both text and audio
(``docs/benchmarks.md``). It is taken as its log-odds, ``log(p / (1 - p))``, from the
calibrated logits in float64 (:func:`score`): the same order, without the tie at 1.0
that a float32 probability rounds to once the top logit leads by about 17 (a sharp
temperature does that to most inputs, and a threshold of exactly 1.0 then rejects
whatever is not rounded up). The threshold is the ``reject_rate`` quantile of the scores
of the in-scope samples of the classifier's own held-out early-stopping split: about
that share of in-scope inputs like them is rejected, whatever the data. Out-of-scope
training examples, when the user has some, are labelled ``reject_label``; the network
learns them as a class of their own (``training.OOS_WEIGHT`` times heavier in the loss:
a few examples stand for everything no class covers), and an input predicted as that
class is rejected too.

:class:`gridnet.GridNetClassifier` fits the threshold in ``fit`` whatever ``reject``
says; ``reject=True`` makes ``predict`` use it.

Sentences on pretrained vectors (a one-hot grid with ``trained`` columns, the text
preset's) add a second sign: words training never saw, which out-of-scope queries hold
far more often than in-scope ones, and words no training sentence of the predicted
class holds. The score is then the log-odds plus ``NOVELTY_WEIGHT`` times the log of
how rare each of the sentence's two shares of such tokens (:func:`novelty`) is among the
held-out in-scope sentences (``reject_novelty_``, each counted as training would have
seen it without itself: its words no other training sentence holds are unseen, and
those no other sentence of the class holds are not the class's). A sentence whose every
word training sentences of its predicted class hold keeps its log-odds.
"""
from __future__ import annotations

import numbers

import numpy as np

from .core import is_onehot

__all__ = ["score", "fit_threshold", "fit", "novelty", "class_words", "surprise",
           "NOVELTY_WEIGHT", "rejected", "calibrated_logits", "from_probability",
           "resolve_label", "with_rejections", "oos_label", "oos_code", "predict", "label_of",
           "DEFAULT_LABELS"]

#: the weight of each of the two shares' surprise beside the log-odds: chosen on
#: CLINC150's dev data, in the middle of the weights that did about equally well
#: (docs/benchmarks.md, issue 37)
NOVELTY_WEIGHT = 0.5

#: the label rejected inputs get when ``reject_label`` is None: by the classes' kind
DEFAULT_LABELS = {"text": "unknown", "number": -1}


def _kind(classes):
    if all(isinstance(c, (str, np.str_)) for c in classes):
        return "text"
    if all(isinstance(c, numbers.Number) and not isinstance(c, (bool, np.bool_))
           for c in classes):
        return "number"
    return None


def resolve_label(reject_label, classes, oos_label=None):
    """The label a rejected input gets: ``reject_label``, or when it is None the out-of-
    scope class learned in fit (``oos_label``), else ``"unknown"`` for text labels and
    -1 for numbers. A label that is one of the in-scope classes is an error: a
    rejection must not read as a class."""
    if reject_label is not None:
        # compared as text too: "3" printed for a rejection would read as the class 3
        inside = {str(c) for c in classes if oos_label is None or str(c) != str(oos_label)}
        if str(reject_label) in inside:
            raise ValueError(f"reject_label={reject_label!r} is (or reads as) one of the "
                             "classes the model learned as in scope; a rejection must not "
                             "read as a class")
        return reject_label
    if oos_label is not None:
        return oos_label
    kind = _kind(classes)
    if kind is None:
        raise ValueError("the classes are neither all text nor all numbers; name the label "
                         "of rejected inputs with reject_label")
    label = DEFAULT_LABELS[kind]
    if str(label) in {str(c) for c in classes}:
        raise ValueError(f"rejected inputs would get the label {label!r}, which is one of "
                         "the classes; name another with reject_label")
    return label


def score(logits):
    """The log-odds of the top probability, ``log(p / (1 - p))``, of calibrated logits
    ``(n, k)``: ``(n,)`` float64, the top logit less the log-sum-exp of the others.

    >>> round(float(score(np.array([[2.0, 0.0, 0.0]]))[0]), 4)   # p = 0.787
    1.3069
    >>> float(score(np.array([[40.0, 0.0]], dtype=np.float32))[0])   # p rounds to 1.0
    40.0
    """
    from scipy.special import logsumexp
    z = np.array(logits, dtype=np.float64)          # a copy: the top is blanked below
    rows, top = np.arange(len(z)), z.argmax(axis=1)
    best = z[rows, top]
    z[rows, top] = -np.inf
    return best - logsumexp(z, axis=1)


def from_probability(p):
    """The log-odds threshold of a top-probability threshold ``p`` (as model files before
    the log-odds held it): 1.0, which a float32 probability rounds to from log-odds of
    about 16.6 up, is taken as that."""
    p = min(float(p), 1.0 - 2.0 ** -24)
    return float(np.log(p) - np.log1p(-p)) if p > 0 else -np.inf


def calibrated_logits(clf, X):
    """The fitted classifier's logits of ``X`` divided by its temperature, ``(n, k)``,
    from its ``decision_function`` (for two classes, 0 and the margin): their softmax is
    its ``predict_proba``, their top its ``predict``."""
    d = np.asarray(clf.decision_function(X))
    return d if d.ndim == 2 else np.stack([np.zeros_like(d), d], axis=1)


def class_words(grid, codes):
    """The sorted keys ``code * trained + column`` of the (class, training word) pairs of
    a one-hot ``grid`` with ``trained`` columns and its rows' class indices ``codes``
    (n,): which words the training sentences of each class hold; None for other grids."""
    if not _pretrained(grid):
        return None
    keys, _ = _pair_counts(np.asarray(grid.indices), np.asarray(codes), grid.trained)
    return keys


def _pretrained(grid):
    return is_onehot(grid) and getattr(grid, "trained", None) is not None


def _first(idx):
    """(n, h) bool: the first occurrence of each value in its row of ``idx``."""
    order = np.argsort(idx, axis=1, kind="stable")
    ordered = np.take_along_axis(idx, order, axis=1)
    first = np.ones(idx.shape, bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    out = np.empty_like(first)
    np.put_along_axis(out, order, first, axis=1)
    return out


def _pair_counts(idx, codes, trained):
    """(sorted keys ``code * trained + column``, the number of rows holding each) over the
    training words (columns 1 to trained - 1) of ``idx`` (n, h)."""
    keys = codes[:, None].astype(np.int64) * trained + idx
    keep = _first(idx) & (idx > 0) & (idx < trained)
    return np.unique(keys[keep], return_counts=True)


def novelty(grid, predicted, words, held_out=None, codes=None):
    """``(n, 2)`` float64 for a one-hot grid with ``trained`` columns, None for any other
    grid: each sentence's share of tokens that training never saw (column 0, the unknown
    word, and the columns from ``trained`` on, pretrained words outside the training
    vocabulary), and its share of tokens that no training sentence of its ``predicted``
    class (n,) holds (``words``: :func:`class_words`). With ``held_out`` (rows of the
    fit's grid held out of the networks' training) and the fit's class indices ``codes``,
    those rows counted as if the vocabulary had been built without each: a word no other
    row holds is unseen, and one no other row of the class is not the class's.

    >>> from adapters import OneHotGrid
    >>> g = OneHotGrid(np.array([[1, 2, -1], [1, 3, 4], [1, 2, 5]]), width=6, trained=5)
    >>> words = class_words(g, np.array([0, 1, 1]))
    >>> novelty(g, np.array([0, 0, 1]), words).tolist()
    [[0.0, 0.0], [0.0, 0.6666666666666666], [0.3333333333333333, 0.3333333333333333]]
    >>> novelty(g, np.array([1]), words, held_out=[1], codes=np.array([0, 1, 1])).tolist()
    [[0.6666666666666666, 0.6666666666666666]]
    """
    if not _pretrained(grid):
        return None
    trained, idx = grid.trained, np.asarray(grid.indices)
    unseen = (idx == 0) | (idx >= trained)
    own = 0
    if held_out is not None:
        codes = np.asarray(codes)
        df = np.bincount(idx[_first(idx) & (idx >= 0)], minlength=grid.width)
        keys, counts = _pair_counts(idx, codes, trained)
        idx, unseen = idx[held_out], unseen[held_out]
        unseen = unseen | (df[np.maximum(idx, 0)] == 1)
        own = (codes[held_out] == np.asarray(predicted))[:, None]
    else:
        keys, counts = np.asarray(words), None
    tokens = idx >= 0
    asked = np.asarray(predicted)[:, None].astype(np.int64) * trained + idx
    at = np.clip(np.searchsorted(keys, asked), 0, max(len(keys) - 1, 0))
    found = (keys[at] == asked) if len(keys) else np.zeros(idx.shape, bool)
    if counts is not None:
        found &= counts[at] - own > 0
    other = ~unseen & tokens & ~found
    n = np.maximum(tokens.sum(axis=1), 1)
    return np.stack([(unseen & tokens).sum(axis=1) / n, ((unseen | other) & tokens).sum(axis=1) / n], axis=1)


def surprise(shares, reference):
    """``(n,)``: for each column of ``shares`` ``(n, m)``, the log of the share of that
    column of ``reference`` (``(r, m)``, each column sorted: the held-out in-scope
    sentences' :func:`novelty`) at least as high, counted with one more sentence at it
    (so never log 0), or 0 where the share is 0; summed over the columns."""
    shares, reference = np.asarray(shares, dtype=np.float64), np.asarray(reference)
    total = np.zeros(len(shares))
    for j in range(shares.shape[1]):
        above = len(reference) - np.searchsorted(reference[:, j], shares[:, j], side="left")
        total += np.where(shares[:, j] > 0, np.log((above + 1) / (len(reference) + 1)), 0.0)
    return total


def _scores(logits, shares=None, reference=None):
    """The rejection score: :func:`score`, plus the unseen words' weighted
    :func:`surprise` where there is a ``reference``."""
    s = score(logits)
    return s if reference is None else s + NOVELTY_WEIGHT * surprise(shares, reference)


def fit_threshold(logits, codes, rate, oos_code=None, shares=None, reference=None):
    """The ``rate`` quantile of the rejection score of held-out samples' calibrated
    logits ``(n, k)`` whose true class index (``codes``, (n,)) is not ``oos_code``
    (with ``reference``, their :func:`novelty` ``shares`` counted); None when there
    are none."""
    keep = np.ones(len(codes), bool) if oos_code is None else np.asarray(codes) != oos_code
    if not keep.any():
        return None
    shares = None if shares is None else np.asarray(shares)[keep]
    return float(np.quantile(_scores(np.asarray(logits)[keep], shares, reference), rate))


def fit(clf, logits, codes, grid, val):
    """Set the classifier's ``reject_novelty_`` (for a one-hot grid with ``trained``
    columns: ``{"reference": the held-out split's in-scope sentences' novelty, each
    column sorted, "words": class_words}``; else None) and ``reject_threshold_``, from
    the calibrated logits ``(len(val), k)`` of its held-out rows ``val`` of ``grid``."""
    code, held = oos_code(clf), np.asarray(codes)[val]
    words = class_words(grid, codes)
    shares = None if words is None else novelty(grid, np.asarray(logits).argmax(axis=1),
                                                words, val, codes)
    inside = held != code if code is not None else np.ones(len(held), bool)
    clf.reject_novelty_ = None
    if shares is not None and inside.any():
        clf.reject_novelty_ = {"reference": np.sort(shares[inside], axis=0), "words": words}
    reference = None if clf.reject_novelty_ is None else clf.reject_novelty_["reference"]
    clf.reject_threshold_ = fit_threshold(logits, held, clf.reject_rate, code, shares, reference)


def rejected(logits, threshold, oos_code=None, shares=None, reference=None):
    """(n,) bool: the inputs to reject, the rejection score of their calibrated logits
    ``(n, k)`` (with ``reference``, their :func:`novelty` ``shares`` counted) under
    ``threshold``, or their top class the out-of-scope one."""
    out = _scores(logits, shares, reference) < threshold
    if oos_code is not None:
        out |= np.asarray(logits).argmax(axis=1) == oos_code
    return out


def with_rejections(labels, mask, label):
    """``labels`` (n,) with ``label`` where ``mask``, in a dtype that holds both."""
    try:
        dtype = np.result_type(labels.dtype, np.asarray([label]).dtype)
    except TypeError:
        dtype = object
    if labels.dtype.kind != dtype.kind:     # e.g. int labels and a text label
        dtype = object
    out = labels.astype(dtype)
    out[mask] = label
    return out


def oos_label(clf):
    """The classifier's out-of-scope class: its ``reject_label`` when that is one of its
    ``classes_`` (the training data held out-of-scope examples), else None."""
    label = clf.reject_label
    return label if label is not None and label in list(clf.classes_) else None


def oos_code(clf):
    """The column of the fitted classifier's out-of-scope class, or None."""
    label = getattr(clf, "oos_label_", None)
    return None if label is None else int(np.searchsorted(clf.classes_, label))


def label_of(clf):
    """The label the fitted classifier gives rejected inputs (its ``reject_label``
    resolved); an error when it cannot reject."""
    if getattr(clf, "reject_threshold_", None) is None:
        raise ValueError("the model cannot reject: its threshold is fitted on the held-out "
                         "early-stopping split, and its fit had none (early_stopping=False, "
                         "too few samples, or partial_fit)")
    return resolve_label(clf.reject_label, clf.classes_, getattr(clf, "oos_label_", None))


def predict(clf, logits, grids=None):
    """The fitted classifier's labels for its calibrated logits ``(n, k)``
    (:func:`calibrated_logits`) of ``grids``, its ``reject_label`` (resolved) for the
    inputs to reject. ``grids`` is needed where the model counts unseen words
    (``reject_novelty_``)."""
    label, state = label_of(clf), getattr(clf, "reject_novelty_", None)
    reference = None if state is None else state["reference"]
    predicted = np.asarray(logits).argmax(axis=1)
    shares = None if state is None else novelty(grids, predicted, state["words"])
    if state is not None and shares is None:
        raise ValueError("this model's rejection counts the words training never saw, which "
                         "needs the one-hot word grids (TextAdapter's transform, not dense "
                         f"arrays); got {type(grids).__name__}")
    return with_rejections(clf.classes_[predicted], rejected(
        logits, clf.reject_threshold_, oos_code(clf), shares, reference), label)
