"""The command line's looks inside (issue 15): explain, evaluate --plot and
predict --windows."""
import csv

import numpy as np
import pytest
import soundfile as sf

from gridnet.cli import main

from test_cli import tone_folder, write_csv

pytest.importorskip("matplotlib", reason="the picture tests need matplotlib (the test extra)")


@pytest.fixture(scope="module")
def audio_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    data = tone_folder(root / "clips", n=10)
    model = root / "m.gridnet"
    assert main(["fit", str(data), "--modality", "audio", "-o", str(model), "--epochs", "8",
                 "--no-early-stopping", "--quiet"]) == 0
    return model, data


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    rng = np.random.default_rng(0)
    common = ["the", "a", "of", "and", "to", "is", "it", "was"]
    rows = []
    for i in range(120):
        label, key = [("pos", "superb"), ("neg", "dreadful")][i % 2]
        words = list(rng.choice(common, 6))
        words.insert(int(rng.integers(0, 7)), key)
        rows.append([" ".join(words), label])
    path = write_csv(root / "t.csv", ["text", "label"], rows)
    model = root / "t.gridnet"
    assert main(["fit", str(path), "--modality", "text", "-o", str(model), "--epochs", "6",
                 "--no-early-stopping", "--quiet"]) == 0
    return model, path


def _png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explain_audio_writes_a_picture_per_input(audio_model, tmp_path, capsys):
    model, data = audio_model
    capsys.readouterr()
    files = [str(data / "low" / "0.wav"), str(data / "high" / "1.wav")]
    assert main(["explain", str(model), *files, "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "top cells: t=" in out and " Hz " in out
    assert out.splitlines()[0].split("\t")[1] == "low"
    pngs = sorted((tmp_path / "out").glob("*.png"))
    assert [p.name for p in pngs] == ["0.png", "1.png"] and all(_png(p) for p in pngs)


def test_explain_text_names_the_key_words(text_model, tmp_path, capsys):
    model, _ = text_model
    capsys.readouterr()
    assert main(["explain", str(model), "it was the superb one", "a dreadful one it was",
                 "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out.splitlines()
    words = [ln for ln in out if ln.strip().startswith("top words:")]
    grams = [ln for ln in out if ln.strip().startswith("n-grams:")]
    assert words[0].split(":", 1)[1].strip().startswith("'superb'")
    assert words[1].split(":", 1)[1].strip().startswith("'dreadful'")
    assert "superb" in grams[0].split(",")[0] and "dreadful" in grams[1].split(",")[0]
    assert len(list((tmp_path / "out").glob("sentence-*.png"))) == 2


def test_explain_errors(text_model, tmp_path, capsys):
    model, _ = text_model
    assert main(["explain", str(model), "x", "--target", "maybe", "-o", str(tmp_path)]) == 2
    assert "--target 'maybe' is not a class of the model" in capsys.readouterr().err
    f = tmp_path / "file"
    f.write_text("")
    assert main(["explain", str(model), "x", "-o", str(f)]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_evaluate_plot(audio_model, tmp_path, capsys):
    model, data = audio_model
    out = tmp_path / "eval.png"
    assert main(["evaluate", str(model), str(data), "--plot", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out and _png(out)


def test_plot_history_marks_the_kept_epoch():
    from sklearn.datasets import load_digits

    import gridnet
    d = load_digits()
    clf = gridnet.GridNetClassifier(max_epochs=6, random_state=0).fit(d.images[:300] / 16, d.target[:300])
    ax = gridnet.plot_history(clf)
    labels = [line.get_label() for line in ax.get_lines()]
    kept = clf.best_epoch_
    assert clf.history_[kept - 1]["val_score"] == clf.best_validation_score_
    assert labels[:2] == ["training loss", "validation loss"] and f"kept: epoch {kept}" in labels
    assert list(ax.get_lines()[0].get_ydata()) == [h["loss"] for h in clf.history_]
    disp = gridnet.plot_confusion_matrix(d.target[:50], clf.predict(d.images[:50] / 16))
    assert disp.confusion_matrix.sum() == 50
    with pytest.raises(ValueError, match="no training history"):
        gridnet.plot_history(gridnet.GridNetClassifier())


def test_predict_windows_timeline_and_csv(audio_model, tmp_path, capsys):
    model, data = audio_model
    rng = np.random.default_rng(9)
    parts = [np.zeros(8000, np.float32)]
    for freq in (300, 2000, 300):
        t = np.arange(3600) / 8000
        parts += [0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32), np.zeros(8000, np.float32)]
    y = np.concatenate(parts) + 0.002 * rng.standard_normal(sum(map(len, parts)))
    long = tmp_path / "long.wav"
    sf.write(long, y.astype(np.float32), 8000)
    table = tmp_path / "timeline.csv"
    capsys.readouterr()
    assert main(["predict", str(model), str(long), "--windows", "--hop", "0.1",
                 "--csv", str(table)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "start\tend\tlabel\tprobability\tfile"
    rows = list(csv.DictReader(table.open()))
    assert list(rows[0]) == ["start", "end", "label", "probability"]
    assert len(rows) == len(lines) - 1
    starts = [float(r["start"]) for r in rows]
    assert starts[0] == 0.0 and np.allclose(np.diff(starts)[:-1], 0.096)
    mid = [r["label"] for r in rows if float(r["start"]) <= 2.5 <= float(r["end"])]
    assert max(set(mid), key=mid.count) == "high"


@pytest.mark.parametrize("args, message", [
    (["--hop", "0.2"], "--hop and --csv go with --windows"),
    (["--windows", "--hop", "-1"], "hop must be a positive"),
])
def test_predict_windows_errors(audio_model, tmp_path, capsys, args, message):
    model, data = audio_model
    assert main(["predict", str(model), str(data / "low" / "0.wav"), *args]) == 2
    assert message in capsys.readouterr().err


def test_windows_need_an_audio_model(text_model, capsys):
    model, _ = text_model
    assert main(["predict", str(model), "hello", "--windows"]) == 2
    assert "--windows slides over audio recordings; this is a text model" in capsys.readouterr().err


def test_without_matplotlib_the_message_says_how_to_install_it(text_model, tmp_path, capsys,
                                                               monkeypatch):
    import sys
    model, path = text_model
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # as if not installed
    monkeypatch.delitem(sys.modules, "matplotlib.pyplot", raising=False)
    assert main(["explain", str(model), "x", "-o", str(tmp_path / "o")]) == 2
    assert "plotting needs matplotlib, which is not installed: pip install matplotlib" in \
        capsys.readouterr().err
    assert main(["evaluate", str(model), str(path), "--plot", str(tmp_path / "e.png")]) == 2
    assert "pip install matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "e.png").exists()
