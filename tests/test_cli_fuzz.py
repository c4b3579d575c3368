"""Random bytes, random CSV files and damaged model files thrown at the command line,
in-process: every outcome is a result (exit 0) or one clear line on stderr with exit 2,
never a traceback, and no input file is changed. Bounded (max_examples, one epoch) to
stay well inside CI's time."""
import csv
import hashlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the test extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gridnet.cli import main  # noqa: E402
from gridnet.persist import read_model  # noqa: E402
from test_cli import write_csv  # noqa: E402

SETTINGS = settings(max_examples=int(os.environ.get("GRIDNET_FUZZ_EXAMPLES", 25)), deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

cells = st.one_of(
    st.sampled_from(["", "?", "NA", "null", "None", "0", "1", "-3.5", "1e308", "inf", "nan", "a", "b",
                     "x y", "DESC", "<=50K.", "\u00e9t\u00e9", "\x85"]),
    st.integers(-5, 5).map(str),
    st.text(max_size=12),
    st.text(alphabet="ab,\"\n", max_size=6),
    st.just("z" * 5000),                                 # a huge field
)


@st.composite
def csv_files(draw):
    """Bytes of a CSV file: mostly nearly valid (a label column, a text column, rows as
    wide as the header), with odd cells, ragged rows, odd headers and odd encodings."""
    if draw(st.booleans()) or draw(st.booleans()):
        header = ["text", "label"] + draw(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3, unique=True))
    else:
        header = draw(st.lists(st.sampled_from(["text", "label", "a", "b", "", "label "]),
                               min_size=1, max_size=5))
    ncol = len(header)
    nrow = draw(st.integers(0, 16))
    ragged = draw(st.integers(0, 6)) == 0
    rows = []
    for i in range(nrow):
        width = draw(st.integers(max(ncol - 1, 0), ncol + 1)) if ragged else ncol
        row = draw(st.lists(cells, min_size=width, max_size=width))
        if "label" in header and len(row) > header.index("label") and draw(st.booleans()):
            row[header.index("label")] = "ab"[i % 2]          # two classes, mostly
        rows.append(row)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "latin-1", "utf-16", "cp1252"]))
    return buf.getvalue().encode(encoding, errors="replace")


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run(argv, capsys, inputs):
    """main(argv): exit 0, or 2 with exactly one error line; inputs unchanged."""
    before = {p: _digest(p) for p in inputs}
    status = main(argv)                 # an exception here fails the test: a traceback
    err = capsys.readouterr().err.strip()
    assert status in (0, 2), (argv, status, err)
    if status == 2:
        assert len(err.splitlines()) == 1 and err.startswith(f"gridnet {argv[0]}: error:"), err
        assert "Traceback" not in err
    assert {p: _digest(p) for p in inputs} == before
    return status


@SETTINGS
@given(data=csv_files(), command=st.sampled_from([
    ["fit", "{f}", "--modality", "table", "--epochs", "1", "--quiet", "-o", "{o}"],
    ["fit", "{f}", "--modality", "text", "--epochs", "1", "--quiet", "-o", "{o}"],
    ["locality", "{f}", "--quick"],
    ["locality", "{f}", "--target", "label", "--permutations", "2", "--cv", "2"],
]))
def test_random_csv_files(capsys, data, command):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "data.csv")
        Path(path).write_bytes(data)
        argv = [a.format(f=path, o=os.path.join(d, "m.gridnet")) for a in command]
        run(argv, capsys, [path])


@SETTINGS
@given(data=st.binary(max_size=600), command=st.sampled_from(["table", "text", "locality"]))
def test_random_bytes_as_data(capsys, data, command):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "data.csv")
        Path(path).write_bytes(data)
        argv = (["locality", path] if command == "locality" else
                ["fit", path, "--modality", command, "--epochs", "1", "--quiet", "-o", os.path.join(d, "m")])
        run(argv, capsys, [path])


@pytest.fixture(scope="module")
def table_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    rows = [[f"{i % 7}", ["x", "y"][i % 2], f"{(i * 3) % 5}", "a" if i % 3 else "b"] for i in range(30)]
    data = write_csv(d / "t.csv", ["p", "kind", "q", "label"], rows)
    model = d / "m.gridnet"
    assert main(["fit", str(data), "--modality", "table", "-o", str(model), "--epochs", "1", "--quiet"]) == 0
    return model.read_bytes(), data


@SETTINGS
@given(damage=st.one_of(
    st.tuples(st.just("flip"), st.lists(st.integers(0, 10**6), min_size=1, max_size=4)),
    st.tuples(st.just("cut"), st.integers(0, 10**6)),
    st.tuples(st.just("random"), st.binary(max_size=400))),
    command=st.sampled_from(["predict", "evaluate"]))
def test_damaged_model_files(capsys, table_model, damage, command):
    good, data = table_model
    kind, arg = damage
    if kind == "flip":
        raw = bytearray(good)
        for k in arg:
            raw[k % len(raw)] ^= 0x5A
        raw = bytes(raw)
    elif kind == "cut":
        raw = good[:arg % len(good)]
    else:
        raw = arg
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "m.gridnet")
        Path(model).write_bytes(raw)
        status = run([command, model, str(data)], capsys, [model, str(data)])
        if status != 2:
            # read at all: then what it read is the good model's (a flipped byte outside
            # the checksummed content, such as a zip entry's timestamp, changes nothing)
            assert kind == "flip" or raw == good
            good_path = os.path.join(d, "good.gridnet")
            Path(good_path).write_bytes(good)
            (doc, weights), (ref, ref_weights) = read_model(model), read_model(good_path)
            assert doc == ref and weights.keys() == ref_weights.keys()
            for k in weights:
                np.testing.assert_array_equal(weights[k], ref_weights[k])


@SETTINGS
@given(data=csv_files())
def test_random_csv_files_against_a_model(capsys, table_model, data):
    good, _ = table_model
    with tempfile.TemporaryDirectory() as d:
        model, path = os.path.join(d, "m.gridnet"), os.path.join(d, "data.csv")
        Path(model).write_bytes(good)
        Path(path).write_bytes(data)
        for command in ("predict", "evaluate"):
            run([command, model, path], capsys, [model, path])
