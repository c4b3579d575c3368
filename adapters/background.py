"""Background recordings -> log-mel spectrograms to mix into training grids.

:class:`~adapters.AudioAdapter` reads them in ``fit`` when given ``background`` (a
folder, or a list of files): each recording, resampled to the clips' rate, becomes one
log-mel power spectrogram in dB at the clips' settings (no trimming, no
normalisation), so that ``gridnet.augment.AddNoise(background=...)`` can cut a window
of a grid's width from it and add it in the power domain. They serve training only:
a model file keeps neither the folder nor the spectrograms.
"""
from __future__ import annotations

import os

import numpy as np

from .files import AUDIO_EXTENSIONS
from .signal import AudioError, read_clip, spectrogram

__all__ = ["background_files", "read_background"]


def background_files(source):
    """The recordings ``source`` names: a folder's audio files (by extension, sorted;
    hidden files skipped), or a list of paths as given."""
    if isinstance(source, (str, os.PathLike)):
        folder = os.fspath(source)
        if not os.path.isdir(folder):
            raise AudioError(f"background {folder}: no such folder")
        files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                       if not f.startswith(".") and f.lower().endswith(AUDIO_EXTENSIONS))
        if not files:
            raise AudioError(f"background {folder}: no audio file in the folder (looked for "
                             f"{', '.join(AUDIO_EXTENSIONS)})")
        return files
    try:
        files = [os.fspath(f) for f in source]
    except TypeError:
        raise AudioError(f"background must be a folder or a list of audio files; got "
                         f"{type(source).__name__} {source!r:.60}") from None
    if not files:
        raise AudioError("background: the list of recordings is empty")
    return files


def _native_rate(path):
    import soundfile as sf
    try:
        return int(sf.info(path).samplerate)
    except Exception:
        return None             # not a format libsndfile reads: read_clip tries librosa


def read_background(source, settings, mel_basis):
    """The spectrograms ``[(height, frames_k), ...]`` float32 of the recordings in
    ``source``, at ``settings`` (:class:`~adapters.signal.ClipSettings`: the clips' rate
    and STFT; each recording must span a grid, ``settings.frames`` time steps). Every
    file that cannot serve (unreadable, recorded at a rate below the clips', shorter
    than a grid, silent) is named in one line of one :class:`AudioError`."""
    need = (settings.frames - 1) * settings.hop
    out, bad = [], []
    for i, path in enumerate(background_files(source)):
        try:
            rate = _native_rate(path)
            if rate is not None and rate < settings.sr:
                raise AudioError(f"{path}: recorded at {rate} Hz, below the clips' "
                                 f"{settings.sr} Hz (it lacks their top frequencies)")
            y, _ = read_clip(path, i, settings.sr)
            if len(y) < need:
                raise AudioError(f"{path}: too short ({len(y) / settings.sr:.2f} s; a grid "
                                 f"spans {need / settings.sr:.2f} s)")
            if float(np.abs(y).max()) < 1e-6:
                raise AudioError(f"{path}: silent")
            out.append(spectrogram(y, settings, mel_basis))
        except AudioError as exc:
            bad.append(str(exc).splitlines()[0])
    if bad:
        raise AudioError(f"{len(bad)} background recording{'s' if len(bad) > 1 else ''} "
                         f"cannot be used: {'; '.join(bad)}")
    return out
