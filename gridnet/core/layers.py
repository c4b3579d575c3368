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
be checked by finite differences. The convolution lives in :mod:`gridnet.core.conv`, a
convolution fused with the pooling after it in :mod:`gridnet.core.fused`, and
:class:`~gridnet.core.network.Branches` beside the network that runs stacks of layers.
"""
from __future__ import annotations

import numpy as np

from .onehot import is_onehot

__all__ = ["is_onehot", "as_pair", "Workspace", "Layer", "ReLU", "MaxPool2D", "GlobalMaxPool",
           "Flatten", "Dense", "Dropout"]

def as_pair(value, name):
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


def check_activation(activation):
    if activation not in (None, "relu"):
        raise ValueError(f"activation must be None or 'relu'; got {activation!r}")
    return activation


def check_input(layer, x, in_shape):
    if x.shape[1:] != tuple(in_shape):
        raise ValueError(
            f"{layer!r} was built for samples of shape {tuple(in_shape)}; "
            f"got a batch of shape {x.shape}")


def same_padding(size, window, stride):
    """Keras/TensorFlow 'same': output ceil(size / stride); return (out, before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return out, total // 2, total - total // 2


def window_geometry(name, in_shape, window, stride, padding):
    """Output size and padding of a sliding ``window`` over samples ``(c, h, w)``:
    ``(ho, wo, (top, bottom, left, right))``. "same" gives ``ceil(h / stride)``; "full"
    every window that overlaps the input; "valid" only windows inside it."""
    if len(in_shape) != 3:
        raise ValueError(f"{name} needs samples shaped (c, h, w); got {tuple(in_shape)}")
    _, h, w = in_shape
    (kh, kw), (sh, sw) = window, stride
    if padding == "same":
        ho, pt, pb = same_padding(h, kh, sh)
        wo, pl, pr = same_padding(w, kw, sw)
        return ho, wo, (pt, pb, pl, pr)
    if padding == "full":
        return (h + kh - 2) // sh + 1, (w + kw - 2) // sw + 1, (kh - 1, kh - 1, kw - 1, kw - 1)
    if kh > h or kw > w:
        raise ValueError(f"{name} window {kh}x{kw} is larger than its input grid {h}x{w}; "
                         "use a smaller window, padding='same', or a larger input")
    return (h - kh) // sh + 1, (w - kw) // sw + 1, (0, 0, 0, 0)


def batch_slices(n, per_sample, chunk_bytes):
    """Slices of a batch of ``n`` whose work buffers (``per_sample`` bytes a sample) stay
    under ``chunk_bytes`` (at least one sample each)."""
    step = max(1, chunk_bytes // max(per_sample, 1))
    return [slice(a, min(a + step, n)) for a in range(0, n, step)]


def zero_columns_from(col, row=None):
    """A function that zeroes columns ``col:`` (and rows ``row:``) of a 4-D buffer."""
    def zero(buf):
        if row is not None:
            buf[:, :, row:] = 0
        buf[:, :, :, col:] = 0
    return zero


def alloc_like(shape, strides, dtype, zero=False):
    """A new array of ``shape`` whose axes lie in memory in the order of ``strides``
    (as ``np.empty_like(order="K")`` would do for an array with those strides)."""
    perm = sorted(range(len(shape)), key=lambda a: -abs(strides[a]))
    arr = (np.zeros if zero else np.empty)([shape[a] for a in perm], dtype=dtype)
    return arr.transpose(np.argsort(perm))


class Workspace:
    """Reusable work buffers, owned by the object that computes with them.

    Large arrays allocated afresh on every batch cost page faults that take as long
    as the arithmetic; scratch space is kept between batches instead. A buffer never
    holds anything that is returned to the caller, and is not part of a pickled state.
    """

    def __init__(self):
        self._bufs = {}
        self._stamps = {}
        self._made = 0           # buffers allocated so far: a new buffer's stamp

    def get(self, key, shape, dtype):
        """A buffer of ``shape`` (contents undefined)."""
        size = 1
        for s in shape:          # np.prod of a tuple costs ~50x more, on every batch
            size *= int(s)
        entry = self._bufs.get(key)
        if entry is None or entry[0].size < size or entry[0].dtype != dtype:
            self._made += 1
            entry = self._bufs[key] = (np.empty(size, dtype=dtype), self._made)
        return entry[0][:size].reshape(shape)

    def zeroed(self, key, shape, dtype, zero):
        """:meth:`get` for a buffer with regions that stay zero between batches (the
        caller never writes them): ``zero(buf)`` runs only when the buffer is new or
        was last used with another shape."""
        buf = self.get(key, shape, dtype)
        stamp = (buf.shape, self._bufs[key][1])   # (buf.ctypes.data cost ~10 us a call)
        if self._stamps.get(key) != stamp:
            zero(buf)
            self._stamps[key] = stamp
        return buf

    def __getstate__(self):
        return {"_bufs": {}, "_stamps": {}, "_made": 0}


class Layer:
    """Base class: a layer without parameters that passes shapes through."""

    trainable = False
    #: True where the layer has no weights at any depth (see stack.backward)
    weightless = False
    TRANSIENT = ("_cache", "_mask", "_ran")

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.in_shape = None
        self.out_shape = None

    def __getstate__(self):
        # what one forward pass keeps for its backward pass is not part of the state
        return {k: v for k, v in self.__dict__.items() if k not in self.TRANSIENT}

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

    def resolve_init(self, relu):
        """``init="auto"`` made concrete by what follows the layer (see
        :func:`gridnet.core.stack.build`): He before a ReLU, Glorot otherwise."""
        self._resolved_init = "he" if relu else "glorot"

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
    >>> from gridnet import MaxPool2D
    >>> pool = MaxPool2D(2)
    >>> pool.build((1, 4, 4), None)
    (1, 2, 2)
    >>> pool.forward(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    """

    def __init__(self, window=2, stride=None, padding="valid"):
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"MaxPool2D padding must be 'valid' or 'same'; got {padding!r}")
        self.window = as_pair(window, "window")
        self.stride = as_pair(stride if stride is not None else window, "stride")
        self.padding = padding

    def get_config(self):
        return {"window": list(self.window), "stride": list(self.stride),
                "padding": self.padding}

    def describe(self):
        (ph, pw), (sh, sw) = self.window, self.stride
        return f"MaxPool2D({ph}x{pw}, stride {sh}x{sw}, {self.padding})"

    def build(self, in_shape, rng, dtype=np.float32):
        ho, wo, self.pads = window_geometry("MaxPool2D", in_shape, self.window, self.stride,
                                            self.padding)
        self.in_shape = tuple(in_shape)
        self.out_shape = (in_shape[0], ho, wo)
        return self.out_shape

    def _padded(self, x):
        pt, pb, pl, pr = self.pads
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
        check_input(self, x, self.in_shape)
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
        pt, _, pl, _ = self.pads
        for (axis, window, stride, size), x, y in zip(self._stages()[::-1], xs[1::-1], xs[:0:-1]):
            if window == 1 and stride == 1:
                continue
            exact = stride == window and stride * size == x.shape[axis]
            # every input position receives exactly one value when windows tile the axis
            dx = alloc_like(x.shape, x.strides, grad.dtype, zero=not exact)
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


class RowCenter(Layer):
    """Subtract each row's mean over the width: on a spectrogram (rows: frequency bands,
    width: time), each band's level over the clip, which a microphone, a room or a voice
    sets (cepstral mean normalisation, in the log-mel domain). As a layer it runs after
    the training augmentation, so noise is mixed into a clip before its bands are
    centred, as in a noisy recording.

    Parameters
    ----------
    keep_input : bool, default False
        Give the input too, as the first channels, the centred grid after them: a
        stationary sound (a steady tone, a hum) is all band level, which centring
        alone would take away.

    Shapes: ``(n, c, h, w) -> (n, c, h, w)``, or ``(n, 2c, h, w)`` with ``keep_input``.

    Examples
    --------
    >>> import numpy as np
    >>> from gridnet import RowCenter
    >>> layer = RowCenter()
    >>> layer.build((1, 2, 2), None)
    (1, 2, 2)
    >>> layer.forward(np.array([[[[1.0, 3.0], [10.0, 10.0]]]], np.float32))[0, 0]
    array([[-1.,  1.],
           [ 0.,  0.]], dtype=float32)
    """

    #: no weights, so the first layers of a network need no gradient when it is one
    weightless = True

    def __init__(self, keep_input=False):
        super().__init__()
        if not isinstance(keep_input, (bool, np.bool_)):
            raise ValueError(f"keep_input must be True or False; got {keep_input!r}")
        self.keep_input = bool(keep_input)

    def get_config(self):
        return {"keep_input": self.keep_input}

    def build(self, in_shape, rng, dtype=np.float32):
        if len(in_shape) != 3:
            raise ValueError(f"RowCenter needs samples shaped (c, h, w); got {tuple(in_shape)}")
        c, h, w = (int(s) for s in in_shape)
        self.in_shape = (c, h, w)
        self.out_shape = (2 * c if self.keep_input else c, h, w)
        return self.out_shape

    def forward(self, x, training=False):
        check_input(self, x, self.in_shape)
        centred = x - x.mean(axis=3, keepdims=True, dtype=x.dtype)
        return np.concatenate([x, centred], axis=1) if self.keep_input else centred

    def backward(self, grad, input_grad=True):
        if not self.keep_input:
            return grad - grad.mean(axis=3, keepdims=True, dtype=grad.dtype)
        c = self.in_shape[0]
        centred = grad[:, c:]
        return grad[:, :c] + centred - centred.mean(axis=3, keepdims=True, dtype=grad.dtype)


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
        check_input(self, x, self.in_shape)
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
        check_input(self, x, self.in_shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, grad, input_grad=True):
        return grad.reshape((grad.shape[0],) + self.in_shape)


class Dense(Layer):
    """Fully connected layer, ``(n, d) -> (n, units)``, with an optional fused
    ``activation="relu"``.

    Examples
    --------
    >>> import numpy as np
    >>> from gridnet import Dense
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
        self.activation = check_activation(activation)
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
        check_input(self, x, self.in_shape)
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

    def child_rng(self):
        """A new generator spawned from this layer's (None before build): for a replica
        of the layer that must draw masks of its own."""
        if self.__dict__.get("_rng") is None:
            return None
        try:
            return self._rng.spawn(1)[0]
        except TypeError:       # a generator without a SeedSequence: a seed drawn from it
            return np.random.default_rng(self._rng.integers(2**63))

    def set_rng(self, rng):
        """Draw the masks from ``rng`` from now on."""
        self._rng = rng

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


