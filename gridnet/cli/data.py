"""Reading what the command line is given: folders of files, CSV tables, sentences."""
from __future__ import annotations

import csv
import os
import sys

from adapters.files import AUDIO_EXTENSIONS as AUDIO_EXT
from adapters.files import IMAGE_EXTENSIONS as IMAGE_EXT
#: labels that mean "no label" (compared stripped and lower-cased): the rows are dropped;
#: the same strings a table's cells are missing for
from adapters.tabular import MISSING as MISSING_LABELS

__all__ = ["CLIError", "read_table", "folder_dataset", "csv_dataset", "load_data",
           "make_adapter", "check_options", "ADAPTER_OPTIONS", "given", "to_grids", "table_notes",
           "missing_labels", "lines", "text_table", "text_rows", "collect_inputs", "TABLE_EXT", "AUDIO_EXT",
           "IMAGE_EXT", "MODALITIES", "MISSING_LABELS"]

MODALITIES = ("audio", "text", "image", "table")


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def lines(numbers, most=10):
    """File line numbers as "line 7" / "lines 7, 19, ..." (the one convention for
    where something is in a file: its line, the header being line 1)."""
    numbers = list(numbers)
    shown = ", ".join(map(str, numbers[:most])) + (", ..." if len(numbers) > most else "")
    return f"line{'s' if len(numbers) > 1 else ''} {shown}"


def read_table(path, *, delimiter=None, encoding="utf-8"):
    """CSV/TSV with a header -> (column names, list of columns of stripped strings, the
    file line each row starts on). Blank lines are skipped and a quoted cell may span
    lines, so a row's line is counted by the reader, not from its index."""
    name = os.fspath(path)
    if os.path.isdir(name):
        raise CLIError(f"{name} is a folder; text and table data come as one CSV (or TSV) "
                       "file with a header row (folders of class subfolders are for audio and image)")
    if not os.path.isfile(name):
        raise CLIError(f"{name}: no such file")
    if delimiter is None:
        delimiter = "\t" if name.endswith((".tsv", ".tab")) else ","
    rows, starts = [], []
    try:
        with open(name, newline="", encoding=encoding, errors="strict") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            start = 1
            for row in reader:
                if any(cell.strip() for cell in row):
                    rows.append(row)
                    starts.append(start)
                start = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise CLIError(f"{name}: not readable as {encoding} ({exc.reason} at byte {exc.start}); "
                       "pass --encoding") from None
    except LookupError:
        raise CLIError(f"unknown --encoding {encoding!r}") from None
    except csv.Error as exc:
        raise CLIError(f"{name}: not a readable CSV file ({exc})") from None
    if len(rows) < 2:
        raise CLIError(f"{name}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    seen = set()
    for h in header:
        if h in seen:
            raise CLIError(f"{name}, line {starts[0]}: the column name {h!r} appears more than once")
        seen.add(h)
    for r, at in zip(rows[1:], starts[1:]):
        if len(r) != len(header):
            raise CLIError(f"{name}, line {at}: {len(r)} fields; the header has {len(header)}")
    columns = [[r[j].strip() for r in rows[1:]] for j in range(len(header))]
    return header, columns, starts[1:]


def folder_dataset(path, extensions, kind):
    """A folder with a subfolder per class (Keras' *_dataset_from_directory)."""
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such folder")
    if not os.path.isdir(path):
        raise CLIError(f"{path}: expected a folder with a subfolder per class of {kind} files")
    classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d))
                     and not d.startswith("."))
    if len(classes) < 2:
        raise CLIError(f"{path}: found {len(classes)} class folder(s); need a subfolder per class, at least 2")
    files, labels = [], []
    for c in classes:
        found = sorted(f for f in os.listdir(os.path.join(path, c))
                       if f.lower().endswith(extensions) and not f.startswith("."))
        if not found:
            raise CLIError(f"{path}: class folder {c!r} has no {kind} files ({', '.join(extensions)})")
        files += [os.path.join(path, c, f) for f in found]
        labels += [c] * len(found)
    return files, labels


def csv_dataset(args, path, need_text):
    """-> (texts, labels, None, lines) or (feature header, labels, feature columns, lines),
    ``lines`` the file line of each row kept."""
    header, columns, line_of = read_table(path, encoding=args.encoding)
    label = args.label_column
    if label not in header:
        raise CLIError(f"{path}: no label column {label!r}; the columns are {', '.join(header)} "
                       "(set --label-column)")
    if need_text and args.text_column not in header:
        raise CLIError(f"{path}: no text column {args.text_column!r}; the columns are "
                       f"{', '.join(header)} (set --text-column)")
    y = columns[header.index(label)]
    keep, note = missing_labels(y, line_of)
    if note:
        print(f"note: {path}: {note}")
        y = [y[i] for i in keep]
        columns = [[c[i] for i in keep] for c in columns]
        line_of = [line_of[i] for i in keep]
        if not y:
            raise CLIError(f"{path}: no row has a label")
    if need_text:
        texts = columns[header.index(args.text_column)]
        empty = [i for i, t in enumerate(texts) if not t]
        if empty:          # no sentence to learn from or to score: named, like labels
            print(f"note: {path}: {len(empty)} row{'s' if len(empty) > 1 else ''} with an "
                  f"empty text column {args.text_column!r} dropped "
                  f"({lines(line_of[i] for i in empty)})")
            gone = set(empty)
            texts = [t for i, t in enumerate(texts) if i not in gone]
            y = [v for i, v in enumerate(y) if i not in gone]
            line_of = [at for i, at in enumerate(line_of) if i not in gone]
            if not y:
                raise CLIError(f"{path}: no row has a text")
        return texts, y, None, line_of
    keep = [i for i, h in enumerate(header) if h != label]
    return [header[i] for i in keep], y, [columns[i] for i in keep], line_of


TABLE_EXT = (".csv", ".tsv", ".tab")


def text_table(inputs):
    """Whether a text model's inputs are one CSV/TSV file (its rows are the sentences)."""
    return (len(inputs) == 1 and os.path.isfile(inputs[0])
            and inputs[0].lower().endswith(TABLE_EXT))


def collect_inputs(args, modality, read_lines):
    """The inputs named on the command line, with those of ``--file`` (one a line; for a text
    model a CSV/TSV file stands for its rows, as it does named as an input) and of stdin."""
    inputs = list(args.inputs)
    if args.file and modality == "text" and args.file.lower().endswith(TABLE_EXT):
        if inputs:
            raise CLIError(f"--file {args.file} is a CSV file, whose text column is read: give "
                           "it or sentences, not both")
        return [args.file]
    if args.file:
        inputs += read_lines(args.file, args.encoding)
    if inputs == ["-"]:
        inputs = [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
    return inputs


def text_rows(path, extra, encoding):
    """A text model's sentences from the text column of a CSV/TSV file (the column the
    model was trained on, else "text") -> (sentences, names "line N")."""
    column = extra.get("text_column") or "text"
    header, columns, line_of = read_table(path, encoding=encoding)
    if column not in header:
        raise CLIError(f"{path}: no text column {column!r} (the column this model was trained "
                       f"on); the columns are {', '.join(header)}")
    texts = columns[header.index(column)]
    empty = [i for i, t in enumerate(texts) if not t]
    if empty:
        raise CLIError(f"{path}: {lines(line_of[i] for i in empty)}: the text column "
                       f"{column!r} is empty; there is no sentence to classify")
    return texts, [f"line {at}" for at in line_of]


def missing_labels(y, line_of):
    """Labels (strings of a CSV file's rows, which start on the file lines ``line_of``)
    -> (indices of the rows that have one, a note naming the lines of those that do not,
    or None)."""
    miss = [i for i, v in enumerate(y) if v.strip().lower() in MISSING_LABELS]
    if not miss:
        return list(range(len(y))), None
    gone = set(miss)
    note = (f"{len(miss)} row{'s' if len(miss) > 1 else ''} with a missing label (empty, NA, "
            f"N/A, ?, null or None) dropped ({lines(line_of[i] for i in miss)})")
    return [i for i in range(len(y)) if i not in gone], note


def load_data(args, modality, path):
    """-> (raw inputs the adapter takes, labels, the file line of each row of a CSV file
    or None for a folder)."""
    if modality in ("audio", "image"):
        files, y = folder_dataset(path, AUDIO_EXT if modality == "audio" else IMAGE_EXT, modality)
        return files, y, None
    if modality == "text":
        texts, y, _, line_of = csv_dataset(args, path, need_text=True)
        return texts, y, line_of
    header, y, columns, line_of = csv_dataset(args, path, need_text=False)
    return dict(zip(header, columns)), y, line_of


def given(**options):
    """The options the user gave (None: left to the library's default)."""
    return {k: v for k, v in options.items() if v is not None}


#: ``gridnet fit`` options that shape one modality's adapter (all default to None)
ADAPTER_OPTIONS = {"sr": "audio", "n_mels": "audio", "frames": "audio", "n_jobs": "audio",
                   "background": "audio",
                   "size": "image", "positions": "text", "lowercase": "text", "corpus": "text",
                   "vectors": "text", "order": "table"}


def check_options(args, modality):
    """An adapter option given for another modality is an error, not ignored."""
    wrong = [name for name, kind in ADAPTER_OPTIONS.items()
             if kind != modality and getattr(args, name, None) is not None]
    if wrong:
        shown = ", ".join(f"--{n.replace('_', '-')} ({ADAPTER_OPTIONS[n]})" for n in wrong)
        raise CLIError(f"{shown} do{'es' if len(wrong) == 1 else ''} not apply to "
                       f"--modality {modality}; leave {'it' if len(wrong) == 1 else 'them'} out")


def make_adapter(args, modality):
    """The adapter ``gridnet fit`` uses for ``modality``: the library's defaults, with
    only the options given on the command line changed."""
    if modality == "audio":
        from adapters import AudioAdapter
        return AudioAdapter(**given(sr=args.sr, n_mels=args.n_mels, frames=args.frames,
                                    n_jobs=args.n_jobs, background=args.background))
    if modality == "image":
        from adapters import ImageAdapter
        return ImageAdapter(**given(size=tuple(args.size) if args.size else None))
    if modality == "text":
        from adapters import TextAdapter
        return TextAdapter(**given(positions=args.positions, lowercase=args.lowercase),
                           **text_start(args))
    from adapters import TabularAdapter
    return TabularAdapter(**given(order=args.order))


def text_start(args):
    """--corpus FILE (one sentence a line) or --vectors glove|none|FILE: the TextAdapter
    arguments that start the word vectors from them (neither: TextAdapter's default,
    the pretrained vectors). A name wins over a file of that name, as in TextAdapter."""
    from adapters.word_vectors import PRETRAINED
    corpus, vectors = getattr(args, "corpus", None), getattr(args, "vectors", None)
    if corpus and vectors:
        raise CLIError("give --corpus or --vectors, not both")
    if vectors in PRETRAINED:
        return {"embedding": vectors}
    if vectors == "none":
        return {"embedding": None}
    if vectors:
        if not os.path.isfile(vectors):
            raise CLIError(f"{vectors}: no such word-vector file (or name: "
                           f"{', '.join(sorted(PRETRAINED))}, none)")
        return {"embedding": vectors, "encoding": args.encoding}
    if corpus:
        try:
            with open(corpus, encoding=args.encoding) as fh:
                lines = [line.strip() for line in fh if line.strip()]
        except FileNotFoundError:
            raise CLIError(f"{corpus}: no such corpus file") from None
        except UnicodeDecodeError as exc:
            raise CLIError(f"{corpus}: not {args.encoding} text ({exc.reason} at byte "
                           f"{exc.start}); pass --encoding") from None
        if not lines:
            raise CLIError(f"{corpus}: the corpus file holds no sentences")
        # TextAdapter's own dim and window (no command-line-only values); --seed
        return {"embedding": "svd", "corpus": lines, "random_state": args.seed}
    return {}


def to_grids(adapter, data, fit=False, source=None, line_of=None):
    """Raw inputs -> grids through ``adapter``; an adapter's error becomes one line (a
    table's cell is named by its file line, ``line_of[row]``)."""
    from adapters import AudioError
    from adapters.tabular import TableError
    try:
        return adapter.fit_transform(data) if fit else adapter.transform(data)
    except TableError as exc:
        where = (f", {lines([line_of[exc.row]])}" if exc.row is not None and line_of is not None
                 else f", row {exc.row + 1} of the data" if exc.row is not None else "")
        raise CLIError(f"{source or 'the table'}{where}: {exc.reason}") from None
    except (AudioError, ValueError, TypeError, ImportError) as exc:
        raise CLIError(str(exc).splitlines()[0]) from None


def table_notes(adapter):
    """What a fitted TabularAdapter did to each column that is worth a note."""
    notes = []
    for s in adapter.spec_:
        if "levels" in s:
            notes.append(f"column {s['name']!r}: categorical, one-hot encoded into "
                         f"{len(s['levels'])} columns")
        elif s["missing"]:
            notes.append(f"column {s['name']!r}: {s['missing']} missing values set to the median")
    return notes
