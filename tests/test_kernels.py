"""The compiled kernels (gridnet.core.kernels, numba) against their numpy twins: the same
numbers to the bit, through a whole network and Adam's steps; the compiled path is the
one that runs by default; GRIDNET_KERNELS=numpy runs the other."""
import os
import subprocess
import sys

import numpy as np
import pytest

from gradcheck import numeric_grad, rel_error
from gridnet import (Adam, Branches, Conv2D, Dense, Flatten, GlobalMaxPool, MaxPool2D, Network,
                     SoftmaxCrossEntropy)
from gridnet.core import ConvMax, ConvPool, kernels

BOTH = ["numba", "numpy"]
NUMPY_ASKED = os.environ.get("GRIDNET_KERNELS", "").strip().lower() == "numpy"
# what compares the two, or spies on the compiled one, needs numba's kernels loaded
compiled = pytest.mark.skipif(kernels._numba is None, reason="numba's kernels are not "
                              "loaded (GRIDNET_KERNELS=numpy is set)")


def test_numba_is_what_runs_by_default():
    # numba is a dependency (pyproject), so the compiled kernels are the default
    assert kernels.backend() == ("numpy" if NUMPY_ASKED else "numba")


def _windows(rng, f, k, L, dtype, ties):
    if ties:      # small integers: many windows hold their maximum at several offsets
        return rng.integers(-2, 3, (f, k * L)).astype(dtype)
    return rng.standard_normal((f, k * L)).astype(dtype)


@compiled
def test_the_compiled_im2col_reads_an_input_of_any_strides():
    # a batch seen through a view (a transposed array, every other sample) gives the
    # columns of its contiguous copy
    rng = np.random.default_rng(3)
    x = rng.standard_normal((10, 9, 8, 2)).astype(np.float32).transpose(0, 3, 2, 1)[::2]
    assert not x.flags.c_contiguous
    conv = Conv2D(4, 3, padding="same")
    pool = MaxPool2D(2)
    pool.build(conv.build(x.shape[1:], np.random.default_rng(1)), None)
    step = ConvPool(conv, pool)
    step.kernels = "numba"
    cols = step._im2col(x, "a").copy()
    np.testing.assert_array_equal(cols, step._im2col(np.ascontiguousarray(x), "b"))
    step.kernels = "numpy"
    np.testing.assert_array_equal(cols, step._im2col(x, "c"))


@compiled
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [2, 3, 4, 9, 300])     # 300 offsets: more than a byte numbers
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_pool_kernels_agree_to_the_bit(dtype, k, relu, ties):
    rng = np.random.default_rng(k)
    f, L = 5, 37
    y = _windows(rng, f, k, L, dtype, ties)
    b = rng.standard_normal(f).astype(dtype)
    gc = rng.standard_normal((f, L)).astype(dtype)
    res = {}
    for name in BOTH:
        out = np.full((f, L), np.nan, dtype)
        arg = np.full((f, L), 255, kernels.argmax_dtype(k))
        kernels.pool_forward(y, k, b, relu, out, arg, name)
        alone = np.full((f, L), np.nan, dtype)     # inference: no offsets kept
        kernels.pool_forward(y, k, b, relu, alone, None, name)
        g, gcn = np.full((f, k * L), np.nan, dtype), gc.copy()
        kernels.pool_route(gcn, out, arg, k, relu, g, name)
        res[name] = (out, arg, alone, g, gcn)
    for a, c in zip(*res.values()):
        np.testing.assert_array_equal(a, c)
    out, arg, alone, g, gcn = res["numba"]
    yv = y.reshape(f, k, L)
    mx = yv.max(axis=1)
    expected = mx + b[:, None]
    np.testing.assert_array_equal(out, np.maximum(expected, 0) if relu else expected)
    np.testing.assert_array_equal(alone, out)
    # the offset kept is the first that holds the maximum (ties: the earliest)
    first = (yv == mx[:, None]).argmax(axis=1)
    np.testing.assert_array_equal(arg, first)
    if ties:
        assert (np.sum(yv == mx[:, None], axis=1) > 1).any()     # ties were there to break
    # each window's gradient reaches exactly that offset
    gv = g.reshape(f, k, L)
    np.testing.assert_array_equal(np.take_along_axis(gv, first[:, None], 1)[:, 0], gcn)
    assert np.count_nonzero(gv) == np.count_nonzero(gcn)
    if relu:
        np.testing.assert_array_equal(gcn, np.where(out > 0, gc, 0))


@compiled
def test_pool_kernels_take_a_chunk_of_columns():
    # a chunk of a batch is a block of columns of (f, n*P): a view with a row stride
    rng = np.random.default_rng(0)
    f, k, L = 3, 4, 20
    y = rng.standard_normal((f, k * L)).astype(np.float32)
    b = np.zeros(f, np.float32)
    for name in BOTH:
        whole = np.zeros((f, 3 * L), np.float32)
        arg = np.full((f, 3 * L), 9, np.uint8)
        kernels.pool_forward(y, k, b, True, whole[:, L:2 * L], arg[:, L:2 * L], name)
        np.testing.assert_array_equal(whole[:, L:2 * L],
                                      np.maximum(y.reshape(f, k, L).max(axis=1), 0))
        np.testing.assert_array_equal(arg[:, L:2 * L], y.reshape(f, k, L).argmax(axis=1))
        assert not whole[:, :L].any() and not whole[:, 2 * L:].any()
        assert (arg[:, :L] == 9).all() and (arg[:, 2 * L:] == 9).all()


def test_argmax_dtype_numbers_every_offset():
    assert kernels.argmax_dtype(4) == np.uint8 and kernels.argmax_dtype(256) == np.uint8
    assert np.iinfo(kernels.argmax_dtype(257)).max >= 256


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_an_offset_array_that_cannot_number_the_window_is_refused(dtype):
    # 300 offsets in a byte would wrap around silently; a signed array is not the contract
    f, k, L = 2, 300, 3
    y = np.zeros((f, k * L), np.float32)
    out, arg = np.empty((f, L), np.float32), np.empty((f, L), dtype)
    for name in BOTH:
        with pytest.raises(ValueError, match="cannot number 300 window offsets"):
            kernels.pool_forward(y, k, np.zeros(f, np.float32), False, out, arg, name)


@compiled
@pytest.mark.parametrize("hq, wq", [(4, 6), (3, 5), (5, 5)])
def test_grid_from_puts_a_gradient_of_any_strides_in_its_layout(hq, wq):
    # the values at their places and zeros beyond, over a buffer full of garbage
    rng = np.random.default_rng(hq * wq)
    grad = rng.standard_normal((3, 5, 2, 4)).astype(np.float32).transpose(1, 2, 0, 3)
    assert not grad.flags.c_contiguous          # (5, 2, 3, 4) seen through a view
    res = {}
    for name in BOTH:
        gq = np.full((2, 5, hq, wq), np.nan, np.float32)
        res[name] = kernels.grid_from(grad, gq, name)
    np.testing.assert_array_equal(res["numba"], res["numpy"])
    gq = res["numba"]
    ho, wo = grad.shape[2:]
    np.testing.assert_array_equal(gq[:, :, :ho, :wo], grad.transpose(1, 0, 2, 3))
    assert not gq[:, :, ho:].any() and not gq[:, :, :, wo:].any()
    with pytest.raises(ValueError, match="layout"):     # never a write out of bounds
        kernels.grid_from(grad, np.empty((2, 5, 2, wq), np.float32))


@compiled
@pytest.mark.parametrize("in_shape, kernel, padding, window, chunk_bytes", [
    ((3, 7, 9), (3, 3), "same", (2, 2), 2**25),     # ragged edges: the pool drops a row
    ((2, 20, 21), (2, 3), "valid", (3, 3), 2**25),
    ((1, 1, 64), (1, 5), "same", (1, 2), 2**25),    # the locality probe's strip
    ((4, 8, 8), (3, 3), "full", (2, 1), 3000),      # a few samples per chunk
])
def test_a_fused_pair_gives_the_same_bits_with_either_kernels(in_shape, kernel, padding,
                                                              window, chunk_bytes):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7,) + in_shape).astype(np.float32)
    res = {}
    for name in BOTH:
        conv = Conv2D(5, kernel, padding=padding, activation="relu", chunk_bytes=chunk_bytes)
        pool = MaxPool2D(window)
        pool.build(conv.build(in_shape, np.random.default_rng(1)), None)
        conv.params["b"][:] = 0.1          # some outputs positive, some not
        step = ConvPool(conv, pool)
        step.kernels = name
        y = step.forward(x, training=True)
        gout = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
        dx = step.backward(gout)
        res[name] = (np.array(y), dx, conv.grads["W"].copy(), conv.grads["b"].copy())
    assert chunk_bytes > 2**20 or len(step._chunks(7, 4)) > 1
    for a, b in zip(*res.values()):
        np.testing.assert_array_equal(a, b)


def _global_max_both(y):
    """global_max of ``y`` (m, f, h, w) by numba and by numpy, equal to the bit -> numba's."""
    m, f = y.shape[:2]
    res = {}
    for name in BOTH:
        mx, at = np.empty((m, f), y.dtype), np.empty((m, f), np.int64)
        res[name] = kernels.global_max(y, mx, at, name)
    for a, b in zip(*res.values()):
        np.testing.assert_array_equal(a, b)
    return res["numba"]


@compiled
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_global_max_agrees_to_the_bit(dtype, ties):
    rng = np.random.default_rng(3)
    m, P, f = 6, 13, 7
    buf = (rng.integers(-2, 3, (m, P, f)) if ties else rng.standard_normal((m, P, f))).astype(dtype)
    buf[2, 4, 1] = buf[2, 9, 1] = np.nan          # the first NaN wins, as in argmax
    buf[3, 0, 2] = np.nan
    y = buf.reshape(m, P, 1, f).transpose(0, 3, 1, 2)   # (m, f, P, 1): a WindowKernel's view
    mx, at = _global_max_both(y)
    np.testing.assert_array_equal(at, y.reshape(m, f, P).argmax(axis=2))
    assert at[2, 1] == 4 and at[3, 2] == 0 and np.isnan(mx[2, 1])


@compiled
@pytest.mark.parametrize("positions_first", [True, False])
def test_sparse_gradients_agree_to_the_bit(positions_first):
    rng = np.random.default_rng(4)
    m, P, f, K = 5, 11, 6, 9
    r = rng.integers(0, P, (m, f)) + (np.arange(m) * P)[:, None]
    r[1, :3] = r[1, 4]                 # several features' maxima at one position
    g = rng.standard_normal((m, f)).astype(np.float32)
    g[0, 2] = 0
    W = rng.standard_normal((f, K)).astype(np.float32)
    shape = (m * P, K) if positions_first else (K, m * P)
    cols = rng.standard_normal(shape).astype(np.float32)
    res = {}
    for name in BOTH:
        dW = np.full((f, K), 0.5, np.float32)        # accumulates
        kernels.sparse_dw(cols, positions_first, r, g, dW, name)
        dcols = np.zeros(shape, np.float32)
        kernels.sparse_dcols(r, g, W, dcols, positions_first, name)
        res[name] = (dW, dcols)
    for a, b in zip(*res.values()):
        np.testing.assert_array_equal(a, b)
    # against the dense products of a gradient with one entry per sample and feature
    dense = np.zeros((m * P, f), np.float64)
    for n in range(m):
        dense[r[n], np.arange(f)] = g[n]
    rows = cols if positions_first else cols.T
    dW, dcols = res["numba"]
    np.testing.assert_allclose(dW - 0.5, dense.T @ rows, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dcols if positions_first else dcols.T, dense @ W, rtol=1e-5,
                               atol=1e-5)


@compiled
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("kh, pt", [(3, 1), (4, 1), (5, 2), (3, 0), (3, 2), (1, 0)])
@pytest.mark.parametrize("positions_first", [False, True])
def test_the_words_only_kernels_agree_to_the_bit(dtype, ties, kh, pt, positions_first):
    rng = np.random.default_rng(kh + pt)
    m, c, h, f = 7, 4, 9, 5
    x = (rng.integers(-2, 3, (m, c, h, 1)) if ties else rng.standard_normal((m, c, h, 1)))
    x = x.astype(dtype)
    x[0, :, 5:] = 0                 # padding at the end, at the start, a gap, everywhere
    x[1, :, :4] = 0
    x[2, :, 2:6] = 0
    x[3] = 0
    x[4, :, :-1] = 0
    x[5, 1, 3] = np.nan
    if positions_first:             # the same values, each position's c contiguous (Embedding's)
        x = np.ascontiguousarray(x[..., 0].transpose(0, 2, 1)).transpose(0, 2, 1)[..., None]
    ho = h + 2 * pt - kh + 1
    res = {}
    for name in BOTH:
        xt = np.zeros((m, h + 2 * kh, c), dtype)
        lo, cnt, off = kernels.ragged_rows(x, kh, pt, ho, xt, name)
        cols = kernels.ragged_columns(xt, lo, cnt, off, kh, pt,
                                      np.full((cnt.sum() + 1, c * kh), np.nan, dtype), name)
        y = (res["numba"][1] if name == "numpy"      # the same outputs for both
             else rng.standard_normal((cols.shape[0], f)).astype(dtype))
        y[-1] = 0                                     # the zero row's outputs
        y[off[6]:off[6] + cnt[6], 0] = -1             # a tie with the padding's 0, and
        y[off[6] + 1, 1] = 0                          # the padding's 0 before or after
        mx, at, r = np.empty((m, f), dtype), np.empty((m, f), np.int64), np.empty((m, f), np.int64)
        kernels.ragged_max(y, lo, cnt, off, ho, mx, at, r, name)
        g = np.random.default_rng(1).standard_normal((m, f)).astype(dtype)
        dW = np.full((f, cols.shape[1]), 0.5, dtype)
        kernels.ragged_dw(cols, r, g, dW, name)
        res[name] = (cols, y, lo, cnt, mx, at, r, dW)
    for a, b in zip(*res.values()):
        np.testing.assert_array_equal(a, b)
    cols, y, lo, cnt, mx, at, r, _ = res["numba"]
    # the positions from the first a word reaches to the last: against the windows
    xp = np.zeros((m, c, h + 2 * kh, 1), dtype)
    xp[:, :, kh:kh + h] = x
    nz = (x[..., 0] != 0).any(axis=1)
    row = 0
    for n in range(m):
        reach = [p for p in range(ho) if nz[n, max(0, p - pt):max(0, p - pt + kh)].any()]
        reach = list(range(reach[0], reach[-1] + 1)) if reach else []
        assert list(range(lo[n], lo[n] + cnt[n])) == reach
        for p in reach:
            window = xp[n, :, p - pt + kh:p - pt + 2 * kh, 0]          # (c, kh)
            np.testing.assert_array_equal(cols[row], window.T.reshape(-1))
            row += 1
    assert row == cols.shape[0] - 1 and not cols[-1].any()
    # the maxima: the first in position order over all ho positions, the left-out ones 0
    full = np.zeros((m, ho, f), dtype)
    for n in range(m):
        full[n, lo[n]:lo[n] + cnt[n]] = y[sum(cnt[:n]):sum(cnt[:n + 1])]
    np.testing.assert_array_equal(at, full.argmax(axis=1))
    np.testing.assert_array_equal(mx, np.take_along_axis(full, at[:, None], axis=1)[:, 0])
    assert (at[3] == 0).all() and (r[3] == cols.shape[0] - 1).all()
    # the input gradient from the rows: sparse_dx's numbers to the bit, padding included
    W = rng.standard_normal((f, c * kh)).astype(dtype)
    g = rng.standard_normal((m, f)).astype(dtype)
    g[1, 2] = 0
    dx, expected = np.full((c, m, h, 1), np.nan, dtype), np.full((c, m, h, 1), np.nan, dtype)
    Wo = {name: kernels.offsets_first(W, kh, kernels=name) for name in BOTH}
    np.testing.assert_array_equal(Wo["numba"], Wo["numpy"])
    np.testing.assert_array_equal(Wo["numba"],
                                  W.reshape(f, c, kh).transpose(0, 2, 1).reshape(f, -1))
    np.testing.assert_array_equal(kernels.offsets_first(Wo["numba"], kh, True), W)
    kernels.ragged_dx(r, g, Wo["numba"], lo, cnt, off, kh, pt, dx, np.zeros_like(cols))
    kernels.sparse_dx(at, g, W, expected, (kh, 1), (1, 1), (pt, kh - 1 - pt, 0, 0), 1)
    np.testing.assert_array_equal(dx, expected)
    assert dx[:, 3].any()             # a sentence of padding only: its maximum's window

@compiled
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("junk", [0, 2])
def test_global_max_of_an_offset_kernels_layout_is_argmax(dtype, ties, junk):
    rng = np.random.default_rng(3)
    f, m, h, w = 7, 6, 5, 3
    shape = (f, m, h, w + junk)     # a ShiftKernel's buffer has junk columns past w
    buf = (rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)).astype(dtype)
    buf[1, 2, 1, 1] = buf[1, 2, 3, 0] = np.nan          # the first NaN wins, as in argmax
    buf[2, 3, 0, 0] = np.nan
    y = buf[:, :, :, :w].transpose(1, 0, 2, 3)          # (m, f, h, w)
    mx, at = _global_max_both(y)
    np.testing.assert_array_equal(at, y.reshape(m, f, h * w).argmax(axis=2))
    assert at[2, 1] == 1 * w + 1 and at[3, 2] == 0 and np.isnan(mx[2, 1])


@compiled
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel_size, stride, pads, extra", [
    ((3, 1), (1, 1), (1, 1, 0, 0), 0),    # the text preset's branch (OffsetKernel)
    ((2, 3), (2, 1), (0, 1, 1, 1), 0),    # strided, padded on every side
    ((3, 3), (1, 1), (1, 1, 1, 1), 2),    # a ShiftKernel: positions over the padded width
])
def test_sparse_dx_is_dcols_then_col2im_to_the_bit(dtype, kernel_size, stride, pads, extra):
    from gridnet.core.conv import _unpad, col2im_offsets, col2im_shifts
    rng = np.random.default_rng(5)
    m, f, c, h, w = 4, 9, 3, 7, 5
    (kh, kw), (sh, sw) = kernel_size, stride
    hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    width = wo + extra
    at = rng.integers(0, ho, (m, f)) * width + rng.integers(0, wo, (m, f))
    at[1, :4] = at[1, 5]                     # several features' maxima at one position
    g = rng.standard_normal((m, f)).astype(dtype)
    W = rng.standard_normal((f, c * kh * kw)).astype(dtype)
    dcols = np.zeros((c * kh * kw, m * ho * width), dtype)
    kernels.sparse_dcols(at + (np.arange(m) * ho * width)[:, None], g, W, dcols, False, "numpy")
    if extra:                                # ShiftKernel's flat planes (stride 1)
        L = hp * wp + kw - 1
        planes = np.zeros((c, 1, m, L), dtype)
        shifts = [(0, i * wp + j) for i in range(kh) for j in range(kw)]
        col2im_shifts(dcols.reshape(c, kh * kw, m, ho * wp), shifts, ho * wp, planes)
        want = planes[:, 0, :, :hp * wp].reshape(c, m, hp, wp)[:, :, pads[0]:pads[0] + h,
                                                                pads[2]:pads[2] + w]
    else:
        dxp = col2im_offsets(dcols, (f, ho, wo), kernel_size, stride,
                             np.zeros((c, m, hp, wp), dtype))
        want = _unpad(dxp, pads, h, w)
    buf = np.full((c, m + 3, h, w), np.nan, dtype)     # a chunk's part of a larger buffer
    got = kernels.sparse_dx(at, g, W, buf[:, 1:m + 1], kernel_size, stride, pads, width)
    np.testing.assert_array_equal(got, want)
    assert np.isnan(buf[:, 0]).all() and np.isnan(buf[:, m + 1:]).all()
    assert np.abs(want).sum() > 0


def sentence_net(name):
    """Two branches of the text preset's shape (word vectors, then (k, 1) convolutions:
    OffsetKernel) and one that reads the grid itself (WindowKernel)."""
    net = Network([Branches([[Conv2D(6, (1, 10)), Conv2D(4, (k, 1), padding="same",
                                                          activation="relu"),
                              GlobalMaxPool("height")] for k in (2, 3)]
                            + [[Conv2D(4, (3, 10), activation="relu"), GlobalMaxPool()]]),
                   Flatten(), Dense(3)])
    net.build((1, 9, 10), np.random.default_rng(0))
    fused = [step for steps in net.layers[0].steps for step in steps if isinstance(step, ConvMax)]
    assert len(fused) == 3
    for step in fused:
        step.kernels = name
    return net, fused


@compiled
def test_a_sentence_cnn_trains_to_the_same_weights_with_either_kernels():
    # the third branch reads the input itself (a WindowKernel, features contiguous)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 1, 9, 10)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    weights = {}
    for name in BOTH:
        (net, fused), loss, opt = sentence_net(name), SoftmaxCrossEntropy(), Adam(1e-2)
        opt.kernels = name
        kinds = [type(step.conv.kernel).__name__ for step in fused]
        assert kinds == ["OffsetKernel", "OffsetKernel", "WindowKernel"]
        for _ in range(20):
            _, grad = loss(net.forward(x, training=True), y)
            net.backward(grad, input_grad=False)    # the first two's columns: dcols
            opt.step(net.parameters())
        weights[name] = [p.copy() for _, p, _ in net.parameters()]
    for a, b in zip(weights["numba"], weights["numpy"]):
        np.testing.assert_array_equal(a, b)


def _adam_run(name, steps=40):
    rng = np.random.default_rng(0)
    params = [("0.W", rng.standard_normal((4, 3)).astype(np.float32)),
              ("0.b", rng.standard_normal(3).astype(np.float32))]
    opt = Adam(learning_rate=1e-2, weight_decay=1e-3)
    opt.kernels = name
    for _ in range(steps):   # past a flush of tiny moments (every 16 steps)
        grads = [rng.standard_normal(p.shape).astype(np.float32) * 1e-3 for _, p in params]
        opt.step([(n, p, g) for (n, p), g in zip(params, grads)])
    return [p for _, p in params], opt.state["_buffers"][:2]


@compiled
def test_adam_steps_agree_to_the_bit():
    (p1, s1), (p2, s2) = _adam_run("numba"), _adam_run("numpy")
    for a, b in zip(p1 + list(s1), p2 + list(s2)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(p1[0], _adam_run("numba", 39)[0][0])   # the steps move it


@compiled
def test_adam_direction_and_adam_apply_agree_to_the_bit_with_numpy():
    rng = np.random.default_rng(2)
    g, m, v, p = (rng.standard_normal(50).astype(np.float32) for _ in range(4))
    v = v * v
    f = np.float32
    scal = (f(0.9), f(0.1), f(0.999), f(0.001), f(1e-8), f(1e-3))
    outs = {}
    for name in BOTH:
        mm, vv, out = m.copy(), v.copy(), np.empty_like(g)
        kernels.adam_direction(g, mm, vv, *scal, out, name)
        outs[name] = (mm, vv, out)
    for a, b in zip(*outs.values()):
        np.testing.assert_array_equal(a, b)
    mm, vv, pp = m.copy(), v.copy(), p.copy()
    kernels.adam_apply(g, pp, f(1e-2), mm, vv, *scal)          # with weight decay
    mn, vn, out = m.copy(), v.copy(), np.empty_like(g)
    kernels.adam_direction(g + f(1e-2) * p, mn, vn, *scal, out, "numpy")
    for a, b in ((mm, mn), (vv, vn), (pp, p - out)):
        np.testing.assert_array_equal(a, b)


def net_a(kernels_name):
    net = Network([Conv2D(8, 3, padding="same", activation="relu"), MaxPool2D(2),
                   Conv2D(6, 3, padding="same", activation="relu"), MaxPool2D(2),
                   Flatten(), Dense(5)])
    net.build((2, 12, 12), np.random.default_rng(0))
    for step in net.steps:
        if isinstance(step, ConvPool):
            step.kernels = kernels_name
    return net


@compiled
def test_a_network_trains_to_the_same_weights_with_either_kernels():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 2, 12, 12)).astype(np.float32)
    y = rng.integers(0, 5, 16)
    weights, outs = {}, {}
    for name in BOTH:
        net, loss, opt = net_a(name), SoftmaxCrossEntropy(), Adam(1e-2)
        opt.kernels = name
        assert sum(isinstance(s, ConvPool) for s in net.steps) == 2
        for _ in range(20):
            _, grad = loss(net.forward(x, training=True), y)
            net.backward(grad, input_grad=False)
            opt.step(net.parameters())
        weights[name] = [p.copy() for _, p, _ in net.parameters()]
        outs[name] = net.forward(x)
    for a, b in zip(weights["numba"], weights["numpy"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(outs["numba"], outs["numpy"], rtol=1e-5)


@pytest.mark.parametrize("name", [pytest.param("numba", marks=compiled), "numpy"])
def test_either_kernels_pass_a_finite_difference_check(name):
    net = Network([Conv2D(3, 3, padding="same", activation="relu"), MaxPool2D(2),
                   Conv2D(2, (2, 3), padding="valid"), MaxPool2D((1, 2)), Flatten(), Dense(3)])
    rng = np.random.default_rng(0)
    net.build((2, 8, 9), rng, dtype=np.float64)
    for step in net.steps:
        if isinstance(step, ConvPool):
            step.kernels = name
    x = rng.standard_normal((3, 2, 8, 9))
    y = np.array([0, 2, 1])
    loss = SoftmaxCrossEntropy()
    _, grad = loss(net.forward(x, training=True), y)
    assert all(s.ran_fused for s in net.steps if isinstance(s, ConvPool))
    analytic = {"x": net.backward(grad), **{n: g.copy() for n, _, g in net.parameters()}}

    def f():
        return loss(net.forward(x), y)[0]

    numeric = {"x": numeric_grad(f, x), **{n: numeric_grad(f, p) for n, p, _ in net.parameters()}}
    errors = {k: rel_error(analytic[k], numeric[k]) for k in numeric}
    assert max(errors.values()) < 1e-6, errors


@compiled
def test_the_compiled_kernels_are_the_ones_that_run(monkeypatch):
    calls = {}

    def spy(name, fn):
        def counted(*a):
            calls[name] = calls.get(name, 0) + 1
            return fn(*a)
        monkeypatch.setattr(kernels, name, counted)

    for name in ("_pool_forward_nb", "_pool_forward_arg_nb", "_pool_route_nb", "_grid_from_nb",
                 "_im2col_phases_nb", "_col2im_phases_nb", "_adam_direction_nb", "_adam_apply_nb",
                 "_pool_forward_np", "_pool_route_np", "_grid_from_np", "_adam_direction_np"):
        spy(name, getattr(kernels, name))
    net, loss, opt = net_a(None), SoftmaxCrossEntropy(), Adam()
    x = np.random.default_rng(0).standard_normal((4, 2, 12, 12)).astype(np.float32)
    for _ in range(3):
        _, grad = loss(net.forward(x, training=True), np.arange(4))
        net.backward(grad, input_grad=False)
        opt.step(net.parameters())
    net.forward(x)
    # two fused layers x 3 steps (the first needs no input gradient: no col2im), then
    # one inference pass (no offsets kept); Adam thrice, each of the 6 arrays in place (a
    # flush step, every 16th, runs numpy's)
    assert calls == {"_pool_forward_arg_nb": 6, "_pool_route_nb": 6, "_grid_from_nb": 6,
                     "_im2col_phases_nb": 8, "_pool_forward_nb": 2,
                     "_col2im_phases_nb": 3, "_adam_apply_nb": 18}


def test_gridnet_kernels_numpy_runs_the_numpy_kernels():
    code = ("from gridnet.core import kernels; import gridnet, numpy as np; "
            "clf = gridnet.GridNetClassifier(max_epochs=2, random_state=0); "
            "X = np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32); "
            "clf.fit(X, np.arange(40) % 2); print(kernels.backend(), kernels._numba)")
    env = dict(os.environ, GRIDNET_KERNELS="numpy")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.stdout.split() == ["numpy", "None"]


@compiled
def test_the_compiled_max_kernels_are_the_ones_that_run(monkeypatch):
    calls = {}
    for name in ("_global_max_nb", "_global_max_first_nb", "_sparse_dw_nb", "_sparse_dcols_nb",
                 "_sparse_dx_nb", "_global_max_np", "_sparse_dw_np", "_sparse_dcols_np",
                 "_rows_of_nb", "_ragged_cols_nb", "_ragged_max_nb", "_ragged_dw_nb",
                 "_ragged_dx_nb", "_offsets_first_nb", "_rows_of_np", "_ragged_cols_np",
                 "_ragged_max_np", "_ragged_dw_np"):
        fn = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _fn=fn, _name=name: (
            calls.__setitem__(_name, calls.get(_name, 0) + 1), _fn(*a))[1])
    net, _ = sentence_net(None)
    x = np.random.default_rng(0).standard_normal((4, 1, 9, 10)).astype(np.float32)
    _, grad = SoftmaxCrossEntropy()(net.forward(x, training=True), np.arange(4) % 3)
    net.backward(grad, input_grad=False)
    # three fused steps; the first two (positions only) compute the positions a word
    # reaches and their input gradient from those rows; the third's maximum is
    # compiled for its layout
    assert calls == {"_rows_of_nb": 2, "_ragged_cols_nb": 2, "_ragged_max_nb": 2,
                     "_ragged_dw_nb": 2, "_ragged_dx_nb": 2, "_offsets_first_nb": 4,
                     "_global_max_nb": 1, "_sparse_dw_nb": 1}
