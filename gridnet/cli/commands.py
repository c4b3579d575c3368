"""The ``gridnet`` commands: demo, locality, fit, predict, evaluate, explain, export."""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from .data import (MODALITIES, CLIError, check_options, given, load_data,
                   make_adapter, missing_labels, read_table, table_notes,
                   to_grids)
from .inputs import article, load_model, read_inputs

__all__ = ["demo", "locality", "fit", "predict", "evaluate", "explain", "export"]


def demo(args):
    """The locality check on a table (breast cancer) and on the digits' 8 x 8 pixel
    grids, then the digits as 1x8x8 grids through GridNetClassifier, all from
    scikit-learn's data."""
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.model_selection import train_test_split

    from ..estimator import GridNetClassifier
    from ..locality import locality_check

    print("gridnet demo 1/2: the locality check, before any training")
    cancer = load_breast_cancer()
    report = locality_check(cancer.data, cancer.target, random_state=0)
    print(f"  breast cancer table (569 x 30): {report.verdict} - {report.recommendation}")
    digits = load_digits()
    report = locality_check(digits.images[:, None], digits.target, axis="both", random_state=0)
    print(f"  digits as 8 x 8 pixel grids:    {report.verdict} - {report.recommendation}")
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


def _progress():
    """Progress bars only where a person watches (stderr is a terminal)."""
    return sys.stderr.isatty()


def locality(args):
    from ..locality import locality_check
    if args.time_budget < 0:
        raise CLIError(f"--time-budget must be a number of seconds >= 0; got {args.time_budget:g}")
    X, y, names, notes = _locality_table(args)
    if args.reorder and (y is None or args.quick):
        raise CLIError("--reorder needs --target (a reordered layout is judged by the model-based "
                       "test) and cannot be combined with --quick")
    settings = dict(n_permutations=args.permutations, time_budget=args.time_budget,
                    random_state=args.seed,
                    n_jobs=args.n_jobs, verbose=_progress(), **given(cv=args.cv))
    try:
        report = locality_check(X, None if args.quick else y,
                                method="statistic" if args.quick else "auto", **settings)
        reordered, order = None, None
        if args.reorder and report.verdict != "local":
            from adapters import similarity_order
            order = similarity_order(X)
            reordered = locality_check(X, y, order=order, **settings)
    except ValueError as exc:
        raise CLIError(f"{args.data}: {exc}") from None
    if args.json:
        d = dict(report.to_dict(), columns=names, notes=notes)
        if reordered is not None:
            d["reordered"] = dict(reordered.to_dict(), columns=[names[i] for i in order])
        print(json.dumps(d))
        return 0
    for note in notes:
        print(f"note: {note}")
    print(report)
    if args.reorder and reordered is None:
        print("\n(--reorder: the columns as given are already local; nothing reordered)")
    if reordered is not None:
        shown = ", ".join(names[i] for i in order[:12]) + (", ..." if len(order) > 12 else "")
        print(f"\n--reorder: the same check on the columns reordered by similarity ({shown})\n")
        print(reordered)
    return 0


def _locality_table(args):
    """``gridnet locality``'s table -> (X (n, f) float64 in the columns' order, the
    target's labels or None, the encoded columns' names, notes on what was dropped and
    encoded)."""
    from adapters import TabularAdapter
    header, columns, line_of = read_table(args.data, encoding=args.encoding)
    y = None
    notes = []
    if args.target is not None:
        if args.target not in header:
            raise CLIError(f"{args.data}: no target column {args.target!r}; the columns are "
                           f"{', '.join(header)}")
        j = header.index(args.target)
        target = columns[j]
        header, columns = header[:j] + header[j + 1:], columns[:j] + columns[j + 1:]
        keep, note = missing_labels(target, line_of)
        if note:
            notes.append(note)
            target = [target[i] for i in keep]
            columns = [[c[i] for i in keep] for c in columns]
            line_of = [line_of[i] for i in keep]
        y = np.array(target)
    if len(header) < 2:
        raise CLIError(f"{args.data}: {len(header)} feature column(s); the locality check needs at least 2")
    # the columns as given: the check tests their order
    encoder = TabularAdapter()
    X = to_grids(encoder, dict(zip(header, columns)), fit=True, source=args.data, line_of=line_of)
    X = X[:, 0, 0, :].astype(np.float64)
    if X.shape[1] < 3:
        raise CLIError(f"{args.data}: {X.shape[1]} encoded columns; the locality check needs at least 3")
    return X, y, list(encoder.feature_names_), notes + table_notes(encoder)


def fit(args):
    from ..augment import audio_augment
    from ..estimator import GridNetClassifier
    from ..persist import check_writable
    if args.modality not in MODALITIES:
        raise CLIError(f"unknown modality {args.modality!r}; choose one of {', '.join(MODALITIES)}")
    check_options(args, args.modality)
    try:
        check_writable(args.output)          # before the work, not after it
    except ValueError as exc:
        raise CLIError(f"-o {exc}") from None
    data, y, line_of = load_data(args, args.modality, args.data)
    if args.oos_label is not None and args.oos_label not in {str(v) for v in y}:
        raise CLIError(f"--oos-label {args.oos_label}: no sample in {args.data} has that label")
    adapter = make_adapter(args, args.modality)
    grids = to_grids(adapter, data, fit=True, source=args.data, line_of=line_of)
    background = getattr(adapter, "background_", None)
    clf = GridNetClassifier(random_state=args.seed, verbose=not args.quiet and _progress(),
                            **given(augment=background and audio_augment(background=background),
                                    max_epochs=args.epochs, batch_size=args.batch_size,
                                    learning_rate=args.learning_rate,
                                    early_stopping=args.early_stopping,
                                    reject_label=args.oos_label))
    t0 = time.perf_counter()
    try:
        clf.fit(grids, y)
    except (ValueError, FloatingPointError) as exc:   # e.g. grids too small for the preset
        raise CLIError(str(exc)) from None
    from sklearn.pipeline import make_pipeline

    from ..model_file import save
    try:
        save(make_pipeline(adapter, clf), args.output,
             extra={"label_column": args.label_column, "text_column": args.text_column})
    except (OSError, ValueError) as exc:
        raise CLIError(f"{args.output}: cannot write the model ({exc})") from None
    if getattr(adapter, "embedding_coverage_", None) is not None:
        source = adapter.embedding_source_
        source = source if source in ("glove",) else "--vectors" if args.vectors else "--corpus"
        print(f"word vectors started from {source} for {adapter.embedding_coverage_:.1%} of "
              "the vocabulary")
    epochs = " and ".join(str(len(h)) for h in clf.histories_)       # per network
    nets = f"{clf.ensemble_size_} networks of " if clf.ensemble_size_ > 1 else ""
    share = getattr(clf, "linear_share_", 0.0)
    linear = f" and a TF-IDF member at share {share:.2f}" if share else ""
    print(f"trained on {len(y)} samples, {len(clf.classes_)} classes, grids {clf.grid_shape_}, "
          f"{nets}{epochs} epochs{linear} in {time.perf_counter() - t0:.1f}s; saved {args.output}")
    return 0


def _short(label, most=40):
    """A label as it reads in a message: quoted, and cut when long."""
    text = repr(label)
    return text if len(text) <= most else text[:most - 4] + "...'"


def _timelines(args, clf, adapter, inputs):
    """``predict --windows``: each recording's windows, printed (and written to --csv)."""
    from sklearn.pipeline import Pipeline

    from adapters import AudioError

    from ..timeline import predict_windows
    if args.csv and len(inputs) != 1:
        raise CLIError(f"--csv writes the timeline of one recording; got {len(inputs)}")
    if args.csv:
        folder = os.path.dirname(os.path.abspath(args.csv))
        if os.path.isdir(args.csv) or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            raise CLIError(f"--csv {args.csv}: cannot write a file there")
    pipe = Pipeline([("adapter", adapter), ("classifier", clf)])
    print("start\tend\tlabel\tprobability\tfile")
    for path in inputs:
        try:
            result = predict_windows(pipe, path, hop=args.hop)
        except (AudioError, ValueError) as exc:
            raise CLIError(str(exc).splitlines()[0]) from None
        for a, b, label, p in result.rows():
            print(f"{a:.3f}\t{b:.3f}\t{label}\t{p:.3f}\t{path}")
        if args.csv:
            result.to_csv(args.csv)
    return 0


def explain(args):
    from . import pictures
    return pictures.explain(args)


def predict(args):
    clf, extra, adapter = load_model(args.model)
    modality = extra["modality"]
    if (args.hop is not None or args.csv) and not args.windows:
        raise CLIError("--hop and --csv go with --windows")
    if args.windows and modality != "audio":
        raise CLIError(f"--windows slides over audio recordings; this is {article(modality)} "
                       f"{modality} model")
    data, names, line_of, source = read_inputs(args, modality, extra, "predict")
    _set_reject(args, clf)
    if args.windows:
        return _timelines(args, clf, adapter, data)
    labels, proba = _labels(clf, to_grids(adapter, data, source=source, line_of=line_of))
    for name, label, p in zip(names, labels, proba.max(axis=1)):
        print(f"{label}\t{p:.3f}\t{name}")
    return 0


def _set_reject(args, clf):
    """predict's and evaluate's --reject (None: as the model was saved) and
    --reject-label, set on the classifier -> the label of rejected inputs (None: it does
    not reject); an error when it cannot reject."""
    if args.reject is not None:
        clf.set_params(reject=bool(args.reject))
    if getattr(args, "reject_label", None) is not None:
        if not clf.reject:
            raise CLIError("--reject-label goes with --reject")
        clf.set_params(reject_label=args.reject_label)
    if clf.reject:
        from ..rejection import label_of
        try:
            return label_of(clf)
        except ValueError as exc:
            raise CLIError(f"{args.model}: {exc}") from None
    return None


def _labels(clf, grids):
    """``(labels, proba)`` of ``grids``: the top class, or with the classifier's
    ``reject`` the rejection label for the inputs it rejects; the probabilities (n, k)."""
    from ..core import softmax
    from ..rejection import calibrated_logits, predict as rejecting
    z = calibrated_logits(clf, grids)
    return (rejecting(clf, z, grids) if clf.reject else clf.classes_[z.argmax(axis=1)]), softmax(z)


def evaluate(args):
    clf, extra, adapter = load_model(args.model)
    modality = extra["modality"]
    args.label_column = args.label_column or extra.get("label_column") or "label"
    args.text_column = args.text_column or extra.get("text_column") or "text"
    data, y, line_of = load_data(args, modality, args.data)
    # labels are compared whole, as text: a label the model does not know is reported
    labels = [str(c) for c in clf.classes_]
    y = np.array([str(v) for v in y], dtype=object)
    if args.reject and args.ignore_unknown:
        raise CLIError("--reject scores the labels the model does not know as out of scope; "
                       "--ignore-unknown leaves them out: choose one")
    reject_label = _set_reject(args, clf)
    oos = None
    if reject_label is not None:      # unknown labels, and the out-of-scope class, are out of scope
        oos = ~np.isin(y, np.array(labels, dtype=object))
        if clf.oos_label_ is not None:
            oos |= y == str(clf.oos_label_)
    else:
        y, data, line_of = _known_only(args, y, labels, data, line_of)
    if args.plot:
        try:
            from ..plotting import pyplot
            pyplot()
        except ImportError as exc:
            raise CLIError(str(exc)) from None
    pred, proba = _labels(clf, to_grids(adapter, data, source=args.data, line_of=line_of))
    pred = np.array([str(v) for v in pred], dtype=object)
    column = {label: i for i, label in enumerate(labels)}
    inside = np.ones(len(y), bool) if oos is None else ~oos
    truth = np.array([column[v] for v in y[inside]], dtype=int)
    if oos is None:
        print(f"accuracy: {np.mean(pred == y):.4f} ({len(y)} samples)")
    else:
        y = np.where(oos, str(reject_label), y)
        labels = labels + [str(reject_label)] * (str(reject_label) not in labels)
        _rejection_scores(y, pred, oos, str(reject_label))
    from ..calibration import N_BINS, calibration_error
    if len(truth):
        print(f"calibration error: {calibration_error(truth, proba[inside]):.4f} (top label, "
              f"{N_BINS} bins of the top probability{', in-scope samples' * (oos is not None)})")
    _report(args, clf, y, pred, labels, (truth, proba[inside]))
    return 0


def _known_only(args, y, labels, data, line_of):
    """Without --reject: the samples whose labels the model knows (with
    --ignore-unknown; an error otherwise) -> (y, data, line_of)."""
    unknown = ~np.isin(y, np.array(labels, dtype=object))
    if not unknown.any():
        return y, data, line_of
    names = sorted(set(y[unknown]))
    shown = ", ".join(_short(v) for v in names[:5]) + (", ..." if len(names) > 5 else "")
    what = (f"{int(unknown.sum())} of {len(y)} samples have labels the model does not know "
            f"({shown}); the model knows {', '.join(repr(v) for v in labels)}")
    if not args.ignore_unknown:
        raise CLIError(f"{args.data}: {what}; pass --ignore-unknown to score the others, "
                       "or --reject to count them as out of scope")
    if unknown.all():
        raise CLIError(f"{args.data}: {what}; no sample is left to score")
    print(f"note: {what}: left out ({int((~unknown).sum())} samples scored)")
    keep = np.nonzero(~unknown)[0]
    data = ({k: [v[i] for i in keep] for k, v in data.items()} if isinstance(data, dict)
            else [data[i] for i in keep])
    return y[keep], data, None if line_of is None else [line_of[i] for i in keep]


def _rejection_scores(y, pred, oos, reject_label):
    """evaluate --reject's figures: in-scope accuracy, out-of-scope recall, accuracy."""
    n_in, n_out = int((~oos).sum()), int(oos.sum())
    if n_in:
        print(f"in-scope accuracy: {np.mean(pred[~oos] == y[~oos]):.4f} ({n_in} samples; "
              "a rejected one counts as wrong)")
    if n_out:
        print(f"out-of-scope recall: {np.mean(pred[oos] == reject_label):.4f} ({n_out} "
              "samples whose label the model does not know or is its out-of-scope class)")
    print(f"accuracy: {np.mean(pred == y):.4f} ({len(y)} samples; an out-of-scope one is "
          f"right when rejected, as {reject_label!r})")


#: evaluate prints the whole confusion matrix up to this many classes (a wider one does
#: not fit a terminal), beyond it the most frequent confusions
MATRIX_CLASSES = 20


def _confusions(cm, labels, top=MATRIX_CLASSES):
    """The ``top`` largest off-diagonal cells of confusion matrix ``cm``, as lines."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    cells = [(i, j) for i, j in zip(*np.unravel_index(np.argsort(-off, axis=None, kind="stable"),
                                                     off.shape)) if off[i, j] > 0][:top]
    print(f"most frequent confusions, true -> predicted ({len(cells)} of "
          f"{int((off > 0).sum())}; {len(labels)} classes make a matrix too wide to print)")
    width = max([len(labels[i]) for i, _ in cells] or [0])
    for i, j in cells:
        print(f"  {labels[i]:>{width}} -> {labels[j]}: {off[i, j]}")


def _report(args, clf, y, pred, labels, calibration):
    """evaluate's per-class report and confusion matrix (and --plot)."""
    from sklearn.metrics import classification_report, confusion_matrix
    seen = set(y) | set(pred)        # as scikit-learn's default: no all-zero rows
    shown = [c for c in labels if c in seen]
    print(classification_report(y, pred, labels=shown, zero_division=0))
    if len(shown) < len(labels):
        print(f"({len(labels) - len(shown)} of the model's {len(labels)} classes are neither "
              "in the file nor predicted: left out of the table above)")
    cm = confusion_matrix(y, pred, labels=labels)
    if len(labels) > MATRIX_CLASSES:
        _confusions(cm, labels)
    else:
        width = max(max(len(c) for c in labels), 5)
        print("confusion matrix (rows: true, columns: predicted)")
        print(" " * width + " " + " ".join(f"{c:>{width}}" for c in labels))
        for c, row in zip(labels, cm):
            print(f"{c:>{width}} " + " ".join(f"{v:>{width}}" for v in row))
    if args.plot:
        _plot_evaluation(args.plot, clf, y, pred, labels, calibration)
        print(f"wrote {args.plot}")


def _plot_evaluation(path, clf, y, pred, labels, calibration):
    """The training history beside scikit-learn's confusion matrix display and the
    top-label reliability diagram (``calibration``: the true classes' columns and the
    probabilities)."""
    from ..plotting import plot_confusion_matrix, plot_history, plot_reliability, pyplot
    plt = pyplot()
    fig, (left, right, third) = plt.subplots(1, 3, figsize=(18, 5))
    if len(calibration[0]):
        plot_reliability(*calibration, ax=third)
    else:                       # evaluate --reject on out-of-scope samples alone
        third.set_axis_off()
        third.text(0.5, 0.5, "no in-scope sample: no reliability diagram", ha="center")
    if clf.history_:
        plot_history(clf, ax=left)
    else:
        left.set_axis_off()
        left.text(0.5, 0.5, "no training history in the model", ha="center")
    plot_confusion_matrix(y, pred, labels=labels, ax=right)
    right.set_title(f"accuracy {np.mean(pred == y):.4f} ({len(y)} samples)")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except (OSError, ValueError) as exc:
        raise CLIError(f"--plot {path}: cannot write the picture ({exc})") from None
    finally:
        plt.close(fig)


def export(args):
    """``gridnet export``: a model file (a pipeline, or a classifier saved alone) as ONNX;
    says what the exported model takes."""
    from ..estimator import load
    from ..export import ExportError, check_output_path, to_onnx
    try:
        check_output_path(args.output)
    except ExportError as exc:
        raise CLIError(f"-o {exc}") from None
    try:
        model = load(args.model)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    try:
        proto = to_onnx(model, args.output)
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    except ExportError as exc:
        raise CLIError(f"{args.model}: {exc}") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    size = os.path.getsize(args.output) / 2**20
    print(f"wrote {args.output} ({size:.1f} MB, ONNX opset {proto.opset_import[0].version})")
    print(f"  input  {meta['input']}")
    print(f"  output {meta['outputs']}")
    if "valid" in meta:
        print(f"         valid: {meta['valid']}")
    print(f"  classes {meta['classes']}")
    if "rejection" in meta:
        print(f"  reject  {meta['rejection']} ({meta['reject_log_odds']}; reject_label "
              f"{meta['reject_label']})")
    return 0
