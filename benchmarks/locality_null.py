"""The locality check's false-positive rate on tables with no order structure.

    python benchmarks/locality_null.py [--seeds 40] [--n-jobs 2]

Each table (600 rows, 12 columns) has labels from a random linear mix of its columns
plus noise, the columns independent and in a random order, so the truth is "not local";
the check runs with its defaults (the sequential rule and its time budget included).
Prints each verdict and the share called "local", which should be at most alpha (0.05).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEED = 20261300          # the tests use seeds below 1,000, the panel 20261202-20261214


def table(seed, n=600, f=12):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, f))
    y = (X @ rng.standard_normal(f) * 0.5 + rng.standard_normal(n) > 0).astype(int)
    return X, y


def one(seed):
    from threadpoolctl import threadpool_limits

    from gridnet import locality_check
    X, y = table(seed)
    t0 = time.perf_counter()
    with threadpool_limits(1):
        r = locality_check(X, y, random_state=seed)
    return seed, r.verdict, r.model["gain"], r.model["p_value"], r.model["n_permutations"], \
        r.statistic["p_value"], time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)
    from joblib import Parallel, delayed
    rows = Parallel(n_jobs=args.n_jobs)(delayed(one)(SEED + i) for i in range(args.seeds))
    print("| seed | verdict | gain | model p | orders | statistic p | s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for seed, v, gain, pm, orders, ps, s in rows:
        print(f"| {seed} | {v} | {gain:+.4f} | {pm:.3f} | {orders} | {ps:.3f} | {s:.1f} |")
    verdicts = [r[1] for r in rows]
    print(f"\n{len(rows)} tables: local {verdicts.count('local')}, not local "
          f"{verdicts.count('not local')}, inconclusive {verdicts.count('inconclusive')}; "
          f"share local {verdicts.count('local') / len(rows):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
