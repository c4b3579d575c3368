"""Rejection of sentences on pretrained vectors counts the words training never saw
(gridnet.rejection.novelty, surprise; GridNetClassifier.reject_novelty_): the held-out
sentences are counted as if the vocabulary had been built without each; the threshold
is the quantile of the adjusted score; the model file and the export carry it; other
grids keep the log-odds alone."""
import numpy as np
import pytest
from sklearn.pipeline import make_pipeline

import gridnet
from adapters import OneHotGrid, TextAdapter
from adapters.word_vectors import missing_pretrained
from gridnet import GridNetClassifier, rejection, training
from gridnet.rejection import NOVELTY_WEIGHT, calibrated_logits, novelty, score, surprise

needs_glove = pytest.mark.skipif(
    missing_pretrained("glove") is not None,
    reason=f"the GloVe package is not installed ({missing_pretrained('glove')})")

KEYS = {"weather": ["rain", "sunny", "forecast", "snow"], "music": ["song", "play", "album", "band"],
        "alarm": ["wake", "alarm", "clock", "morning"]}
FILLER = ["please", "the", "my", "for", "me", "now", "today", "can", "you", "a"]
RARE = ["saxophone", "glacier", "tundra", "pelican", "quartz", "meadow", "harbor", "violin",
        "lantern", "orchard", "canyon", "falcon"]


def _query(rng, words):
    out = list(rng.choice(FILLER, 4))
    for w in words:
        out.insert(int(rng.integers(0, len(out) + 1)), str(w))
    return " ".join(out)


@pytest.fixture(scope="module")
def intents():
    """Three intents (a few of them with one rare word), and out-of-scope queries made of
    words training never saw."""
    rng = np.random.default_rng(0)
    x, y = [], []
    for i in range(240):
        k = list(KEYS)[i % 3]
        words = list(rng.choice(KEYS[k], 2)) + ([f"{RARE[i % 12]}{i}"] if i % 10 == 0 else [])
        x.append(_query(rng, words))
        y.append(k)
    other = ["recipe", "flight", "taxes", "doctor", "poem", "bike", "hotel", "salary"]
    out = [_query(rng, list(rng.choice(other, 2)) + list(rng.choice(KEYS[list(KEYS)[i % 3]], i % 2)))
           for i in range(30)]        # half of them with one word of an intent
    return x, np.array(y), out


@pytest.fixture(scope="module")
def pipe(intents):
    x, y, _ = intents
    return make_pipeline(TextAdapter(), GridNetClassifier(max_epochs=4, random_state=0)).fit(x, y)


def test_novelty_counts_unseen_columns_and_leaves_each_held_out_row_out():
    g = OneHotGrid(np.array([[1, 2, -1, -1], [1, 3, 0, -1], [4, 2, 6, 2]]), width=8, trained=6)
    np.testing.assert_allclose(novelty(g), [0, 1 / 3, 1 / 4])     # column 0 and columns >= 6
    # left out, row 1's column 3 and row 2's column 4 are held by no other row
    np.testing.assert_allclose(novelty(g, [1, 2]), [2 / 3, 2 / 4])
    assert novelty(OneHotGrid(g.indices, 8)) is None                # no pretrained columns
    assert novelty(np.zeros((3, 1, 4, 8), np.float32)) is None
    ref = np.array([0, 0, 0, 0.2, 0.5])
    np.testing.assert_allclose(surprise([0, 0.1, 0.5, 0.9], ref),
                               np.log([1, 3 / 6, 2 / 6, 1 / 6]))


@needs_glove
def test_held_out_novelty_is_that_of_a_vocabulary_built_without_the_sentence(intents):
    x, _, _ = intents
    full = TextAdapter().fit(x)
    grid = full.transform(x)
    rows = [0, 10, 20, 7]          # three with a rare word of their own, one without
    left = novelty(grid, rows)
    for i, share in zip(rows, left):
        without = TextAdapter().fit(x[:i] + x[i + 1:])
        assert novelty(without.transform([x[i]]))[0] == pytest.approx(share)
    assert left[0] > 0 and left[3] == 0


@needs_glove
def test_the_threshold_counts_unseen_words_and_predict_applies_it(intents, pipe, monkeypatch):
    x, y, out = intents
    clf = pipe[-1]
    grid = pipe[0].transform(x)
    codes = np.searchsorted(clf.classes_, y)
    _, val = training.validation_split(codes, clf.validation_fraction,
                                       training.seed_streams(0)["split"])
    shares = novelty(grid, val)
    np.testing.assert_array_equal(clf.reject_novelty_, np.sort(shares))
    adjusted = score(calibrated_logits(clf, grid[val])) + NOVELTY_WEIGHT * surprise(
        shares, clf.reject_novelty_)
    assert clf.reject_threshold_ == pytest.approx(np.quantile(adjusted, clf.reject_rate))
    # predict with reject: the adjusted score under the threshold; without: the top class
    test = pipe[0].transform(out + x[:30])
    z = calibrated_logits(clf, test)
    expected = score(z) + NOVELTY_WEIGHT * surprise(novelty(test), clf.reject_novelty_) < clf.reject_threshold_
    plain = pipe.predict(out + x[:30])
    rejected = pipe.set_params(gridnetclassifier__reject=True).predict(out + x[:30]) == "unknown"
    pipe.set_params(gridnetclassifier__reject=False)
    np.testing.assert_array_equal(rejected, expected)
    assert rejected[:30].mean() > rejected[30:].mean()
    # weighed heavily, the unseen words alone reject (this toy task's log-odds run to 70)
    monkeypatch.setattr(rejection, "NOVELTY_WEIGHT", 1000.0)
    heavy = pipe.set_params(gridnetclassifier__reject=True).predict(out + x[:30]) == "unknown"
    np.testing.assert_array_equal(heavy, score(z) + 1000.0 * surprise(
        novelty(test), clf.reject_novelty_) < clf.reject_threshold_)
    assert (heavy != rejected).any()
    monkeypatch.undo()
    assert np.array_equal(plain, clf.classes_[z.argmax(axis=1)])
    # a dense grid cannot be counted: a clear error, not the log-odds alone
    with pytest.raises(ValueError, match="counts the words training never saw"):
        clf.set_params(reject=True).predict(test.toarray())
    clf.set_params(reject=False)


@needs_glove
def test_the_unseen_word_reference_travels_with_the_model_file_and_the_export(intents, pipe, tmp_path):
    x, _, out = intents
    path = tmp_path / "m.gridnet"
    gridnet.save(pipe, path)
    back = gridnet.load(path)
    np.testing.assert_array_equal(back[-1].reject_novelty_, pipe[-1].reject_novelty_)
    back.set_params(gridnetclassifier__reject=True)
    expected = pipe.set_params(gridnetclassifier__reject=True).predict(out + x)
    pipe.set_params(gridnetclassifier__reject=False)
    np.testing.assert_array_equal(back.predict(out + x), expected)
    # a file before the reference loads with the log-odds alone; a broken one is named
    from gridnet import persist
    doc, weights = persist.read_model(path)
    doc.pop("reject_novelty")
    persist.write_model(path, doc, weights)
    assert gridnet.load(path)[-1].reject_novelty_ is None
    doc["reject_novelty"] = [0.5, 0.1]
    persist.write_model(path, doc, weights)
    with pytest.raises(ValueError, match="reject_novelty must be a sorted list"):
        gridnet.load(path)
    # the export's metadata states the rule; applied to its probabilities it rejects alike
    pytest.importorskip("onnx", reason="the export needs onnx (the onnx extra)")
    ort = pytest.importorskip("onnxruntime", reason="running the export needs onnxruntime")
    import json
    proto = gridnet.to_onnx(pipe)
    meta = {p.key: p.value for p in proto.metadata_props}
    tokens = pipe[0].transform(out + x).indices.astype(np.int64)
    proba = ort.InferenceSession(proto.SerializeToString()).run(None, {"tokens": tokens})[0]
    ranked = np.sort(proba.astype(np.float64), axis=1)
    odds = np.log(ranked[:, -1]) - np.log(ranked[:, :-1].sum(axis=1))
    reference = np.array(json.loads(meta["reject_novelty"]))
    trained = int(meta["trained_columns"])
    counted = tokens >= 0
    f = (((tokens == 0) | (tokens >= trained)) & counted).sum(1) / counted.sum(1)
    r = np.where(f > 0, (1 + (reference[None] >= f[:, None]).sum(1)) / (1 + len(reference)), 1.0)
    mine = odds + NOVELTY_WEIGHT * np.log(r) < float(meta["reject_log_odds"])
    assert "trained_columns" in meta["rejection"]
    np.testing.assert_array_equal(mine, expected == "unknown")


def test_other_grids_keep_the_log_odds_alone():
    from sklearn.datasets import load_digits
    d = load_digits()
    clf = GridNetClassifier(max_epochs=2, random_state=0).fit(d.images[:300, None] / 16.0, d.target[:300])
    assert clf.reject_novelty_ is None and clf.reject_threshold_ is not None
