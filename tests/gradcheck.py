"""Central finite-difference gradient checks in float64 (shared by the core tests)."""
import numpy as np


def numeric_grad(f, x, eps=1e-6):
    """d f() / d x by central differences; ``x`` is perturbed in place and restored."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def rel_error(a, b):
    return float(np.max(np.abs(a - b)) / max(1e-8, np.max(np.abs(a)) + np.max(np.abs(b))))


def check_layer(layer, in_shape, n=2, seed=0, tol=1e-6):
    """Check ``backward`` of a built-here layer against finite differences.

    The loss is ``sum(forward(x) * r)`` for a fixed random ``r``; returns the worst
    relative error over the input and every parameter.
    """
    rng = np.random.default_rng(seed)
    layer.build(in_shape, rng, dtype=np.float64)
    x = rng.standard_normal((n,) + tuple(in_shape))
    out = layer.forward(x, training=True)
    r = rng.standard_normal(out.shape)
    dx = layer.backward(r.copy())
    analytic = {"x": dx, **{k: g.copy() for k, g in layer.grads.items()}}

    def loss():
        return float(np.sum(layer.forward(x, training=False) * r))

    numeric = {"x": numeric_grad(loss, x)}
    for key, p in layer.params.items():
        numeric[key] = numeric_grad(loss, p)
    errors = {k: rel_error(analytic[k], numeric[k]) for k in numeric}
    worst = max(errors.values())
    assert worst < tol, f"{layer!r} on {in_shape}: gradient errors {errors}"
    return errors
