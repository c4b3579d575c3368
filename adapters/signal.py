"""Reading a clip and turning it into a spectrogram: what :class:`~adapters.AudioAdapter`
and the long-recording windows (:mod:`adapters.recording`) share."""
from __future__ import annotations

import os
import warnings

import numpy as np

from .files import file_kind

__all__ = ["AudioError", "ClipSettings", "item_name", "check_audio_file", "read_clip",
           "place_frames", "spectrogram", "grid_height", "mel_basis_for"]


class AudioError(ValueError):
    """A clip that cannot be turned into a spectrogram; the message names the clip."""


class ClipSettings:
    """What turning clips into grids needs from a fitted :class:`~adapters.AudioAdapter`
    (plain data, cheap to send to a worker): its sample rate, feature, STFT and mel
    settings, trimming and placement, ``frames`` time steps a grid."""

    def __init__(self, adapter, frames):
        self.sr = adapter.sr_
        self.feature = adapter.feature
        self.n_mels = adapter.n_mels
        self.n_mfcc = adapter.n_mfcc
        self.n_fft = adapter.n_fft_
        self.hop = adapter.hop_length_
        self.win = adapter.win_length
        self.fmin = adapter.fmin
        self.fmax = adapter.fmax
        self.trim = adapter.trim
        self.top_db = adapter.top_db
        self.align = adapter.align
        self.ratio = adapter.length_ratio
        self.frames = frames
        self.on_error = adapter.on_error

    def key(self):
        """The settings as a hashable tuple (a cache key); :meth:`from_key` inverts it."""
        return tuple(sorted(vars(self).items()))

    @classmethod
    def from_key(cls, key):
        settings = cls.__new__(cls)
        settings.__dict__.update(dict(key))
        return settings


def item_name(item, i):
    """How a message names clip ``i``: its path, or "waveform i"."""
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    return f"waveform {i}"


def check_audio_file(name):
    """Name what a path holds when it is plainly not sound, before a decoder (which may
    print to the terminal) reads it."""
    if not os.path.exists(name):
        raise AudioError(f"{name}: no such file")
    if os.path.isdir(name):
        raise AudioError(f"{name}: a folder, not an audio file")
    try:
        kind, fmt = file_kind(name)
    except OSError as exc:
        raise AudioError(f"{name}: cannot read the file ({exc.strerror})") from None
    if kind == "empty":
        raise AudioError(f"{name}: cannot read audio: the file is empty (0 bytes)")
    if kind == "text":
        raise AudioError(f"{name}: cannot read audio: the file holds text, not sound")
    if kind not in ("audio", None):
        raise AudioError(f"{name}: cannot read audio: it is a {fmt} file, not sound")
    if kind is None and name.lower().endswith(".mp3"):
        raise AudioError(f"{name}: cannot read audio: not an MP3 file (no ID3 tag or MPEG "
                         "frame header)")


def read_clip(item, i, sr):
    """item -> (mono float32 waveform at ``sr``, name)."""
    import librosa
    import soundfile as sf
    name = item_name(item, i)
    if isinstance(item, (str, os.PathLike)):
        check_audio_file(name)
        try:
            data, native = sf.read(name, dtype="float32", always_2d=True)
            y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        except Exception as sf_exc:   # not a format libsndfile reads: let librosa try
            if not os.path.exists(name):
                raise AudioError(f"{name}: no such file") from None
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    y, native = librosa.load(name, sr=None, mono=True)
            except Exception as exc:
                raise AudioError(f"{name}: cannot read audio ({sf_exc}; librosa: {exc})") from None
            y = np.asarray(y, dtype=np.float32)
    else:
        if isinstance(item, tuple) and len(item) == 2:
            y, native = item
        else:
            y, native = item, sr
        y = np.asarray(y)
        if y.dtype.kind not in "fiu":
            raise AudioError(f"{name}: samples must be numbers; got dtype {y.dtype}")
        if y.dtype.kind in "iu":   # PCM integers -> [-1, 1]
            y = y / float(np.iinfo(y.dtype).max)
        if y.ndim == 2:           # (channels, samples), librosa's convention
            y = y.mean(axis=0)
        elif y.ndim != 1:
            raise AudioError(f"{name}: a waveform must be 1-D (or (channels, samples)); got shape {y.shape}")
        y = y.astype(np.float32)
        if not (isinstance(native, (int, float, np.integer, np.floating)) and native > 0):
            raise AudioError(f"{name}: the sample rate must be a positive number; got {native!r}")
    if y.size == 0:
        raise AudioError(f"{name}: the clip is empty (0 samples)")
    if not np.isfinite(y).all():
        bad = int(np.nonzero(~np.isfinite(y))[0][0])
        raise AudioError(f"{name}: the clip has NaN or infinite samples (first at sample {bad})")
    if native != sr:
        import librosa
        y = librosa.resample(y, orig_sr=native, target_sr=sr).astype(np.float32)
    return y, name


def place_frames(row, spec, frames, col, s):
    """Write ``spec[:, :frames]`` into ``row`` (height, s.frames) at column ``col``; the
    rest is the clip's own floor (its silence)."""
    spec = spec[:, :frames]
    row[:, col:col + frames] = spec
    if frames < s.frames:
        floor = spec.min(axis=1, keepdims=True) if s.feature == "mfcc" else spec.min()
        row[:, :col] = floor
        row[:, col + frames:] = floor


def spectrogram(y, s, mel_basis):
    """Waveform -> (height, frames) float32 feature grid."""
    import librosa
    if len(y) < s.n_fft:      # zeros past the end: the same frames, and a full window
        y = np.pad(y, (0, s.n_fft - len(y)))
    D = librosa.stft(y, n_fft=s.n_fft, hop_length=s.hop, win_length=s.win, center=True,
                     pad_mode="constant")
    if s.feature == "stft":
        return librosa.amplitude_to_db(np.abs(D)).astype(np.float32)
    power = D.real ** 2 + D.imag ** 2
    logmel = librosa.power_to_db(mel_basis @ power)
    if s.feature == "mfcc":
        return librosa.feature.mfcc(S=logmel, n_mfcc=s.n_mfcc).astype(np.float32)
    return logmel.astype(np.float32)


def grid_height(s):
    """Rows of a grid: mel bands, MFCCs or STFT bins (``s``: the settings)."""
    return {"logmel": s.n_mels, "mfcc": s.n_mfcc, "stft": 1 + s.n_fft // 2}[s.feature]


def mel_basis_for(s):
    import librosa
    if s.feature == "stft":
        return None
    return librosa.filters.mel(sr=s.sr, n_fft=s.n_fft, n_mels=s.n_mels, fmin=s.fmin, fmax=s.fmax)
