"""The gridnet command line: locality, demo and errors (fit/predict/evaluate below)."""
import json

import numpy as np
import pytest

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
    X = np.sin(2 * np.pi * (2 + 2 * y)[:, None] * t + rng.uniform(0, 6, (n, 1))) + 0.2 * rng.standard_normal((n, f))
    rows = [[f"{v:.4f}" for v in X[i]] + ["high" if y[i] else "low"] for i in range(n)]
    rows[5][-1] = ""                         # a missing target
    rows[7][3] = "?"                         # a missing value
    return write_csv(tmp_path / "waves.csv", [f"t{i}" for i in range(f)] + ["label"], rows)


def test_locality_report_and_json(wave_csv, capsys):
    assert main(["locality", str(wave_csv), "--target", "label", "--permutations", "19"]) == 0
    out = capsys.readouterr().out
    assert "Verdict: LOCAL" in out
    assert "1 rows with a missing target dropped (lines 7)" in out
    assert "column 't3': 1 missing values set to the median" in out
    assert main(["locality", str(wave_csv), "--quick", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["model"] is None and d["verdict"] in ("local", "not local", "inconclusive")
    assert d["columns"][:2] == ["t0", "t1"] and "label=high" in d["columns"]


def test_categorical_columns_are_encoded_in_place(tmp_path, capsys):
    rows = [[i, ["a", "b", "c"][i % 3], i * 2.0, i % 2] for i in range(30)]
    path = write_csv(tmp_path / "cat.csv", ["x", "kind", "z", "y"], rows)
    assert main(["locality", str(path), "--target", "y", "--quick", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["columns"] == ["x", "kind=a", "kind=b", "kind=c", "z"]


@pytest.mark.parametrize("make,args,message", [
    (None, ["--target", "y"], "no such file"),
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
