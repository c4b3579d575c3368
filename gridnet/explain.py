"""Explanation maps: which cells of a grid drove a network's score for a class.

Two methods, each exact for what it claims:

- :func:`gradient_x_input` for every network: the gradient of the class's *margin*
  (its logit minus the mean of the other logits) times the input, summed over
  channels. Gradient x input is the first-order share of each cell in the margin (for
  a ReLU network without biases the shares add up to the margin exactly). The margin,
  not the class's probability: the probability's gradient vanishes once the model is
  sure, and the logit alone also credits evidence shared by every class (a loud
  sound in every clip), which the margin cancels. A class activation map would need a
  global pooling right before the output layer, which the image and audio presets do
  not have (they flatten).
- :func:`winning_windows` for the sentence CNN (Kim, 2014): after max over time, the
  margin is a sum over filters of (output weight x the filter's maximum), and each
  maximum sits at one window of words; summing those terms per window names the
  n-grams that carried the class, with shares that add up to the margin (less its
  bias).
"""
from __future__ import annotations

import contextlib

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .architectures import ensemble_members
from .core import Branches, Dense, Dropout, Flatten, GlobalMaxPool, NgramBag, is_onehot
from .core.layers import ReLU
from .core.stack import leaves

__all__ = ["margin_gradient", "gradient_x_input", "gradient_maps", "target_codes", "winning_windows",
           "ExplainMixin"]


def margin_gradient(k, codes):
    """d(margin)/d(logits), ``(n, k)``: ``z[c] - mean of the other z`` for class
    ``codes[i]``."""
    g = np.full((len(codes), k), -1.0 / max(k - 1, 1), dtype=np.float32)
    g[np.arange(len(codes)), codes] = 1.0
    return g


@contextlib.contextmanager
def _without_dropout(net):
    """The network as at inference (dropout off) while keeping what backward needs."""
    layers = [layer for layer in leaves(net.layers) if isinstance(layer, Dropout)]
    rates = [layer.rate for layer in layers]
    try:
        for layer in layers:
            layer.rate = 0.0
        yield
    finally:
        for layer, rate in zip(layers, rates):
            layer.rate = rate


def gradient_x_input(net, x, codes):
    """Gradient x input of each sample's margin for class ``codes`` ``(n,)``.

    ``x`` (n, c, h, w) dense -> maps ``(n, h, w)`` (summed over channels); a one-hot
    grid -> ``(n, h)``: the value at each row's hot cell (every other cell is 0 in the
    input, so 0 in the map), i.e. one value per word position.
    """
    with _without_dropout(net):
        z = net.forward(x, training=True)
        dx = net.backward(margin_gradient(z.shape[1], np.asarray(codes)), input_grad=True)
    if is_onehot(x):
        return np.where(np.asarray(x.indices) >= 0, dx, 0.0).astype(np.float32)
    return (dx * x).sum(axis=1).astype(np.float32)


def gradient_maps(net, grid, codes, batch=64):
    """:func:`gradient_x_input` over ``grid`` (n, c, h, w), ``batch`` samples at a time."""
    from .training import take_batch
    out = []
    for start in range(0, grid.shape[0], batch):
        rows = np.arange(start, min(start + batch, grid.shape[0]))
        out.append(gradient_x_input(net, take_batch(grid, rows), codes[rows]))
    return np.concatenate(out)


def target_codes(classes, target, n, predicted):
    """Class indices (n,) into ``classes`` to explain: ``predicted()`` (the predicted
    classes' indices) for ``target=None``, else ``target``: one label for every sample,
    or one label per sample, each a class."""
    if target is None:
        return predicted()
    t = np.asarray(target, dtype=object)
    labels = [t.item()] * n if t.ndim == 0 else t.tolist()
    if t.ndim > 1 or len(labels) != n:
        raise ValueError(f"target must be one label or one per sample ({n}); got shape {t.shape}")
    index = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
    unknown = [v for v in dict.fromkeys(labels) if v not in index]
    if unknown:
        raise ValueError(f"target names {unknown[:5]}, not classes of this model "
                         f"({np.asarray(classes).tolist()})")
    return np.array([index[v] for v in labels], dtype=np.intp)


def _beside_a_bag(layers):
    """``layers`` as a sentence CNN's: a first Branches of [the CNN's layers] and
    [an n-gram bag] stands for the CNN's layers (its features come first)."""
    first = layers[0] if layers else None
    if (isinstance(first, Branches) and len(first.branches) == 2
            and [type(layer) for layer in first.branches[1]] == [NgramBag]):
        return list(first.branches[0]) + list(layers[1:])
    return list(layers)


def _sentence_cnn(net):
    """(layers before the Branches, the Branches, the output Dense) of a sentence CNN
    (branches ending in a max over positions; only Flatten/Dropout between them and
    the output; an n-gram bag may sit beside it), else a ValueError."""
    layers = _beside_a_bag(net.layers)
    where = [i for i, layer in enumerate(layers) if isinstance(layer, Branches)]
    reason = None
    if len(where) != 1:
        reason = "it has no Branches block" if not where else "it has several Branches blocks"
    else:
        b = where[0]
        branches = layers[b]
        after = layers[b + 1:]
        if not all(isinstance(br[-1], GlobalMaxPool) and br[-1].axis == "height"
                   for br in branches.branches):
            reason = "its branches do not end in a max over positions"
        elif not (after and isinstance(after[-1], Dense)
                  and all(isinstance(layer, (Flatten, Dropout)) for layer in after[:-1])):
            reason = "layers other than Flatten and Dropout sit between the max and the output"
        elif after[-1].activation:
            reason = "its output layer has an activation"
    if reason:
        raise ValueError(f"winning windows need a sentence CNN (the 'text' preset without a "
                         f"hidden dense layer); this network does not qualify: {reason}. "
                         "explain() works for every network")
    return layers[:b], layers[b], layers[-1]


def winning_windows(net, x, codes, top=3):
    """The windows of positions whose filters carried each sample's margin for class
    ``codes`` in a sentence CNN (or an ensemble of them: each network's shares over
    their number, as their logits are averaged): a list per sample of up to ``top``
    tuples ``(start, stop, share)``, positions ``start:stop`` of the grid (cut to the
    words of a one-hot grid: padding is none), largest share first (only positive
    shares)."""
    members = ensemble_members(net)
    per = [dict() for _ in range(x.shape[0])]
    for member in members:
        for i, shares in enumerate(_window_shares(member, x, codes)):
            for key, value in shares.items():
                per[i][key] = per[i].get(key, 0.0) + value / len(members)
    return [sorted(((s, e, v) for (s, e), v in d.items()), key=lambda t: -t[2])[:top]
            for d in per]


def _window_shares(net, x, codes):
    """Per sample, ``{(start, stop): share}`` of a sentence CNN's margin (see
    :func:`winning_windows`)."""
    before, branches, out = _sentence_cnn(net)
    codes = np.asarray(codes)
    h = x
    for layer in before:
        h = layer.forward(h)
    W = out.params["W"]                                  # (features, classes)
    k = W.shape[1]
    Wm = W - (W.sum(axis=1, keepdims=True) - W) / max(k - 1, 1)   # margin weights
    n, positions = x.shape[0], x.shape[2]
    lo, hi = np.zeros(n, int), np.full(n, positions)
    if is_onehot(x):          # windows end where the words do (padding is no word)
        used = np.asarray(x.indices) >= 0
        some = used.any(axis=1)
        lo[some] = used[some].argmax(axis=1)
        hi[some] = positions - used[some][:, ::-1].argmax(axis=1)
    per = [dict() for _ in range(n)]
    f0 = 0
    for branch in branches.branches:
        conv = next((layer for layer in branch if hasattr(layer, "pads")), None)
        if conv is None or not (conv.activation == "relu" or
                                any(isinstance(layer, ReLU) for layer in branch)):
            raise ValueError("winning windows need a convolution with ReLU in each branch")
        kh, top_pad = conv.kernel_size[0], conv.pads[0]
        a = h
        for layer in branch[:-1]:
            a = layer.forward(a.toarray() if is_onehot(a) else a)
        a = np.asarray(a)[:, :, :, 0]                     # (n, filters, positions)
        at = a.argmax(axis=2)                             # the first maximum
        best = np.take_along_axis(a, at[:, :, None], axis=2)[:, :, 0]
        share = best * Wm[f0:f0 + a.shape[1]][:, codes].T  # (n, filters)
        for i in range(n):
            for f in np.nonzero(share[i] > 0)[0]:
                start = max(int(at[i, f]) - top_pad, lo[i])
                stop = min(int(at[i, f]) - top_pad + kh, hi[i])
                if stop <= start:
                    continue
                key = (start, stop)
                per[i][key] = per[i].get(key, 0.0) + float(share[i, f])
        f0 += a.shape[1]
    return per


class ExplainMixin:
    """:class:`gridnet.GridNetClassifier`'s explanations (needs its ``network_``,
    ``classes_``, ``_logits`` and ``_validate_X``)."""

    def _target_codes(self, grid, target):
        return target_codes(self.classes_, target, grid.shape[0],
                            lambda: self._logits(grid).argmax(axis=1))

    def explain(self, X, target=None):
        """How much each cell of each grid ``X`` (as for :meth:`predict`) drove the score
        of ``target`` (None: each sample's predicted class; a label; or (n,) labels):
        gradient x input of the class's margin (its logit minus the mean of the others;
        :mod:`gridnet.explain` says why). Returns float32 maps ``(n, h, w)``, summed over
        channels (positive cells raised the margin); for a one-hot word grid ``(n, h)``,
        one value per word position.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> d = load_digits()
        >>> from gridnet import GridNetClassifier
        >>> clf = GridNetClassifier(max_epochs=1, random_state=0).fit(d.images[:100], d.target[:100])
        >>> clf.explain(d.images[:2]).shape
        (2, 8, 8)
        """
        check_is_fitted(self)
        grid = self._validate_X(X, reset=False)
        return gradient_maps(self.network_, grid, self._target_codes(grid, target),
                             batch=max(int(self.batch_size), 64))

    def explain_windows(self, X, target=None, top=3):
        """For the sentence CNN ("text" preset): the windows of word positions whose
        filters carried each sample's class (max over time names the position each
        winning filter fired at). A list per sample of up to ``top`` ``(start, stop,
        share)``: grid positions ``start:stop``, their share of the class's margin,
        largest first. ``TextAdapter.tokens_at_positions`` turns positions into words.
        """
        check_is_fitted(self)
        grid = self._validate_X(X, reset=False)
        return winning_windows(self.network_, grid, self._target_codes(grid, target), top=int(top))
