"""Training-time augmentation for spectrogram-like grids ``(n, c, h, w)``.

An augmentation is any callable ``augment(batch, rng) -> batch`` where ``batch`` is a
float32 array ``(n, c, h, w)`` and ``rng`` a ``numpy.random.Generator``; it must return
an array of the same shape and may modify ``batch`` in place (the estimator hands it a
private copy, never the user's data). :class:`GridNetClassifier` applies it to training
batches only.

For spectrograms (height = frequency, width = time) the built-ins are SpecAugment's
masks (Park et al., 2019) and a random circular-free time shift.
"""
from __future__ import annotations

import numpy as np

__all__ = ["FrequencyMask", "TimeMask", "TimeShift", "Compose", "spec_augment"]


class _Augmentation:
    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)


def _masks(batch, rng, axis, n_masks, max_width, fill):
    n, size = batch.shape[0], batch.shape[axis]
    max_width = min(int(max_width), size)
    for _ in range(int(n_masks)):
        widths = rng.integers(0, max_width + 1, size=n)
        starts = rng.integers(0, size - widths + 1)
        pos = np.arange(size)
        hide = (pos >= starts[:, None]) & (pos < (starts + widths)[:, None])   # (n, size)
        shape = [n, 1, 1, 1]
        shape[axis] = size
        value = batch.mean(axis=(1, 2, 3), keepdims=True) if fill == "mean" else batch.dtype.type(fill)
        np.copyto(batch, np.broadcast_to(value, batch.shape), where=hide.reshape(shape))
    return batch


class _Mask(_Augmentation):
    _axis = None

    def __init__(self, max_width=8, n_masks=1, fill="mean"):
        self.max_width = max_width
        self.n_masks = n_masks
        self.fill = fill

    def __call__(self, batch, rng):
        return _masks(batch, rng, self._axis, self.n_masks, self.max_width, self.fill)


class FrequencyMask(_Mask):
    """Hide ``n_masks`` bands of up to ``max_width`` rows (frequencies) per sample.

    ``fill``: ``"mean"`` (the sample's mean, right for log-spectrograms) or a number.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((2, 1, 8, 5), np.float32)
    >>> FrequencyMask(max_width=3, fill=0)(x, np.random.default_rng(0)).shape
    (2, 1, 8, 5)
    """

    _axis = 2


class TimeMask(_Mask):
    """Hide ``n_masks`` spans of up to ``max_width`` columns (time steps) per sample."""

    _axis = 3


class TimeShift(_Augmentation):
    """Shift each sample by up to ``max_shift`` columns left or right; the columns that
    come in take ``fill`` (``"edge"`` repeats the border column, or a number)."""

    def __init__(self, max_shift=4, fill="edge"):
        self.max_shift = max_shift
        self.fill = fill

    def __call__(self, batch, rng):
        n, w = batch.shape[0], batch.shape[3]
        m = min(int(self.max_shift), w - 1)
        if m <= 0:
            return batch
        shifts = rng.integers(-m, m + 1, size=n)
        src = np.arange(w)[None, :] - shifts[:, None]            # (n, w) source columns
        outside = (src < 0) | (src >= w)
        out = np.take_along_axis(batch, np.clip(src, 0, w - 1)[:, None, None, :], axis=3)
        if self.fill != "edge":
            np.copyto(out, batch.dtype.type(self.fill), where=outside[:, None, None, :])
        return out


class Compose(_Augmentation):
    """Apply several augmentations in order."""

    def __init__(self, steps):
        self.steps = list(steps)

    def __call__(self, batch, rng):
        for step in self.steps:
            batch = step(batch, rng)
        return batch


def spec_augment(freq_width=6, time_width=6, n_masks=1, max_shift=3):
    """The usual spectrogram recipe: a time shift, then frequency and time masks.

    Examples
    --------
    >>> from gridnet import GridNetClassifier
    >>> from gridnet.augment import spec_augment
    >>> clf = GridNetClassifier(preset="audio", augment=spec_augment())
    """
    return Compose([TimeShift(max_shift), FrequencyMask(freq_width, n_masks),
                    TimeMask(time_width, n_masks)])
