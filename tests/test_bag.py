"""The n-gram bag (gridnet.core.bag): hashed ids by hand, the mean by hand, finite
differences, and beside a sentence CNN in Branches."""
import copy

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error
from test_layers import _OneHot

from gridnet.core import Branches, Conv2D, Dense, Embedding, Flatten, GlobalMaxPool, Network, NgramBag
from gridnet.core import kernels
from gridnet.core.bag import _A, _B, ngram_ids


def test_ngram_ids_by_hand():
    idx = np.array([[2, 9, 4, -1], [-1, -1, -1, -1], [7, -1, -1, -1]])
    rows, ids = ngram_ids(idx, trained=8, buckets=101)
    by_sentence = {s: sorted(ids[rows == s].tolist()) for s in range(3)}
    pair = lambda a, b: (a * _A + b * _B + 1) % 101
    # 9 is past trained: the unknown word 0
    assert by_sentence[0] == sorted([2, 0, 4, pair(2, 0), pair(0, 4)])
    assert by_sentence[1] == []
    assert by_sentence[2] == [7]
    rows1, ids1 = ngram_ids(idx, trained=8, buckets=101, n=1)
    assert sorted(ids1[rows1 == 0].tolist()) == [0, 2, 4]


def test_forward_is_the_mean_of_the_rows_and_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    bag = NgramBag(3, buckets=13, trained=6, scale=2.5)
    bag.build((1, 4, 9), rng, dtype=np.float64)
    assert not bag.params["T"].any()                     # it starts at 0
    T = bag.params["T"]
    T[...] = rng.standard_normal(T.shape)
    idx = np.array([[1, 2, 3, -1], [5, 5, 8, 0], [-1, -1, -1, -1]])
    grid = _OneHot(idx, 9)
    out = bag.forward(grid, training=True)[:, :, 0, 0]
    for s in range(3):
        rows, ids = ngram_ids(idx[s:s + 1], 6, 13)
        expected = 2.5 * T[ids].mean(axis=0) if len(ids) else np.zeros(3)
        np.testing.assert_allclose(out[s], expected, rtol=0, atol=1e-12)
    r = rng.standard_normal((3, 3, 1, 1))
    assert bag.backward(r) is None                        # data: no input gradient
    numeric = numeric_grad(lambda: float(np.sum(bag.forward(grid) * r)), T)
    assert rel_error(bag.grads["T"], numeric) < 1e-7
    # a dense one-hot grid gives the same; anything else is refused
    np.testing.assert_allclose(bag.forward(grid.toarray())[:, :, 0, 0], out, atol=1e-12)
    with pytest.raises(ValueError, match="reads one-hot word grids"):
        bag.forward(grid.toarray() * 0.5)


def test_beside_a_sentence_cnn_the_whole_network_checks_by_finite_differences():
    rng = np.random.default_rng(1)
    cnn = [Embedding(3, trained=5, fixed_dim=2),
           Branches([[Conv2D(2, (2, 1), padding="same", activation="relu"), GlobalMaxPool("height")]])]
    net = Network([Branches([cnn, [NgramBag(2, buckets=17, trained=5)]]), Flatten(), Dense(3)])
    net.build((1, 4, 8), rng, dtype=np.float64)
    for name, p, _ in net.parameters():
        p[...] = rng.standard_normal(p.shape)
    net.buffers()[0][1][...] = rng.standard_normal((8, 2))
    grid = _OneHot(np.array([[1, 6, 2, -1], [4, 4, 0, 3]]), 8)
    r = rng.standard_normal((2, 3))
    net.forward(grid, training=True)
    net.backward(r, input_grad=True)
    for name, p, g in net.parameters():
        numeric = numeric_grad(lambda: float(np.sum(net.forward(grid) * r)), p)
        assert rel_error(g, numeric) < 1e-6, name
    assert "0.0.0.fixed" in net.get_weights()


def _bag_net(rows=None, used=None):
    net = Network([NgramBag(4, buckets=97, trained=6, scale=3.0, rows=rows), Flatten(), Dense(3)])
    net.build((1, 5, 9), np.random.default_rng(4))
    if used is not None:
        net.layers[0].set_columns(used)
    return net


def test_a_compact_table_trains_to_the_full_tables_numbers_to_the_bit():
    from gridnet.core import make_optimizer
    rng = np.random.default_rng(3)
    train = rng.integers(-1, 9, (12, 5))
    used = np.unique(ngram_ids(train, 6, 97)[1])
    full, compact = _bag_net(), _bag_net(len(used), used)
    assert compact.layers[0].params["T"].shape == (len(used), 4)
    opts = [make_optimizer("adam", 0.05), make_optimizer("adam", 0.05)]
    for step in range(6):
        batch = _OneHot(train[step % 3 * 4:step % 3 * 4 + 4], 9)
        g = rng.standard_normal((4, 3)).astype(np.float32)
        for net, opt in zip((full, compact), opts):
            net.forward(batch, training=True)
            net.backward(g, input_grad=False)
            opt.step(net.parameters())
    T = full.layers[0].params["T"]
    np.testing.assert_array_equal(compact.layers[0].params["T"], T[used])
    assert not np.delete(T, used, axis=0).any()          # the rows no sentence held: still 0
    new = _OneHot(np.r_[train, rng.integers(-1, 9, (20, 5))], 9)   # unseen words and pairs too
    np.testing.assert_array_equal(compact.forward(new), full.forward(new))


@pytest.mark.skipif(kernels._numba is None, reason="numba's kernels are not available")
@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("scale", [2.0, 0.0])
def test_the_compiled_mean_is_scipys_csr_to_the_bit(n, compact, scale, monkeypatch):
    calls = []
    monkeypatch.setattr(kernels, "_bag_csr_nb",
                        lambda *a, _fn=kernels._bag_csr_nb: (calls.append(1), _fn(*a))[1])
    rng = np.random.default_rng(3)
    idx = rng.integers(-1, 12, (9, 7))             # padding, and words past the trained ones
    idx[1] = [4, 4, 4, 4, 4, -1, -1]                # repeats: their weights are added
    idx[2] = -1                                     # an empty sentence
    idx[3, :2] = [20, 21]                           # two unknown words: the pair (0, 0)
    bag = NgramBag(3, buckets=16, trained=10, n=n, scale=scale, rows=6 if compact else None)
    bag.build((1, 7, 30), rng)
    if compact:
        bag.set_columns(np.array([0, 2, 3, 4, 9, 15]))
    bag.params["T"][...] = rng.standard_normal(bag.params["T"].shape)
    grid = _OneHot(idx, 30)
    g = rng.standard_normal((9, 3, 1, 1)).astype(np.float32)
    out = {}
    for name in ("numba", "numpy"):
        bag.kernels = name
        M = bag._mean(idx, 9)
        y = bag.forward(grid, training=True)
        bag.backward(g)
        out[name] = (M.indptr, M.indices, M.data, y, bag.grads["T"].copy())
    for a, b in zip(*out.values()):
        np.testing.assert_array_equal(a, b)
    assert len(calls) == 2 and out["numba"][2].dtype == np.float32
    assert (np.abs(out["numba"][4]).sum() > 0) == (scale > 0)
    # batch after batch: the gradient's buffer is reused, the rows of the last batch zeroed
    other = copy.deepcopy(bag)
    other.kernels, bag.kernels = "numpy", "numba"
    for _ in range(3):
        grid, g = _OneHot(rng.integers(-1, 12, (5, 7)), 30), rng.standard_normal((5, 3, 1, 1)).astype(np.float32)
        for layer in (bag, other):
            layer.forward(grid, training=True)
            layer.backward(g)
        np.testing.assert_array_equal(bag.grads["T"], other.grads["T"])


def test_a_compact_tables_columns_are_checked():
    bag = NgramBag(2, buckets=10, rows=3)
    bag.build((1, 4, 6), None)
    assert bag.get_config()["rows"] == 3 and "rows" not in NgramBag(2, buckets=10).get_config()
    assert bag.describe() == "NgramBag(2, 10 buckets, 3 rows, 2-grams)"
    for used in ([1, 2], [1, 2, 10], [3, 2, 1], [1, 1, 2]):
        with pytest.raises(ValueError, match="3 increasing buckets in"):
            bag.set_columns(np.array(used))
    with pytest.raises(ValueError, match="rows None or in"):
        NgramBag(2, buckets=10, rows=11)
