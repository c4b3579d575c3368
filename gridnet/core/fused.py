"""A convolution and the max pooling that follows it, computed together: a tiling max
pool (:class:`ConvPool`) or a max over all positions (:class:`ConvMax`).

``Conv2D(stride 1) -> MaxPool2D(window == stride, tiling the grid)`` is the commonest
pair in an image CNN. Computed one after the other, the pooling reads the
convolution's output through strided views (every other value of every row), which
costs more than the matmul on small networks. Computed together, the convolution
writes its output already sorted by window offset ("space to depth"): for a 2x2 pool,
four contiguous blocks holding the top-left, top-right, bottom-left and bottom-right
value of every window. The pooling is then a max over contiguous blocks, and bias and
ReLU are applied after it, on a quarter of the values (both commute with the maximum);
a training pass keeps only which offset held each maximum (a byte a window), from which
the backward pass routes the gradient. Those passes are :mod:`gridnet.core.kernels`'
(compiled, with a numpy twin). The result, and the gradients, are the same as the two
layers' (up to float rounding in the order of sums).

:class:`ConvPool` is a layer of its own that the stack builder plans in place of such a
pair (:func:`gridnet.core.stack.plan`); the two layers keep their parameters and
configuration (a saved model does not know about the fusion), and the fused step keeps
its own geometry, work buffers and cache. It reads the convolution's public configuration
(``pads``, ``weights()``, ``params``) and writes its ``grads``, as the layer contract
allows.

Geometry, for a pool window ``(ph, pw)``: output position ``(y, x) = (ph*Y + a,
pw*X + b)`` reads padded input row ``y + i = ph*(Y + q) + s``, i.e. the input split
into ``ph*pw`` phases ``xs[c, s, t, n, Yq, Xq] = x_padded[n, c, ph*Yq + s,
pw*Xq + t]``, shifted by ``(q, r)``. Each phase is flattened row by row (width
``Wq``), so that a shift is one constant offset and im2col copies long contiguous
runs, as in :class:`gridnet.core.conv.ShiftKernel`; the few output rows and columns past the
grid ("junk") are computed and ignored.
"""
from __future__ import annotations

import numpy as np

from . import kernels
from .conv import Conv2D, OffsetKernel, col2im_shifts, im2col_shifts
from .layers import GlobalMaxPool, Layer, MaxPool2D, Workspace, batch_slices, is_onehot

__all__ = ["ConvPool", "ConvMax"]

#: :class:`ConvPool`'s chunks when not training: at most this many bytes of columns, so
#: that im2col's columns are still in the cache when the matmul reads them (the same
#: outputs, bit for bit: each output column is its own matmul). Training keeps the
#: convolution's ``chunk_bytes``, its columns being kept for the backward pass anyway.
#: Measured: docs/benchmarks.md, "Constants chosen by measurement".
INFERENCE_CHUNK_BYTES = 4 * 2**20


def _geometry(conv, pool):
    c, h, w = conv.in_shape
    pt, pb, pl, pr = conv.pads
    f, ho, wo = conv.out_shape
    kh, kw = conv.kernel_size
    ph, pw = pool.window
    Ho, Wo = ho // ph, wo // pw
    qmax, rmax = (ph + kh - 2) // ph, (pw + kw - 2) // pw
    Hq, Wq = Ho + qmax, Wo + rmax
    # (phase s, t) -> (first input row/column of that phase, its place in the phase,
    # how many); every input value lands in exactly one phase, but for the last rows
    # or columns of a grid that the pool does not tile: they feed only convolution
    # outputs that the pool drops, so they are left out (and get no gradient)
    def runs(pad, size, step, room):
        out = []
        for s in range(step):
            z0 = (s - pad) % step
            at = (z0 + pad) // step
            out.append((z0, at, max(0, min(len(range(z0, size, step)), room - at))))
        return out
    rows, cols = runs(pt, h, ph, Hq), runs(pl, w, pw, Wq)
    # kernel offset (i, j) and window offset (a, b), in that order -> (phase s*pw + t,
    # flat offset of the shift)
    shifts = [(((a + i) % ph) * pw + (b + j) % pw, ((a + i) // ph) * Wq + (b + j) // pw)
              for i in range(kh) for j in range(kw) for a in range(ph) for b in range(pw)]
    # each sample's phase is Hq x Wq, samples one after the other: a shift reads one
    # long run over the whole chunk (valid outputs never cross into the next sample;
    # junk ones may, and get no gradient); the tail keeps the last shifts in bounds
    ragged = sum(n for _, _, n in rows) < h or sum(n for _, _, n in cols) < w
    return dict(c=c, h=h, w=w, f=f, kh=kh, kw=kw, ph=ph, pw=pw, Ho=Ho, Wo=Wo, Hq=Hq, Wq=Wq,
                P=Hq * Wq, tail=qmax * Wq + rmax, rows=rows, cols=cols, shifts=shifts,
                ragged=ragged, row_array=np.array(rows, np.int64).reshape(-1, 3),
                col_array=np.array(cols, np.int64).reshape(-1, 3),
                shift_array=np.array(shifts, np.int64).reshape(-1, 2))


def _phase_pairs(G, buf, m):
    """For each phase ``(s, t)``: the index of its values in an ``(m, c, h, w)`` grid
    (``(c, m, h, w)`` for a gradient) and their view ``(c, m, rows, cols)`` in the
    phase buffer ``buf`` ``(c, ph, pw, m*P + tail)``."""
    c, ph, pw, Hq, Wq = G["c"], G["ph"], G["pw"], G["Hq"], G["Wq"]
    for s, (y0, Y0, ny) in enumerate(G["rows"]):
        for t, (x0, X0, nx) in enumerate(G["cols"]):
            phase = buf[:, s, t, :m * G["P"]].reshape(c, m, Hq, Wq)[:, :, Y0:Y0 + ny, X0:X0 + nx]
            yield (slice(None), slice(None), slice(y0, y0 + ph * ny, ph),
                   slice(x0, x0 + pw * nx, pw)), phase


class _FusedPair(Layer):
    """What the fused steps share: the pair, built and accepted by ``fusable``, a
    cache that says whether the last training pass was fused, and the kernels'
    choice. Subclasses define ``fusable`` and the fused passes."""

    TRANSIENT = Layer.TRANSIENT + ("ws",)
    #: the inner loops' implementation: None for :func:`gridnet.core.kernels.backend`'s,
    #: or "numba" / "numpy" set on an instance (the tests compare the two)
    kernels = None

    def __init__(self, conv, pool):
        super().__init__()
        if not self.fusable(conv, pool):
            raise ValueError(f"{conv!r} and {pool!r} cannot run as one fused step")
        self.conv, self.pool = conv, pool
        self.in_shape, self.out_shape = conv.in_shape, pool.out_shape
        self.ws = Workspace()
        self._cache = None

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.ws, self._cache = Workspace(), None

    def backward(self, grad, input_grad=True):
        """dL/dx for the pair's output gradient ``grad``; fills the convolution's
        ``grads``. After a pass through the two layers, their own backward passes."""
        cache, self._cache = self._cache, None
        if cache == "separate":
            return self.conv.backward(self.pool.backward(grad), input_grad)
        if cache is None:
            raise RuntimeError("backward called without a training forward pass")
        return self._fused_backward(cache, grad, input_grad)

    @property
    def ran_fused(self):
        """True when the last training forward pass was a fused one (and its backward
        pass is still to come)."""
        return isinstance(self._cache, dict)


class ConvPool(_FusedPair):
    """``pool.forward(conv.forward(x))``, computed together; see the module docstring.

    Made by :func:`gridnet.core.stack.plan` for a built pair that :meth:`fusable`
    accepts. A one-hot grid, or a batch of another shape, runs through the two layers
    one after the other (they raise the usual errors).

    Shapes: ``(n, c, h, w) -> (n, f, h_out / ph, w_out / pw)``.
    """

    def __init__(self, conv, pool):
        super().__init__(conv, pool)
        self.geometry = _geometry(conv, pool)

    @staticmethod
    def fusable(conv, pool):
        """True when built layers ``conv`` then ``pool`` can run as one fused step: a
        stride-1 convolution, then a max pool whose windows tile its output (but for
        a last row or column that the pool drops)."""
        if type(conv) is not Conv2D or type(pool) is not MaxPool2D:
            return False
        if conv.out_shape is None or pool.out_shape is None or pool.in_shape != conv.out_shape:
            return False
        (kh, kw), (ph, pw) = conv.kernel_size, pool.window
        _, ho, wo = conv.out_shape
        if conv.stride != (1, 1) or kh * kw > ho * wo:
            return False
        if (ph, pw) != pool.stride or ph * pw == 1 or any(pool.pads):
            return False
        return ho >= ph and wo >= pw    # a ragged last row or column: the pool drops it

    def _phases(self, x):
        """Input chunk ``x`` (m, c, h, w) -> zero-padded phases ``(c, ph, pw, m*P + tail)``."""
        G, m = self.geometry, x.shape[0]
        xs = self.ws.get("xs", (G["c"], G["ph"], G["pw"], m * G["P"] + G["tail"]), x.dtype)
        xs.fill(0)
        for grid, phase in _phase_pairs(G, xs, m):
            phase[...] = x[grid].transpose(1, 0, 2, 3)
        return xs

    def _im2col(self, x, key):
        """Input chunk ``x`` (m, c, h, w) -> columns ``(c*kh*kw, ph*pw*m*P)``, outputs
        sorted by window offset."""
        G = self.geometry
        c, mP, k = G["c"], x.shape[0] * G["P"], G["ph"] * G["pw"]
        cols = self.ws.get(key, (c, G["kh"] * G["kw"] * k, mP), x.dtype)
        if (self.kernels or kernels.backend()) == "numba":     # a channel at a time
            xs1 = self.ws.get("xs1", (k, mP + G["tail"]), x.dtype)
            kernels.im2col_phases(x, G, cols, xs1)
        else:
            xs = self._phases(x)
            im2col_shifts(xs.reshape(c, k, -1), G["shifts"], mP, cols)
        return cols.reshape(c * G["kh"] * G["kw"], -1)

    def _col2im(self, dcols, dx):
        """Scatter-add columns back onto the input gradient chunk ``dx`` ``(c, m, h, w)``."""
        G = self.geometry
        c, m, P, ph, pw = G["c"], dx.shape[1], G["P"], G["ph"], G["pw"]
        if (self.kernels or kernels.backend()) == "numba":     # a channel at a time
            dxs = self.ws.get("dxs1", (ph * pw, m * P + G["tail"]), dcols.dtype)
            kernels.col2im_phases(dcols.reshape(c, -1, m * P), G, dx, dxs)
            return
        dxs = self.ws.get("dxs", (c, ph, pw, m * P + G["tail"]), dcols.dtype)
        dxs.fill(0)
        col2im_shifts(dcols.reshape(c, -1, m * P), G["shifts"], m * P, dxs.reshape(c, ph * pw, -1))
        for grid, phase in _phase_pairs(G, dxs, m):
            dx[grid] = phase

    def column_bytes(self, itemsize=None):
        """Bytes of im2col columns one sample makes (of the weights' dtype, or
        ``itemsize``): the passes over memory that run on one core, whatever the BLAS."""
        G = self.geometry
        itemsize = itemsize or self.conv.params["W"].dtype.itemsize
        return G["c"] * G["kh"] * G["kw"] * G["ph"] * G["pw"] * G["P"] * itemsize

    def _chunks(self, n, itemsize, training=True):
        per_sample = self.column_bytes(itemsize)
        cap = self.conv.chunk_bytes
        return batch_slices(n, per_sample, cap if training else min(cap, INFERENCE_CHUNK_BYTES))

    def forward(self, x, training=False):
        """x: (n, c, h, w) -> (n, f, h_out / ph, w_out / pw)"""
        conv, pool = self.conv, self.pool
        if is_onehot(x) or x.shape[1:] != conv.in_shape:
            self._cache = "separate" if training else None
            return pool.forward(conv.forward(x, training), training)   # or let them raise
        G = self.geometry
        n = x.shape[0]
        f, P, k = G["f"], G["P"], G["ph"] * G["pw"]
        W, b = conv.weights(), conv.params["b"]
        # (f, n*P): a chunk of samples is a block of columns (a view, never a copy)
        out = np.empty((f, n * P), dtype=x.dtype)
        # training: which window offset held each maximum, all the backward pass needs
        # of the convolution's output (so that one buffer serves every chunk's)
        arg = np.empty((f, n * P), kernels.argmax_dtype(k)) if training else None
        chunks = []
        for c_, sl in enumerate(self._chunks(n, x.dtype.itemsize, training)):
            m = sl.stop - sl.start
            cols = self._im2col(x[sl], ("cols", ("f", c_) if training else "f"))
            y = np.matmul(W, cols, out=self.ws.get("y", (f, k * m * P), x.dtype))
            # the max over window offsets, then bias and ReLU (they commute with it)
            span = slice(sl.start * P, sl.stop * P)
            kernels.pool_forward(y, k, b, conv.activation == "relu", out[:, span],
                                 None if arg is None else arg[:, span], self.kernels)
            if training:
                chunks.append((sl, cols))
        out = out.reshape(f, n, G["Hq"], G["Wq"])
        self._cache = {"chunks": chunks, "arg": arg, "out": out} if training else None
        return out[:, :, :G["Ho"], :G["Wo"]].transpose(1, 0, 2, 3)

    def _fused_backward(self, cache, grad, input_grad):
        """grad: (n, f, h_out / ph, w_out / pw) -> dL/dx (n, c, h, w); fills the
        convolution's ``grads``."""
        conv = self.conv
        G = self.geometry
        f, P, k = G["f"], G["P"], G["ph"] * G["pw"]
        n = grad.shape[0]
        # junk rows and columns carry no gradient: zeros
        gq = kernels.grid_from(grad, self.ws.get("gq", cache["out"].shape, grad.dtype),
                               self.kernels)
        relu = conv.activation == "relu"
        W = conv.weights()
        dW = np.zeros(W.shape, W.dtype)
        gq2, out2 = gq.reshape(f, n * P), cache["out"].reshape(f, n * P)
        # rows and columns the pool drops (a ragged edge) get no gradient: zeros
        alloc = np.zeros if G["ragged"] else np.empty
        dxbuf = alloc((G["c"], n, G["h"], G["w"]), grad.dtype) if input_grad else None
        for sl, cols in cache["chunks"]:
            m = sl.stop - sl.start
            span = slice(sl.start * P, sl.stop * P)
            # each window's gradient goes to the first offset holding its maximum (its
            # ReLU-masked gradient is left in gq, for the bias)
            g = self.ws.get("g", (f, k * m * P), grad.dtype)
            kernels.pool_route(gq2[:, span], out2[:, span], cache["arg"][:, span], k, relu, g,
                               self.kernels)
            dW += (cols @ g.T).T
            if input_grad:   # the columns are spent: their buffer takes dcols
                self._col2im(np.matmul(W.T, g, out=cols), dxbuf[:, sl])
        db = gq2.sum(axis=1)
        if conv.normalize:
            dW *= dW.dtype.type(1.0 / W.shape[1])
        conv.grads["W"] = dW
        conv.grads["b"] = db
        return dxbuf.transpose(1, 0, 2, 3) if input_grad else None


class ConvMax(_FusedPair):
    """``pool.forward(conv.forward(x))`` for a convolution and a :class:`GlobalMaxPool`
    that takes the maximum over all of its output positions (the "max over time" of a
    sentence CNN), computed together.

    The convolution runs without its bias and ReLU; the maximum of each sample's
    feature is taken (with where it is), and bias and ReLU are applied after it, to
    one value per feature (both commute with the maximum). Backward, each feature's
    gradient reaches one output position per sample, so the weight gradient is a sum
    of ``n * filters`` columns rather than a matmul over all positions (and the
    columns' gradient as sparse): :func:`gridnet.core.kernels.sparse_dw` and
    :func:`~gridnet.core.kernels.sparse_dcols`, compiled, with numpy twins. On ties the
    gradient goes to the first maximum in C order, as :class:`GlobalMaxPool`'s does;
    the result and gradients are the two layers' up to float rounding (the order of
    sums; a bias that makes two maxima round to the same sum).

    A convolution over positions only (a ``(k, 1)`` filter, stride 1, on ``(n, c, h,
    1)``: the sentence CNN's branch after its word vectors) computes only the positions
    whose window holds a nonzero row (a word: padding rows are zero) and one row of
    zeros that stands for all the others, since their output is the convolution of
    zeros: :func:`~gridnet.core.kernels.ragged_columns` and the kernels after it, about
    half the work on sentences padded to the length of the long ones.

    A one-hot grid, or a batch of another shape, runs through the two layers one after
    the other (they raise the usual errors).

    Shapes: ``(n, c, h, w) -> (n, f, 1, 1)``.
    """

    @staticmethod
    def fusable(conv, pool):
        """True when built layers ``conv`` then ``pool`` can run as one fused step: a
        convolution (no ReLU, or its own), then a max over all of its output
        positions."""
        if type(conv) is not Conv2D or type(pool) is not GlobalMaxPool:
            return False
        if conv.out_shape is None or pool.out_shape is None or pool.in_shape != conv.out_shape:
            return False
        _, ho, wo = conv.out_shape
        return (pool.axis == "both" or (pool.axis == "height" and wo == 1)
                or (pool.axis == "width" and ho == 1))

    def forward(self, x, training=False):
        """x: (n, c, h, w) -> (n, f, 1, 1)"""
        conv, pool = self.conv, self.pool
        if is_onehot(x) or x.shape[1:] != conv.in_shape:
            self._cache = "separate" if training else None
            return pool.forward(conv.forward(x, training), training)   # or let them raise
        n, f = x.shape[0], conv.out_shape[0]
        W = conv.weights()
        mx = np.empty((n, f), x.dtype)
        at = np.empty((n, f), np.int64)
        ragged = None
        if self._words_only(x, W):
            ragged = self._ragged_forward(x, W, mx, at, training)
        else:    # (n, f, ho, wo), a view of the kernel's buffer; its columns kept when training
            y = conv.kernel.forward(x, W, None, False, training)
            kernels.global_max(y, mx, at, self.kernels)
        out = np.add(mx, conv.params["b"], out=mx)
        if conv.activation == "relu":
            np.maximum(out, 0, out=out)
        self._cache = {"at": at, "out": out, "ragged": ragged} if training else None
        return out.reshape((n,) + self.out_shape)

    def _words_only(self, x, W):
        """True when the convolution runs over positions only (a ``(k, 1)`` filter,
        stride 1, on ``(n, c, h, 1)``: the sentence CNN's branch): then only the
        positions whose window holds a word are computed."""
        conv = self.conv
        return (type(conv.kernel) is OffsetKernel and conv.in_shape[2] == 1
                and conv.kernel_size[1] == 1 and conv.stride == (1, 1) and x.dtype == W.dtype)

    def _ragged_forward(self, x, W, mx, at, training):
        """The maximum over the positions whose window holds a nonzero row (a word), and
        over the zero row that stands for every other position. Fills ``mx`` and
        ``at``; -> what the backward pass needs: ``(weights in the columns' order,
        [each chunk's columns and rows])``."""
        conv = self.conv
        (c, _, _), (f, ho, _) = conv.in_shape, conv.out_shape
        kh, pt = conv.kernel_size[0], conv.pads[0]
        h, dt = conv.in_shape[1], x.dtype
        Wo = kernels.offsets_first(W, kh, kernels=self.kernels)
        kept = []
        slices = batch_slices(x.shape[0], c * kh * ho * dt.itemsize, conv.chunk_bytes)
        for k, sl in enumerate(slices):
            m = sl.stop - sl.start
            xt = self.ws.zeroed("rows", (m, h + 2 * kh, c), dt, lambda buf: buf.fill(0))
            lo, cnt, off = kernels.ragged_rows(x[sl], kh, pt, ho, xt, self.kernels)
            R = int(cnt.sum()) + 1
            cols = self.ws.get(("cols", k) if training else "cols", (R, c * kh), dt)
            kernels.ragged_columns(xt, lo, cnt, off, kh, pt, cols, self.kernels)
            y = np.matmul(cols, Wo.T, out=self.ws.get("y", (R, f), dt))
            r = np.empty((m, f), np.int64)
            kernels.ragged_max(y, lo, cnt, off, ho, mx[sl], at[sl], r, self.kernels)
            if training:
                kept.append((sl, cols, lo, cnt, off, r))
        return Wo, kept

    def _fused_backward(self, cache, grad, input_grad):
        """grad: (n, f, 1, 1) -> dL/dx (n, c, h, w); fills the convolution's ``grads``."""
        conv = self.conv
        kernel = conv.kernel
        n, f = grad.shape[0], conv.out_shape[0]
        _, ho, wo = conv.out_shape
        g = np.array(grad.reshape(n, f), dtype=cache["out"].dtype, order="C")
        if conv.activation == "relu":
            g *= cache["out"] > 0
        W = conv.weights()
        dW = np.zeros(W.shape, W.dtype)
        if cache["ragged"] is not None:
            return self._ragged_backward(cache, g, W, dW, input_grad)
        chunks, _ = kernel.take_cache()
        positions_first, width = kernel.positions()
        t, u = np.divmod(cache["at"], wo)
        at = t * width + u                 # where each maximum is among the columns
        dxbuf = kernel.input_buffer(n, grad.dtype) if input_grad else None
        # by offset, numba scatters the sparse gradient straight into dx (no dense dcols)
        direct = not positions_first and (self.kernels or kernels.backend()) == "numba"
        for sl, cols in chunks:
            m = sl.stop - sl.start
            r = at[sl] + (np.arange(m) * (ho * width))[:, None]
            gs = g[sl]
            kernels.sparse_dw(cols, positions_first, r, gs, dW, self.kernels)
            if input_grad and direct:
                kernels.sparse_dx(at[sl], gs, W, dxbuf[:, sl], conv.kernel_size, conv.stride,
                                  conv.pads, width)
            elif input_grad:     # the columns are spent: their buffer takes dcols
                cols.fill(0)
                kernel.scatter_chunk(kernels.sparse_dcols(r, gs, W, cols, positions_first,
                                                          self.kernels), sl, dxbuf)
        return self._finish(g, W, dW, dxbuf)

    def _ragged_backward(self, cache, g, W, dW, input_grad):
        """:meth:`_fused_backward` after :meth:`_ragged_forward`: the weight gradient over
        the kept columns, the input gradient from where each maximum is."""
        conv = self.conv
        kernel = conv.kernel
        dxbuf = kernel.input_buffer(g.shape[0], g.dtype) if input_grad else None
        compiled = (self.kernels or kernels.backend()) == "numba"
        (ho, kh), pt = (conv.out_shape[1], conv.kernel_size[0]), conv.pads[0]
        Wo, chunks = cache["ragged"]
        for sl, cols, lo, cnt, off, r in chunks:
            kernels.ragged_dw(cols, r, g[sl], dW, self.kernels)
            if input_grad and compiled:
                dcols = self.ws.get("dcols", cols.shape, g.dtype)
                dcols.fill(0)
                kernels.ragged_dx(r, g[sl], Wo, lo, cnt, off, kh, pt, dxbuf[:, sl], dcols)
            elif input_grad:     # sparse_dx's twin: the columns' gradient, then col2im
                m = sl.stop - sl.start
                dcols = np.zeros((W.shape[1], m * ho), g.dtype)
                at = cache["at"][sl] + (np.arange(m) * ho)[:, None]
                kernel.scatter_chunk(kernels.sparse_dcols(at, g[sl], W, dcols, False, "numpy"),
                                     sl, dxbuf)
        return self._finish(g, W, kernels.offsets_first(dW, kh, True, self.kernels), dxbuf)

    def _finish(self, g, W, dW, dxbuf):
        """Store the convolution's gradients; -> dL/dx (n, c, h, w) or None."""
        conv = self.conv
        if conv.normalize:
            dW *= dW.dtype.type(1.0 / W.shape[1])
        conv.grads["W"] = dW
        conv.grads["b"] = g.sum(axis=0)
        return conv.kernel.input_view(dxbuf) if dxbuf is not None else None
