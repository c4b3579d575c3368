"""Loaders for the real datasets in ../shared/data (see its README), used by the
examples and benchmarks. Each takes the dataset folder and raises SystemExit with a
clear message when it is missing."""
from __future__ import annotations

import os
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


def load_trec(path=None):
    """TREC-6 -> (train texts, train labels, test texts, test labels), coarse classes."""
    folder = _folder(path, "trec", "train.txt")
    return (*read_trec(folder / "train.txt"), *read_trec(folder / "test.txt"))


