"""Reading what the command line is given: folders of files, CSV tables, sentences."""
from __future__ import annotations

import csv
import os

__all__ = ["CLIError", "read_table", "folder_dataset", "csv_dataset", "load_data",
           "make_adapter", "to_grids", "table_notes", "AUDIO_EXT", "IMAGE_EXT", "MODALITIES"]

MODALITIES = ("audio", "text", "image", "table")
AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".m4a")
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def read_table(path, *, delimiter=None, encoding="utf-8"):
    """CSV/TSV with a header -> (column names, list of columns of stripped strings)."""
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise CLIError(f"{name}: no such file")
    if delimiter is None:
        delimiter = "\t" if name.endswith((".tsv", ".tab")) else ","
    try:
        with open(name, newline="", encoding=encoding, errors="strict") as fh:
            rows = list(csv.reader(fh, delimiter=delimiter))
    except UnicodeDecodeError as exc:
        raise CLIError(f"{name}: not readable as {encoding} ({exc.reason} at byte {exc.start}); "
                       "pass --encoding") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise CLIError(f"{name}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    seen = set()
    for h in header:
        if h in seen:
            raise CLIError(f"{name}, line 1: the column name {h!r} appears more than once")
        seen.add(h)
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise CLIError(f"{name}, line {i}: {len(r)} fields; the header has {len(header)}")
    columns = [[r[j].strip() for r in rows[1:]] for j in range(len(header))]
    return header, columns


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
    """-> (texts, labels, None) or (feature header, labels, feature columns)."""
    header, columns = read_table(path, encoding=args.encoding)
    label = args.label_column
    if label not in header:
        raise CLIError(f"{path}: no label column {label!r}; the columns are {', '.join(header)} "
                       "(set --label-column)")
    y = columns[header.index(label)]
    bad = [i + 2 for i, v in enumerate(y) if not v]
    if bad:
        raise CLIError(f"{path}: {len(bad)} rows have no label (lines {', '.join(map(str, bad[:5]))})")
    if need_text:
        if args.text_column not in header:
            raise CLIError(f"{path}: no text column {args.text_column!r}; the columns are "
                           f"{', '.join(header)} (set --text-column)")
        return columns[header.index(args.text_column)], y, None
    keep = [i for i, h in enumerate(header) if h != label]
    return [header[i] for i in keep], y, [columns[i] for i in keep]


def load_data(args, modality, path):
    """-> (raw inputs the adapter takes, labels)."""
    if modality == "audio":
        return folder_dataset(path, AUDIO_EXT, "audio")
    if modality == "image":
        return folder_dataset(path, IMAGE_EXT, "image")
    if modality == "text":
        texts, y, _ = csv_dataset(args, path, need_text=True)
        return texts, y
    header, y, columns = csv_dataset(args, path, need_text=False)
    return dict(zip(header, columns)), y


def make_adapter(args, modality):
    """The adapter ``gridnet fit`` uses for ``modality``, from the command's options."""
    if modality == "audio":
        from adapters import AudioAdapter
        return AudioAdapter(sr=args.sr, n_mels=args.n_mels, trim=True, frames=args.frames,
                            n_jobs=args.n_jobs)
    if modality == "image":
        from adapters import ImageAdapter
        return ImageAdapter(size=tuple(args.size) if args.size else None)
    if modality == "text":
        from adapters import TextAdapter
        return TextAdapter(lowercase=False, positions=args.positions, **text_start(args))
    from adapters import TabularAdapter
    return TabularAdapter(order="similarity")


def text_start(args):
    """--corpus FILE (one sentence a line) or --vectors FILE: the TextAdapter arguments
    that start the word vectors from them."""
    corpus, vectors = getattr(args, "corpus", None), getattr(args, "vectors", None)
    if corpus and vectors:
        raise CLIError("give --corpus or --vectors, not both")
    if vectors:
        if not os.path.isfile(vectors):
            raise CLIError(f"{vectors}: no such word-vector file")
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
        return {"embedding": "svd", "corpus": lines, "dim": 128, "window": 5, "random_state": 0}
    return {}


def to_grids(adapter, data, fit=False):
    """Raw inputs -> grids through ``adapter``; an adapter's error becomes one line."""
    from adapters import AudioError
    try:
        return adapter.fit_transform(data) if fit else adapter.transform(data)
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
