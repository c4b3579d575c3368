"""The command line's readers and checks (gridnet/cli/data.py), called directly: what a
user's file becomes, and the exact message for each thing wrong with it."""
from __future__ import annotations

import argparse
import io
import re

import pytest

from gridnet.cli import data
from gridnet.cli.data import CLIError


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def args(**given):
    base = dict(encoding="utf-8", label_column="label", text_column="text", inputs=[], file=None,
                sr=None, n_mels=None, frames=None, n_jobs=None, background=None, size=None, positions=None,
                lowercase=None, corpus=None, vectors=None, order=None, seed=0)
    base.update(given)
    return argparse.Namespace(**base)


def fails(message, fn, *a, **k):
    """``fn`` raises CLIError with exactly ``message``."""
    with pytest.raises(CLIError) as info:
        fn(*a, **k)
    assert str(info.value) == message
    return info.value


def test_lines_names_one_or_several_and_cuts_at_most():
    assert data.lines([7]) == "line 7"
    assert data.lines(iter([7, 19])) == "lines 7, 19"
    assert data.lines(range(1, 11)) == "lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
    assert data.lines(range(1, 12)) == "lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ..."
    assert data.lines([3, 4, 5], most=2) == "lines 3, 4, ..."


def test_read_table_columns_stripped_and_file_lines_counted_by_the_reader(tmp_path):
    path = write(tmp_path, "t.csv", ' a , b \n1, x \n\n  ,  \n"two\nlines",y\n3,z\n')
    header, columns, at = data.read_table(path)
    assert header == ["a", "b"]
    assert columns == [["1", "two\nlines", "3"], ["x", "y", "z"]]
    assert at == [2, 5, 7]            # the blank line, the row of blanks, the quoted newline


def test_read_table_delimiters(tmp_path):
    for name in ("t.tsv", "t.tab"):
        path = write(tmp_path, name, "a\tb\n1,5\t2\n")
        assert data.read_table(path)[1] == [["1,5"], ["2"]]
    path = write(tmp_path, "t.csv", "a;b\n1;2\n")
    assert data.read_table(path, delimiter=";")[:2] == (["a", "b"], [["1"], ["2"]])
    assert data.read_table(path)[:2] == (["a;b"], [["1;2"]])


def test_read_table_errors_name_the_file_and_line(tmp_path):
    fails(f"{tmp_path} is a folder; text and table data come as one CSV (or TSV) file with a "
          "header row (folders of class subfolders are for audio and image)",
          data.read_table, tmp_path)
    fails(f"{tmp_path / 'no.csv'}: no such file", data.read_table, tmp_path / "no.csv")
    path = write(tmp_path, "latin.csv", "a,b\ncafé,1\n", encoding="latin-1")
    fails(f"{path}: not readable as utf-8 (invalid continuation byte at byte 7); pass --encoding",
          data.read_table, path)
    assert data.read_table(path, encoding="latin-1")[1][0] == ["café"]
    fails("unknown --encoding 'klingon'", data.read_table, path, encoding="klingon")
    path = write(tmp_path, "big.csv", "a\n" + "x" * 200_000 + "\n")
    fails(f"{path}: not a readable CSV file (field larger than field limit (131072))",
          data.read_table, path)
    for text in ("a,b\n", "a,b\n\n ,\n", ""):
        path = write(tmp_path, "short.csv", text)
        fails(f"{path}: needs a header row and at least one data row", data.read_table, path)
    path = write(tmp_path, "dup.csv", "\na, b ,b\n1,2,3\n")
    fails(f"{path}, line 2: the column name 'b' appears more than once", data.read_table, path)
    path = write(tmp_path, "ragged.csv", 'a,b\n1,2\n\n"x\ny",3\n4,5,6\n')
    fails(f"{path}, line 6: 3 fields; the header has 2", data.read_table, path)
    path = write(tmp_path, "short_row.csv", "a,b\n1,2\n3\n")
    fails(f"{path}, line 3: 1 fields; the header has 2", data.read_table, path)


def test_missing_labels_named_by_file_line():
    keep, note = data.missing_labels(["x", " NA ", "y", "", "?", "null", "None", "n/a", "z"],
                                     [2, 3, 5, 6, 8, 9, 10, 11, 12])
    assert keep == [0, 2, 8]
    assert note == ("6 rows with a missing label (empty, NA, N/A, ?, null or None) dropped "
                    "(lines 3, 6, 8, 9, 10, 11)")
    assert data.missing_labels(["x", "-"], [2, 3]) == ([0, 1], None)
    assert data.missing_labels(["x", "nan"], [4, 9]) == (
        [0], "1 row with a missing label (empty, NA, N/A, ?, null or None) dropped (line 9)")


def test_csv_dataset_text_drops_rows_without_label_or_text(tmp_path, capsys):
    path = write(tmp_path, "s.csv", 'text,label\n"hello\nthere",x\nfine,\nok,y\n,x\nsure,y\n')
    texts, y, columns, at = data.csv_dataset(args(), path, need_text=True)
    assert (texts, y, columns, at) == (["hello\nthere", "ok", "sure"], ["x", "y", "y"], None,
                                       [2, 5, 7])
    assert capsys.readouterr().out.splitlines() == [
        f"note: {path}: 1 row with a missing label (empty, NA, N/A, ?, null or None) dropped "
        "(line 4)",
        f"note: {path}: 1 row with an empty text column 'text' dropped (line 6)"]
    path = write(tmp_path, "two.csv", "text,label\n,x\n,y\n")
    fails(f"{path}: no row has a text", data.csv_dataset, args(), path, need_text=True)
    assert "2 rows with an empty text column 'text' dropped (lines 2, 3)" in capsys.readouterr().out
    path = write(tmp_path, "none.csv", "text,label\na,NA\nb,\n")
    fails(f"{path}: no row has a label", data.csv_dataset, args(), path, need_text=True)


def test_csv_dataset_table_and_column_errors(tmp_path, capsys):
    path = write(tmp_path, "t.csv", "a,label,b\n1,x,2\n\n3,,4\n5,y,6\n")
    header, y, columns, at = data.csv_dataset(args(), path, need_text=False)
    assert (header, y, columns, at) == (["a", "b"], ["x", "y"], [["1", "5"], ["2", "6"]], [2, 5])
    capsys.readouterr()
    fails(f"{path}: no label column 'kind'; the columns are a, label, b (set --label-column)",
          data.csv_dataset, args(label_column="kind"), path, need_text=False)
    fails(f"{path}: no text column 'text'; the columns are a, label, b (set --text-column)",
          data.csv_dataset, args(), path, need_text=True)
    header, y, columns, at = data.csv_dataset(args(label_column="a"), path, need_text=False)
    assert header == ["label", "b"] and y == ["1", "3", "5"]
    assert "missing label" not in capsys.readouterr().out


def test_load_data_per_modality(tmp_path):
    for c in ("cat", "dog"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        (tmp_path / "imgs" / c / f"{c}1.png").write_bytes(b"")
        (tmp_path / "imgs" / c / f"{c}0.PNG").write_bytes(b"")
        (tmp_path / "imgs" / c / ".hidden.png").write_bytes(b"")
        (tmp_path / "imgs" / c / "notes.txt").write_bytes(b"")
    files, y, at = data.load_data(args(), "image", str(tmp_path / "imgs"))
    assert [f.split("/")[-2:] for f in files] == [["cat", "cat0.PNG"], ["cat", "cat1.png"],
                                                   ["dog", "dog0.PNG"], ["dog", "dog1.png"]]
    assert (y, at) == (["cat", "cat", "dog", "dog"], None)
    fails(f"{tmp_path / 'imgs'}: class folder 'cat' has no audio files "
          f"({', '.join(data.AUDIO_EXT)})", data.load_data, args(), "audio", str(tmp_path / "imgs"))
    path = write(tmp_path, "s.csv", "text,label\nhi,x\n\nho,y\n")
    assert data.load_data(args(), "text", path) == (["hi", "ho"], ["x", "y"], [2, 4])
    path = write(tmp_path, "t.csv", "a,b,label\n1,2,x\n3,4,y\n")
    assert data.load_data(args(), "table", path) == (
        {"a": ["1", "3"], "b": ["2", "4"]}, ["x", "y"], [2, 3])


def test_folder_dataset_errors(tmp_path):
    fails(f"{tmp_path / 'no'}: no such folder", data.folder_dataset, str(tmp_path / "no"),
          (".wav",), "audio")
    path = write(tmp_path, "a.wav", "")
    fails(f"{path}: expected a folder with a subfolder per class of audio files",
          data.folder_dataset, path, (".wav",), "audio")
    (tmp_path / "d" / "one").mkdir(parents=True)
    (tmp_path / "d" / ".git").mkdir()
    fails(f"{tmp_path / 'd'}: found 1 class folder(s); need a subfolder per class, at least 2",
          data.folder_dataset, str(tmp_path / "d"), (".wav",), "audio")


def test_text_rows_and_text_table(tmp_path):
    path = write(tmp_path, "s.csv", 'id,sentence\n1,"a\nb"\n\n2,c\n')
    assert data.text_rows(path, {"text_column": "sentence"}, "utf-8") == (
        ["a\nb", "c"], ["line 2", "line 5"])
    fails(f"{path}: no text column 'text' (the column this model was trained on); the columns "
          "are id, sentence", data.text_rows, path, {}, "utf-8")
    path = write(tmp_path, "e.csv", "text\nx\n\n \ny\n")
    assert data.text_rows(path, {"text_column": None}, "utf-8") == (["x", "y"], ["line 2", "line 5"])
    path = write(tmp_path, "e2.csv", "id,text\n1,x\n2,\n3, \n")
    fails(f"{path}: lines 3, 4: the text column 'text' is empty; there is no sentence to classify",
          data.text_rows, path, {}, "utf-8")
    assert data.text_table([path])
    assert data.text_table([path.replace("e2.csv", "E2.CSV")]) is False   # no such file
    assert not data.text_table([path, path])
    assert not data.text_table([str(tmp_path)])
    assert not data.text_table([write(tmp_path, "s.txt", "hi\n")])


def test_collect_inputs(tmp_path, monkeypatch):
    def read_lines(path, encoding):
        assert encoding == "latin-1"
        return ["from", "file"]
    got = data.collect_inputs(args(inputs=["a"], file="list.txt", encoding="latin-1"), "audio",
                              read_lines)
    assert got == ["a", "from", "file"]
    assert data.collect_inputs(args(file="s.CSV"), "text", read_lines) == ["s.CSV"]
    assert data.collect_inputs(args(file="s.csv", encoding="latin-1"), "audio", read_lines) == [
        "from", "file"]
    fails("--file s.tsv is a CSV file, whose text column is read: give it or sentences, not both",
          data.collect_inputs, args(inputs=["x"], file="s.tsv"), "text", read_lines)
    monkeypatch.setattr("sys.stdin", io.StringIO("one\n\n  \ntwo\r\n"))
    assert data.collect_inputs(args(inputs=["-"]), "text", read_lines) == ["one", "two"]
    assert data.collect_inputs(args(inputs=["-", "x"]), "text", read_lines) == ["-", "x"]
    assert data.collect_inputs(args(), "text", read_lines) == []


def test_given_and_check_options():
    assert data.given(a=None, b=0, c=False, d="") == {"b": 0, "c": False, "d": ""}
    data.check_options(args(sr=8000, n_mels=20), "audio")
    data.check_options(args(vectors="none"), "text")
    fails("--sr (audio) does not apply to --modality text; leave it out",
          data.check_options, args(sr=8000), "text")
    fails("--n-mels (audio), --order (table) do not apply to --modality image; leave them out",
          data.check_options, args(n_mels=20, order="similarity"), "image")
    assert set(data.ADAPTER_OPTIONS.values()) == set(data.MODALITIES)


def test_make_adapter_passes_only_what_was_given():
    from adapters import AudioAdapter, ImageAdapter, TabularAdapter, TextAdapter
    assert data.make_adapter(args(), "audio").get_params() == AudioAdapter().get_params()
    a = data.make_adapter(args(sr=8000, n_mels=20, frames=16, n_jobs=2, background="noise/"), "audio")
    assert (a.sr, a.n_mels, a.frames, a.n_jobs, a.background) == (8000, 20, 16, 2, "noise/")
    assert data.make_adapter(args(), "image").get_params() == ImageAdapter().get_params()
    assert data.make_adapter(args(size=[12, 16]), "image").size == (12, 16)
    assert data.make_adapter(args(), "text").get_params() == TextAdapter().get_params()
    t = data.make_adapter(args(positions=9, lowercase=True, vectors="none"), "text")
    assert (t.positions, t.lowercase, t.embedding) == (9, True, None)
    assert data.make_adapter(args(), "table").get_params() == TabularAdapter().get_params()
    assert data.make_adapter(args(order="similarity"), "table").order == "similarity"


def test_text_start(tmp_path):
    assert data.text_start(args()) == {}
    assert data.text_start(args(vectors="glove")) == {"embedding": "glove"}
    assert data.text_start(args(vectors="none")) == {"embedding": None}
    fails("give --corpus or --vectors, not both", data.text_start, args(vectors="glove",
                                                                           corpus="c.txt"))
    vec = write(tmp_path, "v.txt", "a 1 2\n")
    assert data.text_start(args(vectors=vec, encoding="latin-1")) == {
        "embedding": vec, "encoding": "latin-1"}
    fails(f"{tmp_path / 'no.txt'}: no such word-vector file (or name: glove, none)",
          data.text_start, args(vectors=str(tmp_path / "no.txt")))
    corpus = write(tmp_path, "c.txt", " one two \n\n three \n")
    assert data.text_start(args(corpus=corpus, seed=4)) == {
        "embedding": "svd", "corpus": ["one two", "three"], "random_state": 4}
    fails(f"{tmp_path / 'none.txt'}: no such corpus file", data.text_start,
          args(corpus=str(tmp_path / "none.txt")))
    bad = write(tmp_path, "bad.txt", "caf\xe9\n", encoding="latin-1")
    fails(f"{bad}: not utf-8 text (invalid continuation byte at byte 3); pass --encoding",
          data.text_start, args(corpus=bad))
    empty = write(tmp_path, "empty.txt", "\n  \n")
    fails(f"{empty}: the corpus file holds no sentences", data.text_start, args(corpus=empty))


def test_to_grids_names_the_file_line_of_a_bad_cell():
    from adapters import TabularAdapter
    table = {"a": ["1", "2", "inf"], "b": ["3", "4", "5"]}
    fails("t.csv, line 9: column 'a' has an infinite value", data.to_grids, TabularAdapter(),
          table, fit=True, source="t.csv", line_of=[2, 5, 9])
    fails("the table, row 3 of the data: column 'a' has an infinite value", data.to_grids,
          TabularAdapter(), table, fit=True)
    fitted = TabularAdapter().fit({"a": ["1", "2"], "b": ["x", "y"]})
    fails("t.csv: column 'b' is missing: the adapter was fitted on it", data.to_grids, fitted,
          {"a": ["1"]}, source="t.csv", line_of=[2])
    grids = data.to_grids(fitted, {"a": ["1", "2"], "b": ["y", "x"]}, line_of=[2, 3])
    assert grids.shape == (2, 1, 1, 3)


def test_to_grids_other_adapter_errors_become_one_line():
    from adapters import TextAdapter

    class Broken(TextAdapter):
        def transform(self, X):
            raise ValueError("first line\nsecond line")
    fails("first line", data.to_grids, Broken(), ["a"])
    err = fails("first line", data.to_grids, Broken(), ["a"], source="s.csv", line_of=[2])
    assert err.__cause__ is None and err.__suppress_context__


def test_table_notes():
    from adapters import TabularAdapter
    t = TabularAdapter().fit({"n": ["1", "", "3", "NA"], "c": ["x", "y", "x", "z"],
                              "full": ["1", "2", "3", "4"]})
    assert data.table_notes(t) == ["column 'n': 2 missing values set to the median",
                                   "column 'c': categorical, one-hot encoded into 3 columns"]
    assert not re.search("full", " ".join(data.table_notes(t)))


def test_read_table_keeps_a_quoted_line_break_as_written_and_counts_the_header_line(tmp_path):
    path = write(tmp_path, "crlf.csv", 'a,b\r\n"one\r\ntwo",x\r\n3,y\r\n')
    header, columns, at = data.read_table(path)
    assert columns == [["one\r\ntwo", "3"], ["x", "y"]] and at == [2, 4]
    path = write(tmp_path, "dup1.csv", "a,a\n1,2\n")
    fails(f"{path}, line 1: the column name 'a' appears more than once", data.read_table, path)


def test_readers_use_the_encoding_given(tmp_path, capsys):
    path = write(tmp_path, "l.csv", "text,label\ncafé,x\nthé,y\n", encoding="latin-1")
    assert data.csv_dataset(args(encoding="latin-1"), path, need_text=True)[0] == ["café", "thé"]
    assert data.text_rows(path, {}, "latin-1")[0] == ["café", "thé"]
    corpus = write(tmp_path, "c.txt", "déjà vu\n", encoding="latin-1")
    assert data.text_start(args(corpus=corpus, encoding="latin-1"))["corpus"] == ["déjà vu"]


def test_folder_dataset_counts_only_subfolders_and_gives_full_paths(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        (tmp_path / c / "x.wav").write_bytes(b"")
    (tmp_path / "stray.wav").write_bytes(b"")            # a file beside the classes
    files, y = data.folder_dataset(str(tmp_path), (".wav",), "audio")
    assert files == [str(tmp_path / "a" / "x.wav"), str(tmp_path / "b" / "x.wav")]
    assert y == ["a", "b"]


def test_small_rules_of_the_readers(tmp_path, monkeypatch):
    assert data.missing_labels(["", "x", "NA"], [2, 3, 4])[1] == (
        "2 rows with a missing label (empty, NA, N/A, ?, null or None) dropped (lines 2, 4)")
    seen = []
    data.collect_inputs(args(file="list.txt"), "audio", lambda p, e: seen.append(p) or [])
    assert seen == ["list.txt"]
    monkeypatch.setattr("sys.stdin", io.StringIO("  spaced sentence  \nMalcolm X\r\n"))
    assert data.collect_inputs(args(inputs=["-"]), "text", None) == ["  spaced sentence  ",
                                                                    "Malcolm X"]
    # namespaces of other commands lack the adapter options: nothing to check or start
    data.check_options(argparse.Namespace(sr=8000), "audio")
    assert data.text_start(argparse.Namespace(encoding="utf-8")) == {}
