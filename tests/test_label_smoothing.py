"""Label smoothing: the loss's value and gradient, and the classifier's parameter."""
import numpy as np
import pytest
from sklearn.datasets import load_digits

from gridnet import GridNetClassifier, training
from gridnet.core import SoftmaxCrossEntropy


def _smoothed_by_hand(logits, y, e, weights):
    """The weighted mean cross-entropy against targets 1 - e + e / k on the class and e / k
    elsewhere (uniform for an outlier, label -1)."""
    n, k = logits.shape
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    target = np.full((n, k), e / k)
    for i, label in enumerate(y):
        if label < 0:
            target[i] = 1.0 / k
        else:
            target[i, label] += 1.0 - e
    return float((weights * -(target * logp).sum(axis=1)).sum() / weights.sum())


@pytest.mark.parametrize("e", [0.1, 0.3])
@pytest.mark.parametrize("class_weight", [None, np.array([1.0, 3.0, 0.5])])
def test_the_smoothed_loss_and_its_gradient_by_finite_differences(e, class_weight):
    from gradcheck import numeric_grad, rel_error
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((6, 3))
    y = np.array([0, 2, -1, 1, 2, 0])              # one outlier
    w = np.array([1.0, 0.0, 2.5, 1.0, 0.3, 2.0])
    loss = SoftmaxCrossEntropy(class_weight=class_weight, label_smoothing=e)
    value, grad = loss(logits, y, sample_weight=w)
    numeric = numeric_grad(lambda: loss(logits, y, sample_weight=w)[0], logits)
    assert rel_error(grad, numeric) < 1e-8
    cw = np.ones(6) if class_weight is None else np.where(y < 0, 1.0, class_weight[np.maximum(y, 0)])
    assert value == pytest.approx(_smoothed_by_hand(logits, y, e, w * cw))
    # unweighted, the fast path gives the same
    value, grad = SoftmaxCrossEntropy(label_smoothing=e)(logits, y)
    assert value == pytest.approx(_smoothed_by_hand(logits, y, e, np.ones(6)))
    assert rel_error(grad, numeric_grad(lambda: SoftmaxCrossEntropy(label_smoothing=e)(logits, y)[0], logits)) < 1e-8


def test_no_smoothing_is_the_plain_loss_to_the_bit():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((8, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 3, -1, 0, 1, 2])
    for cw in (None, np.array([1.0, 2.0, 0.5, 1.0], np.float32)):
        a, ga = SoftmaxCrossEntropy(class_weight=cw)(logits, y)
        b, gb = SoftmaxCrossEntropy(class_weight=cw, label_smoothing=0.0)(logits, y)
        assert a == b and ga.dtype == gb.dtype == np.float32
        np.testing.assert_array_equal(ga, gb)
    # and smoothing moves the gradient toward the uniform target
    _, g = SoftmaxCrossEntropy(label_smoothing=0.2)(logits, y)
    _, g0 = SoftmaxCrossEntropy()(logits, y)
    assert not np.allclose(g, g0)


@pytest.mark.parametrize("bad", [1.0, -0.1, 2])
def test_the_loss_refuses_a_smoothing_outside_0_1(bad):
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        SoftmaxCrossEntropy(label_smoothing=bad)


def test_make_loss_passes_the_smoothing_with_the_class_weights():
    classes, codes = np.array(["a", "b", "none"]), np.array([0, 1, 2, 0])
    loss = training.make_loss("balanced", classes, codes, 2, label_smoothing=0.2)
    assert loss.label_smoothing == 0.2 and loss.class_weight is not None
    assert training.make_loss(None, classes, codes).label_smoothing == 0.0


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)[:300], y[:300]


def small(**kw):
    return GridNetClassifier(max_epochs=2, filters=4, dense_units=16, random_state=0, **kw)


def test_the_classifier_trains_with_the_smoothing_it_is_given(digits, monkeypatch):
    X, y = digits
    used = []
    make_loss = training.make_loss
    monkeypatch.setattr(training, "make_loss", lambda *a, **k: used.append(make_loss(*a, **k)) or used[-1])
    plain = small().fit(X, y)
    assert used[-1].label_smoothing == 0.0
    big = np.random.default_rng(0).random((40, 1, 16, 16), dtype=np.float32)
    clf = GridNetClassifier(max_epochs=1, filters=2, dense_units=4, random_state=0).fit(big, np.arange(40) % 2)
    assert clf.preset_ == "audio" and used[-1].label_smoothing == 0.0     # off in every preset
    smoothed = small(label_smoothing=0.2).fit(X, y)
    assert used[-1].label_smoothing == 0.2
    small(label_smoothing=None).fit(X, y)
    assert used[-1].label_smoothing == 0.0
    # it changes what is learned, and the same seed gives the same weights
    assert not np.array_equal(smoothed.predict_proba(X), plain.predict_proba(X))
    np.testing.assert_array_equal(small(label_smoothing=0.2).fit(X, y).predict_proba(X), smoothed.predict_proba(X))


@pytest.mark.parametrize("bad", [1.0, -0.1, "yes", True])
def test_the_classifier_refuses_a_bad_smoothing(digits, bad):
    X, y = digits
    with pytest.raises(ValueError, match="label_smoothing must be"):
        small(label_smoothing=bad).fit(X[:50], y[:50])
