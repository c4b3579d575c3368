"""The locality check against the truth, on a panel of data sets.

    python benchmarks/locality_panel.py [--only digits,wine] [--truth] [--n-jobs 2]

The truth comes from a REFERENCE PROTOCOL, fixed before the check was tuned and not
changed since:

- the model: a small CNN on the columns as a one-row strip (1, 1, f): two blocks of
  [Conv2D 16 then 32 features, 1 wide by 5 long, "same", ReLU; max pool 1 x 2], a dense
  layer of 32 (ReLU), the output layer; Adam, learning rate 1e-3, batches of 64, early
  stopping on 10% of the training fold (patience 5, at most 100 epochs); columns
  standardised on the training fold and clipped to +/- 3;
- scored by 5 x 2 repeated stratified cross-validation (RepeatedStratifiedKFold,
  n_splits=2, n_repeats=5, random_state=0), accuracy, on the columns as given and on
  10 random column orders (numpy default_rng(1) permutations), the same folds for all;
- truth "local" when the given order's mean beats every shuffled order's mean and
  their mean by at least 0.01; "not local" when it does not beat the shuffled mean at
  all; "either" otherwise.

The check agrees with a row when its verdict equals the truth, or the truth is
"either"; "inconclusive" agrees only with "either". The check runs with its defaults
(``locality_check(X, y, random_state=0)``) on the same table.

Data sets: FSDD clips as their mean log-mel band energies (40 ordered bands; labels the
digit and the speaker; needs ../shared/data/fsdd), scikit-learn's digits as 64 columns
in raster order and with the columns in one fixed random order, breast cancer, wine,
adult (needs ../shared/data/adult; 5,000 rows drawn with seed 0, encoded as the CLI's
locality command encodes a table), and synthetic tables made with seeds that the
check's tests never use: two shapes whose places swap between the classes (a
position-blind model sees both shapes in every class), class-dependent sine waves (two noise levels), and
columns that carry the class one by one in a random order.

The reference scores take minutes per data set; they are kept in
``locality_panel_truth.json`` beside this script (recomputed with ``--truth``, or when a
data set's content changed) so that a run of the check is quick.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
TRUTH_FILE = Path(__file__).with_name("locality_panel_truth.json")
DATA = ROOT.parent / "shared" / "data"
SYNTH_SEED = 20261202          # the tests use seeds below 1,000
#: the small table's seed: the first from SYNTH_SEED + 10 on whose 19-order check (no orders
#: added) gained between 0.01 and 0.03 without reaching significance, the edge the row is for
SMALL_TABLE_SEED = 20261214


# -- the data sets ------------------------------------------------------------------------
def fsdd_bands():
    from shared_data import load_fsdd

    from adapters import AudioAdapter
    files, digits, speakers, _ = load_fsdd(DATA / "fsdd")
    grids = AudioAdapter(sr=8000, n_mels=40, n_fft=512, hop_length=128, frames=48,
                         trim=True).fit_transform(files)
    return grids[:, 0].mean(axis=2).astype(np.float64), digits, speakers


def adult():
    from adapters import TabularAdapter
    from gridnet.cli.data import read_table
    header, columns, _ = read_table(str(DATA / "adult" / "train.csv"))
    j = header.index("income")
    y = np.array([v.strip() for v in columns[j]])
    data = {h: c for i, (h, c) in enumerate(zip(header, columns)) if i != j}
    keep = np.sort(np.random.default_rng(0).choice(len(y), 5000, replace=False))
    data = {h: [c[i] for i in keep] for h, c in data.items()}
    X = TabularAdapter().fit_transform(data)[:, 0, 0, :].astype(np.float64)
    return X, y[keep]


def swapped_shapes(n=1200, f=48, seed=SYNTH_SEED):
    """Shape A (a rising ramp) and shape B (a peak), each with a random sign, at two
    fixed places; class 0 has A at the first place and B at the second, class 1 the
    other way round. Every column's distribution is the same in both classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    A, B = np.array([-1.0, -0.5, 0.0, 0.5, 1.0]), np.array([-0.5, 0.5, 1.0, 0.5, -0.5])
    X = 0.6 * rng.standard_normal((n, f))
    for i in range(n):
        first, second = (A, B) if y[i] == 0 else (B, A)
        X[i, 10:15] += rng.choice([-1, 1]) * first
        X[i, 30:35] += rng.choice([-1, 1]) * second
    return X, y


def sines(n=900, f=64, seed=SYNTH_SEED + 1, noise=0.5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    t = np.linspace(0, 1, f)
    freq = np.array([2.0, 3.0, 4.0])[y][:, None] * rng.uniform(0.9, 1.1, (n, 1))
    X = np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    return X + noise * rng.standard_normal((n, f)), y


def independent_columns(n=900, f=24, seed=SYNTH_SEED + 2):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    means = rng.standard_normal((3, f)) * 0.5
    X = means[y] + rng.standard_normal((n, f))
    return X[:, rng.permutation(f)], y


def noisy_thresholds(n=1600, f=11, seed=SYNTH_SEED + 4):
    """A wine-quality-like table: three ordered classes from a score that is partly
    linear and partly steps (which trees fit and small networks smooth), with noise, its
    columns in a random order: trees beat a competent probe, and the order means nothing."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, f))
    score = (0.3 * X[:, 0] + 0.2 * X[:, 1] + 1.2 * (X[:, 2] > 0.5) - 1.0 * (X[:, 3] < -0.3)
             + 1.0 * ((X[:, 4] > 0) & (X[:, 5] > 0)) + 0.6 * rng.standard_normal(n))
    y = np.digitize(score, np.quantile(score, [0.4, 0.8]))
    return X[:, rng.permutation(f)], y


def small_table(seed, n=768, f=8):
    """A Pima-like table: 768 rows, 8 columns in no order, a binary label from a noisy
    mix of a few of them."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, f))
    logit = 0.9 * X[:, 0] + 0.5 * X[:, 1] - 0.4 * X[:, 2] + 0.6 * np.abs(X[:, 3]) - 0.4
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    return X[:, rng.permutation(f)], y


def panel(only=None):
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine
    rows = []

    def add(name, make):
        if only and name not in only:
            return
        try:
            X, y = make()
        except SystemExit as exc:             # the shared data is absent
            print(f"skipping {name}: {exc}", file=sys.stderr)
            return
        rows.append((name, np.asarray(X, dtype=np.float64), np.asarray(y)))

    if not only or {"fsdd digit", "fsdd speaker"} & set(only):
        try:
            bands, digits, speakers = fsdd_bands()
            add("fsdd digit", lambda: (bands, digits))
            add("fsdd speaker", lambda: (bands, speakers))
        except SystemExit as exc:
            print(f"skipping FSDD: {exc}", file=sys.stderr)
    d = load_digits()
    add("digits", lambda: (d.data, d.target))
    perm = np.random.default_rng(SYNTH_SEED).permutation(64)
    add("digits shuffled", lambda: (d.data[:, perm], d.target))
    add("breast cancer", lambda: load_breast_cancer(return_X_y=True))
    add("wine", lambda: load_wine(return_X_y=True))
    if (DATA / "adult" / "train.csv").exists():
        add("adult", adult)
    else:
        print(f"skipping adult: {DATA / 'adult' / 'train.csv'} not found", file=sys.stderr)
    add("swapped shapes", swapped_shapes)
    add("sine waves", sines)
    add("noisy sine waves", lambda: sines(seed=SYNTH_SEED + 3, noise=2.0))
    add("independent columns", independent_columns)
    add("noisy thresholds", noisy_thresholds)
    add("small table", lambda: small_table(SMALL_TABLE_SEED))
    return rows


# -- the reference protocol -----------------------------------------------------------------
def reference_model():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from gridnet import GridNetClassifier
    from gridnet.core import Conv2D, Dense, Flatten, MaxPool2D

    def strip(Z):
        return np.clip(Z, -3, 3).astype(np.float32)[:, None, None, :]

    layers = [Conv2D(16, (1, 5), padding="same", activation="relu"), MaxPool2D((1, 2)),
              Conv2D(32, (1, 5), padding="same", activation="relu"), MaxPool2D((1, 2)),
              Flatten(), Dense(32, activation="relu")]
    return make_pipeline(StandardScaler(), FunctionTransformer(strip),
                         GridNetClassifier(layers=layers, learning_rate=1e-3, batch_size=64,
                                           max_epochs=100, early_stopping=True,
                                           validation_fraction=0.1, n_iter_no_change=5,
                                           augment=None, random_state=0))


def _fold_score(X, y, order, train, test):
    from sklearn.base import clone
    Xo = X[:, order]
    model = clone(reference_model()).fit(Xo[train], y[train])
    return float(model.score(Xo[test], y[test]))


def reference(X, y, n_jobs):
    from joblib import Parallel, delayed
    from sklearn.model_selection import RepeatedStratifiedKFold
    folds = list(RepeatedStratifiedKFold(n_splits=2, n_repeats=5, random_state=0).split(X, y))
    rng = np.random.default_rng(1)
    orders = [np.arange(X.shape[1])] + [rng.permutation(X.shape[1]) for _ in range(10)]
    scores = Parallel(n_jobs=n_jobs)(delayed(_fold_score)(X, y, o, tr, te)
                                     for o in orders for tr, te in folds)
    means = np.array(scores).reshape(len(orders), len(folds)).mean(axis=1)
    given, shuffled = float(means[0]), means[1:]
    if given >= shuffled.max() + 0.01 and given >= shuffled.mean() + 0.01:
        truth = "local"
    elif given <= shuffled.mean():
        truth = "not local"
    else:
        truth = "either"
    return {"truth": truth, "given": given, "shuffled_mean": float(shuffled.mean()),
            "shuffled_max": float(shuffled.max())}


def digest(X, y):
    h = hashlib.sha256(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    h.update(np.asarray(y).astype(str).astype("U").tobytes())
    return h.hexdigest()[:16]


def agrees(verdict, truth):
    return truth == "either" or verdict == truth


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated data set names")
    ap.add_argument("--truth", action="store_true", help="recompute the reference scores")
    ap.add_argument("--truth-only", action="store_true", help="compute the reference scores only")
    ap.add_argument("--n-jobs", type=int, default=2, help="processes for the reference scores")
    args = ap.parse_args(argv)
    from gridnet import locality_check
    only = set(args.only.split(",")) if args.only else None
    cache = json.loads(TRUTH_FILE.read_text()) if TRUTH_FILE.exists() else {}
    out = []
    for name, X, y in panel(only):
        key = digest(X, y)
        if args.truth or cache.get(name, {}).get("digest") != key:
            t0 = time.perf_counter()
            ref = reference(X, y, args.n_jobs)
            ref.update(digest=key, seconds=round(time.perf_counter() - t0, 1))
            cache[name] = ref
            TRUTH_FILE.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")
            print(f"reference for {name}: {ref}", file=sys.stderr)
        ref = cache[name]
        if args.truth_only:
            continue
        t0 = time.perf_counter()
        r = locality_check(X, y, random_state=0)
        seconds = time.perf_counter() - t0
        m = r.model
        out.append((name, X.shape, ref, r.verdict, m, seconds))
    print("| data | rows x columns | reference CNN: given / shuffled mean (max) | truth "
          "| check | probe: given / shuffled | best order-free | agrees | check s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, shape, ref, verdict, m, seconds in out:
        best = max(m["baselines"].items(), key=lambda kv: kv[1])
        print(f"| {name} | {shape[0]:,} x {shape[1]} | {ref['given']:.3f} / "
              f"{ref['shuffled_mean']:.3f} ({ref['shuffled_max']:.3f}) | {ref['truth']} | "
              f"{verdict} | {m['score']:.3f} / {m['shuffled_mean']:.3f} | {best[0]} "
              f"{best[1]:.3f} | {'yes' if agrees(verdict, ref['truth']) else 'NO'} | "
              f"{seconds:.1f} |")
    n_agree = sum(agrees(v, ref["truth"]) for _, _, ref, v, _, _ in out)
    print(f"\nthe check agrees with the truth on {n_agree} of {len(out)} data sets")
    return 0 if n_agree == len(out) else 1


if __name__ == "__main__":
    sys.exit(main())
