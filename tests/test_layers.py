import numpy as np
import pytest

from gradcheck import check_layer, numeric_grad, rel_error
from gridnet.core import (Branches, Conv2D, Dense, Dropout, Flatten, GlobalMaxPool,
                            MaxPool2D, Network, ReLU, RowCenter)

CONV_CASES = [
    # (filters, kernel, stride, padding, normalize, in_shape)
    (3, 3, 1, "valid", False, (2, 6, 7)),
    (3, 3, 1, "same", False, (2, 6, 7)),
    (2, 3, 2, "same", False, (2, 7, 6)),
    (2, 3, 2, "valid", False, (1, 7, 8)),
    (2, (2, 4), (1, 2), "same", False, (3, 5, 9)),
    (4, (3, 5), 1, "valid", False, (1, 8, 5)),      # full-width kernel (sentence CNN)
    (2, (2, 5), 1, "valid", True, (2, 6, 5)),       # normalised, full width
    (2, 3, 1, "same", True, (2, 5, 5)),             # normalised
    (2, 4, 3, "same", False, (1, 7, 7)),            # even kernel, stride > 1, padding
    (3, 1, 1, "valid", False, (2, 3, 4)),           # 1x1
    (2, (5, 5), 1, "valid", False, (1, 5, 5)),      # kernel the size of the grid
    (2, (3, 1), 1, "full", False, (4, 6, 1)),       # Kim's padded sentence convolution
    (2, (2, 3), (2, 1), "full", False, (2, 5, 4)),  # full padding with a stride
]


@pytest.mark.parametrize("filters,kernel,stride,padding,normalize,in_shape", CONV_CASES)
def test_conv2d_gradients(filters, kernel, stride, padding, normalize, in_shape):
    check_layer(Conv2D(filters, kernel, stride, padding, normalize), in_shape)


@pytest.mark.parametrize("kernel,padding", [(3, "same"), ((2, 5), "valid")])
def test_conv2d_fused_relu_gradients_and_equivalence(kernel, padding):
    check_layer(Conv2D(3, kernel, padding=padding, activation="relu"), (2, 6, 5), n=3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 2, 6, 5))
    fused = Conv2D(3, kernel, padding=padding, activation="relu")
    plain = Conv2D(3, kernel, padding=padding)
    fused.build((2, 6, 5), np.random.default_rng(0), np.float64)
    plain.build((2, 6, 5), np.random.default_rng(0), np.float64)
    np.testing.assert_array_equal(fused.forward(x), np.maximum(plain.forward(x), 0))


def test_dense_fused_relu_gradients():
    check_layer(Dense(5, activation="relu"), (6,), n=4)


def test_conv2d_gradients_across_chunks():
    # a tiny chunk budget forces one sample per chunk
    check_layer(Conv2D(2, 3, 1, "same", chunk_bytes=1), (2, 4, 5), n=3)


def test_conv2d_matches_direct_definition():
    """Filtering as the plain words say: line up, multiply, add (divide by size)."""
    rng = np.random.default_rng(1)
    for normalize in (False, True):
        conv = Conv2D(3, (2, 3), stride=(2, 1), normalize=normalize)
        conv.build((2, 5, 6), rng, np.float64)
        x = rng.standard_normal((2, 2, 5, 6))
        out = conv.forward(x)
        W = conv.params["W"].reshape(3, 2, 2, 3)
        expect = np.zeros_like(out)
        for n in range(2):
            for f in range(3):
                for i in range(out.shape[2]):
                    for j in range(out.shape[3]):
                        patch = x[n, :, 2 * i:2 * i + 2, j:j + 3]
                        v = np.sum(patch * W[f])
                        if normalize:
                            v /= W[f].size
                        expect[n, f, i, j] = v + conv.params["b"][f]
        np.testing.assert_allclose(out, expect, rtol=1e-10, atol=1e-12)


def test_conv2d_same_padding_shape():
    conv = Conv2D(4, 3, stride=2, padding="same")
    assert conv.build((1, 7, 8), np.random.default_rng(0)) == (4, 4, 4)


def test_conv2d_chunking_gives_same_output():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 2, 6, 6)).astype(np.float32)
    a = Conv2D(3, 3, padding="same")
    a.build((2, 6, 6), np.random.default_rng(0))
    b = Conv2D(3, 3, padding="same", chunk_bytes=1)
    b.build((2, 6, 6), np.random.default_rng(0))
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert len(b.kernel._chunks(9, 4)) == 9


def test_conv2d_rejects_kernel_larger_than_grid():
    with pytest.raises(ValueError, match="larger than its input grid"):
        Conv2D(2, 5).build((1, 4, 4), np.random.default_rng(0))


POOL_CASES = [
    # (window, stride, padding, in_shape)
    (2, 2, "valid", (2, 6, 6)),
    (2, 2, "valid", (1, 7, 5)),        # ragged edges dropped
    (3, 2, "valid", (2, 7, 7)),        # overlapping windows
    (3, 2, "same", (1, 6, 7)),         # overlapping + padding
    (2, 2, "same", (2, 5, 7)),         # ragged edges padded
    ((2, 3), (1, 2), "valid", (1, 5, 8)),
    (3, 1, "same", (1, 4, 4)),         # stride 1, heavy overlap, padding
    (2, 3, "valid", (1, 8, 8)),        # stride larger than window (gaps)
]


@pytest.mark.parametrize("window,stride,padding,in_shape", POOL_CASES)
def test_maxpool_gradients(window, stride, padding, in_shape):
    check_layer(MaxPool2D(window, stride, padding), in_shape, n=2)


def test_maxpool_ties_route_gradient_once():
    pool = MaxPool2D(2)
    pool.build((1, 2, 2), None)
    pool.forward(np.ones((1, 1, 2, 2)), training=True)
    dx = pool.backward(np.ones((1, 1, 1, 1)))
    assert dx.sum() == 1.0 and dx[0, 0, 0, 0] == 1.0


def test_maxpool_forward_values():
    pool = MaxPool2D(3, 2, "same")
    pool.build((1, 5, 5), None)
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    out = pool.forward(x)
    assert out.shape == (1, 1, 3, 3)
    # "same" pads one on each side: window rows [-1..1], [1..3], [3..5]
    np.testing.assert_array_equal(out[0, 0], [[6, 8, 9], [16, 18, 19], [21, 23, 24]])


@pytest.mark.parametrize("axis", ["height", "width", "both"])
def test_global_maxpool_gradients(axis):
    check_layer(GlobalMaxPool(axis), (3, 5, 4))


@pytest.mark.parametrize("axis", ["height", "width", "both"])
@pytest.mark.parametrize("layout", ["nchw", "strided"])
def test_global_maxpool_ties_route_once_to_the_first_maximum(axis, layout):
    """Plain loops as the reference: each reduced line's gradient goes to its first
    maximum in C order; rounded values make ties common, as padding rows do in text."""
    rng = np.random.default_rng(0)
    x = np.round(rng.standard_normal((3, 2, 5, 4)))
    if layout == "strided":         # a conv output is a strided view (n, h, w, c) in memory
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    pool = GlobalMaxPool(axis)
    pool.build(x.shape[1:], None)
    out = pool.forward(x, training=True)
    grad = rng.standard_normal(out.shape)
    dx = pool.backward(grad)
    expected = np.zeros_like(x)
    for i, j in np.ndindex(3, 2):
        if axis == "height":
            for col in range(4):
                expected[i, j, np.argmax(x[i, j, :, col]), col] = grad[i, j, 0, col]
        elif axis == "width":
            for row in range(5):
                expected[i, j, row, np.argmax(x[i, j, row])] = grad[i, j, row, 0]
        else:
            r, col = np.unravel_index(np.argmax(x[i, j]), (5, 4))
            expected[i, j, r, col] = grad[i, j, 0, 0]
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("in_shape", [(6,), (2, 3, 4)])
def test_relu_gradients(in_shape):
    check_layer(ReLU(), in_shape)


@pytest.mark.parametrize("in_shape", [(1, 5, 7), (3, 4, 1), (2, 1, 6)])
def test_row_center_gradients_and_values(in_shape):
    check_layer(RowCenter(), in_shape)
    check_layer(RowCenter(keep_input=True), in_shape)
    both = RowCenter(keep_input=True)
    c, h, w = in_shape
    assert both.build(in_shape, None) == (2 * c, h, w)
    x = np.random.default_rng(1).standard_normal((3,) + in_shape).astype(np.float32)
    y = both.forward(x)
    np.testing.assert_array_equal(y[:, :c], x)                       # the input kept
    np.testing.assert_allclose(y[:, c:], x - x.mean(axis=3, keepdims=True), atol=1e-6)
    with pytest.raises(ValueError, match="keep_input must be True or False"):
        RowCenter(keep_input="yes")
    x = np.random.default_rng(0).standard_normal((4,) + in_shape).astype(np.float32) + 3.0
    layer = RowCenter()
    assert layer.build(in_shape, None) == in_shape
    y = layer.forward(x)
    np.testing.assert_allclose(y.mean(axis=3), 0.0, atol=1e-6)       # each row's mean out
    np.testing.assert_allclose(np.diff(y, axis=3), np.diff(x, axis=3), rtol=1e-5, atol=1e-5)
    assert y.dtype == np.float32
    with pytest.raises(ValueError, match=r"RowCenter needs samples shaped \(c, h, w\)"):
        RowCenter().build((6,), None)


def test_leading_weightless_layers_get_no_backward_pass_but_the_weights_get_theirs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 1, 6, 5)).astype(np.float32)

    def grads(input_grad):
        net = Network([RowCenter(), Conv2D(2, 3, padding="same", activation="relu"), Flatten(),
                       Dense(3)])
        net.build((1, 6, 5), np.random.default_rng(1))
        calls = []
        first = net.steps[0]
        original = first.backward
        first.backward = lambda g, input_grad=True: calls.append(1) or original(g, input_grad)
        net.forward(x, training=True)
        dx = net.backward(np.ones((3, 3), np.float32), input_grad=input_grad)
        return {name: g.copy() for name, _, g in net.parameters()}, dx, calls

    with_x, dx, calls = grads(True)
    without, none, skipped = grads(False)
    assert dx.shape == x.shape and none is None and calls == [1] and skipped == []
    assert all(np.array_equal(with_x[k], without[k]) for k in with_x)


def test_dense_and_flatten_gradients():
    check_layer(Dense(4, init="he"), (7,))
    check_layer(Flatten(), (2, 3, 4))


def test_dropout_gradient_and_scaling():
    layer = Dropout(0.5)
    layer.build((1000,), np.random.default_rng(0), np.float64)
    x = np.ones((4, 1000))
    y = layer.forward(x, training=True)
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert abs(y.mean() - 1.0) < 0.1
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y)
    np.testing.assert_array_equal(layer.forward(x, training=False), x)


def test_branches_gradients():
    block = Branches([[Conv2D(2, (k, 4)), ReLU(), GlobalMaxPool()] for k in (2, 3)])
    check_layer(block, (1, 6, 4))


def test_branches_of_flat_features_gradients():
    """A convolutional path beside a bypass of the input (the locality probe's body):
    flat outputs put side by side."""
    block = Branches([[Conv2D(2, (1, 3), padding="same", activation="relu"), MaxPool2D((1, 2)),
                       Flatten()], [Flatten()]])
    assert block.build((1, 1, 7), np.random.default_rng(0)) == (2 * 3 + 7,)
    errors = check_layer(Branches([[Conv2D(2, (1, 3), padding="same", activation="relu"),
                                    MaxPool2D((1, 2)), Flatten()], [Flatten(), Dense(3)]]),
                         (1, 1, 7))
    assert {"x", "0.0.W", "1.1.W"} <= set(errors)


def test_branches_rejects_mismatched_outputs():
    block = Branches([[Conv2D(2, 2)], [Conv2D(2, 3)]])
    with pytest.raises(ValueError, match="agree"):
        block.build((1, 5, 5), np.random.default_rng(0))
    with pytest.raises(ValueError, match="all flat"):      # a grid beside flat features
        Branches([[Conv2D(2, 2)], [Flatten()]]).build((1, 5, 5), np.random.default_rng(0))


def test_layers_keep_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    for layer in (Conv2D(3, 3, padding="same"), MaxPool2D(3, 2), GlobalMaxPool(), ReLU()):
        layer.build((2, 8, 8), rng)
        y = layer.forward(x, training=True)
        assert y.dtype == np.float32
        assert layer.backward(np.ones_like(y)).dtype == np.float32


def test_forward_does_not_modify_input():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    before = x.copy()
    for layer in (Conv2D(3, 3, padding="same"), MaxPool2D(2), ReLU(), Dropout(0.3)):
        layer.build((2, 8, 8), rng)
        y = layer.forward(x, training=True)
        layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(x, before)


def test_bad_arguments():
    with pytest.raises(ValueError, match="padding"):
        Conv2D(2, 3, padding="reflect")
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2D(2, (3, 0))
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="Flatten"):
        Dense(3).build((2, 3, 4), np.random.default_rng(0))


def _reference_pool_backward(x, window, grad):
    """Plain loops: each window's gradient goes to its first maximum (C order)."""
    dx = np.zeros_like(x)
    n, c, ho, wo = grad.shape
    for i in range(n):
        for k in range(c):
            for a in range(ho):
                for b in range(wo):
                    block = x[i, k, a * window:(a + 1) * window, b * window:(b + 1) * window]
                    r, s = np.unravel_index(np.argmax(block), block.shape)
                    dx[i, k, a * window + r, b * window + s] += grad[i, k, a, b]
    return dx


@pytest.mark.parametrize("in_shape", [(2, 6, 6), (1, 7, 5)])
@pytest.mark.parametrize("values", ["ties", "distinct"])
def test_maxpool_backward_matches_reference(in_shape, values):
    """Non-overlapping windows take a one-comparison path; ties must still route once."""
    rng = np.random.default_rng(0)
    if values == "ties":
        x = rng.integers(0, 3, size=(3,) + in_shape).astype(np.float64)
    else:
        x = rng.standard_normal((3,) + in_shape)
    pool = MaxPool2D(2)
    pool.build(in_shape, None)
    out = pool.forward(x, training=True)
    grad = rng.standard_normal(out.shape)
    np.testing.assert_allclose(pool.backward(grad), _reference_pool_backward(x, 2, grad))


def test_first_layer_skips_input_gradient():
    conv = Conv2D(2, 3)
    conv.build((1, 5, 5), np.random.default_rng(0))
    y = conv.forward(np.ones((2, 1, 5, 5), np.float32), training=True)
    assert conv.backward(np.ones_like(y), input_grad=False) is None
    assert conv.grads["W"].shape == (2, 9)


class _OneHot:
    """Minimal one-hot grid (the protocol of gridnet.layers.is_onehot)."""
    __onehot_grid__ = True

    def __init__(self, indices, width):
        self.indices = np.asarray(indices)
        self.width = width
        self.shape = (len(self.indices), 1, self.indices.shape[1], width)
        self.ndim = 4

    def __getitem__(self, rows):
        return _OneHot(self.indices[rows], self.width)

    def __len__(self):
        return self.shape[0]

    def toarray(self):
        n, _, h, w = self.shape
        out = np.zeros(self.shape, np.float64)
        nn, tt = np.nonzero(self.indices >= 0)
        out[nn, 0, tt, self.indices[nn, tt]] = 1
        return out


@pytest.mark.parametrize("kh,stride,padding,act,normalize", [
    (1, 1, "valid", None, False), (3, 1, "valid", "relu", False), (3, 1, "full", "relu", False),
    (2, 2, "valid", None, True), (3, 1, "same", "relu", False), (4, 3, "same", None, False)])
def test_conv_onehot_matches_dense(kh, stride, padding, act, normalize):
    rng = np.random.default_rng(1)
    idx = rng.integers(-1, 7, size=(5, 9))
    grid = _OneHot(idx, 7)
    dense = grid.toarray()
    a = Conv2D(4, (kh, 7), stride=(stride, 1), padding=padding, activation=act, normalize=normalize)
    b = Conv2D(4, (kh, 7), stride=(stride, 1), padding=padding, activation=act, normalize=normalize)
    a.build((1, 9, 7), np.random.default_rng(0), np.float64)
    b.build((1, 9, 7), np.random.default_rng(0), np.float64)
    # "same" and "full" pad the width as well: such a layer densifies the grid (and agrees)
    assert a.accepts_onehot() == (padding == "valid")
    a.params["b"][:] = b.params["b"][:] = rng.standard_normal(4)
    ya, yb = a.forward(grid, training=True), b.forward(dense, training=True)
    np.testing.assert_allclose(ya, yb, atol=1e-12)
    g = rng.standard_normal(ya.shape)
    da = a.backward(g)
    db = b.backward(g)
    if padding == "valid":     # read sparsely: the gradient at the hot cells, (n, h)
        n_, t_ = np.nonzero(idx >= 0)
        hot = np.zeros(idx.shape)
        hot[n_, t_] = db[n_, 0, t_, idx[n_, t_]]
        assert da.shape == idx.shape
        np.testing.assert_allclose(da, hot, atol=1e-12)
    else:
        assert da.shape == dense.shape
    np.testing.assert_allclose(a.grads["W"], b.grads["W"], atol=1e-12)
    np.testing.assert_allclose(a.grads["b"], b.grads["b"], atol=1e-12)


def test_onehot_densified_for_other_first_layers():
    from gridnet import Network
    grid = _OneHot(np.array([[0, 2, -1], [1, 1, 1]]), 3)
    net = Network([MaxPool2D(1), Flatten(), Dense(2)])
    net.build((1, 3, 3), np.random.default_rng(0), np.float64)
    ref = Network([MaxPool2D(1), Flatten(), Dense(2)])
    ref.build((1, 3, 3), np.random.default_rng(0), np.float64)
    np.testing.assert_allclose(net.forward(grid), ref.forward(grid.toarray()))


def test_maxpool_rejects_full_padding():
    # it used to be taken silently as "valid"
    with pytest.raises(ValueError, match="MaxPool2D padding must be 'valid' or 'same'; got 'full'"):
        MaxPool2D(2, padding="full")


@pytest.mark.parametrize("kh,stride,padding", [(1, 1, "valid"), (3, 1, "valid"), (2, 2, "valid")])
def test_conv_onehot_parameter_gradients_by_finite_differences(kh, stride, padding):
    """The one-hot kernel's W and b gradients against finite differences (not only
    against the dense layer)."""
    rng = np.random.default_rng(4)
    grid = _OneHot(rng.integers(-1, 7, size=(3, 9)), 7)
    conv = Conv2D(3, (kh, 7), stride=(stride, 1), padding=padding, activation="relu")
    conv.build((1, 9, 7), rng, np.float64)
    conv.params["b"][:] = rng.standard_normal(3) * 0.1
    assert conv.accepts_onehot()
    y = conv.forward(grid, training=True)
    r = rng.standard_normal(y.shape)
    conv.backward(r)

    def loss():
        return float(np.sum(conv.forward(grid) * r))
    for key in ("W", "b"):
        assert rel_error(conv.grads[key], numeric_grad(loss, conv.params[key])) < 1e-7, key


@pytest.mark.parametrize("rate", [0.3, 0.5])
def test_dropout_backward_by_finite_differences_with_a_fixed_mask(rate):
    """Dropout in training: the same mask for every evaluation (the generator reseeded),
    so the loss is a function of x alone and its gradient can be checked."""
    rng = np.random.default_rng(5)
    layer = Dropout(rate)
    layer.build((4, 3), rng, np.float64)
    x = rng.standard_normal((6, 4, 3))
    r = rng.standard_normal(x.shape)

    def run(training=True):
        layer.set_rng(np.random.default_rng(11))      # the same mask each time
        return layer.forward(x, training=training)
    y = run()
    kept = y != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(y[kept], x[kept] / (1 - rate))     # inverted dropout, by hand
    dx = layer.backward(r)
    numeric = numeric_grad(lambda: float(np.sum(run() * r)), x)
    assert rel_error(dx, numeric) < 1e-8
    np.testing.assert_array_equal(run(training=False), x)          # identity at inference
