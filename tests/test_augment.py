"""The audio preset's augmentations for new voices and noise (issue 41): noise mixed in
the power domain and the frequency warp, by hand and as properties; the default is
seeded, leaves the user's grids untouched and never runs at predict time."""
import numpy as np
import pytest
from scipy.special import softmax

from gridnet import GridNetClassifier, training, views
from gridnet.augment import AddNoise, Compose, Fragments, FrequencyWarp, TimeStretch


def grids(n=6, h=40, w=30, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, 1, h, w)).astype(np.float32)
    return (x - x.mean(axis=(1, 2, 3), keepdims=True)) / x.std(axis=(1, 2, 3), keepdims=True)


def test_noise_is_added_in_the_power_domain_by_hand():
    x = grids(n=3)
    s, snr = 15.0, 5.0
    out = AddNoise(snr=(snr, snr), p=1.0, db_scale=(s, s), tilt=0.0, jitter=0.0)(
        x.copy(), np.random.default_rng(0))
    for i in range(3):
        power = 10.0 ** (x[i].astype(np.float64) * s / 10)
        mixed = 10 * np.log10(power + power.mean() / 10 ** (snr / 10)) / s
        expected = (mixed - mixed.mean()) / mixed.std() * x[i].std() + x[i].mean()
        np.testing.assert_allclose(out[i], expected, rtol=1e-4, atol=1e-4)
    # quiet cells are lifted to the noise floor: their spread shrinks, the loud ones' less
    loud, quiet = x > 1.5, x < -1.5
    assert out[quiet].std() < 0.5 * x[quiet].std() and out[loud].std() > 0.8 * x[loud].std()


def test_noise_covers_the_clip_only_and_the_padding_stays_flat_by_hand():
    x = grids(n=3, w=30)
    x[:, :, :, :4] = x[:, :, :, 24:] = x.min(axis=(1, 2, 3), keepdims=True)  # padded clips
    s, snr = 15.0, 5.0
    out = AddNoise(snr=(snr, snr), p=1.0, db_scale=(s, s), tilt=0.0, jitter=0.0)(
        x.copy(), np.random.default_rng(0))
    clip = slice(4, 24)
    for i in range(3):
        power = 10.0 ** (x[i].astype(np.float64) * s / 10)
        mixed = 10 * np.log10(power + power[:, :, clip].mean() / 10 ** (snr / 10)) / s
        mixed[:, :, :4] = mixed[:, :, 24:] = mixed[:, :, clip].min()
        expected = (mixed - mixed.mean()) / mixed.std() * x[i].std() + x[i].mean()
        np.testing.assert_allclose(out[i], expected, rtol=1e-4, atol=1e-4)
        assert np.ptp(out[i][:, :, 24:]) == 0 and out[i][:, :, 24:].max() == out[i].min()
    # a grid whose every column the clip spans is noisy throughout, as before
    full = grids(n=2)
    y = AddNoise(snr=(snr, snr), p=1.0, db_scale=(s, s), tilt=0.0, jitter=0.0)(
        full.copy(), np.random.default_rng(0))
    assert (np.ptp(y[:, 0], axis=1) > 0).all()


@pytest.mark.parametrize("seed", range(5))
def test_noise_properties(seed):
    x = grids(n=8, seed=seed)
    rng = np.random.default_rng(seed)
    # each sample keeps its mean and spread, as the adapter normalises a noisy clip
    y = AddNoise(p=1.0)(x.copy(), rng)
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(1, 2, 3)), x.std(axis=(1, 2, 3)), rtol=1e-4)

    def corr(a, b):
        return np.mean([np.corrcoef(a[i].ravel(), b[i].ravel())[0, 1] for i in range(len(a))])
    # the louder the noise, the less of the clip is left
    clean = [corr(x, AddNoise(snr=(v, v), p=1.0)(x.copy(), np.random.default_rng(seed)))
             for v in (150.0, 10.0, 0.0, -150.0)]
    assert clean[0] > 0.999 and clean[0] > clean[1] > clean[2] > clean[3] and clean[3] < 0.2
    # p: the share of samples touched; p=0 touches none
    assert np.array_equal(AddNoise(p=0.0)(x.copy(), rng), x)
    touched = ~np.all(AddNoise(p=0.5)(grids(n=400).copy(), rng) == grids(n=400), axis=(1, 2, 3))
    assert 0.4 < touched.mean() < 0.6


def test_frequency_warp_by_hand():
    h = 12
    ramp = np.tile(np.arange(h, dtype=np.float32)[None, None, :, None], (50, 1, 1, 4))
    y = FrequencyWarp(0.2)(ramp.copy(), np.random.default_rng(0))
    alpha = 1.0 / y[:, 0, 1, 0]                          # row 1 reads row 1 / alpha
    assert ((alpha >= 0.8 - 1e-6) & (alpha <= 1.2 + 1e-6)).all() and alpha.std() > 0.05
    expected = np.minimum(np.arange(h)[None, :] / alpha[:, None], h - 1)
    np.testing.assert_allclose(y[:, 0, :, 0], expected, rtol=1e-5, atol=1e-5)
    assert np.array_equal(FrequencyWarp(0.0)(ramp.copy(), np.random.default_rng(0)), ramp)


def test_time_stretch_by_hand():
    w = 21
    ramp = np.tile(np.arange(w, dtype=np.float32)[None, None, None, :], (50, 2, 3, 1))
    y = TimeStretch(0.2)(ramp.copy(), np.random.default_rng(0))
    c = (w - 1) / 2
    beta = 1.0 / (y[:, 0, 0, 11] - c)                   # column c + 1 reads c + 1 / beta
    assert ((beta >= 0.8 - 1e-5) & (beta <= 1.2 + 1e-5)).all() and beta.std() > 0.05
    expected = np.clip(c + (np.arange(w)[None, :] - c) / beta[:, None], 0, w - 1)
    np.testing.assert_allclose(y[:, 1, 2, :], expected, rtol=1e-5, atol=1e-4)
    assert (y == y[:, :1, :1, :]).all()                  # every channel and row alike
    assert np.array_equal(TimeStretch(0.0)(ramp.copy(), np.random.default_rng(0)), ramp)
    a = TimeStretch(0.1)(ramp.copy(), np.random.default_rng(3))
    assert np.array_equal(a, TimeStretch(0.1)(ramp.copy(), np.random.default_rng(3)))


def test_the_audio_default_is_seeded_leaves_the_grids_and_stays_out_of_predict():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    X = rng.standard_normal((80, 1, 16, 20)).astype(np.float32)
    X[y == 1, :, 4:8] += 2.0                             # a band that tells the classes
    before = X.copy()
    fit = lambda seed: GridNetClassifier(max_epochs=3, random_state=seed).fit(X, y)  # noqa: E731
    a, b, c = fit(0), fit(0), fit(1)
    assert a.preset_ == "audio" and isinstance(a.augment_, Compose)
    kinds = [type(step) for step in a.augment_.steps]
    assert kinds[:2] == [AddNoise, FrequencyWarp] and isinstance(a.augment_.outliers, Fragments)
    assert a.augment_.steps[2].steps[0].max_shift == 10      # a word off the window's centre
    assert all(np.array_equal(w, b.network_.get_weights()[k]) for k, w in a.network_.get_weights().items())
    assert any(not np.array_equal(w, c.network_.get_weights()[k]) for k, w in a.network_.get_weights().items())
    assert np.array_equal(X, before)
    # predict_proba is the network's output over the fixed test-time views (by hand in
    # test_views.py): no random augmentation, the same every call
    assert a.tta_ == views.PRESET_VIEWS["audio"]
    z = views.logits(a.network_, X, np.arange(80), 2, 256, a.tta_) / np.float32(a.temperature_)
    np.testing.assert_allclose(a.predict_proba(X), softmax(z, axis=1), rtol=1e-5, atol=1e-6)
    assert np.array_equal(a.predict_proba(X), a.predict_proba(X))


@pytest.mark.parametrize("make, message", [
    (lambda: AddNoise(snr=5), "snr must be a range"),
    (lambda: AddNoise(db_scale=(20, 10)), "db_scale must be a range"),
    (lambda: AddNoise(p=1.5), "0 <= p <= 1"),
    (lambda: FrequencyWarp(1.5), "max_warp must be in"),
    (lambda: TimeStretch(-0.1), "max_stretch must be in"),
    (lambda: TimeStretch("0.1"), "max_stretch must be in"),
    (lambda: FrequencyWarp(None), "max_warp must be in"),
    (lambda: Fragments(share=2), "0 <= share <= 1"),
    (lambda: Fragments(keep=(0.3, 0.2)), "keep"),
    (lambda: Fragments(keep=(0.0, 0.2)), "keep"),
])
def test_bad_settings_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_audio_preset_centres_each_row_first_and_saves_it(tmp_path):
    import gridnet
    from gridnet import RowCenter
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 1, 20, 20)).astype(np.float32)
    y = np.repeat([0, 1], 20)
    fit = lambda **kw: GridNetClassifier(max_epochs=1, random_state=0, **kw).fit(X, y)  # noqa: E731
    audio = fit()
    assert audio.preset_ == "audio" and isinstance(audio.network_.layers[0], RowCenter)
    assert audio.network_.layers[0].keep_input                # a steady tone keeps its band
    assert not isinstance(fit(center_rows=False).network_.layers[0], RowCenter)
    assert not isinstance(fit(preset="image").network_.layers[0], RowCenter)
    assert isinstance(fit(preset="image", center_rows=True).network_.layers[0], RowCenter)
    with pytest.raises(ValueError, match="center_rows must be True, False or None"):
        fit(center_rows="yes")
    audio.save(tmp_path / "m.gridnet")
    again = gridnet.load(tmp_path / "m.gridnet")
    assert isinstance(again.network_.layers[0], RowCenter)
    np.testing.assert_array_equal(again.predict_proba(X), audio.predict_proba(X))


def test_noise_on_a_peaked_grid_stays_finite():
    x = np.zeros((2, 1, 40, 42), np.float32)
    x[:, :, 3, 5] = 1.0                      # one loud cell: 41 standard deviations up
    x = (x - x.mean()) / x.std()
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = AddNoise(p=1.0)(x.copy(), np.random.default_rng(0))
    assert np.isfinite(y).all()


def clips(n=50, h=6, w=40, seed=0):
    """Grids of clips 10-30 columns wide, centred, padded with their lowest value."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, h, w), np.float32)
    spans = []
    for i in range(n):
        width = int(rng.integers(10, 31))
        a = (w - width) // 2
        x[i, :, :, a:a + width] = rng.uniform(0.5, 3.0, size=(1, h, width))
        x[i] = (x[i] - x[i].mean()) / x[i].std()
        spans.append((a, a + width))
    return x, spans


def test_fragments_keep_only_an_edge_of_the_clip_by_hand():
    x, spans = clips()
    before = x.copy()
    out = Fragments(share=1.0, keep=(0.05, 0.25))(x, np.random.default_rng(1))
    assert np.array_equal(x, before) and out.shape == x.shape and out.dtype == np.float32
    sides = []
    for f, g, (a, b) in zip(out, x, spans):
        floor = f.min()
        voiced = np.nonzero((f != floor).any(axis=(0, 1)))[0]
        k = len(voiced)
        assert 1 <= k <= round(0.25 * (b - a)) + 1
        left = voiced[0] == 0
        assert left or voiced[-1] == f.shape[2] - 1                # at an edge
        assert np.array_equal(voiced, np.arange(k) if left else np.arange(40 - k, 40))
        # the clip's end at the left edge, its start at the right, as the grid had them
        piece = g[..., b - k:b] if left else g[..., a:a + k]
        got = f[..., :k] if left else f[..., 40 - k:]
        scale = (got - f.mean()).std() / (piece - g.mean()).std()
        np.testing.assert_allclose(np.corrcoef(got.ravel(), piece.ravel())[0, 1], 1.0, atol=1e-5)
        assert scale > 0
        np.testing.assert_allclose([f.mean(), f.std()], [g.mean(), g.std()], atol=1e-5)
        sides.append(left)
    assert 0.2 < np.mean(sides) < 0.8
    # seeded; share 0 makes none; a constant grid makes none
    again = Fragments(share=1.0, keep=(0.05, 0.25))(x, np.random.default_rng(1))
    assert np.array_equal(out, again)
    assert Fragments(share=0.0)(x, np.random.default_rng(1)).shape == (0, 1, 6, 40)
    assert len(Fragments(share=1.0)(np.ones((3, 1, 6, 40), np.float32), np.random.default_rng(0))) == 0


def test_the_training_loop_adds_the_outliers_labelled_minus_one():
    from tqdm import tqdm
    from gridnet.core import Network, Flatten, Dense, Adam, SoftmaxCrossEntropy
    x, _ = clips(n=40)
    codes = np.repeat([0, 1], 20)
    seen = []

    class Spy(SoftmaxCrossEntropy):
        def __call__(self, logits, y, sample_weight=None):
            seen.append((len(logits), np.asarray(y).copy(), None if sample_weight is None
                         else np.asarray(sample_weight).copy()))
            return super().__call__(logits, y, sample_weight)

    def run(augment, weights=None, seed=0):
        net = Network([Flatten(), Dense(2)])
        net.build((1, 6, 40), np.random.default_rng(0))
        streams = training.seed_streams(seed)
        with tqdm(disable=True) as bar:
            training.run_epoch(net, Adam(1e-2), Spy(), x, codes, np.arange(40), batch_size=10,
                               augment=augment, streams=streams, bar=bar, epoch=1,
                               sample_weight=weights)
        return net.get_weights()

    a = run(Compose([], outliers=Fragments(share=0.5)))
    n_out = sum((y == -1).sum() for _, y, _ in seen)
    assert 5 <= n_out <= 35 and all(n == len(y) for n, y, _ in seen)
    assert all((y[:len(y) - (y == -1).sum()] >= 0).all() and (y[-(y == -1).sum():] == -1).all()
               for _, y, _ in seen if (y == -1).any())           # appended after the batch
    b = run(Compose([], outliers=Fragments(share=0.5)))
    assert all(np.array_equal(v, b[k]) for k, v in a.items())     # seeded
    seen.clear()
    run(Compose([]))
    assert not any((y == -1).any() for _, y, _ in seen)
    seen.clear()
    run(Compose([], outliers=Fragments(share=0.5)), weights=np.linspace(1, 3, 40))
    for _, y, w in seen:                  # an outlier weighs as the batch's mean sample
        np.testing.assert_allclose(w[y == -1], w[y >= 0].mean(), rtol=1e-6)

    class OneHot:                         # the one-hot grid contract, duck-typed
        __onehot_grid__ = True

        def __getitem__(self, idx):
            return self
    with pytest.raises(TypeError, match="dense grids"):
        training.run_epoch(Network([Flatten(), Dense(2)]), Adam(), Spy(), OneHot(), codes,
                           np.arange(40), batch_size=10,
                           augment=Compose([], outliers=Fragments()),
                           streams=training.seed_streams(0), bar=tqdm(disable=True), epoch=1)
