"""Long recordings (issue 15): windows cut from one streamed spectrogram, and a
timeline that puts each clip's label where the clip is."""
import numpy as np
import pytest
import soundfile as sf
from sklearn.pipeline import make_pipeline

import librosa

import adapters.recording as recording
from adapters import AudioAdapter
from adapters.signal import ClipSettings
from gridnet import GridNetClassifier, predict_windows

SR = 8000


def _tone_clip(rng, freq, dur):
    t = np.arange(int(SR * dur)) / SR
    env = np.minimum(1, np.minimum(t, t[-1] - t) / 0.03)      # soft edges
    f = freq * (1 + 0.03 * rng.standard_normal())
    y = rng.uniform(0.3, 0.8) * env * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
    y += 0.3 * env * np.sin(2 * np.pi * 2 * f * t)             # a harmonic
    return (y + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


FREQS = {"low": 350, "mid": 900, "high": 2200}


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    labels = list(FREQS) * 30
    clips = [(_tone_clip(rng, FREQS[k], rng.uniform(0.35, 0.6)), SR) for k in labels]
    pipe = make_pipeline(AudioAdapter(), GridNetClassifier(max_epochs=8, random_state=0,
                                                           early_stopping=False))
    return pipe.fit(clips, labels)


def test_streamed_frames_equal_librosa_on_the_whole_recording(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    y = (0.3 * rng.standard_normal(SR * 3 + 77)).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    adapter = AudioAdapter(trim=False).fit([(y[:4000], SR)])
    s = ClipSettings(adapter, adapter.n_frames_)
    monkeypatch.setattr(recording, "BLOCK_SAMPLES", 1000)        # many blocks
    blocks = list(recording._blocks(str(path), SR))
    assert len(blocks) > 20
    got = np.concatenate(list(recording._frames(iter(blocks), s, recording.mel_basis_for(s))), axis=1)
    D = librosa.stft(y, n_fft=s.n_fft, hop_length=s.hop, center=True, pad_mode="constant")
    want = recording.mel_basis_for(s) @ np.abs(D) ** 2
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6 * want.max())


def test_each_window_is_a_grid_as_a_clip_of_it_would_be():
    """Away from the edges, a window's grid is the grid of the same samples as a clip."""
    rng = np.random.default_rng(2)
    y = (0.2 * rng.standard_normal(SR * 2)).astype(np.float32)
    adapter = AudioAdapter(trim=False).fit([(y[:3000], SR)])
    grids, start, end = next(adapter.windows((y, SR), hop=0.5))
    F, hop = adapter.n_frames_, adapter.hop_length_
    k = 2                                             # a window inside the recording
    first = int(round(start[k] * SR / hop))
    a, b = first * hop, (first + F - 1) * hop
    mel = recording.mel_basis_for(ClipSettings(adapter, F))
    whole = librosa.power_to_db(
        mel @ np.abs(librosa.stft(y, n_fft=adapter.n_fft_, hop_length=hop, pad_mode="constant")) ** 2)
    win = whole[:, first:first + F]
    win = (win - win.mean()) / win.std()
    np.testing.assert_allclose(grids[k, 0], win, atol=2e-3)
    assert end[k] - start[k] == pytest.approx((b - a) / SR)


def test_short_recording_gives_one_padded_window(model):
    rng = np.random.default_rng(3)
    clip = _tone_clip(rng, 900, 0.2)
    w = predict_windows(model, (clip, SR))
    assert len(w) == 1 and w.start[0] == 0.0
    assert w.proba.shape == (1, 3)


def test_timeline_puts_each_clip_where_it_is(model, tmp_path):
    """A long file of clips the model never saw, a second of silence between them: the
    windows overlapping a clip by at least half their width have its label as their
    majority, and they sit within 0.25 s of the clip."""
    rng = np.random.default_rng(4)
    names = ["mid", "low", "high", "high", "low", "mid", "low", "high"]
    parts, places, t = [], [], 1.0
    parts.append(np.zeros(SR, np.float32))
    for k in names:
        clip = _tone_clip(rng, FREQS[k], rng.uniform(0.35, 0.6))
        parts.append(clip)
        places.append((t, t + len(clip) / SR, k))
        t += len(clip) / SR + 1.0
        parts.append(np.zeros(SR, np.float32))
    y = np.concatenate(parts) + 0.001 * rng.standard_normal(sum(map(len, parts))).astype(np.float32)
    path = tmp_path / "joined.wav"
    sf.write(path, y, SR)
    w = predict_windows(model, str(path), hop=0.05)
    width = w.end[0] - w.start[0]
    assert np.all(np.diff(w.start) > 0) and w.end[-1] <= len(y) / SR + 1e-9
    for a, b, label in places:
        overlap = np.minimum(w.end, b) - np.maximum(w.start, a)
        near = overlap >= 0.5 * min(width, b - a)
        assert near.any(), (a, b)
        values, counts = np.unique(w.labels[near], return_counts=True)
        assert values[counts.argmax()] == label, (a, b, label, w.labels[near])
        mine = near & (w.labels == label)
        centre = ((w.start[mine] + w.end[mine]) / 2).mean()
        assert abs(centre - (a + b) / 2) <= 0.25, (a, b, centre)


def test_resampled_file_streams(tmp_path, model):
    rng = np.random.default_rng(5)
    y = np.concatenate([np.zeros(SR), _tone_clip(rng, 2200, 0.5), np.zeros(SR)])
    y16 = librosa.resample(y, orig_sr=SR, target_sr=16000)
    sf.write(tmp_path / "16k.wav", y16, 16000)
    w = predict_windows(model, str(tmp_path / "16k.wav"), hop=0.1)
    middle = (w.start < 1.3) & (w.end > 1.2)
    assert (w.labels[middle] == "high").mean() > 0.5


def test_bad_hop_and_pipeline_are_named(model):
    with pytest.raises(ValueError, match="hop must be a positive"):
        predict_windows(model, (np.zeros(SR, np.float32) + 0.1, SR), hop=-1)
    with pytest.raises(TypeError, match="AudioAdapter"):
        predict_windows(make_pipeline(GridNetClassifier()), "x.wav")
    from sklearn.ensemble import RandomForestClassifier
    forest = make_pipeline(model[0], RandomForestClassifier())
    with pytest.raises(TypeError, match="RandomForestClassifier.*must be a GridNetClassifier"):
        predict_windows(forest, (np.zeros(SR, np.float32) + 0.1, SR))
