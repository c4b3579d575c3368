"""The ``gridnet`` command line."""
from __future__ import annotations

import argparse
import sys
import time


def _demo(args):
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from . import Adam, Conv2D, Dense, Flatten, MaxPool2D, Network, SoftmaxCrossEntropy

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    xtr, xte, ytr, yte = train_test_split(x, digits.target, test_size=0.25,
                                          random_state=0, stratify=digits.target)
    rng = np.random.default_rng(0)
    net = Network([Conv2D(32, 3, padding="same", activation="relu"), MaxPool2D(2),
                   Conv2D(64, 3, padding="same", activation="relu"), MaxPool2D(2),
                   Flatten(), Dense(128, activation="relu"), Dense(10)])
    net.build(x.shape[1:], rng)
    print("gridnet demo: sklearn's digits as 1x8x8 grids")
    print(net.summary())
    loss, opt = SoftmaxCrossEntropy(), Adam(2e-3)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(len(xtr))
        for start in range(0, len(order), 32):
            idx = order[start:start + 32]
            _, grad = loss(net.forward(xtr[idx], training=True), ytr[idx])
            net.backward(grad, input_grad=False)
            opt.step(net.parameters())
    acc = float((net.forward(xte).argmax(axis=1) == yte).mean())
    print(f"trained {args.epochs} epochs in {time.perf_counter() - t0:.1f}s")
    print(f"test accuracy: {acc:.4f}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="gridnet", description="CNNs for data turned into grids.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train and evaluate on sklearn's digits (no data needed)")
    demo.add_argument("--epochs", type=int, default=15)
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
