"""The ``gridnet`` command line."""
from __future__ import annotations

import argparse
import os
import sys
import time


def _demo(args):
    """Digits as 1x8x8 grids through GridNetClassifier, then the locality check on a
    table (breast cancer) and on the digits' pixels, all from scikit-learn's data."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.model_selection import train_test_split

    from .estimator import GridNetClassifier
    from .locality import locality_check

    print("gridnet demo 1/2: the locality check, before any training")
    cancer = load_breast_cancer()
    report = locality_check(cancer.data, cancer.target, random_state=0)
    print(f"  breast cancer table (569 x 30): {report.verdict} - {report.recommendation}")
    digits = load_digits()
    report = locality_check(digits.images.reshape(-1, 64), digits.target, random_state=0)
    print(f"  digits pixels as 64 columns:    {report.verdict} - {report.recommendation}")
    print()
    print("gridnet demo 2/2: a CNN on sklearn's digits as 1x8x8 grids (held-out quarter)")
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    xtr, xte, ytr, yte = train_test_split(x, digits.target, test_size=0.25, random_state=0,
                                          stratify=digits.target)
    t0 = time.perf_counter()
    clf = GridNetClassifier(max_epochs=args.epochs, random_state=0).fit(xtr, ytr)
    print(clf.summary())
    print(f"trained {clf.n_iter_} epochs in {time.perf_counter() - t0:.1f}s")
    print(f"test accuracy: {clf.score(xte, yte):.4f}")
    return 0


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _locality(args):
    import json

    import numpy as np

    from .locality import locality_check
    from .tables import TableError, encode_columns, read_table
    try:
        header, columns = read_table(args.data, encoding=args.encoding)
    except TableError as exc:
        raise CLIError(str(exc)) from None
    y = None
    notes = []
    if args.target is not None:
        if args.target not in header:
            raise CLIError(f"{args.data}: no target column {args.target!r}; the columns are "
                           f"{', '.join(header)}")
        j = header.index(args.target)
        target = columns[j]
        header, columns = header[:j] + header[j + 1:], columns[:j] + columns[j + 1:]
        missing = [i for i, v in enumerate(target) if v.strip().lower() in ("", "?", "na", "nan")]
        if missing:
            shown = ", ".join(str(i + 2) for i in missing[:10])
            notes.append(f"{len(missing)} rows with a missing target dropped (lines {shown}"
                         f"{', ...' if len(missing) > 10 else ''})")
            keep = [i for i in range(len(target)) if i not in set(missing)]
            target = [target[i] for i in keep]
            columns = [[c[i] for i in keep] for c in columns]
        y = np.array(target)
    if len(header) < 2:
        raise CLIError(f"{args.data}: {len(header)} feature column(s); the locality check needs at least 2")
    try:
        X, names, enc_notes = encode_columns(header, columns, source=str(args.data))
    except TableError as exc:
        raise CLIError(str(exc)) from None
    if X.shape[1] < 3:
        raise CLIError(f"{args.data}: {X.shape[1]} encoded columns; the locality check needs at least 3")
    notes += enc_notes
    try:
        report = locality_check(X, None if args.quick else y, method="statistic" if args.quick else "auto",
                                n_permutations=args.permutations, cv=args.cv,
                                random_state=args.seed, n_jobs=args.n_jobs)
    except ValueError as exc:
        raise CLIError(f"{args.data}: {exc}") from None
    if args.json:
        d = report.to_dict()
        d["columns"] = names
        d["notes"] = notes
        print(json.dumps(d))
    else:
        for note in notes:
            print(f"note: {note}")
        print(report)
    return 0


# -- fit / predict / evaluate ----------------------------------------------------------------
MODALITIES = ("audio", "text", "image", "table")
AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".m4a")
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _check_modality(modality):
    if modality not in MODALITIES:
        raise CLIError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)}")


def _folder_dataset(path, extensions, kind):
    """A folder with a subfolder per class (Keras' *_dataset_from_directory)."""
    import os
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


def _csv_dataset(args, path, need_text):
    from .tables import TableError, read_table
    try:
        header, columns = read_table(path, encoding=args.encoding)
    except TableError as exc:
        raise CLIError(str(exc)) from None
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


def _load_data(args, modality, path):
    """-> (raw inputs the adapter takes, labels)."""
    if modality == "audio":
        return _folder_dataset(path, AUDIO_EXT, "audio")
    if modality == "image":
        return _folder_dataset(path, IMAGE_EXT, "image")
    if modality == "text":
        texts, y, _ = _csv_dataset(args, path, need_text=True)
        return texts, y
    header, y, columns = _csv_dataset(args, path, need_text=False)
    return (header, columns), y


def _make_adapter(args, modality):
    if modality == "audio":
        from adapters import AudioAdapter
        return AudioAdapter(sr=args.sr, n_mels=args.n_mels, trim=True, frames=args.frames,
                            n_jobs=args.n_jobs)
    if modality == "image":
        from adapters import ImageAdapter
        return ImageAdapter(size=tuple(args.size) if args.size else None)
    if modality == "text":
        from adapters import TextAdapter
        return TextAdapter(lowercase=False, positions=args.positions, **_text_start(args))
    from .tables import TableEncoder
    return TableEncoder()


def _text_start(args):
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


# what a saved text adapter leaves out: the starting vectors and the corpus they came
# from serve fitting only (the network's weights hold what was learned from them)
_FIT_ONLY = {"TextAdapter": ({"embedding": None, "corpus": None}, ("embedding_",))}


def _adapter_state(adapter):
    """Parameters and fitted attributes as JSON (no pickle in a model file)."""
    import numpy as np

    def enc(v):
        if isinstance(v, np.ndarray):
            return {"__array__": v.tolist(), "dtype": str(v.dtype)}
        if isinstance(v, tuple):
            return list(v)
        if isinstance(v, (np.integer, np.floating)):
            return v.item()
        return v
    params, drop = _FIT_ONLY.get(type(adapter).__name__, ({}, ()))
    fitted = {k: enc(v) for k, v in vars(adapter).items()
              if k.endswith("_") and not k.startswith("_") and k not in drop}
    return {"class": type(adapter).__name__, "params": {**adapter.get_params(), **params},
            "fitted": fitted}


def _adapter_from_state(state):
    import numpy as np

    import adapters

    from .tables import TableEncoder
    classes = {"AudioAdapter": adapters.AudioAdapter, "ImageAdapter": adapters.ImageAdapter,
               "TextAdapter": adapters.TextAdapter, "TableEncoder": TableEncoder}
    if state.get("class") not in classes:
        raise CLIError(f"the model file names an unknown adapter {state.get('class')!r}")
    adapter = classes[state["class"]](**state["params"])
    for k, v in state["fitted"].items():
        if isinstance(v, dict) and "__array__" in v:
            v = np.array(v["__array__"], dtype=v["dtype"])
        if k == "grid_shape_":
            v = tuple(v)
        setattr(adapter, k, v)
    return adapter


def _to_grids(adapter, modality, data, fit=False):
    from adapters import AudioError
    try:
        if modality == "table":
            header, columns = data
            return adapter.fit_transform(header, columns) if fit else adapter.transform(header, columns)
        return adapter.fit_transform(data) if fit else adapter.transform(data)
    except (AudioError, ValueError, TypeError, ImportError) as exc:
        raise CLIError(str(exc).splitlines()[0]) from None


def _fit(args):
    from .estimator import GridNetClassifier
    from .persist import save_classifier
    _check_modality(args.modality)
    data, y = _load_data(args, args.modality, args.data)
    adapter = _make_adapter(args, args.modality)
    grids = _to_grids(adapter, args.modality, data, fit=True)
    preset = {"audio": "audio", "image": "image", "text": "text", "table": None}[args.modality]
    clf = GridNetClassifier(preset=preset, max_epochs=args.epochs, batch_size=args.batch_size,
                            learning_rate=args.learning_rate, random_state=args.seed,
                            early_stopping=args.early_stopping, verbose=not args.quiet)
    t0 = time.perf_counter()
    try:
        clf.fit(grids, y)
    except ValueError as exc:       # e.g. grids too small for the preset's filters
        raise CLIError(str(exc)) from None
    extra = {"modality": args.modality, "adapter": _adapter_state(adapter),
             "label_column": args.label_column, "text_column": args.text_column}
    save_classifier(clf, args.output, extra=extra)
    if getattr(adapter, "embedding_coverage_", None) is not None:
        print(f"word vectors started from {'--vectors' if args.vectors else '--corpus'} for "
              f"{adapter.embedding_coverage_:.1%} of the vocabulary")
    print(f"trained on {len(y)} samples, {len(clf.classes_)} classes, grids {clf.grid_shape_}, "
          f"{clf.n_iter_} epochs in {time.perf_counter() - t0:.1f}s; saved {args.output}")
    return 0


def _load_model(path):
    from .persist import load
    try:
        clf, extra = load(path, return_extra=True)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    if not extra or "adapter" not in extra:
        raise CLIError(f"{path}: not a model saved by 'gridnet fit' (it carries no adapter)")
    return clf, extra, _adapter_from_state(extra["adapter"])


def _predict(args):
    import os

    import numpy as np
    clf, extra, adapter = _load_model(args.model)
    modality = extra["modality"]
    inputs = list(args.inputs)
    if inputs == ["-"]:
        inputs = [line.rstrip("\n") for line in sys.stdin]
    if modality in ("audio", "image"):
        for p in inputs:
            if not os.path.isfile(p):
                raise CLIError(f"{p}: no such file")
        data, names = inputs, inputs
    elif modality == "text":
        data, names = inputs, inputs
    else:
        if len(inputs) != 1:
            raise CLIError("a table model predicts the rows of one CSV file")
        from .tables import TableError, read_table
        try:
            header, columns = read_table(inputs[0], encoding=args.encoding)
        except TableError as exc:
            raise CLIError(str(exc)) from None
        data, names = (header, columns), [f"row {i + 1}" for i in range(len(columns[0]))]
    proba = clf.predict_proba(_to_grids(adapter, modality, data))
    best = proba.argmax(axis=1)
    for name, k, p in zip(names, best, proba[np.arange(len(best)), best]):
        print(f"{clf.classes_[k]}\t{p:.3f}\t{name}")
    return 0


def _evaluate(args):
    import numpy as np
    from sklearn.metrics import classification_report, confusion_matrix
    clf, extra, adapter = _load_model(args.model)
    modality = extra["modality"]
    args.label_column = args.label_column or extra.get("label_column") or "label"
    args.text_column = args.text_column or extra.get("text_column") or "text"
    data, y = _load_data(args, modality, args.data)
    pred = clf.predict(_to_grids(adapter, modality, data))
    y = np.asarray(y).astype(clf.classes_.dtype)
    labels = list(clf.classes_)
    print(f"accuracy: {np.mean(pred == y):.4f} ({len(y)} samples)")
    print(classification_report(y, pred, labels=labels, zero_division=0))
    cm = confusion_matrix(y, pred, labels=labels)
    width = max(max(len(str(c)) for c in labels), 5)
    print("confusion matrix (rows: true, columns: predicted)")
    print(" " * width + " " + " ".join(f"{str(c):>{width}}" for c in labels))
    for c, row in zip(labels, cm):
        print(f"{str(c):>{width}} " + " ".join(f"{v:>{width}}" for v in row))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="gridnet", description="CNNs for data turned into grids.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train and evaluate on sklearn's digits (no data needed)")
    demo.add_argument("--epochs", type=int, default=30)
    demo.set_defaults(func=_demo)

    loc = sub.add_parser("locality", help="test whether a table's column order could help a CNN")
    loc.add_argument("data", help="CSV (or TSV) file with a header row")
    loc.add_argument("--target", help="label column (enables the model-based test)")
    loc.add_argument("--quick", action="store_true", help="only the model-free statistic")
    loc.add_argument("--json", action="store_true", help="print the report as JSON")
    loc.add_argument("--permutations", type=int, default=None)
    loc.add_argument("--cv", type=int, default=3)
    loc.add_argument("--seed", type=int, default=0)
    loc.add_argument("--n-jobs", type=int, default=None)
    loc.add_argument("--encoding", default="utf-8")
    loc.set_defaults(func=_locality)

    fit = sub.add_parser("fit", help="train a model on a folder of files or a CSV file")
    fit.add_argument("data", help="folder with a subfolder per class (audio, image) or CSV/TSV (text, table)")
    fit.add_argument("--modality", required=True, help="audio, text, image or table")
    fit.add_argument("-o", "--output", default="model.gridnet")
    fit.add_argument("--epochs", type=int, default=30)
    fit.add_argument("--batch-size", type=int, default=32)
    fit.add_argument("--learning-rate", type=float, default=1e-3)
    fit.add_argument("--early-stopping", action="store_true")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.add_argument("--sr", type=int, default=16000, help="audio: sample rate")
    fit.add_argument("--n-mels", type=int, default=64, help="audio: mel bands")
    fit.add_argument("--frames", type=int, default=None, help="audio: time steps (default: longest clip)")
    fit.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"), help="image: resize")
    fit.add_argument("--positions", type=int, default=None, help="text: words per sentence")
    fit.add_argument("--corpus", default=None, help="text: unlabeled sentences, one a line, to fit "
                     "starting word vectors on (with the training sentences)")
    fit.add_argument("--vectors", default=None, help="text: a word2vec/GloVe text file of "
                     "starting word vectors")
    fit.add_argument("--n-jobs", type=int, default=None)
    for p in (fit,):
        p.add_argument("--text-column", default="text")
        p.add_argument("--label-column", default="label")
        p.add_argument("--encoding", default="utf-8")
    fit.set_defaults(func=_fit)

    pred = sub.add_parser("predict", help="print a label and probability per input")
    pred.add_argument("model")
    pred.add_argument("inputs", nargs="+", help="files (audio, image), sentences (text; - reads "
                      "stdin), or one CSV file (table)")
    pred.add_argument("--encoding", default="utf-8")
    pred.set_defaults(func=_predict)

    ev = sub.add_parser("evaluate", help="accuracy, per-class report and confusion matrix")
    ev.add_argument("model")
    ev.add_argument("data")
    ev.add_argument("--text-column", default=None)
    ev.add_argument("--label-column", default=None)
    ev.add_argument("--encoding", default="utf-8")
    ev.set_defaults(func=_evaluate)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()          # a closed pipe shows here, not at interpreter exit
        return status
    except CLIError as exc:
        print(f"gridnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`gridnet evaluate ... | head`): stop quietly, as Unix
        # tools do; stdout goes to devnull so that the interpreter's final flush is silent
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
