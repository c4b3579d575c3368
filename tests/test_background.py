"""Background recordings mixed into training grids (issue 41): AudioAdapter(background=...)
reads them in fit, AddNoise(background=...) mixes windows of them in the power domain,
``gridnet fit --background DIR`` wires the two; bad files are named in one line, and a
model file keeps neither the folder nor the spectrograms."""
import json

import numpy as np
import pytest
import soundfile as sf

import gridnet
from adapters import AudioAdapter, AudioError, from_state
from gridnet.augment import AddNoise, audio_augment
from gridnet.cli import main


def grids(n=6, h=8, w=5, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, 1, h, w)).astype(np.float32)
    return (x - x.mean(axis=(1, 2, 3), keepdims=True)) / x.std(axis=(1, 2, 3), keepdims=True)


def mixed(x, noise, s, snr):
    """One grid (1, h, w) with ``noise`` (h, w) powers mixed in at ``snr``, by hand."""
    power = 10.0 ** (x.astype(np.float64) * s / 10)
    noise = noise * power.mean() / noise.mean() / 10 ** (snr / 10)
    out = 10 * np.log10(power + noise) / s
    return (out - out.mean()) / out.std() * x.std() + x.mean()


def test_background_windows_are_mixed_in_the_power_domain_by_hand():
    x = grids(n=40)
    h, w = x.shape[2:]
    level = np.zeros((h, w), np.float32)
    level[2] = 30.0                                 # a hum in row 2, 30 dB above the rest
    recording = np.concatenate([level] * 3, axis=1)  # three windows, all alike
    s, snr = 15.0, 0.0
    out = AddNoise(snr=(snr, snr), p=1.0, db_scale=(s, s), tilt=0.0, jitter=0.0,
                   background=[recording])(x.copy(), np.random.default_rng(0))
    took = []
    for i in range(len(x)):
        hum = mixed(x[i], 10.0 ** (level / 10), s, snr)
        flat = mixed(x[i], np.ones((h, w)), s, snr)
        match = [np.allclose(out[i], e, rtol=1e-4, atol=1e-4) for e in (hum, flat)]
        assert sum(match) == 1
        took.append(match[0])
    assert 0.2 < np.mean(took) < 0.8                # about one in two from the recording
    again = AddNoise(snr=(snr, snr), p=1.0, db_scale=(s, s), tilt=0.0, jitter=0.0,
                     background=[recording])(x.copy(), np.random.default_rng(0))
    assert np.array_equal(out, again)               # seeded


def test_background_windows_are_cut_at_random_places_of_each_recording():
    x = grids(n=400, h=4, w=6)
    columns = np.random.default_rng(2).uniform(0.0, 40.0, 40).astype(np.float32)
    long = np.tile(columns, (4, 1))                 # each window's columns tell where it starts
    short = np.tile(np.array([0, 40, 0, 40, 0, 40], np.float32), (4, 1))   # one window only
    out = AddNoise(snr=(-80.0, -80.0), p=1.0, db_scale=(15.0, 15.0), tilt=0.0, jitter=0.0,
                   background=[long, short])(
        x.copy(), np.random.default_rng(1))
    # at -80 dB the noise is all that is left: each grid's columns are its window's (the
    # synthetic noise, flat here, matches none)
    profile = out[:, 0].mean(axis=1)
    windows = [columns[k:k + 6] for k in range(35)] + [short[0]]
    found = []
    for row in profile:
        r = [np.corrcoef(row, wnd)[0, 1] if row.std() > 1e-3 else 0.0 for wnd in windows]
        found.append(int(np.argmax(r)) if max(r) > 0.999 else None)
    taken = [k for k in found if k is not None]
    assert 0.35 < len(taken) / len(x) < 0.65        # one in two from the recordings
    assert len(set(taken) - {35}) > 25              # many places in the long one
    assert 0 < taken.count(35) < 0.1 * len(taken)   # the short one by its one window in 36


def test_background_settings_are_checked():
    with pytest.raises(ValueError, match="non-empty list of finite"):
        AddNoise(background=[])
    with pytest.raises(ValueError, match="non-empty list of finite"):
        AddNoise(background=[np.array([np.nan, 1.0])])
    with pytest.raises(ValueError, match="8 rows high and at least 5 time steps"):
        AddNoise(p=1.0, background=[np.zeros((6, 9))])(grids(), np.random.default_rng(0))
    bg = [np.zeros((8, 9), np.float32)]
    assert audio_augment(bg) == audio_augment([b.copy() for b in bg]) != audio_augment()
    assert "<1 recordings>" in repr(AddNoise(background=bg))
    with pytest.raises(ValueError, match="MFCCs"):
        AudioAdapter(feature="mfcc", background="x").fit([np.zeros(800)])


def clip_folder(root, n=6, seconds=0.4):
    rng = np.random.default_rng(0)
    for label, freq in (("low", 300), ("high", 2000)):
        (root / label).mkdir(parents=True)
        for i in range(n):
            t = np.arange(int(8000 * seconds)) / 8000
            y = 0.5 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(len(t))
            sf.write(root / label / f"{i}.wav", y.astype(np.float32), 8000)
    return root


def noise_folder(root, bad=()):
    rng = np.random.default_rng(1)
    root.mkdir()
    sf.write(root / "hum.wav", (0.2 * np.sin(np.arange(16000) * 0.1)).astype(np.float32), 8000)
    sf.write(root / "hiss.flac", (0.05 * rng.standard_normal(32000)).astype(np.float32), 16000)
    if "short" in bad:
        sf.write(root / "short.wav", (0.05 * rng.standard_normal(400)).astype(np.float32), 8000)
    if "rate" in bad:
        sf.write(root / "low.wav", (0.05 * rng.standard_normal(8000)).astype(np.float32), 4000)
    if "text" in bad:
        (root / "notes.wav").write_text("not a sound\n")
    if "silent" in bad:
        sf.write(root / "quiet.wav", np.zeros(8000, np.float32), 8000)
    return root


def test_the_adapter_reads_the_background_in_fit_and_the_model_keeps_none(tmp_path):
    clips = sorted(str(p) for p in clip_folder(tmp_path / "clips").rglob("*.wav"))
    adapter = AudioAdapter(n_mels=16, background=noise_folder(tmp_path / "noise"))
    X = adapter.fit_transform(clips)
    assert [b.shape[0] for b in adapter.background_] == [16, 16]     # hiss.flac, hum.wav
    assert all(b.shape[1] >= adapter.n_frames_ and b.dtype == np.float32 for b in adapter.background_)
    assert np.array_equal(X, AudioAdapter(n_mels=16).fit_transform(clips))   # grids unchanged
    state = adapter.to_state()
    assert state["params"]["background"] is None and "background_" not in state["fitted"]
    assert "noise" not in json.dumps(state)
    assert np.array_equal(from_state(state).transform(clips), X)
    assert AudioAdapter(n_mels=16).fit(clips).background_ is None


@pytest.mark.parametrize("bad, named", [
    ("short", "short.wav: too short (0.05 s; a grid spans"),
    ("rate", "low.wav: recorded at 4000 Hz, below the clips' 8000 Hz"),
    ("text", "notes.wav: cannot read audio: the file holds text"),
    ("silent", "quiet.wav: silent"),
])
def test_a_bad_background_file_is_named_in_one_line(tmp_path, bad, named):
    clips = sorted(str(p) for p in clip_folder(tmp_path / "clips").rglob("*.wav"))
    with pytest.raises(AudioError) as info:
        AudioAdapter(background=noise_folder(tmp_path / "noise", bad=(bad,))).fit(clips)
    message = str(info.value)
    assert named in message and "\n" not in message
    assert message.startswith("1 background recording cannot be used")


def test_all_bad_background_files_are_named_together(tmp_path):
    clips = sorted(str(p) for p in clip_folder(tmp_path / "clips").rglob("*.wav"))
    with pytest.raises(AudioError, match="^4 background recordings cannot be used: .*low.wav.*"
                       "notes.wav.*quiet.wav.*short.wav"):
        AudioAdapter(background=noise_folder(tmp_path / "noise", bad=("short", "rate", "text", "silent"))).fit(clips)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AudioError, match="no audio file in the folder"):
        AudioAdapter(background=tmp_path / "empty").fit(clips)
    with pytest.raises(AudioError, match="no such folder"):
        AudioAdapter(background=tmp_path / "nowhere").fit(clips)
    for wrong in (3, [np.zeros(8000)]):
        with pytest.raises(AudioError, match="background must be a folder or a list of audio files"):
            AudioAdapter(background=wrong).fit(clips)


def test_cli_fit_background(tmp_path, capsys):
    clips = clip_folder(tmp_path / "clips")
    noise = noise_folder(tmp_path / "noise")
    args = ["fit", str(clips), "--modality", "audio", "--epochs", "2", "--quiet"]
    assert main(args + ["-o", str(tmp_path / "plain.gridnet")]) == 0
    assert main(args + ["-o", str(tmp_path / "noisy.gridnet"), "--background", str(noise)]) == 0
    capsys.readouterr()
    assert str(noise) not in (tmp_path / "noisy.gridnet").read_bytes().decode("latin-1")
    files = [str(p) for p in sorted(clips.rglob("*.wav"))]
    plain, noisy = (gridnet.load(tmp_path / f"{k}.gridnet") for k in ("plain", "noisy"))
    assert noisy[0].background is None and not hasattr(noisy[0], "background_")
    assert not np.allclose(plain.predict_proba(files), noisy.predict_proba(files))  # it trained on them
    bad = noise_folder(tmp_path / "bad", bad=("short",))
    assert main(args + ["-o", str(tmp_path / "x.gridnet"), "--background", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "short.wav: too short" in err and len(err.strip().splitlines()) == 1
    assert main(["fit", str(tmp_path / "t.csv"), "--modality", "text", "--background", str(noise)]) == 2
    assert "--background (audio)" in capsys.readouterr().err
