"""The ``gridnet`` command line's parsers: one function per command, which adds its
sub-parser (arguments, help, the function that runs it)."""
from __future__ import annotations

import argparse

from . import commands

__all__ = ["build_parser"]

FORMAT = argparse.ArgumentDefaultsHelpFormatter


def build_parser():
    from .. import __version__
    parser = argparse.ArgumentParser(prog="gridnet", description="CNNs for data turned into grids.")
    parser.add_argument("--version", action="version", version=f"gridnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (add_demo, add_locality, add_fit, add_predict, add_explain, add_evaluate,
                add_export):
        add(sub)
    return parser


def early_stopping_help():
    """``fit --early-stopping``'s help: the presets' tolerance, patience and weight averaging."""
    from ..architectures import DEFAULT_PATIENCE as patience
    from ..architectures import DEFAULT_TOL, PRESETS, TRAINING
    audio_patience = TRAINING["audio"].get("n_iter_no_change", patience)
    stall = f"{patience} epochs"
    if audio_patience != patience:
        stall += f" ({audio_patience} for audio)"
    audio_tol = TRAINING["audio"].get("tol", DEFAULT_TOL)
    gain = f"by more than {DEFAULT_TOL:g}" + (f" ({audio_tol:g} for audio)" if audio_tol != DEFAULT_TOL else "")
    # the image preset also trains a table's strips
    ema = [f"{t['ema_momentum']} for {'image and table' if name == 'image' else name}"
           for name, t in TRAINING.items() if t.get("ema_momentum")]
    plain = [name for name in PRESETS if name and not TRAINING.get(name, {}).get("ema_momentum")]
    kept = "keep the best epoch"
    if ema:
        kept += f" (of the weights' moving average: momentum {', '.join(ema)}"
        kept += f"; {' and '.join(plain)}: the weights as trained)" if plain else ")"
    return ("hold out 10%% of the data, stop when its accuracy (ties: its loss) has not "
            f"improved {gain} for {stall} and {kept} (None: on, GridNetClassifier's default)")


def add_demo(sub):
    """``gridnet demo``."""
    demo = sub.add_parser("demo", formatter_class=FORMAT,
                          help="train and evaluate on sklearn's digits (no data needed)")
    demo.add_argument("--epochs", type=int, default=30, help="most training epochs")
    demo.set_defaults(func=commands.demo)


def add_locality(sub):
    """``gridnet locality``."""
    loc = sub.add_parser("locality", formatter_class=FORMAT,
                         help="test whether a table's column order could help a CNN")
    loc.add_argument("data", help="CSV (or TSV) file with a header row")
    loc.add_argument("--target", help="label column (enables the model-based test); rows "
                     "whose label is empty, NA, N/A, ?, null or None are dropped and named")
    loc.add_argument("--quick", action="store_true", help="only the model-free statistic")
    loc.add_argument("--reorder", action="store_true",
                     help="when the order as given is not local, also test the columns "
                     "reordered by similarity (correlated columns side by side; needs --target)")
    loc.add_argument("--json", action="store_true", help="print the report as JSON")
    loc.add_argument("--permutations", type=int, default=None,
                     help="column orders in the model-based test (None: 19, then more by a "
                     "sequential rule while the verdict depends on them, within --time-budget)")
    loc.add_argument("--time-budget", type=float, default=30.0,
                     help="seconds the model-based test may spend adding orders (0: none; "
                     "unused with --permutations)")
    loc.add_argument("--cv", type=int, default=None,
                     help="cross-validation folds (None: locality_check's 2)")
    loc.add_argument("--seed", type=int, default=0, help="random seed")
    loc.add_argument("--n-jobs", type=int, default=None, help="parallel jobs (joblib; -1: all cores)")
    loc.add_argument("--encoding", default="utf-8", help="text encoding of the file")
    loc.set_defaults(func=commands.locality)


def add_fit(sub):
    """``gridnet fit``: the data, the training options, the adapter options."""
    fit = sub.add_parser("fit", formatter_class=FORMAT,
                         help="train a model on a folder of files or a CSV file")
    fit.add_argument("data", help="folder with a subfolder per class (audio, image) or "
                     "CSV/TSV file with a header row (text, table)")
    fit.add_argument("--modality", required=True, default=argparse.SUPPRESS,
                     help="audio, text, image or table (required)")
    fit.add_argument("-o", "--output", default="model.gridnet",
                     help="model file to write (checked before training; replaced atomically)")
    add_training_options(fit)
    add_adapter_options(fit)
    fit.add_argument("--n-jobs", type=int, default=None,
                     help="audio: parallel jobs reading clips (joblib; -1: all cores)")
    fit.add_argument("--text-column", default="text", help="text: the CSV column of sentences")
    fit.add_argument("--label-column", default="label",
                     help="text, table: the CSV column of labels; rows whose label is empty, "
                     "NA, N/A, ?, null or None are dropped and named")
    fit.add_argument("--encoding", default="utf-8", help="text encoding of CSV and corpus files")
    fit.set_defaults(func=commands.fit)


def add_training_options(fit):
    """``gridnet fit``'s options for GridNetClassifier (None: its default)."""
    fit.add_argument("--epochs", type=int, default=None,
                     help="most training epochs (None: GridNetClassifier's 100, a safety net "
                     "behind early stopping)")
    fit.add_argument("--batch-size", type=int, default=None,
                     help="samples per gradient step (None: GridNetClassifier's 32)")
    fit.add_argument("--learning-rate", type=float, default=None,
                     help="Adam's step size (None: GridNetClassifier's 0.001)")
    fit.add_argument("--early-stopping", action=argparse.BooleanOptionalAction, default=None,
                     help=early_stopping_help())
    fit.add_argument("--seed", type=int, default=0, help="random seed (same seed, same model)")
    from ..training import OOS_WEIGHT as oos_weight
    fit.add_argument("--oos-label", default=None,
                     help="the label of out-of-scope examples in the data (inputs that belong "
                     f"to no class): learned as a class of their own (counted {oos_weight:g} times in the "
                     "loss), and the label rejected "
                     "inputs get (None: no such examples; predict --reject calls them "
                     "'unknown')")
    fit.add_argument("--quiet", action="store_true",
                     help="no progress bar (there is none when stderr is not a terminal)")


def add_adapter_options(fit):
    """``gridnet fit``'s options for one modality's adapter (data.ADAPTER_OPTIONS)."""
    fit.add_argument("--sr", type=int, default=None,
                     help="audio: sample rate (None: the clips' own, learned)")
    fit.add_argument("--n-mels", type=int, default=None, help="audio: mel bands (None: 40)")
    fit.add_argument("--frames", type=int, default=None,
                     help="audio: time steps per clip (None: learned, enough for 95%% of the clips)")
    fit.add_argument("--background", default=None, metavar="DIR",
                     help="audio: a folder of background recordings (at least a clip long) "
                     "mixed into training clips as noise; not kept in the model file")
    fit.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                     help="image: resize to H x W (None: the first image's size)")
    fit.add_argument("--positions", type=int, default=None,
                     help="text: words per sentence (None: learned, enough for 99%% of the sentences)")
    fit.add_argument("--order", choices=("as_is", "similarity"), default=None,
                     help="table: column order in the grid, as given or correlated columns "
                     "side by side (None: TabularAdapter's default)")
    fit.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None,
                     help="text: lower-case the words (None: case kept, TextAdapter's default)")
    fit.add_argument("--corpus", default=None, help="text: unlabeled sentences, one a line, to fit "
                     "starting word vectors on (with the training sentences)")
    fit.add_argument("--vectors", default=None, help="text: the starting word vectors: "
                     "'glove' (pretrained GloVe, the default), 'none' (a random start), or a "
                     "word2vec/GloVe text file")


def add_predict(sub):
    """``gridnet predict``."""
    pred = sub.add_parser("predict", formatter_class=FORMAT,
                          help="print a label and probability per input")
    pred.add_argument("model", help="model file written by 'gridnet fit'")
    pred.add_argument("inputs", nargs="*", help="files (audio, image models); sentences, or "
                      "one CSV file whose text column holds them (text models; - reads "
                      "sentences from stdin); or one CSV file (table models)")
    pred.add_argument("--file", default=None,
                      help="read more inputs from this text file, one a line (text models: "
                      "a .csv/.tsv file is read as a table, its text column the sentences)")
    pred.add_argument("--encoding", default="utf-8", help="text encoding of CSV and --file files")
    pred.add_argument("--windows", action="store_true",
                      help="audio: slide a window of the trained width over each recording "
                      "(longer than the training clips) and print a timeline: start, end, "
                      "label, probability per window")
    pred.add_argument("--hop", type=float, default=None,
                      help="with --windows: seconds between window starts (None: a quarter "
                      "of the window)")
    pred.add_argument("--csv", default=None,
                      help="with --windows: also write the timeline to this CSV file "
                      "(columns start, end, label, probability; one recording)")
    add_reject_options(pred)
    pred.set_defaults(func=commands.predict)


def add_reject_options(pred):
    """``gridnet predict``'s rejection options."""
    pred.add_argument("--reject", action=argparse.BooleanOptionalAction, default=None,
                      help="answer the rejection label for inputs that belong to no class "
                      "(top probability's log-odds under the threshold fitted on held-out data, or "
                      "the out-of-scope class); with --windows, windows of silence or part "
                      "of a word (None: as the model was saved, off for 'gridnet fit' models)")
    pred.add_argument("--reject-label", default=None,
                      help="with --reject: the label of rejected inputs (None: the model's "
                      "--oos-label, else 'unknown')")


def add_explain(sub):
    """``gridnet explain``."""
    exp = sub.add_parser("explain", formatter_class=FORMAT,
                         help="a picture per input of what drove the decision (needs matplotlib)")
    exp.add_argument("model", help="model file written by 'gridnet fit'")
    exp.add_argument("inputs", nargs="*", help="as for 'gridnet predict'")
    exp.add_argument("-o", "--output", default="explained",
                     help="folder for the pictures (one PNG per input)")
    exp.add_argument("--target", default=None,
                     help="the class to explain (None: each input's predicted class)")
    exp.add_argument("--top", type=int, default=5, help="top cells, words or n-grams printed")
    exp.add_argument("--file", default=None, help="as for 'gridnet predict'")
    exp.add_argument("--encoding", default="utf-8", help="text encoding of CSV and --file files")
    exp.set_defaults(func=commands.explain)


def add_evaluate(sub):
    """``gridnet evaluate``."""
    ev = sub.add_parser("evaluate", formatter_class=FORMAT,
                        help="accuracy, per-class report and confusion matrix")
    ev.add_argument("model", help="model file written by 'gridnet fit'")
    ev.add_argument("data", help="labelled data laid out as for 'gridnet fit'")
    ev.add_argument("--text-column", default=None, help="text: the column of sentences "
                    "(None: the one the model was trained with)")
    ev.add_argument("--label-column", default=None, help="the column of labels (None: the one "
                    "the model was trained with)")
    ev.add_argument("--ignore-unknown", action="store_true",
                    help="score only the samples whose label the model knows, and say how "
                    "many were left out (without it, such labels are an error)")
    ev.add_argument("--reject", action="store_true",
                    help="reject inputs that belong to no class (as predict --reject); "
                    "labels the model does not know count as out of scope; reports in-scope "
                    "accuracy (a rejected in-scope input is wrong) and out-of-scope recall")
    ev.add_argument("--encoding", default="utf-8", help="text encoding of the CSV file")
    ev.add_argument("--plot", default=None, help="write a PNG of the training history and the "
                    "confusion matrix to this file (needs matplotlib)")
    ev.set_defaults(func=commands.evaluate)


def add_export(sub):
    """``gridnet export``."""
    exp = sub.add_parser("export", formatter_class=FORMAT,
                         help="write a model as ONNX, to run without gridnet (needs onnx)")
    exp.add_argument("model", help="model file written by 'gridnet fit' or gridnet.save")
    exp.add_argument("-o", "--output", required=True, default=argparse.SUPPRESS,
                     help="the .onnx file to write")
    exp.set_defaults(func=commands.export)
