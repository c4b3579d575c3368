"""Training-time augmentation for spectrogram-like grids ``(n, c, h, w)``.

An augmentation is any callable ``augment(batch, rng) -> batch`` where ``batch`` is a
float32 array ``(n, c, h, w)`` and ``rng`` a ``numpy.random.Generator``; it must return
an array of the same shape and may modify ``batch`` in place (the estimator hands it a
private copy, never the user's data). :class:`GridNetClassifier` applies it to training
batches only.

For spectrograms (height = frequency, width = time) the built-ins are SpecAugment's
masks (Park et al., 2019), a random circular-free time shift, a stretch of the
frequency axis (as a longer or shorter vocal tract moves the formants), and noise mixed
in where it adds, in the power domain (:class:`AddNoise`). A stretch of the time axis
(:class:`TimeStretch`) is an option, not in the audio preset (it cost noise robustness
on dev; docs/benchmarks.md).
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["FrequencyMask", "TimeMask", "TimeShift", "FrequencyWarp", "TimeStretch", "AddNoise", "Fragments",
           "Compose", "spec_augment", "audio_augment", "shift_columns", "warp_matrices"]


def _same(a, b):
    """Equal values, arrays (and lists of them) compared by content."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _check_fraction(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}'s {name} must be in [0, 1); got {value!r}")


class _Augmentation:
    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and vars(self).keys() == vars(other).keys() and all(
            _same(v, vars(other)[k]) for k, v in vars(self).items())


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
        return shift_columns(batch, rng.integers(-m, m + 1, size=n), self.fill)


def shift_columns(batch, shifts, fill="edge"):
    """``batch`` (n, c, h, w) with sample i's columns moved ``shifts[i]`` to the right
    (left when negative); the columns that come in take ``fill`` (``"edge"``: the border
    column's values, or a number). A new array."""
    w = batch.shape[3]
    src = np.arange(w)[None, :] - np.asarray(shifts)[:, None]       # (n, w) source columns
    outside = (src < 0) | (src >= w)
    out = np.take_along_axis(batch, np.clip(src, 0, w - 1)[:, None, None, :], axis=3)
    if fill != "edge":
        np.copyto(out, batch.dtype.type(fill), where=outside[:, None, None, :])
    return out


class FrequencyWarp(_Augmentation):
    """Stretch each sample's rows (frequencies) by a factor drawn from ``[1 - max_warp,
    1 + max_warp]``, anchored at the lowest row, by linear interpolation: the formants
    of a longer or shorter vocal tract (Jaitly and Hinton's vocal tract length
    perturbation). Rows that would come from beyond the top repeat it.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.tile(np.arange(8, dtype=np.float32)[:, None], (2, 1, 1, 3))
    >>> y = FrequencyWarp(0.5)(x.copy(), np.random.default_rng(1))
    >>> y.shape, bool((y[:, :, 0] == 0).all())
    ((2, 1, 8, 3), True)
    """

    def __init__(self, max_warp=0.1):
        _check_fraction("FrequencyWarp", "max_warp", max_warp)
        self.max_warp = max_warp

    def __call__(self, batch, rng):
        alpha = rng.uniform(1.0 - self.max_warp, 1.0 + self.max_warp, size=batch.shape[0])
        return np.matmul(warp_matrices(alpha, batch.shape[2], batch.dtype)[:, None], batch)


class TimeStretch(_Augmentation):
    """Stretch each sample's columns (time) by a factor drawn from ``[1 - max_stretch,
    1 + max_stretch]``, anchored at the grid's centre, by linear interpolation: a word
    said faster or slower (the time half of Ko et al.'s speed perturbation; the
    frequency half is :class:`FrequencyWarp`). Columns that would come from beyond an
    edge repeat it (a clip's padding, its floor).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.tile(np.arange(9, dtype=np.float32), (2, 1, 3, 1))
    >>> y = TimeStretch(0.5)(x.copy(), np.random.default_rng(1))
    >>> y.shape, bool((y[:, :, :, 4] == 4).all())          # the centre stays
    ((2, 1, 3, 9), True)
    """

    def __init__(self, max_stretch=0.1):
        _check_fraction("TimeStretch", "max_stretch", max_stretch)
        self.max_stretch = max_stretch

    def __call__(self, batch, rng):
        n, w = batch.shape[0], batch.shape[3]
        beta = rng.uniform(1.0 - self.max_stretch, 1.0 + self.max_stretch, size=n)
        centre = (w - 1) / 2
        src = np.clip(centre + (np.arange(w)[None, :] - centre) / beta[:, None], 0, w - 1)
        lo = np.floor(src).astype(np.intp)
        frac = (src - lo).astype(batch.dtype)[:, None, None, :]
        below = np.take_along_axis(batch, lo[:, None, None, :], axis=3)
        above = np.take_along_axis(batch, np.minimum(lo + 1, w - 1)[:, None, None, :], axis=3)
        return below * (1 - frac) + above * frac


def warp_matrices(alpha, h, dtype=np.float32):
    """(n, h, h): for each factor of ``alpha`` (n,), the matrix that stretches ``h``
    rows by it, anchored at row 0, by linear interpolation (rows that would come from
    beyond the top repeat it): ``matrix @ rows`` is the warped grid."""
    alpha = np.asarray(alpha, dtype=np.float64)
    n = len(alpha)
    src = np.clip(np.arange(h)[None, :] / alpha[:, None], 0, h - 1)        # (n, h)
    lo = np.floor(src).astype(np.intp)
    frac = (src - lo).astype(dtype)
    weights = np.zeros((n, h, h), dtype=dtype)
    at = (np.arange(n)[:, None], np.arange(h)[None, :])
    np.add.at(weights, at + (lo,), 1 - frac)
    np.add.at(weights, at + (np.minimum(lo + 1, h - 1),), frac)
    return weights


def _span(x):
    """(m, 1, 1, w) bool: the columns of each grid of ``x`` (m, c, h, w) that its clip
    spans, those not all at the grid's lowest value (none of a constant grid): the
    adapter pads a short clip with time steps at its lowest value."""
    return (x != x.min(axis=(1, 2, 3), keepdims=True)).any(axis=(1, 2), keepdims=True)


def _span_mean(values, span):
    """Each grid's mean of ``values`` (m, c, h, w) over the columns in ``span``, float64."""
    total = np.where(span, values, 0).sum(axis=(1, 2, 3), keepdims=True, dtype=np.float64)
    return total / (span.sum(axis=(1, 2, 3), keepdims=True) * values.shape[1] * values.shape[2])


class AddNoise(_Augmentation):
    """Mix noise into a share ``p`` of the samples of a batch of log-power spectrograms
    (``AudioAdapter``'s log-mel grids), where noise adds: in the power domain.

    A grid is in decibels normalised per clip (zero mean, unit variance), an affine map
    that hides the clip's level and its spread in dB (``s``). The level does not matter
    (the noise is set relative to the clip's own mean power, at an SNR drawn from
    ``snr``); the spread is drawn from ``db_scale``, the range speech clips span (FSDD's
    middle 90%: 11-23 dB). Each sample: power ``P = 10^(x s / 10)``; noise whose level in
    dB tilts linearly across the rows by up to ``tilt`` dB either way (white to pink or
    blue) and varies by ``jitter`` dB from cell to cell; ``10 log10(P + N) / s``, given
    back the sample's own mean and standard deviation (as the adapter normalises a noisy
    clip). Why here and not on waveforms: in a pipeline the classifier sees grids only.

    The noise covers the clip's span only, the columns not all at the grid's lowest
    value, and the SNR is taken over it: the adapter pads a short clip with time steps
    at its lowest value, and a noisy recording's padding is flat at the noisy clip's
    lowest value, which is what the padding becomes here. The SNRs start at 3 dB: over
    the clip alone an SNR is louder noise than over a padded grid, and 3-23 dB was
    chosen on dev data (docs/benchmarks.md).

    ``background``: recordings' spectrograms in dB, ``[(h, frames_k), ...]`` (an
    ``AudioAdapter(background=...)``'s ``background_``): a noisy sample's noise is then,
    one time in two, a window of the grid's width cut at random from one of them (each
    recording drawn by how many windows it holds) instead of the synthetic noise.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal((4, 1, 40, 30)).astype(np.float32)
    >>> y = AddNoise(p=1.0)(x.copy(), np.random.default_rng(0))
    >>> y.shape, bool(np.allclose(y.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=1e-5))
    ((4, 1, 40, 30), True)
    """

    def __init__(self, snr=(3.0, 23.0), p=0.5, db_scale=(12.0, 22.0), tilt=12.0, jitter=2.0,
                 background=None):
        for name, value in (("snr", snr), ("db_scale", db_scale)):
            if np.ndim(value) != 1 or len(value) != 2 or not value[0] <= value[1]:
                raise ValueError(f"AddNoise's {name} must be a range (low, high); got {value!r}")
        if not 0.0 <= p <= 1.0 or min(db_scale) <= 0 or tilt < 0 or jitter < 0:
            raise ValueError("AddNoise needs 0 <= p <= 1, a positive db_scale and tilt, "
                             f"jitter >= 0; got p={p!r}, db_scale={db_scale!r}, tilt={tilt!r}, "
                             f"jitter={jitter!r}")
        self.snr = snr
        self.p = p
        self.db_scale = db_scale
        self.tilt = tilt
        self.jitter = jitter
        if background is not None:
            background = [np.asarray(b, dtype=np.float32) for b in background]
            if not background or any(b.ndim != 2 or not np.isfinite(b).all() for b in background):
                raise ValueError("AddNoise's background must be a non-empty list of finite "
                                 "(height, frames) spectrograms in dB")
        self.background = background

    def __repr__(self):
        shown = {**vars(self), "background": None if self.background is None else
                 f"<{len(self.background)} recordings>"}
        return f"AddNoise({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def _background(self, noise, rng, h, w):
        """Replace about half of ``noise`` (m, c, h, w) (powers) with windows of the
        background recordings."""
        if any(b.shape[0] != h or b.shape[1] < w for b in self.background):
            raise ValueError(f"AddNoise's background recordings must be {h} rows high and at "
                             f"least {w} time steps long, as the grids; got "
                             f"{sorted({b.shape for b in self.background})}")
        use = np.nonzero(rng.random(len(noise)) < 0.5)[0]
        windows = np.array([b.shape[1] - w + 1 for b in self.background], dtype=np.float64)
        which = rng.choice(len(self.background), size=len(use), p=windows / windows.sum())
        for i, k in zip(use, which):
            start = rng.integers(0, windows[k])
            noise[i] = np.power(np.float32(10.0), self.background[k][:, start:start + w] / np.float32(10.0))
        return noise

    def __call__(self, batch, rng):
        n, c, h, w = batch.shape
        pick = np.nonzero(rng.random(n) < self.p)[0]
        m = len(pick)
        if m == 0:
            return batch
        f32, ten = np.float32, np.float32(10.0)
        x = batch[pick].astype(f32, copy=False)
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        std = x.std(axis=(1, 2, 3), keepdims=True)
        span = _span(x)
        span |= ~span.any(axis=3, keepdims=True)        # a constant grid: noisy throughout
        s = rng.uniform(*self.db_scale, size=(m, 1, 1, 1)).astype(f32)
        # powers relative to the sample's peak: at most 1, so a peaked grid cannot overflow
        power = np.power(ten, (x - x.max(axis=(1, 2, 3), keepdims=True)) * (s / ten))
        rows = np.arange(h, dtype=f32) / max(h - 1, 1) - f32(0.5)
        level = rows[None, None, :, None] * rng.uniform(-self.tilt, self.tilt, size=(m, 1, 1, 1)).astype(f32)
        noise = np.power(ten, (level + rng.normal(0.0, self.jitter, size=(m, c, h, w)).astype(f32)) / ten)
        if self.background is not None:
            noise = self._background(noise, rng, h, w)
        snr = rng.uniform(*self.snr, size=(m, 1, 1, 1))
        noise *= (_span_mean(power, span) / _span_mean(noise, span)
                  / 10.0 ** (snr / 10.0)).astype(f32)
        y = np.log10(power + noise) * (ten / s)
        # the padding: flat at the noisy clip's lowest value, as the adapter pads it (the
        # noise mixed in there is dropped; without it a silent cell's log would be -inf)
        low = np.where(span, y, np.inf).min(axis=(1, 2, 3), keepdims=True)
        y = np.where(span, y, low)
        y_mean = y.mean(axis=(1, 2, 3), keepdims=True)
        y_std = y.std(axis=(1, 2, 3), keepdims=True)
        batch[pick] = (y - y_mean) / np.where(y_std > 1e-12, y_std, f32(1.0)) * std + mean
        return batch


class Fragments(_Augmentation):
    """Out-of-scope samples made from a batch of clip grids: the edge of a word, as a
    window of a long recording sliding between two clips catches it.

    Of a share ``share`` of the samples: the columns its clip spans (those not all at the
    grid's lowest value, which pads a clip shorter than the grid), cut to a share drawn
    from ``keep`` of their width, at the grid's right edge (the word's start) or its left
    edge (its end); the rest of the grid at that lowest value, the sample's mean and
    standard deviation given back (as the adapter normalises a window). A grid with no
    such columns (constant) makes none.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((4, 1, 3, 10), np.float32)
    >>> x[:, :, :, 2:8] = 1.0                   # a clip of 6 columns, padded
    >>> out = Fragments(share=1.0)(x, np.random.default_rng(0))
    >>> out.shape, bool((out.max(axis=2)[:, 0, 2:8] == out.min()).all())   # only an edge kept
    ((4, 1, 3, 10), True)
    """

    def __init__(self, share=0.125, keep=(0.05, 0.25)):
        if not 0.0 <= share <= 1.0 or np.ndim(keep) != 1 or len(keep) != 2 \
                or not 0.0 < keep[0] <= keep[1] <= 1.0:
            raise ValueError("Fragments needs 0 <= share <= 1 and 0 < keep[0] <= keep[1] <= 1; "
                             f"got share={share!r}, keep={keep!r}")
        self.share = share
        self.keep = keep

    def __call__(self, batch, rng):
        n, c, h, w = batch.shape
        pick = np.nonzero(rng.random(n) < self.share)[0]
        keep = rng.uniform(*self.keep, size=len(pick))
        right = rng.random(len(pick)) < 0.5
        spans = _span(batch[pick])[:, 0, 0]
        out = []
        for i, u, at_right, span in zip(pick, keep, right, spans):
            x = batch[i]
            floor = x.min()
            cols = np.nonzero(span)[0]
            if not len(cols):
                continue
            a, b = cols[0], cols[-1] + 1
            k = max(1, int(round(u * (b - a))))
            f = np.full_like(x, floor)
            if at_right:
                f[:, :, w - k:] = x[:, :, a:a + k]
            else:
                f[:, :, :k] = x[:, :, b - k:b]
            std = f.std()
            out.append((f - f.mean()) / (std if std > 1e-12 else 1.0) * x.std() + x.mean())
        return np.stack(out).astype(batch.dtype, copy=False) if out else batch[:0].copy()


class Compose(_Augmentation):
    """Apply several augmentations in order; ``outliers`` (None or a callable such as
    :class:`Fragments`) makes out-of-scope samples from each training batch, before
    the steps, which then apply to them too."""

    def __init__(self, steps, outliers=None):
        self.steps = list(steps)
        self.outliers = outliers

    def __call__(self, batch, rng):
        for step in self.steps:
            batch = step(batch, rng)
        return batch


def audio_augment(background=None):
    """The audio preset's augmentation (``augment="auto"``): noise mixed in
    (:class:`AddNoise`, with ``background`` recordings when given), a frequency warp of
    up to 10%, then :func:`spec_augment`'s shift (up to 10 steps) and masks; and an
    eighth of each batch again as word fragments of no class (:class:`Fragments`), so
    that a window that catches only the edge of a word is not answered with confidence.

    Examples
    --------
    >>> from gridnet import GridNetClassifier
    >>> from gridnet.augment import audio_augment
    >>> clf = GridNetClassifier(augment=audio_augment())      # as "auto" for audio
    """
    return Compose([AddNoise(background=background), FrequencyWarp(0.1),
                    # shifts of up to 10 steps: a word off the window's centre, as a long
                    # recording's windows place it, is still the word
                    spec_augment(freq_width=4, time_width=4, max_shift=10)], outliers=Fragments())


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
