"""A stack of layers: building it, planning how it runs, and running it.

:func:`plan` turns a built list of layers into the steps that run: the same layers,
except that a convolution and the max pooling after it become one
:class:`~gridnet.core.fused.ConvPool` (or a max over all positions, a
:class:`~gridnet.core.fused.ConvMax`) where that is possible. :func:`forward` and
:func:`backward` run steps in order, with no special cases.
"""
from __future__ import annotations

import numpy as np

from .fused import ConvMax, ConvPool
from .layers import ReLU

__all__ = ["build", "plan", "forward", "backward", "leaves", "layer_config"]


def build(layers, in_shape, rng, dtype=np.float32):
    """Build ``layers`` in order for samples of ``in_shape``; return the output shape.

    A layer whose ``init`` is ``"auto"`` gets He initialisation when it ends in a ReLU
    (``activation="relu"`` or a following :class:`ReLU`) and Glorot otherwise.
    """
    shape = tuple(int(s) for s in in_shape)
    for i, layer in enumerate(layers):
        if getattr(layer, "init", None) == "auto":
            follows = layers[i + 1] if i + 1 < len(layers) else None
            relu = isinstance(follows, ReLU) or getattr(layer, "activation", None) == "relu"
            layer.resolve_init(relu)
        try:
            shape = tuple(layer.build(shape, rng, dtype))
        except ValueError as exc:
            raise ValueError(f"layer {i} ({layer!r}) cannot take input of shape {shape}: {exc}") from None
    return shape


def plan(layers):
    """The steps that run built ``layers``: each layer, or a :class:`ConvPool` for a
    convolution and the tiling max pool after it, or a :class:`ConvMax` for a
    convolution and a max over all its positions, where their ``fusable`` allows
    (same result, fewer passes over memory)."""
    steps, i = [], 0
    while i < len(layers):
        fused = next((kind for kind in (ConvPool, ConvMax)
                      if i + 1 < len(layers) and kind.fusable(layers[i], layers[i + 1])), None)
        if fused is not None:
            steps.append(fused(layers[i], layers[i + 1]))
            i += 2
        else:
            steps.append(layers[i])
            i += 1
    return steps


def forward(steps, x, training=False):
    """Run ``steps`` (from :func:`plan`) in order on ``x``."""
    for step in steps:
        x = step.forward(x, training)
    return x


def backward(steps, grad, input_grad=True):
    """Backward pass through ``steps`` after :func:`forward`; returns dL/d(input)
    (None when ``input_grad`` is false: then the leading weightless steps are skipped,
    and the first step with weights computes only theirs)."""
    first = 0
    while not input_grad and first < len(steps) - 1 and getattr(steps[first], "weightless", False):
        first += 1
    for k in range(len(steps) - 1, first - 1, -1):
        grad = steps[k].backward(grad, input_grad=input_grad or k > first)
    return grad if input_grad else None


def leaves(layers):
    """Every layer of ``layers``, those inside :class:`~gridnet.core.network.Branches`
    included (depth first, in order; a Branches before its layers)."""
    for layer in layers:
        yield layer
        for branch in getattr(layer, "branches", ()):
            yield from leaves(branch)


def layer_config(layer):
    """``{"type": class name, **constructor arguments}``, JSON-serialisable."""
    return {"type": type(layer).__name__, **layer.get_config()}
