"""Ensembles: Branches(join="mean") in the core, and GridNetClassifier(ensemble_size=...)
training several networks side by side and averaging their logits."""
import time

import numpy as np
import pytest
from gradcheck import check_layer
from sklearn.pipeline import make_pipeline

import gridnet
from adapters import TextAdapter
from gridnet import (Branches, Conv2D, Dense, Flatten, GlobalMaxPool, GridNetClassifier,
                     Network, ReLU, training)
from gridnet.architectures import ensemble_members, ensemble_size
from gridnet.core import layer_from_config, softmax
from gridnet.core.stack import layer_config

TRAIN = ["a good film", "a bad film", "good fun", "bad acting", "a fine cast", "dull mess",
         "what a great show", "an awful plot", "lovely and warm", "boring and slow"] * 4
LABELS = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0] * 4


def _member():
    return [Conv2D(2, (2, 3)), ReLU(), GlobalMaxPool(), Flatten(), Dense(3)]


def test_mean_join_averages_and_its_gradients_match_finite_differences():
    block = Branches([_member(), _member()], join="mean")
    rng = np.random.default_rng(0)
    assert block.build((1, 5, 3), rng) == (3,)
    x = rng.standard_normal((4, 1, 5, 3)).astype(np.float32)
    one = [block.member(b) for b in (0, 1)]
    assert all(a is b for a, b in zip(one[0].layers, block.branches[0]))
    assert one[0].out_shape == (3,)
    np.testing.assert_allclose(block.forward(x), (one[0].forward(x) + one[1].forward(x)) / 2,
                               rtol=1e-6)
    errors = check_layer(Branches([_member(), _member(), _member()], join="mean"), (1, 5, 3))
    assert {"x", "0.0.W", "2.4.W"} <= set(errors)


def test_mean_join_config_round_trip_and_checks():
    block = Branches([_member(), _member()], join="mean")
    config = layer_config(block)
    assert config["join"] == "mean"
    assert layer_from_config(config).join == "mean"
    plain = layer_config(Branches([_member()]))
    assert "join" not in plain and layer_from_config(plain).join == "concat"   # older files
    with pytest.raises(ValueError, match="join must be"):
        Branches([_member()], join="sum")
    with pytest.raises(ValueError, match="one shape"):
        Branches([[Flatten(), Dense(2)], [Flatten(), Dense(3)]], join="mean").build(
            (1, 2, 2), np.random.default_rng(0))


def test_network_average_shares_the_built_layers():
    rng = np.random.default_rng(0)
    nets = [Network(_member()), Network(_member())]
    for net in nets:
        net.build((1, 5, 3), rng)
    before = [layer.params["W"].copy() for net in nets for layer in net.layers if "W" in layer.params]
    avg = Network.average(nets)
    after = [layer.params["W"] for net in nets for layer in net.layers if "W" in layer.params]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))    # not rebuilt
    members = ensemble_members(avg)
    assert [m.layers[0] for m in members] == [nets[0].layers[0], nets[1].layers[0]]
    x = rng.standard_normal((3, 1, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(avg.forward(x), (nets[0].forward(x) + nets[1].forward(x)) / 2,
                               rtol=1e-6)
    with pytest.raises(ValueError, match="built networks"):
        Network.average([Network(_member())])
    assert ensemble_members(nets[0]) == [nets[0]]


def test_a_bad_ensemble_size_is_named_before_training():
    _, grid = _grid()
    clf, _ = _fit(warm_start=True, max_epochs=1)
    for bad in (0, "two"):
        with pytest.raises(ValueError, match="ensemble_size must be"):
            GridNetClassifier(ensemble_size=bad).fit(grid, LABELS)
        with pytest.raises(ValueError, match="ensemble_size must be"):     # even warm
            clf.set_params(ensemble_size=bad).fit(grid, LABELS)


def test_ensemble_size_settings():
    assert ensemble_size("text", "auto") == 2
    assert ensemble_size("image", "auto") == ensemble_size("audio", "auto") == 1
    assert ensemble_size("text", "auto", partial=True) == 1
    assert ensemble_size(None, 3) == 3
    for bad in (0, -1, 1.5, True, "two", None):
        with pytest.raises(ValueError, match="ensemble_size must be"):
            ensemble_size("text", bad)


def _grid():
    adapter = TextAdapter(positions=6).fit(TRAIN)
    return adapter, adapter.transform(TRAIN)


def _fit(**kw):
    _, grid = _grid()
    params = dict(random_state=0, max_epochs=4, validation_fraction=0.25)
    return GridNetClassifier(**{**params, **kw}).fit(grid, LABELS), grid


def test_text_preset_trains_two_networks_and_averages_their_logits():
    clf, grid = _fit()
    assert clf.ensemble_size_ == 2 and len(clf.histories_) == 2
    assert clf.history_ is not clf.histories_[1] and clf.history_ == clf.histories_[0]
    members = ensemble_members(clf.network_)
    assert len(members) == 2
    z = [training.logits(m, grid, np.arange(len(LABELS)), 2, 32) for m in members]
    assert not np.allclose(z[0], z[1])                   # two networks, not one twice
    block = clf.network_.layers[0]                       # and the linear member, if any
    z += [training.logits(block.member(b), grid, np.arange(len(LABELS)), 2, 32)
          for b in range(2, len(block.branches))]
    assert len(z) == 2 + (clf.linear_share_ > 0)
    np.testing.assert_allclose(clf.predict_proba(grid),
                               softmax(sum(z) / len(z) / np.float32(clf.temperature_)),
                               rtol=1e-5, atol=1e-6)
    # the model's own held-out score, not one network's
    val = training.validation_split(np.array(LABELS), 0.25, training.seed_streams(0)["split"])[1]
    assert clf.best_validation_score_ == pytest.approx(
        np.mean((sum(z)[val].argmax(1)) == np.array(LABELS)[val]))


def test_the_first_network_is_the_single_network_to_the_bit():
    from threadpoolctl import threadpool_limits
    clf, _ = _fit()
    with threadpool_limits(limits=1, user_api="blas"):    # as the ensemble's networks train
        single, _ = _fit(ensemble_size=1)
    assert single.ensemble_size_ == 1 and len(ensemble_members(single.network_)) == 1
    first = ensemble_members(clf.network_)[0]
    a, b = first.get_weights(), ensemble_members(single.network_)[0].get_weights()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

    def untimed(history):
        return [{k: v for k, v in r.items() if k != "time"} for r in history]
    assert untimed(clf.histories_[0]) == untimed(single.history_)


def test_same_seed_same_weights_on_one_core_or_several(monkeypatch):
    clf, grid = _fit()
    again, _ = _fit()
    monkeypatch.setattr(training.os, "cpu_count", lambda: 1)      # one network after the other
    serial, _ = _fit()
    for other in (again, serial):
        a, b = clf.network_.get_weights(), other.network_.get_weights()
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_partial_fit_and_warm_start():
    _, grid = _grid()
    clf = GridNetClassifier(random_state=0).partial_fit(grid, LABELS, classes=[0, 1])
    assert clf.ensemble_size_ == 1 and ensemble_members(clf.network_) == [clf.network_]
    clf, grid = _fit(warm_start=True, early_stopping=False, max_epochs=2)
    before = clf.network_.get_weights()
    optimizers = clf._optimizers
    clf.fit(grid, LABELS)
    assert clf._optimizers is optimizers and clf.n_iter_ == 4
    assert [len(h) for h in clf.histories_] == [2, 2]
    after = clf.network_.get_weights()
    assert all(not np.array_equal(before[k], after[k]) for k in before if k.endswith(".W"))


def test_ensemble_survives_the_model_file(tmp_path):
    adapter = TextAdapter(positions=6)
    pipe = make_pipeline(adapter, GridNetClassifier(random_state=0, max_epochs=3,
                                                    validation_fraction=0.25)).fit(TRAIN, LABELS)
    path = tmp_path / "ens.gridnet"
    gridnet.save(pipe, path)
    back = gridnet.load(path)
    np.testing.assert_array_equal(back.predict_proba(TRAIN), pipe.predict_proba(TRAIN))
    stored = np.load(path).files
    assert sum(name.endswith(".fixed") for name in stored) == 1     # one copy of GloVe's rows
    clf, loaded = pipe[-1], back[-1]
    assert loaded.network_.layers[0].join == "mean" and loaded.ensemble_size_ == 2
    assert loaded.histories_ == clf.histories_
    assert loaded.best_validation_score_ == clf.best_validation_score_


def test_winning_windows_of_an_ensemble_average_its_networks():
    from gridnet.explain import winning_windows
    clf, grid = _fit()
    codes = np.ones(len(LABELS), int)
    members = ensemble_members(clf.network_)
    got = winning_windows(clf.network_, grid[:5], codes[:5], top=50)
    parts = [winning_windows(m, grid[:5], codes[:5], top=50) for m in members]
    for i in range(5):
        want = {}
        for part in parts:
            for s, e, v in part[i]:
                want[(s, e)] = want.get((s, e), 0.0) + v / 2
        assert {(s, e): pytest.approx(v) for s, e, v in got[i]} == {
            k: pytest.approx(v) for k, v in want.items() if v > 0}


def test_a_bad_list_of_equal_weights_is_named(tmp_path):
    from gridnet import persist
    clf, _ = _fit(max_epochs=1)
    path = tmp_path / "m.gridnet"
    clf.save(path)
    doc, weights = persist.read_model(path)
    for bad in (["0.0.0.0.0.fixed"], {"0.1.0.0.0.fixed": "no such array"}):
        persist.write_model(path, {**doc, "same_weights": bad}, weights)
        with pytest.raises(ValueError, match="invalid gridnet model"):
            gridnet.load(path)


def test_the_export_keeps_one_copy_of_the_shared_vectors():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from gridnet.export import to_onnx
    adapter, grid = _grid()
    clf = GridNetClassifier(random_state=0, max_epochs=2).fit(grid, LABELS)
    proto = to_onnx(make_pipeline(adapter, clf))
    half = [i for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16]
    assert len(half) == 1                                   # GloVe's rows, once
    sess = ort.InferenceSession(proto.SerializeToString())
    out = sess.run(["probabilities"], {"tokens": np.asarray(grid.indices, np.int64)})[0]
    np.testing.assert_allclose(out, clf.predict_proba(grid), atol=1e-5)


def test_an_error_in_one_network_stops_the_other(monkeypatch):
    """The failing network's error is raised once the other has stopped after its
    current epoch (it would otherwise train all its epochs first)."""
    adapter, grid = _grid()
    seen, raised = [], []
    real = training.train_epoch

    def epoch(net, *args, epoch, **kw):
        seen.append(epoch)
        if epoch == 2 and not raised:               # the first network to reach epoch 2
            raised.append(net)
            raise FloatingPointError("the training loss became nan in epoch 2")
        if epoch >= 2:
            time.sleep(0.05)
        return real(net, *args, epoch=epoch, **kw)
    monkeypatch.setattr(training, "train_epoch", epoch)
    clf = GridNetClassifier(random_state=0, max_epochs=50, early_stopping=False, n_iter_no_change=50)
    with pytest.raises(FloatingPointError, match="epoch 2"):
        clf.fit(grid, LABELS)
    assert len(seen) < 10                            # not 50 epochs of the other network


def test_an_interrupt_stops_both_networks(monkeypatch):
    """Ctrl-C while the networks train: both stop after their current epoch, and the
    interrupt is raised (the worker threads cannot be interrupted themselves)."""
    _, grid = _grid()
    seen = []
    real = training.train_epoch

    def epoch(net, *args, epoch, **kw):
        seen.append(epoch)
        time.sleep(0.02)
        return real(net, *args, epoch=epoch, **kw)

    def interrupted(futures, return_when):
        time.sleep(0.1)
        raise KeyboardInterrupt
    monkeypatch.setattr(training, "train_epoch", epoch)
    monkeypatch.setattr(training, "wait", interrupted)
    clf = GridNetClassifier(random_state=0, max_epochs=200, early_stopping=False, n_iter_no_change=200)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(grid, LABELS)
    assert len(seen) < 40                            # not 200 epochs each
