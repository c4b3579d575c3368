"""How long the locality check takes: the model-free statistic on large tables, and
the model-based test on sklearn's digits.

    python benchmarks/bench_locality.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gridnet import locality_check  # noqa: E402


def main():
    rng = np.random.default_rng(0)
    print(f"{'data':<34}{'method':<12}{'seconds':>9}  verdict (statistic p)")
    for n, f in ((10_000, 100), (100_000, 100), (100_000, 300)):
        X = rng.standard_normal((n, f)).astype(np.float32)
        t0 = time.perf_counter()
        r = locality_check(X, random_state=0)
        print(f"{f'random table {n:,} x {f}':<34}{'statistic':<12}{time.perf_counter() - t0:>9.2f}  {r.verdict} ({r.statistic['p_value']:.3f})")
    from sklearn.datasets import load_breast_cancer, load_digits
    d = load_digits()
    for name, X, y in (("digits 1797 x 64 (raster order)", d.images.reshape(-1, 64), d.target),
                       ("breast cancer 569 x 30", *load_breast_cancer(return_X_y=True))):
        t0 = time.perf_counter()
        r = locality_check(X, y, random_state=0)
        print(f"{name:<34}{'both':<12}{time.perf_counter() - t0:>9.2f}  {r.verdict} ({r.statistic['p_value']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
