"""The n-gram bag (gridnet.core.bag): hashed ids by hand, the mean by hand, finite
differences, and beside a sentence CNN in Branches."""
import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error
from test_layers import _OneHot

from gridnet.core import Branches, Conv2D, Dense, Embedding, Flatten, GlobalMaxPool, Network, NgramBag
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
