"""Calibration of the defaults' probabilities (issue 37's first measure): the top-label
calibration error (15 bins of the top probability) on FSDD's standard test split,
SST-2 test and CLINC150 test (in-scope), for the default pipelines, with the
temperature the classifier fits on its held-out early-stopping split (the default,
``calibration="temperature"``) beside the same model's uncalibrated probabilities
(temperature 1): one fit gives both, since the temperature never changes a prediction.

Rejection of out-of-scope inputs (the rest of issue 37) is not built yet; its rows will
join this table.

Usage: ``python benchmarks/open_set.py [--seeds 0,1,2] [--only fsdd,sst2,clinc150]``
(the data from ../shared/data). Prints a Markdown table, mean of the seeds.
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
from gridnet import GridNetClassifier  # noqa: E402
from gridnet.calibration import calibration_error  # noqa: E402

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


def measure(load, seeds):
    adapter, xtr, ytr, xte, yte = load()
    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        pipe = make_pipeline(adapter(), GridNetClassifier(random_state=seed)).fit(xtr, ytr)
        clf = pipe[-1]
        proba = pipe.predict_proba(xte)
        truth = np.searchsorted(clf.classes_, yte)
        # the same model uncalibrated: the logits are log(proba) * T up to a constant per row
        raw = softmax(np.log(np.maximum(proba, 1e-30)) * clf.temperature_, axis=1)
        rows.append((float(np.mean(proba.argmax(1) == truth)), calibration_error(truth, raw),
                     calibration_error(truth, proba), clf.temperature_, time.perf_counter() - t0))
    return np.array(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--only", default=",".join(SETS))
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
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
