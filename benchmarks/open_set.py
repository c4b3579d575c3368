"""Calibration of the defaults' probabilities (issue 37's first measure): the top-label
calibration error (15 bins of the top probability) on FSDD's standard test split,
SST-2 test and CLINC150 test (in-scope), for the default pipelines, with the
temperature the classifier fits on its held-out early-stopping split (the default,
``calibration="temperature"``) beside the same model's uncalibrated probabilities
(temperature 1): one fit gives both, since the temperature never changes a prediction.

Then rejection (``--rejection``): the default pipeline with ``reject=True`` (its threshold
fitted in fit on its own held-out split), in-scope accuracy (a rejected in-scope input
counts as wrong) and out-of-scope recall, on CLINC150's test.csv and oos_test.csv
(trained on train.csv alone, then with oos_train.csv labelled "oos") and on FSDD's open
set (trained on digits 0-7 of takes 5-49; tested on takes 0-4 of all ten). Beside each,
the plain top-probability threshold of the model trained without out-of-scope data, set
on the test data to the same in-scope accuracy (a reference, not a method). Thresholds
are log-odds of the top probability (``gridnet.rejection.score``; for sentences, less the
unseen words' weighted surprise). The last column is the same fits rejecting on the
log-odds alone, their threshold fitted the same way (the rule before sentences counted
their unseen words).

Usage: ``python benchmarks/open_set.py [--seeds 0,1,2] [--only fsdd,sst2,clinc150]
[--rejection clinc150,clinc150_oos,fsdd_open]`` (the data from ../shared/data). Prints
Markdown tables, mean of the seeds.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
from scipy.special import softmax  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from adapters import AudioAdapter, TextAdapter  # noqa: E402
from gridnet import GridNetClassifier, training  # noqa: E402
from gridnet.calibration import calibration_error  # noqa: E402
from gridnet.rejection import (calibrated_logits, fit_threshold, oos_code, rejected,  # noqa: E402
                               score)

DATA = ROOT.parent / "shared" / "data"


def _lines(path):
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh if line.strip()]


def fsdd():
    from shared_data import load_fsdd
    files, digits, _, take = load_fsdd(DATA / "fsdd")
    files = np.array(files)
    return (AudioAdapter, list(files[take > 4]), digits[take > 4], list(files[take <= 4]),
            digits[take <= 4])


def sst2():
    def read(part):
        lines = _lines(DATA / "sst2" / f"{part}.txt")
        return [ln.split(" ", 1)[1] for ln in lines], np.array([ln.split(" ", 1)[0] for ln in lines])
    (xtr, ytr), (xte, yte) = read("train"), read("test")
    return TextAdapter, xtr, ytr, xte, yte


def clinc150():
    def read(part):
        with open(DATA / "clinc150" / f"{part}.csv", encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        return [r["text"] for r in rows], np.array([r["label"] for r in rows])
    (xtr, ytr), (xte, yte) = read("train"), read("test")
    return TextAdapter, xtr, ytr, xte, yte


SETS = {"fsdd": ("FSDD standard test split", fsdd), "sst2": ("SST-2 test", sst2),
        "clinc150": ("CLINC150 test (in-scope)", clinc150)}


def _clinc(part):
    with open(DATA / "clinc150" / f"{part}.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], np.array([r["label"] for r in rows], dtype=object)


def clinc150_open(with_oos):
    (xtr, ytr), (xin, yin), (xout, _) = _clinc("train"), _clinc("test"), _clinc("oos_test")
    extra = _clinc("oos_train") if with_oos else ([], np.array([], dtype=object))
    return (TextAdapter, xtr + extra[0], np.concatenate([ytr, extra[1]]), xtr, ytr, xin, yin,
            xout)


def fsdd_open():
    from shared_data import load_fsdd
    files, digits, _, take = load_fsdd(DATA / "fsdd")
    files = np.array(files)
    train, test = (take >= 5) & (digits <= 7), take <= 4
    inside = test & (digits <= 7)
    return (AudioAdapter, list(files[train]), digits[train], list(files[train]), digits[train],
            list(files[inside]), digits[inside], list(files[test & (digits > 7)]))


OPEN_SETS = {"clinc150": ("CLINC150, no out-of-scope training data", lambda: clinc150_open(False)),
             "clinc150_oos": ("CLINC150, with oos_train.csv", lambda: clinc150_open(True)),
             "fsdd_open": ("FSDD open set (8 and 9 out of scope)", fsdd_open)}


def _fit(adapter, x, y, seed, **kw):
    return make_pipeline(adapter(), GridNetClassifier(random_state=seed, **kw)).fit(x, y)


def logits(pipe, x):
    """The pipeline's calibrated logits of ``x`` (n, k)."""
    return calibrated_logits(pipe[-1], pipe[:-1].transform(x))


def plain_recall(z_in, yin, classes, z_out, accuracy):
    """Out-of-scope recall of a plain top-probability threshold (on its log-odds, which
    do not round to a tie at 1.0) at the loosest setting whose in-scope accuracy is at
    least ``accuracy``; ``z_in``, ``z_out``: calibrated logits."""
    hit = classes[z_in.argmax(axis=1)] == yin
    top_in, top_out = score(z_in), score(z_out)
    best = 0.0
    for t in np.unique(np.concatenate([top_in, top_out, [np.inf]])):
        if np.mean(hit & (top_in >= t)) >= accuracy - 1e-12:
            best = max(best, float(np.mean(top_out < t)))
    return best


_PLAIN = {}      # (adapter, training size, seed) -> the pipeline fitted without out-of-scope data


def measure_rejection(load, seeds):
    adapter, xfit, yfit, xplain, yplain, xin, yin, xout = load()
    with_oos = len(yfit) != len(yplain)
    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        pipe = _fit(adapter, xfit, yfit, seed, reject=True,
                    **({"reject_label": "oos"} if with_oos else {}))
        seconds = time.perf_counter() - t0
        pin, pout = pipe.predict(xin), pipe.predict(xout)
        label = pipe[-1].reject_label if with_oos else (-1 if pin.dtype.kind == "i" else "unknown")
        acc, recall = float(np.mean(pin == yin)), float(np.mean(pout == label))
        alone = log_odds_alone(pipe, xfit, yfit, xin, yin, xout)
        key = (adapter.__name__, len(yplain), seed)      # the same fit as another row's
        plain = _PLAIN.get(key) or (_fit(adapter, xplain, yplain, seed) if with_oos else pipe)
        _PLAIN[key] = plain
        reference = plain_recall(logits(plain, xin), yin, plain[-1].classes_,
                                 logits(plain, xout), acc)
        rows.append((acc, recall, reference, pipe[-1].reject_threshold_, seconds, *alone))
    return np.array(rows)


def log_odds_alone(pipe, xfit, yfit, xin, yin, xout):
    """(in-scope accuracy, out-of-scope recall) of the same fit rejecting on the log-odds
    alone, its threshold the same quantile of its own held-out split (the rule before
    sentences counted their unseen words; for other grids the same figures)."""
    clf = pipe[-1]
    codes = np.searchsorted(clf.classes_, yfit)
    _, val = training.validation_split(codes, clf.validation_fraction,
                                       training.seed_streams(clf.random_state)["split"])
    held = logits(pipe, [xfit[i] for i in val])
    threshold = fit_threshold(held, codes[val], clf.reject_rate, oos_code(clf))
    z_in, z_out = logits(pipe, xin), logits(pipe, xout)
    out_in, out_out = rejected(z_in, threshold, oos_code(clf)), rejected(z_out, threshold, oos_code(clf))
    hit = clf.classes_[z_in.argmax(axis=1)] == yin
    return float(np.mean(hit & ~out_in)), float(np.mean(out_out))


def measure(load, seeds):
    adapter, xtr, ytr, xte, yte = load()
    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        pipe = make_pipeline(adapter(), GridNetClassifier(random_state=seed)).fit(xtr, ytr)
        clf = pipe[-1]
        z = logits(pipe, xte)
        proba, truth = softmax(z, axis=1), np.searchsorted(clf.classes_, yte)
        raw = softmax(z * np.float32(clf.temperature_), axis=1)   # the same model, uncalibrated
        rows.append((float(np.mean(proba.argmax(1) == truth)), calibration_error(truth, raw),
                     calibration_error(truth, proba), clf.temperature_, time.perf_counter() - t0))
    return np.array(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--only", default=",".join(SETS))
    parser.add_argument("--rejection", default=",".join(OPEN_SETS))
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.rejection:
        print("| data | in-scope accuracy | out-of-scope recall | plain threshold's recall at "
              "that accuracy | threshold (per seed) | fit time | the same fits, log-odds alone |")
        print("|---|---:|---:|---:|---|---:|---|")
        for key in args.rejection.split(","):
            name, load = OPEN_SETS[key]
            r = measure_rejection(load, seeds)
            print(f"| {name} | {r[:, 0].mean():.4f} | {r[:, 1].mean():.3f} | {r[:, 2].mean():.3f} | "
                  f"{', '.join(f'{t:.2f}' for t in r[:, 3])} | {r[:, 4].mean():.0f} s | "
                  f"{r[:, 5].mean():.4f} / {r[:, 6].mean():.3f} |", flush=True)
        print()
    if not args.only:
        return
    print("| data set | accuracy | calibration error, temperature 1 | calibration error, "
          "fitted temperature (default) | temperature (per seed) | time |")
    print("|---|---:|---:|---:|---|---:|")
    for key in args.only.split(","):
        name, load = SETS[key]
        r = measure(load, seeds)
        print(f"| {name} | {r[:, 0].mean():.4f} | {r[:, 1].mean():.4f} | {r[:, 2].mean():.4f} | "
              f"{', '.join(f'{t:.3f}' for t in r[:, 3])} | {r[:, 4].mean():.0f} s |", flush=True)


if __name__ == "__main__":
    main()
