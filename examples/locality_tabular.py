"""The locality check before training: sklearn's breast cancer table (30 measurements
of cell nuclei, an arbitrary column order) and the digits as 8 x 8 pixel grids (both
axes tested). The first should say "not local" (use an order-free model), the second
"local". (As 64 columns in raster order, a one-row strip, the digits are a close call:
see benchmarks/locality_panel.py.)

    python examples/locality_tabular.py

Ends with ``test accuracy: 0.XXXX``: the cross-validated accuracy of the model each
report recommends (the best order-free model it measured for data that is not local, a
gridnet CNN for data that is), averaged over the two datasets.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import cross_val_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gridnet import GridNetClassifier, locality_check  # noqa: E402
from gridnet.locality.model_based import baseline_models  # noqa: E402


def recommended_model(report, X):
    if report.verdict == "local":
        return GridNetClassifier(max_epochs=30, early_stopping=False, random_state=0), X
    return baseline_models(0)[report.model["baseline"]], X.reshape(len(X), -1)


def main():
    scores = []
    cancer = load_breast_cancer()
    digits = load_digits()
    for name, X, y, axis in (("breast cancer (569 x 30)", cancer.data, cancer.target, "columns"),
                             ("digits as 8 x 8 grids (1797 x 1 x 8 x 8)",
                              digits.images[:, None] / 16.0, digits.target, "both")):
        report = locality_check(X, y, axis=axis, random_state=0)
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
