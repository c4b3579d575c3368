"""The embedding lookup with a fixed table (gridnet.core.embedding): finite differences,
the one-hot path against the dense product, shared unknown vector, fixed vectors."""
import numpy as np
import pytest
from gradcheck import check_layer, numeric_grad, rel_error
from test_layers import _OneHot

from gridnet.core import Adam, Embedding, Network, Dense, Flatten, kernels, layer_from_config
from gridnet.core.stack import layer_config


def _built(trained, fixed_dim, w=7, h=5, seed=0):
    rng = np.random.default_rng(seed)
    e = Embedding(3, trained=trained, fixed_dim=fixed_dim)
    e.build((1, h, w), rng, dtype=np.float64)
    if fixed_dim:
        e.buffers["fixed"][...] = rng.standard_normal((w, fixed_dim))
    return e, rng


@pytest.mark.parametrize("trained,fixed_dim", [(None, 0), (4, 0), (4, 2), (1, 3)])
def test_dense_gradients_by_finite_differences(trained, fixed_dim):
    check_layer(Embedding(3, trained=trained, fixed_dim=fixed_dim), (1, 5, 7), n=3)
    e, rng = _built(trained, fixed_dim)          # again with fixed vectors that are not 0
    fixed = {k: b.copy() for k, b in e.buffers.items()}
    x = rng.standard_normal((3, 1, 5, 7))
    r = rng.standard_normal(e.forward(x).shape)
    e.forward(x, training=True)
    dx = e.backward(r.copy())

    def loss():
        return float(np.sum(e.forward(x) * r))
    assert rel_error(dx, numeric_grad(loss, x)) < 1e-7
    assert rel_error(e.grads["W"], numeric_grad(loss, e.params["W"])) < 1e-7
    # the buffers are never touched by a pass, and have no gradient
    assert set(e.grads) == {"W"}
    for k, b in e.buffers.items():
        np.testing.assert_array_equal(b, fixed[k])


@pytest.mark.parametrize("trained,fixed_dim", [(None, 0), (4, 2), (2, 1)])
def test_onehot_path_matches_the_dense_product_and_finite_differences(trained, fixed_dim):
    e, rng = _built(trained, fixed_dim)
    idx = np.array([[0, 6, 3, -1, -1], [5, 1, 1, 4, 2], [-1, -1, -1, -1, -1]])
    grid = _OneHot(idx, 7)
    out = e.forward(grid, training=True)
    r = rng.standard_normal(out.shape)
    dx = e.backward(r.copy())
    dW = e.grads["W"].copy()
    dense = e.forward(grid.toarray(), training=True)
    np.testing.assert_allclose(out, dense, rtol=0, atol=1e-12)
    ddx = e.backward(r.copy())
    np.testing.assert_allclose(dW, e.grads["W"], rtol=0, atol=1e-12)
    # the gradient at each hot cell is the dense gradient there (0 for padding)
    hot = np.where(idx >= 0, np.take_along_axis(ddx[:, 0], np.maximum(idx, 0)[..., None], 2)[..., 0], 0)
    np.testing.assert_allclose(dx, hot, rtol=0, atol=1e-12)
    W = e.params["W"]
    numeric = numeric_grad(lambda: float(np.sum(e.forward(grid) * r)), W)
    assert rel_error(dW, numeric) < 1e-7


@pytest.mark.skipif(kernels._numba is None, reason="numba's kernels are not available")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_compiled_weight_gradient_agrees_to_the_bit_with_the_csr_product(dtype, monkeypatch):
    calls = []
    monkeypatch.setattr(kernels, "_embedding_dw_nb",
                        lambda *a, _fn=kernels._embedding_dw_nb: (calls.append(1), _fn(*a)))
    rng = np.random.default_rng(1)
    e = Embedding(4, trained=5, fixed_dim=2)
    e.build((1, 6, 9), rng, dtype=dtype)
    idx = rng.integers(-1, 9, (8, 6))             # padding, and words past the trained ones
    idx[2] = 3                                    # one word at every position: sums
    grid = _OneHot(idx, 9)
    # a convolution's input gradient is a transposed view of its (c, n, h, 1) buffer
    r = rng.standard_normal((6, 8, 6, 1)).astype(dtype).transpose(1, 0, 2, 3)
    out = {}
    for name in ("numba", "numpy"):
        e.kernels = name
        e.forward(grid, training=True)
        out[name] = (e.backward(r), e.grads["W"].copy())
    for a, b in zip(*out.values()):
        np.testing.assert_array_equal(a, b)
    assert out["numba"][1].shape == (4, 5) and np.abs(out["numba"][1]).sum() > 0
    assert len(calls) == 1


@pytest.mark.skipif(kernels._numba is None, reason="numba's kernels are not available")
def test_the_compiled_lookup_converts_every_half_as_numpy_does(monkeypatch):
    calls = []
    monkeypatch.setattr(kernels, "_embedding_rows_nb",
                        lambda *a, _fn=kernels._embedding_rows_nb: (calls.append(1), _fn(*a)))
    halves = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)  # NaN, inf, subnormals
    w, h = 2**16, 8
    e = Embedding(3, trained=100, fixed_dim=2)
    e.build((1, h, w), np.random.default_rng(0))
    e.buffers["fixed"][:, 0] = halves
    e.buffers["fixed"][:, 1] = halves[::-1]
    idx = np.arange(w).reshape(-1, h)
    idx[::7, 5:] = -1                                  # padding
    out = {}
    for name in ("numba", "numpy"):
        e.kernels = name
        out[name] = e.forward(_OneHot(idx, w), training=True)
    a, b = (np.ascontiguousarray(o).view(np.uint32) for o in out.values())
    np.testing.assert_array_equal(a, b)                # the bits, NaN payloads included
    assert out["numba"].shape == (len(idx), 5, h, 1) and len(calls) == 1
    first = np.ascontiguousarray(out["numba"][:, 3, :, 0]).view(np.uint32)     # (n, h)
    want = np.where(idx >= 0, halves.astype(np.float32).view(np.uint32)[idx], 0)
    np.testing.assert_array_equal(first, want)


@pytest.mark.skipif(kernels._numba is None, reason="numba's kernels are not available")
@pytest.mark.parametrize("fixed_dim", [0, 2])
def test_batch_after_batch_the_compiled_passes_match_numpys(fixed_dim):
    # the weight gradient's buffer is reused: the columns of the batch before go back to 0
    rng = np.random.default_rng(2)
    nets = {}
    for name in ("numba", "numpy"):
        e = Embedding(4, trained=6, fixed_dim=fixed_dim)
        e.build((1, 5, 9), np.random.default_rng(0))
        if fixed_dim:
            e.buffers["fixed"][...] = np.random.default_rng(1).standard_normal((9, fixed_dim))
        e.kernels = name
        nets[name] = e
    for _ in range(4):
        grid = _OneHot(rng.integers(-1, 9, (6, 5)), 9)
        r = rng.standard_normal((6, 4 + fixed_dim, 5, 1)).astype(np.float32)
        out = {name: (e.forward(grid, training=True).copy(), e.backward(r), e.grads["W"].copy())
               for name, e in nets.items()}
        for a, b in zip(*out.values()):
            np.testing.assert_array_equal(a, b)


def test_fixed_vectors_of_another_dtype_are_looked_up_by_numpy_not_reinterpreted():
    e = Embedding(2, trained=3, fixed_dim=2)
    e.build((1, 4, 6), np.random.default_rng(0))
    e.buffers["fixed"] = np.arange(12, dtype=np.float32).reshape(6, 2) / 4   # not float16
    out = e.forward(_OneHot(np.array([[1, 5, -1, 4]]), 6))[0, 2:, :, 0]
    np.testing.assert_array_equal(out, [[0.5, 2.5, 0, 2], [0.75, 2.75, 0, 2.25]])
    with pytest.raises(TypeError, match="float16 fixed"):
        kernels.embedding_rows(e.params["W"], e.buffers["fixed"], np.zeros((1, 4), int), 3,
                               np.empty((1, 4, 4), np.float32))


def test_columns_past_trained_share_the_unknown_vector_and_keep_their_fixed_one():
    e, _ = _built(trained=3, fixed_dim=2)
    out = e.forward(_OneHot(np.array([[0, 4, 5, 2, -1]]), 7))[0, :, :, 0]    # (D, h)
    W, F = e.params["W"], e.buffers["fixed"].astype(np.float64)
    for t, j in enumerate([0, 4, 5]):
        np.testing.assert_array_equal(out[:3, t], W[:, 0])     # the unknown word's vector
        np.testing.assert_array_equal(out[3:, t], F[j])        # but its own fixed one
    np.testing.assert_array_equal(out[:3, 3], W[:, 2])
    assert not out[:, 4].any()                                 # padding: zeros
    assert not np.array_equal(out[3:, 1], out[3:, 2])


def test_an_optimizer_leaves_the_fixed_vectors_alone_and_they_travel_with_the_weights():
    net = Network([Embedding(4, trained=3, fixed_dim=2), Flatten(), Dense(2)])
    net.build((1, 3, 6), np.random.default_rng(0))
    fixed = net.layers[0].buffers["fixed"]
    fixed[...] = np.arange(12, dtype=np.float16).reshape(6, 2)
    before = fixed.copy()
    grid = _OneHot(np.array([[1, 4, 5], [0, 2, -1]]), 6)
    opt = Adam(0.1)
    for _ in range(3):
        out = net.forward(grid, training=True)
        net.backward(np.ones_like(out), input_grad=False)
        opt.step(net.parameters())
    np.testing.assert_array_equal(fixed, before)
    assert "0.fixed" in net.get_weights() and "0.fixed" not in {n for n, _, _ in net.parameters()}
    again = Network([layer_from_config(layer_config(layer)) for layer in net.layers])
    again.build((1, 3, 6), np.random.default_rng(1))
    again.set_weights(net.get_weights())
    np.testing.assert_array_equal(again.forward(grid), net.forward(grid))


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="trained=9 columns, but the grid has only 7"):
        Embedding(2, trained=9).build((1, 4, 7), np.random.default_rng(0))
    with pytest.raises(ValueError, match="one-channel word grids"):
        Embedding(2).build((3, 4, 7), np.random.default_rng(0))
