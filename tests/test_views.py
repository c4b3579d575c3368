"""Test-time views (gridnet.views, GridNetClassifier(tta=...)): the averaged answer
checked against views made by hand, training untouched, the settings checked, and the
views carried by the model file."""
import json

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from gridnet import GridNetClassifier, load, persist, training, views
from gridnet.augment import warp_matrices


def data(n=80, h=16, w=20, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = rng.standard_normal((n, 1, h, w)).astype(np.float32)
    X[y == 1, :, 4:8] += 2.0
    return X, y


def by_hand(X, warp, shift):
    """The view made the slow way: each row read at ``row / warp`` by linear
    interpolation (the top row beyond), each column at ``column - shift`` (the border
    column beyond)."""
    h, w = X.shape[2:]
    out = np.empty_like(X)
    for r in range(h):
        src = min(r / warp, h - 1)
        lo = int(np.floor(src))
        hi, frac = min(lo + 1, h - 1), src - lo
        out[:, :, r] = (1 - frac) * X[:, :, lo] + frac * X[:, :, hi]
    cols = np.clip(np.arange(w) - shift, 0, w - 1)
    return out[..., cols]


@pytest.fixture(scope="module")
def audio_fit():
    X, y = data()
    return GridNetClassifier(preset="audio", max_epochs=2, random_state=0).fit(X, y), X, y


def test_the_answer_is_the_mean_log_probability_over_views_made_by_hand(audio_fit):
    clf, X, _ = audio_fit
    before = X.copy()
    assert clf.tta_ == views.PRESET_VIEWS["audio"] and len(clf.tta_) > 1
    raw = lambda g: training.logits(clf.network_, g, np.arange(len(g)), 2, 256)  # noqa: E731
    mean = np.mean([log_softmax(raw(by_hand(X, a, s)).astype(np.float64), axis=1)
                    for a, s in clf.tta_], axis=0)
    np.testing.assert_allclose(clf.predict_proba(X), softmax(mean / clf.temperature_, axis=1),
                               rtol=1e-4, atol=1e-5)
    assert np.array_equal(clf.predict_proba(X), clf.predict_proba(X))
    assert np.array_equal(X, before)          # the user's grids are left as they were
    # the views differ from the grid, so the average is not the plain answer
    assert not np.allclose(mean, log_softmax(raw(X), axis=1), atol=1e-4)


def test_warp_matrices_match_frequency_warp_and_leave_a_ramp_stretched():
    h = 10
    m = warp_matrices([1.25], h)[0]
    ramp = np.arange(h, dtype=np.float32)
    np.testing.assert_allclose(m @ ramp, np.minimum(np.arange(h) / 1.25, h - 1), atol=1e-6)
    assert np.array_equal(warp_matrices([1.0], h)[0], np.eye(h, dtype=np.float32))


def test_views_never_touch_training_and_one_plain_view_is_no_view():
    X, y = data()
    fit = lambda tta: GridNetClassifier(preset="audio", max_epochs=2, random_state=0,  # noqa: E731
                                        tta=tta).fit(X, y)
    auto, none, plain = fit("auto"), fit(None), fit([(1.0, 0)])
    for other in (none, plain):
        w = other.network_.get_weights()
        assert all(np.array_equal(v, w[k]) for k, v in auto.network_.get_weights().items())
    assert none.tta_ == () and plain.tta_ == ((1.0, 0),)
    np.testing.assert_allclose(plain.predict_proba(X), none.predict_proba(X), rtol=1e-5, atol=1e-6)
    assert not np.allclose(auto.predict_proba(X), none.predict_proba(X), atol=1e-4)


def test_auto_gives_views_to_the_audio_preset_only():
    X, y = data()
    assert GridNetClassifier(preset="image", max_epochs=1, random_state=0).fit(X, y).tta_ == ()
    from adapters import TextAdapter
    sentences = ["a good film", "a bad film", "what a fine movie", "dull and bad"] * 5
    grids = TextAdapter(embedding=None, positions=6).fit_transform(sentences)
    clf = GridNetClassifier(max_epochs=1, random_state=0).fit(grids, [1, 0, 1, 0] * 5)
    assert clf.preset_ == "text" and clf.tta_ == ()
    with pytest.raises(ValueError, match="one-hot word grid"):
        GridNetClassifier(max_epochs=1, tta=[(1.0, 1)]).fit(grids, [1, 0, 1, 0] * 5)


@pytest.mark.parametrize("tta, message", [
    ("all", "tta must be 'auto', None or a list"),
    (3, "tta must be 'auto', None or a list"),
    ([], "empty list"),
    ([(1.0,)], r"tta\[0\] must be a pair"),
    ([(1.0, 0), (0.2, 0)], r"tta\[1\] must be a pair \(warp, shift\): a warp factor in"),
    ([(1.0, 0.5)], r"tta\[0\] must be a pair"),
    ([(True, 0)], r"tta\[0\] must be a pair"),
    (["ab"], r"tta\[0\] must be a pair"),
    ([(1.0, 20)], r"tta\[0\] shifts 20 steps, but the grids are 20 wide"),
])
def test_bad_views_are_named(tta, message):
    X, y = data()
    with pytest.raises(ValueError, match=message):
        GridNetClassifier(preset="audio", max_epochs=1, tta=tta).fit(X, y)


def test_the_model_file_keeps_the_views_and_an_older_file_has_none(audio_fit, tmp_path):
    clf, X, _ = audio_fit
    path = tmp_path / "m.gridnet"
    clf.save(path)
    back = load(path)
    assert back.tta_ == clf.tta_
    assert np.array_equal(back.predict_proba(X), clf.predict_proba(X))
    # a file written before test-time views: its temperature was fitted without them
    doc, weights = persist.read_model(path)
    doc = {k: v for k, v in doc.items() if k not in ("format", "version", "sha256")}
    del doc["tta"]
    del doc["params"]["tta"]
    old = tmp_path / "old.gridnet"
    persist.write_model(old, doc, weights)
    loaded = load(old)
    assert loaded.tta_ == () and loaded.tta == "auto"
    z = training.logits(clf.network_, X, np.arange(len(X)), 2, 256) / np.float32(clf.temperature_)
    np.testing.assert_allclose(loaded.predict_proba(X), softmax(z, axis=1), rtol=1e-5, atol=1e-6)
    doc["tta"] = [[1.0, "x"]]
    bad = tmp_path / "bad.gridnet"
    persist.write_model(bad, doc, weights)
    with pytest.raises(ValueError, match="invalid gridnet model"):
        load(bad)
    json.dumps(doc["params"])             # the header stays JSON
