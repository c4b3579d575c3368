"""Gradient descent: SGD with momentum (and Nesterov), and Adam; L2 weight decay.

An optimizer updates the arrays of :meth:`gridnet.Network.parameters` in place. Every
scalar is cast to the parameter's dtype, so float32 weights stay float32.
"""
from __future__ import annotations

import numpy as np

from . import kernels

__all__ = ["SGD", "Adam", "make_optimizer"]


def _decays(name):
    """L2 weight decay applies to weights, not to biases."""
    return not name.endswith("b")


#: Every this many steps, moment entries smaller than ``tiny / eps`` of their dtype
#: (about 1e-31 in float32) are set to zero. A weight whose gradient stays zero (a dead
#: ReLU unit feeding a dense layer) has its momentum multiplied by 0.9 each step; after
#: about 800 steps it is subnormal, where each multiplication costs tens of times a
#: normal one, and it never reaches zero (0.9 times the smallest subnormal rounds back
#: to it), and FSDD's default fit had a third of its weights there (docs/benchmarks.md,
#: "Constants chosen by measurement"). A moment this small moves a weight by less than 1e-21
#: times the learning rate, so setting it to zero changes nothing a float32 weight
#: holds; 16 steps at 0.9 shrink 1e-31 only to 2e-32, so none turns subnormal between
#: two flushes (with momentum below 0.5 a subnormal rounds down to zero within a few
#: steps anyway).
FLUSH_EVERY = 16


def _flush_tiny(a, scratch):
    """Set the entries of ``a`` below ``tiny / eps`` in magnitude to zero (in place),
    using ``scratch`` (same shape and dtype) as work space."""
    info = np.finfo(a.dtype)
    np.abs(a, out=scratch)
    a[scratch < info.tiny / info.eps] = 0


class SGD:
    """Stochastic gradient descent with momentum.

    ``v = momentum * v - lr * g``; ``p += v`` (or, with ``nesterov``,
    ``p += momentum * v - lr * g``). ``weight_decay`` adds ``weight_decay * p`` to the
    gradient of each weight (not bias).

    Examples
    --------
    >>> import numpy as np
    >>> p = np.ones(2, np.float32)
    >>> SGD(learning_rate=0.5).step([("0.W", p, np.ones(2, np.float32))])
    >>> p
    array([0.5, 0.5], dtype=float32)
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=False, weight_decay=0.0):
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.state = {}
        self.t = 0

    def step(self, parameters):
        self.t += 1
        flush = self.t % FLUSH_EVERY == 0
        for name, p, g in parameters:
            t = p.dtype.type
            lr, mu, wd = t(self.learning_rate), t(self.momentum), t(self.weight_decay)
            if wd and _decays(name):
                g = g + wd * p
            if not mu:
                p -= lr * g
                continue
            v = self.state.get(name)
            if v is None:
                v = self.state[name] = np.zeros_like(p)
            v *= mu
            v -= lr * g
            if flush:
                _flush_tiny(v, np.empty_like(v))
            if self.nesterov:
                p += mu * v - lr * g
            else:
                p += v


class Adam:
    """Adam (Kingma and Ba, 2015) with bias correction; L2 ``weight_decay`` on weights.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.zeros(1, np.float32)
    >>> Adam(learning_rate=0.1).step([("0.W", p, np.ones(1, np.float32))])
    >>> p.round(4)
    array([-0.1], dtype=float32)
    """

    #: the update's implementation: None for :func:`gridnet.core.kernels.backend`'s, or
    #: "numba" / "numpy" set on an instance (the tests compare the two)
    kernels = None

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 weight_decay=0.0):
        self.learning_rate = learning_rate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weight_decay = weight_decay
        self.state = {}
        self.t = 0

    def step(self, parameters):
        self.t += 1
        parameters = list(parameters)
        # numba steps each array in place from its own gradient (the flush steps: numpy's)
        direct = ((self.kernels or kernels.backend()) == "numba" and self.t % FLUSH_EVERY
                  and all(p.flags.c_contiguous for _, p, _ in parameters))
        flat = self._flat_state(parameters, gather=not direct)
        if flat is None:        # parameters of different dtypes: one array at a time
            for name, p, g in parameters:
                st = self.state.get(name)
                if st is None:
                    st = self.state[name] = (np.zeros_like(p), np.zeros_like(p), np.empty_like(p))
                self._update(p.dtype.type, [(name, p, g)], np.array(g, dtype=p.dtype).reshape(-1),
                             *(a.reshape(-1) for a in st))
            return
        m, v, tmp, grad = flat
        if direct:
            self._apply(m.dtype.type, parameters, m, v)
            return
        self._update(m.dtype.type, parameters, grad, m, v, tmp, self._known[1])

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_known", None)          # views of the buffers: rebuilt after loading
        return state

    def _flat_state(self, parameters, gather=True):
        """(m, v, scratch, gradient) as flat arrays over all ``parameters``, the
        gradients copied in (unless not ``gather``): one pass per operation instead of
        one per array (a small network's step is bound by the number of numpy calls, not
        by their size). None when the parameters do not share one dtype.

        The layout is checked once for a list of parameter arrays; later steps with the
        same arrays (the same objects) and the same buffers reuse it, with the scratch
        array's views shaped like each parameter (``self._known``, not pickled)."""
        arrays = [p for _, p, _ in parameters]
        known = self.__dict__.get("_known")
        buffers = self.state.get("_buffers")
        if (known is not None and known[2] is buffers and len(known[0]) == len(arrays)
                and all(a is b for a, b in zip(arrays, known[0]))):
            if gather:
                np.concatenate([g.reshape(-1) for _, _, g in parameters], out=buffers[3])
            return buffers
        self._known = None
        dtypes = {p.dtype for _, p, _ in parameters}
        if len(dtypes) != 1:
            return None
        dtype = dtypes.pop()
        names = tuple((name, p.size) for name, p, _ in parameters)
        old = self.state.get("_layout")
        if old != names:         # new, or the network grew: keep the moments of arrays kept
            size = sum(n for _, n in names)
            buffers = tuple(np.zeros(size, dtype) for _ in range(4))
            if old is not None:
                before = dict(zip(old, np.cumsum([0] + [n for _, n in old])))
                at = 0
                for key in names:
                    if key in before:
                        for new_, old_ in zip(buffers[:2], self.state["_buffers"][:2]):
                            new_[at:at + key[1]] = old_[before[key]:before[key] + key[1]]
                    at += key[1]
            self.state = {"_layout": names, "_buffers": buffers}
        m, v, tmp, grad = buffers = self.state["_buffers"]
        ends = np.cumsum([0] + [p.size for p in arrays]).tolist()
        views = [tmp[a:b].reshape(p.shape) for a, b, p in zip(ends, ends[1:], arrays)]
        self._known = (arrays, views, buffers)
        if gather:
            np.concatenate([g.reshape(-1) for _, _, g in parameters], out=grad)
        return buffers

    def _scalars(self, f):
        """(b1, c1, b2, c2, eps, step, wd) of this step, in dtype ``f``."""
        b1, b2 = f(self.beta1), f(self.beta2)
        step = f(self.learning_rate * np.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t))
        eps = f(self.epsilon * np.sqrt(1 - self.beta2 ** self.t))
        return b1, f(1) - b1, b2, f(1) - b2, eps, step, f(self.weight_decay)

    def _apply(self, f, parameters, m, v):
        """:meth:`_update`'s numbers, each array stepped in place from its gradient."""
        b1, c1, b2, c2, eps, step, wd = self._scalars(f)
        at = 0
        for name, p, g in parameters:
            n = p.size
            kernels.adam_apply(np.asarray(g, dtype=p.dtype).reshape(-1), p.reshape(-1),
                               wd if _decays(name) else f(0), m[at:at + n], v[at:at + n],
                               b1, c1, b2, c2, eps, step)
            at += n

    def _update(self, f, parameters, g, m, v, tmp, views=None):
        """One Adam step on ``parameters`` [(name, p, g)], whose gradients are laid out
        in ``g`` (the state arrays ``m``, ``v`` and scratch ``tmp`` likewise; ``views``:
        ``tmp``'s part for each parameter, in its shape, when known)."""
        b1, c1, b2, c2, eps, step, wd = self._scalars(f)
        if wd:
            at = 0
            for name, p, _ in parameters:
                if _decays(name):
                    g[at:at + p.size] += wd * p.reshape(-1)
                at += p.size
        if self.t % FLUSH_EVERY == 0:
            # the moments as updated, flushed, then the step from them (numpy's path)
            kernels.adam_moments(g, m, v, b1, c1, b2, c2, tmp)
            _flush_tiny(m, tmp)
            _flush_tiny(v, tmp)
            kernels.adam_step(m, v, eps, step, tmp)
        else:
            # in place, through one scratch array: no temporaries the size of p
            kernels.adam_direction(g, m, v, b1, c1, b2, c2, eps, step, tmp, self.kernels)
        if views is None:
            ends = np.cumsum([0] + [p.size for _, p, _ in parameters]).tolist()
            views = [tmp[a:b].reshape(p.shape) for a, b, (_, p, _) in zip(ends, ends[1:], parameters)]
        for (_, p, _), step_ in zip(parameters, views):
            p -= step_


#: the optimizers :func:`make_optimizer` makes, by name
OPTIMIZERS = ("adam", "sgd", "nesterov")


def make_optimizer(name, learning_rate, weight_decay=0.0, momentum=0.9, nesterov=False):
    """Optimizer by name: ``"adam"``, ``"sgd"`` or ``"nesterov"``."""
    if name == "adam":
        return Adam(learning_rate=learning_rate, weight_decay=weight_decay)
    if name in ("sgd", "nesterov"):
        return SGD(learning_rate=learning_rate, momentum=momentum,
                   nesterov=nesterov or name == "nesterov", weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'adam', 'sgd' or 'nesterov'; got {name!r}")
