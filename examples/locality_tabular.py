"""The locality check before training: sklearn's breast cancer table (30 measurements
of cell nuclei, an arbitrary column order) and the digits as 64 pixel columns in raster
order. The first should say "not local" (use an order-free model), the second "local".

    python examples/locality_tabular.py

Ends with ``test accuracy: 0.XXXX``: the cross-validated accuracy of the model each
report recommends (logistic regression for a table that is not local, a gridnet CNN for
one that is), averaged over the two datasets.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gridnet import GridNetClassifier, locality_check  # noqa: E402


def recommended_model(report, X):
    if report.verdict == "local":
        return (GridNetClassifier(max_epochs=30, early_stopping=False, random_state=0),
                X.reshape(len(X), 1, 8, 8))
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)), X


def main():
    scores = []
    cancer = load_breast_cancer()
    digits = load_digits()
    for name, X, y in (("breast cancer (569 x 30)", cancer.data, cancer.target),
                       ("digits as 64 columns (1797 x 64)", digits.images.reshape(-1, 64) / 16.0,
                        digits.target)):
        report = locality_check(X, y, random_state=0)
        print(f"=== {name}")
        print(report)
        model, data = recommended_model(report, X)
        score = cross_val_score(model, data, y, cv=3).mean()
        print(f"recommended model ({type(model).__name__}), 3-fold accuracy: {score:.4f}\n")
        scores.append(score)
    print(f"test accuracy: {np.mean(scores):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
