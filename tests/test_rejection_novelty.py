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
from gridnet.rejection import (NOVELTY_WEIGHT, calibrated_logits, class_words, novelty, score,
                               surprise)

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


def test_novelty_counts_unseen_and_other_classes_words_and_leaves_each_held_out_row_out():
    g = OneHotGrid(np.array([[1, 2, -1, -1], [1, 3, 0, -1], [4, 2, 6, 2]]), width=8, trained=6)
    codes = np.array([0, 1, 0])
    words = class_words(g, codes)
    np.testing.assert_array_equal(words, [1, 2, 4, 6 + 1, 6 + 3])    # class * 6 + column
    shares = novelty(g, np.array([0, 0, 1]), words)
    # unseen: column 0 and columns >= 6; not the class's: row 1's 3 (class 1's), row 2's 4, 2, 2
    np.testing.assert_allclose(shares, [[0, 0], [1 / 3, 2 / 3], [1 / 4, 1]])
    # left out, row 1's column 3 and row 2's column 4 are held by no other row, and row 2's
    # column 2 by no other row of class 0 but by row 0
    np.testing.assert_allclose(novelty(g, np.array([1, 0]), words, [1, 2], codes),
                               [[2 / 3, 1], [2 / 4, 2 / 4]])
    assert novelty(OneHotGrid(g.indices, 8), codes, words) is None     # no pretrained columns
    assert class_words(np.zeros((3, 1, 4, 8), np.float32), codes) is None
    ref = np.array([[0, 0], [0, 0], [0, 0.2], [0.2, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(surprise([[0, 0], [0.1, 0], [0.5, 0.9]], ref),
                               np.log([1, 3 / 6, 2 / 6 * 1 / 6]))


@needs_glove
def test_held_out_novelty_is_that_of_a_vocabulary_built_without_the_sentence(intents):
    x, y, _ = intents
    full = TextAdapter().fit(x)
    grid = full.transform(x)
    codes = np.searchsorted(np.unique(y), y)
    rows = [0, 10, 20, 7]          # three with a rare word of their own, one without
    predicted = np.array([codes[0], codes[10], (codes[20] + 1) % 3, codes[7]])
    left = novelty(grid, predicted, class_words(grid, codes), rows, codes)
    for i, p, share in zip(rows, predicted, left):
        keep = np.arange(len(x)) != i
        without = TextAdapter().fit([s for s, k in zip(x, keep) if k])
        g = without.transform([s for s, k in zip(x, keep) if k])
        np.testing.assert_allclose(novelty(without.transform([x[i]]), np.array([p]),
                                           class_words(g, codes[keep]))[0], share)
    assert left[0, 0] > 0 and left[3, 0] == 0 and left[2, 1] > left[2, 0]


@needs_glove
def test_the_threshold_counts_unseen_words_and_predict_applies_it(intents, pipe, monkeypatch):
    x, y, out = intents
    clf = pipe[-1]
    grid = pipe[0].transform(x)
    codes = np.searchsorted(clf.classes_, y)
    _, val = training.validation_split(codes, clf.validation_fraction,
                                       training.seed_streams(0)["split"])
    z_val = calibrated_logits(clf, grid[val])
    state = clf.reject_novelty_
    np.testing.assert_array_equal(state["words"], class_words(grid, codes))
    shares = novelty(grid, z_val.argmax(axis=1), state["words"], val, codes)
    np.testing.assert_array_equal(state["reference"], np.sort(shares, axis=0))
    adjusted = score(z_val) + NOVELTY_WEIGHT * surprise(shares, state["reference"])
    assert clf.reject_threshold_ == pytest.approx(np.quantile(adjusted, clf.reject_rate))
    # predict with reject: the adjusted score under the threshold; without: the top class
    rng = np.random.default_rng(1)       # in scope, with one word training never saw
    mixed = [_query(rng, list(rng.choice(KEYS[k], 2)) + [w]) for k, w in
             zip(list(KEYS) * 4, ["hotel", "salary", "poem", "bike"] * 3)]
    queries = out + x[:30] + mixed
    test = pipe[0].transform(queries)
    z = calibrated_logits(clf, test)
    shares = novelty(test, z.argmax(axis=1), state["words"])
    expected = score(z) + NOVELTY_WEIGHT * surprise(shares, state["reference"]) < clf.reject_threshold_
    plain = pipe.predict(queries)
    rejected = pipe.set_params(gridnetclassifier__reject=True).predict(queries) == "unknown"
    pipe.set_params(gridnetclassifier__reject=False)
    np.testing.assert_array_equal(rejected, expected)
    assert rejected[:30].mean() > rejected[30:60].mean()
    # weighed heavily, the unseen words alone reject (this toy task's log-odds run to 70)
    monkeypatch.setattr(rejection, "NOVELTY_WEIGHT", 1000.0)
    heavy = pipe.set_params(gridnetclassifier__reject=True).predict(queries) == "unknown"
    np.testing.assert_array_equal(heavy, score(z) + 1000.0 * surprise(
        shares, state["reference"]) < clf.reject_threshold_)
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
    for key in ("reference", "words"):
        np.testing.assert_array_equal(back[-1].reject_novelty_[key], pipe[-1].reject_novelty_[key])
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
    good = {"reference": [[0.0, 0.1], [0.0, 0.2]], "words": [3, 9]}
    for broken, message in [([0.5, 0.1], "must hold a reference and words"),
                            ({**good, "reference": [[0.5, 0.1], [0.0, 0.2]]}, "two sorted lists"),
                            ({**good, "words": [9, 3]}, "increasing positive keys")]:
        doc["reject_novelty"] = broken
        persist.write_model(path, doc, weights)
        with pytest.raises(ValueError, match=message):
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
    stated = json.loads(meta["reject_novelty"])
    words, T = set(stated["class_words"]), int(meta["trained_columns"])
    top, adjusted = proba.argmax(axis=1), odds.copy()
    for n, (row, c) in enumerate(zip(tokens, top)):
        row = row[row >= 0]
        unseen = (row == 0) | (row >= T)
        other = unseen | np.array([c * T + t not in words for t in row])
        for f, reference in ((unseen.mean(), stated["reference"][0]), (other.mean(), stated["reference"][1])):
            r = 1.0 if f == 0 else (1 + sum(v >= f for v in reference)) / (1 + len(reference))
            adjusted[n] += NOVELTY_WEIGHT * np.log(r)
    mine = adjusted < float(meta["reject_log_odds"])
    assert "trained_columns" in meta["rejection"]
    np.testing.assert_array_equal(mine, expected == "unknown")


def test_other_grids_keep_the_log_odds_alone():
    from sklearn.datasets import load_digits
    d = load_digits()
    clf = GridNetClassifier(max_epochs=2, random_state=0).fit(d.images[:300, None] / 16.0, d.target[:300])
    assert clf.reject_novelty_ is None and clf.reject_threshold_ is not None
    assert gridnet.rejection.class_words(d.images[:3, None], [0, 1, 2]) is None


@needs_glove
def test_the_command_line_rejects_as_the_pipeline_does(intents, tmp_path, capsys):
    import csv
    from gridnet.cli import main
    x, y, out = intents
    train = tmp_path / "train.csv"
    with open(train, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["text", "label"], *zip(x, y)])
    model = tmp_path / "m.gridnet"
    assert main(["fit", str(train), "--modality", "text", "-o", str(model), "--epochs", "4",
                 "--seed", "0", "--quiet"]) == 0
    pipe = gridnet.load(model)
    assert pipe[-1].reject_novelty_ is not None          # GloVe by default: words are counted
    queries = out[:10] + x[:10]
    capsys.readouterr()
    assert main(["predict", str(model), *queries, "--reject"]) == 0
    printed = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert printed == list(pipe.set_params(gridnetclassifier__reject=True).predict(queries))
    assert "unknown" in printed
