"""Loaders for the real datasets in ../shared/data (see its README), used by the
examples and benchmarks. Each takes the dataset folder and raises SystemExit with a
clear message when it is missing."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _folder(path, name, expect):
    path = Path(path) if path else SHARED / name
    if not (path / expect).exists():
        raise SystemExit(f"{name} data not found at {path} (looked for {expect}); pass its folder "
                         f"with --data, e.g. --data ../shared/data/{name}")
    return path


def load_fsdd(path=None):
    """Free Spoken Digit Dataset -> (files, digits, speakers, take indices), sorted by name."""
    folder = _folder(path, "fsdd", "recordings")
    files = sorted((folder / "recordings").glob("*.wav"))
    if not files:
        raise SystemExit(f"no .wav files in {folder / 'recordings'}")
    parts = [f.stem.split("_") for f in files]
    return ([str(f) for f in files], np.array([int(p[0]) for p in parts]),
            np.array([p[1] for p in parts]), np.array([int(p[2]) for p in parts]))


def read_trec(file):
    """One question a line, ``COARSE:fine text``; bytes that are not UTF-8 are read as
    Latin-1 (the training file has one). Lines are split on newline only."""
    texts, labels = [], []
    with open(file, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                line = raw.decode("latin-1")
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            label, _, text = line.partition(" ")
            if ":" not in label or not text:
                raise ValueError(f"{file}, line {lineno}: expected 'COARSE:fine question'")
            labels.append(label.split(":")[0])
            texts.append(text)
    return texts, np.array(labels)


WORDNET = Path("/usr/share/wordnet")     # Debian's wordnet-base


def read_wordnet(folder=None, levels=2):
    """WordNet 3.0 as unlabeled text: one sentence per synset (117,659 of them), its
    words, the words of its hypernyms ``levels`` up, its lexicographer file as a token
    (``lex07``) and its gloss. Reads the ``data.{noun,verb,adj,adv}`` files of the
    WordNet database folder (Debian: ``apt-get install wordnet-base`` puts them in
    /usr/share/wordnet). Used as the ``corpus`` for fitting word vectors."""
    folder = Path(folder) if folder else WORDNET
    files = [folder / f"data.{pos}" for pos in ("noun", "verb", "adj", "adv")]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise SystemExit(f"WordNet database not found: {', '.join(missing)} missing. Install it "
                         f"(Debian/Ubuntu: apt-get install wordnet-base) or pass its folder")
    synsets = {}
    for file in files:
        with open(file, encoding="latin-1") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.startswith("  "):           # the licence header
                    continue
                head, _, gloss = line.partition("|")
                f = head.split()
                try:
                    kind = "a" if f[2] == "s" else f[2]
                    n_words = int(f[3], 16)
                    words = [re.sub(r"\(.*\)$", "", f[4 + 2 * i]).lower() for i in range(n_words)]
                    k = 4 + 2 * n_words
                    n_ptr = int(f[k])
                    hyper = [(f[k + 2 + 4 * j], f[k + 3 + 4 * j]) for j in range(n_ptr)
                             if f[k + 1 + 4 * j] in ("@", "@i")]
                except (IndexError, ValueError):
                    raise ValueError(f"{file}, line {lineno}: not a WordNet synset line") from None
                synsets[(f[0], kind)] = (words, [(o, "a" if p == "s" else p) for o, p in hyper],
                                         f"lex{f[1]}", gloss.strip())
    out = []
    for words, hyper, lex, gloss in synsets.values():
        tokens = list(words)
        frontier = hyper
        for _ in range(levels):
            nxt = []
            for h in frontier:
                if h in synsets:
                    tokens += synsets[h][0][:2]
                    nxt += synsets[h][1]
            frontier = nxt
        out.append(" ".join(t.replace("_", " ") for t in tokens) + f" {lex} "
                   + gloss.replace('"', " "))
    return out


def load_trec(path=None):
    """TREC-6 -> (train texts, train labels, test texts, test labels), coarse classes."""
    folder = _folder(path, "trec", "train.txt")
    return (*read_trec(folder / "train.txt"), *read_trec(folder / "test.txt"))


