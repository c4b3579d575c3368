"""What a first run with no options gets: each data set's default pipeline beside the
tuned example (examples/) and the usual baseline, measured in the same run.

Accuracy is the mean over seeds (``random_state`` 0, 1, 2 by default); times are
the mean fit + predict time of one seed (features included). Splits are fixed:

- FSDD: the standard split (takes 0-4 test). ``make_pipeline(AudioAdapter(),
  GridNetClassifier())`` and ``gridnet fit DIR --modality audio`` with no options
  (class folders of links to the clips); tuned: examples/classify_audio.py's model;
  baseline: MFCC statistics + SVM.
- Sentences: TREC-6, SST-2 and CLINC150 (in-scope intents, no rejection): train /
  test (dev unused here); MPQA: one stratified 80/20 split (random_state=0).
  ``make_pipeline(TextAdapter(), GridNetClassifier())`` and ``gridnet fit FILE.csv
  --modality text`` with no other option (a CSV of text and label) and ``gridnet
  evaluate``; baselines, in the same run: TF-IDF 1-2-grams + logistic regression (C=10)
  and fastText (``fasttext-numpy2-wheel``, the bench extra: bigrams, dim 100, lr 0.5,
  25 epochs, one thread, seeded; mean of the seeds too).
- digits: the 8x8 images as grids, held-out stratified quarter (random_state=0);
  ``GridNetClassifier()``; tuned: 30 fixed epochs of the image preset; baseline LR.
- adult: ``gridnet fit train.csv --modality table --label-column income`` and
  ``gridnet evaluate`` on test.csv with the labels' trailing "." removed (a copy);
  baseline: one-hot + logistic regression.

Usage: ``python benchmarks/defaults.py [--seeds 0,1,2] [--only fsdd,trec,...]``
(the data from ../shared/data; see its README). Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
from sklearn.pipeline import make_pipeline  # noqa: E402

from adapters import AudioAdapter, TextAdapter  # noqa: E402
from gridnet import GridNetClassifier  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def fit_score(model, xtr, ytr, xte, yte):
    return timed(lambda: model.fit(xtr, ytr).score(xte, yte))


def cli(*argv):
    """Run the installed command line as a user would; return its stdout."""
    out = subprocess.run([sys.executable, "-m", "gridnet", *argv], capture_output=True, text=True,
                         cwd=ROOT, check=False)
    if out.returncode:
        raise RuntimeError(f"gridnet {' '.join(argv)} failed: {out.stderr.strip()}")
    return out.stdout


def cli_accuracy(model, data, *extra):
    out = cli("evaluate", str(model), str(data), *extra)
    return float(out.split("accuracy: ")[1].split()[0])


# -- data sets ----------------------------------------------------------------------------
def fsdd(seeds):
    from classify_audio import baseline_model, gridnet_model, mfcc_stats
    from shared_data import load_fsdd
    files, digits, _, take = load_fsdd(DATA / "fsdd")
    files = np.array(files)
    test = take <= 4
    rows = {"default pipeline": [], "gridnet fit (CLI)": [], "tuned example": []}
    with tempfile.TemporaryDirectory() as tmp:
        for part, mask in (("train", ~test), ("test", test)):
            for f, d in zip(files[mask], digits[mask]):
                (Path(tmp) / part / str(d)).mkdir(parents=True, exist_ok=True)
                os.symlink(f, Path(tmp) / part / str(d) / Path(f).name)
        for s in seeds:
            rows["default pipeline"].append(fit_score(
                make_pipeline(AudioAdapter(), GridNetClassifier(random_state=s)),
                files[~test], digits[~test], files[test], digits[test]))
            model = Path(tmp) / f"fsdd{s}.gridnet"
            t0 = time.perf_counter()
            cli("fit", f"{tmp}/train", "--modality", "audio", "--seed", str(s), "-o", str(model))
            acc = cli_accuracy(model, f"{tmp}/test")
            rows["gridnet fit (CLI)"].append((acc, time.perf_counter() - t0))
            adapter, clf = gridnet_model(seed=s)
            rows["tuned example"].append(fit_score(make_pipeline(adapter, clf), files[~test],
                                                   digits[~test], files[test], digits[test]))
    feats, t_feat = timed(lambda: mfcc_stats(files))
    acc, t = fit_score(baseline_model(), feats[~test], digits[~test], feats[test], digits[test])
    return rows, ("MFCC stats + SVM", acc, t + t_feat)


def _write_csv(path, texts, labels):
    import csv
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(zip(texts, labels))


def fasttext_score(xtr, ytr, xte, yte, seed):
    """fastText's supervised classifier with the issue's fixed settings."""
    import fasttext
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.txt"
        path.write_text("".join(f"__label__{y} {' '.join(x.split())}\n" for x, y in zip(xtr, ytr)),
                        encoding="utf-8")
        model = fasttext.train_supervised(str(path), wordNgrams=2, dim=100, lr=0.5, epoch=25,
                                          seed=seed, thread=1, verbose=0)
    pred = [model.predict(" ".join(x.split()))[0][0][len("__label__"):] for x in xte]
    return float(np.mean(np.array(pred) == np.array([str(y) for y in yte])))


def _text_rows(xtr, ytr, xte, yte, seeds):
    from classify_sentences import baseline_model
    rows = {"default pipeline": [], "gridnet fit (CLI)": [], "fastText (bigrams)": []}
    with tempfile.TemporaryDirectory() as tmp:
        train, test = Path(tmp) / "train.csv", Path(tmp) / "test.csv"
        _write_csv(train, xtr, ytr)
        _write_csv(test, xte, yte)
        for s in seeds:
            rows["default pipeline"].append(fit_score(
                make_pipeline(TextAdapter(), GridNetClassifier(random_state=s)), xtr, ytr, xte, yte))
            model = Path(tmp) / f"text{s}.gridnet"
            t0 = time.perf_counter()
            cli("fit", str(train), "--modality", "text", "--seed", str(s), "-o", str(model))
            rows["gridnet fit (CLI)"].append((cli_accuracy(model, test), time.perf_counter() - t0))
            rows["fastText (bigrams)"].append(timed(lambda: fasttext_score(xtr, ytr, xte, yte, s)))
    acc, t = fit_score(baseline_model(), xtr, ytr, xte, yte)
    return rows, ("TF-IDF 1-2-grams + LR (C=10)", acc, t)


def trec(seeds):
    from shared_data import load_trec
    xtr, ytr, xte, yte = load_trec(DATA / "trec")
    return _text_rows(xtr, ytr, xte, yte, seeds)


def _lines(path, encoding="utf-8"):
    with open(path, encoding=encoding, errors="strict") as fh:
        return [line.rstrip("\n") for line in fh if line.strip()]


def sst2(seeds):
    def read(part):
        lines = _lines(DATA / "sst2" / f"{part}.txt")
        return [ln.split(" ", 1)[1] for ln in lines], np.array([ln.split(" ", 1)[0] for ln in lines])
    (xtr, ytr), (xte, yte) = read("train"), read("test")
    return _text_rows(xtr, ytr, xte, yte, seeds)


def clinc150(seeds):
    import csv

    def read(part):
        with open(DATA / "clinc150" / f"{part}.csv", encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        return [r["text"] for r in rows], np.array([r["label"] for r in rows])
    (xtr, ytr), (xte, yte) = read("train"), read("test")
    return _text_rows(xtr, ytr, xte, yte, seeds)


def mpqa(seeds):
    from sklearn.model_selection import train_test_split
    pos, neg = (_lines(DATA / "mpqa" / f"mpqa.{k}", "latin-1") for k in ("pos", "neg"))
    x = np.array(pos + neg, dtype=object)
    y = np.array(["pos"] * len(pos) + ["neg"] * len(neg))
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    return _text_rows(list(xtr), ytr, list(xte), yte, seeds)


def digits(seeds):
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    d = load_digits()
    X = (d.images / 16.0)[:, None].astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(X, d.target, test_size=0.25, random_state=0, stratify=d.target)
    rows = {"default pipeline": [], "tuned example": []}
    for s in seeds:
        rows["default pipeline"].append(fit_score(GridNetClassifier(random_state=s), xtr, ytr, xte, yte))
        rows["tuned example"].append(fit_score(GridNetClassifier(
            preset="image", max_epochs=30, early_stopping=False, ema_momentum=None, random_state=s),
            xtr, ytr, xte, yte))
    flat = (xtr.reshape(len(xtr), -1), xte.reshape(len(xte), -1))
    acc, t = fit_score(make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
                       flat[0], ytr, flat[1], yte)
    return rows, ("LR on pixels", acc, t)


def adult(seeds):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    import pandas as pd
    train, test = DATA / "adult" / "train.csv", DATA / "adult" / "test.csv"
    rows = {"gridnet fit (CLI)": []}
    with tempfile.TemporaryDirectory() as tmp:
        fixed = Path(tmp) / "test.csv"      # the labels' trailing "." removed, nothing else
        lines = test.read_text().splitlines()
        fixed.write_text("\n".join([lines[0]] + [ln[:-1] if ln.endswith(".") else ln for ln in lines[1:]]) + "\n")
        for s in seeds:
            model = Path(tmp) / f"adult{s}.gridnet"
            t0 = time.perf_counter()
            cli("fit", str(train), "--modality", "table", "--label-column", "income", "--seed", str(s),
                "-o", str(model))
            rows["gridnet fit (CLI)"].append((cli_accuracy(model, fixed), time.perf_counter() - t0))
        tr, te = pd.read_csv(train, skipinitialspace=True), pd.read_csv(fixed, skipinitialspace=True)
    y_tr, y_te = tr.pop("income"), te.pop("income")
    cat = [c for c in tr.columns if not pd.api.types.is_numeric_dtype(tr[c])]
    num = [c for c in tr.columns if c not in cat]
    base = make_pipeline(ColumnTransformer([("n", StandardScaler(), num),
                                            ("c", OneHotEncoder(handle_unknown="ignore"), cat)]),
                         LogisticRegression(max_iter=5000))
    acc, t = fit_score(base, tr, y_tr, te, y_te)
    return rows, ("one-hot + LR", acc, t)


SETS = {"fsdd": ("FSDD (standard split)", fsdd), "trec": ("TREC-6", trec), "sst2": ("SST-2", sst2),
        "mpqa": ("MPQA (80/20)", mpqa), "clinc150": ("CLINC150 (in-scope)", clinc150),
        "digits": ("digits 8x8", digits), "adult": ("adult", adult)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--only", default=",".join(SETS))
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    warnings.simplefilter("error", UserWarning)     # a warning is a failure here
    print(f"seeds {seeds}; accuracy: mean over seeds; time: mean fit + predict of one seed")
    print("| data set | model | accuracy | per seed | time |")
    print("|---|---|---:|---|---:|")
    for key in args.only.split(","):
        name, fn = SETS[key]
        rows, (bname, bacc, bt) = fn(seeds)
        for model, results in rows.items():
            accs = [a for a, _ in results]
            print(f"| {name} | {model} | {np.mean(accs):.4f} | {', '.join(f'{a:.4f}' for a in accs)} "
                  f"| {np.mean([t for _, t in results]):.0f} s |", flush=True)
        print(f"| {name} | baseline: {bname} | {bacc:.4f} | - | {bt:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
