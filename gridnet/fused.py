"""A convolution and the max pooling that follows it, computed together.

``Conv2D(stride 1) -> MaxPool2D(window == stride, tiling the grid)`` is the commonest
pair in an image CNN. Computed one after the other, the pooling reads the
convolution's output through strided views (every other value of every row), which
costs more than the matmul on small networks. Computed together, the convolution
writes its output already sorted by window offset ("space to depth"): for a 2x2 pool,
four contiguous blocks holding the top-left, top-right, bottom-left and bottom-right
value of every window. The pooling is then a few ``np.maximum`` calls on contiguous
blocks, and bias and ReLU are applied after it, on a quarter of the values (both
commute with the maximum). The result, and the gradients, are the same as the two
layers' (up to float rounding in the order of sums).

The network runs a pair together whenever :func:`fusable` says so; the layers keep
their parameters and configuration, so a saved model does not know about it.

Geometry, for a pool window ``(ph, pw)``: output position ``(y, x) = (ph*Y + a,
pw*X + b)`` reads padded input row ``y + i = ph*(Y + q) + s``, i.e. the input split
into ``ph*pw`` phases ``xs[c, s, t, n, Yq, Xq] = x_padded[n, c, ph*Yq + s,
pw*Xq + t]``, shifted by ``(q, r)``. Each phase is flattened row by row (width
``Wq``), so that a shift is one constant offset and im2col copies long contiguous
runs, as in :class:`gridnet.layers.Conv2D`; the few output rows and columns past the
grid ("junk") are computed and ignored.
"""
from __future__ import annotations

import numpy as np

from .layers import Conv2D, MaxPool2D, _batch_slices, _zero_columns_from, is_onehot

__all__ = ["fusable", "conv_pool_forward", "conv_pool_backward", "ran_fused"]


class _Cache:
    """What the backward pass of a fused pair needs (kept on the convolution)."""

    def __init__(self, pool, chunks, mx, out):
        self.pool, self.chunks, self.mx, self.out = pool, chunks, mx, out


def fusable(conv, pool, x):
    """True when ``conv`` followed by ``pool`` can run as one fused step on ``x``."""
    if type(conv) is not Conv2D or type(pool) is not MaxPool2D:
        return False
    if conv.out_shape is None or pool.out_shape is None or is_onehot(x):
        return False
    if conv.stride != (1, 1) or not conv._by_offset:
        return False
    (ph, pw), (sh, sw) = pool.window, pool.stride
    if (ph, pw) != (sh, sw) or ph * pw == 1 or any(pool._pads):
        return False
    _, ho, wo = conv.out_shape
    return ho % ph == 0 and wo % pw == 0 and pool.in_shape == conv.out_shape


def ran_fused(conv):
    """True when ``conv``'s last training forward pass was a fused one."""
    return isinstance(getattr(conv, "_cache", None), _Cache)


def _geometry(conv, pool):
    c, h, w = conv.in_shape
    pt, pb, pl, pr = conv._pads
    f, ho, wo = conv.out_shape
    kh, kw = conv.kernel_size
    ph, pw = pool.window
    Ho, Wo = ho // ph, wo // pw
    qmax, rmax = (ph + kh - 2) // ph, (pw + kw - 2) // pw
    Hq, Wq = Ho + qmax, Wo + rmax
    # (phase s, t) -> (first input row/column of that phase, its place in the phase,
    # how many); every input value lands in exactly one phase
    rows = [((s - pt) % ph, ((s - pt) % ph + pt) // ph, len(range((s - pt) % ph, h, ph)))
            for s in range(ph)]
    cols = [((t - pl) % pw, ((t - pl) % pw + pl) // pw, len(range((t - pl) % pw, w, pw)))
            for t in range(pw)]
    # (i, j, a, b) -> (phase s, t, flat offset of the shift)
    shifts = [(i, j, a, b, (a + i) % ph, (b + j) % pw, ((a + i) // ph) * Wq + (b + j) // pw)
              for i in range(kh) for j in range(kw) for a in range(ph) for b in range(pw)]
    # each sample's phase is Hq x Wq, samples one after the other: a shift reads one
    # long run over the whole chunk (valid outputs never cross into the next sample;
    # junk ones may, and get no gradient); the tail keeps the last shifts in bounds
    return dict(c=c, h=h, w=w, f=f, kh=kh, kw=kw, ph=ph, pw=pw, Ho=Ho, Wo=Wo, Hq=Hq, Wq=Wq,
                P=Hq * Wq, tail=qmax * Wq + rmax, rows=rows, cols=cols, shifts=shifts)


def _phase_pairs(G, buf, m):
    """For each phase ``(s, t)``: the index of its values in an ``(m, c, h, w)`` grid
    (``(c, m, h, w)`` for a gradient) and their view ``(c, m, rows, cols)`` in the
    phase buffer ``buf`` ``(c, ph, pw, m*P + tail)``."""
    c, ph, pw, Hq, Wq = G["c"], G["ph"], G["pw"], G["Hq"], G["Wq"]
    for s, (y0, Y0, ny) in enumerate(G["rows"]):
        for t, (x0, X0, nx) in enumerate(G["cols"]):
            phase = buf[:, s, t, :m * G["P"]].reshape(c, m, Hq, Wq)[:, :, Y0:Y0 + ny, X0:X0 + nx]
            yield (slice(None), slice(None), slice(y0, None, ph), slice(x0, None, pw)), phase


def _phases(conv, G, x, key):
    """Input chunk ``x`` (m, c, h, w) -> zero-padded phases ``(c, ph, pw, m*P + tail)``."""
    m = x.shape[0]
    xs = conv._scratch(key, (G["c"], G["ph"], G["pw"], m * G["P"] + G["tail"]), x.dtype)
    xs.fill(0)
    for grid, phase in _phase_pairs(G, xs, m):
        phase[...] = x[grid].transpose(1, 0, 2, 3)
    return xs


def _im2col(conv, G, xs, key):
    """Phases -> columns ``(c*kh*kw, ph*pw*m*P)``, outputs sorted by window offset."""
    c, mP = G["c"], xs.shape[3] - G["tail"]
    cols = conv._scratch(key, (c, G["kh"], G["kw"], G["ph"], G["pw"], mP), xs.dtype)
    for i, j, a, b, s, t, off in G["shifts"]:
        cols[:, i, j, a, b] = xs[:, s, t, off:off + mP]
    return cols.reshape(c * G["kh"] * G["kw"], -1)


def _col2im(conv, G, dcols, dx):
    """Scatter-add columns back onto the input gradient chunk ``dx`` ``(c, m, h, w)``."""
    c, m, P, ph, pw = G["c"], dx.shape[1], G["P"], G["ph"], G["pw"]
    dxs = conv._scratch("fdxs", (c, ph, pw, m * P + G["tail"]), dcols.dtype)
    dxs.fill(0)
    d = dcols.reshape(c, G["kh"], G["kw"], ph, pw, m * P)
    for i, j, a, b, s, t, off in G["shifts"]:
        dxs[:, s, t, off:off + m * P] += d[:, i, j, a, b]
    for grid, phase in _phase_pairs(G, dxs, m):
        dx[grid] = phase


def _chunks(conv, G, n, itemsize):
    per_sample = G["c"] * G["kh"] * G["kw"] * G["ph"] * G["pw"] * G["P"] * itemsize
    return _batch_slices(n, per_sample, conv.chunk_bytes)


def conv_pool_forward(conv, pool, x, training=False):
    """``pool.forward(conv.forward(x))``, computed together.

    x: (n, c, h, w) -> (n, f, h_out / ph, w_out / pw)
    """
    if x.shape[1:] != conv.in_shape:
        return pool.forward(conv.forward(x, training), training)   # let it raise
    key = (conv.in_shape, conv.out_shape, conv.kernel_size, conv._pads, pool.window)
    G = conv.__dict__.get("_fgeom")
    if G is None or G["key"] != key:       # first use, or the layers were built again
        G = conv._fgeom = _geometry(conv, pool)
        G["key"] = key
    n = x.shape[0]
    f, P, k = G["f"], G["P"], G["ph"] * G["pw"]
    W, b = conv._weights(), conv.params["b"]
    out = np.empty((f, n, G["Hq"], G["Wq"]), dtype=x.dtype)
    mx = np.empty_like(out) if training else out
    chunks = []
    for c_, sl in enumerate(_chunks(conv, G, n, x.dtype.itemsize)):
        m = sl.stop - sl.start
        tag = ("f", c_) if training else "f"
        cols = _im2col(conv, G, _phases(conv, G, x[sl], "fxs"), ("fcols", tag))
        y = np.matmul(W, cols, out=conv._scratch(("fy", tag), (f, k * m * P), x.dtype))
        yv = y.reshape(f, k, m * P)
        best = mx[:, sl].reshape(f, m * P)
        np.maximum(yv[:, 0], yv[:, 1], out=best)
        for j in range(2, k):
            np.maximum(best, yv[:, j], out=best)
        if training:
            chunks.append((sl, cols, y))
    # bias and ReLU commute with the maximum: applied to the pooled values only
    np.add(mx, b[:, None, None, None], out=out)
    if conv.activation == "relu":
        np.maximum(out, 0, out=out)
    conv._cache = _Cache(pool, chunks, mx, out) if training else None
    conv._active = None
    pool._cache = None
    return out[:, :, :G["Ho"], :G["Wo"]].transpose(1, 0, 2, 3)


def conv_pool_backward(conv, pool, grad, input_grad=True):
    """grad: (n, f, h_out / ph, w_out / pw) -> dL/dx (n, c, h, w); fills ``conv.grads``."""
    cache = conv._cache
    if not isinstance(cache, _Cache) or cache.pool is not pool:
        raise RuntimeError("backward called without a fused training forward pass")
    G = conv._fgeom
    f, P, k, Ho, Wo = G["f"], G["P"], G["ph"] * G["pw"], G["Ho"], G["Wo"]
    n = grad.shape[0]
    # junk rows and columns carry no gradient: zeroed once, never written
    gq = conv._scratch_zeroed("fgq", cache.out.shape, grad.dtype, _zero_columns_from(Wo, Ho))
    gq[:, :, :Ho, :Wo] = grad.transpose(1, 0, 2, 3)
    if conv.activation == "relu":
        np.multiply(gq, cache.out > 0, out=gq)
    W = conv._weights()
    dW = np.zeros_like(W)
    db = gq.reshape(f, -1).sum(axis=1)
    dxbuf = np.empty((G["c"], n, G["h"], G["w"]), grad.dtype) if input_grad else None
    for sl, cols, y in cache.chunks:
        m = sl.stop - sl.start
        gc = gq[:, sl].reshape(f, m * P)
        best = cache.mx[:, sl].reshape(f, m * P)
        yv = y.reshape(f, k, m * P)
        # each window's gradient goes to the first offset holding its maximum
        g = conv._scratch("fg", (f, k, m * P), grad.dtype)
        rest = conv._scratch("frest", (f, m * P), grad.dtype)
        np.multiply(gc, yv[:, 0] == best, out=g[:, 0])
        np.subtract(gc, g[:, 0], out=rest if k > 2 else g[:, 1])
        for j in range(1, k - 1):
            np.multiply(rest, yv[:, j] == best, out=g[:, j])
            if j < k - 2:
                rest -= g[:, j]
            else:
                np.subtract(rest, g[:, j], out=g[:, k - 1])
        g = g.reshape(f, -1)
        dW += (cols @ g.T).T
        if input_grad:   # the columns are spent: their buffer takes dcols
            _col2im(conv, G, np.matmul(W.T, g, out=cols), dxbuf[:, sl])
    if conv.normalize:
        dW *= dW.dtype.type(1.0 / W.shape[1])
    conv.grads["W"] = dW
    conv.grads["b"] = db
    conv._cache = conv._active = None
    return dxbuf.transpose(1, 0, 2, 3) if input_grad else None
