"""Classify sklearn's handwritten digits (8x8 images): ImageAdapter + GridNetClassifier
on a stratified held-out quarter, beside logistic regression on the raw pixels.

    python examples/classify_images.py

Prints ``test accuracy: 0.XXXX`` last.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from adapters import ImageAdapter  # noqa: E402
from gridnet import GridNetClassifier  # noqa: E402


def main():
    digits = load_digits()
    xtr, xte, ytr, yte = train_test_split(digits.images, digits.target, test_size=0.25,
                                          random_state=0, stratify=digits.target)
    t0 = time.perf_counter()
    model = make_pipeline(ImageAdapter(), GridNetClassifier(preset="image", max_epochs=30, early_stopping=False,
                                                             ema_momentum=None, random_state=0))
    model.fit(xtr, ytr)
    acc = model.score(xte, yte)
    seconds = time.perf_counter() - t0
    base = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    base_acc = base.fit(xtr.reshape(len(xtr), -1), ytr).score(xte.reshape(len(xte), -1), yte)
    print(model[-1].summary())
    print(f"gridnet {acc:.4f} in {seconds:.1f} s; logistic regression on pixels {base_acc:.4f}")
    print(f"baseline accuracy: {base_acc:.4f}")
    print(f"test accuracy: {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
