import pickle

import numpy as np
import pytest

from gradcheck import numeric_grad, rel_error
from gridnet import (Adam, Branches, Conv2D, Dense, Dropout, Flatten, GlobalMaxPool,
                     MaxPool2D, Network, ReLU, SGD, SoftmaxCrossEntropy, softmax)


def small_network():
    return Network([
        Conv2D(3, 3, padding="same", activation="relu"),
        MaxPool2D(3, 2, padding="same"),
        Branches([[Conv2D(2, (k, 4)), ReLU(), GlobalMaxPool("height")] for k in (2, 3)]),
        Flatten(),
        Dense(5, activation="relu"),
        Dense(3),
    ])


def test_whole_network_gradient_check():
    rng = np.random.default_rng(0)
    net = small_network()
    net.build((2, 7, 8), rng, dtype=np.float64)
    x = rng.standard_normal((4, 2, 7, 8))
    y = np.array([0, 1, 2, 1])
    loss = SoftmaxCrossEntropy(class_weight=np.array([1.0, 2.0, 0.5]))

    logits = net.forward(x, training=True)
    _, grad = loss(logits, y)
    dx = net.backward(grad)
    analytic = {name: g.copy() for name, _, g in net.parameters()}

    def f():
        return loss(net.forward(x), y)[0]

    for name, p, _ in net.parameters():
        err = rel_error(analytic[name], numeric_grad(f, p))
        assert err < 1e-5, (name, err)
    assert rel_error(dx, numeric_grad(f, x)) < 1e-5


def test_softmax_cross_entropy_values_and_stability():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    loss, grad = SoftmaxCrossEntropy()(logits, np.array([0, 2]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(np.log(3) / 2, rel=1e-5)
    p = softmax(logits.copy())
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert grad.dtype == np.float32


def test_class_weights_match_weighted_mean():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((6, 3))
    y = np.array([0, 0, 1, 2, 2, 2])
    w = np.array([2.0, 1.0, 0.5])
    loss, _ = SoftmaxCrossEntropy(class_weight=w)(logits, y)
    logp = np.log(softmax(logits.copy()))
    expect = -(w[y] * logp[np.arange(6), y]).sum() / w[y].sum()
    assert loss == pytest.approx(expect)


@pytest.mark.parametrize("class_weight", [None, np.array([2.0, 1.0, 0.5])])
def test_outlier_label_has_a_uniform_target_checked_by_finite_differences(class_weight):
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((5, 3))
    y = np.array([0, -1, 2, -1, 1])
    sw = rng.uniform(0.5, 2.0, size=5)
    loss_fn = SoftmaxCrossEntropy(class_weight=class_weight)
    loss, grad = loss_fn(logits, y, sw)
    logp = np.log(softmax(logits.copy()))
    target = np.full((5, 3), 1 / 3)                 # outliers: uniform over the classes
    for i in (0, 2, 4):
        target[i] = np.eye(3)[y[i]]
    w = sw * (np.ones(5) if class_weight is None else np.where(y < 0, 1.0, class_weight[y]))
    expect = -(w * (target * logp).sum(axis=1)).sum() / w.sum()
    assert loss == pytest.approx(expect, rel=1e-10)
    assert rel_error(grad, numeric_grad(lambda: loss_fn(logits, y, sw)[0], logits)) < 1e-7
    unweighted = loss_fn(logits, y)
    assert rel_error(unweighted[1], numeric_grad(lambda: loss_fn(logits, y)[0], logits)) < 1e-7
    # the last class is not what -1 means: a real label there gives another loss
    assert loss != pytest.approx(loss_fn(logits, np.where(y < 0, 2, y), sw)[0])
    assert np.array_equal(y, [0, -1, 2, -1, 1])      # the labels are not modified


def test_sgd_momentum_and_nesterov_match_hand_computation():
    for nesterov in (False, True):
        p = np.array([1.0], np.float32)
        opt = SGD(learning_rate=0.1, momentum=0.5, nesterov=nesterov)
        v, q = 0.0, 1.0
        for g in (1.0, 2.0, -1.0):
            opt.step([("0.W", p, np.array([g], np.float32))])
            v = 0.5 * v - 0.1 * g
            q = q + (0.5 * v - 0.1 * g if nesterov else v)
            assert p[0] == pytest.approx(q, rel=1e-6)
        assert p.dtype == np.float32


def test_adam_matches_reference_and_keeps_float32():
    p = np.array([0.5, -0.3], np.float32)
    opt = Adam(learning_rate=0.01)
    m = v = np.zeros(2)
    q = p.astype(np.float64)
    for t, g in enumerate(([0.1, -0.2], [0.3, 0.1], [-0.2, 0.05]), start=1):
        g = np.array(g)
        opt.step([("0.W", p, g.astype(np.float32))])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        q = q - 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        np.testing.assert_allclose(p, q, rtol=1e-5)
    assert p.dtype == np.float32


def _reference_adam(params, grads_seq, lr=0.01, wd=0.0):
    """Textbook Adam, one array at a time, in float64."""
    state = {name: (np.zeros(p.shape), np.zeros(p.shape)) for name, p in params.items()}
    q = {name: p.astype(np.float64) for name, p in params.items()}
    for t, grads in enumerate(grads_seq, start=1):
        for name, g in grads.items():
            g = g + (wd * q[name] if wd and not name.endswith("b") else 0)
            m, v = state[name]
            m[...] = 0.9 * m + 0.1 * g
            v[...] = 0.999 * v + 0.001 * g * g
            q[name] = q[name] - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return q


def test_adam_over_many_arrays_matches_one_at_a_time():
    """The step runs over all arrays at once (one flat pass per operation): each array
    still gets its own textbook update, weight decay on weights only, float64 arrays
    beside float32 ones too, and moments kept when the network grows."""
    rng = np.random.default_rng(0)
    shapes = {"0.W": (3, 4), "0.b": (3,), "1.W": (2, 2, 5)}
    for wd, dtypes in ((0.0, {}), (0.1, {}), (0.0, {"0.b": np.float64})):
        params = {k: rng.standard_normal(s).astype(dtypes.get(k, np.float32)) for k, s in shapes.items()}
        start = {k: p.copy() for k, p in params.items()}
        seq = [{k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()} for _ in range(4)]
        opt = Adam(learning_rate=0.01, weight_decay=wd)
        for grads in seq:
            opt.step([(k, params[k], grads[k]) for k in shapes])
        want = _reference_adam(start, seq, wd=wd)
        for k in shapes:
            np.testing.assert_allclose(params[k], want[k], rtol=2e-5, atol=1e-6)
            assert params[k].dtype == dtypes.get(k, np.float32)
    # a layer appended after two steps: the old array keeps its moments
    p1 = rng.standard_normal(4).astype(np.float32)
    start = p1.copy()
    g = [rng.standard_normal(4).astype(np.float32) for _ in range(3)]
    opt = Adam(learning_rate=0.01)
    opt.step([("0.W", p1, g[0])])
    opt.step([("0.W", p1, g[1])])
    p2 = np.zeros(2, np.float32)
    opt.step([("0.W", p1, g[2]), ("1.W", p2, np.ones(2, np.float32))])
    want = _reference_adam({"0.W": start}, [{"0.W": x} for x in g])
    np.testing.assert_allclose(p1, want["0.W"], rtol=2e-5, atol=1e-6)
    assert np.all(p2 < 0)


def test_adam_reuses_its_layout_only_for_the_same_arrays_and_state():
    """Adam keeps the layout of the last step's arrays (views of its scratch array
    shaped like each); an array replaced by a new object, a pickled and loaded
    optimizer, or a state replaced from outside each give the textbook steps."""
    import pickle
    rng = np.random.default_rng(1)
    seq = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(4)]
    start = rng.standard_normal((2, 3)).astype(np.float32)
    want = _reference_adam({"0.W": start}, [{"0.W": g} for g in seq])["0.W"]
    nothing = np.zeros(3, np.float32)
    for case in ("same arrays", "new array", "pickled", "new state"):
        p, b, opt = start.copy(), np.zeros(3, np.float32), Adam(learning_rate=0.01)
        opt.step([("0.W", p, seq[0]), ("0.b", b, nothing)])
        opt.step([("0.W", p, seq[1]), ("0.b", b, nothing)])
        if case == "new array":
            p = p.copy()                        # the same values in a new object
        elif case == "pickled":
            p, b, opt = pickle.loads(pickle.dumps((p, b, opt)))
        elif case == "new state":
            opt.state = pickle.loads(pickle.dumps(opt.state))
        for g in seq[2:]:
            before = p.copy()
            opt.step([("0.W", p, g), ("0.b", b, nothing)])
            assert not np.array_equal(p, before), case     # this array was updated
        np.testing.assert_allclose(p, want, rtol=2e-5, atol=1e-6, err_msg=case)
    # an array of another shape in the same place: the step a loaded copy (no layout
    # kept) takes
    q, g = np.zeros(6, np.float32), np.linspace(-1, 1, 6).astype(np.float32)
    fresh, q2, b2 = pickle.loads(pickle.dumps((opt, q, b)))
    opt.step([("0.W", q, g), ("0.b", b, nothing)])
    fresh.step([("0.W", q2, g), ("0.b", b2, nothing)])
    np.testing.assert_array_equal(q, q2)


@pytest.mark.parametrize("make", [lambda: Adam(learning_rate=0.01),
                                  lambda: SGD(learning_rate=0.01, momentum=0.9)],
                         ids=["adam", "sgd"])
def test_moments_of_weights_whose_gradient_stopped_never_turn_subnormal(make):
    """A weight that stops getting gradient (a dead unit) has its momentum shrink by
    0.9 a step into subnormal numbers, which are tens of times slower to multiply and
    never reach zero; the optimizers set such moments to zero, without changing any
    weight against a run that keeps them."""
    from gridnet.core import optimizers
    rng = np.random.default_rng(0)
    live, dead = rng.standard_normal(50).astype(np.float32), rng.standard_normal(50).astype(np.float32)
    kept_live, kept_dead = live.copy(), dead.copy()
    flushing, keeping = make(), make()
    tiny = np.finfo(np.float32).tiny
    zero = np.zeros(50, np.float32)
    for t in range(1200):
        g_live = rng.standard_normal(50).astype(np.float32)
        g_dead = g_live if t == 0 else zero
        flushing.step([("0.W", live, g_live), ("1.W", dead, g_dead.copy())])
        old, optimizers.FLUSH_EVERY = optimizers.FLUSH_EVERY, 10 ** 9
        try:
            keeping.step([("0.W", kept_live, g_live), ("1.W", kept_dead, g_dead.copy())])
        finally:
            optimizers.FLUSH_EVERY = old
    def moments(opt):
        if isinstance(opt, Adam):
            return np.concatenate(opt.state["_buffers"][:2])
        return np.concatenate([opt.state["0.W"], opt.state["1.W"]])
    kept = moments(keeping)
    assert np.any((kept != 0) & (np.abs(kept) < tiny))       # the case arises without the flush
    flushed = moments(flushing)
    assert not np.any((flushed != 0) & (np.abs(flushed) < tiny))
    np.testing.assert_array_equal(live, kept_live)
    np.testing.assert_array_equal(dead, kept_dead)


def test_weight_decay_applies_to_weights_not_biases():
    w, b = np.ones(2, np.float32), np.ones(2, np.float32)
    zero = np.zeros(2, np.float32)
    SGD(learning_rate=0.1, momentum=0.0, weight_decay=0.5).step([("0.W", w, zero), ("0.b", b, zero)])
    np.testing.assert_allclose(w, 0.95)
    np.testing.assert_allclose(b, 1.0)


def test_he_init_before_relu_glorot_otherwise():
    net = Network([Conv2D(64, 3, activation="relu"), Flatten(), Dense(200)])
    net.build((8, 10, 10), np.random.default_rng(0))
    conv_std = net.layers[0].params["W"].std()
    assert conv_std == pytest.approx(np.sqrt(2 / 72), rel=0.05)             # He
    dense_w = net.layers[2].params["W"]
    limit = np.sqrt(6 / (dense_w.shape[0] + 200))
    assert np.abs(dense_w).max() <= limit and np.abs(dense_w).max() > 0.95 * limit  # Glorot


def test_summary_lists_layers_shapes_and_params():
    net = small_network()
    net.build((2, 7, 8), np.random.default_rng(0))
    text = net.summary()
    assert "Conv2D(3, 3x3, same, relu)" in text
    assert "(None, 3, 7, 8)" in text
    assert f"Total params: {net.n_params:,}" in text
    # conv 3x(2*3*3)+3, branches 2x(3*2*4)+2 and 2x(3*3*4)+2, dense 4*5+5 and 5*3+3
    assert net.n_params == (3 * 18 + 3) + (2 * 24 + 2) + (2 * 36 + 2) + (4 * 5 + 5) + (5 * 3 + 3)


def test_weights_roundtrip_and_config():
    net = small_network()
    net.build((2, 7, 8), np.random.default_rng(0))
    other = Network.from_config(net.get_config())
    other.build((2, 7, 8), np.random.default_rng(1))
    other.set_weights(net.get_weights())
    x = np.random.default_rng(2).standard_normal((3, 2, 7, 8)).astype(np.float32)
    np.testing.assert_array_equal(net.forward(x), other.forward(x))
    clone = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(net.forward(x), clone.forward(x))
    with pytest.raises(ValueError, match="missing"):
        other.set_weights({})


def test_build_error_names_the_layer():
    net = Network([Conv2D(2, 3), MaxPool2D(2), Conv2D(2, 5)])
    with pytest.raises(ValueError, match="layer 2"):
        net.build((1, 8, 8), np.random.default_rng(0))


def test_forward_rejects_wrong_sample_shape():
    net = Network([Conv2D(2, 3), Flatten(), Dense(2)])
    net.build((1, 8, 8), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"built for samples of shape \(1, 8, 8\)"):
        net.forward(np.zeros((2, 1, 9, 9), np.float32))


def bars(n, size, rng):
    """Oriented bars: horizontal (0), vertical (1), diagonal (2), at random places, noisy."""
    x = rng.normal(0, 0.3, (n, 1, size, size)).astype(np.float32)
    y = rng.integers(0, 3, n)
    for i in range(n):
        r, c = rng.integers(2, size - 2, 2)
        if y[i] == 0:
            x[i, 0, r, max(0, c - 3):c + 3] += 1.5
        elif y[i] == 1:
            x[i, 0, max(0, r - 3):r + 3, c] += 1.5
        else:
            for k in range(-2, 3):
                if 0 <= r + k < size and 0 <= c + k < size:
                    x[i, 0, r + k, c + k] += 1.5
    return x, y


def test_network_learns_oriented_bars():
    rng = np.random.default_rng(0)
    x, y = bars(900, 12, rng)
    net = Network([Conv2D(8, 3, padding="same", activation="relu"), MaxPool2D(2),
                   Conv2D(16, 3, padding="same", activation="relu"), MaxPool2D(2),
                   Flatten(), Dropout(0.2), Dense(32, activation="relu"), Dense(3)])
    net.build((1, 12, 12), rng)
    loss, opt = SoftmaxCrossEntropy(), Adam(3e-3)
    for epoch in range(12):
        order = rng.permutation(600)
        for start in range(0, 600, 32):
            idx = order[start:start + 32]
            _, grad = loss(net.forward(x[idx], training=True), y[idx])
            net.backward(grad, input_grad=False)
            opt.step(net.parameters())
    accuracy = (net.forward(x[600:]).argmax(axis=1) == y[600:]).mean()
    assert accuracy >= 0.97, accuracy
