"""The text preset's linear member (gridnet.wide, gridnet.core.NgramLinear): scikit-learn's
TF-IDF and logistic regression to the float, its share chosen on the held-out split, never
trained by the networks' optimizer, and carried by the model file."""
import time

import numpy as np
import pytest
from scipy import sparse
from scipy.special import log_softmax
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import gridnet
from adapters import TextAdapter
from adapters.onehot import OneHotGrid
from gridnet import GridNetClassifier, training, wide
from gridnet.architectures import ensemble_members
from gridnet.calibration import fit_temperature
from gridnet.core import NgramBag, NgramLinear
from gridnet.core.bag import ngram_ids
from gridnet.core.stack import leaves

RNG = np.random.default_rng(0)
WORDS = [f"w{i}" for i in range(40)]
TOPICS = {"a": ["superb", "moving", "fine"], "b": ["dull", "awful", "boring"], "c": ["where", "who", "how"]}


def sentences(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.choice(sorted(TOPICS), n)
    text = [" ".join(list(rng.choice(WORDS, rng.integers(2, 7))) + [rng.choice(TOPICS[y])]
                     + list(rng.choice(WORDS, 2))) for y in labels]
    return text, labels


def counts(idx, trained, buckets):
    rows, ids = ngram_ids(idx, trained, buckets)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, ids)), shape=(idx.shape[0], buckets))


def word_rows(n=60, h=9, width=30, seed=1):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, width, (n, h))
    idx[rng.random((n, h)) < 0.2] = 3                          # repeated words
    for i, length in enumerate(rng.integers(0, h + 1, n)):     # padding at the end
        idx[i, length:] = -1
    return idx


@pytest.mark.parametrize("n_classes", [2, 4])
def test_the_member_is_scikit_learns_tfidf_and_logistic_regression(n_classes):
    idx, buckets = word_rows(), 64
    codes = np.arange(len(idx)) % n_classes
    bag = NgramBag(4, buckets, trained=25)
    bag.build((1, idx.shape[1], 30), np.random.default_rng(0))
    lin = wide.fit_linear(idx, codes, n_classes, bag)
    C = counts(idx, 25, buckets)
    df = C.getnnz(axis=0)
    assert (df == 1).any() and wide.MIN_DF == 2          # n-grams of one sentence are left out
    used = np.flatnonzero(df >= wide.MIN_DF)
    ref = make_pipeline(TfidfTransformer(sublinear_tf=True), LogisticRegression(C=wide.C, tol=wide.TOL, max_iter=5000))
    ref.fit(C[:, used], codes)
    test = word_rows(seed=2)
    np.testing.assert_allclose(lin.tfidf(test).toarray(),
                               ref[0].transform(counts(test, 25, buckets)[:, used]).toarray(), atol=1e-12)
    proba = np.exp(log_softmax(lin.forward(_onehot(test, 30)).astype(float), axis=1))
    np.testing.assert_allclose(proba, ref.predict_proba(counts(test, 25, buckets)[:, used]), atol=1e-5)


def _onehot(idx, width):
    x = np.zeros((idx.shape[0], 1, idx.shape[1], width), np.float32)
    n, h = np.nonzero(idx >= 0)
    x[n, 0, h, idx[n, h]] = 1
    return x


def test_unseen_ngrams_count_for_nothing_and_an_empty_sentence_gives_the_intercepts():
    idx = word_rows()
    bag = NgramBag(4, 64)
    bag.build((1, idx.shape[1], 30), np.random.default_rng(0))
    lin = wide.fit_linear(idx, np.arange(len(idx)) % 3, 3, bag)
    empty = np.full((1, idx.shape[1]), -1)
    np.testing.assert_allclose(lin.forward(_onehot(empty, 30))[0], lin.buffers["b"], atol=1e-6)
    with pytest.raises(ValueError, match="every one of the 4 classes"):
        wide.fit_linear(idx, np.arange(len(idx)) % 3, 4, bag)


def test_where_no_ngram_is_in_two_sentences_each_is_a_feature():
    idx = np.arange(12).reshape(4, 3)                       # 12 distinct words, no n-gram repeated
    bag = NgramBag(4, 1024)
    bag.build((1, 3, 12), np.random.default_rng(0))
    lin = wide.fit_linear(idx, np.arange(4) % 2, 2, bag)
    assert lin.n_features == counts(idx, 12, 1024).getnnz() == 4 * (3 + 2)
    assert (lin.forward(_onehot(idx, 12)).argmax(1) == np.arange(4) % 2).all()


def fitted(monkeypatch=None, shares=None, **kw):
    if shares is not None:
        monkeypatch.setattr(wide, "WEIGHTS", shares)
    text, labels = sentences(240, 0)
    pipe = make_pipeline(TextAdapter(), GridNetClassifier(**{"max_epochs": 3, "random_state": 0, **kw}))
    return pipe.fit(text, labels), text, labels


def test_the_share_is_the_held_out_splits_best_and_the_logits_mix_as_chosen():
    pipe, text, labels = fitted()
    clf, grid = pipe[-1], pipe[0].transform(text)
    assert clf.linear_share_ in wide.WEIGHTS
    codes = np.searchsorted(clf.classes_, labels)
    rows, val = training.validation_split(codes, 0.1, training.seed_streams(0)["split"])
    cnn = ensemble_members(clf.network_)
    z_cnn = sum(training.logits(m, grid, val, 3, 32) for m in cnn).astype(float) / len(cnn)
    bag = next(layer for layer in leaves(cnn[0].layers) if isinstance(layer, NgramBag))
    lin = wide.fit_linear(np.asarray(grid[rows].indices), codes[rows], 3, bag)
    z_lin = lin.forward(grid[val]).astype(float)

    def nll(share):
        z = (1 - share) * z_cnn + share * z_lin
        t = fit_temperature(z, codes[val])
        return -np.mean(log_softmax(z / t, axis=1)[np.arange(len(val)), codes[val]])
    assert clf.linear_share_ == min(wide.WEIGHTS, key=nll)
    share = clf.linear_share_
    if share:
        z = training.logits(clf.network_, grid, val, 3, 32)       # the ensemble's mean
        np.testing.assert_allclose(z * (1 - share) * (len(cnn) + 1) / len(cnn),
                                   (1 - share) * z_cnn + share * z_lin, rtol=1e-4, atol=1e-4)


def test_the_member_fits_in_a_worker_beside_the_networks_as_it_would_after_them(monkeypatch):
    """Fitted while the networks train (on the first core they free), the member is the
    one fitted afterwards on the same rows, to the bit: its regression runs on one
    thread, so its sums do not depend on the machine's cores."""
    import threading
    real, where = wide.fit_linear, []

    def recorded(*args, **kw):
        where.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kw)
    monkeypatch.setattr(wide, "fit_linear", recorded)
    pipe, text, labels = fitted(monkeypatch, shares=(0.5,))
    clf, grid = pipe[-1], pipe[0].transform(text)
    assert where == [False]                                   # in the pool, once
    codes = np.searchsorted(clf.classes_, labels)
    rows, _ = training.validation_split(codes, 0.1, training.seed_streams(0)["split"])
    bag = next(layer for layer in leaves(ensemble_members(clf.network_)[0].layers) if isinstance(layer, NgramBag))
    lin = real(np.asarray(grid[rows].indices), codes[rows], 3, bag)
    fitted_member = clf.network_.layers[0].branches[2][0]
    for name in ("columns", "idf", "W", "b"):
        np.testing.assert_array_equal(fitted_member.buffers[name], lin.buffers[name])


def test_an_error_in_the_member_stops_the_networks(monkeypatch):
    seen, real = [], training.train_epoch

    def epoch(net, *args, epoch, **kw):
        seen.append(epoch)
        time.sleep(0.02)
        return real(net, *args, epoch=epoch, **kw)

    def broken(*args, **kw):
        time.sleep(0.1)
        raise MemoryError("no room for the member")
    monkeypatch.setattr(training, "train_epoch", epoch)
    monkeypatch.setattr(training.os, "cpu_count", lambda: 4)     # the member starts at once
    monkeypatch.setattr(wide, "fit_linear", broken)
    with pytest.raises(MemoryError, match="no room"):
        fitted(max_epochs=200, n_iter_no_change=200)
    assert len(seen) < 40                                     # not 200 epochs each


def test_a_forced_member_round_trips_is_never_trained_and_is_replaced_on_refit(monkeypatch, tmp_path):
    pipe, text, labels = fitted(monkeypatch, shares=(0.5,))
    clf = pipe[-1]
    block = clf.network_.layers[0]
    assert clf.linear_share_ == 0.5 and len(block.branches) == 3 and isinstance(block.branches[2][0], NgramLinear)
    assert len(ensemble_members(clf.network_)) == 2 and clf.ensemble_size_ == 2
    assert block.branches[2][0].params == {}                  # nothing for an optimizer
    path = tmp_path / "m.gridnet"
    gridnet.save(pipe, path)
    back = gridnet.load(path)
    assert back[-1].linear_share_ == 0.5 and back[-1].ensemble_size_ == 2
    np.testing.assert_array_equal(back.predict_proba(text), pipe.predict_proba(text))
    with monkeypatch.context() as m:          # every member reads the one-hot grid as it is
        m.setattr(OneHotGrid, "toarray", lambda self: pytest.fail("the grid was made dense"))
        np.testing.assert_array_equal(back.predict_proba(text), pipe.predict_proba(text))
    clf.set_params(warm_start=True, max_epochs=1)
    pipe.fit(text, labels)
    branches = clf.network_.layers[0].branches
    assert len(branches) == 3 and branches[2][0] is not block.branches[2][0]


@pytest.mark.parametrize("options, kw", [(dict(level="char"), {}), (dict(vectors="hashing"), {}),
                                         (dict(dense=True), {}), ({}, dict(ngram_dim=0)),
                                         ({}, dict(early_stopping=False))])
def test_no_member_without_a_bag_or_a_held_out_split(options, kw, monkeypatch):
    monkeypatch.setattr(wide, "WEIGHTS", (0.5,))
    text, labels = sentences(120, 1)
    pipe = make_pipeline(TextAdapter(**options), GridNetClassifier(max_epochs=1, random_state=0, **kw))
    clf = pipe.fit(text, labels)[-1]
    assert clf.linear_share_ == 0.0
    assert not any(isinstance(layer, NgramLinear) for layer in leaves(clf.network_.layers))


def test_partial_fit_adds_no_member():
    text, labels = sentences(120, 2)
    adapter = TextAdapter().fit(text)
    clf = GridNetClassifier(preset="text", random_state=0).partial_fit(adapter.transform(text), labels,
                                                                       classes=sorted(TOPICS))
    assert not any(isinstance(layer, NgramLinear) for layer in leaves(clf.network_.layers))


def test_a_fit_gives_the_bag_rows_for_its_sentences_buckets_only_partial_fit_the_whole_table():
    from gridnet.architectures import bag_buckets
    pipe, text, labels = fitted()
    bags = [layer for layer in leaves(pipe[-1].network_.layers) if isinstance(layer, NgramBag)]
    used = bag_buckets(pipe[0].transform(text))
    assert len(bags) == 2 and all(b.rows == len(used) < b.buckets for b in bags)
    assert all(np.array_equal(np.nonzero(b.buffers["columns"] >= 0)[0], used) for b in bags)
    clf = GridNetClassifier(random_state=0).partial_fit(pipe[0].transform(text), labels, classes=sorted(TOPICS))
    bag = next(layer for layer in leaves(clf.network_.layers) if isinstance(layer, NgramBag))
    assert bag.rows is None and bag.params["T"].shape[0] == bag.buckets
