"""Test-time augmentation: a prediction averaged over fixed views of the grid.

A view is a pair ``(warp, shift)``: the rows (frequencies) stretched by the factor
``warp`` as :class:`~gridnet.augment.FrequencyWarp` stretches them in training, then the
columns (time steps) moved ``shift`` steps as :class:`~gridnet.augment.TimeShift` moves
them (the border column fills in); ``(1.0, 0)`` is the grid itself. The classifier's
logits are the mean of the views' log-probabilities (the geometric mean of their
probabilities), so ``predict``, ``predict_proba``, the fitted temperature and the
rejection threshold all see the same averaged answer. Nothing is drawn at random: the
same grid always gives the same answer, and training never sees the views.

The audio preset's views (``tta="auto"``) were chosen on issue 41's dev protocol (new
voices and noise; the figures are in docs/benchmarks.md): a voice's formants sit a few
percent higher or lower than any training voice's, and a word's start a few steps off.
"""
from __future__ import annotations

import numbers

import numpy as np
from scipy.special import log_softmax

from . import training
from .augment import shift_columns, warp_matrices

__all__ = ["PRESET_VIEWS", "resolve", "apply", "logits"]

#: The views ``tta="auto"`` gives each preset (none for the others).
PRESET_VIEWS = {"audio": ((1.0, 0), (0.95, 0), (1.05, 0), (1.0, -3), (1.0, 3))}


def _view(v, i):
    bad = (f"tta[{i}] must be a pair (warp, shift): a warp factor in (0.5, 2] and an int "
           f"shift; got {v!r}")
    if isinstance(v, (str, bytes)) or not hasattr(v, "__len__") or len(v) != 2:
        raise ValueError(bad)
    warp, shift = v
    if (isinstance(warp, bool) or not isinstance(warp, numbers.Real) or not 0.5 < warp <= 2.0
            or isinstance(shift, bool) or not isinstance(shift, numbers.Integral)):
        raise ValueError(bad)
    return float(warp), int(shift)


def resolve(tta, preset, grid_shape, dense=True):
    """The views a fit uses (``tta_``): a tuple of ``(warp, shift)`` pairs, empty for
    none. ``tta``: "auto" (the preset's :data:`PRESET_VIEWS`), None, or a sequence of
    pairs; ``grid_shape`` (c, h, w) bounds the shifts; views need dense grids."""
    if isinstance(tta, str):
        if tta != "auto":
            raise ValueError(f"tta must be 'auto', None or a list of (warp, shift) pairs; got {tta!r}")
        return PRESET_VIEWS.get(preset, ()) if dense else ()
    if tta is None:
        return ()
    if not hasattr(tta, "__iter__"):
        raise ValueError(f"tta must be 'auto', None or a list of (warp, shift) pairs; got {tta!r}")
    views = tuple(_view(v, i) for i, v in enumerate(tta))
    if not views:
        raise ValueError("tta is an empty list; pass None for no test-time views")
    if not dense:
        raise ValueError("tta's views stretch and shift a dense grid; a one-hot word grid "
                         "has none to take: pass tta=None")
    w = int(grid_shape[2])
    for i, (_, shift) in enumerate(views):
        if abs(shift) >= w:
            raise ValueError(f"tta[{i}] shifts {shift} steps, but the grids are {w} wide")
    return views


def apply(batch, view):
    """``batch`` (n, c, h, w) seen through ``view`` ``(warp, shift)`` (a new array,
    or ``batch`` itself for ``(1.0, 0)``)."""
    warp, shift = view
    if warp != 1.0:
        batch = np.matmul(warp_matrices([warp], batch.shape[2], batch.dtype)[0], batch)
    if shift:
        batch = shift_columns(batch, np.full(batch.shape[0], shift))
    return batch


def logits(net, X, rows, n_classes, batch_size, views=()):
    """Logits ``(len(rows), n_classes)`` of ``rows`` of ``X`` averaged over ``views``: the
    mean of each view's log-probabilities, in batches; with no views, the network's own
    logits (:func:`gridnet.training.logits`)."""
    if not views:
        return training.logits(net, X, rows, n_classes, batch_size)
    step = max(int(batch_size), 256)
    out = np.empty((len(rows), n_classes), dtype=np.float32)
    for start in range(0, len(rows), step):
        batch = np.asarray(training.take_batch(X, rows[start:start + step]), dtype=np.float32)
        total = sum(log_softmax(net.forward(apply(batch, v)).astype(np.float64), axis=1)
                    for v in views)
        out[start:start + step] = total / len(views)
    return out
