"""A long recording -> windows of a fitted :class:`~adapters.AudioAdapter`'s width,
streamed: the file is read once in blocks, its spectrogram computed once frame by
frame, and the windows cut from it, each treated as a training clip's grid is (dB
against its own peak, then the adapter's normalisation). Memory stays bounded by the
block and batch sizes, whatever the recording's length."""
from __future__ import annotations

import os

import numpy as np

from .signal import AudioError, check_audio_file, grid_height, mel_basis_for, place_frames, read_clip

__all__ = ["iter_windows", "window_seconds"]

#: samples read from the file at a time
BLOCK_SAMPLES = 1 << 16


def window_seconds(adapter):
    """The span one window covers, in seconds: ``(n_frames_ - 1) * hop_length_ / sr_``."""
    return (adapter.n_frames_ - 1) * adapter.hop_length_ / adapter.sr_


def _blocks(recording, sr):
    """The recording's samples at ``sr``, mono float32, block by block; a file is
    streamed (and resampled as it streams), a waveform is taken whole."""
    if not isinstance(recording, (str, os.PathLike)):
        y, _ = read_clip(recording, 0, sr)
        yield y
        return
    import soundfile as sf
    name = os.fspath(recording)
    check_audio_file(name)
    try:
        f = sf.SoundFile(name)
    except Exception:                 # a format only librosa reads: read it whole
        y, _ = read_clip(name, 0, sr)
        yield y
        return
    with f:
        native = f.samplerate
        stream = None
        if native != sr:
            import soxr               # librosa's resampler, streamed
            stream = soxr.ResampleStream(native, sr, 1, dtype="float32", quality="HQ")
        while True:
            block = f.read(BLOCK_SAMPLES, dtype="float32", always_2d=True)
            last = len(block) < BLOCK_SAMPLES
            y = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
            if not np.isfinite(y).all():
                raise AudioError(f"{name}: the recording has NaN or infinite samples")
            if stream is not None:
                y = stream.resample_chunk(np.ascontiguousarray(y), last=last)
            if len(y):
                yield np.asarray(y, dtype=np.float32)
            if last:
                return


def _frames(blocks, s, mel_basis):
    """Spectrogram frames ``(rows, m)`` block by block, as librosa's ``center=True``
    framing gives them for the whole recording (``n_fft // 2`` zeros before and after,
    ``1 + n // hop`` frames for ``n`` samples; a recording shorter than the window is
    padded to it, as a clip is): mel power for "logmel"/"mfcc", magnitude for "stft"."""
    import librosa
    half = s.n_fft // 2

    def spectra(samples):
        D = librosa.stft(samples, n_fft=s.n_fft, hop_length=s.hop, win_length=s.win,
                         center=False)
        if s.feature == "stft":
            return np.abs(D).astype(np.float32)
        return (mel_basis @ (D.real ** 2 + D.imag ** 2)).astype(np.float32)

    def ready(buf):
        m = (len(buf) - s.n_fft) // s.hop + 1 if len(buf) >= s.n_fft else 0
        return m

    buf = np.zeros(half, dtype=np.float32)
    total, made = 0, 0
    for y in blocks:
        total += len(y)
        buf = np.concatenate([buf, y])
        m = ready(buf)
        if m > 0:
            yield spectra(buf[:(m - 1) * s.hop + s.n_fft])
            buf = buf[m * s.hop:]
            made += m
    if total == 0:
        raise AudioError("the recording is empty (0 samples)")
    want = 1 + total // s.hop
    pad = half + max(s.n_fft - total, 0)
    buf = np.concatenate([buf, np.zeros(pad, dtype=np.float32)])
    m = min(ready(buf), want - made)
    if m > 0:
        yield spectra(buf[:(m - 1) * s.hop + s.n_fft])


def _features(power, s):
    """One window's frames -> its grid rows, as for a training clip."""
    import librosa
    if s.feature == "stft":
        return librosa.amplitude_to_db(power).astype(np.float32)
    logmel = librosa.power_to_db(power)
    if s.feature == "mfcc":
        return librosa.feature.mfcc(S=logmel, n_mfcc=s.n_mfcc).astype(np.float32)
    return logmel.astype(np.float32)


def iter_windows(recording, s, hop_frames, batch=256):
    """Yield ``(grids (m, height, frames) before normalisation, first frames (m,))``:
    windows of ``s.frames`` frames starting every ``hop_frames`` frames, and a last one
    ending at the recording's last frame (so that the end is covered). A recording
    shorter than one window gives one grid, padded as a short clip is (its first
    frame is then negative: where the grid starts before the recording)."""
    F = s.frames
    mel_basis = mel_basis_for(s)
    pending = None            # frames kept, the first being frame ``offset``
    offset = produced = next_start = 0
    grids, starts = [], []
    for spec in _frames(_blocks(recording, s.sr), s, mel_basis):
        pending = spec if pending is None else np.concatenate([pending, spec], axis=1)
        produced += spec.shape[1]
        while next_start + F <= produced:
            a = next_start - offset
            grids.append(_features(pending[:, a:a + F], s))
            starts.append(next_start)
            next_start += hop_frames
            if len(grids) >= batch:
                yield np.stack(grids), np.array(starts)
                grids, starts = [], []
        keep_from = min(next_start, produced - F)   # the last window may need these
        if keep_from > offset:
            pending = pending[:, keep_from - offset:]
            offset = keep_from
    if produced < F:                                 # shorter than one window
        row = np.zeros((grid_height(s), F), np.float32)
        col = {"start": 0, "center": (F - produced) // 2, "end": F - produced}[s.align]
        place_frames(row, _features(pending, s), produced, col, s)
        grids.append(row)
        starts.append(-col)
    elif next_start - hop_frames + F < produced:     # the end is not covered yet
        a = produced - F - offset
        grids.append(_features(pending[:, a:a + F], s))
        starts.append(produced - F)
    if grids:
        yield np.stack(grids), np.array(starts)
