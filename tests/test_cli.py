"""The gridnet command line: locality, demo and errors (fit/predict/evaluate below)."""
import json

import numpy as np
import pytest

import gridnet
from gridnet.cli import main


def write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")
    return path


@pytest.fixture
def wave_csv(tmp_path):
    rng = np.random.default_rng(0)
    n, f = 300, 24
    y = rng.integers(0, 2, n)
    t = np.linspace(0, 1, f)
    # in strong noise: a CNN averages neighbouring steps, an order-free model cannot
    X = np.sin(2 * np.pi * (2 + 2 * y)[:, None] * t + rng.uniform(0, 6, (n, 1))) + rng.standard_normal((n, f))
    rows = [[f"{v:.4f}" for v in X[i]] + ["high" if y[i] else "low"] for i in range(n)]
    rows[5][-1] = ""                         # a missing target
    rows[7][3] = "?"                         # a missing value
    return write_csv(tmp_path / "waves.csv", [f"t{i}" for i in range(f)] + ["label"], rows)


def test_locality_report_and_json(wave_csv, capsys):
    assert main(["locality", str(wave_csv), "--target", "label", "--permutations", "19"]) == 0
    out = capsys.readouterr().out
    assert "Verdict: LOCAL" in out
    assert "1 row with a missing label (empty, NA, N/A, ?, null or None) dropped (line 7)" in out
    assert "column 't3': 1 missing values set to the median" in out
    assert main(["locality", str(wave_csv), "--quick", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    # without labels the statistic decides alone: the waves' neighbouring steps are alike
    assert d["model"] is None and d["verdict"] == "local"
    assert d["statistic"]["p_value"] <= 0.05 and d["statistic"]["observed"] > d["statistic"]["null_mean"]
    assert d["columns"][:2] == ["t0", "t1"] and "label=high" in d["columns"]


def test_categorical_columns_are_encoded_in_place(tmp_path, capsys):
    rows = [[i, ["a", "b", "c"][i % 3], i * 2.0, i % 2] for i in range(30)]
    path = write_csv(tmp_path / "cat.csv", ["x", "kind", "z", "y"], rows)
    assert main(["locality", str(path), "--target", "y", "--quick", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["columns"] == ["x", "kind=a", "kind=b", "kind=c", "z"]


def test_locality_reorder_measures_the_similarity_order(tmp_path, capsys):
    """Waves whose time steps were put in a random order: not local as given;
    --reorder measures the columns reordered by similarity (neighbouring time steps
    correlate, so the order it finds is close to time's)."""
    rng = np.random.default_rng(3)
    n, f = 400, 24
    y = rng.integers(0, 2, n)
    t = np.linspace(0, 1, f)
    X = np.sin(2 * np.pi * (2 + 2 * y)[:, None] * t + rng.uniform(0, 6, (n, 1)))
    X = (X + rng.standard_normal((n, f)))[:, rng.permutation(f)]
    rows = [[f"{v:.4f}" for v in X[i]] + [int(y[i])] for i in range(n)]
    path = write_csv(tmp_path / "mixed.csv", [f"c{i}" for i in range(f)] + ["y"], rows)
    assert main(["locality", str(path), "--target", "y", "--reorder", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["verdict"] != "local"
    re = d["reordered"]
    assert sorted(re["columns"]) == sorted(d["columns"]) and re["columns"] != d["columns"]
    assert re["settings"]["order"] is not None and re["verdict"] == "local"
    assert re["model"]["gain"] > d["model"]["gain"]
    assert main(["locality", str(path), "--target", "y", "--reorder"]) == 0
    out = capsys.readouterr().out
    assert "--reorder: the same check on the columns reordered by similarity (c" in out
    assert out.count("Verdict:") == 2


@pytest.mark.parametrize("make,args,message", [
    (None, ["--target", "y"], "no such file"),
    ("ok", ["--reorder"], "--reorder needs --target"),
    ("ok", ["--target", "label"], "no target column 'label'"),
    ("text", ["--target", "y"], "column 'name' is not numeric and has 60 distinct values"),
    ("narrow", ["--target", "y"], "1 feature column"),
])
def test_locality_errors_are_one_line(tmp_path, capsys, make, args, message):
    path = tmp_path / "t.csv"
    if make == "ok":
        write_csv(path, ["a", "b", "c", "y"], [[1, 2, 3, 0], [2, 3, 4, 1]])
    elif make == "text":
        write_csv(path, ["a", "name", "c", "y"], [[i, f"person{i}", i, i % 2] for i in range(60)])
    elif make == "narrow":
        write_csv(path, ["a", "y"], [[1, 0], [2, 1]])
    assert main(["locality", str(path)] + args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("gridnet locality: error:")


# -- fit / predict / evaluate ---------------------------------------------------------------
def tone_folder(root, n=8):
    import soundfile as sf
    rng = np.random.default_rng(0)
    for label, freq in (("low", 300), ("high", 2000)):
        (root / label).mkdir(parents=True)
        for i in range(n):
            t = np.arange(int(8000 * rng.uniform(0.3, 0.5))) / 8000
            y = 0.5 * np.sin(2 * np.pi * freq * rng.uniform(0.9, 1.1) * t) + 0.01 * rng.standard_normal(len(t))
            sf.write(root / label / f"{i}.wav", y.astype(np.float32), 8000)
    return root


def test_audio_fit_predict_evaluate(tmp_path, capsys):
    data = tone_folder(tmp_path / "clips")
    model = tmp_path / "m.gridnet"
    assert main(["fit", str(data), "--modality", "audio", "-o", str(model), "--epochs", "8",
                 "--sr", "8000", "--n-mels", "32", "--quiet"]) == 0
    assert "saved" in capsys.readouterr().out
    assert main(["predict", str(model), str(data / "low" / "0.wav"), str(data / "high" / "1.wav")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split("\t")[0] for ln in lines] == ["low", "high"]
    assert all(0 <= float(ln.split("\t")[1]) <= 1 for ln in lines)
    assert main(["evaluate", str(model), str(data)]) == 0
    out = capsys.readouterr().out
    assert "accuracy: 1.0000 (16 samples)" in out and "confusion matrix" in out
    # the calibration error of the model's own probabilities on these clips
    import gridnet
    from gridnet.calibration import calibration_error
    pipe = gridnet.load(model)
    files = sorted((data / "low").glob("*.wav")) + sorted((data / "high").glob("*.wav"))
    truth = [list(pipe.classes_).index(f.parent.name) for f in files]
    ece = calibration_error(truth, pipe.predict_proba([str(f) for f in files]))
    assert f"calibration error: {ece:.4f} (top label, 15 bins of the top probability)" in out


def test_text_and_table_models(tmp_path, capsys):
    rng = np.random.default_rng(0)
    good = ["great fun film", "a lovely story", "wonderful acting", "I loved it", "superb and moving"]
    bad = ["boring and slow", "a dull mess", "awful acting", "I hated it", "tedious and flat"]
    rows = [[s, "pos"] for s in good * 4] + [[s, "neg"] for s in bad * 4]
    text_csv = write_csv(tmp_path / "t.csv", ["text", "label"], rows)
    model = tmp_path / "t.gridnet"
    assert main(["fit", str(text_csv), "--modality", "text", "-o", str(model), "--epochs", "15",
                 "--positions", "5", "--quiet"]) == 0
    clf = gridnet.load(model)[-1]
    epochs = " and ".join(str(len(h)) for h in clf.histories_)
    linear = f" and a TF-IDF member at share {clf.linear_share_:.2f}" if clf.linear_share_ else ""
    assert f"2 networks of {epochs} epochs{linear} in" in capsys.readouterr().out    # the text preset's
    assert main(["predict", str(model), "a lovely film", "boring mess"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert [ln.split("\t")[0] for ln in out[-2:]] == ["pos", "neg"]
    # a table: two informative numeric columns and a category
    X = rng.standard_normal((80, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    rows = [[f"{a:.3f}", f"{b:.3f}", ["x", "y"][i % 2], lab] for i, ((a, b), lab) in enumerate(zip(X, y))]
    table = write_csv(tmp_path / "tab.csv", ["a", "b", "kind", "label"], rows)
    model = tmp_path / "tab.gridnet"
    assert main(["fit", str(table), "--modality", "table", "-o", str(model), "--epochs", "30",
                 "--no-early-stopping", "--quiet"]) == 0      # 80 rows: too few to hold some out
    assert main(["evaluate", str(model), str(table)]) == 0
    acc = float(capsys.readouterr().out.split("accuracy: ")[1].split()[0])
    assert acc > 0.85
    assert main(["predict", str(model), str(table)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 80


def test_text_model_with_starting_vectors(tmp_path, capsys):
    good = ["great fun film", "a lovely story", "wonderful acting", "I loved it", "superb and moving"]
    bad = ["boring and slow", "a dull mess", "awful acting", "I hated it", "tedious and flat"]
    text_csv = write_csv(tmp_path / "t.csv", ["text", "label"],
                         [[s, "pos"] for s in good * 4] + [[s, "neg"] for s in bad * 4])
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["a great and lovely and superb film"] * 20
                                + ["a dull and boring and awful film", ""] * 20), encoding="utf-8")
    vectors = tmp_path / "vec.txt"
    vectors.write_text("great 1 0\nlovely 0.9 0.1\nboring -1 0\ndull -0.9 0\n", encoding="utf-8")
    for flag, path in (("--corpus", corpus), ("--vectors", vectors)):
        model = tmp_path / f"m{flag}.gridnet"
        assert main(["fit", str(text_csv), "--modality", "text", "-o", str(model), "--epochs", "15",
                     "--positions", "5", "--quiet", flag, str(path)]) == 0
        assert f"word vectors started from {flag} for" in capsys.readouterr().out
        # the model file keeps neither the corpus nor the starting vectors
        with np.load(model) as data:
            doc = json.loads(str(data["__gridnet__"][()]))
        state = doc["extra"]["adapter"]
        assert state["params"]["corpus"] is None and state["params"]["embedding"] is None
        assert "embedding_" not in state["fitted"]
        assert main(["predict", str(model), "a lovely film", "boring mess"]) == 0
        out = capsys.readouterr().out.strip().splitlines()
        assert [ln.split("\t")[0] for ln in out[-2:]] == ["pos", "neg"]
    args = ["fit", str(text_csv), "--modality", "text", "-o", str(tmp_path / "x.gridnet")]
    for extra, message in ((["--corpus", str(corpus), "--vectors", str(vectors)], "not both"),
                           (["--corpus", str(tmp_path / "none.txt")], "no such corpus file"),
                           (["--vectors", str(tmp_path / "none.txt")], "no such word-vector file")):
        assert main(args + extra) == 2
        assert message in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    assert main(args + ["--corpus", str(tmp_path / "empty.txt")]) == 2
    assert "holds no sentences" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly(tmp_path):
    import subprocess
    import sys
    rows = [["good fun", "pos"], ["bad mess", "neg"]] * 5
    model = tmp_path / "t.gridnet"
    assert main(["fit", str(write_csv(tmp_path / "t.csv", ["text", "label"], rows)), "--modality",
                 "text", "-o", str(model), "--epochs", "1", "--positions", "5", "--quiet"]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "gridnet", "predict", str(model)] + ["good fun"] * 50,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()             # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize("setup,args,message", [
    ("none", ["fit", "{d}/missing", "--modality", "audio"], "no such folder"),
    ("empty_class", ["fit", "{d}/clips", "--modality", "audio"], "class folder 'b' has no audio files"),
    ("bad_audio", ["fit", "{d}/clips", "--modality", "audio", "--sr", "8000"], "bad.wav: cannot read audio"),
    ("none", ["fit", "{d}", "--modality", "smell"], "unknown modality 'smell'"),
    ("text", ["fit", "{d}/t.csv", "--modality", "text", "--positions", "3"], "tallest filter spans 5"),
    ("none", ["predict", "{d}/missing.gridnet", "x"], "no such model file"),
    ("text", ["fit", "{d}/t.csv", "--modality", "text", "--text-column", "sentence"], "no text column 'sentence'"),
])
def test_fit_predict_errors_are_one_line(tmp_path, capsys, setup, args, message):
    if setup in ("empty_class", "bad_audio"):
        tone_folder(tmp_path / "clips", n=2)
        (tmp_path / "clips" / "b").mkdir()
        if setup == "bad_audio":
            (tmp_path / "clips" / "b" / "bad.wav").write_bytes(b"not audio at all" * 10)
    if setup == "text":
        write_csv(tmp_path / "t.csv", ["text", "label"], [["hi there", "a"], ["bye now", "b"]])
    argv = [a.format(d=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("modality", ["audio", "text", "image", "table"])
def test_fit_without_options_builds_the_library_defaults(modality):
    # one source of truth: no option given, the adapter is the library's own default
    import adapters
    from gridnet.cli import build_parser
    from gridnet.cli.data import make_adapter
    args = build_parser().parse_args(["fit", "data", "--modality", modality])
    cls = {"audio": adapters.AudioAdapter, "text": adapters.TextAdapter,
           "image": adapters.ImageAdapter, "table": adapters.TabularAdapter}[modality]
    assert make_adapter(args, modality).get_params() == cls().get_params()


@pytest.mark.parametrize("modality, option, param, value", [
    ("text", "--lowercase", "lowercase", True), ("text", "--no-lowercase", "lowercase", False),
    ("table", "--order=similarity", "order", "similarity"), ("table", "--order=as_is", "order", "as_is")])
def test_adapter_options_reach_the_adapter(modality, option, param, value):
    from gridnet.cli import build_parser
    from gridnet.cli.data import make_adapter
    args = build_parser().parse_args(["fit", "data", "--modality", modality, option])
    assert make_adapter(args, modality).get_params()[param] == value


def test_a_lowercased_text_model_lowercases_what_it_predicts(tmp_path, capsys):
    rows = [["Good film", "pos"], ["GOOD plot", "pos"], ["bad film", "neg"], ["BAD plot", "neg"]] * 5
    data = write_csv(tmp_path / "t.csv", ["text", "label"], rows)
    model = tmp_path / "m.gridnet"
    assert main(["fit", str(data), "--modality", "text", "-o", str(model), "--epochs", "1",
                 "--positions", "5", "--lowercase", "--quiet"]) == 0
    from gridnet.cli.inputs import load_model
    _, _, adapter = load_model(model)
    assert adapter.lowercase is True
    # the saved adapter reads "GOOD" and "good" as one word, as it did in fit
    grids = adapter.transform(["GOOD film", "good film"])
    np.testing.assert_array_equal(np.asarray(grids[0]), np.asarray(grids[1]))


def test_every_adapter_option_is_known_with_its_modality():
    # the help says which modality an option shapes ("audio: ..."); check_options must agree
    from gridnet.cli import build_parser
    from gridnet.cli.data import ADAPTER_OPTIONS
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for action in sub.choices["fit"]._actions:
        kind = (action.help or "").split(":")[0]
        if kind in ("audio", "text", "image", "table") and action.default is None:
            assert ADAPTER_OPTIONS.get(action.dest) == kind, action.dest


@pytest.mark.parametrize("args, named", [
    (["--modality", "text", "--sr", "8000"], "--sr (audio)"),
    (["--modality", "audio", "--lowercase"], "--lowercase (text)"),
    (["--modality", "audio", "--no-lowercase", "--order", "as_is"], "--lowercase (text), --order (table)"),
    (["--modality", "table", "--positions", "5"], "--positions (text)"),
    (["--modality", "image", "--frames", "10"], "--frames (audio)")])
def test_an_option_of_another_modality_is_an_error_not_ignored(tmp_path, capsys, args, named):
    model = tmp_path / "m.gridnet"
    assert main(["fit", str(tmp_path), "-o", str(model), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert named in err and "not apply to --modality" in err and len(err.splitlines()) == 1
    assert not model.exists()


def test_locality_time_budget_is_passed_on_and_checked(wave_csv, capsys):
    assert main(["locality", str(wave_csv), "--target", "label", "--time-budget", "0",
                 "--json"]) == 0
    model = json.loads(capsys.readouterr().out)["model"]
    assert model["sequential"]["time_budget"] == 0.0 and model["n_permutations"] == 19
    assert main(["locality", str(wave_csv), "--target", "label", "--time-budget", "-1"]) == 2
    assert ("gridnet locality: error: --time-budget must be a number of seconds >= 0; got -1"
            in capsys.readouterr().err)


def test_evaluate_lists_the_most_frequent_confusions_of_many_classes(tmp_path, capsys):
    """Past 20 classes the confusion matrix is too wide for a terminal: evaluate lists
    its largest off-diagonal cells instead, largest first, as scikit-learn counts them."""
    from sklearn.metrics import confusion_matrix
    from gridnet.cli.commands import MATRIX_CLASSES
    rng = np.random.default_rng(0)
    words = [f"w{k}" for k in range(30)]
    rows = [[" ".join(rng.choice(words, 5)) + f" topic{k % 25}", f"c{k % 25:02d}"] for k in range(500)]
    data = write_csv(tmp_path / "many.csv", ["text", "label"], rows)
    model = tmp_path / "many.gridnet"
    assert main(["fit", str(data), "--modality", "text", "-o", str(model), "--epochs", "1",
                 "--vectors", "none", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model), str(data)]) == 0
    out = capsys.readouterr().out
    assert "confusion matrix (rows" not in out and 25 > MATRIX_CLASSES
    listed = out.split("most frequent confusions")[1].strip().splitlines()[1:]
    pred = gridnet.load(model).predict([r[0] for r in rows])
    labels = sorted({r[1] for r in rows})
    cm = confusion_matrix([r[1] for r in rows], pred, labels=labels)
    np.fill_diagonal(cm, 0)
    counts = [int(line.rsplit(": ", 1)[1]) for line in listed]
    assert 0 < len(listed) <= MATRIX_CLASSES and counts == sorted(cm.ravel(), reverse=True)[:len(listed)]
    for line, n in zip(listed, counts):
        true, predicted = line.rsplit(": ", 1)[0].strip().split(" -> ")
        assert cm[labels.index(true), labels.index(predicted)] == n
