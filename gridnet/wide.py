"""The text preset's linear member: a TF-IDF logistic regression beside the CNNs.

A sentence CNN and a linear model over the sentence's words and word pairs err on
different sentences (a bag of n-grams needs no word seen in a window of the CNN's
filters; the CNN knows words from their pretrained vectors). Where a fitted network
carries an :class:`~gridnet.core.NgramBag` (word one-hot grids with pretrained vectors:
the text preset's default), :func:`join` fits scikit-learn's ``LogisticRegression``
(``C=10``, as the usual TF-IDF baseline) on the same hashed n-grams of the training
rows, as an :class:`~gridnet.core.NgramLinear`, and adds it to the ensemble's mean with
the weight, of :data:`WEIGHTS`, that gives the held-out split the lowest negative
log-likelihood once a temperature is fitted to each (0: no member). Weighting on
held-out data matters: the linear model helps where it is nearly as good as the CNN
(intents) and costs where it is much worse (sentiment); the figures are in
docs/benchmarks.md.
"""
from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

from . import training
from .architectures import ensemble_members
from .calibration import fit_temperature
from .core import Network, NgramBag, NgramLinear, stack
from .core.bag import ngram_ids, word_indices

__all__ = ["join", "member", "fit_linear", "WEIGHTS", "C", "TOL", "MIN_DF"]

#: the linear member's weights tried: the share of its logits in the mixture
WEIGHTS = (0.0, 0.1, 0.2, 1 / 3, 0.5)
#: the logistic regression's inverse regularisation (the TF-IDF baseline's)
C = 10.0
#: its stopping tolerance: half the iterations of scikit-learn's 1e-4, the same accuracy
#: on dev (docs/benchmarks.md)
TOL = 1e-3
#: the fewest training sentences an n-gram must appear in to be a feature (scikit-learn's
#: ``min_df``): n-grams seen once are most of the features and of the fit's time, and
#: leaving them out cost no dev accuracy (docs/benchmarks.md)
MIN_DF = 2


def fit_linear(idx, codes, n_classes, bag, sample_weight=None):
    """An :class:`~gridnet.core.NgramLinear` fitted on word index rows ``idx`` ``(n, h)``
    with label codes ``codes`` (n,), every one of the ``n_classes`` present, reading
    the n-grams as ``bag`` (an :class:`~gridnet.core.NgramBag`, built) reads them; its
    features the n-grams of at least :data:`MIN_DF` rows (all of them where none is)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits
    if len(np.unique(codes)) != n_classes:
        raise ValueError(f"the linear member needs every one of the {n_classes} classes in its rows")
    trained = bag.in_shape[2] if bag.trained is None else bag.trained
    rows, ids = ngram_ids(idx, trained, bag.buckets, bag.n)
    used, cols = np.unique(ids, return_inverse=True)
    df = np.bincount(np.unique(rows * len(used) + cols) % len(used), minlength=len(used))
    idf = np.log((1.0 + len(idx)) / (1.0 + df)) + 1.0          # scikit-learn's smooth idf
    keep = df >= MIN_DF
    if keep.any():
        used, idf = used[keep], idf[keep]
    lin = NgramLinear(n_classes, len(used), bag.buckets, bag.trained, bag.n)
    lin.build(bag.in_shape, None)
    lin.set_model(used, idf, 0.0, 0.0)
    model = LogisticRegression(C=C, tol=TOL, max_iter=5000)
    with threadpool_limits(limits=1):   # a BLAS's threads change its sums' rounding: one, on any machine
        model.fit(lin.tfidf(idx), codes, sample_weight=sample_weight)
    W, b = model.coef_.T, model.intercept_
    if n_classes == 2:              # one margin d: the logits (-d/2, d/2) give its sigmoid
        W, b = np.c_[-W[:, 0], W[:, 0]] / 2, np.r_[-b[0], b[0]] / 2
    lin.set_model(used, idf, W, b)
    return lin


def member(network, grid, codes, rows, val, sample_weight=None, class_weight=None):
    """The fit of ``network``'s linear member on ``rows`` of ``grid``, as a function of
    no arguments (it reads no weight of the CNNs, so it may run while they train), or
    None where there is none: the CNNs have no :class:`~gridnet.core.NgramBag`, there
    is no held-out split ``val`` or a class is missing from ``rows``. Each sample counts
    its ``sample_weight`` (n,) times its class's ``class_weight`` (k,), as in the CNNs'
    loss. The function returns an :class:`~gridnet.core.NgramLinear`."""
    members = ensemble_members(network)
    bag = next((layer for layer in stack.leaves(members[0].layers) if isinstance(layer, NgramBag)), None)
    k = network.out_shape[0]
    if bag is None or val is None or len(np.unique(codes[rows])) != k:
        return None
    w = _weights(codes, sample_weight, class_weight)[rows]
    return lambda: fit_linear(word_indices(bag, grid[rows]), codes[rows], k, bag, w)


def _weights(codes, sample_weight, class_weight):
    w = np.ones(len(codes)) if sample_weight is None else np.asarray(sample_weight, float)
    return w if class_weight is None else w * np.asarray(class_weight, float)[codes]


def join(network, grid, codes, rows, val, batch_size, sample_weight=None, class_weight=None,
         lin=None):
    """``network`` (a fitted CNN or ensemble, any linear member it had dropped) with a
    linear member weighted on ``val``: ``lin``, or where None the one :func:`member`
    fits (same arguments); without one where :func:`member` gives none or the weight
    chosen is 0. -> (network, the member's share of the mixture)."""
    members = ensemble_members(network)
    first = network.layers[0]
    had = any(isinstance(b[0], NgramLinear) for b in getattr(first, "branches", ()))
    cnn = network if not had else members[0] if len(members) == 1 else Network.average(members)
    if lin is None:
        fit = member(cnn, grid, codes, rows, val, sample_weight, class_weight)
        if fit is None:
            return cnn, 0.0
        lin = fit()
    k, w = network.out_shape[0], _weights(codes, sample_weight, class_weight)
    z_cnn = training.logits(cnn, grid, val, k, batch_size).astype(np.float64)
    z_lin = lin.forward(grid[val]).astype(np.float64)
    best = (np.inf, 0.0)
    for share in WEIGHTS:
        z = (1 - share) * z_cnn + share * z_lin
        t = fit_temperature(z, codes[val], w[val])
        nll = -np.average(log_softmax(z / t, axis=1)[np.arange(len(val)), codes[val]], weights=w[val])
        best = min(best, (float(nll), share))
    share = best[1]
    if share == 0.0:
        return cnn, 0.0
    # the mean of m CNNs' logits and s times the member's is (1 - share) z_cnn + share z_lin, up to a factor
    lin.scale = len(members) * share / (1 - share)
    net = Network([lin])
    net.in_shape, net.out_shape = cnn.in_shape, lin.out_shape
    net.steps = stack.plan(net.layers)
    return Network.average(members + [net]), share
