"""Classify short questions: TextAdapter + the sentence CNN preset on TREC-6 (5,452
training questions, 500 test questions, 6 coarse classes), beside TF-IDF n-grams with
logistic regression.

The grid is the literal word-by-position matrix (one-hot, a column per word of the
training vocabulary, case kept: capitalised names are clues), read sparsely; the
preset's first convolution, one position tall and the full width, learns a vector per
word (Kim's CNN-rand), then filters of heights 3, 4 and 5 and max over positions.

    python examples/classify_sentences.py [--data ../shared/data/trec]

Prints ``test accuracy: 0.XXXX`` last.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from adapters import TextAdapter  # noqa: E402
from shared_data import load_trec  # noqa: E402
from gridnet import GridNetClassifier  # noqa: E402


def gridnet_model(seed=0):
    from sklearn.pipeline import make_pipeline
    return make_pipeline(TextAdapter(positions=40, lowercase=False, max_vocab=10000),
                         GridNetClassifier(preset="text", max_epochs=6, random_state=seed))


def baseline_model():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                         LogisticRegression(C=10, max_iter=5000))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="the trec folder (default ../shared/data/trec)")
    args = parser.parse_args(argv)
    xtr, ytr, xte, yte = load_trec(args.data)
    t0 = time.perf_counter()
    model = gridnet_model().fit(xtr, ytr)
    acc = model.score(xte, yte)
    seconds = time.perf_counter() - t0
    base_acc = baseline_model().fit(xtr, ytr).score(xte, yte)
    adapter, clf = model[0], model[-1]
    print(f"TREC-6: {len(xtr)} training, {len(xte)} test questions; grids {adapter.grid_shape_} "
          f"(positions x vocabulary), one-hot")
    print(clf.summary())
    print(f"gridnet {acc:.4f} in {seconds:.0f} s; TF-IDF n-grams + logistic regression {base_acc:.4f}")
    print(f"baseline accuracy: {base_acc:.4f}")
    print(f"test accuracy: {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
