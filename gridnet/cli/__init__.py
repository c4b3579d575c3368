"""The ``gridnet`` command line: the one place that uses both ``gridnet`` and
``adapters``. :mod:`.commands` holds the commands, :mod:`.data` reads their input."""
from __future__ import annotations

import argparse
import os
import sys

from . import commands
from .data import CLIError

__all__ = ["main", "build_parser", "CLIError"]


def build_parser():
    parser = argparse.ArgumentParser(prog="gridnet", description="CNNs for data turned into grids.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train and evaluate on sklearn's digits (no data needed)")
    demo.add_argument("--epochs", type=int, default=30)
    demo.set_defaults(func=commands.demo)

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
    loc.set_defaults(func=commands.locality)

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
    fit.set_defaults(func=commands.fit)

    pred = sub.add_parser("predict", help="print a label and probability per input")
    pred.add_argument("model")
    pred.add_argument("inputs", nargs="+", help="files (audio, image), sentences (text; - reads "
                      "stdin), or one CSV file (table)")
    pred.add_argument("--encoding", default="utf-8")
    pred.set_defaults(func=commands.predict)

    ev = sub.add_parser("evaluate", help="accuracy, per-class report and confusion matrix")
    ev.add_argument("model")
    ev.add_argument("data")
    ev.add_argument("--text-column", default=None)
    ev.add_argument("--label-column", default=None)
    ev.add_argument("--encoding", default="utf-8")
    ev.set_defaults(func=commands.evaluate)
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
