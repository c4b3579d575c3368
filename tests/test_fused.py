"""A convolution and the max pooling after it, run together (gridnet.core.fused.ConvPool),
against the two layers run one after the other, and against finite differences."""
import itertools
import pickle

import numpy as np
import pytest

from gradcheck import numeric_grad, rel_error
from gridnet import (Branches, Conv2D, Dense, Flatten, GlobalMaxPool, MaxPool2D, Network,
                     SoftmaxCrossEntropy)
from gridnet.core import ConvMax, ConvPool, kernels


def separate_and_fused(conv, pool, x, gout):
    """(output, dx, dW, db) of the two layers one after the other, then fused."""
    results = []
    for together in (False, True):
        if together:
            step = ConvPool(conv, pool)
            y = step.forward(x, training=True)
            assert step.ran_fused
            dx = step.backward(gout)
        else:
            y = pool.forward(conv.forward(x, training=True), training=True)
            dx = conv.backward(pool.backward(gout))
        results.append((np.array(y), dx, conv.grads["W"].copy(), conv.grads["b"].copy()))
    return results


CASES = list(itertools.product(
    [(1, 8, 8), (3, 7, 9), (2, 20, 21)],    # the last two give ragged edges
    [(3, 3), (2, 3), (1, 3)], ["valid", "same", "full"],
    [(2, 2), (3, 3), (2, 1)], [None, "relu"]))


def _gradient_errors(net, loss, grad, x, y):
    """{name: relative error} of ``net``'s backward pass of ``grad`` (after a training
    forward pass of ``x``) against finite differences of ``loss``, for the input "x"
    and every parameter."""
    dx = net.backward(grad)
    analytic = {"x": dx, **{name: g.copy() for name, _, g in net.parameters()}}

    def f():
        return loss(net.forward(x), y)[0]

    numeric = {"x": numeric_grad(f, x)}
    for name, p, _ in net.parameters():
        numeric[name] = numeric_grad(f, p)
    return {k: rel_error(analytic[k], numeric[k]) for k in numeric}


@pytest.mark.parametrize("in_shape, kernel, padding, window, activation", CASES)
def test_fused_matches_the_two_layers(in_shape, kernel, padding, window, activation):
    rng = np.random.default_rng(0)
    conv = Conv2D(4, kernel, padding=padding, activation=activation, normalize=kernel == (2, 3))
    pool = MaxPool2D(window)
    shape = conv.build(in_shape, np.random.default_rng(1), np.float64)
    if shape[1] < window[0] or shape[2] < window[1]:
        pytest.skip("grid smaller than the pool window")
    pool.build(shape, None)
    conv.params["b"][:] = rng.standard_normal(4)    # bias is added after the maximum
    x = rng.standard_normal((5,) + in_shape)
    assert ConvPool.fusable(conv, pool)      # ragged edges too: the pool drops them
    gout = rng.standard_normal((5,) + pool.out_shape)
    (y1, dx1, dW1, db1), (y2, dx2, dW2, db2) = separate_and_fused(conv, pool, x, gout)
    for a, b in ((y1, y2), (dx1, dx2), (dW1, dW2), (db1, db2)):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


def test_ties_route_the_gradient_once_to_the_first_maximum():
    # a constant input makes every window of the convolution's output a four-way tie
    conv, pool = Conv2D(2, 3, padding="valid", activation="relu"), MaxPool2D(2)
    pool.build(conv.build((1, 6, 6), np.random.default_rng(0), np.float64), None)
    conv.params["b"][:] = 1.0                  # positive: the ReLU passes the gradient
    x = np.ones((3, 1, 6, 6))
    gout = np.random.default_rng(1).standard_normal((3, 2, 2, 2))
    (y1, dx1, dW1, db1), (y2, dx2, dW2, db2) = separate_and_fused(conv, pool, x, gout)
    np.testing.assert_allclose(dW2, dW1, rtol=1e-12)
    np.testing.assert_allclose(dx2, dx1, rtol=1e-12)
    # one route per window: dW of a constant input is the sum of the gradients, not 4x
    np.testing.assert_allclose(dW2.sum(axis=1), 9 * gout.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_chunked_batches_give_the_same_result():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 2, 8, 8)).astype(np.float32)
    gout = rng.standard_normal((9, 5, 4, 4)).astype(np.float32)
    out = []
    for chunk_bytes in (2**25, 4000):           # one chunk; a few samples per chunk
        conv = Conv2D(5, 3, padding="same", activation="relu", chunk_bytes=chunk_bytes)
        pool = MaxPool2D(2)
        pool.build(conv.build((2, 8, 8), np.random.default_rng(1)), None)
        step = ConvPool(conv, pool)
        y = step.forward(x, training=True)
        dx = step.backward(gout)
        out.append((np.array(y), dx, conv.grads["W"].copy()))
    assert len(step._chunks(9, 4)) > 1
    for a, b in zip(*out):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("conv, pool", [
    (Conv2D(2, 3, stride=2), MaxPool2D(2)),                 # strided convolution
    (Conv2D(2, 3, padding="same"), MaxPool2D(3, 2)),        # overlapping windows
    (Conv2D(2, 3, padding="same"), MaxPool2D(2, padding="same")),   # padded pool
])
def test_pairs_that_do_not_tile_run_separately(conv, pool):
    shape = conv.build((1, 9, 9), np.random.default_rng(0))
    pool.build(shape, None)
    assert not ConvPool.fusable(conv, pool)
    with pytest.raises(ValueError, match="cannot run as one fused step"):
        ConvPool(conv, pool)


def test_network_with_fused_pairs_passes_a_finite_difference_check():
    rng = np.random.default_rng(0)
    net = Network([
        Conv2D(3, 3, padding="same", activation="relu"), MaxPool2D(2),
        Branches([[Conv2D(2, (2, 2), padding="same"), MaxPool2D((2, 1)), GlobalMaxPool("both")],
                  [Conv2D(2, 3, padding="full", activation="relu"), MaxPool2D(3),
                   GlobalMaxPool("both")]]),
        Flatten(), Dense(3),
    ])
    net.build((2, 8, 8), rng, dtype=np.float64)
    x = rng.standard_normal((3, 2, 8, 8))
    y = np.array([0, 2, 1])
    loss = SoftmaxCrossEntropy()
    _, grad = loss(net.forward(x, training=True), y)
    fused_steps = [net.steps[0]] + [steps[0] for steps in net.layers[2].steps]
    assert all(isinstance(s, ConvPool) and s.ran_fused for s in fused_steps)
    errors = _gradient_errors(net, loss, grad, x, y)
    assert max(errors.values()) < 1e-6, errors


def test_building_again_for_another_shape_is_seen():
    net = Network([Conv2D(3, 3, padding="same", activation="relu"), MaxPool2D(2)])
    rng = np.random.default_rng(0)
    for shape in ((1, 8, 8), (2, 6, 10)):
        net.build(shape, np.random.default_rng(1))
        x = rng.standard_normal((2,) + shape).astype(np.float32)
        expected = net.layers[1].forward(net.layers[0].forward(x))
        np.testing.assert_allclose(net.forward(x), expected, rtol=1e-5, atol=1e-6)


def test_a_network_pickles_after_a_fused_pass():
    net = Network([Conv2D(3, 3, padding="same", activation="relu"), MaxPool2D(2), Flatten(), Dense(2)])
    net.build((1, 6, 6), np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((4, 1, 6, 6)).astype(np.float32)
    net.forward(x, training=True)
    assert net.steps[0].ran_fused
    clone = pickle.loads(pickle.dumps(net))
    assert not clone.steps[0].ran_fused and clone.steps[0].conv is clone.layers[0]
    np.testing.assert_array_equal(clone.forward(x), net.forward(x))


# -- a convolution and a max over all its positions (ConvMax) -----------------------------
def separate_and_fused_max(conv, pool, x, gout, input_grad=True, kernels=None):
    """(output, dx, dW, db) of the two layers one after the other, then fused (by
    ``kernels``, None: the default)."""
    results = []
    for together in (False, True):
        if together:
            step = ConvMax(conv, pool)
            step.kernels = kernels
            y = step.forward(x, training=True)
            assert step.ran_fused
            dx = step.backward(gout, input_grad)
        else:
            y = pool.forward(conv.forward(x, training=True), training=True)
            dx = conv.backward(pool.backward(gout), input_grad)
        results.append((np.array(y), dx, conv.grads["W"].copy(), conv.grads["b"].copy()))
    return results


MAX_CASES = [   # (in_shape, kernel, padding, axis): the conv kernel each one picks
    ((1, 12, 7), (3, 7), "valid", "height", "WindowKernel"),   # a sentence grid, dense
    ((5, 9, 1), (3, 1), "same", "height", "OffsetKernel"),     # the text preset's branch
    ((2, 6, 6), (3, 3), "same", "both", "ShiftKernel"),        # junk columns in the buffer
    ((2, 1, 9), (1, 3), "full", "width", "ShiftKernel"),
    ((2, 7, 7), (2, 2), "valid", "both", "ShiftKernel"),
    ((1, 4, 4), (3, 3), "valid", "both", "WindowKernel"),      # kernel larger than output
]


@pytest.mark.parametrize("in_shape, kernel, padding, axis, kind", MAX_CASES)
@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("normalize", [False, True])
def test_conv_max_matches_the_two_layers(in_shape, kernel, padding, axis, kind, activation,
                                         normalize):
    rng = np.random.default_rng(0)
    conv = Conv2D(4, kernel, padding=padding, activation=activation, normalize=normalize)
    pool = GlobalMaxPool(axis)
    pool.build(conv.build(in_shape, np.random.default_rng(1), np.float64), None)
    assert type(conv.kernel).__name__ == kind
    conv.params["b"][:] = rng.standard_normal(4)    # bias is added after the maximum
    assert ConvMax.fusable(conv, pool)
    x = rng.standard_normal((5,) + in_shape)
    gout = rng.standard_normal((5,) + pool.out_shape)
    for input_grad in (True, False):
        (y1, dx1, dW1, db1), (y2, dx2, dW2, db2) = separate_and_fused_max(conv, pool, x, gout,
                                                                          input_grad)
        pairs = [(y1, y2), (dW1, dW2), (db1, db2)] + ([(dx1, dx2)] if input_grad else [])
        for a, b in pairs:
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
        assert (dx2 is None) == (not input_grad)


def _padded_sentences(rng, n_channels, h):
    """(8, c, h, 1) vectors with zero rows where a sentence grid has padding: at the
    end, at the start, in a gap, none, everywhere, all but the first or last, every
    other row."""
    x = rng.standard_normal((8, n_channels, h, 1))
    x[0, :, 4:] = 0
    x[1, :, :3] = 0
    x[2, :, 3:5] = 0
    x[4] = 0
    x[5, :, 1:] = 0
    x[6, :, :-1] = 0
    x[7, :, ::2] = 0
    return x


#: the kernels a test can ask for: numba's where they are loaded
KERNELS = ["numpy"] + (["numba"] if kernels._numba is not None else [])


@pytest.mark.parametrize("k, padding", [(2, "same"), (3, "same"), (4, "same"), (5, "same"),
                                        (3, "valid"), (3, "full"), (1, "valid")])
@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("name", KERNELS)
def test_conv_max_over_the_words_only_matches_the_two_layers(k, padding, activation, name):
    rng = np.random.default_rng(k)
    conv = Conv2D(6, (k, 1), padding=padding, activation=activation)
    pool = GlobalMaxPool("height")
    pool.build(conv.build((5, 9, 1), np.random.default_rng(1), np.float64), None)
    conv.params["W"][:3] = -np.abs(conv.params["W"][:3])   # the padding's 0 often wins
    conv.params["b"][:] = rng.standard_normal(6)
    x = np.abs(_padded_sentences(rng, 5, 9))
    gout = rng.standard_normal((8, 6, 1, 1))
    step = ConvMax(conv, pool)
    step.kernels = name
    step.forward(x, training=True)
    assert step._cache["ragged"] is not None          # the words-only path ran
    # the padding's 0 beats the words' negative sums, at its first position (0)
    assert (step._cache["at"][6, :3] == 0).all() and (step._cache["at"][4] == 0).all()
    step.backward(gout)
    for input_grad in (True, False):
        (y1, dx1, dW1, db1), (y2, dx2, dW2, db2) = separate_and_fused_max(
            conv, pool, x, gout, input_grad, name)
        pairs = [(y1, y2), (dW1, dW2), (db1, db2)] + ([(dx1, dx2)] if input_grad else [])
        for a, b in pairs:
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", KERNELS)
def test_conv_max_over_the_words_only_finds_the_first_nan_and_keeps_the_input(name):
    rng = np.random.default_rng(0)
    conv, pool = Conv2D(4, (3, 1), padding="same"), GlobalMaxPool("height")
    pool.build(conv.build((2, 9, 1), np.random.default_rng(1), np.float64), None)
    x = _padded_sentences(rng, 2, 9)
    x[0, 1, 2] = np.nan
    before = x.copy()
    expected = pool.forward(conv.forward(x))
    step = ConvMax(conv, pool)
    step.kernels = name
    y = step.forward(x, training=True)
    assert step._cache["ragged"] is not None
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    assert np.isnan(y[0]).all() and not np.isnan(y[1:]).any()
    np.testing.assert_array_equal(x, before)


def test_conv_max_ties_route_the_gradient_once_to_the_first_maximum():
    # a constant input: every position of a feature holds the same value
    conv, pool = Conv2D(3, (2, 5), activation="relu"), GlobalMaxPool("height")
    pool.build(conv.build((1, 6, 5), np.random.default_rng(0), np.float64), None)
    conv.params["b"][:] = 1.0
    x = np.ones((4, 1, 6, 5))
    gout = np.random.default_rng(1).standard_normal((4, 3, 1, 1))
    (y1, dx1, dW1, db1), (y2, dx2, dW2, db2) = separate_and_fused_max(conv, pool, x, gout)
    np.testing.assert_allclose(dW2, dW1, rtol=1e-12)
    np.testing.assert_allclose(dx2, dx1, rtol=1e-12)
    # the first window only: rows 0-1 of each sample get the gradient, the rest none
    assert np.abs(dx2[:, :, :2]).sum() > 0 and not dx2[:, :, 2:].any()
    np.testing.assert_allclose(dW2.sum(axis=1), 10 * gout.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_inference_runs_in_cache_sized_chunks_with_the_same_bits(monkeypatch):
    from gridnet.core import fused
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 2, 8, 8)).astype(np.float32)
    conv = Conv2D(5, 3, padding="same", activation="relu")    # one chunk when training
    pool = MaxPool2D(2)
    pool.build(conv.build((2, 8, 8), np.random.default_rng(1)), None)
    step = ConvPool(conv, pool)
    whole = np.array(step.forward(x, training=True))
    monkeypatch.setattr(fused, "INFERENCE_CHUNK_BYTES", 4000)
    assert len(step._chunks(9, 4, training=True)) == 1 and len(step._chunks(9, 4, False)) > 1
    np.testing.assert_array_equal(step.forward(x), whole)
    np.testing.assert_allclose(whole, pool.forward(conv.forward(x)), rtol=1e-5, atol=1e-6)


def test_conv_max_chunked_batches_give_the_same_result():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 1, 10, 6)).astype(np.float32)
    gout = rng.standard_normal((9, 5, 1, 1)).astype(np.float32)
    out = []
    for chunk_bytes in (2**25, 600):
        conv = Conv2D(5, (3, 6), activation="relu", chunk_bytes=chunk_bytes)
        pool = GlobalMaxPool("height")
        pool.build(conv.build((1, 10, 6), np.random.default_rng(1)), None)
        step = ConvMax(conv, pool)
        y = step.forward(x, training=True)
        dx = step.backward(gout)
        out.append((np.array(y), dx, conv.grads["W"].copy(), conv.grads["b"].copy()))
    for a, b in zip(*out):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_a_max_over_one_axis_of_a_grid_is_not_fused():
    conv, pool = Conv2D(2, 3, padding="same"), GlobalMaxPool("height")
    pool.build(conv.build((1, 6, 6), np.random.default_rng(0)), None)
    assert not ConvMax.fusable(conv, pool)           # (n, 2, 1, 6): positions remain
    with pytest.raises(ValueError, match="cannot run as one fused step"):
        ConvMax(conv, pool)
    net = Network([Conv2D(2, 3, padding="same"), GlobalMaxPool("height"), Flatten(), Dense(2)])
    net.build((1, 6, 6), np.random.default_rng(0))
    assert not any(isinstance(s, ConvMax) for s in net.steps)


def test_a_one_hot_grid_runs_the_two_layers():
    from test_layers import _OneHot
    grid = _OneHot([[0, 2, 1, -1], [3, 3, 0, 1]], 4)
    conv, pool = Conv2D(3, (2, 4), activation="relu"), GlobalMaxPool("height")
    pool.build(conv.build((1, 4, 4), np.random.default_rng(0), np.float64), None)
    expected = pool.forward(conv.forward(grid.toarray()))
    step = ConvMax(conv, pool)
    y = step.forward(grid, training=True)
    assert not step.ran_fused and conv._ran is conv.onehot_kernel
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    step.backward(np.ones_like(y))
    assert conv.grads["W"].any()


def test_sentence_cnn_with_fused_max_passes_a_finite_difference_check():
    rng = np.random.default_rng(0)
    net = Network([
        Conv2D(4, (1, 6)),                   # word vectors: (n, 4, 7, 1)
        Branches([[Conv2D(3, (k, 1), padding="same", activation="relu"), GlobalMaxPool("height")]
                  for k in (2, 3)] + [[Conv2D(2, (2, 1), normalize=True), GlobalMaxPool("both")]]),
        Flatten(), Dense(3),
    ])
    net.build((1, 7, 6), rng, dtype=np.float64)
    x = rng.standard_normal((3, 1, 7, 6))
    y = np.array([0, 2, 1])
    loss = SoftmaxCrossEntropy()
    _, grad = loss(net.forward(x, training=True), y)
    fused = [steps[0] for steps in net.layers[1].steps]
    assert all(isinstance(s, ConvMax) and s.ran_fused for s in fused) and len(fused) == 3
    errors = _gradient_errors(net, loss, grad, x, y)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("name", KERNELS)
def test_words_only_max_passes_a_finite_difference_check(name):
    # word vectors with padding rows (zero, as Embedding gives them), straight into the
    # branches: only the positions a word reaches are computed
    rng = np.random.default_rng(2)
    net = Network([
        Branches([[Conv2D(3, (k, 1), padding="same", activation="relu"), GlobalMaxPool("height")]
                  for k in (2, 3)] + [[Conv2D(2, (2, 1), normalize=True), GlobalMaxPool("both")]]),
        Flatten(), Dense(3),
    ])
    net.build((4, 9, 1), rng, dtype=np.float64)
    x = _padded_sentences(rng, 4, 9)[[0, 1, 2, 5, 6, 7]]
    y = np.array([0, 2, 1, 1, 0, 2])
    loss = SoftmaxCrossEntropy()
    fused = [steps[0] for steps in net.layers[0].steps]
    for step in fused:
        step.kernels = name
        b = step.conv.params["b"]
        b[:] = rng.standard_normal(b.shape)          # away from ReLU's kink at 0
    _, grad = loss(net.forward(x, training=True), y)
    assert all(isinstance(s, ConvMax) and s._cache["ragged"] is not None for s in fused)
    dx = net.backward(grad)
    errors = {name: rel_error(g.copy(), numeric_grad(lambda: loss(net.forward(x), y)[0], p))
              for name, p, g in net.parameters()}
    # the input's words only: every window of padding ties at 0, a kink (Embedding keeps
    # padding at 0 and drops its gradient)
    words = np.broadcast_to((x != 0).any(axis=1, keepdims=True), x.shape)
    errors["x"] = rel_error(dx[words], numeric_grad(lambda: loss(net.forward(x), y)[0], x)[words])
    assert max(errors.values()) < 1e-6, errors

def test_a_network_pickles_after_a_fused_max_pass():
    net = Network([Branches([[Conv2D(3, (2, 5), activation="relu"), GlobalMaxPool()]]),
                   Flatten(), Dense(2)])
    net.build((1, 6, 5), np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((4, 1, 6, 5)).astype(np.float32)
    net.forward(x, training=True)
    step = net.layers[0].steps[0][0]
    assert step.ran_fused
    clone = pickle.loads(pickle.dumps(net))
    cstep = clone.layers[0].steps[0][0]
    assert not cstep.ran_fused and cstep.conv is clone.layers[0].branches[0][0]
    np.testing.assert_array_equal(clone.forward(x), net.forward(x))
