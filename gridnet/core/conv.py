"""2-D convolution: :class:`Conv2D` (parameters, configuration) and its kernels.

A convolution is computed by one of four kernels, chosen when the layer is built (the
one-hot kernel when the input is a one-hot grid). Each kernel keeps its forward and its
backward pass side by side, and its own work buffers and cache:

- :class:`OneHotKernel`: a one-hot grid read by a kernel that spans its whole width is
  an embedding lookup: gather weight rows, scatter-add their gradients.
- :class:`ShiftKernel` (stride 1): outputs are computed over the padded width too, so
  that each kernel offset is one constant shift of the flattened image; every copy and
  scatter-add of im2col / col2im is then one long contiguous run, worth the few junk
  columns.
- :class:`OffsetKernel`: im2col columns ``(K, n*P)`` built one kernel offset at a time
  (fewer offsets than output positions).
- :class:`WindowKernel`: columns ``(n*P, K)`` built one output window at a time (more
  offsets than output positions: a kernel nearly as large as its input).

The im2col / col2im helpers are free functions; :mod:`gridnet.core.fused` calls the same
shifted-run helpers (:func:`im2col_shifts`, :func:`col2im_shifts`).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .layers import (Layer, Workspace, as_pair, batch_slices, check_activation, check_input,
                     is_onehot, window_geometry, zero_columns_from)

__all__ = ["Conv2D", "OneHotKernel", "ShiftKernel", "OffsetKernel", "WindowKernel",
           "im2col_shifts", "col2im_shifts", "DEFAULT_CHUNK_BYTES"]

# Largest im2col buffer one convolution builds at a time, in bytes. The batch is cut into
# chunks so that a large batch never makes an unbounded copy (Lasagne #700).
DEFAULT_CHUNK_BYTES = 32 * 2**20


# -- im2col / col2im ---------------------------------------------------------------------
def im2col_shifts(planes, shifts, length, out):
    """Columns from shifted runs: ``out[:, k] = planes[:, p, ..., o:o + length]`` for the
    ``k``-th ``(p, o)`` of ``shifts``.

    planes: (c, n_planes, ..., L); out: (c, len(shifts), ..., length). Returns ``out``.
    """
    for k, (p, o) in enumerate(shifts):
        out[:, k] = planes[:, p, ..., o:o + length]
    return out


def col2im_shifts(dcols, shifts, length, planes):
    """The adjoint of :func:`im2col_shifts`: ``planes[:, p, ..., o:o + length] +=
    dcols[:, k]`` (``planes`` zeroed by the caller)."""
    for k, (p, o) in enumerate(shifts):
        planes[:, p, ..., o:o + length] += dcols[:, k]
    return planes


def _windows(xp, out_shape, kernel_size, stride):
    """View ``(m, c, ho, wo, kh, kw)`` of the padded chunk ``xp`` (no copy)."""
    m, c = xp.shape[:2]
    _, ho, wo = out_shape
    (kh, kw), (sh, sw) = kernel_size, stride
    s = xp.strides
    return as_strided(xp, (m, c, ho, wo, kh, kw),
                      (s[0], s[1], s[2] * sh, s[3] * sw, s[2], s[3]), writeable=False)


def im2col_offsets(xp, out_shape, kernel_size, stride, out):
    """Padded chunk ``xp`` (m, c, hp, wp) -> columns ``(c*kh*kw, m*ho*wo)``, written into
    ``out`` ``(c, kh, kw, m, ho, wo)``."""
    out[...] = _windows(xp, out_shape, kernel_size, stride).transpose(1, 4, 5, 0, 2, 3)
    return out.reshape(out.shape[0] * out.shape[1] * out.shape[2], -1)


def col2im_offsets(dcols, out_shape, kernel_size, stride, dxp):
    """Scatter-add columns ``(c*kh*kw, m*ho*wo)`` onto the zeroed padded gradient
    ``dxp`` ``(c, m, hp, wp)``, one kernel offset at a time (contiguous blocks)."""
    c, m = dxp.shape[:2]
    _, ho, wo = out_shape
    (kh, kw), (sh, sw) = kernel_size, stride
    d = dcols.reshape(c, kh, kw, m, ho, wo)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += d[:, i, j]
    return dxp


def im2col_windows(xp, out_shape, kernel_size, stride, out):
    """Padded chunk ``xp`` (m, c, hp, wp) -> columns ``(m*ho*wo, c*kh*kw)``, written into
    ``out`` ``(m, ho, wo, c, kh, kw)``."""
    out[...] = _windows(xp, out_shape, kernel_size, stride).transpose(0, 2, 3, 1, 4, 5)
    m, ho, wo = out.shape[:3]
    return out.reshape(m * ho * wo, -1)


def col2im_windows(dcols, out_shape, kernel_size, stride, dxp):
    """Scatter-add columns ``(m*ho*wo, c*kh*kw)`` onto the zeroed padded gradient
    ``dxp`` ``(m, c, hp, wp)``, one output window at a time."""
    m, c = dxp.shape[:2]
    _, ho, wo = out_shape
    (kh, kw), (sh, sw) = kernel_size, stride
    d = dcols.reshape(m, ho, wo, c, kh, kw)
    for i in range(ho):
        for j in range(wo):
            dxp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += d[:, i, j]
    return dxp


def _unpad(xp, pads, h, w):
    pt, _, pl, _ = pads
    return xp[:, :, pt:pt + h, pl:pl + w]


# -- kernels -----------------------------------------------------------------------------
class _Kernel:
    """What every kernel shares: the layer's geometry, work buffers and the cache of
    one training forward pass. ``forward(x, W, b, relu, training) -> y`` and
    ``backward(grad, W, input_grad) -> (dx, dW, db)``; ``W`` is the effective weight
    matrix ``(f, c*kh*kw)`` (already divided by the feature size when normalised)."""

    def __init__(self, conv):
        self.in_shape, self.out_shape = conv.in_shape, conv.out_shape
        self.kernel_size, self.stride, self.pads = conv.kernel_size, conv.stride, conv.pads
        self.chunk_bytes = conv.chunk_bytes
        self.ws = Workspace()
        self.cache = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "cache"}

    def _pad(self, x):
        """x zero-padded, in a work buffer (read at once: the next call overwrites it)."""
        pt, pb, pl, pr = self.pads
        if not (pt or pb or pl or pr):
            return x
        m, c, h, w = x.shape
        xp = self.ws.get("xpad", (m, c, h + pt + pb, w + pl + pr), x.dtype)
        xp[:, :, :pt] = 0               # only the border: np.pad costs several passes
        xp[:, :, pt + h:] = 0
        xp[:, :, pt:pt + h, :pl] = 0
        xp[:, :, pt:pt + h, pl + w:] = 0
        xp[:, :, pt:pt + h, pl:pl + w] = x
        return xp

    def _padded_shape(self):
        c, h, w = self.in_shape
        pt, pb, pl, pr = self.pads
        return h + pt + pb, w + pl + pr

    def take_cache(self):
        if self.cache is None:
            raise RuntimeError("backward called without a training forward pass")
        cache, self.cache = self.cache, None
        return cache

    def _start_backward(self, grad, W):
        """(forward chunks, ReLU mask or None, dW and db to accumulate into)."""
        cache, active = self.take_cache()
        return cache, active, np.zeros(W.shape, W.dtype), np.zeros(self.out_shape[0], dtype=W.dtype)


class OneHotKernel(_Kernel):
    """One-hot grid (n, 1, h, w) -> (n, filters, h_out, 1) by gathering weight rows:
    feature ``f`` at output row ``t`` is ``sum_i W[f, i, hot(t*sh + i)] + b``."""

    def forward(self, x, W, b, relu, training):
        n = x.shape[0]
        f, ho, _ = self.out_shape
        kh, sh = self.kernel_size[0], self.stride[0]
        pt, pb = self.pads[:2]
        w = self.in_shape[2]
        idx = np.asarray(x.indices)
        if idx.shape != (n, self.in_shape[1]):
            raise ValueError(f"one-hot grid indices have shape {idx.shape}; expected {(n, self.in_shape[1])}")
        idx = np.where(idx < 0, w, idx)             # row w of the table below is zeros
        if pt or pb:
            idx = np.pad(idx, ((0, 0), (pt, pb)), constant_values=w)
        W3 = W.reshape(f, kh, w)
        table = np.zeros((w + 1, f), dtype=W3.dtype)
        out = np.zeros((n, ho, f), dtype=W3.dtype)
        rows = []
        for i in range(kh):
            r = idx[:, i:i + sh * (ho - 1) + 1:sh]
            table[:w] = W3[:, i, :].T
            out += table[r]
            rows.append(r)
        out += b
        if relu:
            np.maximum(out, 0, out=out)
        out = np.ascontiguousarray(out.transpose(0, 2, 1)).reshape(n, f, ho, 1)
        self.cache = (rows, (out > 0) if relu else None) if training else None
        return out

    def backward(self, grad, W, input_grad=True):
        """The input is a one-hot grid (data): with ``input_grad``, dx is the gradient
        at each row's hot cell only, ``(n, h)`` (0 for an empty row), the one place
        where gradient x input is not 0; training asks for none."""
        from scipy import sparse
        rows, active = self.take_cache()
        n = grad.shape[0]
        f, ho, _ = self.out_shape
        w = self.in_shape[2]
        g = grad if active is None else grad * active
        g = np.ascontiguousarray(g.reshape(n, f, ho).transpose(0, 2, 1)).reshape(n * ho, f)
        dW = np.zeros((f, len(rows), w), dtype=grad.dtype)
        ones = np.ones(n * ho, dtype=grad.dtype)
        cols = np.arange(n * ho)
        for i, r in enumerate(rows):
            hot = sparse.csr_matrix((ones, (r.reshape(-1), cols)), shape=(w + 1, n * ho))
            dW[:, i, :] = (hot @ g)[:w].T
        dx = self._hot_gradient(rows, g.reshape(n, ho, f), W) if input_grad else None
        return dx, dW.reshape(f, -1), g.sum(axis=0)

    def _hot_gradient(self, rows, g, W):
        """dL/dx at the hot cells, (n, h): row ``t*sh + i`` (padded) gets
        ``sum_f g[t, f] * W[f, i, hot]`` from each output row ``t``."""
        n, ho, f = g.shape
        kh, sh = self.kernel_size[0], self.stride[0]
        pt = self.pads[0]
        h, w = self.in_shape[1], self.in_shape[2]
        W3 = W.reshape(f, kh, w)
        table = np.zeros((w + 1, f), dtype=W3.dtype)
        dx = np.zeros((n, h + self.pads[0] + self.pads[1]), dtype=g.dtype)
        for i, r in enumerate(rows):
            table[:w] = W3[:, i, :].T
            dx[:, i:i + sh * (ho - 1) + 1:sh] += np.einsum("ntf,ntf->nt", table[r], g)
        return dx[:, pt:pt + h]


class OffsetKernel(_Kernel):
    """im2col by kernel offset: columns ``(K, m*P)``; the output buffer ``(f, n, ho,
    width)`` is in the order the matmul writes it, and the layer returns a strided view
    of it ``(n, f, ho, wo)`` (no transposed copy)."""

    def _width(self):
        return self.out_shape[2]

    def _columns(self, x, key):
        c, kh, kw = self.in_shape[0], *self.kernel_size
        _, ho, wo = self.out_shape
        out = self.ws.get(key, (c, kh, kw, x.shape[0], ho, wo), x.dtype)
        return im2col_offsets(self._pad(x), self.out_shape, self.kernel_size, self.stride, out)

    def _scatter(self, dcols, m, dx):
        c, h, w = self.in_shape
        dxp = self.ws.get("dxp", (c, m) + self._padded_shape(), dcols.dtype)
        dxp.fill(0)
        col2im_offsets(dcols, self.out_shape, self.kernel_size, self.stride, dxp)
        dx[...] = _unpad(dxp, self.pads, h, w)

    def positions(self):
        """``(positions_first, width)``: the columns are ``(K, m*ho*width)``, output
        ``(t, u)`` of a chunk's sample ``i`` at ``i*ho*width + t*width + u``."""
        return False, self._width()

    def input_buffer(self, n, dtype):
        c, h, w = self.in_shape
        return np.empty((c, n, h, w), dtype)     # the order col2im accumulates it in

    def scatter_chunk(self, dcols, sl, dxbuf):
        """Scatter-add chunk ``sl``'s column gradient onto its part of ``dxbuf``."""
        self._scatter(dcols, sl.stop - sl.start, dxbuf[:, sl])

    @staticmethod
    def input_view(dxbuf):
        """dxbuf as ``(n, c, h, w)``."""
        return dxbuf.transpose(1, 0, 2, 3)

    def _chunks(self, n, itemsize):
        c = self.in_shape[0]
        kh, kw = self.kernel_size
        per_sample = c * kh * kw * self.out_shape[1] * self._width() * itemsize
        return batch_slices(n, per_sample, self.chunk_bytes)

    def forward(self, x, W, b, relu, training):
        n = x.shape[0]
        f, ho, wo = self.out_shape
        width = self._width()
        buf = np.empty((f, n, ho, width), x.dtype)
        chunks = self._chunks(n, x.dtype.itemsize)
        whole = len(chunks) == 1
        cache = []
        for k, sl in enumerate(chunks):
            m = sl.stop - sl.start
            cols = self._columns(x[sl], ("cols", k) if training else "cols")
            y = (buf.reshape(f, n * ho * width) if whole
                 else self.ws.get("y", (f, m * ho * width), x.dtype))
            np.matmul(W, cols, out=y)
            if b is not None:
                y += b[:, None]
            if relu:
                np.maximum(y, 0, out=y)
            if not whole:
                buf[:, sl] = y.reshape(f, m, ho, width)
            if training:
                cache.append((sl, cols))
        self.cache = (cache, (buf > 0) if relu else None) if training else None
        return buf[:, :, :, :wo].transpose(1, 0, 2, 3)

    def backward(self, grad, W, input_grad=True):
        cache, active, dW, db = self._start_backward(grad, W)
        (n, f, ho, wo), (c, h, w) = grad.shape, self.in_shape
        src = grad.transpose(1, 0, 2, 3)       # the buffer's axis order
        if active is not None:
            active = active[:, :, :, :wo]
        dxbuf = self.input_buffer(n, grad.dtype) if input_grad else None
        width = self._width()
        for sl, cols in cache:
            m = sl.stop - sl.start
            # junk columns (shift) carry no gradient: zero once, never written
            g = self.ws.zeroed("g", (f, m, ho, width), grad.dtype, zero_columns_from(wo))
            if active is None:      # the gradient copied into the matmul's order, masked
                g[:, :, :, :wo] = src[:, sl]          # by the fused ReLU on the way
            else:
                np.multiply(src[:, sl], active[:, sl], out=g[:, :, :, :wo])
            g = g.reshape(f, -1)
            db += g.sum(axis=1)
            dW += (cols @ g.T).T      # OpenBLAS: much faster than g @ cols.T here
            if input_grad:   # the columns are spent: their buffer takes dcols
                self.scatter_chunk(np.matmul(W.T, g, out=cols), sl, dxbuf)
        return (self.input_view(dxbuf) if input_grad else None), dW, db


class ShiftKernel(OffsetKernel):
    """Stride 1: outputs over the padded width (``wp``), so that kernel offset
    ``(i, j)`` is the constant shift ``i*wp + j`` of each flattened padded sample."""

    def _width(self):
        return self._padded_shape()[1]

    def _flat(self):
        hp, wp = self._padded_shape()
        return hp, wp, hp * wp + self.kernel_size[1] - 1

    def _shifts(self, wp):
        kh, kw = self.kernel_size
        return [(0, i * wp + j) for i in range(kh) for j in range(kw)]

    def _columns(self, x, key):
        m = x.shape[0]
        c, h, w = self.in_shape
        pt, _, pl, _ = self.pads
        ho = self.out_shape[1]
        kh, kw = self.kernel_size
        hp, wp, L = self._flat()
        xf = self.ws.get("xflat", (c, 1, m, L), x.dtype)
        xf.fill(0)
        xf[:, 0, :, :hp * wp].reshape(c, m, hp, wp)[:, :, pt:pt + h, pl:pl + w] = x.transpose(1, 0, 2, 3)
        P = ho * wp
        cols = self.ws.get(key, (c, kh * kw, m, P), x.dtype)
        im2col_shifts(xf, self._shifts(wp), P, cols)
        return cols.reshape(c * kh * kw, m * P)

    def _scatter(self, dcols, m, dx):
        c, h, w = self.in_shape
        pt, _, pl, _ = self.pads
        ho = self.out_shape[1]
        kh, kw = self.kernel_size
        hp, wp, L = self._flat()
        P = ho * wp
        dxf = self.ws.get("dxflat", (c, 1, m, L), dcols.dtype)
        dxf.fill(0)
        col2im_shifts(dcols.reshape(c, kh * kw, m, P), self._shifts(wp), P, dxf)
        dx[...] = dxf[:, 0, :, :hp * wp].reshape(c, m, hp, wp)[:, :, pt:pt + h, pl:pl + w]


class WindowKernel(_Kernel):
    """im2col by output window: columns ``(m*P, K)``; the output buffer ``(n, ho, wo,
    f)`` is returned as a strided view ``(n, f, ho, wo)``."""

    def forward(self, x, W, b, relu, training):
        n = x.shape[0]
        f, ho, wo = self.out_shape
        c, (kh, kw) = self.in_shape[0], self.kernel_size
        buf = np.empty((n, ho, wo, f), x.dtype)
        per_sample = c * kh * kw * ho * wo * x.dtype.itemsize
        cache = []
        for k, sl in enumerate(batch_slices(n, per_sample, self.chunk_bytes)):
            m = sl.stop - sl.start
            out = self.ws.get(("cols", k) if training else "cols", (m, ho, wo, c, kh, kw), x.dtype)
            cols = im2col_windows(self._pad(x[sl]), self.out_shape, self.kernel_size, self.stride, out)
            y = buf[sl].reshape(m * ho * wo, f)         # a contiguous block
            np.matmul(cols, W.T, out=y)
            if b is not None:
                y += b
            if relu:
                np.maximum(y, 0, out=y)
            if training:
                cache.append((sl, cols))
        self.cache = (cache, (buf > 0) if relu else None) if training else None
        return buf.transpose(0, 3, 1, 2)

    def positions(self):
        """``(positions_first, width)``: the columns are ``(m*ho*wo, K)``, output
        ``(t, u)`` of a chunk's sample ``i`` at row ``i*ho*wo + t*wo + u``."""
        return True, self.out_shape[2]

    def input_buffer(self, n, dtype):
        return np.empty((n,) + tuple(self.in_shape), dtype)

    def scatter_chunk(self, dcols, sl, dxbuf):
        """Scatter-add chunk ``sl``'s column gradient onto its part of ``dxbuf``."""
        c, h, w = self.in_shape
        dxp = self.ws.get("dxp", (sl.stop - sl.start, c) + self._padded_shape(), dcols.dtype)
        dxp.fill(0)
        col2im_windows(dcols, self.out_shape, self.kernel_size, self.stride, dxp)
        dxbuf[sl] = _unpad(dxp, self.pads, h, w)

    @staticmethod
    def input_view(dxbuf):
        return dxbuf

    def backward(self, grad, W, input_grad=True):
        cache, active, dW, db = self._start_backward(grad, W)
        (n, f, ho, wo), (c, h, w) = grad.shape, self.in_shape
        src = grad.transpose(0, 2, 3, 1)
        dxbuf = self.input_buffer(n, grad.dtype) if input_grad else None
        for sl, cols in cache:
            m = sl.stop - sl.start
            g = self.ws.get("g", (m, ho, wo, f), grad.dtype)
            if active is None:
                g[...] = src[sl]
            else:
                np.multiply(src[sl], active[sl], out=g)
            g = g.reshape(m * ho * wo, f)
            db += g.sum(axis=0)
            dW += g.T @ cols
            if input_grad:   # the columns are spent: their buffer takes dcols
                self.scatter_chunk(np.matmul(g, W, out=cols), sl, dxbuf)
        return dxbuf, dW, db


def choose_kernel(conv):
    """The dense-input kernel for a built convolution."""
    (kh, kw), (ho, wo) = conv.kernel_size, conv.out_shape[1:]
    if kh * kw > ho * wo:      # more offsets than output positions
        return WindowKernel(conv)
    if conv.stride == (1, 1) and kw > 1:
        return ShiftKernel(conv)
    return OffsetKernel(conv)


# -- the layer ---------------------------------------------------------------------------
class Conv2D(Layer):
    """2-D convolution ("filtering") of ``(n, c, h, w)`` grids.

    Each of ``filters`` features of size ``(c, kh, kw)`` is lined up with every patch,
    multiplied and added up (and, with ``normalize=True``, divided by the number of
    values in the feature, ``c * kh * kw``), plus a bias.

    Parameters
    ----------
    filters : int
        Number of features (output channels).
    kernel_size : int or (int, int)
        ``(kh, kw)``. May be rectangular, e.g. ``(3, width)`` for a kernel spanning the
        whole width of a sentence grid.
    stride : int or (int, int), default 1
    padding : {"valid", "same", "full"}, default "valid"
        "same" pads with zeros so that the output is ``ceil(h / stride)`` high; "full"
        pads ``kernel - 1`` zeros on every side, so that each input value is seen by
        every part of the kernel (Kim's sentence CNN pads sentences this way, so that
        the first and last words count as much as the others).
    normalize : bool, default False
        Divide each response by the feature's size.
    activation : {None, "relu"}, default None
        "relu" applies a ReLU to the output inside the layer (as Keras'
        ``activation=``): the same result as a following :class:`ReLU`, with fewer
        passes over memory.
    init : {"auto", "he", "glorot"}, default "auto"
        "auto" picks He for a ReLU (fused or following), Glorot otherwise.
    chunk_bytes : int, default 32 MiB
        The batch is processed in chunks whose im2col buffer stays below this size.

    Shapes: ``(n, c, h, w) -> (n, filters, h_out, w_out)``. After ``build``, ``pads``
    is ``(top, bottom, left, right)`` and ``kernel`` the kernel chosen for dense input.

    Examples
    --------
    >>> import numpy as np
    >>> from gridnet import Conv2D
    >>> conv = Conv2D(4, 3, padding="same")
    >>> conv.build((1, 8, 8), np.random.default_rng(0))
    (4, 8, 8)
    >>> conv.forward(np.ones((2, 1, 8, 8), np.float32)).shape
    (2, 4, 8, 8)
    """

    trainable = True

    def __init__(self, filters, kernel_size, stride=1, padding="valid", normalize=False,
                 activation=None, init="auto", chunk_bytes=DEFAULT_CHUNK_BYTES):
        super().__init__()
        if int(filters) < 1:
            raise ValueError(f"filters must be a positive int; got {filters!r}")
        if padding not in ("valid", "same", "full"):
            raise ValueError(f"padding must be 'valid', 'same' or 'full'; got {padding!r}")
        self.filters = int(filters)
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride, "stride")
        self.padding = padding
        self.normalize = bool(normalize)
        self.activation = check_activation(activation)
        self.init = init
        self.chunk_bytes = int(chunk_bytes)

    def get_config(self):
        return {"filters": self.filters, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": self.padding,
                "normalize": self.normalize, "activation": self.activation, "init": self.init}

    def describe(self):
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        extra = "" if (sh, sw) == (1, 1) else f", stride {sh}x{sw}"
        extra += ", normalized" if self.normalize else ""
        extra += f", {self.activation}" if self.activation else ""
        return f"Conv2D({self.filters}, {kh}x{kw}, {self.padding}{extra})"

    def build(self, in_shape, rng, dtype=np.float32):
        ho, wo, self.pads = window_geometry("Conv2D", in_shape, self.kernel_size, self.stride,
                                            self.padding)
        c, (kh, kw) = in_shape[0], self.kernel_size
        self.in_shape = tuple(in_shape)
        self.out_shape = (self.filters, ho, wo)
        k = c * kh * kw
        self.params = {
            "W": self._init_weights(rng, (self.filters, k), k, self.filters * kh * kw, dtype),
            "b": np.zeros(self.filters, dtype=dtype),
        }
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.kernel = choose_kernel(self)
        self.onehot_kernel = OneHotKernel(self) if self.accepts_onehot() else None
        return self.out_shape

    def weights(self):
        """The effective weights ``(filters, c*kh*kw)``: ``W``, divided by the feature's
        size when ``normalize``."""
        W = self.params["W"]
        if self.normalize:
            W = W * W.dtype.type(1.0 / W.shape[1])
        return W

    def accepts_onehot(self):
        """True when this convolution reads a one-hot grid without densifying it: its
        kernel spans the whole width (an embedding lookup, as in sentence CNNs)."""
        c, h, w = self.in_shape
        return c == 1 and self.kernel_size[1] == w and self.pads[2] == self.pads[3] == 0

    def forward(self, x, training=False):
        """x: (n, c, h, w) -> (n, filters, h_out, w_out)

        The result may be a strided view of a buffer laid out in the order the matmul
        writes it: following layers read it through its strides, and no transposed
        copy is made.
        """
        kernel = self.kernel
        if is_onehot(x):
            if tuple(x.shape[1:]) != self.in_shape:
                check_input(self, x, self.in_shape)
            if self.onehot_kernel is not None:
                kernel = self.onehot_kernel
            else:
                x = x.toarray()
        if kernel is not self.onehot_kernel:
            check_input(self, x, self.in_shape)
        out = kernel.forward(x, self.weights(), self.params["b"], self.activation == "relu", training)
        self._ran = kernel if training else None
        return out

    def backward(self, grad, input_grad=True):
        """grad: (n, filters, h_out, w_out) -> (n, c, h, w) (None if not ``input_grad``);
        after a one-hot grid, the gradient at its hot cells, (n, h)."""
        kernel = getattr(self, "_ran", None)
        if kernel is None:
            raise RuntimeError("backward called without a training forward pass")
        self._ran = None
        W = self.weights()
        dx, dW, db = kernel.backward(grad, W, input_grad)
        if self.normalize:
            dW *= dW.dtype.type(1.0 / W.shape[1])
        self.grads["W"] = dW
        self.grads["b"] = db
        return dx
