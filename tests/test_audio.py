"""AudioAdapter on real audio written by the tests (tones, chirps, noise) and FSDD."""
import os
import pickle
import warnings
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from sklearn.base import clone

from adapters import AudioAdapter, AudioError

SR = 8000
FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd" / "recordings"
KW = dict(sr=SR, n_fft=512, hop_length=128, n_mels=40)


def tone(freq, seconds=0.5, sr=SR, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    files = {}
    files["tone.wav"] = tone(1000)
    files["chirp.flac"] = librosa.chirp(fmin=200, fmax=3500, sr=SR, duration=0.8).astype(np.float32) * 0.5
    files["noise.ogg"] = (rng.standard_normal(SR // 2) * 0.1).astype(np.float32)
    paths = {}
    for name, y in files.items():
        paths[name] = str(d / name)
        sf.write(paths[name], y, SR)
    stereo = np.stack([tone(500), tone(500)], axis=1)
    paths["stereo.wav"] = str(d / "stereo.wav")
    sf.write(paths["stereo.wav"], stereo, SR)
    paths["hi_rate.wav"] = str(d / "hi_rate.wav")
    sf.write(paths["hi_rate.wav"], tone(1000, sr=16000), 16000)
    quiet = np.concatenate([np.zeros(2000, np.float32), tone(700, 0.3), np.zeros(2000, np.float32)])
    paths["padded.wav"] = str(d / "padded.wav")
    sf.write(paths["padded.wav"], quiet, SR)
    paths["silent.wav"] = str(d / "silent.wav")
    sf.write(paths["silent.wav"], np.zeros(4000, np.float32), SR)
    paths["empty.wav"] = str(d / "empty.wav")
    sf.write(paths["empty.wav"], np.zeros(0, np.float32), SR)
    paths["corrupt.wav"] = str(d / "corrupt.wav")
    Path(paths["corrupt.wav"]).write_bytes(b"RIFF not really a wave file" * 10)
    paths["dir"] = str(d)
    return paths


def test_shapes_dtype_and_axes(clips):
    files = [clips["tone.wav"], clips["chirp.flac"], clips["noise.ogg"]]
    a = AudioAdapter(frames=32, normalize=None, **KW)
    g = a.fit_transform(files)
    assert g.shape == (3, 1, 40, 32) and g.dtype == np.float32
    assert a.grid_shape_ == (1, 40, 32)
    # height is frequency: a 1 kHz tone peaks in the mel band around 1 kHz
    mel_f = librosa.mel_frequencies(n_mels=42, fmax=SR / 2)[1:-1]
    assert abs(mel_f[g[0, 0].mean(axis=1).argmax()] - 1000) < 150
    # width is time: a rising chirp's loudest band rises from left to right
    peak = g[1, 0, :, 2:-2].argmax(axis=0)
    assert np.corrcoef(np.arange(len(peak)), peak)[0, 1] > 0.9


def test_logmel_matches_librosa(clips):
    y, _ = librosa.load(clips["chirp.flac"], sr=SR)
    ref = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR, n_fft=512, hop_length=128,
                                                             n_mels=40))
    a = AudioAdapter(normalize=None, align="start", **KW)
    g = a.fit_transform([clips["chirp.flac"]])
    assert a.n_frames_ == ref.shape[1] == 1 + len(y) // 128
    np.testing.assert_allclose(g[0, 0], ref, atol=1e-3)


def test_features_mfcc_and_stft(clips):
    files = [clips["tone.wav"], clips["noise.ogg"]]
    assert AudioAdapter(feature="mfcc", n_mfcc=13, frames=20, **KW).fit_transform(files).shape == (2, 1, 13, 20)
    assert AudioAdapter(feature="stft", frames=20, **KW).fit_transform(files).shape == (2, 1, 257, 20)
    # the values: librosa's own MFCC and STFT magnitude in dB of the same clip
    y, _ = librosa.load(clips["chirp.flac"], sr=SR)
    mfcc = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13, n_fft=512, hop_length=128, n_mels=40)
    stft = librosa.amplitude_to_db(np.abs(librosa.stft(y, n_fft=512, hop_length=128)))
    for feature, ref, extra in (("mfcc", mfcc, {"n_mfcc": 13}), ("stft", stft, {})):
        a = AudioAdapter(feature=feature, normalize=None, align="start", **KW, **extra)
        g = a.fit_transform([clips["chirp.flac"]])
        assert a.n_frames_ == ref.shape[1]
        np.testing.assert_allclose(g[0, 0], ref, atol=1e-3, err_msg=feature)


def test_mono_mix_resampling_and_waveform_inputs(clips):
    a = AudioAdapter(frames=30, normalize=None, **KW).fit([clips["tone.wav"]])
    from_16k = a.transform([clips["hi_rate.wav"]])
    native = a.transform([clips["tone.wav"]])
    assert np.corrcoef(from_16k.ravel(), native.ravel())[0, 1] > 0.98
    stereo = a.transform([clips["stereo.wav"]])
    mono = a.transform([tone(500)])                       # a bare waveform is at sr
    np.testing.assert_allclose(stereo, mono, atol=0.05)   # the file is 16-bit PCM
    as_tuple = a.transform([(tone(1000, sr=16000), 16000)])
    np.testing.assert_allclose(as_tuple, from_16k, atol=0.05)
    batch = a.transform(np.stack([tone(500), tone(1000)]))   # (n, samples) array
    assert batch.shape == (2, 1, 40, 30)
    pcm = a.transform([(tone(500) * 32767).astype(np.int16)])
    np.testing.assert_allclose(pcm, mono, atol=0.05)


@pytest.mark.parametrize("align", ["start", "center", "end"])
def test_padding_position(align):
    a = AudioAdapter(frames=60, normalize=None, align=align, **KW).fit([tone(800)])
    energy = a.transform([tone(800, seconds=0.25)])[0, 0].max(axis=0)
    loud = np.nonzero(energy > energy.max() - 20)[0]
    mid = loud.mean()
    assert {"start": mid < 20, "center": 20 < mid < 40, "end": mid > 40}[align]


def test_frames_learned_and_trim(clips):
    a = AudioAdapter(normalize=None, **KW).fit([clips["tone.wav"], clips["chirp.flac"]])
    assert a.n_frames_ == 1 + int(0.8 * SR) // 128
    untrimmed = AudioAdapter(normalize=None, align="start", trim=False, **KW).fit([clips["padded.wav"]])
    trimmed = AudioAdapter(normalize=None, align="start", trim=True, **KW).fit([clips["padded.wav"]])
    assert trimmed.n_frames_ < untrimmed.n_frames_
    g = trimmed.transform([clips["padded.wav"]])[0, 0]
    assert g[:, 2:-2].max(axis=0).min() > g.max() - 40       # the tone fills the grid


def test_normalisation(clips):
    files = [clips["tone.wav"], clips["chirp.flac"], clips["noise.ogg"]]
    g = AudioAdapter(frames=32, **KW).fit_transform(files)
    np.testing.assert_allclose(g.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(g.std(axis=(1, 2, 3)), 1, atol=1e-3)
    a = AudioAdapter(frames=32, normalize="dataset", **KW)
    d = a.fit_transform(files)
    assert a.mean_.shape == (40,) and a.scale_.shape == (40,)
    np.testing.assert_allclose(d.mean(axis=(0, 1, 3)), 0, atol=1e-3)
    np.testing.assert_array_equal(a.transform(files), d)


def test_deterministic_clone_pickle_parallel_and_cache(clips, tmp_path):
    files = [clips["tone.wav"], clips["chirp.flac"], clips["noise.ogg"], clips["stereo.wav"]]
    a = AudioAdapter(frames=25, **KW).fit(files)
    g = a.transform(files)
    np.testing.assert_array_equal(g, a.transform(files))
    np.testing.assert_array_equal(g, pickle.loads(pickle.dumps(a)).transform(files))
    np.testing.assert_array_equal(g, clone(a).fit_transform(files))
    np.testing.assert_array_equal(g, clone(a).set_params(n_jobs=2).fit_transform(files))
    cached = clone(a).set_params(memory=str(tmp_path / "cache"))
    np.testing.assert_array_equal(g, cached.fit_transform(files))
    assert any((tmp_path / "cache").rglob("output.pkl"))
    np.testing.assert_array_equal(g, cached.transform(files))     # from the cache


def test_cache_sees_a_changed_file(tmp_path):
    path = tmp_path / "c.wav"
    sf.write(path, tone(500), SR)
    a = AudioAdapter(frames=20, memory=str(tmp_path / "cache"), **KW).fit([str(path)])
    first = a.transform([str(path)])
    sf.write(path, tone(1500), SR)
    os.utime(path, ns=(10**18, 10**18))
    assert not np.array_equal(first, a.transform([str(path)]))


@pytest.mark.parametrize("item,message", [
    ("missing.wav", "missing.wav: no such file"),
    ("corrupt.wav", "corrupt.wav: cannot read audio"),
    ("silent.wav", "silent.wav: the clip is silent"),
    ("empty.wav", "empty.wav: the clip is empty"),
])
def test_bad_files_are_named(clips, item, message):
    path = os.path.join(clips["dir"], item)
    a = AudioAdapter(frames=20, **KW).fit([clips["tone.wav"]])
    with pytest.raises(AudioError, match=message):
        a.transform([clips["tone.wav"], path])
    with pytest.raises(AudioError, match=message):
        AudioAdapter(**KW).fit_transform([clips["tone.wav"], path])


def test_bad_waveforms_and_lengths(clips):
    a = AudioAdapter(frames=20, **KW).fit([clips["tone.wav"]])
    bad = tone(500)
    bad[100] = np.nan
    with pytest.raises(AudioError, match="waveform 1: .*NaN.*sample 100"):
        a.transform([tone(500), bad])
    with pytest.raises(AudioError, match="waveform 0: the clip spans .* far from the target of 20"):
        a.transform([tone(500, seconds=30)])
    with pytest.raises(AudioError, match="far from the target"):
        AudioAdapter(frames=400, **KW).fit_transform([tone(500, seconds=0.05)])
    with pytest.raises(ValueError, match="not a single path"):
        a.transform(clips["tone.wav"])
    with pytest.raises(ValueError, match="feature must be"):
        AudioAdapter(feature="cqt").fit([tone(500)])


def test_on_error_zeros_warns_with_each_name(clips):
    files = [clips["tone.wav"], clips["silent.wav"], clips["corrupt.wav"]]
    a = AudioAdapter(frames=20, on_error="zeros", **KW)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = a.fit_transform(files)
    text = " ".join(str(w.message) for w in caught)
    assert "silent.wav" in text and "corrupt.wav" in text
    assert len(a.failed_) == 2
    assert (g[1:] == 0).all() and np.abs(g[0]).sum() > 0


@pytest.mark.parametrize("align", ["start", "center", "end"])
@pytest.mark.parametrize("feature, normalize", [("logmel", "clip"), ("mfcc", "dataset"), ("stft", None)])
def test_one_pass_fit_transform_equals_fit_then_transform(align, feature, normalize):
    # waveforms of different lengths; the longest two are not whole hops long, so the
    # two-pass path crops them (by less than a hop) and the one-pass path must too
    rng = np.random.default_rng(0)
    waves = [tone(f, s) + 0.01 * rng.standard_normal(int(s * SR)).astype(np.float32)
             for f, s in ((400, 0.31), (900, 0.5037), (1500, 0.5041), (2500, 0.2))]
    a = AudioAdapter(frames=None, align=align, feature=feature, n_mfcc=13,
                     normalize=normalize, **KW)
    one = a.fit_transform(waves)
    two = clone(a).fit(waves).transform(waves)
    np.testing.assert_array_equal(one, two)
    assert a.n_frames_ == 1 + int(0.5041 * SR) // 128


def test_one_pass_reads_each_clip_once(clips, monkeypatch):
    import adapters.audio as audio
    calls = []
    real = audio.read_clip
    monkeypatch.setattr(audio, "read_clip", lambda item, i, sr: calls.append(i) or real(item, i, sr))
    files = [clips["tone.wav"], clips["padded.wav"], clips["chirp.flac"]]
    a = AudioAdapter(trim=True, **KW)
    g = a.fit_transform(files)
    # chirp.flac is the longest after trimming: read again only if it must be cropped
    # (the learned frames cover 95% of the clips, so the longest may be)
    n = len(librosa.effects.trim(sf.read(clips["chirp.flac"], dtype="float32")[0], top_db=60,
                                 frame_length=512, hop_length=128)[0])
    assert sorted(calls) == sorted([0, 1, 2] + ([2] if n > (a.n_frames_ - 1) * 128 else []))
    calls.clear()
    np.testing.assert_array_equal(g, AudioAdapter(trim=True, **KW).fit(files).transform(files))
    assert len(calls) == 6          # fit (lengths) + transform: every clip twice


def test_one_pass_bad_clips_as_fit_then_transform(clips):
    files = [clips["tone.wav"], clips["corrupt.wav"], clips["chirp.flac"]]
    with pytest.raises(AudioError, match="corrupt.wav"):
        AudioAdapter(trim=True, **KW).fit_transform(files)
    a = AudioAdapter(trim=True, on_error="zeros", **KW)
    with pytest.warns(UserWarning, match="corrupt.wav"):
        g = a.fit_transform(files)
    assert len(a.failed_) == 1 and "corrupt.wav" in a.failed_[0]
    assert np.all(g[1] == 0) and np.any(g[0] != 0)
    # a clip far shorter than the longest: named, as in the two-pass path
    short = [tone(500, 2.0), tone(500, 0.02)]
    with pytest.raises(AudioError, match="waveform 1: .*far from the target"):
        AudioAdapter(length_ratio=10, **KW).fit_transform(short)
    with pytest.raises(AudioError, match="waveform 1: .*far from the target"):
        AudioAdapter(length_ratio=10, **KW).fit(short).transform(short)


@pytest.mark.skipif(not FSDD.is_dir(), reason=f"FSDD not found at {FSDD} (see shared/data/README)")
def test_fsdd_clips():
    files = sorted(str(p) for p in FSDD.glob("*.wav"))[:40]
    a = AudioAdapter(trim=True, frames=48, **KW)
    g = a.fit_transform(files)
    assert g.shape == (40, 1, 40, 48) and np.isfinite(g).all()
