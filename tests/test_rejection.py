"""Rejecting inputs that belong to no class (gridnet.rejection, GridNetClassifier's
reject, reject_label, reject_rate): the threshold is fitted in fit on the held-out
split and nothing else changes it; predict is unchanged without the opt-in; the
out-of-scope class; the model file, the export's metadata and the command line."""
import csv
import warnings

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline

import gridnet
from gridnet import GridNetClassifier, predict_windows, training
from gridnet.cli import main
from gridnet.core import softmax
from gridnet.rejection import (calibrated_logits, fit_threshold, from_probability, rejected,
                               resolve_label, score, with_rejections)

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the test extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    return (d.images / 16.0).astype(np.float32)[:, None], d.target


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    return GridNetClassifier(max_epochs=3, random_state=0).fit(X[:600], y[:600])


@pytest.fixture(scope="module")
def with_oos(digits):
    """Digits 0-7 in scope; 8 and 9 out of scope, a few of them labelled 'none'."""
    X, y = digits
    labels = np.array([f"d{v}" for v in y], dtype=object)
    labels[y >= 8] = "none"
    clf = GridNetClassifier(max_epochs=3, random_state=0, reject_label="none")
    return clf.fit(X[:600], labels[:600]), labels


def log_odds_of(proba):
    """The rejection score from float32 probabilities, as an ONNX runtime computes it:
    log(p / q), q the sum of the other probabilities."""
    ranked = np.sort(np.asarray(proba, dtype=np.float64), axis=1)
    with np.errstate(divide="ignore"):
        return np.log(ranked[:, -1]) - np.log(ranked[:, :-1].sum(axis=1))


def held_out(clf, X, y):
    codes = np.searchsorted(clf.classes_, y)
    _, val = training.validation_split(codes, clf.validation_fraction,
                                       training.seed_streams(clf.random_state)["split"])
    return val, codes


def odds(clf, X):
    """The rejection score (the top probability's log-odds) of X's grids."""
    return score(calibrated_logits(clf, X))


def test_the_threshold_is_fitted_in_fit_on_the_held_out_split(digits, fitted):
    X, y = digits
    val, codes = held_out(fitted, X[:600], y[:600])
    top = fitted.predict_proba(X[:600][val]).max(axis=1)
    assert fitted.reject_threshold_ == pytest.approx(np.quantile(odds(fitted, X[:600][val]), 0.01))
    # as the top probability's 1% quantile would (its low end does not round to 1.0)
    np.testing.assert_array_equal(odds(fitted, X[:600][val]) < fitted.reject_threshold_,
                                  top < np.quantile(top, 0.01))
    assert fitted.oos_label_ is None and np.isfinite(fitted.reject_threshold_)
    # a higher rate, a higher threshold; the rest of the model is the same
    other = GridNetClassifier(max_epochs=3, random_state=0, reject_rate=0.2).fit(X[:600], y[:600])
    assert other.reject_threshold_ > fitted.reject_threshold_
    np.testing.assert_array_equal(other.predict_proba(X[600:700]), fitted.predict_proba(X[600:700]))


def test_predict_score_and_set_params_never_change_the_threshold(digits):
    X, y = digits
    clf = GridNetClassifier(max_epochs=2, random_state=0).fit(X[:600], y[:600])
    before = clf.reject_threshold_
    clf.predict(X[600:]), clf.score(X[600:], y[600:])
    clf.set_params(reject=True, reject_rate=0.5)
    clf.predict(X[600:]), clf.score(X[600:], y[600:]), clf.predict_proba(X[600:])
    assert clf.reject_threshold_ == before


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31), n=st.integers(1, 40), scale=st.floats(0.0, 50.0))
def test_without_the_opt_in_predict_is_the_top_class(fitted, with_oos, seed, n, scale):
    """Property: whatever the inputs (noise of any size), predict without reject is the
    top class of predict_proba, a class the model learned; with reject, the kept inputs
    keep that label and the others get the rejection label."""
    X = (np.random.default_rng(seed).standard_normal((n, 1, 8, 8)) * scale).astype(np.float32)
    for clf in (fitted, with_oos[0]):
        proba = clf.predict_proba(X)
        plain = clf.predict(X)
        np.testing.assert_array_equal(plain, clf.classes_[proba.argmax(axis=1)])
        assert set(plain) <= set(clf.classes_)
        rejecting = clf.set_params(reject=True).predict(X)
        clf.set_params(reject=False)
        label = resolve_label(clf.reject_label, clf.classes_, clf.oos_label_)
        out = odds(clf, X) < clf.reject_threshold_
        if clf.oos_label_ is not None:
            out |= plain == clf.oos_label_
        np.testing.assert_array_equal(rejecting == label, out)
        np.testing.assert_array_equal(rejecting[~out], plain[~out])


def test_rejected_inputs_get_the_label_of_the_users_choice(digits, fitted):
    X, y = digits
    noise = np.random.default_rng(0).uniform(0, 1, (50, 1, 8, 8)).astype(np.float32)
    grids = np.concatenate([X[600:700], noise])
    clf = GridNetClassifier(max_epochs=3, random_state=0, reject=True).fit(X[:600], y[:600])
    out = clf.predict(grids)
    assert out.dtype.kind == "i" and set(out) - set(range(10)) == {-1}   # numbers: -1
    assert np.mean(out[100:] == -1) > np.mean(out[:100] == -1)
    named = clf.set_params(reject_label="none of these").predict(grids)
    assert named.dtype == object and set(named[out == -1]) == {"none of these"}
    with pytest.raises(ValueError, match="one of the classes"):
        clf.set_params(reject_label=3).predict(grids)


def test_out_of_scope_examples_are_a_class_and_are_rejected(digits, with_oos):
    X, y = digits
    clf, labels = with_oos
    assert clf.oos_label_ == "none" and "none" in clf.classes_
    # the threshold counts only the held-out in-scope samples
    val, codes = held_out(clf, X[:600], labels[:600])
    inside = labels[:600][val] != "none"
    assert clf.reject_threshold_ == pytest.approx(np.quantile(odds(clf, X[:600][val][inside]), 0.01))
    pred = clf.set_params(reject=True).predict(X[600:])
    clf.set_params(reject=False)
    assert set(pred) <= set(clf.classes_)          # rejected inputs are called 'none'
    assert np.mean(pred[y[600:] >= 8] == "none") > 0.5


def test_no_threshold_without_a_held_out_split(digits):
    X, y = digits
    for clf in (GridNetClassifier(max_epochs=2, early_stopping=False, random_state=0).fit(X[:300], y[:300]),
                GridNetClassifier(max_epochs=2, random_state=0).fit(X[:50], y[:50]),
                GridNetClassifier(random_state=0).partial_fit(X[:300], y[:300], classes=range(10))):
        assert clf.reject_threshold_ is None
        clf.predict(X[:5])                                   # without the opt-in: fine
        with pytest.raises(ValueError, match="cannot reject.*no.*early_stopping=False"):
            clf.set_params(reject=True).predict(X[:5])


def test_labels_and_settings_are_checked(digits):
    X, y = digits
    with pytest.raises(ValueError, match="reject_rate must be a number in \\[0, 1\\); got 1.5"):
        GridNetClassifier(reject_rate=1.5).fit(X[:100], y[:100])
    fitted = GridNetClassifier(max_epochs=1, random_state=0).fit(X[:100], y[:100])
    with pytest.raises(ValueError, match="reject must be True or False; got 'no'"):
        fitted.set_params(reject="no").predict(X[:5])
    with pytest.raises(ValueError, match="reject must be True or False"):
        GridNetClassifier(reject=1).fit(X[:100], y[:100])
    assert resolve_label(None, np.array(["a", "b"])) == "unknown"
    assert resolve_label(None, np.array([1.5, 2.0])) == -1
    with pytest.raises(ValueError, match="'unknown', which is one of the classes"):
        resolve_label(None, np.array(["a", "unknown"]))
    with pytest.raises(ValueError, match="neither all text nor all numbers"):
        resolve_label(None, np.array(["a", 1], dtype=object))
    assert resolve_label("oos", np.array(["a", "oos"]), "oos") == "oos"
    with pytest.raises(ValueError, match="reads as\\) one of the classes"):
        resolve_label("3", np.array([1, 3]))              # as the command line gives it
    with pytest.raises(ValueError, match="which is one of the classes"):
        resolve_label(None, np.array([-1, 0]))
    labels = np.array(["a", "b"])
    out = with_rejections(labels, np.array([True, False]), "unknown")
    assert out.tolist() == ["unknown", "b"] and labels.tolist() == ["a", "b"]   # not in place
    assert fit_threshold(np.eye(3), [0, 1, 2], 0.0, oos_code=None) == pytest.approx(1 - np.log(2))
    assert fit_threshold(np.eye(2), [1, 1], 0.5, oos_code=1) is None


def test_a_pipeline_rejects_without_a_refit(digits, fitted):
    from sklearn.preprocessing import FunctionTransformer
    X, y = digits
    pipe = make_pipeline(FunctionTransformer(), GridNetClassifier(max_epochs=2, random_state=0))
    pipe.fit(X[:600], y[:600])
    weights = {k: w.copy() for k, w in pipe[-1].network_.get_weights().items()}
    scores = odds(pipe[-1], pipe[:-1].transform(X[600:]))
    pipe.set_params(gridnetclassifier__reject=True, gridnetclassifier__reject_label=99)
    out = pipe.predict(X[600:])
    np.testing.assert_array_equal(out == 99, scores < pipe[-1].reject_threshold_)
    assert (out == 99).any()
    after = pipe[-1].network_.get_weights()
    assert all(np.array_equal(w, after[k]) for k, w in weights.items())


def test_rejection_travels_with_the_model_file_and_the_export(with_oos, digits, tmp_path):
    X, _ = digits
    clf, _ = with_oos
    clf.set_params(reject=True)
    path = tmp_path / "m.gridnet"
    clf.save(path)
    back = gridnet.load(path)
    clf.set_params(reject=False)
    assert back.reject and back.reject_label == "none" and back.oos_label_ == "none"
    assert back.reject_threshold_ == clf.reject_threshold_
    np.testing.assert_array_equal(back.predict(X[600:]), clf.set_params(reject=True).predict(X[600:]))
    clf.set_params(reject=False)
    pytest.importorskip("onnx", reason="the export needs onnx (the onnx extra)")
    proto = gridnet.to_onnx(clf)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert float(meta["reject_log_odds"]) == clf.reject_threshold_
    assert meta["reject_label"] == '"none"' and int(meta["oos_class"]) == list(clf.classes_).index("none")
    ort = pytest.importorskip("onnxruntime", reason="running the export needs onnxruntime")
    # the metadata's rule, on the runtime's probabilities, rejects what predict rejects
    proba = ort.InferenceSession(proto.SerializeToString()).run(None, {"grid": X[600:]})[0]
    out = (log_odds_of(proba) < float(meta["reject_log_odds"])) | (
        proba.argmax(axis=1) == int(meta["oos_class"]))
    assert np.array_equal(out, clf.set_params(reject=True).predict(X[600:]) == "none")
    clf.set_params(reject=False)


def test_a_model_file_without_rejection_loads_unable_to_reject(fitted, tmp_path):
    from gridnet import persist
    path = tmp_path / "old.gridnet"
    fitted.save(path)
    doc, weights = persist.read_model(path)
    for key in ("reject_log_odds", "oos_class"):
        doc.pop(key)
    for key in ("reject", "reject_label", "reject_rate"):
        doc["params"].pop(key)
    persist.write_model(path, doc, weights)
    back = gridnet.load(path)
    assert back.reject_threshold_ is None and back.oos_label_ is None and not back.reject


@pytest.fixture(scope="module")
def intents(tmp_path_factory):
    """Three intents and out-of-scope queries, as CSV files for the command line."""
    root = tmp_path_factory.mktemp("intents")
    rng = np.random.default_rng(0)
    keys = {"weather": ["rain", "sunny", "forecast"], "music": ["song", "play", "album"],
            "alarm": ["wake", "alarm", "clock"]}
    filler = ["please", "the", "my", "for", "me", "now", "today", "can", "you"]
    other = ["recipe", "flight", "bank", "joke", "movie", "doctor", "taxes", "car"]

    def query(words):
        out = list(rng.choice(filler, 4))
        for w in words:
            out.insert(int(rng.integers(0, len(out) + 1)), w)
        return " ".join(out)
    rows = [[query(rng.choice(keys[k], 2)), k] for _ in range(60) for k in keys]
    rows += [[query(rng.choice(other, 2)), "oos"] for _ in range(40)]
    test = [[query(rng.choice(keys[k], 2)), k] for _ in range(15) for k in keys]
    test += [[query(rng.choice(other, 2)), "oos"] for _ in range(20)]
    write = lambda name, rs: _write(root / name, rs)   # noqa: E731
    return root, write("train.csv", rows), write("test.csv", test)


def _write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


def test_the_command_line_fits_predicts_and_evaluates_with_rejection(intents, capsys):
    root, train, test = intents
    model = root / "m.gridnet"
    assert main(["fit", str(train), "--modality", "text", "-o", str(model), "--oos-label", "oos",
                 "--vectors", "none", "--epochs", "15", "--quiet"]) == 0
    pipe = gridnet.load(model)
    clf = pipe[-1]
    assert clf.oos_label_ == "oos" and clf.reject_threshold_ is not None and not clf.reject
    sentences = [r[0] for r in list(csv.reader(open(test, encoding="utf-8")))[1:]]
    truth = np.array([r[1] for r in list(csv.reader(open(test, encoding="utf-8")))[1:]])
    capsys.readouterr()
    assert main(["predict", str(model), *sentences[:5], "--reject", "--reject-label", "none"]) == 0
    printed = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    expected = pipe.set_params(gridnetclassifier__reject=True,
                               gridnetclassifier__reject_label="none").predict(sentences[:5])
    assert printed == list(expected)
    # evaluate --reject: the figures are those of predict with reject
    pred = pipe.set_params(gridnetclassifier__reject_label=None).predict(sentences)
    assert main(["evaluate", str(model), str(test), "--reject"]) == 0
    out = capsys.readouterr().out
    inside = truth != "oos"
    assert f"in-scope accuracy: {np.mean(pred[inside] == truth[inside]):.4f} ({inside.sum()} samples" in out
    assert f"out-of-scope recall: {np.mean(pred[~inside] == 'oos'):.4f} ({(~inside).sum()} samples" in out
    assert gridnet.load(model)[-1].reject_threshold_ == clf.reject_threshold_   # unchanged
    # out-of-scope samples alone: the recall, and a picture without a reliability diagram
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (the test extra)")
    only = _write(root / "oos_only.csv", [[s, "oos"] for s, t in zip(sentences, truth) if t == "oos"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["evaluate", str(model), str(only), "--reject", "--plot", str(root / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "in-scope accuracy" not in out and "out-of-scope recall: " in out and "wrote" in out
    # the per-class table lists the classes in the file or predicted, and says so
    import re
    said = set(pipe.predict([r[0] for r in list(csv.reader(open(only, encoding="utf-8")))[1:]]))
    rows = {k for k in ("weather", "music", "alarm", "oos")
            if re.search(rf"^\s*{k}\s+\d\.\d\d", out, re.M)}
    assert rows == said | {"oos"}
    left = 4 - len(rows)
    assert (f"{left} of the model's 4 classes are neither in the file nor predicted" in out) == (left > 0)
    # without --reject the labels the model knows are scored as before
    assert main(["evaluate", str(model), str(test)]) == 0
    assert "accuracy: " in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--reject-label", "x"], "--reject-label goes with --reject"),
    (["--oos-label", "zzz"], "--oos-label zzz: no sample in .* has that label"),
])
def test_command_line_rejection_errors(intents, capsys, args, message):
    root, train, _ = intents
    if args[0] == "--oos-label":
        argv = ["fit", str(train), "--modality", "text", "-o", str(root / "x.gridnet"), *args]
    else:
        model = root / "plain.gridnet"
        assert main(["fit", str(train), "--modality", "text", "-o", str(model), "--vectors",
                     "none", "--epochs", "2", "--quiet"]) == 0
        argv = ["predict", str(model), "play a song", *args]
    capsys.readouterr()
    assert main(argv) == 2
    import re
    assert re.search(message, capsys.readouterr().err)


def test_a_model_without_a_threshold_cannot_reject_on_the_command_line(intents, capsys):
    root, train, test = intents
    model = root / "nosplit.gridnet"
    assert main(["fit", str(train), "--modality", "text", "-o", str(model), "--vectors", "none",
                 "--epochs", "2", "--no-early-stopping", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model), str(test), "--reject"]) == 2
    assert "cannot reject" in capsys.readouterr().err


def test_windows_are_marked_when_rejected():
    from adapters import AudioAdapter
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 8000
    clips = [(np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(4000), 8000)
             for f in (300, 1200) * 20]
    pipe = make_pipeline(AudioAdapter(trim=False), GridNetClassifier(   # unsure: one slow epoch
        max_epochs=1, learning_rate=1e-4, validation_fraction=0.5, random_state=0))
    pipe.fit(clips, [300, 1200] * 20)
    long = (np.concatenate([np.sin(2 * np.pi * f * t) for f in (300, 700, 1200)])
            + 0.01 * rng.standard_normal(12000), 8000)
    plain = predict_windows(pipe, long, hop=0.1)
    pipe.set_params(gridnetclassifier__reject=True)
    marked = predict_windows(pipe, long, hop=0.1)
    out = log_odds_of(plain.proba) < pipe[-1].reject_threshold_
    assert out.any() and not out.all()
    np.testing.assert_array_equal(marked.labels == -1, out)
    np.testing.assert_array_equal(marked.labels[~out], plain.labels[~out])


def test_probabilities_that_round_to_one_still_rank():
    """Logits whose top leads by 20-60: every float32 top probability is 1.0, but the
    score (its log-odds from the logits) still orders them, so a 10% threshold rejects
    the lowest tenth, not none (as a threshold of exactly 1.0 on probabilities would)."""
    rng = np.random.default_rng(0)
    z = np.zeros((200, 4), dtype=np.float32)
    z[np.arange(200), rng.integers(0, 4, 200)] = rng.uniform(20, 60, 200)
    assert (softmax(z.copy()).max(axis=1) == 1.0).all()
    t = fit_threshold(z, z.argmax(axis=1), 0.1)
    assert 20 < t < 60 and rejected(z, t).sum() == 20
    np.testing.assert_allclose(score(z), z.max(axis=1) - np.log(3), rtol=1e-6)


def test_a_sharp_temperature_still_rejects_the_share_asked(digits, monkeypatch):
    """A held-out split the network gets all right sends the fitted temperature to its
    bound (0.05): most top probabilities round to 1.0. A threshold at the split's median
    still rejects half of it (on the probabilities it would be 1.0 and reject only those
    under it: a third)."""
    import gridnet.estimator
    monkeypatch.setattr(gridnet.estimator, "fit_temperature", lambda *a, **k: 0.05)
    X, y = digits
    clf = GridNetClassifier(max_epochs=3, random_state=0, reject=True, reject_rate=0.5)
    clf.fit(X[:600], y[:600])
    val, _ = held_out(clf, X[:600], y[:600])
    assert clf.temperature_ == 0.05 and len(val) == 60
    assert np.mean(clf.predict_proba(X[:600][val]).max(axis=1) == 1.0) > 0.5
    assert np.sum(clf.predict(X[:600][val]) == -1) == 30


@pytest.mark.parametrize("p, expected", [(0.9, np.log(9)), (1.0, np.log(2.0**24 - 1))])
def test_a_model_file_with_a_probability_threshold_loads_as_log_odds(fitted, tmp_path, p, expected):
    from gridnet import persist
    path = tmp_path / "before.gridnet"
    fitted.save(path)
    doc, weights = persist.read_model(path)
    doc.pop("reject_log_odds")
    doc["reject_threshold"] = p          # as files before the log-odds held it
    persist.write_model(path, doc, weights)
    assert gridnet.load(path).reject_threshold_ == pytest.approx(expected)
    assert from_probability(p) == pytest.approx(expected)


def test_the_out_of_scope_class_counts_more_unless_class_weight_names_it(digits, monkeypatch):
    """Its few examples stand for everything no class covers: the loss weighs the
    out-of-scope class training.OOS_WEIGHT times what class_weight gives it; a dict
    that names it is taken as it is."""
    classes = np.array(["a", "b", "none"])
    codes = np.array([0, 1, 2, 0])
    assert training.OOS_WEIGHT > 1
    np.testing.assert_array_equal(training.make_loss(None, classes, codes, oos_code=2).class_weight,
                                  [1, 1, training.OOS_WEIGHT])
    np.testing.assert_array_equal(training.make_loss({"a": 2.0}, classes, codes, 2).class_weight,
                                  [2, 1, training.OOS_WEIGHT])
    np.testing.assert_array_equal(training.make_loss({"none": 0.5}, classes, codes, 2).class_weight,
                                  [1, 1, 0.5])
    balanced = training.make_loss("balanced", classes, codes).class_weight
    np.testing.assert_allclose(training.make_loss("balanced", classes, codes, 2).class_weight,
                               balanced * [1, 1, training.OOS_WEIGHT])
    assert training.make_loss(None, classes, codes).class_weight is None
    # the classifier passes its out-of-scope class on, and only that
    seen = []
    real = training.make_loss
    monkeypatch.setattr(training, "make_loss", lambda *a: seen.append(a[3]) or real(*a))
    X, y = digits
    labels = np.array([f"d{v}" for v in y], dtype=object)
    labels[y >= 8] = "none"
    GridNetClassifier(max_epochs=1, reject_label="none").fit(X[:200], labels[:200])
    GridNetClassifier(max_epochs=1).fit(X[:200], labels[:200])
    assert seen == [8, None]       # "none" sorts after d0-d7
