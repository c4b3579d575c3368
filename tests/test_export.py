"""ONNX export (gridnet.export): onnxruntime gives what gridnet gives, for every preset,
a custom network with branches, the audio front end and the command line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx package (the test extra) is not installed")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime (the test extra) is not installed")

from sklearn.pipeline import make_pipeline  # noqa: E402

import gridnet  # noqa: E402
from adapters import AudioAdapter, TabularAdapter, TextAdapter  # noqa: E402
from gridnet.core.stack import leaves  # noqa: E402
from gridnet import (Branches, Conv2D, Dense, Dropout, Flatten, GlobalMaxPool,  # noqa: E402
                     GridNetClassifier, MaxPool2D, Network, ReLU)
from gridnet.core import Embedding, NgramBag  # noqa: E402
from gridnet.export import ExportError, to_onnx  # noqa: E402

FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd" / "recordings"
SENTENCES = ["a good film", "a bad film", "what a superb movie", "dreadful and dull",
             "How many miles is it ?", "who wrote Hamlet ?", "an awful , boring mess",
             "the best film of the year", "Where is Peru ?", "a fine and moving story"]


def session(model, **kw):
    proto = to_onnx(model, **kw)
    onnx.checker.check_model(proto)
    return ort.InferenceSession(proto.SerializeToString()), proto


def assert_same(proba, expected):
    """Within 1e-5, and the same argmax wherever the top two differ by more than that."""
    np.testing.assert_allclose(proba, expected, atol=1e-5, rtol=0)
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5
    assert (proba.argmax(1) == expected.argmax(1))[clear].all()


def test_image_preset():
    from sklearn.datasets import load_digits
    d = load_digits()
    X = (d.images / 16).astype(np.float32)[:, None]
    clf = GridNetClassifier(max_epochs=2, random_state=0).fit(X[:600], d.target[:600])
    sess, proto = session(clf)
    proba, label = sess.run(None, {"grid": X[600:900]})
    assert_same(proba, clf.predict_proba(X[600:900]))
    assert (label == proba.argmax(1)).all()
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["classes"]) == list(range(10))


def test_table_strip_preset():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 12))
    y = np.where(X[:, 3] + X[:, 4] > 0, "yes", "no")
    pipe = make_pipeline(TabularAdapter(), GridNetClassifier(max_epochs=2, random_state=0)).fit(X, y)
    assert pipe[-1].preset_ == "image" and pipe[0].transform(X[:1]).shape[2] == 1   # a 1-D strip
    sess, proto = session(pipe)
    proba, _ = sess.run(None, {"grid": pipe[0].transform(X)})
    assert_same(proba, pipe.predict_proba(X))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert "TabularAdapter.transform" in meta["input"]
    assert json.loads(meta["classes"]) == ["no", "yes"]


@pytest.mark.parametrize("options", [dict(), dict(embedding=None), dict(vectors="hashing", n_features=64),
                                     dict(dense=True, embedding=None)])
def test_text_preset(options):
    """Word indices in (GloVe's two channels and the n-gram bag by default; a random start;
    hashed words); a dense grid in with dense=True. Padding and unseen words included."""
    pipe = make_pipeline(TextAdapter(positions=7, **options),
                         GridNetClassifier(max_epochs=2, random_state=0)).fit(SENTENCES * 3, list("pnpnqqnpqp") * 3)
    test = SENTENCES + ["", "a superb , moving film", "Who is the best ? " * 5, "zzz qqq"]
    sess, proto = session(pipe)
    grid = pipe[0].transform(test)
    name = sess.get_inputs()[0].name
    feed = grid.indices.astype(np.int64) if name == "tokens" else grid
    assert name == ("grid" if options.get("dense") else "tokens")
    proba, _ = sess.run(None, {name: feed})
    assert_same(proba, pipe.predict_proba(test))


def test_text_preset_with_its_linear_member(monkeypatch):
    """The TF-IDF member (forced in): repeated words and pairs, unseen words, padding, an
    empty sentence."""
    from gridnet import wide
    from gridnet.core import NgramLinear
    monkeypatch.setattr(wide, "WEIGHTS", (0.5,))
    rng = np.random.default_rng(0)
    words = SENTENCES[0].split() + SENTENCES[5].split() + [f"w{i}" for i in range(30)]
    train = [" ".join(rng.choice(words, rng.integers(1, 9))) for _ in range(200)]
    labels = [("good" in t) + 2 * ("who" in t) for t in train]
    pipe = make_pipeline(TextAdapter(positions=8), GridNetClassifier(max_epochs=1, random_state=0))
    pipe.fit(train, labels)
    assert any(isinstance(layer, NgramLinear) for layer in leaves(pipe[-1].network_.layers))
    test = SENTENCES + ["", "good good good film film", "who who wrote superb zzz", "w1 w2 w1 w2 w1 w2 w1 w2 w1"]
    sess, _ = session(pipe)
    proba, _ = sess.run(None, {"tokens": pipe[0].transform(test).indices.astype(np.int64)})
    assert_same(proba, pipe.predict_proba(test))


def test_text_model_keeps_the_tables_compact():
    """The fixed vectors stay float16 and the trained ones cover the training words only,
    as in the model file (not one float32 row per word of the whole vocabulary)."""
    pipe = make_pipeline(TextAdapter(positions=7), GridNetClassifier(max_epochs=1, random_state=0))
    pipe.fit(SENTENCES, list("pnpnqqnpqp"))
    proto = to_onnx(pipe)
    sizes = sorted(init.dims[0] * init.dims[1] for init in proto.graph.initializer if len(init.dims) == 2)
    width = pipe[0].grid_shape_[2]
    layer = next(layer for layer in leaves(pipe[-1].network_.layers) if isinstance(layer, Embedding))
    assert max(sizes) <= max(width * layer.fixed_dim, 2**17 * 16)
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in proto.graph.initializer)


def custom_layers():
    return [Branches([
        [Conv2D(3, 3, padding="same", normalize=True, activation="relu"), MaxPool2D(2),
         Conv2D(4, (2, 3), stride=(2, 1), padding="full"), ReLU(), MaxPool2D(3, 2, padding="same"),
         GlobalMaxPool("both"), Flatten()],
        [Conv2D(2, 5, stride=2, padding="valid"), MaxPool2D((1, 2)), GlobalMaxPool("width"),
         Flatten(), Dense(5, activation="relu")],
        [Flatten(), Dropout(0.3), Dense(4)],
    ]), Dense(6, activation="relu"), Dropout(0.5)]


def test_custom_network_with_branches():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2, 11, 9)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    clf = GridNetClassifier(layers=custom_layers(), max_epochs=2, random_state=0).fit(X, y)
    sess, _ = session(clf)
    proba, _ = sess.run(None, {"grid": X})
    assert_same(proba, clf.predict_proba(X))


def test_bare_network_gives_logits_and_fused_steps_are_plain_nodes():
    net = Network([Conv2D(4, 3, padding="same", activation="relu"), MaxPool2D(2),
                   Conv2D(4, 3, activation="relu"), GlobalMaxPool("height"), Flatten(), Dense(3)])
    net.build((1, 12, 12), np.random.default_rng(0))
    assert type(net.steps[0]).__name__ == "ConvPool"        # fused in gridnet
    sess, proto = session(net)
    x = np.random.default_rng(2).normal(size=(5, 1, 12, 12)).astype(np.float32)
    (logits,) = sess.run(None, {"grid": x})
    np.testing.assert_allclose(logits, net.forward(x), atol=1e-5)
    assert {n.op_type for n in proto.graph.node} >= {"Conv", "MaxPool", "ReduceMax", "MatMul"}


def test_a_classifier_alone_takes_tokens_only_when_it_was_trained_on_word_grids():
    pipe = make_pipeline(TextAdapter(positions=7, embedding=None),
                         GridNetClassifier(max_epochs=1, random_state=0)).fit(SENTENCES, list("pnpnqqnpqp"))
    sess, _ = session(pipe[-1])                       # its adapter left behind
    assert sess.get_inputs()[0].name == "tokens"
    grid = pipe[0].transform(SENTENCES)
    assert_same(sess.run(None, {"tokens": grid.indices.astype(np.int64)})[0], pipe.predict_proba(SENTENCES))
    # the text preset named on dense vectors: the grid, not indices
    dense = TextAdapter(positions=7, vectors="svd", dim=4, random_state=0).fit(SENTENCES)
    clf = GridNetClassifier(preset="text", max_epochs=1, random_state=0).fit(
        dense.transform(SENTENCES), list("pnpnqqnpqp"))
    sess, _ = session(clf)
    assert sess.get_inputs()[0].name == "grid"
    X = dense.transform(SENTENCES)
    assert_same(sess.run(None, {"grid": X})[0], clf.predict_proba(X))


def test_bare_network_reading_tokens():
    net = Network([Branches([[Embedding(3, trained=5, fixed_dim=2), Conv2D(4, (2, 1)),
                              GlobalMaxPool(), Flatten()],
                             [NgramBag(3, buckets=17, trained=5, scale=3.0), Flatten()]]), Dense(2)])
    net.build((1, 4, 9), np.random.default_rng(0))
    net.layers[0].branches[1][0].params["T"][...] = np.random.default_rng(1).normal(size=(17, 3))
    net.layers[0].branches[0][0].buffers["fixed"][...] = np.random.default_rng(2).normal(size=(9, 2))
    idx = np.array([[1, 7, 3, -1], [0, 8, -1, -1], [-1, -1, -1, -1], [4, 4, 2, 6]], np.int64)
    from adapters import OneHotGrid
    sess, _ = session(net)
    assert sess.get_inputs()[0].name == "tokens"
    (logits,) = sess.run(None, {"tokens": idx})
    np.testing.assert_allclose(logits, net.forward(OneHotGrid(idx.astype(np.int32), 9)), atol=1e-5)


def clips(n, sr=8000, seed=0):
    """Tones of two pitches with silence around them, of varied length and level."""
    rng = np.random.default_rng(seed)
    out, labels = [], []
    for i in range(n):
        f = (300, 900)[i % 2]
        k = int(rng.integers(2000, 7000))
        t = np.arange(k) / sr
        tone = np.sin(2 * np.pi * f * t) * rng.uniform(0.05, 0.9)
        y = np.concatenate([np.zeros(int(rng.integers(0, 1500))), tone, np.zeros(int(rng.integers(0, 1500)))])
        out.append(((y + rng.normal(0, 1e-3, y.size)).astype(np.float32), sr))
        labels.append("low" if f == 300 else "high")
    return out, labels


@pytest.mark.parametrize("options", [dict(), dict(align="start", feature="mfcc", length_ratio=None),
                                     dict(feature="stft", normalize="dataset", n_fft=256, trim=False),
                                     dict(align="end", normalize=None, frames=30, length_ratio=None)])
def test_audio_front_end_matches_the_adapter(options):
    train, _ = clips(20)
    adapter = AudioAdapter(**options).fit(train)
    test, _ = clips(12, seed=5)
    if options.get("length_ratio", 1) is None:       # a clip shorter than n_fft
        test.append((np.sin(np.arange(300) / 3.0).astype(np.float32), 8000))
    sess, _ = session(adapter)
    grids = adapter.transform(test)
    for (y, _), expected in zip(test, grids):
        grid, valid = sess.run(None, {"waveform": y})
        assert valid.tolist() == [True]
        np.testing.assert_allclose(grid[0], expected, atol=1e-4, rtol=0)


def test_test_time_views_on_a_grid():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 1, 16, 20)).astype(np.float32)
    y = np.repeat([0, 1, 2], 20)
    X[y == 1, :, 3:6] += 1.5
    views = [(1.0, 0), (1.1, 2), (0.9, -4)]
    clf = GridNetClassifier(preset="audio", max_epochs=2, random_state=0, tta=views).fit(X, y)
    sess, _ = session(clf)
    proba, _ = sess.run(None, {"grid": X})
    assert_same(proba, clf.predict_proba(X))
    plain = GridNetClassifier(preset="audio", max_epochs=2, random_state=0, tta=None).fit(X, y)
    assert not np.allclose(proba, plain.predict_proba(X), atol=1e-3)


def test_audio_pipeline_and_invalid_clips():
    train, labels = clips(30)
    pipe = make_pipeline(AudioAdapter(), GridNetClassifier(max_epochs=2, random_state=0)).fit(train, labels)
    assert type(pipe[-1].network_.layers[0]).__name__ == "RowCenter"    # exported too
    assert len(pipe[-1].tta_) > 1                                       # and the views
    sess, proto = session(pipe)
    test, _ = clips(10, seed=3)
    expected = pipe.predict_proba(test)
    for (y, _), p in zip(test, expected):
        proba, label, valid = sess.run(None, {"waveform": y})
        assert_same(proba, p[None])
        assert valid.tolist() == [True]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["sample_rate"] == "8000"
    silent = np.zeros(4000, np.float32)
    assert sess.run(None, {"waveform": silent})[2].tolist() == [False]
    far_too_long = np.tile(test[0][0], 60)                  # gridnet refuses it (length_ratio)
    assert sess.run(None, {"waveform": far_too_long})[2].tolist() == [False]


@pytest.mark.skipif(not FSDD.is_dir(), reason=f"FSDD not found at {FSDD} (see shared/data/README)")
def test_fsdd_front_end_and_labels():
    """On FSDD's test clips (takes 0-4): the exported front end's grids within 1e-4 of
    transform's, and the exported pipeline's labels those of gridnet (at least 99%)."""
    import soundfile as sf
    files = sorted(FSDD.glob("*.wav"))
    take = np.array([int(f.stem.split("_")[2]) for f in files])
    digit = np.array([int(f.stem.split("_")[0]) for f in files])
    train = [str(f) for f, t in zip(files, take) if t > 4]
    test = [str(f) for f, t in zip(files, take) if t <= 4]
    pipe = make_pipeline(AudioAdapter(), GridNetClassifier(max_epochs=3, random_state=0))
    pipe.fit(train, digit[take > 4])
    front, _ = session(pipe[0])
    whole, _ = session(pipe)
    grids, proba = pipe[0].transform(test), pipe.predict_proba(test)
    same = 0
    for f, grid, p in zip(test, grids, proba):
        y, _ = sf.read(f, dtype="float32")
        np.testing.assert_allclose(front.run(None, {"waveform": y})[0][0], grid, atol=1e-4, rtol=0)
        same += int(whole.run(None, {"waveform": y})[1][0] == p.argmax())
    assert same >= 0.99 * len(test)


def test_bad_input(tmp_path):
    with pytest.raises(ExportError, match="not fitted"):
        to_onnx(GridNetClassifier())
    with pytest.raises(ExportError, match="not built"):
        to_onnx(Network([Dense(2)]))
    with pytest.raises(ExportError, match="no such folder"):
        to_onnx(GridNetClassifier(), tmp_path / "nowhere" / "m.onnx")       # checked first
    with pytest.raises(ExportError, match="is a folder"):
        to_onnx(GridNetClassifier(), tmp_path)
    with pytest.raises(ExportError, match="got str"):
        to_onnx("model.gridnet")
    with pytest.raises(ExportError, match="not fitted"):
        to_onnx(AudioAdapter())

    class Twice(ReLU):
        pass
    net = Network([Flatten(), Twice(), Dense(2)])
    net.build((1, 2, 2), np.random.default_rng(0))
    with pytest.raises(ExportError, match="layer 1: the ONNX exporter does not know Twice layers"):
        to_onnx(net)


def test_the_message_without_onnx(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    net = Network([Flatten(), Dense(2)])
    net.build((1, 2, 2), np.random.default_rng(0))
    with pytest.raises(ImportError, match=r'pip install "gridnet-toolkit\[onnx\]"'):
        to_onnx(net)


def test_written_file_and_the_command_line(tmp_path):
    pipe = make_pipeline(TextAdapter(positions=7), GridNetClassifier(max_epochs=1, random_state=0))
    pipe.fit(SENTENCES, list("pnpnqqnpqp"))
    model = tmp_path / "text.gridnet"
    gridnet.save(pipe, model)
    out = tmp_path / "text.onnx"
    run = subprocess.run([sys.executable, "-m", "gridnet", "export", str(model), "-o", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert f"wrote {out}" in run.stdout and "tokens: int64" in run.stdout
    sess = ort.InferenceSession(str(out))
    proba, _ = sess.run(None, {"tokens": pipe[0].transform(SENTENCES).indices.astype(np.int64)})
    assert_same(proba, pipe.predict_proba(SENTENCES))
    bad = subprocess.run([sys.executable, "-m", "gridnet", "export", str(model), "-o",
                          str(tmp_path / "no" / "x.onnx")], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"gridnet export: error: -o {tmp_path / 'no' / 'x.onnx'}: no such folder {tmp_path / 'no'}"]
    assert not os.path.exists(tmp_path / "no")
    # a classifier saved without its adapter exports too (it takes the grid or the tokens)
    alone = tmp_path / "alone.gridnet"
    pipe[-1].save(alone)
    run = subprocess.run([sys.executable, "-m", "gridnet", "export", str(alone), "-o", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "tokens: int64" in run.stdout
    missing = subprocess.run([sys.executable, "-m", "gridnet", "export", str(tmp_path / "none.gridnet"),
                              "-o", str(out)], capture_output=True, text=True)
    assert missing.returncode == 2 and "none.gridnet" in missing.stderr
