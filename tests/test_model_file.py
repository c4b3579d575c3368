"""The model file's one owner (gridnet.model_file): a pipeline saved from Python runs in
the command line, a `gridnet fit` model loads in Python as its pipeline, both predicting
the same; a bare classifier stays a classifier."""
import csv

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import gridnet
from adapters import TabularAdapter, TextAdapter
from gridnet import GridNetClassifier
from gridnet.cli import main

SENTS = ["a good film", "a bad film", "good fun", "bad acting", "a fine cast", "dull mess"] * 4
LABELS = ["pos", "neg"] * 12
TEST = ["a good cast", "bad fun", "dull film"]


def _small(**kw):
    return GridNetClassifier(max_epochs=3, early_stopping=False, random_state=0, **kw)


def test_a_pipeline_saved_from_python_runs_in_gridnet_predict(tmp_path, capsys):
    pipe = make_pipeline(TextAdapter(positions=5, embedding=None), _small()).fit(SENTS, LABELS)
    path = tmp_path / "films.gridnet"
    gridnet.save(pipe, path)
    back = gridnet.load(path)
    assert [type(s).__name__ for s in back] == ["TextAdapter", "GridNetClassifier"]
    np.testing.assert_array_equal(back.predict_proba(TEST), pipe.predict_proba(TEST))
    assert main(["predict", str(path), *TEST]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert [r[0] for r in rows] == list(pipe.predict(TEST))
    np.testing.assert_allclose([float(r[1]) for r in rows], pipe.predict_proba(TEST).max(axis=1),
                               atol=5e-4)


def test_a_gridnet_fit_model_predicts_the_same_from_python(tmp_path, capsys):
    data = tmp_path / "films.csv"
    with open(data, "w", newline="") as fh:
        csv.writer(fh).writerows([["text", "label"], *zip(SENTS, LABELS)])
    path = tmp_path / "films.gridnet"
    assert main(["fit", str(data), "--modality", "text", "--epochs", "3", "--quiet",
                 "--vectors", "none", "--positions", "5", "-o", str(path)]) == 0
    capsys.readouterr()
    model, extra = gridnet.load(path, return_extra=True)
    assert extra["modality"] == "text" and extra["text_column"] == "text"
    assert main(["predict", str(path), *TEST]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert [r[0] for r in rows] == list(model.predict(TEST))


def test_a_bare_classifier_loads_as_one_and_other_pipelines_are_refused(tmp_path):
    X = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = _small().fit(X, y)
    clf.save(tmp_path / "bare.gridnet")
    back = gridnet.load(tmp_path / "bare.gridnet")
    assert isinstance(back, GridNetClassifier)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    with pytest.raises(ValueError, match="one adapter .* and a GridNetClassifier"):
        gridnet.save(make_pipeline(StandardScaler(), _small()).fit(X, y), tmp_path / "x.gridnet")
    with pytest.raises(TypeError, match="got StandardScaler"):
        gridnet.save(StandardScaler().fit(X), tmp_path / "x.gridnet")
    table = make_pipeline(TabularAdapter(), _small()).fit(X, y)
    gridnet.save(table, tmp_path / "table.gridnet")
    _, extra = gridnet.load(tmp_path / "table.gridnet", return_extra=True)
    assert extra["modality"] == "table"
