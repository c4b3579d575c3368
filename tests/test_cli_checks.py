"""The command line never gives a silently wrong answer (issue 13): labels compared
whole, inputs of the wrong kind refused, missing labels dropped and named, the output
checked before training and written atomically, the whole model header checksummed,
the right clip named, clear messages, progress only on a terminal, help for every
option. Each case failed on 7dcec2e."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import gridnet
from gridnet import GridNetClassifier, persist
from gridnet.cli import build_parser, main
from test_cli import tone_folder, write_csv

FORMAT1 = Path(__file__).resolve().parent / "data" / "format1"


def one_error_line(capsys_or_fd, command):
    err = capsys_or_fd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"gridnet {command}: error:"), err
    return err


@pytest.fixture(scope="module")
def income_model(tmp_path_factory):
    """A table model trained on labels "<=50K" / ">50K", as adult's train.csv has them."""
    d = tmp_path_factory.mktemp("income")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 2))
    lab = np.where(X[:, 0] + X[:, 1] > 0, ">50K", "<=50K")
    rows = [[f"{a:.3f}", ["x", "y"][i % 2], f"{b:.3f}", v] for i, ((a, b), v) in enumerate(zip(X, lab))]
    train = write_csv(d / "train.csv", ["a", "kind", "b", "income"], rows)
    model = d / "m.gridnet"
    assert main(["fit", str(train), "--modality", "table", "--label-column", "income",
                 "-o", str(model), "--epochs", "20", "--quiet"]) == 0
    # adult's test.csv: the same labels with a trailing "."
    test = write_csv(d / "test.csv", ["a", "kind", "b", "income"], [r[:3] + [r[3] + "."] for r in rows])
    mixed = write_csv(d / "mixed.csv", ["a", "kind", "b", "income"],
                      [r[:3] + [r[3] + ("." if i % 4 == 0 else "")] for i, r in enumerate(rows)])
    return model, train, test, mixed


# 1. labels are compared whole --------------------------------------------------------------
def test_evaluate_reports_labels_the_model_does_not_know(income_model, capsys):
    model, train, test, mixed = income_model
    capsys.readouterr()
    assert main(["evaluate", str(model), str(test)]) == 2
    err = one_error_line(capsys, "evaluate")
    assert "120 of 120 samples have labels the model does not know ('<=50K.', '>50K.')" in err
    assert "the model knows '<=50K', '>50K'" in err and "--ignore-unknown" in err
    assert main(["evaluate", str(model), str(test), "--ignore-unknown"]) == 2
    assert "no sample is left to score" in one_error_line(capsys, "evaluate")


def test_ignore_unknown_scores_the_known_rows_and_says_how_many_it_left_out(income_model, capsys):
    model, train, test, mixed = income_model
    capsys.readouterr()
    assert main(["evaluate", str(model), str(mixed), "--ignore-unknown"]) == 0
    out = capsys.readouterr().out
    assert "30 of 120 samples have labels the model does not know" in out and "left out (90 samples scored)" in out
    assert "(90 samples)" in out
    assert main(["evaluate", str(model), str(train)]) == 0          # the labels it knows
    assert "(120 samples)" in capsys.readouterr().out


def test_audio_folders_with_other_names_do_not_score(tmp_path, capsys):
    data = tone_folder(tmp_path / "clips", n=4)
    model = tmp_path / "a.gridnet"
    assert main(["fit", str(data), "--modality", "audio", "-o", str(model), "--epochs", "2",
                 "--sr", "8000", "--n-mels", "16", "--quiet"]) == 0
    for c in ("low", "high"):
        shutil.copytree(data / c, tmp_path / "renamed" / f"{c}_old")
    capsys.readouterr()
    assert main(["evaluate", str(model), str(tmp_path / "renamed")]) == 2
    assert "labels the model does not know ('high_old', 'low_old')" in one_error_line(capsys, "evaluate")


def test_a_longer_label_is_not_cut_to_a_known_one(tmp_path, capsys):
    rows = [["what is it", "DESC"], ["who is he", "HUM"]] * 10
    train = write_csv(tmp_path / "q.csv", ["text", "label"], rows)
    model = tmp_path / "q.gridnet"
    assert main(["fit", str(train), "--modality", "text", "-o", str(model), "--epochs", "1",
                 "--positions", "5", "--quiet"]) == 0
    test = write_csv(tmp_path / "qt.csv", ["text", "label"], [["what is it", "DESCRIPTION"], ["who is he", "HUM"]])
    capsys.readouterr()
    assert main(["evaluate", str(model), str(test)]) == 2
    assert "1 of 2 samples have labels the model does not know ('DESCRIPTION')" in one_error_line(capsys, "evaluate")


# 2. inputs of the wrong kind -----------------------------------------------------------------
@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("text")
    good = ["great fun film", "a lovely story", "wonderful acting"]
    bad = ["boring and slow", "a dull mess", "awful acting"]
    train = write_csv(d / "t.csv", ["text", "label"], [[s, "pos"] for s in good * 4] + [[s, "neg"] for s in bad * 4])
    model = d / "t.gridnet"
    assert main(["fit", str(train), "--modality", "text", "-o", str(model), "--epochs", "3",
                 "--positions", "5", "--quiet"]) == 0
    return model


def test_a_text_model_refuses_audio_and_image_files(text_model, tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(800, np.float32), 8000)
    png = tmp_path / "p.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    capsys.readouterr()
    assert main(["predict", str(text_model), str(wav)]) == 2
    err = one_error_line(capsys, "predict")
    assert "a.wav: an audio file (WAV); this is a text model, which classifies sentences" in err
    assert "--file FILE" in err
    assert main(["predict", str(text_model), "a lovely film", str(png)]) == 2
    assert "p.png: an image file (PNG)" in one_error_line(capsys, "predict")
    sentences = tmp_path / "s.txt"
    sentences.write_text("a lovely film\nboring mess\n")
    assert main(["predict", str(text_model), "--file", str(sentences)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert [ln.split("\t")[2] for ln in out] == ["a lovely film", "boring mess"]


def test_a_text_model_never_classifies_a_file_name_as_a_sentence(text_model, tmp_path, capsys):
    """An existing file named where a sentence goes was classified as the sentence
    "/tmp/q.txt" (804b79b); now it is an error, and a CSV file's text column is read."""
    notes = tmp_path / "notes.txt"
    notes.write_text("a lovely film\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    capsys.readouterr()
    for given in ([str(notes)], ["a lovely film", str(notes)]):
        assert main(["predict", str(text_model), *given]) == 2
        err = one_error_line(capsys, "predict")
        assert f"{notes} is a file, not a sentence" in err and f"--file {notes}" in err
    assert main(["explain", str(text_model), str(notes), "-o", str(tmp_path / "ex")]) == 2
    assert f"{notes} is a file, not a sentence" in one_error_line(capsys, "explain")
    assert main(["predict", str(text_model), str(empty)]) == 2
    assert "needs a header row" in one_error_line(capsys, "predict")
    # a CSV file, as an input or with --file: its text column, rows named by their lines
    rows = write_csv(tmp_path / "rows.csv", ["label", "text"],
                     [["pos", "a lovely story"], ["neg", "a dull mess"], ["neg", "awful acting"]])
    lines = []
    for given in ([str(rows)], ["--file", str(rows)]):
        assert main(["predict", str(text_model), *given]) == 0
        out = capsys.readouterr().out.strip().splitlines()
        assert [ln.split("\t")[2] for ln in out] == ["line 2", "line 3", "line 4"]
        lines.append(out)
    assert lines[0] == lines[1]
    assert main(["predict", str(text_model), "a lovely story", "a dull mess", "awful acting"]) == 0
    alone = capsys.readouterr().out.strip().splitlines()
    assert [ln.split("\t")[:2] for ln in alone] == [ln.split("\t")[:2] for ln in lines[0]]
    assert main(["predict", str(text_model), "a lovely film", "--file", str(rows)]) == 2
    assert "give it or sentences, not both" in one_error_line(capsys, "predict")
    other = write_csv(tmp_path / "other.csv", ["review", "label"], [["a dull mess", "neg"]])
    assert main(["predict", str(text_model), str(other)]) == 2
    err = one_error_line(capsys, "predict")
    assert "no text column 'text'" in err and "review, label" in err
    blank = write_csv(tmp_path / "blank.csv", ["text", "label"], [["a dull mess", "neg"], ["", "pos"]])
    assert main(["predict", str(text_model), str(blank)]) == 2
    assert "line 3: the text column 'text' is empty" in one_error_line(capsys, "predict")


def test_an_audio_model_refuses_a_file_that_is_not_audio(tmp_path, capsys):
    data = tone_folder(tmp_path / "clips", n=3)
    model = tmp_path / "a.gridnet"
    assert main(["fit", str(data), "--modality", "audio", "-o", str(model), "--epochs", "1",
                 "--sr", "8000", "--n-mels", "16", "--quiet"]) == 0
    notes = tmp_path / "notes.txt"
    notes.write_text("not a sound")
    capsys.readouterr()
    assert main(["predict", str(model), str(notes)]) == 2
    assert "notes.txt: a text file, not an audio file; this is an audio model" in one_error_line(capsys, "predict")
    assert main(["predict", str(model), str(tmp_path)]) == 2
    assert "is a folder; give the audio files themselves" in one_error_line(capsys, "predict")


# 3. missing labels ---------------------------------------------------------------------------
@pytest.mark.parametrize("missing", ["", "NA", "N/A", "?", "null", "None", "na"])
def test_missing_labels_are_dropped_and_named_in_fit_and_evaluate(tmp_path, capsys, missing):
    rows = [[f"{i % 7}", f"{(i * 3) % 5}", "a" if i % 2 else "b"] for i in range(20)]
    rows[3][2] = rows[11][2] = missing
    path = write_csv(tmp_path / "t.csv", ["x", "z", "label"], rows)
    model = tmp_path / "m.gridnet"
    assert main(["fit", str(path), "--modality", "table", "-o", str(model), "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "2 rows with a missing label (empty, NA, N/A, ?, null or None) dropped (lines 5, 13)" in out
    assert "trained on 18 samples, 2 classes" in out
    pipe, _ = gridnet.load(model, return_extra=True)
    assert sorted(pipe[-1].classes_) == ["a", "b"]
    assert main(["evaluate", str(model), str(path)]) == 0
    out = capsys.readouterr().out
    assert "dropped (lines 5, 13)" in out and "(18 samples)" in out


def test_rows_with_an_empty_text_are_dropped_and_named_in_fit_and_evaluate(tmp_path, capsys):
    """An empty text cell was trained on, and scored, as an empty sentence (804b79b)."""
    rows = [[s, lab] for s, lab in [("great fun film", "pos"), ("a dull mess", "neg")] * 6]
    rows[2][0] = ""
    rows[7] = ["", "NA"]          # no label either: dropped for that, named once
    rows[9][0] = ""
    path = write_csv(tmp_path / "t.csv", ["text", "label"], rows)
    model = tmp_path / "t.gridnet"
    assert main(["fit", str(path), "--modality", "text", "-o", str(model), "--epochs", "1",
                 "--positions", "5", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 row with a missing label (empty, NA, N/A, ?, null or None) dropped (line 9)" in out
    assert "2 rows with an empty text column 'text' dropped (lines 4, 11)" in out
    assert "trained on 9 samples" in out
    assert main(["evaluate", str(model), str(path)]) == 0
    out = capsys.readouterr().out
    assert "dropped (lines 4, 11)" in out and "(9 samples)" in out
    blank = write_csv(tmp_path / "b.csv", ["text", "label"], [["", "pos"], ["", "neg"]])
    assert main(["evaluate", str(model), str(blank)]) == 2
    assert "no row has a text" in one_error_line(capsys, "evaluate")


def test_a_python_none_label_is_a_clear_error():
    X = np.random.default_rng(0).standard_normal((6, 1, 4, 4))
    y = np.array(["a", "b", None, "a", "b", "a"], dtype=object)
    with pytest.raises(ValueError, match=r"y has 1 missing labels \(None or NaN\), at samples 2"):
        GridNetClassifier(max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"missing labels \(None or NaN\), at samples 2"):
        gridnet.locality_check(X.reshape(6, -1), y)


# 4. the output path, before training; atomic writes ----------------------------------------
@pytest.mark.parametrize("output,message", [
    ("{d}/no/such/dir/m.gridnet", "no such folder"),
    ("{d}", "is a folder; give the model a file name"),
])
def test_a_bad_output_fails_before_training(tmp_path, capsys, monkeypatch, output, message):
    path = write_csv(tmp_path / "t.csv", ["x", "z", "label"], [[i, i % 3, i % 2] for i in range(20)])
    monkeypatch.setattr(GridNetClassifier, "fit", lambda *a, **k: pytest.fail("trained first"))
    assert main(["fit", str(path), "--modality", "table", "-o", output.format(d=tmp_path), "--quiet"]) == 2
    assert message in one_error_line(capsys, "fit")


def test_a_crash_while_saving_leaves_the_old_model(tmp_path, monkeypatch):
    X = np.random.default_rng(0).standard_normal((20, 1, 4, 4))
    y = np.arange(20) % 2
    clf = GridNetClassifier(max_epochs=1, random_state=0).fit(X, y)
    path = tmp_path / "m.gridnet"
    clf.save(path)
    good = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(persist.np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        clf.save(path)
    assert path.read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["m.gridnet"]


# 5. the whole header under the checksum; version 1 validated ------------------------------
def _rewrite_header(src, dst, change):
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    doc = json.loads(str(arrays["__gridnet__"][()]))
    change(doc)
    arrays["__gridnet__"] = np.array(json.dumps(doc))
    with open(dst, "wb") as fh:
        np.savez(fh, **arrays)


def test_a_changed_setting_is_caught_by_the_checksum(text_model, tmp_path, capsys):
    bad = tmp_path / "bad.gridnet"
    _rewrite_header(text_model, bad, lambda d: d["extra"]["adapter"]["params"].update(max_vocab=7))
    capsys.readouterr()
    assert main(["predict", str(bad), "hello"]) == 2
    err = one_error_line(capsys, "predict")
    assert "the header and weights do not match their recorded checksum" in err
    with np.load(text_model) as data:
        assert json.loads(str(data["__gridnet__"][()]))["version"] == 2


@pytest.mark.parametrize("change,message", [
    (lambda d: d["extra"]["adapter"]["params"].update(colour=3), "unknown parameters ['colour']"),
    (lambda d: d["extra"].pop("modality"), "names no known modality (None"),
    (lambda d: d["extra"].update(adapter=[1, 2]), "unknown adapter 'list'"),
])
def test_version_1_headers_are_validated(tmp_path, capsys, change, message):
    bad = tmp_path / "v1.gridnet"
    _rewrite_header(FORMAT1 / "text.gridnet", bad, change)   # version 1: weights checksum only
    assert main(["predict", str(bad), "hello"]) == 2
    assert message in one_error_line(capsys, "predict")


# 6. the long clip is named ---------------------------------------------------------------------
def test_a_very_long_clip_is_named_not_a_normal_one(tmp_path, capsys):
    for label in ("a", "b"):
        (tmp_path / "clips" / label).mkdir(parents=True)
        for i in range(3):
            sf.write(tmp_path / "clips" / label / f"{i}.wav", 0.3 * np.ones(2400, np.float32), 8000)
    sf.write(tmp_path / "clips" / "a" / "long.wav", 0.3 * np.ones(8000 * 20, np.float32), 8000)
    assert main(["fit", str(tmp_path / "clips"), "--modality", "audio", "--sr", "8000", "--quiet",
                 "-o", str(tmp_path / "m.gridnet")]) == 2
    err = one_error_line(capsys, "fit")
    assert "long.wav: the clip spans" in err and "times the median clip" in err
    assert "set frames" in err and "length_ratio" not in err


# 7. messages ---------------------------------------------------------------------------------
def test_a_text_file_given_as_a_model_is_not_a_model(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello\n")
    assert main(["predict", str(tmp_path / "notes.txt"), "x"]) == 2
    err = one_error_line(capsys, "predict")
    assert "notes.txt is not a readable gridnet model file: not a .npz archive" in err
    assert "pickle" not in err


def test_a_fake_mp3_is_named_and_no_decoder_talks(tmp_path, capfd):
    tone_folder(tmp_path / "clips", n=2)
    (tmp_path / "clips" / "low" / "fake.mp3").write_bytes(b"this is no mp3" * 50)
    assert main(["fit", str(tmp_path / "clips"), "--modality", "audio", "--sr", "8000", "--quiet",
                 "-o", str(tmp_path / "m.gridnet")]) == 2
    err = capfd.readouterr().err
    assert "fake.mp3: cannot read audio: the file holds text, not sound" in err
    assert "mpg123" not in err.lower() and "possibly a pipe" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_a_folder_given_for_text_says_so(tmp_path, capsys):
    assert main(["fit", str(tmp_path), "--modality", "text", "-o", str(tmp_path / "m.gridnet")]) == 2
    assert "is a folder; text and table data come as one CSV" in one_error_line(capsys, "fit")


def test_places_in_a_file_are_lines(income_model, tmp_path, capsys):
    model, train, *_ = income_model
    rows = [["0.1", "x", "0.2", ">50K"], ["0.3", "y", "oops", "<=50K"]]
    bad = write_csv(tmp_path / "bad.csv", ["a", "kind", "b", "income"], rows)
    capsys.readouterr()
    assert main(["evaluate", str(model), str(bad)]) == 2
    err = one_error_line(capsys, "evaluate")
    assert "bad.csv, line 3: column 'b' holds 'oops', which is not a number" in err
    assert main(["predict", str(model), str(train)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith("\tline 2")


# 8. progress -----------------------------------------------------------------------------------
def test_no_progress_bars_when_stderr_is_not_a_terminal(tmp_path, capfd):
    path = write_csv(tmp_path / "t.csv", ["x", "z", "label"], [[i, i % 3, i % 2] for i in range(30)])
    assert main(["fit", str(path), "--modality", "table", "-o", str(tmp_path / "m.gridnet"), "--epochs", "3"]) == 0
    out, err = capfd.readouterr()
    assert err == "" and "saved" in out


def test_one_bar_for_the_whole_fit(capfd):
    X = np.random.default_rng(0).standard_normal((64, 1, 6, 6))
    y = np.arange(64) % 2
    GridNetClassifier(max_epochs=4, early_stopping=False, n_iter_no_change=99, verbose=True,
                      random_state=0).fit(X, y)
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "epoch 4" in err and "256/256" in err, err


def test_the_locality_check_shows_its_progress_when_asked(capfd):
    rng = np.random.default_rng(0)
    X = np.cumsum(rng.standard_normal((60, 8)), axis=1)
    gridnet.locality_check(X, (X[:, 3] > 0).astype(int), n_permutations=3, random_state=0, verbose=True)
    assert "column orders" in capfd.readouterr().err


# 9. help ----------------------------------------------------------------------------------------
def test_every_option_says_what_it_does_and_its_default(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.dest == "help":
                continue
            assert action.help, (name, action.dest)
        text = p.format_help()
        for action in p._actions:
            if action.option_strings and action.default not in (None, False) and action.dest != "help" \
                    and action.default is not __import__("argparse").SUPPRESS:
                assert f"(default: {action.default})" in " ".join(text.split()), (name, action.dest)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"gridnet {gridnet.__version__}"
