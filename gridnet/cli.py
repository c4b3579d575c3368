"""The ``gridnet`` command line."""
from __future__ import annotations

import argparse
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
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"gridnet {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
