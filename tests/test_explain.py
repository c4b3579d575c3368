"""Explanation maps (issue 15): exact against finite differences, and right on data
where the answer is known, each with a louder distractor shared by every class."""
import numpy as np
import pytest

from adapters import AudioAdapter, TextAdapter
from adapters.onehot import OneHotGrid
from gridnet import GridNetClassifier
from gridnet.core import Branches, Conv2D, Dense, Dropout, Flatten, GlobalMaxPool, MaxPool2D, Network
from gridnet.explain import gradient_x_input, margin_gradient, winning_windows

from gradcheck import numeric_grad, rel_error


def _margin(net, x, codes):
    z = net.forward(x)
    return float((z * margin_gradient(z.shape[1], codes)).sum())


def test_dense_map_is_gradient_times_input():
    rng = np.random.default_rng(0)
    net = Network([Conv2D(3, 3, padding="same", activation="relu"), MaxPool2D(2),
                   Flatten(), Dense(8, activation="relu"), Dropout(0.5), Dense(4)])
    net.build((2, 6, 6), rng, dtype=np.float64)
    x = rng.standard_normal((3, 2, 6, 6))
    codes = np.array([0, 2, 3])
    got = gradient_x_input(net, x, codes)
    num = numeric_grad(lambda: _margin(net, x, codes), x)
    assert got.shape == (3, 6, 6)
    assert rel_error(got, (num * x).sum(axis=1)) < 1e-5
    assert net.layers[4].rate == 0.5          # dropout is back on afterwards


@pytest.mark.parametrize("kh, padding", [(1, "valid"), (2, "same")])
def test_onehot_hot_cell_gradient_matches_finite_differences(kh, padding):
    """The one-hot kernel's input gradient (the hot cells only) against central
    differences of the same network run on the dense grid."""
    rng = np.random.default_rng(1)
    width, positions = 7, 6
    net = Network([Conv2D(5, (kh, width), padding=padding if kh == 1 else "valid"),
                   Branches([[Conv2D(4, (k, 1), padding="same", activation="relu"),
                              GlobalMaxPool("height")] for k in (2, 3)]),
                   Flatten(), Dropout(0.5), Dense(3)])
    net.build((1, positions, width), rng, dtype=np.float64)
    idx = rng.integers(0, width, size=(4, positions))
    idx[1, 4:] = -1                            # padding rows
    grid = OneHotGrid(idx, width)
    codes = np.array([0, 1, 2, 1])
    got = gradient_x_input(net, grid, codes)
    dense = grid.toarray().astype(np.float64)
    num = numeric_grad(lambda: _margin(net, dense, codes), dense)
    expect = np.zeros_like(got)
    for i in range(4):
        for t in range(positions):
            if idx[i, t] >= 0:
                expect[i, t] = num[i, 0, t, idx[i, t]]
    assert got.shape == (4, positions)
    assert rel_error(got, expect) < 1e-5
    assert np.all(got[1, 4:] == 0)


def test_winning_windows_add_up_to_the_margin():
    rng = np.random.default_rng(2)
    width, positions = 9, 8
    net = Network([Conv2D(6, (1, width)),
                   Branches([[Conv2D(5, (k, 1), padding="same", activation="relu"),
                              GlobalMaxPool("height")] for k in (2, 3)]),
                   Flatten(), Dropout(0.5), Dense(3)])
    net.build((1, positions, width), rng)
    grid = OneHotGrid(rng.integers(0, width, size=(5, positions)), width)
    codes = np.array([0, 1, 2, 0, 1])
    windows = winning_windows(net, grid, codes, top=100)
    z = net.forward(grid)
    b = net.layers[-1].params["b"]
    # the features after max over positions, and each one's share of each margin, by hand
    feats = net.layers[1].forward(net.layers[0].forward(grid)).reshape(5, -1)
    W = net.layers[-1].params["W"]
    for i, c in enumerate(codes):
        margin = z[i, c] - np.delete(z[i], c).mean()
        bias = b[c] - np.delete(b, c).mean()
        shares = feats[i] * (W[:, c] - np.delete(W, c, axis=1).mean(axis=1))
        listed = sum(v for _, _, v in windows[i])
        assert all(v > 0 for _, _, v in windows[i])          # only positive shares are listed
        # the margin is the bias plus every share: the listed (positive) ones and the rest
        assert listed == pytest.approx(shares[shares > 0].sum(), abs=1e-5)
        assert margin == pytest.approx(bias + listed + shares[shares < 0].sum(), abs=1e-5)
        assert all(0 <= s < e <= positions for s, e, _ in windows[i])


def test_winning_windows_refuse_other_networks():
    clf = GridNetClassifier(max_epochs=1, random_state=0, early_stopping=False)
    clf.fit(np.random.default_rng(0).random((20, 1, 8, 8)), np.arange(20) % 2)
    with pytest.raises(ValueError, match="sentence CNN"):
        clf.explain_windows(np.zeros((1, 1, 8, 8)))


def test_target_is_checked():
    clf = GridNetClassifier(max_epochs=1, random_state=0, early_stopping=False)
    X = np.random.default_rng(0).random((20, 1, 8, 8))
    clf.fit(X, np.where(np.arange(20) % 2, "b", "a"))
    assert clf.explain(X[:3], target="b").shape == (3, 8, 8)
    with pytest.raises(ValueError, match=r"target names \['c'\]"):
        clf.explain(X[:3], target="c")
    with pytest.raises(ValueError, match="one per sample"):
        clf.explain(X[:3], target=["a", "b"])


# -- known answers ---------------------------------------------------------------------------
def _peak(maps):
    flat = maps.reshape(len(maps), -1).argmax(axis=1)
    return np.unravel_index(flat, maps.shape[1:])


def test_image_map_finds_the_bar_not_the_brighter_blob():
    """Class 0: a vertical bar at columns 3-4, class 1: at columns 11-12; every image
    also holds a brighter blob at a random place in the middle."""
    rng = np.random.default_rng(3)
    n, size = 240, 16
    y = np.arange(n) % 2
    X = rng.normal(0, 0.05, (n, 1, size, size)).astype(np.float32)
    for i in range(n):
        col = 3 if y[i] == 0 else 11
        X[i, 0, 4:12, col:col + 2] += 1.0
        r, c = rng.integers(5, 9), rng.integers(6, 9)
        X[i, 0, r:r + 3, c:c + 3] += 2.5        # louder, in every class
    clf = GridNetClassifier(preset="image", max_epochs=8, random_state=0, early_stopping=False)
    clf.fit(X[:200], y[:200])
    assert clf.score(X[200:], y[200:]) == 1.0
    rows, cols = _peak(clf.explain(X[200:]))
    bar = np.where(y[200:] == 0, 3, 11)
    hit = (rows >= 4) & (rows < 12) & (cols >= bar - 1) & (cols <= bar + 2)
    assert hit.mean() >= 0.9, hit.mean()
    # a map of the input's own magnitude would point at the blob instead
    r_in, c_in = _peak(X[200:, 0])
    assert ((c_in >= 6) & (c_in < 11)).all()


def test_spectrogram_map_finds_the_class_tone_not_the_louder_one():
    """Class 0: a 1 kHz tone at 0.15-0.30 s; class 1: a 2.5 kHz tone at 0.60-0.75 s;
    every clip also holds a louder 500 Hz tone at 0.35-0.55 s."""
    sr, dur = 8000, 0.9
    t = np.arange(int(sr * dur)) / sr
    rng = np.random.default_rng(4)

    def clip(label):
        y = 0.01 * rng.standard_normal(len(t))
        f, (a, b) = (1000, (0.15, 0.30)) if label == 0 else (2500, (0.60, 0.75))
        on = (t >= a) & (t < b)
        y[on] += 0.2 * np.sin(2 * np.pi * f * t[on])
        loud = (t >= 0.35) & (t < 0.55)
        y[loud] += 0.8 * np.sin(2 * np.pi * 500 * t[loud])
        return (y.astype(np.float32), sr)

    labels = np.arange(120) % 2
    clips = [clip(k) for k in labels]
    adapter = AudioAdapter(trim=False, n_mels=32)
    X = adapter.fit_transform(clips)
    clf = GridNetClassifier(max_epochs=10, random_state=0, early_stopping=False)
    clf.fit(X[:90], labels[:90])
    assert clf.score(X[90:], labels[90:]) == 1.0
    import librosa
    freqs = librosa.mel_frequencies(adapter.n_mels + 2, fmax=sr / 2)[1:-1]
    secs = np.arange(adapter.n_frames_) * adapter.hop_length_ / sr
    bands, frames = _peak(clf.explain(X[90:]))
    f_hz, t_s = freqs[bands], secs[frames]
    want_f = np.where(labels[90:] == 0, 1000, 2500)
    want_t = np.where(labels[90:] == 0, 0.225, 0.675)
    hit = (np.abs(f_hz - want_f) < 0.25 * want_f) & (np.abs(t_s - want_t) < 0.15)
    assert hit.mean() >= 0.9, (hit.mean(), f_hz, t_s)
    b_in, f_in = _peak(X[90:, 0])              # the input's magnitude: the loud tone
    assert (np.abs(freqs[b_in] - 500) < 150).all()


def test_text_map_ranks_the_key_word_first():
    """A class decided by one key word among frequent words common to all classes."""
    rng = np.random.default_rng(5)
    common = ["the", "a", "of", "and", "to", "is", "in", "it", "that", "was", "for", "on"]
    keys = {"pos": "excellent", "neg": "dreadful", "mid": "average"}
    sents, labels, where = [], [], []
    for i in range(600):
        label = list(keys)[i % 3]
        words = list(rng.choice(common, size=rng.integers(6, 12)))
        at = int(rng.integers(0, len(words) + 1))
        words.insert(at, keys[label])
        sents.append(" ".join(words))
        labels.append(label)
        where.append(at)
    adapter = TextAdapter()
    X = adapter.fit_transform(sents[:450])
    clf = GridNetClassifier(max_epochs=5, random_state=0, early_stopping=False)
    clf.fit(X, labels[:450])
    Xt = adapter.transform(sents[450:])
    assert clf.score(Xt, labels[450:]) == 1.0
    maps = clf.explain(Xt)
    assert maps.shape == (150, adapter.n_positions_)
    assert (maps.argmax(axis=1) == np.array(where[450:])).mean() >= 0.95
    tokens = adapter.tokens_at_positions(sents[450:])
    windows = clf.explain_windows(Xt)
    top_has_key = [keys[lab] in tokens[i][s:e]
                   for i, (lab, ((s, e, _), *_)) in enumerate(zip(labels[450:], windows))]
    assert np.mean(top_has_key) >= 0.95


def test_winning_windows_beside_an_ngram_bag_are_the_cnn_s_own():
    from gridnet.core import Embedding, NgramBag
    rng = np.random.default_rng(3)
    width, positions = 9, 8
    emb = Embedding(4, trained=6, fixed_dim=2)
    convs = Branches([[Conv2D(5, (k, 1), padding="same", activation="relu"),
                       GlobalMaxPool("height")] for k in (2, 3)])
    bag = NgramBag(3, buckets=31, trained=6)
    net = Network([Branches([[emb, convs], [bag]]), Flatten(), Dropout(0.5), Dense(3)])
    net.build((1, positions, width), rng)
    bag.params["T"][...] = rng.standard_normal(bag.params["T"].shape)
    # the CNN alone, with the output rows of its 10 features
    alone = Network([emb, convs, Flatten(), Dropout(0.5), Dense(3)])
    alone.build((1, positions, width), rng)
    alone.layers[-1].params["W"][...] = net.layers[-1].params["W"][:10]
    alone.layers[-1].params["b"][...] = net.layers[-1].params["b"]
    grid = OneHotGrid(rng.integers(0, width, size=(5, positions)), width)
    codes = np.array([0, 1, 2, 0, 1])
    assert winning_windows(net, grid, codes, top=100) == winning_windows(alone, grid, codes, top=100)
    assert any(winning_windows(net, grid, codes, top=100))
