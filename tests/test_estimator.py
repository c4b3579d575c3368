"""GridNetClassifier: the scikit-learn contract, training loop, persistence, bad input."""
import pickle
import zipfile

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

import gridnet
import gridnet.architectures
from gridnet import GridNetClassifier, training
from gridnet.augment import Compose, FrequencyMask, TimeMask, TimeShift, spec_augment
from gridnet.core import Conv2D, Flatten, MaxPool2D

from test_layers import _OneHot


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    X = (d.images / 16.0)[:, None].astype(np.float32)
    return train_test_split(X, d.target, test_size=0.25, random_state=0, stratify=d.target)


def small(**kw):
    params = dict(conv_blocks=1, filters=8, dense_units=32, max_epochs=8, random_state=0,
                  early_stopping=False)   # fast unit tests: a fixed number of epochs
    params.update(kw)
    return GridNetClassifier(**params)


# The whole scikit-learn contract, but for the two checks below (each with its reason).
# Weights as repetitions fails on every machine (repeating a sample changes how many
# minibatches an epoch has and which samples share one, so a stochastic minibatch
# learner cannot give the same model both ways; the loss itself is tested to be
# equivalent below): its failure is asserted, so that a pass would be noticed.
FAILS_EVERYWHERE = {"check_sample_weight_equivalence_on_dense_data"}


def _expected_failures(estimator):
    # scikit-learn >= 1.9 compares decision_function on permuted samples at rtol 1e-7,
    # finer than float32's resolution (1.2e-7): OpenBLAS's float32 kernels may round a
    # sample's logits differently by its place in the batch (seen: 1.5e-7 apart). The
    # predicted labels and probabilities agree; the weights are float32 by design.
    expected = {"check_methods_sample_order_invariance":
                "passes on some machines, fails on others: whether float32 BLAS rounding "
                "depends on a sample's place in the batch (~1e-7) depends on the BLAS's kernel"}
    if estimator.get_params() == GridNetClassifier().get_params():
        # the same rounding on a subset's batches (seen: 9e-7 on one value of 60 with
        # scikit-learn's atol of 1e-7), on whichever model the defaults train
        expected["check_methods_subset_invariance"] = (
            "passes or fails by the model trained: float32 BLAS rounding (~1e-7) varies "
            "with a sample's place in a batch")
    return expected


def _name(check):
    return getattr(getattr(check, "func", check), "__name__", "")


@parametrize_with_checks([GridNetClassifier(max_epochs=30, random_state=0, dense_units=32,
                                            filters=8, conv_blocks=1, learning_rate=0.01,
                                            early_stopping=False),   # the checks' data are tiny
                          GridNetClassifier()],                      # and the defaults
                         expected_failed_checks=_expected_failures)
def test_sklearn_contract(estimator, check):
    if _name(check) in FAILS_EVERYWHERE:
        with pytest.raises(AssertionError):
            check(estimator)
    else:
        check(estimator)


def test_digits_held_out_quarter(digits):
    xtr, xte, ytr, yte = digits
    clf = GridNetClassifier(random_state=0).fit(xtr, ytr)
    assert clf.score(xte, yte) >= 0.985
    assert clf.grid_shape_ == (1, 8, 8) and clf.n_features_in_ == 64
    assert len(clf.history_) == clf.n_iter_ == len(clf.loss_curve_)
    assert {"epoch", "loss", "val_loss", "val_score", "time"} <= set(clf.history_[0])
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_grid_search_two_hyperparameters(digits):
    xtr, _, ytr, _ = digits
    search = GridSearchCV(small(max_epochs=3), {"filters": [4, 8], "learning_rate": [1e-3, 1e-2]}, cv=2)
    search.fit(xtr[:400], ytr[:400])
    assert len(search.cv_results_["params"]) == 4
    # the best is the best of the four scores it recorded
    best = int(np.argmax(search.cv_results_["mean_test_score"]))
    assert search.best_params_ == search.cv_results_["params"][best]
    assert search.best_score_ == search.cv_results_["mean_test_score"][best]
    # the parameters reached the network: the refitted model's first convolution
    from gridnet.core.stack import leaves
    first = next(layer for layer in leaves(search.best_estimator_.network_.layers)
                 if hasattr(layer, "filters"))
    assert first.filters == search.best_params_["filters"]
    assert search.best_score_ > 0.5


def test_pipeline_cross_val_and_clone(digits):
    xtr, _, ytr, _ = digits
    flat = xtr[:300].reshape(300, 64)
    pipe = make_pipeline(FunctionTransformer(lambda a: a.reshape(-1, 1, 8, 8)), small(max_epochs=10, learning_rate=0.01))
    scores = cross_val_score(pipe, flat, ytr[:300], cv=3)
    assert scores.mean() > 0.8
    c = clone(small(layers=[Conv2D(4, 3), Flatten()]))
    assert c.get_params()["layers"][0].filters == 4 and not hasattr(c, "network_")


def test_input_shapes_dtypes_and_string_labels(digits):
    xtr, xte, ytr, _ = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    clf = small(max_epochs=3).fit(xtr[:, 0].astype(np.float64), names[ytr])   # (n, h, w) float64
    assert set(clf.classes_) == set(names)
    assert clf.predict(xte[:5]).dtype.kind == "U"      # (n, 1, h, w) float32 at predict time
    assert clf.predict_proba(xte[:5]).shape == (5, 10)
    np.testing.assert_allclose(clf.predict_proba(xte[:5]).sum(axis=1), 1, rtol=1e-5)
    strip = small(max_epochs=2).fit(xtr.reshape(len(xtr), 64), ytr)   # (n, f): a 1x1xf strip
    assert strip.grid_shape_ == (1, 1, 64)
    # a one-row strip gets a one-dimensional network: no kernel row over padding alone
    convs = [layer for layer in strip.network_.layers if isinstance(layer, Conv2D)]
    assert convs and all(c.kernel_size == (1, 3) for c in convs)
    square = [layer for layer in clf.network_.layers if isinstance(layer, Conv2D)]
    assert all(c.kernel_size == (3, 3) for c in square)


def test_same_seed_same_bits_and_user_arrays_untouched(digits):
    xtr, _, ytr, _ = digits
    x, y = xtr[:300].copy(), ytr[:300].copy()
    x0, y0 = x.copy(), y.copy()
    aug = spec_augment(freq_width=2, time_width=2, max_shift=1)
    a = small(max_epochs=3, augment=aug, early_stopping=True).fit(x, y)
    b = small(max_epochs=3, augment=aug, early_stopping=True).fit(x, y)
    c = small(max_epochs=3, augment=aug, early_stopping=True, random_state=1).fit(x, y)
    for name, w in a.network_.get_weights().items():
        assert np.array_equal(w, b.network_.get_weights()[name])
    assert any(not np.array_equal(w, c.network_.get_weights()[k])
               for k, w in a.network_.get_weights().items())
    assert np.array_equal(x, x0) and np.array_equal(y, y0)


def test_memmap_is_read_batch_by_batch(tmp_path, digits):
    xtr, xte, ytr, _ = digits
    path = tmp_path / "x.dat"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=xtr.shape)
    mm[:] = xtr
    mm.flush()
    mm = np.memmap(path, dtype=np.float64, mode="r", shape=xtr.shape)
    clf = small(max_epochs=2)
    assert clf._validate_X(mm, reset=True) is mm          # no whole copy is made
    clf.fit(mm, ytr)
    ref = small(max_epochs=2).fit(xtr.astype(np.float64), ytr)
    np.testing.assert_array_equal(clf.predict_proba(xte), ref.predict_proba(xte))
    bad = np.memmap(tmp_path / "bad.dat", dtype=np.float32, mode="w+", shape=(4, 1, 8, 8))
    bad[2, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity.*sample 2"):
        small().fit(bad, [0, 1, 0, 1])


def test_early_stopping_restores_best_weights(digits):
    xtr, _, ytr, _ = digits
    clf = small(max_epochs=25, early_stopping=True, n_iter_no_change=2, learning_rate=0.05,
                validation_fraction=0.2).fit(xtr[:500], ytr[:500])
    val_losses = [h["val_loss"] for h in clf.history_]
    scores = [h["val_score"] for h in clf.history_]
    assert all(v is not None for v in val_losses)
    assert clf.n_iter_ < 25
    assert clf.best_loss_ == pytest.approx(min(h["loss"] for h in clf.history_))
    # the restored weights are those of the best epoch: highest validation accuracy,
    # then lowest validation loss (each step must gain more than tol)
    best = 0
    for k in range(1, len(scores)):   # the rule, restated
        if scores[k] > scores[best] + clf.tol_ or (scores[k] >= scores[best] - clf.tol_
                                                   and val_losses[k] < val_losses[best] - clf.tol_):
            best = k
    assert clf.best_validation_score_ == scores[best] == max(scores)
    assert best < len(scores) - 1
    # recompute the held-out loss and accuracy of the final model on the same split
    _, val = train_test_split(np.arange(500), test_size=0.2, stratify=ytr[:500],
                              random_state=training.seed_streams(clf.random_state)["split"])
    codes = np.searchsorted(clf.classes_, ytr[:500])
    loss_fn = training.make_loss(clf.class_weight, clf.classes_, codes)
    loss, acc = training.evaluate(clf.network_, xtr[:500], codes, np.sort(val), loss_fn)
    assert loss == pytest.approx(val_losses[best], rel=1e-6) and acc == scores[best]
    assert acc > scores[-1] or loss != pytest.approx(val_losses[-1], rel=1e-6)
    assert clf.validation_scores_ == scores


def test_early_stopping_needs_a_validation_split_of_ten(digits):
    xtr, _, ytr, _ = digits
    # 10% of 91 rounds up to 10 samples: a split; of 90, 9: none (the training loss decides)
    assert training.validation_size(91, 0.1) == 10 == training.MIN_VALIDATION
    assert training.validation_size(90, 0.1) == 9
    with_split = small(max_epochs=3, early_stopping=True).fit(xtr[:91], ytr[:91])
    assert with_split.best_epoch_ is not None and with_split.history_[0]["val_score"] is not None
    without = small(max_epochs=3, early_stopping=True).fit(xtr[:90], ytr[:90])
    assert without.best_epoch_ is None and without.history_[0]["val_score"] is None


def test_the_validation_accuracy_weighs_samples_by_their_class_weight():
    class Fixed:                       # a "network" whose logits are given
        out_shape = (2,)

        def forward(self, x):
            return x.reshape(len(x), 2)
    z = np.array([[1, 0], [1, 0], [0, 1], [1, 0]], np.float32)   # predicts 0, 0, 1, 0
    codes = np.array([0, 0, 0, 1])                                 # right, right, wrong, wrong
    rows = np.arange(4)
    loss_fn = training.make_loss({0: 1.0, 1: 3.0}, np.array([0, 1]), codes)
    _, acc = training.evaluate(Fixed(), z, codes, rows, loss_fn)
    assert acc == pytest.approx(2 / (1 + 1 + 1 + 3))
    _, acc = training.evaluate(Fixed(), z, codes, rows, training.make_loss(None, None, codes))
    assert acc == 0.5
    w = np.array([1, 1, 2, 1], np.float32)                         # and by sample_weight
    _, acc = training.evaluate(Fixed(), z, codes, rows, loss_fn, sample_weight=w)
    assert acc == pytest.approx(2 / (1 + 1 + 2 + 3))


def test_class_weight_balanced_helps_the_rare_class():
    rng = np.random.default_rng(0)
    n = 600
    y = (rng.random(n) < 0.08).astype(int)
    X = rng.standard_normal((n, 1, 4, 4)).astype(np.float32)
    X[:, 0, 1, 1] += 1.2 * y                     # a weak signal for the rare class
    plain = small(max_epochs=10).fit(X, y)
    balanced = small(max_epochs=10, class_weight="balanced").fit(X, y)
    assert (balanced.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()
    # the weights each class gets, and the loss they make, by hand
    from gridnet import training
    classes = np.array([0, 1])
    np.testing.assert_array_equal(training.make_loss({1: 5.0}, classes, y).class_weight, [1, 5])
    counts = np.bincount(y)
    balanced_loss = training.make_loss("balanced", classes, y)
    np.testing.assert_allclose(balanced_loss.class_weight, n / (2 * counts), rtol=1e-6)
    logits = rng.standard_normal((6, 2)).astype(np.float32)
    yy = np.array([0, 1, 1, 0, 1, 0])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    cw = np.array([1.0, 5.0])[yy]
    value, grad = training.make_loss({1: 5.0}, classes, y)(logits, yy)
    assert value == pytest.approx(float((cw * -np.log(p[np.arange(6), yy])).sum() / cw.sum()), rel=1e-5)
    np.testing.assert_allclose(grad, (p - np.eye(2)[yy]) * (cw / cw.sum())[:, None], atol=1e-6)
    with pytest.raises(ValueError, match="class 7"):
        small(class_weight={7: 2.0}).fit(X, y)


def test_warm_start_and_partial_fit(digits):
    xtr, xte, ytr, yte = digits
    clf = small(max_epochs=2, warm_start=True, n_iter_no_change=10).fit(xtr, ytr)
    w1 = clf.network_.get_weights()
    clf.fit(xtr, ytr)
    assert clf.n_iter_ == 4 and len(clf.history_) == 4
    assert any(not np.array_equal(w1[k], v) for k, v in clf.network_.get_weights().items())
    inc = small(learning_rate=0.01)
    with pytest.raises(ValueError, match="classes must be passed"):
        inc.partial_fit(xtr[:50], ytr[:50])
    inc.partial_fit(xtr[:400], ytr[:400], classes=np.arange(10))
    first = inc.score(xte, yte)
    for start in range(400, len(xtr), 400):
        inc.partial_fit(xtr[start:start + 400], ytr[start:start + 400])
    for _ in range(3):
        inc.partial_fit(xtr, ytr)
    assert inc.n_iter_ == 7 and inc.score(xte, yte) > max(first, 0.9)
    with pytest.raises(ValueError, match="not in classes"):
        inc.partial_fit(xtr[:5], ytr[:5] + 20)


def test_verbose_progress_bar(capsys, digits):
    xtr, _, ytr, _ = digits
    small(max_epochs=1, verbose=True, early_stopping=True).fit(xtr[:200], ytr[:200])
    err = capsys.readouterr().err
    assert "epoch 1" in err and "loss=" in err and "val_score=" in err


def test_augment_only_on_training_batches(digits):
    xtr, xte, ytr, _ = digits
    calls = []

    def spy(batch, rng):
        calls.append(batch.shape)
        return batch

    clf = small(max_epochs=1, augment=spy, batch_size=100).fit(xtr[:300], ytr[:300])
    assert calls == [(100, 1, 8, 8)] * 3
    clf.predict(xte)
    clf.predict_proba(xte)
    assert len(calls) == 3


def test_builtin_augmentations():
    rng = np.random.default_rng(0)
    x = np.arange(2 * 1 * 6 * 10, dtype=np.float32).reshape(2, 1, 6, 10)
    fm = FrequencyMask(max_width=6, n_masks=1, fill=-1)(x.copy(), np.random.default_rng(3))
    hidden = (fm == -1).all(axis=3)               # whole rows hidden
    assert fm.shape == x.shape and ((fm == -1) == hidden[..., None]).all()
    tm = TimeMask(max_width=10, fill=-1)(x.copy(), np.random.default_rng(3))
    assert ((tm == -1) == (tm == -1).all(axis=2, keepdims=True)).all()   # whole columns
    ts = TimeShift(max_shift=3, fill=0)(x.copy(), rng)
    for i in range(2):   # each sample is its own columns moved by one shift
        matches = [s for s in range(-3, 4) if np.array_equal(
            ts[i], np.where((np.arange(10) - s >= 0) & (np.arange(10) - s < 10),
                            x[i][..., np.clip(np.arange(10) - s, 0, 9)], 0))]
        assert matches
    # composed: each step in turn on the one generator, the same as by hand
    x0 = x.copy()
    both = Compose([TimeShift(2), FrequencyMask(2), TimeMask(2)])(x.copy(), np.random.default_rng(7))
    r = np.random.default_rng(7)
    by_hand = TimeMask(2)(FrequencyMask(2)(TimeShift(2)(x.copy(), r), r), r)
    np.testing.assert_array_equal(both, by_hand)
    assert not np.array_equal(both, x) and np.array_equal(x, x0)


def test_decision_function_binary_and_multiclass(digits):
    xtr, xte, ytr, _ = digits
    keep = ytr < 2
    clf = small(max_epochs=2).fit(xtr[keep], ytr[keep])
    d = clf.decision_function(xte[:7])
    assert d.shape == (7,)
    np.testing.assert_array_equal(clf.predict(xte[:7]), clf.classes_[(d > 0).astype(int)])
    np.testing.assert_allclose(d, np.log(clf.predict_proba(xte[:7])[:, 1] / clf.predict_proba(xte[:7])[:, 0]),
                               rtol=1e-4, atol=1e-4)
    multi = small(max_epochs=1).fit(xtr, ytr)
    logits = multi.decision_function(xte[:7])
    assert logits.shape == (7, 10)
    # the logits: their softmax is predict_proba, their argmax predict
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(axis=1, keepdims=True), multi.predict_proba(xte[:7]), atol=1e-6)
    np.testing.assert_array_equal(multi.classes_[logits.argmax(axis=1)], multi.predict(xte[:7]))


def test_text_preset_on_onehot_grids():
    rng = np.random.default_rng(0)
    n, length, vocab = 400, 12, 50
    idx = rng.integers(0, vocab, size=(n, length))
    y = rng.integers(0, 2, size=n)
    # class 1 sentences contain the "phrase" (7, 8, 9) somewhere
    for i in np.nonzero(y)[0]:
        p = rng.integers(0, length - 3)
        idx[i, p:p + 3] = (7, 8, 9)
    for i in np.nonzero(y == 0)[0]:
        idx[i][np.isin(idx[i], (7, 8, 9))] = 0
    idx[:, -2:] = -1   # padding
    grid = _OneHot(idx, vocab)
    clf = GridNetClassifier(preset="text", filters=8, embed_dim=8, max_epochs=15, random_state=0)
    clf.fit(grid[:300], y[:300])
    assert clf.grid_shape_ == (1, length, vocab)
    assert clf.score(grid[300:], y[300:]) > 0.9
    dense = clf.predict_proba(grid[300:].toarray())
    np.testing.assert_allclose(dense, clf.predict_proba(grid[300:]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="tallest filter spans 5"):
        GridNetClassifier(preset="text").fit(_OneHot(idx[:, :4], vocab), y)


class _OneHotWithEmbedding(_OneHot):
    def __init__(self, indices, width, embedding):
        super().__init__(indices, width)
        self.embedding = embedding

    def __getitem__(self, rows):
        return _OneHotWithEmbedding(self.indices[rows], self.width, self.embedding)


def _key_word_task(rng, n, keys_a, keys_b, length=8):
    """Filler words (0-9) with one key word: class 1 if it is from keys_a."""
    idx = rng.integers(0, 10, size=(n, length))
    y = rng.integers(0, 2, size=n)
    keys = np.where(y == 1, rng.choice(keys_a, n), rng.choice(keys_b, n))
    idx[np.arange(n), rng.integers(0, length, n)] = keys
    return idx, y


def test_text_preset_starts_from_the_grids_embedding(tmp_path):
    rng = np.random.default_rng(0)
    # a vocabulary's width: random columns start near sqrt(2 / 10000) = 0.014, below the
    # scaled vectors (at a width of 50 they start at 0.2 and drown the vectors)
    width, d = 10000, 4
    # starting vectors: words 10-29 point one way, 30-49 the other; fillers have none
    E = np.zeros((width, d), np.float32)
    E[10:30, 0], E[30:50, 0] = 1.0, -1.0
    E[10:50, 1:] = rng.normal(0, 0.1, (40, d - 1))
    # training sees only three key words of each kind; the test only the others
    itr, ytr = _key_word_task(rng, 300, [10, 11, 12], [30, 31, 32])
    ite, yte = _key_word_task(rng, 300, np.arange(13, 30), np.arange(33, 50))
    params = dict(preset="text", filters=8, kernel_size=(1, 2), max_epochs=10, random_state=0)
    warm = GridNetClassifier(**params).fit(_OneHotWithEmbedding(itr, width, E), ytr)
    cold = GridNetClassifier(embed_dim=d, **params).fit(_OneHot(itr, width), ytr)
    assert warm.embedding_started_ == 40 and cold.embedding_started_ == 0
    scale = gridnet.architectures.EMBED_START_STD / E[10:50].std()
    for net in gridnet.architectures.ensemble_members(warm.network_):    # each network's
        W = net.layers[0].params["W"]
        assert W.shape == (d, width)               # embed_dim taken from the vectors
        # columns of words never seen in training keep their start, scaled
        np.testing.assert_allclose(W[:, 13:30], E[13:30].T * scale, rtol=1e-5)
    assert warm.score(_OneHotWithEmbedding(ite, width, E), yte) > 0.9
    assert cold.score(_OneHot(ite, width), yte) < 0.75
    with pytest.raises(ValueError, match="embed_dim=8, but the grid's starting embedding has 4"):
        GridNetClassifier(preset="text", embed_dim=8).fit(_OneHotWithEmbedding(itr, width, E), ytr)
    # layers of one's own leave it alone
    other = GridNetClassifier(layers=[Conv2D(d, (1, width))], max_epochs=1, random_state=0)
    other.fit(_OneHotWithEmbedding(itr, width, E), ytr)
    assert other.embedding_started_ == 0
    warm.save(tmp_path / "warm.gridnet")
    assert gridnet.load(tmp_path / "warm.gridnet").embedding_started_ == 40


def test_save_load_roundtrip_and_bad_files(tmp_path, digits):
    xtr, xte, ytr, _ = digits
    names = np.array(list("abcdefghij"))
    clf = small(max_epochs=2, layers=[Conv2D(6, 3, activation="relu"), MaxPool2D(2)]).fit(xtr, names[ytr])
    path = tmp_path / "m.gridnet"
    clf.save(path)
    back = gridnet.load(path)
    np.testing.assert_array_equal(back.predict_proba(xte), clf.predict_proba(xte))
    assert back.get_params()["layers"][0].filters == 6 and back.classes_.tolist() == list("abcdefghij")
    back.set_params(warm_start=True, max_epochs=1).fit(xtr, names[ytr])  # a loaded model trains on
    # pickle and joblib work as for any estimator
    for dumped in (pickle.loads(pickle.dumps(clf)), joblib.load(_joblib_roundtrip(clf, tmp_path))):
        np.testing.assert_array_equal(dumped.predict(xte), clf.predict(xte))

    raw = path.read_bytes()
    (tmp_path / "trunc.gridnet").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a readable gridnet model"):
        gridnet.load(tmp_path / "trunc.gridnet")
    with pytest.raises(FileNotFoundError):
        gridnet.load(tmp_path / "missing.gridnet")
    # weights changed after saving: the checksum catches it
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    key = next(k for k in arrays if k.startswith("w/"))
    arrays[key] = arrays[key] + 1
    tampered = tmp_path / "tampered.npz"
    np.savez(tampered, **arrays)
    with pytest.raises(ValueError, match="checksum"):
        gridnet.load(tampered)
    # an archive holding a pickled object is refused, not executed
    evil = tmp_path / "evil.npz"
    np.savez(evil, __gridnet__=np.array([_Boom()], dtype=object))
    with pytest.raises(ValueError, match="not a readable gridnet model"):
        gridnet.load(evil)
    # a zip that is not a model at all
    other = tmp_path / "other.npz"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="no gridnet header"):
        gridnet.load(other)


class _Boom:
    def __reduce__(self):
        return (pytest.fail, ("unpickling executed code",))


def _joblib_roundtrip(clf, tmp_path):
    path = tmp_path / "m.joblib"
    joblib.dump(clf, path)
    return path


@pytest.mark.parametrize("X,y,message", [
    (np.full((4, 1, 5, 5), np.nan), [0, 1, 0, 1], "NaN"),
    (np.full((4, 1, 5, 5), np.inf), [0, 1, 0, 1], "infinity"),
    (np.zeros((4, 1, 1, 5, 5)), [0, 1, 0, 1], "5 dimension"),
    (np.zeros((4, 1, 5, 5)), [0, 1, 0], "4 samples but y has 3"),
    (np.zeros((4, 1, 5, 5)), [1, 1, 1, 1], "only 1 class"),
    (np.zeros((0, 1, 5, 5)), [], "0 sample"),
])
def test_bad_input_is_a_clear_error(X, y, message):
    with pytest.raises(ValueError, match=message):
        small().fit(X, y)


def test_receptive_field_and_grid_shape_errors(digits):
    xtr, xte, ytr, _ = digits
    with pytest.raises(ValueError, match="cannot take grids of shape \\(1, 3, 3\\)"):
        small(layers=[Conv2D(4, 5), Flatten()]).fit(np.zeros((4, 1, 3, 3)), [0, 1, 0, 1])
    clf = small(max_epochs=1).fit(xtr, ytr)
    with pytest.raises(ValueError, match="fitted on grids of shape \\(1, 8, 8\\)"):
        clf.predict(xte.reshape(-1, 1, 4, 16))
    with pytest.raises(ValueError, match="X has 16 features, but GridNetClassifier is expecting 64"):
        clf.predict(xte[:, :, :4, :4])
    with pytest.raises(ValueError, match="preset"):
        GridNetClassifier(preset="video").fit(xtr, ytr)


def test_predictions_do_not_depend_on_sample_order(digits):
    # what check_methods_sample_order_invariance asks, at float32's resolution
    xtr, xte, ytr, _ = digits
    clf = small(max_epochs=2).fit(xtr, ytr)
    perm = np.random.default_rng(0).permutation(len(xte))
    np.testing.assert_array_equal(clf.predict(xte)[perm], clf.predict(xte[perm]))
    np.testing.assert_allclose(clf.predict_proba(xte)[perm], clf.predict_proba(xte[perm]),
                               rtol=1e-5, atol=1e-6)


def _steps_weights(monkeypatch):
    """Record the network's weights after every optimizer step (a list of dicts)."""
    from gridnet.core import optimizers
    seen, step = [], optimizers.Adam.step

    def spy(self, parameters):
        parameters = list(parameters)
        step(self, parameters)
        seen.append({name: p.astype(np.float64) for name, p, _ in parameters})

    monkeypatch.setattr(optimizers.Adam, "step", spy)
    return seen


def _ema(seen, m):
    avg = {k: v.copy() for k, v in seen[0].items()}
    for t, w in enumerate(seen[1:], start=2):
        d = min(m, (1 + t) / (10 + t))
        for k in avg:
            avg[k] = d * avg[k] + (1 - d) * w[k]
    return avg


@pytest.mark.parametrize("early_stopping", [False, True])
def test_ema_momentum_keeps_the_moving_average_of_the_steps_weights(digits, monkeypatch,
                                                                     early_stopping):
    """The kept weights are the exponential moving average of the weights after each
    step (without a split: at the end; with one: at the best epoch, here the only one),
    and the validation score is the average's; training itself is unchanged."""
    xtr, _, ytr, _ = digits
    kw = dict(max_epochs=2 if not early_stopping else 1, early_stopping=early_stopping,
              batch_size=50)
    seen = _steps_weights(monkeypatch)
    plain = small(ema_momentum=None, **kw).fit(xtr[:400], ytr[:400])
    trained = plain.network_.get_weights()
    assert plain.ema_momentum_ is None
    steps, seen[:] = list(seen), []
    avg = small(ema_momentum=0.9, **kw).fit(xtr[:400], ytr[:400])
    assert avg.ema_momentum_ == 0.9
    assert len(seen) == len(steps) > 5
    for a, b in zip(seen, steps):             # the same training steps
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    want = _ema(steps, 0.9)
    got = avg.network_.get_weights()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-6)
        assert not np.allclose(got[k], trained[k], rtol=1e-3, atol=1e-5) or k.endswith("b")
    if early_stopping:
        assert avg.best_epoch_ == 1
        codes = np.searchsorted(avg.classes_, ytr[:400])
        rows, val = training.validation_split(codes, 0.1, training.seed_streams(avg.random_state)["split"])
        assert avg.history_[0]["val_score"] == pytest.approx(
            avg.score(xtr[:400][val], ytr[:400][val]))


def test_tol_none_is_the_presets_and_is_what_early_stopping_uses(digits):
    xtr, _, ytr, _ = digits
    clf = small(max_epochs=1).fit(xtr[:100], ytr[:100])
    assert clf.preset_ == "image" and clf.tol_ == 1e-4
    assert gridnet.architectures.training_defaults("audio")[3] == 1e-3
    big = np.random.default_rng(0).random((40, 1, 16, 16), dtype=np.float32)
    clf = GridNetClassifier(max_epochs=1, filters=2, dense_units=4, random_state=0)
    assert clf.fit(big, np.arange(40) % 2).tol_ == 1e-3 and clf.preset_ == "audio"
    # no epoch can beat the first by 10 (accuracy or loss): stops after the patience
    clf = small(max_epochs=20, n_iter_no_change=2, tol=10.0, early_stopping=True).fit(xtr[:300], ytr[:300])
    assert clf.tol_ == 10.0 and clf.n_iter_ == 3 and clf.best_epoch_ == 1
    assert small(max_epochs=20, n_iter_no_change=2, tol=0.0, early_stopping=True).fit(xtr[:300], ytr[:300]).n_iter_ > 3
    for bad in (-0.1, "yes", True):
        with pytest.raises(ValueError, match="tol must be"):
            small(tol=bad).fit(xtr[:50], ytr[:50])


def test_ema_momentum_auto_is_the_presets_and_is_checked(digits):
    xtr, _, ytr, _ = digits
    clf = small(max_epochs=1).fit(xtr[:100], ytr[:100])
    assert clf.preset_ == "image" and clf.ema_momentum_ == 0.99
    assert small(max_epochs=1, ema_momentum=None).fit(xtr[:100], ytr[:100]).ema_momentum_ is None
    assert gridnet.architectures.training_defaults("audio")[2] == 0.995
    assert gridnet.architectures.training_defaults("text")[2] is None
    big = np.random.default_rng(0).random((40, 1, 16, 16), dtype=np.float32)
    clf = GridNetClassifier(max_epochs=1, filters=2, dense_units=4, random_state=0)
    assert clf.fit(big, np.arange(40) % 2).ema_momentum_ == 0.995 and clf.preset_ == "audio"
    for bad in (1.0, -0.1, "yes", True):
        with pytest.raises(ValueError, match="ema_momentum must be"):
            small(ema_momentum=bad).fit(xtr[:50], ytr[:50])
