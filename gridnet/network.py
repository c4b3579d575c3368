"""A stack of layers: shape inference, forward/backward, parameters, summary."""
from __future__ import annotations

import numpy as np

from . import fused
from . import layers as L

__all__ = ["Network", "build_stack", "forward_stack", "backward_stack", "layer_from_config"]

LAYER_TYPES = {cls.__name__: cls for cls in (
    L.Conv2D, L.ReLU, L.MaxPool2D, L.GlobalMaxPool, L.Flatten, L.Dense, L.Dropout, L.Branches)}


def build_stack(layers, in_shape, rng, dtype=np.float32):
    """Build ``layers`` in order for samples of ``in_shape``; return the output shape.

    A layer whose ``init`` is ``"auto"`` gets He initialisation when it ends in a ReLU
    (``activation="relu"`` or a following :class:`ReLU`) and Glorot otherwise.
    """
    shape = tuple(int(s) for s in in_shape)
    for i, layer in enumerate(layers):
        if getattr(layer, "init", None) == "auto":
            follows = layers[i + 1] if i + 1 < len(layers) else None
            relu = isinstance(follows, L.ReLU) or getattr(layer, "activation", None) == "relu"
            layer._resolved_init = "he" if relu else "glorot"
        try:
            shape = tuple(layer.build(shape, rng, dtype))
        except ValueError as exc:
            raise ValueError(f"layer {i} ({layer!r}) cannot take input of shape {shape}: {exc}") from None
    return shape


def forward_stack(layers, x, training=False):
    """Run ``layers`` in order on ``x``; a convolution and the max pooling after it run
    as one step where :func:`gridnet.fused.fusable` allows (same result, less memory
    traffic)."""
    i = 0
    while i < len(layers):
        if i + 1 < len(layers) and fused.fusable(layers[i], layers[i + 1], x):
            x = fused.conv_pool_forward(layers[i], layers[i + 1], x, training)
            i += 2
        else:
            x = layers[i].forward(x, training)
            i += 1
    return x


def backward_stack(layers, grad, input_grad=True):
    """Backward pass through ``layers`` after :func:`forward_stack`; returns dL/d(input)
    (None when ``input_grad`` is false: the first layer skips it)."""
    k = len(layers) - 1
    while k >= 0:
        if k >= 1 and fused.ran_fused(layers[k - 1]):
            grad = fused.conv_pool_backward(layers[k - 1], layers[k], grad,
                                            input_grad=input_grad or k > 1)
            k -= 2
        else:
            grad = layers[k].backward(grad, input_grad=input_grad or k > 0)
            k -= 1
    return grad


def layer_from_config(config):
    """Make a layer from ``{"type": name, **constructor arguments}``."""
    config = dict(config)
    name = config.pop("type", None)
    if name not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {name!r}; expected one of {sorted(LAYER_TYPES)}")
    if name == "Branches":
        config["branches"] = [[layer_from_config(c) for c in b] for b in config["branches"]]
    return LAYER_TYPES[name](**config)


class Network:
    """Layers applied in order to grids ``(n, c, h, w)``.

    Parameters
    ----------
    layers : list of Layer

    Examples
    --------
    >>> import numpy as np
    >>> from gridnet import Network
    >>> from gridnet.layers import Conv2D, ReLU, MaxPool2D, Flatten, Dense
    >>> net = Network([Conv2D(8, 3, padding="same"), ReLU(), MaxPool2D(2), Flatten(), Dense(10)])
    >>> net.build((1, 8, 8), np.random.default_rng(0))
    (10,)
    >>> net.forward(np.zeros((5, 1, 8, 8), np.float32)).shape
    (5, 10)
    """

    def __init__(self, layers):
        self.layers = list(layers)
        self.in_shape = None
        self.out_shape = None

    def build(self, in_shape, rng=None, dtype=np.float32):
        """Create every layer's weights for samples of shape ``in_shape`` ``(c, h, w)``.

        ``rng`` is a ``numpy.random.Generator`` (or a seed for one).
        """
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.in_shape = tuple(int(s) for s in in_shape)
        self.out_shape = build_stack(self.layers, self.in_shape, rng, dtype)
        return self.out_shape

    def forward(self, x, training=False):
        """x: (n, c, h, w) -> (n, *out_shape)

        ``x`` may also be a one-hot grid (see :func:`gridnet.layers.is_onehot`); it is
        read sparsely by a first convolution that spans its width and made dense
        otherwise.
        """
        if L.is_onehot(x) and not isinstance(self.layers[0], (L.Conv2D, L.Branches)):
            x = x.toarray()
        return forward_stack(self.layers, x, training)

    def backward(self, grad, input_grad=True):
        """grad: dL/d(output) (n, *out_shape) -> dL/d(input) (n, c, h, w).

        Fills every layer's ``grads``. With ``input_grad=False`` (training) the gradient
        with respect to the input is not computed and None is returned.
        """
        return backward_stack(self.layers, grad, input_grad)

    def parameters(self):
        """List of ``(name, param, grad)`` for every trainable array, in a fixed order.

        Optimizers update ``param`` in place.
        """
        out = []
        for i, layer in enumerate(self.layers):
            for key in layer.params:
                out.append((f"{i}.{key}", layer.params[key], layer.grads.get(key)))
        return out

    def get_weights(self):
        """A dict ``name -> copy of the array``."""
        return {name: p.copy() for name, p, _ in self.parameters()}

    def set_weights(self, weights):
        """Copy arrays from ``weights`` (as from :meth:`get_weights`) into the network."""
        own = {name: p for name, p, _ in self.parameters()}
        missing = sorted(set(own) - set(weights))
        extra = sorted(set(weights) - set(own))
        if missing or extra:
            raise ValueError(f"weights do not match the network: missing {missing}, unexpected {extra}")
        for name, p in own.items():
            w = np.asarray(weights[name])
            if w.shape != p.shape:
                raise ValueError(f"weight {name!r} has shape {w.shape}; the network needs {p.shape}")
            p[...] = w

    @property
    def n_params(self):
        return int(sum(p.size for _, p, _ in self.parameters()))

    def get_config(self):
        return [{"type": type(layer).__name__, **layer.get_config()} for layer in self.layers]

    @classmethod
    def from_config(cls, config):
        return cls([layer_from_config(c) for c in config])

    def summary(self):
        """A Keras-style table: layer, output shape, parameter count."""
        if self.out_shape is None:
            raise RuntimeError("build the network before asking for its summary")
        rows = [("Layer", "Output shape", "Params")]
        rows.append(("Input", str((None,) + self.in_shape), "0"))
        for layer in self.layers:
            rows.append((layer.describe(), str((None,) + tuple(layer.out_shape)), f"{layer.n_params:,}"))
            for b, branch in enumerate(getattr(layer, "branches", [])):
                name = "  " + str(b) + ": " + " > ".join(sub.describe() for sub in branch)
                params = sum(sub.n_params for sub in branch)
                rows.append((name, str((None,) + tuple(branch[-1].out_shape)), f"{params:,}"))
        wa = max(len(r[0]) for r in rows)
        wb = max(len(r[1]) for r in rows)
        wc = max(len(r[2]) for r in rows)
        line = "-" * (wa + wb + wc + 6)
        text = [line]
        for k, r in enumerate(rows):
            text.append(f"{r[0]:<{wa}}   {r[1]:<{wb}}   {r[2]:>{wc}}")
            if k == 0:
                text.append(line)
        text += [line, f"Total params: {self.n_params:,}", line]
        return "\n".join(text)

    def __repr__(self):
        return f"Network({self.layers!r})"
