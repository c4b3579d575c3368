"""Networks: :class:`Network` (layers applied in order) and :class:`Branches` (stacks
side by side); making layers from their configuration."""
from __future__ import annotations

import numpy as np

from . import shards, stack
from .conv import Conv2D
from .bag import NgramBag, NgramLinear
from .embedding import Embedding
from .layers import (Dense, Dropout, Flatten, GlobalMaxPool, Layer, MaxPool2D, ReLU,
                     RowCenter, check_input, is_onehot)

__all__ = ["Network", "Branches", "layer_from_config", "LAYER_TYPES"]


#: first layers that read a one-hot grid as it is (others get it made dense)
ONEHOT_READERS = (Conv2D, Embedding, NgramBag, NgramLinear)


class Branches(Layer):
    """Several stacks of layers run side by side on the same input, their outputs
    concatenated along the channel axis (Kim's filter heights 3, 4 and 5), or averaged
    (an ensemble of networks, each stack ending in its own output layer).

    Parameters
    ----------
    branches : list of list of Layer
        Each inner list is a stack; all stacks must give outputs that agree on every
        axis but the first (channels), or all end flat (a Flatten, a Dense): their
        features are then put side by side (a convolutional path beside a bypass).
    join : {"concat", "mean"}, default "concat"
        "mean": the stacks' outputs, all of one shape, are averaged.

    Shapes: ``(n, c, h, w) -> (n, sum of branch channels, h', w')``, or ``(n, sum of
    branch features)``; with ``join="mean"``, the one shape of the branches' outputs.

    Examples
    --------
    >>> import numpy as np
    >>> from gridnet import Branches, Conv2D, GlobalMaxPool
    >>> block = Branches([[Conv2D(2, (k, 5)), GlobalMaxPool()] for k in (3, 4)])
    >>> block.build((1, 10, 5), np.random.default_rng(0))
    (4, 1, 1)
    """

    trainable = True

    def __init__(self, branches, join="concat"):
        super().__init__()
        branches = [list(b) for b in branches]
        if not branches or not all(branches):
            raise ValueError("Branches needs at least one non-empty list of layers")
        if join not in ("concat", "mean"):
            raise ValueError(f"join must be 'concat' or 'mean'; got {join!r}")
        self.branches = branches
        self.join = join

    def get_config(self):
        config = {"branches": [[stack.layer_config(layer) for layer in b] for b in self.branches]}
        if self.join != "concat":       # (files written before join existed concatenate)
            config["join"] = self.join
        return config

    def describe(self):
        how = "averaged" if self.join == "mean" else "concatenated on channels"
        return f"Branches({len(self.branches)}, {how})"

    @property
    def sublayers(self):
        return [layer for branch in self.branches for layer in branch]

    def build(self, in_shape, rng, dtype=np.float32):
        shapes = [stack.build(branch, in_shape, rng, dtype) for branch in self.branches]
        self.assemble(in_shape, shapes)
        return self.out_shape

    @classmethod
    def average(cls, networks):
        """Built networks of one input and one output shape as one block that averages
        their outputs (an ensemble); the layers are shared, not copied or rebuilt."""
        shapes = {(tuple(net.in_shape or ()), tuple(net.out_shape or ())) for net in networks}
        if len(shapes) != 1 or any(net.steps is None for net in networks):
            raise ValueError(f"Branches.average needs built networks of one input and one "
                             f"output shape; got {sorted(shapes)}")
        block = cls([net.layers for net in networks], join="mean")
        block.assemble(networks[0].in_shape, [tuple(net.out_shape) for net in networks])
        return block

    def assemble(self, in_shape, shapes):
        """Set the shapes, steps and arrays once the branches are built, their outputs
        of ``shapes``."""
        if self.join == "mean":
            if len(set(shapes)) != 1:
                raise ValueError(f"Branches averaged must give outputs of one shape; got {shapes}")
            self._splits = None
            self.out_shape = shapes[0]
        else:
            rest = {s[1:] for s in shapes}
            if len(rest) != 1 or len({len(s) for s in shapes}) != 1 or len(shapes[0]) not in (1, 3):
                raise ValueError(
                    f"Branches outputs must agree on every axis but channels (grids (c, h, "
                    f"w), or all flat (k,)); got {shapes}")
            ends = np.cumsum([s[0] for s in shapes]).tolist()
            self._splits = list(zip([0] + ends[:-1], ends))   # each branch's channels
            self.out_shape = (int(sum(s[0] for s in shapes)),) + shapes[0][1:]
        self.in_shape = tuple(in_shape)
        self.steps = [stack.plan(branch) for branch in self.branches]
        self.collect()
        # the sublayers' buffers, once: they are made in build and only ever filled in place
        self.buffers = {f"{b}.{i}.{key}": value for b, branch in enumerate(self.branches)
                        for i, layer in enumerate(branch)
                        for key, value in getattr(layer, "buffers", {}).items()}

    def collect(self):
        """Expose the sublayers' arrays as ``params``/``grads`` with prefixed keys (after
        every backward pass: the gradients are new arrays)."""
        self.params, self.grads = {}, {}
        for b, branch in enumerate(self.branches):
            for i, layer in enumerate(branch):
                for key, value in layer.params.items():
                    self.params[f"{b}.{i}.{key}"] = value
                for key, value in layer.grads.items():
                    self.grads[f"{b}.{i}.{key}"] = value

    def forward(self, x, training=False):
        check_input(self, x, self.in_shape)
        outs = []
        for branch, steps in zip(self.branches, self.steps):
            y = (x.toarray() if is_onehot(x) and not isinstance(branch[0], ONEHOT_READERS + (Branches,))
                 else x)
            outs.append(stack.forward(steps, y, training))
        if self.join == "mean":
            return sum(outs[1:], outs[0]) / outs[0].dtype.type(len(outs))
        return np.concatenate(outs, axis=1)

    def member(self, b):
        """Branch ``b`` as a built :class:`Network` of the same layer objects (what
        trains it trains this block)."""
        net = Network(self.branches[b])
        net.in_shape, net.steps = self.in_shape, self.steps[b]
        net.out_shape = tuple(self.branches[b][-1].out_shape)
        return net

    def backward(self, grad, input_grad=True):
        dx = None
        if self.join == "mean":
            grad = grad / grad.dtype.type(len(self.branches))
        # each branch's channels, as views (np.split costs ~15 us a call)
        for steps, cut in zip(self.steps, self._splits or [None] * len(self.steps)):
            g = grad if cut is None else grad[:, cut[0]:cut[1]]
            g = stack.backward(steps, g, input_grad)
            if input_grad and g is not None:     # (an n-gram bag gives none: data)
                dx = g if dx is None else dx + g
        self.collect()
        return dx


#: Layer classes by name, for :func:`layer_from_config`.
LAYER_TYPES = {cls.__name__: cls for cls in (
    Conv2D, Embedding, NgramBag, NgramLinear, ReLU, MaxPool2D, GlobalMaxPool, RowCenter, Flatten, Dense, Dropout,
    Branches)}


def layer_from_config(config):
    """Make a layer from ``{"type": name, **constructor arguments}`` (as written by
    :func:`gridnet.core.stack.layer_config`)."""
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
    >>> from gridnet import Network, Conv2D, ReLU, MaxPool2D, Flatten, Dense
    >>> net = Network([Conv2D(8, 3, padding="same"), ReLU(), MaxPool2D(2), Flatten(), Dense(10)])
    >>> net.build((1, 8, 8), np.random.default_rng(0))
    (10,)
    >>> net.forward(np.zeros((5, 1, 8, 8), np.float32)).shape
    (5, 10)

    A large batch through fused convolutions and pools (net A of the benchmarks at 64
    samples; not a sentence CNN) runs as shards on the threads numpy's BLAS may use
    (:mod:`gridnet.core.shards`); how it is cut depends on the batch's size and the
    network only, so that the results do not depend on the thread count.
    """

    #: what a run keeps that is not part of the network's state (see __getstate__)
    TRANSIENT = ("_sharding", "_shards")

    def __init__(self, layers):
        self.layers = list(layers)
        self.in_shape = None
        self.out_shape = None
        self.steps = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in self.TRANSIENT}

    @classmethod
    def average(cls, networks):
        """Built ``networks`` (one input shape, one output shape) as one built network
        whose output is the mean of theirs (an ensemble): a single
        ``Branches(join="mean")`` sharing their layers (:meth:`Branches.average`)."""
        block = Branches.average(networks)
        net = cls([block])
        net.in_shape, net.out_shape = block.in_shape, block.out_shape
        net.steps = stack.plan(net.layers)
        return net

    def _sharded(self, x, training):
        """The shards ``x`` runs as (None: unsharded), and their replicas ``(layers,
        steps)``."""
        if (not isinstance(x, np.ndarray) or x.shape[0] <= shards.SHARD_SAMPLES
                or x.shape[1:] != self.in_shape):    # (the layers' errors name the batch)
            return None, None
        sharding = self.__dict__.get("_sharding")
        if sharding is None:        # (its replicas are made when first needed)
            sharding = self._sharding = shards.Sharding(self.layers, self.steps, stack.plan)
        cut = shards.shard_slices(x.shape[0], sharding.column_bytes)
        if len(cut) == 1:
            return None, None
        replicas = sharding.replicas(len(cut), self.steps)
        if training:
            sharding.reseed(replicas)
        return cut, replicas

    def build(self, in_shape, rng=None, dtype=np.float32):
        """Create every layer's weights for samples of shape ``in_shape`` ``(c, h, w)``.

        ``rng`` is a ``numpy.random.Generator`` (or a seed for one).
        """
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.in_shape = tuple(int(s) for s in in_shape)
        self.out_shape = stack.build(self.layers, self.in_shape, rng, dtype)
        self.steps = stack.plan(self.layers)
        self.__dict__.pop("_sharding", None)      # replicas of the old layers
        return self.out_shape

    def append(self, layer, rng=None, dtype=np.float32):
        """Add ``layer`` at the end; in a built network it is built on the current
        output shape (the others keep their weights). Returns the new output shape."""
        self.layers.append(layer)
        if self.out_shape is None:
            return None
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.out_shape = stack.build(self.layers[-1:], self.out_shape, rng, dtype)
        self.steps = stack.plan(self.layers)
        self.__dict__.pop("_sharding", None)
        return self.out_shape

    def forward(self, x, training=False):
        """x: (n, c, h, w) -> (n, *out_shape)

        ``x`` may also be a one-hot grid (see :data:`gridnet.core.onehot.ONEHOT_CONTRACT`); it is
        read sparsely by a first convolution that spans its width and made dense
        otherwise.
        """
        if self.steps is None:
            raise RuntimeError("build the network (network.build(in_shape)) before running it")
        if is_onehot(x) and not isinstance(self.layers[0], ONEHOT_READERS + (Branches,)):
            x = x.toarray()
        cut, replicas = self._sharded(x, training)
        self._shards = (cut, replicas) if training and cut is not None else None
        if cut is None:
            return stack.forward(self.steps, x, training)
        return np.concatenate(self._sharding.run(
            [lambda s=s, sl=sl: stack.forward(s, x[sl], training)
             for (_, s), sl in zip(replicas, cut)]))

    def backward(self, grad, input_grad=True):
        """grad: dL/d(output) (n, *out_shape) -> dL/d(input) (n, c, h, w).

        Fills every layer's ``grads``. With ``input_grad=False`` (training) the gradient
        with respect to the input is not computed and None is returned.
        """
        ran, self._shards = self.__dict__.get("_shards"), None
        if ran is None:
            return stack.backward(self.steps, grad, input_grad)
        cut, replicas = ran            # the replicas that hold the forward pass's caches
        if len(grad) != cut[-1].stop:  # (slicing it by the shards would drop or miss rows)
            raise ValueError(f"a gradient for {len(grad)} samples after a forward pass of "
                             f"{cut[-1].stop}")
        dx = self._sharding.run([lambda s=s, sl=sl: stack.backward(s, grad[sl], input_grad)
                                 for (_, s), sl in zip(replicas, cut)])
        shards.Sharding.sum_grads(replicas)
        return np.concatenate(dx) if input_grad else None

    def parameters(self):
        """List of ``(name, param, grad)`` for every trainable array, in a fixed order.

        Optimizers update ``param`` in place.
        """
        out = []
        for i, layer in enumerate(self.layers):
            for key in layer.params:
                out.append((f"{i}.{key}", layer.params[key], layer.grads.get(key)))
        return out

    def buffers(self):
        """List of ``(name, array)`` for every array a layer keeps that no optimizer
        updates (an :class:`~gridnet.core.embedding.Embedding`'s fixed vectors), in a
        fixed order; saved with the weights."""
        return [(f"{i}.{key}", b) for i, layer in enumerate(self.layers)
                for key, b in getattr(layer, "buffers", {}).items()]

    def get_weights(self):
        """A dict ``name -> copy of the array``: the parameters and the buffers."""
        return {name: p.copy() for name, p in
                [(n, p) for n, p, _ in self.parameters()] + self.buffers()}

    def set_weights(self, weights):
        """Copy arrays from ``weights`` (as from :meth:`get_weights`) into the network."""
        own = {name: p for name, p, _ in self.parameters()}
        own.update(self.buffers())
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
        return [stack.layer_config(layer) for layer in self.layers]

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
