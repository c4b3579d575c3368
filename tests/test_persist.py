"""Model files written before the restructuring (format 1, gridnet 0.1 at commit
7dcec2e: tests/data/format1, made by its CLI and GridNetClassifier.save) still load and
predict what they predicted then."""
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

import adapters
import gridnet
from gridnet import persist

DATA = Path(__file__).resolve().parent / "data" / "format1"
EXPECTED = json.loads((DATA / "expected.json").read_text())


def _inputs(kind):
    given = EXPECTED[kind]["inputs"]
    if kind == "table":
        from gridnet.cli.data import read_table
        header, columns = read_table(DATA / given)
        return {h: c for h, c in zip(header, columns) if h != "label"}
    if kind == "audio":
        return [str(DATA / p) for p in given]
    return given


@pytest.mark.parametrize("kind", ["text", "table", "audio"])
def test_command_line_models_of_format_1_load_with_their_adapter(kind):
    model, extra = gridnet.load(DATA / f"{kind}.gridnet", return_extra=True)
    adapter = adapters.from_state(extra["adapter"])
    proba = model[-1].predict_proba(adapter.transform(_inputs(kind)))
    np.testing.assert_allclose(proba, EXPECTED[kind]["proba"], rtol=1e-5, atol=1e-6)
    # gridnet.load gives the pipeline, which predicts the same
    np.testing.assert_allclose(model.predict_proba(_inputs(kind)), proba, rtol=0, atol=0)


def test_a_python_model_of_format_1_loads():
    clf = gridnet.load(DATA / "digits.gridnet")
    proba = clf.predict_proba(load_digits().images[:20] / 16)
    np.testing.assert_allclose(proba, EXPECTED["digits"]["proba"], rtol=1e-5, atol=1e-6)


def test_the_container_checks_format_and_checksum(tmp_path):
    path = tmp_path / "m.gridnet"
    persist.write_model(path, {"anything": [1, 2]}, {"0.W": np.ones((2, 2), np.float32)})
    header, weights = persist.read_model(path)
    assert header["anything"] == [1, 2] and header["version"] == persist.VERSION
    np.testing.assert_array_equal(weights["0.W"], 1)
    with pytest.raises(FileNotFoundError):
        persist.read_model(tmp_path / "missing.gridnet")
    (tmp_path / "text.gridnet").write_text("not a model")
    with pytest.raises(ValueError, match="not a readable gridnet model file"):
        persist.read_model(tmp_path / "text.gridnet")


def test_the_kept_epoch_survives_save_and_load(tmp_path):
    from sklearn.datasets import load_digits

    import gridnet
    d = load_digits()
    clf = gridnet.GridNetClassifier(max_epochs=6, random_state=0).fit(d.images[:300] / 16, d.target[:300])
    assert clf.history_[clf.best_epoch_ - 1]["val_score"] == clf.best_validation_score_
    clf.save(tmp_path / "m.gridnet")
    back = gridnet.load(tmp_path / "m.gridnet")
    assert (back.best_epoch_, back.best_validation_score_) == (clf.best_epoch_, clf.best_validation_score_)


def _rewrite(path, change):
    """Write the archive at ``path`` again with ``change(arrays)`` applied (no new seal)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def test_large_extra_values_go_to_the_arrays_and_come_back_checked(tmp_path):
    words = [f"w{i}é" for i in range(persist.LARGE + 1)]
    table = {"__array__": np.arange(persist.LARGE + 1).tolist(), "dtype": "int32"}
    small = {"__array__": [1, 2], "dtype": "float32"}
    extra = {"adapter": {"fitted": {"words_": words, "table_": table, "small_": small,
                                    "few_": ["a", "b"]}}}
    path = tmp_path / "m.gridnet"
    persist.write_model(path, {"extra": extra}, {"0.W": np.ones(2, np.float32)})
    with np.load(path, allow_pickle=False) as data:
        header = str(data["__gridnet__"])
        assert "w1000" not in header and {"w/x/extra/adapter/fitted/words_",
                                          "w/x/extra/adapter/fitted/table_"} <= set(data.files)
    doc, weights = persist.read_model(path)
    fitted = doc["extra"]["adapter"]["fitted"]
    assert fitted["words_"] == words and fitted["few_"] == ["a", "b"] and fitted["small_"] == small
    np.testing.assert_array_equal(fitted["table_"], np.arange(persist.LARGE + 1))
    assert fitted["table_"].dtype == np.int32 and set(weights) == {"0.W"}
    # the checksum covers the stored values: one changed byte is refused
    def flip(arrays):
        a = arrays["w/x/extra/adapter/fitted/words_"].copy()
        a[0] ^= 1
        arrays["w/x/extra/adapter/fitted/words_"] = a
    _rewrite(path, flip)
    with pytest.raises(ValueError, match="do not match their recorded checksum"):
        persist.read_model(path)


def _header_of(path):
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["__gridnet__"][()]))


def _set_header(arrays, doc):
    arrays["__gridnet__"] = np.array(json.dumps(doc))


def test_version_2_refuses_a_changed_weight_and_a_changed_header_field(tmp_path):
    path = tmp_path / "m.gridnet"
    persist.write_model(path, {"params": {"dropout": 0.5}}, {"0.W": np.ones((2, 2), np.float32)})
    assert persist.read_model(path)[0]["params"] == {"dropout": 0.5}      # untouched: reads

    def weight(arrays):
        arrays["w/0.W"] = arrays["w/0.W"] + np.float32(1e-3)
    def field(arrays):
        doc = json.loads(str(arrays["__gridnet__"][()]))
        doc["params"]["dropout"] = 0.0
        _set_header(arrays, doc)
    def checksum_of_other_content(arrays):     # a well-formed sha256 of something else
        doc = json.loads(str(arrays["__gridnet__"][()]))
        doc["sha256"] = "0" * 64
        _set_header(arrays, doc)
    for change in (weight, field, checksum_of_other_content):
        persist.write_model(path, {"params": {"dropout": 0.5}}, {"0.W": np.ones((2, 2), np.float32)})
        _rewrite(path, change)
        with pytest.raises(ValueError, match="do not match their recorded checksum"):
            persist.read_model(path)


def test_version_1_refuses_a_changed_weight(tmp_path):
    path = tmp_path / "digits.gridnet"
    path.write_bytes((DATA / "digits.gridnet").read_bytes())
    assert _header_of(path)["version"] == 1
    persist.read_model(path)                                              # untouched: reads
    name = next(k for k in np.load(path).files if k.startswith("w/"))

    def weight(arrays):
        arrays[name] = arrays[name] * np.float32(1.001)
    _rewrite(path, weight)
    with pytest.raises(ValueError, match="weights do not match their recorded checksum"):
        persist.read_model(path)
