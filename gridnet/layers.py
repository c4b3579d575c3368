"""Layers of the CNN core.

Every layer follows the same small contract (Keras' build/call split, micrograd's
forward-beside-backward):

- ``build(in_shape, rng, dtype)`` is called once the shape of one sample ``(c, h, w)``
  (or ``(d,)`` after :class:`Flatten`) is known; it creates the weights and returns the
  output shape of one sample.
- ``forward(x, training)`` maps a batch ``x`` of shape ``(n, *in_shape)`` to
  ``(n, *out_shape)`` and, when ``training`` is true, keeps what ``backward`` needs.
- ``backward(grad)`` takes ``dL/d(output)`` and returns ``dL/d(input)``; it fills
  ``grads`` with the same keys as ``params``.

Arrays are float32 in normal use; every layer also runs in float64 so that gradients can
be checked by finite differences.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = [
    "is_onehot", "Layer", "Conv2D", "ReLU", "MaxPool2D", "GlobalMaxPool", "Flatten", "Dense",
    "Dropout", "Branches",
]

# Largest im2col buffer one convolution builds at a time, in bytes. The batch is cut into
# chunks so that a large batch never makes an unbounded copy (Lasagne #700).
DEFAULT_CHUNK_BYTES = 32 * 2**20


def _pair(value, name):
    """Return ``value`` as a pair of positive ints (an int means a square)."""
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair of ints; got {value!r}") from None
    if a < 1 or b < 1:
        raise ValueError(f"{name} must be positive; got {value!r}")
    return a, b


def _check_activation(activation):
    if activation not in (None, "relu"):
        raise ValueError(f"activation must be None or 'relu'; got {activation!r}")
    return activation


def _check_input(layer, x, in_shape):
    if x.shape[1:] != tuple(in_shape):
        raise ValueError(
            f"{layer!r} was built for samples of shape {tuple(in_shape)}; "
            f"got a batch of shape {x.shape}")


def is_onehot(x):
    """True for a one-hot grid: an object with ``__onehot_grid__ = True``, ``shape``
    ``(n, 1, h, w)``, ``indices`` ``(n, h)`` (the hot column of each row, -1 for an
    all-zero row), ``toarray()`` and row indexing, such as the word-by-position grids
    of :class:`adapters.TextAdapter`. It stands for the dense 0/1 array ``toarray()``
    without storing its zeros; the core duck-types it and never imports an adapter."""
    return bool(getattr(x, "__onehot_grid__", False))


def _same_padding(size, window, stride):
    """Keras/TensorFlow 'same': output ceil(size / stride); return (out, before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return out, total // 2, total - total // 2


def _batch_slices(n, per_sample, chunk_bytes):
    """Slices of a batch of ``n`` whose work buffers (``per_sample`` bytes a sample) stay
    under ``chunk_bytes`` (at least one sample each)."""
    step = max(1, chunk_bytes // max(per_sample, 1))
    return [slice(a, min(a + step, n)) for a in range(0, n, step)]


def _zero_columns_from(col, row=None):
    """A function that zeroes columns ``col:`` (and rows ``row:``) of a 4-D buffer."""
    def zero(buf):
        if row is not None:
            buf[:, :, row:] = 0
        buf[:, :, :, col:] = 0
    return zero


def _alloc_like(shape, strides, dtype, zero=False):
    """A new array of ``shape`` whose axes lie in memory in the order of ``strides``
    (as ``np.empty_like(order="K")`` would do for an array with those strides)."""
    perm = sorted(range(len(shape)), key=lambda a: -abs(strides[a]))
    arr = (np.zeros if zero else np.empty)([shape[a] for a in perm], dtype=dtype)
    return arr.transpose(np.argsort(perm))


class Layer:
    """Base class: a layer without parameters that passes shapes through."""

    trainable = False

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.in_shape = None
        self.out_shape = None

    def _scratch(self, key, shape, dtype):
        """A reusable work buffer of ``shape`` owned by this layer.

        Large arrays allocated afresh on every batch cost page faults that take as long
        as the arithmetic; scratch space is kept between batches instead. It never
        holds anything that is returned to the caller.
        """
        ws = self.__dict__.setdefault("_ws", {})
        size = int(np.prod(shape))
        buf = ws.get(key)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = ws[key] = np.empty(size, dtype=dtype)
        return buf[:size].reshape(shape)

    def _scratch_zeroed(self, key, shape, dtype, zero):
        """``_scratch`` for a buffer with regions that stay zero between batches (the
        caller never writes them): ``zero(buf)`` runs only when the buffer is new or
        was last used with another shape."""
        buf = self._scratch(key, shape, dtype)
        ws, stamp = self._ws, (buf.shape, buf.dtype, buf.ctypes.data)
        if ws.get(("zeroed", key)) != stamp:
            zero(buf)
            ws[("zeroed", key)] = stamp
        return buf

    def __getstate__(self):
        # caches and scratch space are not part of a layer's state
        return {k: v for k, v in self.__dict__.items()
                if k not in ("_ws", "_cache", "_mask", "_active", "_fgeom")}

    def build(self, in_shape, rng, dtype=np.float32):
        """Create weights for samples of shape ``in_shape``; return the output shape."""
        self.in_shape = tuple(in_shape)
        self.out_shape = self.in_shape
        return self.out_shape

    def forward(self, x, training=False):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad, input_grad=True):  # pragma: no cover - abstract
        """dL/d(output) -> dL/d(input); with ``input_grad=False`` (the first layer of a
        network) only the parameter gradients are needed and None may be returned."""
        raise NotImplementedError

    def get_config(self):
        """The constructor arguments, JSON-serialisable (used by ``save``)."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    @property
    def n_params(self):
        return int(sum(p.size for p in self.params.values()))

    def describe(self):
        """A short one-line description for :meth:`gridnet.Network.summary`."""
        return type(self).__name__

    def _init_weights(self, rng, shape, fan_in, fan_out, dtype):
        init = getattr(self, "_resolved_init", None) or getattr(self, "init", "glorot")
        if init == "auto":
            init = "glorot"
        if init == "he":
            std = np.sqrt(2.0 / fan_in)
            w = rng.standard_normal(shape) * std
        elif init == "glorot":
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=shape)
        else:
            raise ValueError(f"init must be 'he', 'glorot' or 'auto'; got {init!r}")
        return w.astype(dtype)


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

    Shapes: ``(n, c, h, w) -> (n, filters, h_out, w_out)``.

    Examples
    --------
    >>> import numpy as np
    >>> from gridnet.layers import Conv2D
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
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = padding
        self.normalize = bool(normalize)
        self.activation = _check_activation(activation)
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
        if len(in_shape) != 3:
            raise ValueError(f"Conv2D needs samples shaped (c, h, w); got {tuple(in_shape)}")
        c, h, w = in_shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if self.padding == "same":
            ho, pt, pb = _same_padding(h, kh, sh)
            wo, pl, pr = _same_padding(w, kw, sw)
        elif self.padding == "full":        # every window that overlaps the input
            pt = pb = kh - 1
            pl = pr = kw - 1
            ho, wo = (h + kh - 2) // sh + 1, (w + kw - 2) // sw + 1
        else:
            if kh > h or kw > w:
                raise ValueError(
                    f"Conv2D kernel {kh}x{kw} is larger than its input grid {h}x{w}; "
                    "use a smaller kernel, padding='same', or a larger input")
            ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
            pt = pb = pl = pr = 0
        self._pads = (pt, pb, pl, pr)
        self.in_shape = tuple(in_shape)
        self.out_shape = (self.filters, ho, wo)
        k = c * kh * kw
        self.params = {
            "W": self._init_weights(rng, (self.filters, k), k, self.filters * kh * kw, dtype),
            "b": np.zeros(self.filters, dtype=dtype),
        }
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        # im2col layout: loop over kernel offsets when there are fewer of them than
        # output positions (columns laid out (K, n*P)), else over whole windows ((n*P, K)).
        # With stride 1, outputs are computed over the padded width too ("shift"), so that
        # each kernel offset is one constant shift of the flattened image: every copy and
        # scatter-add is then one long contiguous run, worth the few junk columns.
        self._by_offset = kh * kw <= ho * wo
        self._shift = self._by_offset and (sh, sw) == (1, 1) and kw > 1
        return self.out_shape

    # -- helpers -------------------------------------------------------------------------
    def _pad(self, x):
        pt, pb, pl, pr = self._pads
        if not (pt or pb or pl or pr):
            return x
        return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))

    def _windows(self, xp):
        """View ``(m, c, ho, wo, kh, kw)`` of the padded chunk ``xp`` (no copy)."""
        m, c = xp.shape[:2]
        _, ho, wo = self.out_shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        s = xp.strides
        return as_strided(xp, (m, c, ho, wo, kh, kw),
                          (s[0], s[1], s[2] * sh, s[3] * sw, s[2], s[3]), writeable=False)

    def _flat_geometry(self):
        c, h, w = self.in_shape
        pt, pb, pl, pr = self._pads
        hp, wp = h + pt + pb, w + pl + pr
        return hp, wp, hp * wp + self.kernel_size[1] - 1

    def _im2col_shift(self, x, key):
        """Columns ``(K, m*ho*wp)`` of chunk ``x`` (m, c, h, w), outputs over padded width."""
        m = x.shape[0]
        c, h, w = self.in_shape
        pt, _, pl, _ = self._pads
        _, ho, _ = self.out_shape
        kh, kw = self.kernel_size
        hp, wp, L = self._flat_geometry()
        xf = self._scratch("xflat", (c, m, L), x.dtype)
        xf.fill(0)
        xf[:, :, :hp * wp].reshape(c, m, hp, wp)[:, :, pt:pt + h, pl:pl + w] = x.transpose(1, 0, 2, 3)
        P = ho * wp
        cols = self._scratch(key, (c, kh, kw, m, P), x.dtype)
        for i in range(kh):
            for j in range(kw):
                cols[:, i, j] = xf[:, :, i * wp + j:i * wp + j + P]
        return cols.reshape(c * kh * kw, m * P)

    def _col2im_shift(self, dcols, m, dx):
        c, h, w = self.in_shape
        pt, _, pl, _ = self._pads
        _, ho, _ = self.out_shape
        kh, kw = self.kernel_size
        hp, wp, L = self._flat_geometry()
        P = ho * wp
        dxf = self._scratch("dxflat", (c, m, L), dcols.dtype)
        dxf.fill(0)
        d = dcols.reshape(c, kh, kw, m, P)
        for i in range(kh):
            for j in range(kw):
                dxf[:, :, i * wp + j:i * wp + j + P] += d[:, i, j]
        dx[...] = dxf[:, :, :hp * wp].reshape(c, m, hp, wp)[:, :, pt:pt + h, pl:pl + w]

    def _im2col(self, xp, key):
        """Contiguous columns: ``(K, m*P)`` by offset or ``(m*P, K)`` by window."""
        win = self._windows(xp)
        m, c, ho, wo, kh, kw = win.shape
        if self._by_offset:
            cols = self._scratch(key, (c, kh, kw, m, ho, wo), xp.dtype)
            cols[...] = win.transpose(1, 4, 5, 0, 2, 3)
            return cols.reshape(c * kh * kw, m * ho * wo)
        cols = self._scratch(key, (m, ho, wo, c, kh, kw), xp.dtype)
        cols[...] = win.transpose(0, 2, 3, 1, 4, 5)
        return cols.reshape(m * ho * wo, c * kh * kw)

    def _col2im(self, dcols, m, dx):
        """Scatter-add columns onto the input gradient ``dx``: ``(c, m, h, w)`` by
        offset, ``(m, c, h, w)`` by window."""
        c, h, w = self.in_shape
        pt, pb, pl, pr = self._pads
        _, ho, wo = self.out_shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if self._by_offset:
            # accumulate in (c, m, hp, wp): every offset's block of columns is contiguous
            dxp = self._scratch("dxp", (c, m, h + pt + pb, w + pl + pr), dcols.dtype)
            dxp.fill(0)
            d = dcols.reshape(c, kh, kw, m, ho, wo)
            for i in range(kh):
                for j in range(kw):
                    dxp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += d[:, i, j]
            dx[...] = dxp[:, :, pt:pt + h, pl:pl + w]
        else:
            dxp = self._scratch("dxp", (m, c, h + pt + pb, w + pl + pr), dcols.dtype)
            dxp.fill(0)
            d = dcols.reshape(m, ho, wo, c, kh, kw)
            for i in range(ho):
                for j in range(wo):
                    dxp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += d[:, i, j]
            dx[...] = dxp[:, :, pt:pt + h, pl:pl + w]

    def _chunks(self, n, itemsize):
        c, _, _ = self.in_shape
        kh, kw = self.kernel_size
        width = self._flat_geometry()[1] if self._shift else self.out_shape[2]
        per_sample = c * kh * kw * self.out_shape[1] * width * itemsize
        return _batch_slices(n, per_sample, self.chunk_bytes)

    def _weights(self):
        W = self.params["W"]
        if self.normalize:
            W = W * W.dtype.type(1.0 / W.shape[1])
        return W

    # -- forward / backward --------------------------------------------------------------
    def accepts_onehot(self):
        """True when this convolution reads a one-hot grid without densifying it: its
        kernel spans the whole width (an embedding lookup, as in sentence CNNs)."""
        c, h, w = self.in_shape
        return c == 1 and self.kernel_size[1] == w and self._pads[2] == self._pads[3] == 0

    def _forward_onehot(self, x, training):
        """One-hot grid (n, 1, h, w) -> (n, filters, h_out, 1) by gathering weight rows:
        feature ``f`` at output row ``t`` is ``sum_i W[f, i, hot(t*sh + i)] + b``."""
        n = x.shape[0]
        f, ho, _ = self.out_shape
        kh, sh = self.kernel_size[0], self.stride[0]
        pt, pb = self._pads[:2]
        w = self.in_shape[2]
        idx = np.asarray(x.indices)
        if idx.shape != (n, self.in_shape[1]):
            raise ValueError(f"one-hot grid indices have shape {idx.shape}; expected {(n, self.in_shape[1])}")
        idx = np.where(idx < 0, w, idx)             # row w of the table below is zeros
        if pt or pb:
            idx = np.pad(idx, ((0, 0), (pt, pb)), constant_values=w)
        W3 = self._weights().reshape(f, kh, w)
        table = np.zeros((w + 1, f), dtype=W3.dtype)
        out = np.zeros((n, ho, f), dtype=W3.dtype)
        rows = []
        for i in range(kh):
            r = idx[:, i:i + sh * (ho - 1) + 1:sh]
            table[:w] = W3[:, i, :].T
            out += table[r]
            rows.append(r)
        out += self.params["b"]
        if self.activation == "relu":
            np.maximum(out, 0, out=out)
        out = np.ascontiguousarray(out.transpose(0, 2, 1)).reshape(n, f, ho, 1)
        self._cache = ("onehot", rows) if training else None
        self._active = (out > 0) if training and self.activation == "relu" else None
        return out

    def _backward_onehot(self, grad, rows):
        from scipy import sparse
        n = grad.shape[0]
        f, ho, _ = self.out_shape
        w = self.in_shape[2]
        g = grad if self._active is None else grad * self._active
        g = np.ascontiguousarray(g.reshape(n, f, ho).transpose(0, 2, 1)).reshape(n * ho, f)
        dW = np.zeros((f, len(rows), w), dtype=grad.dtype)
        ones = np.ones(n * ho, dtype=grad.dtype)
        cols = np.arange(n * ho)
        for i, r in enumerate(rows):
            hot = sparse.csr_matrix((ones, (r.reshape(-1), cols)), shape=(w + 1, n * ho))
            dW[:, i, :] = (hot @ g)[:w].T
        dW = dW.reshape(f, -1)
        if self.normalize:
            dW *= dW.dtype.type(1.0 / dW.shape[1])
        self.grads["W"] = dW
        self.grads["b"] = g.sum(axis=0)
        self._cache = self._active = None

    def _buffer(self, n, dtype):
        """The output buffer in the memory order the matmul writes: ``(f, n, ho, wp)``
        (shift: outputs over the padded width), ``(f, n, ho, wo)`` (by offset) or
        ``(n, ho, wo, f)`` (by window)."""
        f, ho, wo = self.out_shape
        if self._shift:
            return np.empty((f, n, ho, self._flat_geometry()[1]), dtype)
        if self._by_offset:
            return np.empty((f, n, ho, wo), dtype)
        return np.empty((n, ho, wo, f), dtype)

    def _nchw(self, buf):
        """View ``(n, f, ho, wo)`` of an output-ordered buffer (no copy)."""
        wo = self.out_shape[2]
        if self._by_offset:
            return buf[:, :, :, :wo].transpose(1, 0, 2, 3)
        return buf.transpose(0, 3, 1, 2)

    def _ordered(self, a):
        """View of an ``(n, f, ho, wo)`` array in the buffer's axis order."""
        return a.transpose(1, 0, 2, 3) if self._by_offset else a.transpose(0, 2, 3, 1)

    def forward(self, x, training=False):
        """x: (n, c, h, w) -> (n, filters, h_out, w_out)

        The result is a view of a buffer laid out in the order the matmul writes it
        (see ``_buffer``): following layers read it through its strides, and no
        transposed copy is made.
        """
        if is_onehot(x):
            if tuple(x.shape[1:]) != self.in_shape:
                _check_input(self, x, self.in_shape)
            if self.accepts_onehot():
                return self._forward_onehot(x, training)
            x = x.toarray()
        _check_input(self, x, self.in_shape)
        n = x.shape[0]
        f, ho, wo = self.out_shape
        W, b = self._weights(), self.params["b"]
        relu = self.activation == "relu"
        buf = self._buffer(n, x.dtype)
        chunks = self._chunks(n, x.dtype.itemsize)
        whole = len(chunks) == 1
        cache = []
        for k, sl in enumerate(chunks):
            m = sl.stop - sl.start
            key = ("cols", k) if training else "cols"
            if self._by_offset:
                cols = (self._im2col_shift(x[sl], key) if self._shift
                        else self._im2col(self._pad(x[sl]), key))
                width = buf.shape[3]
                y = (buf.reshape(f, n * ho * width) if whole
                     else self._scratch("y", (f, m * ho * width), x.dtype))
                np.matmul(W, cols, out=y)
                y += b[:, None]
                if relu:
                    np.maximum(y, 0, out=y)
                if not whole:
                    buf[:, sl] = y.reshape(f, m, ho, width)
            else:
                cols = self._im2col(self._pad(x[sl]), key)
                y = buf[sl].reshape(m * ho * wo, f)         # a contiguous block
                np.matmul(cols, W.T, out=y)
                y += b
                if relu:
                    np.maximum(y, 0, out=y)
            if training:
                cache.append((sl, cols))
        self._cache = cache if training else None
        self._active = (buf > 0) if training and relu else None
        return self._nchw(buf)

    def backward(self, grad, input_grad=True):
        """grad: (n, filters, h_out, w_out) -> (n, c, h, w) (None if not ``input_grad``)"""
        if getattr(self, "_cache", None) is None:
            raise RuntimeError("backward called without a training forward pass")
        if isinstance(self._cache, tuple):
            self._backward_onehot(grad, self._cache[1])
            return None     # the input was a one-hot grid: data, not a variable
        n = grad.shape[0]
        f, ho, wo = self.out_shape
        c, h, w = self.in_shape
        W = self._weights()
        dW = np.zeros_like(W)
        db = np.zeros_like(self.params["b"])
        src = self._ordered(grad)
        active = self._active            # (buf > 0), in the buffer's order
        if active is not None and self._by_offset:
            active = active[:, :, :, :wo]
        dxbuf = None
        if input_grad:      # the input gradient in the order col2im accumulates it
            dxbuf = (np.empty((c, n, h, w), grad.dtype) if self._by_offset
                     else np.empty((n, c, h, w), grad.dtype))
        for sl, cols in self._cache:
            m = sl.stop - sl.start
            if self._by_offset:
                wq = self._flat_geometry()[1] if self._shift else wo
                # junk columns (shift) carry no gradient: zero once, never written
                g = self._scratch_zeroed("g", (f, m, ho, wq), grad.dtype, _zero_columns_from(wo))
                dst, s_, a_ = g[:, :, :, :wo], src[:, sl], None if active is None else active[:, sl]
            else:
                g = self._scratch("g", (m, ho, wo, f), grad.dtype)
                dst, s_, a_ = g, src[sl], None if active is None else active[sl]
            if a_ is None:       # the gradient copied into the matmul's order, masked
                dst[...] = s_    # by the fused ReLU on the way
            else:
                np.multiply(s_, a_, out=dst)
            if self._by_offset:
                g = g.reshape(f, -1)
                db += g.sum(axis=1)
                dW += (cols @ g.T).T      # OpenBLAS: much faster than g @ cols.T here
                if input_grad:   # the columns are spent: their buffer takes dcols
                    dcols = np.matmul(W.T, g, out=cols)
                    if self._shift:
                        self._col2im_shift(dcols, m, dxbuf[:, sl])
                    else:
                        self._col2im(dcols, m, dxbuf[:, sl])
            else:
                g = g.reshape(m * ho * wo, f)
                db += g.sum(axis=0)
                dW += g.T @ cols
                if input_grad:
                    self._col2im(np.matmul(g, W, out=cols), m, dxbuf[sl])
        if self.normalize:
            dW *= dW.dtype.type(1.0 / W.shape[1])
        self.grads["W"] = dW
        self.grads["b"] = db
        self._cache = self._active = None
        if not input_grad:
            return None
        return dxbuf.transpose(1, 0, 2, 3) if self._by_offset else dxbuf


class ReLU(Layer):
    """Rectified linear unit, ``max(x, 0)``, any shape."""

    def forward(self, x, training=False):
        y = np.maximum(x, 0)
        self._mask = (y > 0) if training else None
        return y

    def backward(self, grad, input_grad=True):
        return grad * self._mask


class MaxPool2D(Layer):
    """Max pooling over ``window`` with ``stride`` (default: the window).

    Any window/stride pair works, overlapping windows (window 3, stride 2) included.
    With ``padding="valid"`` a ragged edge that no whole window covers is dropped (and
    gets zero gradient); ``"same"`` pads with -inf so that the output is
    ``ceil(h / stride)`` high, as in Keras.

    Shapes: ``(n, c, h, w) -> (n, c, h_out, w_out)``.

    Examples
    --------
    >>> import numpy as np
    >>> from gridnet.layers import MaxPool2D
    >>> pool = MaxPool2D(2)
    >>> pool.build((1, 4, 4), None)
    (1, 2, 2)
    >>> pool.forward(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    """

    def __init__(self, window=2, stride=None, padding="valid"):
        super().__init__()
        if padding not in ("valid", "same", "full"):
            raise ValueError(f"padding must be 'valid', 'same' or 'full'; got {padding!r}")
        self.window = _pair(window, "window")
        self.stride = _pair(stride if stride is not None else window, "stride")
        self.padding = padding

    def get_config(self):
        return {"window": list(self.window), "stride": list(self.stride),
                "padding": self.padding}

    def describe(self):
        (ph, pw), (sh, sw) = self.window, self.stride
        return f"MaxPool2D({ph}x{pw}, stride {sh}x{sw}, {self.padding})"

    def build(self, in_shape, rng, dtype=np.float32):
        if len(in_shape) != 3:
            raise ValueError(f"MaxPool2D needs samples shaped (c, h, w); got {tuple(in_shape)}")
        c, h, w = in_shape
        (ph, pw), (sh, sw) = self.window, self.stride
        if self.padding == "same":
            ho, pt, pb = _same_padding(h, ph, sh)
            wo, pl, pr = _same_padding(w, pw, sw)
        else:
            if ph > h or pw > w:
                raise ValueError(f"MaxPool2D window {ph}x{pw} is larger than its input grid {h}x{w}")
            ho, wo = (h - ph) // sh + 1, (w - pw) // sw + 1
            pt = pb = pl = pr = 0
        self._pads = (pt, pb, pl, pr)
        self.in_shape = tuple(in_shape)
        self.out_shape = (c, ho, wo)
        return self.out_shape

    def _padded(self, x):
        pt, pb, pl, pr = self._pads
        if not (pt or pb or pl or pr):
            return x
        return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=-np.inf)

    @staticmethod
    def _views(x, axis, window, stride, size):
        """The ``window`` strided views of ``x`` along ``axis`` (2 or 3), one per offset."""
        out = []
        for k in range(window):
            sl = [slice(None)] * 4
            sl[axis] = slice(k, k + stride * (size - 1) + 1, stride)
            out.append(x[tuple(sl)])
        return out

    def _stages(self):
        """The pooling as two 1-D passes: along the width, then along the height."""
        _, ho, wo = self.out_shape
        (ph, pw), (sh, sw) = self.window, self.stride
        return (3, pw, sw, wo), (2, ph, sh, ho)

    def forward(self, x, training=False):
        """x: (n, c, h, w) -> (n, c, h_out, w_out)

        The maximum over a window is the maximum over its rows of the maximum along
        each row: two passes of ``np.maximum`` over strided views, each array in the
        memory order of the input.
        """
        _check_input(self, x, self.in_shape)
        xs = [self._padded(x)]
        for axis, window, stride, size in self._stages():
            if window == 1 and stride == 1:
                xs.append(xs[-1])
                continue
            views = self._views(xs[-1], axis, window, stride, size)
            y = np.copy(views[0], order="K")
            for v in views[1:]:
                np.maximum(y, v, out=y)
            xs.append(y)
        self._cache = xs if training else None
        return xs[-1]

    def backward(self, grad, input_grad=True):
        """grad: (n, c, h_out, w_out) -> (n, c, h, w); ties go to the first maximum
        (in C order over the window: the first row holding it, then the first column)."""
        xs, self._cache = self._cache, None
        c, h, w = self.in_shape
        pt, _, pl, _ = self._pads
        for (axis, window, stride, size), x, y in zip(self._stages()[::-1], xs[1::-1], xs[:0:-1]):
            if window == 1 and stride == 1:
                continue
            exact = stride == window and stride * size == x.shape[axis]
            # every input position receives exactly one value when windows tile the axis
            dx = _alloc_like(x.shape, x.strides, grad.dtype, zero=not exact)
            rest = np.empty_like(y, dtype=grad.dtype)    # in the memory order of y
            rest[...] = grad
            views = self._views(x, axis, window, stride, size)
            dviews = self._views(dx, axis, window, stride, size)
            for k, (v, dv) in enumerate(zip(views, dviews)):
                last = k == window - 1               # what no earlier offset took
                if exact:
                    if last:
                        dv[...] = rest
                    else:
                        np.multiply(rest, v == y, out=dv)
                        rest -= dv
                else:
                    part = rest if last else rest * (v == y)
                    dv += part
                    if not last:
                        rest -= part
            grad = dx
        return grad[:, :, pt:pt + h, pl:pl + w]


class GlobalMaxPool(Layer):
    """Maximum over a whole axis ("max over time" in sentence CNNs).

    Parameters
    ----------
    axis : {"height", "width", "both"}, default "height"
        The axis reduced; it is kept with size 1.

    Shapes: ``(n, c, h, w) -> (n, c, 1, w)`` for "height", ``(n, c, h, 1)`` for
    "width", ``(n, c, 1, 1)`` for "both".
    """

    _AXES = {"height": (2,), "width": (3,), "both": (2, 3)}

    def __init__(self, axis="height"):
        super().__init__()
        if axis not in self._AXES:
            raise ValueError(f"axis must be 'height', 'width' or 'both'; got {axis!r}")
        self.axis = axis

    def get_config(self):
        return {"axis": self.axis}

    def describe(self):
        return f"GlobalMaxPool({self.axis})"

    def build(self, in_shape, rng, dtype=np.float32):
        if len(in_shape) != 3:
            raise ValueError(f"GlobalMaxPool needs samples shaped (c, h, w); got {tuple(in_shape)}")
        c, h, w = in_shape
        self.in_shape = tuple(in_shape)
        self.out_shape = (c, 1 if self.axis != "width" else h, 1 if self.axis != "height" else w)
        return self.out_shape

    def forward(self, x, training=False):
        _check_input(self, x, self.in_shape)
        n, c, h, w = x.shape
        if self.axis == "both" or (self.axis == "height" and w == 1):
            out = x.reshape(n, c, h * w).max(axis=2).reshape((n,) + self.out_shape)
        else:   # numpy reduces a non-last axis well with pairwise maxima
            out = x.max(axis=self._AXES[self.axis], keepdims=True)
        self._cache = (x, out) if training else None
        return out

    def backward(self, grad, input_grad=True):
        """The gradient goes to the maximum of each reduced line; on ties, to the first
        one (in C order over the reduced axes)."""
        x, out = self._cache
        self._cache = None
        hit = np.equal(x, out)                  # out keeps the reduced axes (size 1)
        if np.count_nonzero(hit) != out.size:   # ties: keep the first hit of each line
            if self.axis == "both":
                n, c, h, w = x.shape
                seen = np.cumsum(hit.reshape(n, c, h * w), axis=2, dtype=np.int32).reshape(x.shape)
            else:
                seen = np.cumsum(hit, axis=self._AXES[self.axis][0], dtype=np.int32)
            hit &= seen == 1
        return np.multiply(hit, grad)


class Flatten(Layer):
    """``(n, c, h, w) -> (n, c*h*w)`` in C order."""

    def build(self, in_shape, rng, dtype=np.float32):
        self.in_shape = tuple(in_shape)
        self.out_shape = (int(np.prod(in_shape)),)
        return self.out_shape

    def forward(self, x, training=False):
        _check_input(self, x, self.in_shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, grad, input_grad=True):
        return grad.reshape((grad.shape[0],) + self.in_shape)


class Dense(Layer):
    """Fully connected layer, ``(n, d) -> (n, units)``, with an optional fused
    ``activation="relu"``.

    Examples
    --------
    >>> import numpy as np
    >>> from gridnet.layers import Dense
    >>> dense = Dense(3)
    >>> dense.build((5,), np.random.default_rng(0))
    (3,)
    >>> dense.forward(np.zeros((2, 5), np.float32)).shape
    (2, 3)
    """

    trainable = True

    def __init__(self, units, activation=None, init="auto"):
        super().__init__()
        if int(units) < 1:
            raise ValueError(f"units must be a positive int; got {units!r}")
        self.units = int(units)
        self.activation = _check_activation(activation)
        self.init = init

    def get_config(self):
        return {"units": self.units, "activation": self.activation, "init": self.init}

    def describe(self):
        return f"Dense({self.units}{', ' + self.activation if self.activation else ''})"

    def build(self, in_shape, rng, dtype=np.float32):
        if len(in_shape) != 1:
            raise ValueError(
                f"Dense needs flat samples (d,); got {tuple(in_shape)}: put a Flatten before it")
        d = in_shape[0]
        self.in_shape = tuple(in_shape)
        self.out_shape = (self.units,)
        self.params = {"W": self._init_weights(rng, (d, self.units), d, self.units, dtype),
                       "b": np.zeros(self.units, dtype=dtype)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        return self.out_shape

    def forward(self, x, training=False):
        """x: (n, d) -> (n, units)"""
        _check_input(self, x, self.in_shape)
        y = x @ self.params["W"]
        y += self.params["b"]
        if self.activation == "relu":
            np.maximum(y, 0, out=y)
        self._cache = (x, y if self.activation else None) if training else None
        return y

    def backward(self, grad, input_grad=True):
        x, y = self._cache
        if y is not None:
            grad = grad * (y > 0)
        self.grads["W"] = x.T @ grad
        self.grads["b"] = grad.sum(axis=0)
        self._cache = None
        return grad @ self.params["W"].T if input_grad else None


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability ``rate`` and
    scale the rest by ``1 / (1 - rate)``; identity at inference. Any shape.

    The random generator is the one given to ``build`` (from the network's
    ``random_state``), so runs are reproducible.
    """

    def __init__(self, rate=0.5):
        super().__init__()
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1); got {rate!r}")
        self.rate = float(rate)

    def get_config(self):
        return {"rate": self.rate}

    def describe(self):
        return f"Dropout({self.rate:g})"

    def build(self, in_shape, rng, dtype=np.float32):
        self._rng = rng
        return super().build(in_shape, rng, dtype)

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        keep = x.dtype.type(1.0 / (1.0 - self.rate))
        self._mask = (self._rng.random(x.shape, dtype=np.float32) >= self.rate) * keep
        self._mask = self._mask.astype(x.dtype, copy=False)
        return x * self._mask

    def backward(self, grad, input_grad=True):
        return grad if self._mask is None else grad * self._mask


class Branches(Layer):
    """Several stacks of layers run side by side on the same input, their outputs
    concatenated along the channel axis (Kim's filter heights 3, 4 and 5).

    Parameters
    ----------
    branches : list of list of Layer
        Each inner list is a stack; all stacks must give outputs that agree on every
        axis but the first (channels).

    Shapes: ``(n, c, h, w) -> (n, sum of branch channels, h', w')``.

    Examples
    --------
    >>> import numpy as np
    >>> from gridnet.layers import Branches, Conv2D, GlobalMaxPool
    >>> block = Branches([[Conv2D(2, (k, 5)), GlobalMaxPool()] for k in (3, 4)])
    >>> block.build((1, 10, 5), np.random.default_rng(0))
    (4, 1, 1)
    """

    trainable = True

    def __init__(self, branches):
        super().__init__()
        branches = [list(b) for b in branches]
        if not branches or not all(branches):
            raise ValueError("Branches needs at least one non-empty list of layers")
        self.branches = branches

    def get_config(self):
        return {"branches": [[{"type": type(l).__name__, **l.get_config()} for l in b]
                             for b in self.branches]}

    def describe(self):
        return f"Branches({len(self.branches)}, concatenated on channels)"

    @property
    def sublayers(self):
        return [layer for branch in self.branches for layer in branch]

    def build(self, in_shape, rng, dtype=np.float32):
        from .network import build_stack
        shapes = [build_stack(branch, in_shape, rng, dtype) for branch in self.branches]
        rest = {s[1:] for s in shapes}
        if len(rest) != 1 or any(len(s) != 3 for s in shapes):
            raise ValueError(
                f"Branches outputs must agree on every axis but channels; got {shapes}")
        self.in_shape = tuple(in_shape)
        self._splits = np.cumsum([s[0] for s in shapes])[:-1]
        self.out_shape = (int(sum(s[0] for s in shapes)),) + shapes[0][1:]
        self._collect()
        return self.out_shape

    def _collect(self):
        """Expose the sublayers' arrays as ``params``/``grads`` with prefixed keys."""
        self.params, self.grads = {}, {}
        for b, branch in enumerate(self.branches):
            for i, layer in enumerate(branch):
                for key, value in layer.params.items():
                    self.params[f"{b}.{i}.{key}"] = value
                for key, value in layer.grads.items():
                    self.grads[f"{b}.{i}.{key}"] = value

    def forward(self, x, training=False):
        from .network import forward_stack
        _check_input(self, x, self.in_shape)
        outs = []
        for branch in self.branches:
            y = x.toarray() if is_onehot(x) and not isinstance(branch[0], Conv2D) else x
            outs.append(forward_stack(branch, y, training))
        return np.concatenate(outs, axis=1)

    def backward(self, grad, input_grad=True):
        from .network import backward_stack
        dx = None
        for branch, g in zip(self.branches, np.split(grad, self._splits, axis=1)):
            g = backward_stack(branch, g, input_grad)
            if input_grad:
                dx = g if dx is None else dx + g
        self._collect()
        return dx
