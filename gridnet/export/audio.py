"""A fitted :class:`adapters.AudioAdapter`'s front end as ONNX nodes: one clip's waveform
(mono float32, at the adapter's ``sr_``) in, its grid ``(1, 1, height, n_frames_)`` out,
computed as :meth:`AudioAdapter.transform` computes it.

The steps, each as the adapter takes it (``adapters/audio.py``, ``adapters/signal.py``):

- trimming (``trim=True``): frame RMS over frames of ``min(n_fft, the largest power of
  two <= the clip's length)`` samples (``librosa.effects.trim``: centred, zero padded),
  in decibels against the loudest frame; the clip keeps the samples from the first to
  past the last frame louder than ``-top_db``;
- crop or place: a clip longer than the grid is cropped (by ``align``) to the samples
  that give ``n_frames_`` frames; a shorter one fills the frames it has, placed by
  ``align``, and the rest of the grid takes the clip's floor (its lowest value);
- the STFT (``center=True``, zero padding, a periodic Hann window) as a convolution with
  the windowed DFT's cosines and sines (ONNX's STFT op has no centring);
- the fitted mel basis (librosa's, Slaney scale) as a constant, ``power_to_db`` with
  ``top_db=80``; MFCCs by the orthonormal DCT-II, or the plain STFT in decibels;
- the normalisation: per clip (``"clip"``), the fitted statistics (``"dataset"``) or none.

Resampling stays outside: the graph takes samples at ``sr_``. A second output,
``valid`` (bool), is False where the adapter would refuse the clip (silent: peak below
1e-6; or, with ``length_ratio``, far from the trained length); the grid is then
meaningless.
"""
from __future__ import annotations

import numpy as np

from .layers import ExportError

__all__ = ["export_audio_front_end", "FRONT_END_ATTRIBUTES"]

#: what the export reads from a fitted AudioAdapter
FRONT_END_ATTRIBUTES = ("sr_", "n_fft_", "hop_length_", "n_frames_", "feature", "n_mels",
                        "n_mfcc", "win_length", "fmin", "fmax", "trim", "top_db", "align",
                        "normalize", "length_ratio")

#: librosa's power_to_db floor and dynamic range (its defaults, which the adapter uses)
_AMIN, _TOP_DB = 1e-10, 80.0


def _check(adapter):
    missing = [a for a in FRONT_END_ATTRIBUTES if not hasattr(adapter, a)]
    if missing:
        raise ExportError(f"the AudioAdapter is not fitted (it lacks {', '.join(missing)})")
    if adapter.feature not in ("logmel", "mfcc", "stft"):
        raise ExportError(f"the ONNX front end has no feature {adapter.feature!r}")
    if adapter.normalize not in ("clip", "dataset", None):
        raise ExportError(f"the ONNX front end has no normalize={adapter.normalize!r}")


def _scalar(g, name):
    """A (1,) int64 tensor -> a scalar."""
    return g.op("Squeeze", [name, g.int64([0])])


def _length(g, y):
    return _scalar(g, g.op("Shape", [y]))


def _trim(g, y, n_fft, hop, top_db):
    """``librosa.effects.trim(y, top_db, frame, min(hop, frame))`` with ``frame`` as the
    adapter picks it -> (trimmed waveform)."""
    n = _length(g, y)
    powers = np.array([2 ** k for k in range(1, 40)], np.int64)
    fits = g.op("Cast", [g.op("LessOrEqual", [g.int64(powers), n])], to=7)     # int64
    largest = g.op("ReduceMax", [g.op("Mul", [fits, g.int64(powers)])], keepdims=0)
    frame = g.op("Min", [g.int64(n_fft), g.op("Max", [largest, g.int64(2)])])
    step = g.op("Min", [g.int64(hop), frame])
    half = g.op("Div", [frame, g.int64(2)])
    padded = g.op("Pad", [g.op("Mul", [y, y]), g.op("Concat", [g.op("Unsqueeze", [half, g.int64([0])])] * 2,
                                                    axis=0), g.const(np.float32(0))])
    power = g.op("ReduceMean", [_frames(g, padded, frame, step)], axes=[1], keepdims=0)
    rms = g.op("Sqrt", [power])
    mse = g.op("Mul", [rms, rms])                      # amplitude_to_db squares the RMS again
    db = _db(g, mse)
    ref = _db(g, g.op("ReduceMax", [mse], keepdims=1))
    loud = g.op("Greater", [g.op("Sub", [db, ref]), g.const(np.float32(-top_db))])
    loud_i = g.op("Cast", [loud], to=1)
    first = g.op("ArgMax", [loud_i], axis=0, keepdims=0)
    last = g.op("ArgMax", [loud_i], axis=0, keepdims=0, select_last_index=1)
    start = g.op("Mul", [first, step])
    end = g.op("Min", [n, g.op("Mul", [g.op("Add", [last, g.int64(1)]), step])])
    return _slice(g, y, start, end)


def _db(g, power):
    """``10 log10(max(power, amin))`` (librosa's power_to_db with ref 1)."""
    ln = g.op("Log", [g.op("Max", [power, g.const(np.float32(_AMIN))])])
    return g.op("Mul", [ln, g.const(np.float32(10.0 / np.log(10.0)))])


def _slice(g, y, start, end):
    def one(t):
        return g.op("Unsqueeze", [t, g.int64([0])])
    return g.op("Slice", [y, one(start), one(end), g.int64([0])])


def _place(g, y, a, frames):
    """(the cropped waveform, the frames it fills, the first grid column, whether its
    length is within ``length_ratio`` of the grid's), as ``adapters.audio._placement``."""
    hop = a.hop_length_
    n = _length(g, y)
    need = (frames - 1) * hop
    have = g.op("Add", [g.op("Div", [n, g.int64(hop)]), g.int64(1)])
    crop = g.op("GreaterOrEqual", [n, g.int64(need)])
    spare = g.op("Sub", [n, g.int64(need)])
    gap = g.op("Sub", [g.int64(frames), have])
    if a.align == "start":
        offset, col = g.int64(0), g.int64(0)
    elif a.align == "center":
        offset, col = g.op("Div", [spare, g.int64(2)]), g.op("Div", [gap, g.int64(2)])
    else:
        offset, col = spare, gap
    start = g.op("Where", [crop, offset, g.int64(0)])
    end = g.op("Where", [crop, g.op("Add", [start, g.int64(need)]), n])
    used = g.op("Where", [crop, g.int64(frames), have])
    col = g.op("Where", [crop, g.int64(0), col])
    ok = None
    if a.length_ratio:
        r = float(a.length_ratio)
        havef = g.op("Cast", [have], to=1)
        short = g.op("Less", [g.op("Mul", [havef, g.const(np.float32(r))]), g.const(np.float32(frames))])
        long_ = g.op("Greater", [havef, g.const(np.float32(r * frames))])
        ok = g.op("Not", [g.op("Or", [short, long_])])
    return _slice(g, y, start, end), used, col, ok


def _frames(g, y, frame, step):
    """The frames of ``y`` (1-D): ``(count, frame)``, ``frame`` samples every ``step``
    (scalars, int64), as many as fit whole (``librosa.util.frame``)."""
    n = _length(g, y)
    count = g.op("Add", [g.op("Div", [g.op("Sub", [n, frame]), step]), g.int64(1)])
    starts = g.op("Mul", [g.op("Range", [g.int64(0), count, g.int64(1)]), step])
    offsets = g.op("Range", [g.int64(0), frame, g.int64(1)])
    at = g.op("Add", [g.op("Unsqueeze", [starts, g.int64([1])]),
                      g.op("Unsqueeze", [offsets, g.int64([0])])])
    return g.op("Gather", [y, at], axis=0)


def _stft_power(g, y, a):
    """|STFT|^2 (bins, time) of a waveform, librosa's ``stft(center=True,
    pad_mode="constant")``, a clip shorter than ``n_fft`` padded with zeros first. The
    windowed DFT is a product with its cosines and sines in float64, rounded to float32
    as librosa rounds its float64 FFT."""
    import librosa
    n_fft, hop = a.n_fft_, a.hop_length_
    n = _length(g, y)
    short = g.op("Max", [g.op("Sub", [g.int64(n_fft), n]), g.int64(0)])
    y = g.op("Pad", [y, g.op("Concat", [g.int64([0]), g.op("Unsqueeze", [short, g.int64([0])])], axis=0),
                     g.const(np.float32(0))])
    y = g.op("Pad", [y, g.int64([n_fft // 2, n_fft // 2]), g.const(np.float32(0))])
    window = librosa.filters.get_window("hann", a.win_length or n_fft, fftbins=True)
    window = librosa.util.pad_center(window, size=n_fft).astype(np.float64)
    bins = 1 + n_fft // 2
    angle = 2 * np.pi * np.outer(np.arange(n_fft), np.arange(bins)) / n_fft
    dft = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1) * window[:, None]
    frames = _frames(g, g.op("Cast", [y], to=11), g.int64(n_fft), g.int64(hop))    # float64
    spec = g.op("Cast", [g.op("MatMul", [frames, g.const(dft, dtype=np.float64)])], to=1)
    re = g.op("Slice", [spec, g.int64([0]), g.int64([bins]), g.int64([1])])
    im = g.op("Slice", [spec, g.int64([bins]), g.int64([2 * bins]), g.int64([1])])
    power = g.op("Add", [g.op("Mul", [re, re]), g.op("Mul", [im, im])])        # (time, bins)
    return g.op("Transpose", [power], perm=[1, 0])


def _to_db(g, power):
    db = _db(g, power)
    return g.op("Max", [db, g.op("Sub", [g.op("ReduceMax", [db], keepdims=1),
                                         g.const(np.float32(_TOP_DB))])])


def _features(g, y, a):
    """Waveform -> (height, time) features, as ``adapters.signal.spectrogram``."""
    import librosa
    power = _stft_power(g, y, a)
    if a.feature == "stft":
        return _to_db(g, power)
    basis = librosa.filters.mel(sr=a.sr_, n_fft=a.n_fft_, n_mels=a.n_mels, fmin=a.fmin, fmax=a.fmax)
    logmel = _to_db(g, g.op("MatMul", [g.const(basis), power]))
    if a.feature == "logmel":
        return logmel
    from scipy.fft import dct
    D = dct(np.eye(a.n_mels), type=2, norm="ortho", axis=0)[:a.n_mfcc]
    return g.op("MatMul", [g.const(D), logmel])


def _fill(g, value, height, width):
    """A (height, width) block of ``value`` (a (1, 1) or (height, 1) tensor)."""
    shape = g.op("Concat", [g.int64([height]), g.op("Unsqueeze", [width, g.int64([0])])], axis=0)
    return g.op("Expand", [value, shape])


def export_audio_front_end(g, waveform, adapter):
    """Add the front end of the fitted ``adapter`` to graph ``g`` on the 1-D float32
    tensor ``waveform``; return ``(grid (1, 1, height, frames), valid)``."""
    _check(adapter)
    a = adapter
    frames = int(a.n_frames_)
    y = waveform
    peak = g.op("ReduceMax", [g.op("Abs", [y])], keepdims=0)
    audible = g.op("GreaterOrEqual", [peak, g.const(np.float32(1e-6))])
    if a.trim:
        y = _trim(g, y, int(a.n_fft_), int(a.hop_length_), float(a.top_db))
    y, used, col, fits = _place(g, y, a, frames)
    spec = _features(g, y, a)
    height = {"logmel": a.n_mels, "mfcc": a.n_mfcc, "stft": 1 + a.n_fft_ // 2}[a.feature]
    one = g.op("Unsqueeze", [used, g.int64([0])])
    kept = g.op("Slice", [spec, g.int64([0]), one, g.int64([1])])
    floor = (g.op("ReduceMin", [kept], axes=[1], keepdims=1) if a.feature == "mfcc"
             else g.op("ReduceMin", [kept], keepdims=1))
    after = g.op("Sub", [g.op("Sub", [g.int64(frames), col]), used])
    grid = g.op("Concat", [_fill(g, floor, height, col), kept, _fill(g, floor, height, after)], axis=1)
    if a.normalize == "clip":
        mean = g.op("ReduceMean", [grid], keepdims=1)
        centred = g.op("Sub", [grid, mean])
        std = g.op("Sqrt", [g.op("ReduceMean", [g.op("Mul", [centred, centred])], keepdims=1)])
        scale = g.op("Where", [g.op("Greater", [std, g.const(np.float32(1e-6))]), std,
                               g.const(np.float32(1.0))])
        grid = g.op("Div", [centred, scale])
    elif a.normalize == "dataset":
        grid = g.op("Div", [g.op("Sub", [grid, g.const(np.asarray(a.mean_, np.float32)[:, None])]),
                            g.const(np.asarray(a.scale_, np.float32)[:, None])])
    grid = g.op("Unsqueeze", [grid, g.int64([0, 1])])
    valid = audible if fits is None else g.op("And", [audible, fits])
    return grid, g.op("Unsqueeze", [valid, g.int64([0])])
