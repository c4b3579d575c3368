"""sample_weight in fit and partial_fit, as scikit-learn defines it (issue 15)."""
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from gridnet import GridNetClassifier, training
from gridnet.core import SoftmaxCrossEntropy


@pytest.fixture(scope="module")
def data():
    d = load_digits()
    X = (d.images[:240] / 16.0)[:, None].astype(np.float32)
    return X, d.target[:240].copy()


def small(**kw):
    params = dict(conv_blocks=1, filters=4, dense_units=16, max_epochs=3, random_state=0,
                  early_stopping=False)
    params.update(kw)
    return GridNetClassifier(**params)


def _same_weights(a, b):
    wa, wb = a.network_.get_weights(), b.network_.get_weights()
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_weight_two_is_the_sample_twice_for_the_loss():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 4)).astype(np.float32)
    y = np.array([0, 2, 3])
    loss_fn = SoftmaxCrossEntropy()
    lw, gw = loss_fn(z, y, np.array([2.0, 1.0, 1.0]))
    lr, gr = loss_fn(z[[0, 0, 1, 2]], y[[0, 0, 1, 2]])
    assert lw == pytest.approx(lr, rel=1e-6)
    np.testing.assert_allclose(gw[0], gr[0] + gr[1], rtol=1e-5)
    np.testing.assert_allclose(gw[1:], gr[2:], rtol=1e-5)


def test_zero_weight_removes_a_sample_from_loss_and_gradient():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 1])
    loss_fn = SoftmaxCrossEntropy(class_weight=np.array([1.0, 3.0, 0.5], np.float32))
    lw, gw = loss_fn(z, y, np.array([1.0, 0.0, 1.0, 1.0]))
    lr, gr = loss_fn(z[[0, 2, 3]], y[[0, 2, 3]])
    assert lw == pytest.approx(lr, rel=1e-6)
    assert not gw[1].any()
    np.testing.assert_allclose(gw[[0, 2, 3]], gr, rtol=1e-5)
    # all weights zero: nothing to learn, and no NaN
    loss, grad = loss_fn(z, y, np.zeros(4))
    assert loss == 0.0 and not grad.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_unweighted_loss_is_the_unit_weighted_one_to_the_bit(dtype):
    # the loss without weights takes a shorter path: the same numbers as with weights 1
    rng = np.random.default_rng(4)
    z = (rng.standard_normal((37, 5)) * 4).astype(dtype)
    y = rng.integers(0, 5, 37)
    plain = SoftmaxCrossEntropy()(z, y)
    for weighted in (SoftmaxCrossEntropy(class_weight=np.ones(5))(z, y),
                     SoftmaxCrossEntropy()(z, y, np.ones(37))):
        assert plain[0] == weighted[0]
        assert plain[1].dtype == dtype
        np.testing.assert_array_equal(plain[1], weighted[1])


def test_class_weight_and_sample_weight_multiply():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(5, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0])
    cw = np.array([2.0, 1.0, 0.5], np.float32)
    sw = np.array([1.0, 3.0, 0.5, 0.0, 2.0], np.float32)
    both = SoftmaxCrossEntropy(class_weight=cw)(z, y, sw)
    one = SoftmaxCrossEntropy()(z, y, cw[y] * sw)
    assert both[0] == pytest.approx(one[0], rel=1e-6)
    np.testing.assert_allclose(both[1], one[1], rtol=1e-5)


def test_unit_weights_change_nothing(data):
    X, y = data
    a = small().fit(X, y)
    b = small().fit(X, y, sample_weight=np.ones(len(y)))
    c = small().fit(X, y, sample_weight=1.0)          # a number: every sample's weight
    assert _same_weights(a, b) and _same_weights(a, c)
    assert a.loss_curve_ == b.loss_curve_


def test_zero_weighted_labels_do_not_matter(data):
    X, y = data
    w = np.ones(len(y))
    w[::3] = 0.0
    y2 = y.copy()
    y2[::3] = (y2[::3] + 5) % 10            # other labels on the zero-weighted samples
    a = small().fit(X, y, sample_weight=w)
    b = small().fit(X, y2, sample_weight=w)
    assert _same_weights(a, b)               # to the bit
    # and the weights do act: the same fit without them differs
    assert not _same_weights(a, small().fit(X, y2))


def test_weights_pass_through_a_pipeline(data):
    X, y = data
    w = np.linspace(0.0, 2.0, len(y))
    direct = small().fit(X, y, sample_weight=w)
    pipe = make_pipeline(FunctionTransformer(), small())
    pipe.fit(X, y, gridnetclassifier__sample_weight=w)
    assert _same_weights(direct, pipe[-1])


def test_partial_fit_takes_weights(data):
    X, y = data
    w = np.ones(len(y))
    w[:50] = 0.0
    y2 = y.copy()
    y2[:50] = 0
    a = small().partial_fit(X, y, classes=np.arange(10), sample_weight=w)
    b = small().partial_fit(X, y2, classes=np.arange(10), sample_weight=w)
    assert _same_weights(a, b)
    assert not _same_weights(a, small().partial_fit(X, y2, classes=np.arange(10)))


def test_weighted_validation_score():
    """evaluate() weighs accuracy and loss as scikit-learn's score does."""
    from gridnet.core import Dense, Flatten, Network
    net = Network([Flatten(), Dense(2)])
    net.build((1, 1, 2), np.random.default_rng(0))
    X = np.array([[[[1.0, 0.0]]], [[[0.0, 1.0]]], [[[1.0, 1.0]]]], np.float32)
    codes = np.array([0, 1, 1])
    z = net.forward(X)
    hit = (z.argmax(axis=1) == codes).astype(float)
    w = np.array([0.0, 1.0, 3.0], np.float32)
    loss, acc = training.evaluate(net, X, codes, np.arange(3), SoftmaxCrossEntropy(),
                                  sample_weight=w)
    assert acc == pytest.approx(np.average(hit, weights=w))
    assert loss == pytest.approx(SoftmaxCrossEntropy()(z, codes, w)[0], rel=1e-6)


@pytest.mark.parametrize("weights, message", [
    (lambda n: -np.ones(n), "sample 0 has weight -1.0"),
    (lambda n: np.r_[np.ones(n - 1), np.nan], "non-negative|NaN"),
    (lambda n: np.zeros(n), "at least one"),
    (lambda n: np.ones(n - 1), r"\(239,\), expected \(240,\)"),
])
def test_bad_weights_are_named(data, weights, message):
    X, y = data
    w = weights(len(y))
    before = np.array(w, copy=True)
    with pytest.raises(ValueError, match=message):
        small().fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(w, before)     # not modified in place


@pytest.mark.parametrize("class_weight", [None, np.array([1.0, 3.0, 0.5])])
def test_the_weighted_loss_gradient_by_finite_differences(class_weight):
    from gradcheck import numeric_grad, rel_error
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((5, 3))
    y = np.array([0, 2, 1, 2, 0])
    w = np.array([1.0, 0.0, 2.5, 1.0, 0.3])
    loss = SoftmaxCrossEntropy(class_weight=class_weight)
    value, grad = loss(logits, y, sample_weight=w)
    numeric = numeric_grad(lambda: loss(logits, y, sample_weight=w)[0], logits)
    assert rel_error(grad, numeric) < 1e-8
    # and the value by hand: the weighted mean of the negative log-likelihoods
    ww = w * (1.0 if class_weight is None else class_weight[y])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert value == pytest.approx(float((ww * -np.log(p[np.arange(5), y])).sum() / ww.sum()))
