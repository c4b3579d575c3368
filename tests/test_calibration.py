"""Calibrated probabilities (gridnet.calibration, GridNetClassifier's temperature_):
the temperature is fitted in fit on the held-out split, never changes a prediction,
travels with the model file and the export; the calibration error and its diagram."""
import numpy as np
import pytest
from scipy.special import log_softmax, softmax

import gridnet
from gridnet import GridNetClassifier, training
from gridnet.calibration import calibration_error, fit_temperature, reliability_curve


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    return (d.images / 16.0).astype(np.float32)[:, None], d.target


def test_fit_temperature_minimises_the_held_out_log_loss():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 4)) * 3
    codes = np.array([rng.choice(4, p=p) for p in softmax(z / 1.5, axis=1)])   # overconfident z
    t = fit_temperature(z, codes)
    assert 1.0 < t < 20.0                                  # an inner minimum, not a bound

    def nll(temp):
        return -log_softmax(z / temp, axis=1)[np.arange(500), codes].mean()
    assert nll(t) <= min(nll(t * 0.97), nll(t * 1.03), nll(1.0))
    # weights: samples of weight 0 do not count
    w = (codes < 2).astype(float)
    assert fit_temperature(z, codes, w) == pytest.approx(fit_temperature(z[codes < 2], codes[codes < 2]), rel=1e-3)


def test_calibration_error_by_hand():
    proba = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.2, 0.8]])
    codes = np.array([0, 1, 1, 1])
    # bins (15 of (0, 1]): 0.95 -> [0, 1] right once of twice; 0.55 wrong; 0.8 right
    expected = (2 * abs(0.5 - 0.95) + abs(0 - 0.55) + abs(1 - 0.8)) / 4
    assert calibration_error(codes, proba) == pytest.approx(expected)
    conf, acc, count = reliability_curve(codes, proba)
    assert count.sum() == 4 and np.nansum(conf * count) == pytest.approx(0.95 * 2 + 0.55 + 0.8)
    assert calibration_error(codes, np.eye(2)[[0, 0, 1, 1]]) == pytest.approx(0.25)   # sure, 3 of 4 right


def test_the_temperature_is_fitted_on_the_held_out_split_in_fit(digits):
    X, y = digits
    clf = GridNetClassifier(max_epochs=4, random_state=0).fit(X[:600], y[:600])
    codes = np.searchsorted(clf.classes_, y[:600])
    _, val = training.validation_split(codes, clf.validation_fraction,
                                       training.seed_streams(clf.random_state)["split"])
    raw = training.logits(clf.network_, X[:600], val, 10, 256)
    assert clf.temperature_ == pytest.approx(fit_temperature(raw, codes[val]))
    assert clf.temperature_ != 1.0
    # predict_proba is the softmax of the logits divided by it; decision_function gives them
    test = X[600:800]
    z = training.logits(clf.network_, test, np.arange(200), 10, 256)
    np.testing.assert_allclose(clf.predict_proba(test), softmax(z / np.float32(clf.temperature_), axis=1),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(clf.decision_function(test), z / np.float32(clf.temperature_), rtol=1e-6)
    # never a different prediction: the same labels as the raw logits' argmax
    assert (clf.predict(test) == clf.classes_[z.argmax(axis=1)]).all()
    before = clf.temperature_
    clf.predict(test)
    clf.score(test, y[600:800])
    assert clf.temperature_ == before


@pytest.mark.parametrize("kwargs", [dict(calibration=None), dict(early_stopping=False)])
def test_no_temperature_without_the_setting_or_a_held_out_split(digits, kwargs):
    X, y = digits
    clf = GridNetClassifier(max_epochs=2, random_state=0, **kwargs).fit(X[:300], y[:300])
    assert clf.temperature_ == 1.0


def test_partial_fit_leaves_the_probabilities_uncalibrated(digits):
    X, y = digits
    clf = GridNetClassifier(max_epochs=3, random_state=0).fit(X[:300], y[:300])
    assert clf.temperature_ != 1.0
    clf.partial_fit(X[300:400], y[300:400])
    assert clf.temperature_ == 1.0


def test_bad_setting_is_named(digits):
    X, y = digits
    with pytest.raises(ValueError, match="calibration must be 'temperature' or None; got 'platt'"):
        GridNetClassifier(calibration="platt").fit(X[:50], y[:50])


def test_the_temperature_travels_with_the_model_file_and_the_export(digits, tmp_path):
    X, y = digits
    clf = GridNetClassifier(max_epochs=3, random_state=0).fit(X[:400], y[:400])
    path = tmp_path / "d.gridnet"
    clf.save(path)
    back = gridnet.load(path)
    assert back.temperature_ == clf.temperature_
    np.testing.assert_array_equal(back.predict_proba(X[400:450]), clf.predict_proba(X[400:450]))
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from gridnet.export import to_onnx
    proto = to_onnx(clf)
    assert {p.key: p.value for p in proto.metadata_props}["temperature"] == repr(clf.temperature_)
    proba, _ = ort.InferenceSession(proto.SerializeToString()).run(None, {"grid": X[400:450]})
    np.testing.assert_allclose(proba, clf.predict_proba(X[400:450]), atol=1e-5)


def test_the_reliability_diagram_renders(tmp_path):
    pytest.importorskip("matplotlib")
    from gridnet.plotting import plot_reliability, pyplot
    rng = np.random.default_rng(0)
    proba = softmax(rng.normal(size=(300, 3)) * 2, axis=1)
    codes = rng.integers(0, 3, 300)
    ax = plot_reliability(codes, proba)
    bars = [p for p in ax.patches]
    assert 0 < len(bars) <= 15
    assert ax.get_title() == f"calibration error {calibration_error(codes, proba):.4f} (300 samples, 15 bins)"
    ax.figure.savefig(tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pyplot().close(ax.figure)
