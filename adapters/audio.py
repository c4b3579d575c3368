"""Audio clips -> spectrogram grids ``(n, 1, frequency, time step)``."""
from __future__ import annotations

import logging
import os
import warnings
from collections import Counter

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .background import read_background
from .signal import (AudioError, ClipSettings, grid_height, item_name, mel_basis_for,
                     place_frames, read_clip, spectrogram)
from .state import StateMixin

__all__ = ["AudioAdapter", "AudioError"]

logger = logging.getLogger(__name__)

_FEATURES = ("logmel", "mfcc", "stft")
_ALIGN = ("start", "center", "end")


#: parameters that None means "learn in fit" for (``sr_``, ``n_fft_``, ``hop_length_``)
_LEARNED = ("sr", "n_fft", "hop_length")
#: the window a learned n_fft spans, in seconds (rounded to a power of two samples)
_WINDOW_SECONDS = 0.064
#: the share of training clips that a learned number of time steps covers whole
_FRAMES_QUANTILE = 0.95


def _prepare(y, name, s):
    import librosa
    peak = float(np.abs(y).max())
    if peak < 1e-6:
        raise AudioError(f"{name}: the clip is silent (peak amplitude {peak:.2g})")
    if s.trim:
        frame = min(s.n_fft, 1 << max(int(np.log2(len(y))), 1))   # no longer than the clip
        y, _ = librosa.effects.trim(y, top_db=s.top_db, frame_length=frame,
                                    hop_length=min(s.hop, frame))
    return y


def _placement(n, name, s):
    """Where a clip of ``n`` samples goes in a grid of ``s.frames`` time steps
    (librosa's ``center=True`` gives ``1 + n // hop`` frames): ``(start, frames, col)``,
    ``start`` the first sample kept when the clip is cropped to the
    ``(s.frames - 1) * hop`` samples that give ``s.frames`` frames (else None),
    ``frames`` the time steps it fills, ``col`` the first of them."""
    need = (s.frames - 1) * s.hop
    have_frames = 1 + n // s.hop
    if s.ratio and (have_frames * s.ratio < s.frames or have_frames > s.ratio * s.frames):
        raise AudioError(
            f"{name}: the clip spans {have_frames} time steps, far from the target of "
            f"{s.frames} (more than {s.ratio:g} times shorter or longer); check the file, or "
            "set frames (the number of time steps) to fix the width")
    if n >= need:
        return {"start": 0, "center": (n - need) // 2, "end": n - need}[s.align], s.frames, 0
    gap = s.frames - have_frames
    return None, have_frames, {"start": 0, "center": gap // 2, "end": gap}[s.align]


def _fit_length(y, name, s):
    """Crop waveform ``y`` to at most the samples that give ``s.frames`` frames; return
    it with the number of frames it gives and the column where they go in the grid."""
    start, frames, col = _placement(len(y), name, s)
    if start is not None:
        y = y[start:start + (s.frames - 1) * s.hop]
    return y, frames, col


def _native_rate(item, i):
    """The sample rate a clip comes at (None when it cannot be told here: the read
    that follows names the problem)."""
    import soundfile as sf
    if isinstance(item, (str, os.PathLike)):
        try:
            return int(sf.info(os.fspath(item)).samplerate)
        except Exception:
            try:
                import librosa
                with warnings.catch_warnings():   # audioread's own deprecation notes
                    warnings.simplefilter("ignore", DeprecationWarning)
                    return int(librosa.get_samplerate(os.fspath(item)))
            except Exception:
                return None
    if isinstance(item, tuple) and len(item) == 2:
        return item[1] if isinstance(item[1], (int, float, np.integer, np.floating)) else None
    raise AudioError(f"waveform {i}: a bare waveform carries no sample rate; pass "
                     "(waveform, rate) pairs, or set sr")


def _extract_batch(items, offset, s, index=None):
    """Clips -> (grids (m, height, frames), names of the clips that failed). ``index``:
    each clip's place in X (for its name), when not ``offset`` onwards."""
    mel_basis = mel_basis_for(s)
    out = np.zeros((len(items), grid_height(s), s.frames), dtype=np.float32)
    failed = []
    for k, item in enumerate(items):
        try:
            y, name = read_clip(item, offset + k if index is None else index[k], s.sr)
            y, frames, col = _fit_length(_prepare(y, name, s), name, s)
            place_frames(out[k], spectrogram(y, s, mel_basis), frames, col, s)
        except AudioError as exc:
            if s.on_error == "raise":
                raise
            failed.append(str(exc))
    return out, failed


def _natural_batch(items, offset, s):
    """Clips -> ``(spectrogram at the clip's own length, samples, name)`` each, or
    ``(None, error message, name)`` for a clip that cannot be read."""
    mel_basis = mel_basis_for(s)
    out = []
    for k, item in enumerate(items):
        name = item_name(item, offset + k)
        try:
            y, name = read_clip(item, offset + k, s.sr)
            y = _prepare(y, name, s)
            out.append((spectrogram(y, s, mel_basis), len(y), name))
        except AudioError as exc:
            if s.on_error == "raise":
                raise
            out.append((None, str(exc), name))
    return out


def _length_batch(items, offset, s):
    """Natural length in frames of each clip (after trimming when ``s.trim``)."""
    import soundfile as sf
    lengths = []
    for k, item in enumerate(items):
        name = item_name(item, offset + k)
        try:
            if isinstance(item, (str, os.PathLike)) and not s.trim:
                try:
                    info = sf.info(name)
                    n = int(info.frames * s.sr / info.samplerate)
                except Exception:
                    n = len(read_clip(item, offset + k, s.sr)[0])
                if n == 0:
                    raise AudioError(f"{name}: the clip is empty (0 samples)")
            else:
                y, _ = read_clip(item, offset + k, s.sr)
                n = len(_prepare(y, name, s))
        except AudioError:
            if s.on_error == "raise":
                raise
            n = -1
        lengths.append(1 + n // s.hop if n >= 0 else -1)
    return lengths


def _learn_frames(lengths, names, ratio):
    """The number of time steps: enough for 95% of the training clips whole (the
    others are cropped around their middle, by ``align``), once no clip is ``ratio``
    times longer than the median clip (such a clip would make the others "far from
    the target"; it is named instead)."""
    ok = [(n, name) for n, name in zip(lengths, names) if n > 0]
    if not ok:
        raise ValueError("no clip in X could be read to learn the number of frames")
    longest, name = max(ok, key=lambda t: t[0])
    median = float(np.median([n for n, _ in ok]))
    if ratio and longest > ratio * median:
        raise AudioError(
            f"{name}: the clip spans {longest} time steps, more than {ratio:g} times the "
            f"median clip ({median:g}); check the file, or set frames (the number of time "
            "steps) to fix the width")
    return int(np.ceil(np.quantile([n for n, _ in ok], _FRAMES_QUANTILE)))


# the per-clip work lives in the functions above (they run in joblib workers)
class AudioAdapter(StateMixin, TransformerMixin, BaseEstimator):
    """Audio clips -> spectrogram grids, float32 ``(n, 1, height, frames)``.

    Axes: height is frequency (mel bands from low to high for ``"logmel"``, cepstral
    coefficients for ``"mfcc"``, linear-frequency STFT bins for ``"stft"``); width is
    time step (frame), ``hop_length / sr`` seconds apart.

    Each clip is read (soundfile for WAV/FLAC/OGG, librosa for what else it reads),
    mixed to mono, resampled to ``sr`` (librosa), optionally trimmed of leading and
    trailing silence, then padded with zeros or cropped to exactly ``frames`` time
    steps. librosa (``center=True``) gives ``1 + n // hop_length`` frames for ``n``
    samples: a longer clip is cut to ``(frames - 1) * hop_length`` samples; a shorter
    clip's spectrogram is padded with time steps of silence (its own lowest value,
    per coefficient for MFCCs). ``align`` says where: ``"start"`` keeps the
    beginning (pads/crops at the end), ``"end"`` keeps the end, ``"center"``
    pads/crops both sides equally.

    Parameters
    ----------
    sr : int or None, default None
        Target sample rate. None: the clips' own rate (``sr_``), learned in ``fit``; when
        they come at several, the most common, with a warning. A bare waveform array
        is taken to be at ``sr`` (with ``sr=None``, pass ``(waveform, rate)`` pairs).
    feature : {"logmel", "mfcc", "stft"}, default "logmel"
        log-mel power spectrogram in dB (``librosa.power_to_db``), MFCCs of it, or the
        STFT magnitude in dB.
    n_fft, hop_length : int or None, default None
        None: a window of about 64 ms at ``sr_`` rounded to a power of two (512 at 8 kHz,
        1024 at 16 or 22.05 kHz) and a quarter of it (``n_fft_``, ``hop_length_``).
        A clip shorter than the window is padded with zeros to it.
    n_mels, n_mfcc, win_length, fmin, fmax : as in librosa (``n_mels`` default 40).
    frames : int or None
        Time steps per grid; None learns it in ``fit`` (``n_frames_``): enough for 95% of
        the training clips (after trimming) whole; longer clips are cropped by ``align``.
    trim : bool, default True
        Trim silence quieter than ``top_db`` below the peak from both ends first.
    align : {"start", "center", "end"}, default "center"
    normalize : {"clip", "dataset", None}, default "clip"
        "clip": each grid to zero mean and unit variance; "dataset": each frequency row
        standardised with statistics learned in ``fit`` (``mean_``, ``scale_``).
    length_ratio : float or None, default 20
        A clip more than this many times shorter or longer than ``frames`` is an error.
    background : None, str or list of str
        A folder of background recordings (or a list of files) to mix into training
        grids: ``fit`` reads them (each at least a grid long, at the clips' rate or
        above) into ``background_``, for ``gridnet.augment.audio_augment(background=
        adapter.background_)``; a bad file is named. Training only: a model file keeps
        neither (``gridnet fit --background DIR`` does all this).
    on_error : {"raise", "zeros"}, default "raise"
        "zeros": an unreadable, empty, silent, NaN or far-off-length clip gives an
        all-zero grid and a warning naming it (``failed_`` lists them after
        ``transform``).
    n_jobs : int or None
        Clips are processed in parallel with joblib (any joblib backend, e.g. Dask's
        ``parallel_config("dask")``, runs them on a cluster).
    memory : None, str or joblib.Memory
        Cache spectrograms on disk (keyed on the files' path, size and modification
        time, and the settings).
    verbose : bool

    Attributes
    ----------
    sr_, n_fft_, hop_length_ : int, the signal settings used (given or learned)
    n_frames_ : int, the time steps of every grid
    grid_shape_ : (1, height, n_frames_)
    mean_, scale_ : (height,) arrays when ``normalize="dataset"``
    background_ : list of (height, frames_k) float32 arrays, the background recordings'
        spectrograms in dB (not normalised), or None without ``background``

    Examples
    --------
    >>> import numpy as np
    >>> from adapters import AudioAdapter
    >>> t = np.arange(8000) / 8000
    >>> clips = [np.sin(2 * np.pi * f * t) for f in (440, 880)]
    >>> AudioAdapter(sr=8000, n_mels=32, hop_length=256, n_fft=512).fit_transform(clips).shape
    (2, 1, 32, 32)
    """

    #: the background recordings serve training only: a model file keeps neither
    _FIT_ONLY_PARAMS = {"background": None}
    _FIT_ONLY_ATTRIBUTES = ("background_",)

    def __init__(self, *, sr=None, feature="logmel", n_mels=40, n_mfcc=20, n_fft=None,
                 hop_length=None, win_length=None, fmin=0.0, fmax=None, frames=None, trim=True,
                 top_db=60.0, align="center", normalize="clip", length_ratio=20.0,
                 background=None, on_error="raise", n_jobs=None, memory=None, verbose=False):
        self.sr = sr
        self.feature = feature
        self.n_mels = n_mels
        self.n_mfcc = n_mfcc
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.fmin = fmin
        self.fmax = fmax
        self.frames = frames
        self.trim = trim
        self.top_db = top_db
        self.align = align
        self.normalize = normalize
        self.length_ratio = length_ratio
        self.background = background
        self.on_error = on_error
        self.n_jobs = n_jobs
        self.memory = memory
        self.verbose = verbose

    # -- helpers -------------------------------------------------------------------------
    def _check_params(self):
        if self.feature not in _FEATURES:
            raise ValueError(f"feature must be one of {_FEATURES}; got {self.feature!r}")
        if self.align not in _ALIGN:
            raise ValueError(f"align must be one of {_ALIGN}; got {self.align!r}")
        if self.normalize not in ("clip", "dataset", None):
            raise ValueError(f"normalize must be 'clip', 'dataset' or None; got {self.normalize!r}")
        if self.background is not None and self.feature == "mfcc":
            raise ValueError("background needs feature 'logmel' or 'stft': noise adds in "
                             "power, which MFCCs do not keep")
        if self.on_error not in ("raise", "zeros"):
            raise ValueError(f"on_error must be 'raise' or 'zeros'; got {self.on_error!r}")
        for name in ("sr", "n_mels", "n_mfcc", "n_fft", "hop_length"):
            v = getattr(self, name)
            if v is None and name in _LEARNED:
                continue
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive int{' or None' if name in _LEARNED else ''}; "
                                 f"got {v!r}")
        if self.frames is not None and (not isinstance(self.frames, (int, np.integer)) or self.frames < 1):
            raise ValueError(f"frames must be a positive int or None; got {self.frames!r}")

    @staticmethod
    def _items(X):
        if isinstance(X, (str, os.PathLike)):
            raise ValueError("X must be a list of clips (file paths or waveforms), not a single "
                             f"path {os.fspath(X)!r}; wrap it in a list")
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "fiu":
            return list(X)          # (n, samples) waveforms
        items = list(X)
        if not items:
            raise ValueError("X is empty: no clips")
        return items

    def _chunks(self, items):
        from joblib import effective_n_jobs
        jobs = effective_n_jobs(self.n_jobs)
        size = max(1, min(64, -(-len(items) // (4 * jobs))))
        return [(items[a:a + size], a) for a in range(0, len(items), size)]

    def _run(self, func, items, s):
        from joblib import Memory, Parallel, delayed
        memory = self.memory
        if isinstance(memory, (str, os.PathLike)):
            memory = Memory(os.fspath(memory), verbose=0)
        if memory is not None and func is _extract_batch:
            cached = memory.cache(_cached_extract, ignore=["items"])
            calls = [delayed(cached)(chunk, _stamps(chunk), a, s.key()) for chunk, a in self._chunks(items)]
        else:
            calls = [delayed(func)(chunk, a, s) for chunk, a in self._chunks(items)]
        return Parallel(n_jobs=self.n_jobs, verbose=10 if self.verbose else 0)(calls)

    def _extract(self, X):
        items = self._items(X)
        s = ClipSettings(self, self.n_frames_)
        parts = self._run(_extract_batch, items, s)
        grids = np.concatenate([p[0] for p in parts])
        self._report([msg for p in parts for msg in p[1]])
        return grids

    def _report(self, failed):
        self.failed_ = failed
        for msg in failed:
            warnings.warn(f"AudioAdapter gave an all-zero grid for {msg}", UserWarning, stacklevel=4)

    def _extract_learning_frames(self, items):
        """Learn ``n_frames_`` and extract the grids in one pass over the clips.

        Each clip is read (and trimmed) once and turned into a spectrogram of its own
        length; once the longest is known, each is placed in its grid as
        :meth:`_extract` would place it. The few clips that :meth:`_extract` would crop
        (the longest ones, by less than a hop) are extracted again, cropped, so that
        the result is the same.
        """
        s = ClipSettings(self, 1)
        rows = [r for part in self._run(_natural_batch, items, s) for r in part]
        self.n_frames_ = _learn_frames([1 + n // s.hop if spec is not None else -1
                                        for spec, n, _ in rows],
                                       [name for _, _, name in rows], self.length_ratio)
        s = ClipSettings(self, self.n_frames_)
        grids = np.zeros((len(items), grid_height(ClipSettings(self, 1)), self.n_frames_), dtype=np.float32)
        failed, cropped = [], []
        for i, (spec, n, name) in enumerate(rows):
            if spec is None:
                failed.append(n)
                continue
            try:
                start, frames, col = _placement(n, name, s)
            except AudioError as exc:
                if s.on_error == "raise":
                    raise
                failed.append(str(exc))
                continue
            if start is not None and n > (s.frames - 1) * s.hop:
                cropped.append(i)                                # as _extract: below
            else:
                place_frames(grids[i], spec, frames, col, s)
        if cropped:
            out, bad = _extract_batch([items[i] for i in cropped], 0, s, index=cropped)
            grids[cropped] = out
            failed += bad
        self._report(failed)
        return grids

    def _learn_signal(self, items):
        """``sr_`` (the clips' own rate when they share one, else the most common, said
        in a warning), ``n_fft_`` (about 64 ms of it, a power of two) and
        ``hop_length_`` (a quarter window), for the parameters left at None."""
        if self.sr is not None:
            self.sr_ = int(self.sr)
        else:
            rates = Counter(r for r in (_native_rate(x, i) for i, x in enumerate(items)) if r)
            if not rates:
                raise ValueError("no clip in X tells its sample rate; set sr")
            self.sr_ = int(rates.most_common(1)[0][0])
            if len(rates) > 1:
                warnings.warn(f"the clips come at {len(rates)} sample rates "
                              f"({', '.join(f'{r} Hz' for r in sorted(rates))}); all are "
                              f"resampled to the most common, {self.sr_} Hz (set sr to choose)",
                              UserWarning, stacklevel=4)
        self.n_fft_ = int(self.n_fft or 2 ** int(round(np.log2(_WINDOW_SECONDS * self.sr_))))
        self.hop_length_ = int(self.hop_length or max(self.n_fft_ // 4, 1))

    @classmethod
    def from_state(cls, state):
        """Also reads states written before the signal settings were learned (their
        ``sr``, ``n_fft`` and ``hop_length`` were given)."""
        adapter = super().from_state(state)
        for name in _LEARNED:
            if not hasattr(adapter, name + "_"):
                value = getattr(adapter, name)
                if value is None:
                    raise ValueError(f"the AudioAdapter state lacks {name}_ and {name}")
                setattr(adapter, name + "_", int(value))
        return adapter

    def _normalize(self, grids):
        if self.normalize == "clip":
            mean = grids.mean(axis=(1, 2), keepdims=True)
            std = grids.std(axis=(1, 2), keepdims=True)
            grids = (grids - mean) / np.where(std > 1e-6, std, 1.0)
        elif self.normalize == "dataset":
            grids = (grids - self.mean_[:, None]) / self.scale_[:, None]
        return grids[:, None].astype(np.float32, copy=False)

    # -- the transformer -----------------------------------------------------------------
    def fit(self, X, y=None):
        """Learn ``n_frames_`` (when ``frames`` is None) and dataset statistics."""
        self._fit(X)
        return self

    def _fit(self, X, one_pass=False):
        """Learn what ``fit`` learns; with ``one_pass`` (from ``fit_transform``), return
        the grids too when learning the frames had to read every clip anyway."""
        self._check_params()
        items = self._items(X)
        self._learn_signal(items)
        grids = None
        if self.frames is None and one_pass:
            grids = self._extract_learning_frames(items)
        elif self.frames is None:
            s = ClipSettings(self, 1)
            lengths = [n for part in self._run(_length_batch, items, s) for n in part]
            self.n_frames_ = _learn_frames(lengths, [item_name(x, i) for i, x in enumerate(items)],
                                           self.length_ratio)
        else:
            self.n_frames_ = int(self.frames)
        self.grid_shape_ = (1, grid_height(ClipSettings(self, 1)), self.n_frames_)
        self.background_ = None
        if self.background is not None:
            s = ClipSettings(self, self.n_frames_)
            self.background_ = read_background(self.background, s, mel_basis_for(s))
        if self.normalize == "dataset":
            if grids is None:
                grids = self._extract(items)
            ok = np.ones(len(grids), bool)
            if self.failed_:
                ok = np.abs(grids).sum(axis=(1, 2)) > 0
            self.mean_ = grids[ok].mean(axis=(0, 2))
            std = grids[ok].std(axis=(0, 2))
            self.scale_ = np.where(std > 1e-6, std, 1.0).astype(np.float32)
        return items, grids

    def fit_transform(self, X, y=None):
        """Fit and return the grids of X, reading each clip once.

        With ``frames=None``, learning the number of frames needs every clip's length:
        from the file header when it can (files, no trimming), otherwise by reading
        (and trimming) the clip, and then that same pass gives the grids.
        """
        self._check_params()
        items = self._items(X)      # once: X may be an iterator
        one_pass = self.frames is None and self.memory is None and (
            self.trim or not all(isinstance(i, (str, os.PathLike)) for i in items))
        items, grids = self._fit(items, one_pass=one_pass)
        if grids is None:
            grids = self._extract(items)
        return self._normalize(grids)

    def transform(self, X):
        """Clips -> float32 ``(n, 1, height, n_frames_)``."""
        check_is_fitted(self, "n_frames_")
        self._check_params()
        return self._normalize(self._extract(X))

    def windows(self, recording, hop=None, batch=256):
        """Slide a window of the trained width over a recording longer than the clips.

        The recording (a file path, or a waveform at ``sr_``, or ``(waveform, rate)``)
        is read once, in blocks, and its spectrogram computed once; the windows are
        cut from it and each is made a grid as a training clip is (dB against its own
        peak, then ``normalize``), but not trimmed. Memory stays bounded by ``batch``
        and the read block, whatever the recording's length.

        Parameters
        ----------
        recording : path, waveform or (waveform, rate)
        hop : float or None
            Seconds between window starts (rounded to whole time steps); None: a
            quarter of the window. A last window ends at the recording's end.
        batch : int, windows per yielded batch

        Yields
        ------
        (grids (m, 1, height, n_frames_), start (m,), end (m,)) : the windows' grids
            and the seconds each spans (a recording shorter than one window gives one
            grid, padded as a short clip is, spanning the whole recording).

        Examples
        --------
        >>> import numpy as np
        >>> from adapters import AudioAdapter
        >>> t = np.arange(8000) / 8000
        >>> a = AudioAdapter(sr=8000, trim=False).fit([np.sin(2 * np.pi * 440 * t)])
        >>> long = np.tile(np.sin(2 * np.pi * 440 * t), 5)
        >>> grids, start, end = next(a.windows(long, hop=1.0))
        >>> grids.shape, start.tolist()     # 1 s is 62 steps of 16 ms; the last ends the recording
        ((6, 1, 40, 63), [0.0, 0.992, 1.984, 2.976, 3.968, 4.0])
        """
        from .recording import iter_windows
        check_is_fitted(self, "n_frames_")
        self._check_params()
        if hop is not None and not (isinstance(hop, (int, float, np.number)) and hop > 0):
            raise ValueError(f"hop must be a positive number of seconds or None; got {hop!r}")
        if not (isinstance(batch, (int, np.integer)) and batch >= 1):
            raise ValueError(f"batch must be a positive int; got {batch!r}")
        s = ClipSettings(self, self.n_frames_)
        step = self.hop_length_ / self.sr_
        hop_frames = max(1, int(round(hop / step)) if hop else self.n_frames_ // 4)
        for grids, first in iter_windows(recording, s, hop_frames, int(batch)):
            start = np.round(np.maximum(first, 0) * step, 6)      # seconds, to the microsecond
            end = np.round((first + self.n_frames_ - 1) * step, 6)
            yield self._normalize(grids), start, end

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "n_frames_")
        _, h, w = self.grid_shape_
        return np.array([f"f{i}_t{j}" for i in range(h) for j in range(w)], dtype=object)


def _stamps(items):
    """What identifies each clip's content for the cache: a file's path, size and mtime;
    a waveform's bytes."""
    out = []
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            name = os.fspath(item)
            try:
                st = os.stat(name)
                out.append((name, st.st_size, st.st_mtime_ns))
            except OSError:
                out.append((name, None, None))
        else:
            out.append(item)
    return out


def _cached_extract(items, stamps, offset, key):
    s = ClipSettings.from_key(key)
    return _extract_batch(items, offset, s)
