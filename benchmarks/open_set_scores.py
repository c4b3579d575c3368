"""Scores for rejecting out-of-scope inputs, on dev data only (groundwork for issue 37):
the default pipeline (seed 0), a threshold at quantiles of its own held-out split's
scores, and what it gives: in-scope accuracy (a rejected in-scope input counts as wrong)
and out-of-scope recall. Scores: the top (calibrated) probability, the top logit, the
energy (log-sum-exp of the logits).

- CLINC150: train.csv -> dev.csv (in-scope) and oos_dev.csv;
- FSDD open set: digits 0-7 of takes 10-49 -> takes 5-9 of all ten (8 and 9 out of scope).

Usage: ``python benchmarks/open_set_scores.py clinc|fsdd`` (the data from ../shared/data).
"""
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
import numpy as np  # noqa: E402
from scipy.special import logsumexp  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from adapters import AudioAdapter, TextAdapter  # noqa: E402
from gridnet import GridNetClassifier, training  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def scores(clf, G, rows=None):
    z = clf.decision_function(G if rows is None else G[rows]).astype(np.float64)
    if z.ndim == 1: z = np.stack([-z / 2, z / 2], 1)
    p = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    return {"msp": p.max(1), "maxlogit": z.max(1), "energy": logsumexp(z, axis=1)}, z.argmax(1)

def report(name, clf, Gtr, ytr, Gin, yin, Gout):
    codes = np.searchsorted(clf.classes_, ytr)
    _, val = training.validation_split(codes, clf.validation_fraction, training.seed_streams(0)["split"])
    sval, _ = scores(clf, Gtr, val)
    sin, pin = scores(clf, Gin); sout, _ = scores(clf, Gout)
    hit = clf.classes_[pin] == yin
    print(f"{name}: in-scope acc without rejection {hit.mean():.4f}", flush=True)
    for key in sval:
        for q in (0.01, 0.02, 0.05, 0.10):
            t = np.quantile(sval[key], q)
            keep = sin[key] >= t
            print(f"  {key:8s} q={q:.2f}: in-scope acc {np.mean(hit & keep):.4f}  oos recall {np.mean(sout[key] < t):.4f}", flush=True)

def clinc():
    def read(part):
        with open(DATA / "clinc150" / f"{part}.csv", encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        return [r["text"] for r in rows], np.array([r["label"] for r in rows])
    (xtr, ytr), (xd, yd), (xo, _) = read("train"), read("dev"), read("oos_dev")
    m = make_pipeline(TextAdapter(), GridNetClassifier(random_state=0)).fit(xtr, ytr)
    t = m[0].transform
    report("CLINC dev", m[-1], t(xtr), ytr, t(xd), yd, t(xo))

def fsdd():
    from shared_data import load_fsdd
    files, digits, _, take = load_fsdd(DATA / "fsdd")
    files = np.array(files)
    tr = (take >= 10) & (digits <= 7); dv = (take >= 5) & (take <= 9)
    a = AudioAdapter()
    m = make_pipeline(a, GridNetClassifier(random_state=0)).fit(list(files[tr]), digits[tr])
    Gtr = a.transform(list(files[tr])); Gd = a.transform(list(files[dv]))
    ind = digits[dv] <= 7
    report("FSDD open set dev", m[-1], Gtr, digits[tr], Gd[ind], digits[dv][ind], Gd[~ind])

if __name__ == "__main__":
    {"clinc": clinc, "fsdd": fsdd}[sys.argv[1]]()
