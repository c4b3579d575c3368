"""The checkout's core against an earlier commit's, taking turns in one process.

bench_core's nets A and B (same shapes, batch 64, Adam, numpy's threads), C (the
audio preset's network on FSDD's default 40 x 42 grids) and T (the text preset's
branches on CLINC150-sized sentence grids), a training step and an inference pass
each; the two cores alternate within every round, so that both meet the same machine. The earlier commit's ``gridnet`` package is extracted with
``git archive`` into a temporary folder and imported as ``gridnet_old`` (its imports
are relative, so it runs unchanged under that name).

Usage: ``python benchmarks/compare_cores.py [--old REV] [--rounds 5] [--steps 20]``
"""
from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import gridnet  # noqa: E402
from bench_core import BATCH, round_times  # noqa: E402


def import_old(rev, dest):
    """The ``gridnet`` package of commit ``rev``, imported as ``gridnet_old``."""
    blob = subprocess.run(["git", "archive", rev, "gridnet"], cwd=ROOT, check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(dest, filter="data")
    Path(dest, "gridnet").rename(Path(dest, "gridnet_old"))
    sys.path.insert(0, str(dest))
    return importlib.import_module("gridnet_old")


def nets(g):
    a = g.Network([g.Conv2D(16, 3, padding="same", activation="relu"), g.MaxPool2D(2),
                   g.Conv2D(32, 3, padding="same", activation="relu"), g.MaxPool2D(2),
                   g.Flatten(), g.Dense(128, activation="relu"), g.Dense(10)])
    b = g.Network([g.Branches([[g.Conv2D(100, (k, 64), activation="relu"), g.GlobalMaxPool("height")]
                               for k in (3, 4, 5)]), g.Flatten(), g.Dense(6)])
    # the network GridNetClassifier() builds for FSDD's default grids (the audio preset)
    c = g.Network([layer for f in (16, 32, 64)
                   for layer in (g.Conv2D(f, 3, padding="same", activation="relu"), g.MaxPool2D(2))]
                  + [g.Flatten(), g.Dense(128, activation="relu"), g.Dropout(0.3), g.Dense(10)])
    # the text preset's branches after its word vectors (50 learned + 50 GloVe) on
    # CLINC150's grids: 19 positions, 4-14 words, padding rows zero
    t = g.Network([g.Branches([[g.Conv2D(100, (k, 1), padding="same", activation="relu"),
                                g.GlobalMaxPool("height")] for k in (3, 4, 5)]),
                   g.Flatten(), g.Dense(150)])
    return {"A": (a, (1, 32, 32), 10), "B": (b, (1, 40, 64), 6), "C": (c, (1, 40, 42), 10),
            "T": (t, (100, 19, 1), 150)}


def step_fns(g, net, shape, k):
    rng = np.random.default_rng(0)
    net.build(shape, rng)
    loss, opt = g.SoftmaxCrossEntropy(), g.Adam(1e-3)
    x = rng.standard_normal((BATCH,) + shape).astype(np.float32)
    y = rng.integers(0, k, BATCH)
    words = shape[2] == 1               # net T: sentences, whose word vectors learn too
    if words:
        for i, n in enumerate(rng.integers(4, 15, BATCH)):
            x[i, :, n:] = 0

    def train():
        _, grad = loss(net.forward(x, training=True), y)
        net.backward(grad, input_grad=words)
        opt.step(net.parameters())

    def infer():
        net.forward(x, training=False)

    return train, infer


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", default="7dcec2e", help="the earlier commit (default: before the restructuring)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--settle", type=float, default=0.0,
                   help="seconds of sleep before each turn, so that the other core's BLAS "
                        "threads have stopped spinning (0: none, as before)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        old = import_old(args.old, tmp)
        print(f"old core: {args.old}; new core: the checkout; batch {BATCH}; "
              f"{args.rounds} rounds of {args.steps} steps, taking turns"
              + (f", {args.settle} s of sleep before each turn" if args.settle else ""))
        print("| net | phase | old ms | new ms | new / old (median of rounds) |")
        print("|---|---|---:|---:|---:|")
        for name in ("A", "B", "C", "T"):
            fo = step_fns(old, *nets(old)[name])
            fn = step_fns(gridnet, *nets(gridnet)[name])
            for phase, i in (("train", 0), ("infer", 1)):
                t = round_times([fo[i], fn[i]], args.steps, args.rounds, args.settle)
                ratio = float(np.median(t[:, 1] / t[:, 0]))
                print(f"| {name} | {phase} | {1e3 * np.median(t[:, 0]):.2f} | "
                      f"{1e3 * np.median(t[:, 1]):.2f} | {ratio:.3f}x |")


if __name__ == "__main__":
    main()
