"""A batch cut into shards that run on threads (gridnet.core.shards): the same outputs as
each shard run alone, the parameter gradients their sum (and right by finite
differences), the same weights to the bit on one thread or on two."""
import copy
import pickle
import sys
import threading
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from gradcheck import numeric_grad, rel_error
from gridnet import (Adam, Branches, Conv2D, Dense, Dropout, Flatten, GlobalMaxPool, MaxPool2D,
                     Network, SoftmaxCrossEntropy)
from gridnet.core import shards
from gridnet.core.layers import Layer
from gridnet.core.shards import MAX_SHARDS, SHARD_SAMPLES, Sharding, shard_slices


def image_net(dropout=0.0):
    return Network([Conv2D(4, 3, padding="same", activation="relu"), MaxPool2D(2),
                    Conv2D(6, 3, padding="same", activation="relu"), MaxPool2D(2),
                    Flatten(), Dense(16, activation="relu")]
                   + ([Dropout(dropout)] if dropout else []) + [Dense(3)])


def text_net():
    return Network([Branches([[Conv2D(5, (k, 6), activation="relu"), GlobalMaxPool("height")]
                              for k in (2, 3)]), Flatten(), Dense(3)])


NETS = {"image": (image_net, (1, 8, 8)), "text": (text_net, (1, 7, 6))}


def built(name, dtype=np.float32, **kw):
    make, shape = NETS[name]
    net = make(**kw)
    net.build(shape, np.random.default_rng(0), dtype)
    return net, shape


@pytest.fixture(params=[1, 2], ids=["one thread", "two threads"])
def threads(request, monkeypatch):
    """Shards on one thread or on two, whatever this machine's BLAS has; a batch of
    small networks sharded whatever its columns (no SHARD_BYTES)."""
    monkeypatch.setattr(Sharding, "threads", lambda self: request.param)
    monkeypatch.setattr(shards, "SHARD_BYTES", 0)
    return request.param


@pytest.mark.parametrize("n", [1, 31, 32, 33, 64, 70, 100, 256, 257, 10000])
def test_shards_cover_the_batch_in_order_by_its_size_alone(n):
    cut = shard_slices(n)
    assert cut[0].start == 0 and cut[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(cut, cut[1:]))
    sizes = [s.stop - s.start for s in cut]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    assert len(cut) == min(MAX_SHARDS, -(-n // SHARD_SAMPLES))
    assert max(sizes) <= SHARD_SAMPLES or len(cut) == MAX_SHARDS


@pytest.mark.parametrize("name", list(NETS))
def test_a_sharded_batch_gives_each_shard_s_own_outputs(name, threads):
    net, shape = built(name)
    x = np.random.default_rng(1).standard_normal((70,) + shape).astype(np.float32)
    alone = np.concatenate([net.forward(x[sl]) for sl in shard_slices(70)])
    assert len(shard_slices(70)) == 3
    np.testing.assert_array_equal(net.forward(x), alone)
    np.testing.assert_array_equal(net.forward(x, training=True), alone)


@pytest.mark.parametrize("name", list(NETS))
def test_sharded_gradients_are_the_sum_of_the_shards_and_agree_with_finite_differences(
        name, threads):
    net, shape = built(name, np.float64)
    rng = np.random.default_rng(2)
    n = SHARD_SAMPLES + 6
    x = rng.standard_normal((n,) + shape)
    y = np.arange(n) % 3
    loss = SoftmaxCrossEntropy()
    _, grad = loss(net.forward(x, training=True), y)
    dx = net.backward(grad)
    sharded = {name_: g.copy() for name_, _, g in net.parameters()}
    # each shard alone (unsharded: at most SHARD_SAMPLES samples), summed in order
    total, dxs = {}, []
    for sl in shard_slices(n):
        net.forward(x[sl], training=True)
        dxs.append(net.backward(grad[sl]))
        for name_, _, g in net.parameters():
            total[name_] = total[name_] + g if name_ in total else g.copy()
    np.testing.assert_array_equal(dx, np.concatenate(dxs))
    for key in total:
        np.testing.assert_allclose(sharded[key], total[key], rtol=1e-12, atol=1e-15)

    def f():
        return loss(net.forward(x), y)[0]

    assert rel_error(dx, numeric_grad(f, x)) < 1e-6
    for key, p, _ in net.parameters():
        assert rel_error(sharded[key], numeric_grad(f, p)) < 1e-6, key


def _train(name, steps=6, n=70, **kw):
    net, shape = built(name, **kw)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n,) + shape).astype(np.float32)
    y = np.arange(n) % 3
    loss, opt = SoftmaxCrossEntropy(), Adam(1e-2)
    for _ in range(steps):
        _, grad = loss(net.forward(x, training=True), y)
        net.backward(grad, input_grad=False)
        opt.step(net.parameters())
    return net.get_weights(), net.forward(x)


@pytest.mark.parametrize("name, kw", [("image", {}), ("image", {"dropout": 0.5}), ("text", {})])
def test_the_same_weights_to_the_bit_on_one_thread_or_two(name, kw, monkeypatch):
    monkeypatch.setattr(shards, "SHARD_BYTES", 0)
    runs = []
    for t in (1, 2):
        monkeypatch.setattr(Sharding, "threads", lambda self, t=t: t)
        runs.append(_train(name, **kw))
    (w1, out1), (w2, out2) = runs
    assert w1.keys() == w2.keys()
    for key in w1:
        np.testing.assert_array_equal(w1[key], w2[key], err_msg=key)
    np.testing.assert_array_equal(out1, out2)


class Spy(Layer):
    """Records which thread ran it and how many threads the BLAS had meanwhile."""
    seen = []            # a class attribute: the replicas' copies share it

    def forward(self, x, training=False):
        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        Spy.seen.append((threading.get_ident(), max(blas, default=1)))
        return x

    def backward(self, grad, input_grad=True):
        return grad


class Meet(Spy):
    """A Spy whose first two shards wait for each other: if one thread ran them both it
    would wait alone and time out, so two threads are seen however busy the machine is
    (without it the calling thread could take every trivial shard before the worker
    started)."""
    barrier = None

    def forward(self, x, training=False):
        out = super().forward(x, training)
        if len(Spy.seen) <= 2 and Meet.barrier is not None:
            Meet.barrier.wait()
        return out


def test_shards_run_on_threads_with_the_blas_held_at_one_and_given_back(threads):
    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    net = Network([Flatten(), Meet(), Dense(2)])
    net.build((1, 2, 2), np.random.default_rng(0))
    Spy.seen.clear()
    Meet.barrier = threading.Barrier(2, timeout=60) if threads == 2 else None
    net.forward(np.zeros((4 * SHARD_SAMPLES, 1, 2, 2), np.float32))
    assert len(Spy.seen) == 4
    idents = {ident for ident, _ in Spy.seen}
    if threads == 1:        # the calling thread alone, the BLAS left as it was
        assert idents == {threading.get_ident()}
        assert [b for _, b in Spy.seen] == [max(before, default=1)] * 4
    else:
        assert len(idents) == 2
        assert {b for _, b in Spy.seen} == {1}
    Meet.barrier = None
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before


class Fails(Layer):
    def forward(self, x, training=False):
        if x.any():
            raise RuntimeError("a shard failed")
        return x


def test_a_shard_s_error_reaches_the_caller_and_the_blas_is_given_back(threads):
    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    net, _ = built("image")
    with pytest.raises(ValueError, match=r"got a batch of shape \(64, 1, 9, 9\)"):
        net.forward(np.zeros((64, 1, 9, 9), np.float32))
    net = Network([Flatten(), Fails(), Dense(2)])
    net.build((1, 2, 2), np.random.default_rng(0))
    x = np.zeros((2 * SHARD_SAMPLES, 1, 2, 2), np.float32)
    x[SHARD_SAMPLES:] = 1                                   # the second shard fails
    with pytest.raises(RuntimeError, match="a shard failed"):
        net.forward(x)
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before


def test_dropout_draws_other_masks_in_each_shard_and_the_same_ones_again(threads):
    net = Network([Flatten(), Dropout(0.5)])
    x = np.ones((2 * SHARD_SAMPLES, 1, 4, 4), np.float32)
    masks = []
    for _ in range(2):
        net.build((1, 4, 4), np.random.default_rng(0))
        masks.append(net.forward(x, training=True))
    a, b = masks[0][:SHARD_SAMPLES], masks[0][SHARD_SAMPLES:]
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(masks[0], masks[1])


def test_replicas_follow_the_parameters_through_updates_and_rebuilds(threads):
    net, shape = built("image")
    x = np.random.default_rng(4).standard_normal((64,) + shape).astype(np.float32)
    net.forward(x)                                   # the replica is made
    for _, p, _ in net.parameters():                 # updated in place, as the optimizers do
        p += 0.1
    np.testing.assert_array_equal(net.forward(x), np.concatenate([net.forward(x[:32]),
                                                                  net.forward(x[32:])]))
    net.build(shape, np.random.default_rng(5))       # new arrays
    np.testing.assert_array_equal(net.forward(x), np.concatenate([net.forward(x[:32]),
                                                                  net.forward(x[32:])]))
    net.layers[-1].params["W"] = net.layers[-1].params["W"] * 2   # replaced, not updated
    np.testing.assert_array_equal(net.forward(x), np.concatenate([net.forward(x[:32]),
                                                                  net.forward(x[32:])]))


def test_replicas_use_the_kernels_chosen_on_the_network_s_steps(threads):
    net, shape = built("image")
    x = np.random.default_rng(6).standard_normal((64,) + shape).astype(np.float32)
    net.steps[0].kernels = "numpy"
    net.forward(x)
    (_, steps), = net._sharding._replicas
    assert steps[0].kernels == "numpy" and "kernels" not in steps[1].__dict__


def test_a_network_that_ran_sharded_pickles_and_copies_without_its_threads(threads):
    net, shape = built("text")
    x = np.random.default_rng(7).standard_normal((64,) + shape).astype(np.float32)
    out = net.forward(x)
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert "_sharding" not in other.__dict__
        np.testing.assert_array_equal(other.forward(x), out)


def test_a_small_batch_or_a_one_hot_grid_runs_unsharded():
    net, shape = built("image")
    net.forward(np.zeros((SHARD_SAMPLES,) + shape, np.float32))
    assert "_sharding" not in net.__dict__
    assert shards.shard_slices(SHARD_SAMPLES) == [slice(0, SHARD_SAMPLES)]


def test_only_a_network_with_enough_columns_a_shard_is_sharded():
    # net A of benchmarks/bench_core.py: 228 KB of columns a sample, two shards of 32
    big = Network([Conv2D(16, 3, padding="same", activation="relu"), MaxPool2D(2),
                   Conv2D(32, 3, padding="same", activation="relu"), MaxPool2D(2),
                   Flatten(), Dense(10)])
    big.build((1, 32, 32), np.random.default_rng(0))
    assert shards.column_bytes(big.steps) == (1 * 9 * 4 * 17 * 17 + 16 * 9 * 4 * 9 * 9) * 4
    x = np.zeros((64, 1, 32, 32), np.float32)
    big.forward(x)
    assert len(big._sharding._replicas) == 1
    assert shard_slices(64, shards.column_bytes(big.steps)) == [slice(0, 32), slice(32, 64)]
    # a small image network (under SHARD_BYTES a shard) and a sentence CNN (no columns)
    for name in NETS:
        net, shape = built(name)
        net.forward(np.zeros((64,) + shape, np.float32))
        assert net._sharding._replicas == [], name
    assert shards.column_bytes(built("text")[0].steps) == 0


def test_dropout_under_a_generator_that_cannot_spawn_still_draws_other_masks(threads):
    net = Network([Flatten(), Dropout(0.5)])
    legacy = np.random.MT19937()
    legacy._legacy_seeding(0)                # as RandomState seeds it: no SeedSequence
    net.build((1, 4, 4), np.random.Generator(legacy))
    x = np.ones((2 * SHARD_SAMPLES, 1, 4, 4), np.float32)
    out = net.forward(x, training=True)
    assert not np.array_equal(out[:SHARD_SAMPLES], out[SHARD_SAMPLES:])


def _forward_in(net, x, queue):
    queue.put(net.forward(x))


@pytest.mark.skipif(sys.platform != "linux", reason="forking a process with threads: Linux")
def test_a_forked_child_runs_shards_on_threads_of_its_own(threads):
    import multiprocessing
    net, shape = built("image")
    x = np.random.default_rng(8).standard_normal((64,) + shape).astype(np.float32)
    expected = net.forward(x)                     # the parent's pool and worker exist now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_forward_in, args=(net, x, queue))
    with warnings.catch_warnings():               # (Python 3.12 warns of fork with threads)
        warnings.simplefilter("ignore", DeprecationWarning)
        child.start()
    got = queue.get(timeout=60)                   # the pool's dead threads would hang here
    child.join(timeout=60)
    np.testing.assert_array_equal(got, expected)


def test_replicas_follow_a_layer_s_configuration_changed_after_they_were_made(threads):
    # gridnet.explain turns dropout off this way for a training pass
    net, shape = built("image", dropout=0.5)
    x = np.random.default_rng(9).standard_normal((64,) + shape).astype(np.float32)
    net.forward(x, training=True)                 # the replica is made, with dropout
    dropout = next(layer for layer in net.layers if isinstance(layer, Dropout))
    dropout.rate = 0.0
    np.testing.assert_array_equal(net.forward(x, training=True), net.forward(x))
    dropout.rate = 0.5
    assert not np.array_equal(net.forward(x, training=True), net.forward(x))


def test_explanation_maps_of_a_sharded_batch_are_each_shard_s_own(threads):
    from gridnet.explain import gradient_x_input
    net, shape = built("image", dropout=0.5)
    x = np.random.default_rng(10).standard_normal((64,) + shape).astype(np.float32)
    codes = np.arange(64) % 3
    net.forward(x, training=True)                 # replicas made with dropout on
    alone = np.concatenate([gradient_x_input(net, x[sl], codes[sl]) for sl in shard_slices(64)])
    np.testing.assert_allclose(gradient_x_input(net, x, codes), alone, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("rows", [63, 65])
def test_a_gradient_for_another_batch_size_is_an_error_not_rows_dropped(rows, threads):
    net, shape = built("image")
    out = net.forward(np.zeros((64,) + shape, np.float32), training=True)
    grad = np.zeros((rows,) + out.shape[1:], np.float32)
    with pytest.raises(ValueError, match=f"a gradient for {rows} samples after a forward "
                                         f"pass of 64"):
        net.backward(grad)
