"""Model files written before the restructuring (format 1, gridnet 0.1 at commit
7dcec2e: tests/data/format1, made by its CLI and GridNetClassifier.save) still load and
predict what they predicted then."""
import json
import re
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
        header, columns, _ = read_table(DATA / given)
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


def test_every_refusal_names_the_file_and_the_problem(tmp_path):
    good = tmp_path / "m.gridnet"
    persist.write_model(good, {"a": 1}, {"0.W": np.ones(2, np.float32)})
    name = str(tmp_path / "missing.gridnet")
    with pytest.raises(FileNotFoundError, match=f"^no such model file: {re.escape(name)}$"):
        persist.read_model(name)
    with pytest.raises(ValueError, match=f"^{re.escape(str(tmp_path))} is a folder, not a gridnet model file$"):
        persist.read_model(tmp_path)
    (tmp_path / "t.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"t\.txt is not a readable gridnet model file: not a \.npz "
                       r"archive \(a model is one written by 'gridnet fit' or "
                       r"GridNetClassifier\.save; this file is of another kind, or truncated\)$"):
        persist.read_model(tmp_path / "t.txt")
    np.savez(tmp_path / "plain.npz", x=np.ones(2))
    with pytest.raises(ValueError, match=r"plain\.npz is not a readable gridnet model file "
                       r"\(ValueError: it has no gridnet header\)$"):
        persist.read_model(tmp_path / "plain.npz")
    # a pickled object in the archive is refused, never unpickled
    np.savez(tmp_path / "pickled.npz", __gridnet__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"pickled\.npz is not a readable gridnet model file "
                       r"\(ValueError: .*allow_pickle"):
        persist.read_model(tmp_path / "pickled.npz")
    for doc, message in (([1, 2], "is not a gridnet classifier file$"),
                         ({"format": "other"}, "is not a gridnet classifier file$"),
                         ({"format": persist.FORMAT, "version": 9},
                          "has format version 9; this gridnet reads versions 1, 2$")):
        np.savez(tmp_path / "h.npz", __gridnet__=np.array(json.dumps(doc)))
        with pytest.raises(ValueError, match=r"h\.npz " + message):
            persist.read_model(tmp_path / "h.npz")


def test_the_seal_does_not_depend_on_the_header_s_key_order(tmp_path):
    path = tmp_path / "m.gridnet"
    persist.write_model(path, {"b": 1, "a": {"y": 2, "x": 3}}, {"0.W": np.ones(2, np.float32)})

    def reorder(arrays):       # the same header, its keys written in another order
        doc = json.loads(str(arrays["__gridnet__"][()]))
        flipped = {k: (dict(reversed(list(v.items()))) if isinstance(v, dict) else v)
                   for k, v in reversed(list(doc.items()))}
        assert json.dumps(flipped) != json.dumps(doc)
        _set_header(arrays, flipped)
    _rewrite(path, reorder)
    assert persist.read_model(path)[0]["a"] == {"x": 3, "y": 2}


def test_a_model_is_written_beside_its_destination_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    import os
    moves = []
    real = os.replace

    def spy(src, dst):
        moves.append((src, dst))
        real(src, dst)
    monkeypatch.setattr(os, "replace", spy)
    path = tmp_path / "m.gridnet"
    persist.write_model(path, {}, {"0.W": np.ones(2, np.float32)})
    (src, dst), = moves
    assert os.path.dirname(src) == str(tmp_path) and os.path.basename(src).startswith(".gridnet-")
    assert src.endswith(".tmp") and dst == str(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gridnet"]
    with pytest.raises(ValueError, match="cannot save this classifier without pickle: .*not JSON serializable"):
        persist.write_model(path, {"bad": object()}, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gridnet"]


def test_what_is_stored_and_what_stays_in_the_header(tmp_path):
    L = persist.LARGE
    extra = {"at_limit": ["w"] * L, "over": ["w"] * (L + 1), "with_newline": ["a\nb"] * (L + 1),
             "empty_strings": [""] * (L + 1), "nested": [{"deep": ["v"] * (L + 1)}],
             "objects": {"__array__": [1] * (L + 1), "dtype": "object"},
             "numbers": {"__array__": list(range(L)), "dtype": "int64"}}
    path = tmp_path / "m.gridnet"
    persist.write_model(path, {"extra": extra}, {})
    header = _header_of(path)["extra"]
    assert header["at_limit"] == ["w"] * L and header["numbers"]["__array__"] == list(range(L))
    assert header["with_newline"] == ["a\nb"] * (L + 1)          # cannot be joined: kept
    assert header["objects"]["dtype"] == "object"
    assert header["over"] == {"__stored__": "extra/over", "kind": "strings", "count": L + 1}
    assert header["nested"][0]["deep"]["__stored__"] == "extra/nested/0/deep"
    doc, _ = persist.read_model(path)
    assert doc["extra"]["over"] == ["w"] * (L + 1) and doc["extra"]["empty_strings"] == [""] * (L + 1)
    assert doc["extra"]["nested"] == [{"deep": ["v"] * (L + 1)}]
    big = {"__array__": list(range(L + 1)), "dtype": "int64"}
    persist.write_model(path, {"extra": {"t": big}}, {})
    assert _header_of(path)["extra"]["t"] == {"__stored__": "extra/t", "kind": "array"}


def test_a_stored_value_that_is_missing_or_miscounted_is_refused(tmp_path):
    path = tmp_path / "m.gridnet"
    words = ["w"] * (persist.LARGE + 1)

    def drop(arrays):
        del arrays["w/x/extra/words"]
        doc = json.loads(str(arrays["__gridnet__"][()]))
        doc["sha256"] = persist._sealed(doc, {k[2:]: v for k, v in arrays.items() if k.startswith("w/")})
        _set_header(arrays, doc)

    def miscount(arrays):
        doc = json.loads(str(arrays["__gridnet__"][()]))
        doc["extra"]["words"]["count"] = 3
        doc["sha256"] = persist._sealed(doc, {k[2:]: v for k, v in arrays.items() if k.startswith("w/")})
        _set_header(arrays, doc)
    for change, message in ((drop, "names a stored value 'extra/words' that the archive lacks"),
                            (miscount, f"'extra/words' holds {len(words)} strings; the header says 3")):
        persist.write_model(path, {"extra": {"words": words}}, {})
        _rewrite(path, change)
        with pytest.raises(ValueError, match=r"m\.gridnet is not a readable gridnet model file \(.*"
                           + re.escape(message)):
            persist.read_model(path)


def test_check_writable_names_each_problem(tmp_path):
    import os
    with pytest.raises(ValueError, match=f"^{re.escape(str(tmp_path))} is a folder; give the model a file name$"):
        persist.check_writable(tmp_path)
    missing = tmp_path / "no" / "m.gridnet"
    with pytest.raises(ValueError, match=f"^{re.escape(str(missing))}: no such folder "
                       f"{re.escape(str(tmp_path / 'no'))}$"):
        persist.check_writable(missing)
    if os.geteuid() != 0:         # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ValueError, match=r"m\.gridnet: not writable$"):
            persist.check_writable(locked / "m.gridnet")
    ro = tmp_path / "ro.gridnet"
    ro.write_bytes(b"")
    ro.chmod(0o400)
    if os.geteuid() != 0:
        with pytest.raises(ValueError, match=r"ro\.gridnet: not writable$"):
            persist.check_writable(ro)
    persist.check_writable(tmp_path / "fine.gridnet")         # a new file in a folder: fine


def test_a_failed_write_leaves_the_old_model_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "m.gridnet"
    persist.write_model(path, {"v": 1}, {})
    before = path.read_bytes()

    def broken(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        persist.write_model(path, {"v": 2}, {})
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["m.gridnet"]


def test_the_checksum_message_says_what_it_means(tmp_path):
    path = tmp_path / "m.gridnet"
    persist.write_model(path, {"v": 1}, {"0.W": np.ones(2, np.float32)})

    def weight(arrays):
        arrays["w/0.W"] = arrays["w/0.W"] * 2
    _rewrite(path, weight)
    with pytest.raises(ValueError, match=r"m\.gridnet: the header and weights do not match their "
                       r"recorded checksum \(file altered or corrupt\)$"):
        persist.read_model(path)


def test_a_model_file_gets_the_mode_a_new_file_would(tmp_path):
    import os
    import stat
    for umask, expected in ((0o027, 0o640), (0o000, 0o666)):
        old = os.umask(umask)
        try:
            persist.write_model(tmp_path / "m.gridnet", {}, {})
            (tmp_path / "plain").unlink(missing_ok=True)
            (tmp_path / "plain").write_bytes(b"")
        finally:
            os.umask(old)
        mode = stat.S_IMODE(os.stat(tmp_path / "m.gridnet").st_mode)
        assert mode == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode) == expected
