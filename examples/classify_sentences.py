"""Classify short questions: TextAdapter + the sentence CNN preset on TREC-6 (5,452
training questions, 500 test questions, 6 coarse classes), beside TF-IDF n-grams with
logistic regression.

The grid is the literal word-by-position matrix (one-hot, a column per word of the
training vocabulary, case kept: capitalised names are clues), read sparsely; the
preset's first convolution, one position tall and the full width, learns a vector per
word, then filters of heights 3, 4 and 5 and max over positions (Kim's CNN).

The word vectors start from vectors fitted by the adapter (PPMI + SVD, 128 wide) on
the training questions plus an unlabeled corpus: WordNet's 117,659 synsets read as
sentences (words, hypernyms, gloss), from Debian's wordnet-base package
(``apt-get install wordnet-base``; /usr/share/wordnet). Fitting takes about a minute.
The labels stay the 5,452 training questions'. ``--corpus none`` (or no WordNet on
the machine) starts the vectors at random (Kim's CNN-rand).

    python examples/classify_sentences.py [--data ../shared/data/trec] [--corpus DIR|none]

Prints ``test accuracy: 0.XXXX`` last.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from adapters import TextAdapter  # noqa: E402
from shared_data import WORDNET, load_trec, read_wordnet  # noqa: E402
from gridnet import GridNetClassifier  # noqa: E402


def gridnet_model(seed=0, corpus=None):
    """The pipeline; ``corpus`` (list of str): unlabeled sentences for starting vectors
    (None: random start)."""
    from sklearn.pipeline import make_pipeline
    start = dict(embedding="svd", corpus=corpus, dim=128, window=5, random_state=0) if corpus else {}
    return make_pipeline(TextAdapter(positions=40, lowercase=False, max_vocab=10000, **start),
                         GridNetClassifier(preset="text", max_epochs=6, early_stopping=False,
                                           random_state=seed))


def load_corpus(arg):
    """--corpus: None -> WordNet where Debian puts it, if there; 'none' -> no corpus."""
    if arg is not None and arg.lower() == "none":
        return None, "none"
    if arg is None and not (WORDNET / "data.noun").exists():
        return None, f"none (no WordNet at {WORDNET}; apt-get install wordnet-base)"
    folder = arg or WORDNET
    return read_wordnet(folder), f"WordNet at {folder}"


def baseline_model():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                         LogisticRegression(C=10, max_iter=5000))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="the trec folder (default ../shared/data/trec)")
    parser.add_argument("--corpus", help=f"WordNet's database folder for the starting word "
                        f"vectors (default {WORDNET} when present), or 'none'")
    args = parser.parse_args(argv)
    xtr, ytr, xte, yte = load_trec(args.data)
    t0 = time.perf_counter()
    corpus, where = load_corpus(args.corpus)
    model = gridnet_model(corpus=corpus).fit(xtr, ytr)
    acc = model.score(xte, yte)
    seconds = time.perf_counter() - t0
    base_acc = baseline_model().fit(xtr, ytr).score(xte, yte)
    adapter, clf = model[0], model[-1]
    print(f"TREC-6: {len(xtr)} training, {len(xte)} test questions; grids {adapter.grid_shape_} "
          f"(positions x vocabulary), one-hot")
    if corpus:
        print(f"starting word vectors: PPMI + SVD on the training questions and {len(corpus)} "
              f"sentences of {where}; {adapter.embedding_coverage_:.1%} of the vocabulary has one")
    else:
        print(f"starting word vectors: random (corpus: {where})")
    print(clf.summary())
    print(f"gridnet {acc:.4f} in {seconds:.0f} s; TF-IDF n-grams + logistic regression {base_acc:.4f}")
    print(f"baseline accuracy: {base_acc:.4f}")
    print(f"test accuracy: {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
