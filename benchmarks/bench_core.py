"""Speed of the gridnet core against PyTorch on the CPU, side by side in one run.

Two reference networks on random data, batch 64, Adam:

- A: 1x32x32, Conv 3x3 16 same, ReLU, MaxPool 2, Conv 3x3 32 same, ReLU, MaxPool 2,
  Dense 128, ReLU, Dense 10.
- B (sentence CNN): 1x40x64, branches of heights 3, 4, 5 spanning the full width with
  100 filters each, ReLU, max over time, concatenate, Dense 6.

Prints samples per second for training steps and for inference, gridnet / PyTorch time
ratios (PyTorch is optional: ``pip install torch``; same thread count as numpy's BLAS),
gridnet's achieved GFLOP/s on A against a plain float32 matrix multiply, peak memory, and
where each net's training step goes (each planned step's forward and backward time, the
loss, Adam's update).

Usage: ``python benchmarks/bench_core.py [--json] [--steps 20] [--rounds 7]``
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from pathlib import Path

import numpy as np

# the checkout's code, not whatever copy of gridnet is installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gridnet as g  # noqa: E402

BATCH = 64


def net_a():
    # ReLU fused into the layer before it (activation="relu"): the same network
    return g.Network([g.Conv2D(16, 3, padding="same", activation="relu"), g.MaxPool2D(2),
                      g.Conv2D(32, 3, padding="same", activation="relu"), g.MaxPool2D(2),
                      g.Flatten(), g.Dense(128, activation="relu"), g.Dense(10)]), (1, 32, 32), 10


def net_b():
    branches = [[g.Conv2D(100, (k, 64), activation="relu"), g.GlobalMaxPool("height")]
                for k in (3, 4, 5)]
    return g.Network([g.Branches(branches), g.Flatten(), g.Dense(6)]), (1, 40, 64), 6


def flops_a_forward(n):
    """Multiply-adds x 2 of the convolutions and dense layers of A for a batch of n."""
    conv1 = 32 * 32 * 16 * 1 * 9
    conv2 = 16 * 16 * 32 * 16 * 9
    dense = 2048 * 128 + 128 * 10
    return 2.0 * n * (conv1 + conv2 + dense)


def round_times(fns, steps, rounds=5, settle=0.0):
    """Mean time per call over ``steps`` calls, for each of ``fns``, in each of
    ``rounds`` rounds: an array ``(rounds, len(fns))``.

    The functions take turns within each round, so that gridnet and PyTorch meet the
    same machine (this one is shared and its speed drifts by 2x within minutes). Two
    untimed calls open each turn: right after the other library, its idle threads
    (OpenMP, OpenBLAS) still spin for a while and slow both. ``settle`` seconds of
    sleep before each turn let them stop spinning altogether (OpenBLAS's spin for
    about 0.1 s after its last call).
    """
    times = np.empty((rounds, len(fns)))
    for r in range(rounds):
        for k, fn in enumerate(fns):
            if settle:
                time.sleep(settle)
            fn()
            fn()
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            times[r, k] = (time.perf_counter() - t0) / steps
    return times


def gridnet_fns(make, rng):
    net, shape, k = make()
    net.build(shape, rng)
    loss = g.SoftmaxCrossEntropy()
    opt = g.Adam(1e-3)
    x = rng.standard_normal((BATCH,) + shape).astype(np.float32)
    y = rng.integers(0, k, BATCH)

    def train():
        logits = net.forward(x, training=True)
        _, grad = loss(logits, y)
        net.backward(grad, input_grad=False)
        opt.step(net.parameters())

    def infer():
        net.forward(x, training=False)

    return train, infer


def _describe(step):
    if hasattr(step, "conv") and hasattr(step, "pool"):
        return f"{step.conv.describe()} + {step.pool.describe()}, fused"
    return step.describe()


def _timed_steps(plan, prefix=""):
    """``(label, step)`` for every step that runs: the plan's, and inside a Branches
    step each branch's own (their time is not counted again in the Branches row, which
    keeps only its split and concatenation)."""
    out = []
    for step in plan:
        out.append((prefix + _describe(step), step))
        for i, branch in enumerate(getattr(step, "steps", None) or ()):
            out += _timed_steps(branch, prefix + f"  branch {i + 1}: ")
    return out


def step_profile(make, rng, steps, rounds):
    """Where a training step's time goes: each step of the network's plan (a fused
    convolution + pool counts as one; a Branches step's branches are shown step by
    step), forward and backward, the loss and Adam's update; milliseconds per batch,
    the median over ``rounds`` of the mean over ``steps`` batches (self time: a step
    that runs others excludes theirs). Returns ``[(what, forward ms, backward ms), ...]``.

    The batch's shards (:mod:`gridnet.core.shards`) run one after the other here, on
    one thread with the BLAS on one: each row is the time of all shards' share of
    that step, the work the threads split between them."""
    import time
    from threadpoolctl import threadpool_limits
    net, shape, k = make()
    net.build(shape, rng)
    loss, opt = g.SoftmaxCrossEntropy(), g.Adam(1e-3)
    x = rng.standard_normal((BATCH,) + shape).astype(np.float32)
    y = rng.integers(0, k, BATCH)
    clock = time.perf_counter
    # one step first: the replicas of the shards are made before the timers go in
    net.backward(loss(net.forward(x, training=True), y)[1], input_grad=False)
    sharding = getattr(net, "_sharding", None)
    plans = [net.steps] + [steps for _, steps in (sharding._replicas if sharding else ())]
    labelled = _timed_steps(net.steps)
    everyone = [(i, step) for plan in plans for i, (_, step) in enumerate(_timed_steps(plan))]
    acc = np.zeros((len(labelled) + 2, 2))      # [step, (forward, backward)] seconds
    stack = []                                  # time spent in steps run by the running one

    def wrap(i, phase, method):
        def timed(*a, **kw):
            stack.append(0.0)
            t = clock()
            try:
                return method(*a, **kw)
            finally:
                spent = clock() - t
                inner = stack.pop()
                acc[i, phase] += spent - inner
                if stack:
                    stack[-1] += spent
        return timed

    for i, step in everyone:
        step.forward = wrap(i, 0, step.forward)
        step.backward = wrap(i, 1, step.backward)
    per_round = []
    limits = threadpool_limits(limits=1, user_api="blas")
    for r in range(rounds + 1):                 # the first round warms the buffers up
        acc[:] = 0
        for _ in range(steps):
            t = clock()
            _, grad = loss(net.forward(x, training=True), y)
            t_loss = clock()
            acc[-2, 0] += t_loss - t            # all of forward; the steps' share removed below
            net.backward(grad, input_grad=False)
            t = clock()
            opt.step(net.parameters())
            acc[-1, 1] += clock() - t
        if r:
            per_round.append(acc.copy() / steps)
    limits.restore_original_limits()
    for _, step in everyone:                    # the instance attributes hid the methods
        del step.forward, step.backward
    ms = np.median(per_round, axis=0) * 1e3
    ms[-2, 0] -= ms[:-2, 0].sum()               # forward minus its steps: the loss (and calls)
    rows = [(label, float(ms[i, 0]), float(ms[i, 1])) for i, (label, _) in enumerate(labelled)]
    return rows + [("softmax cross-entropy (and the network's own calls)", float(ms[-2, 0]), 0.0),
                   ("Adam update", 0.0, float(ms[-1, 1]))]


def torch_fns(which, threads):
    try:
        import torch
        from torch import nn
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)

    if which == "A":
        model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(2048, 128), nn.ReLU(), nn.Linear(128, 10))
        x = torch.randn(BATCH, 1, 32, 32)
        y = torch.randint(0, 10, (BATCH,))
    else:
        class Kim(nn.Module):
            def __init__(self):
                super().__init__()
                self.convs = nn.ModuleList(nn.Conv2d(1, 100, (k, 64)) for k in (3, 4, 5))
                self.fc = nn.Linear(300, 6)

            def forward(self, x):
                hs = [torch.relu(c(x)).amax(dim=(2, 3)) for c in self.convs]
                return self.fc(torch.cat(hs, dim=1))
        model = Kim()
        x = torch.randn(BATCH, 1, 40, 64)
        y = torch.randint(0, 6, (BATCH,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()

    def train():
        opt.zero_grad()
        lossf(model(x), y).backward()
        opt.step()

    def infer():
        with torch.no_grad():
            model(x)

    return train, infer


def gemm_peak(rng, size=1024, steps=10):
    a = rng.standard_normal((size, size)).astype(np.float32)
    b = rng.standard_normal((size, size)).astype(np.float32)
    t = round_times([lambda: a @ b], steps, rounds=3).min()
    return 2.0 * size ** 3 / t / 1e9


def copy_bandwidth(rng, mib=32):
    """GB/s of a plain numpy copy of a ``mib`` MiB array (read + write counted): the
    memory bandwidth this machine gives right now. gridnet's training step is bound
    by memory passes, PyTorch's much less, so the ratio moves with this figure."""
    a = rng.standard_normal(mib * 2**18).astype(np.float32)
    b = np.empty_like(a)
    t = round_times([lambda: np.copyto(b, a)], 5, rounds=3).min()
    return 2 * a.nbytes / t / 1e9


def blas_threads():
    try:
        from threadpoolctl import threadpool_info
        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        return int(info[0]["num_threads"]) if info else 1
    except ImportError:  # pragma: no cover
        return 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--steps", type=int, default=20, help="batches per timing")
    parser.add_argument("--rounds", type=int, default=7,
                        help="timings per function, taking turns (samples/s: the best round; "
                             "ratios: the median of the rounds' ratios)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    threads = blas_threads()

    results = {}
    for name, make in (("A", net_a), ("B", net_b)):
        fns = list(gridnet_fns(make, rng))
        theirs = torch_fns(name, threads)
        times = round_times(fns + list(theirs or ()), args.steps, args.rounds)
        best = times.min(axis=0)
        # the ratio of each round (same machine state), median over rounds
        ratios = np.median(times[:, :2] / times[:, 2:], axis=0) if theirs else (None, None)
        results[name] = (best[0], best[1], *(best[2:] if theirs else (None, None)), *ratios)

    profiles = {name: step_profile(make, rng, args.steps, args.rounds)
                for name, make in (("A", net_a), ("B", net_b))}
    peak = gemm_peak(rng)
    bandwidth = copy_bandwidth(rng)
    gt_a, gi_a = results["A"][:2]
    gflops_a = 3 * flops_a_forward(BATCH) / gt_a / 1e9   # training ~ 3x forward
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def ratio(r):
        return None if r is None else round(float(r), 3)

    out = {
        "train_ratio_A": ratio(results["A"][4]),
        "train_ratio_B": ratio(results["B"][4]),
        "infer_ratio_A": ratio(results["A"][5]),
        "infer_ratio_B": ratio(results["B"][5]),
        "gflops_A": round(gflops_a, 2),
        "gemm_peak_gflops": round(peak, 2),
        "peak_rss_mb": round(rss_mb, 1),
        "copy_gbps": round(bandwidth, 1),
        "profile": {name: [{"step": n, "forward_ms": round(f, 3), "backward_ms": round(b, 3)}
                           for n, f, b in rows] for name, rows in profiles.items()},
    }
    if args.json:
        print(json.dumps(out))
        return 0

    def sps(t):
        return "-" if t is None else f"{BATCH / t:,.0f}"

    print(f"threads: {threads}  batch: {BATCH}  steps per timing: {args.steps} "
          f"({args.rounds} rounds, gridnet and PyTorch taking turns; samples/s of the best round, "
          f"time ratio: median over rounds)")
    print()
    print("| net | phase | gridnet samples/s | PyTorch samples/s | gridnet/PyTorch time |")
    print("|---|---|---:|---:|---:|")
    for name in ("A", "B"):
        gt, gi, tt, ti = results[name][:4]
        for phase, a, b, key in (("train", gt, tt, f"train_ratio_{name}"),
                                 ("infer", gi, ti, f"infer_ratio_{name}")):
            r = out[key]
            print(f"| {name} | {phase} | {sps(a)} | {sps(b)} | {'-' if r is None else f'{r:.2f}x'} |")
    print()
    print(f"gridnet GFLOP/s on A (training): {gflops_a:.1f}; float32 GEMM peak: {peak:.1f} "
          f"({100 * gflops_a / peak:.0f}% of peak)")
    print(f"memory bandwidth (numpy copy): {bandwidth:.1f} GB/s")
    print(f"peak RSS: {rss_mb:.0f} MB")
    for name, rows in profiles.items():
        total = sum(f + b for _, f, b in rows)
        print()
        print(f"where net {name}'s training step goes (ms per batch of {BATCH}, its shards one "
              f"after the other on one thread, median of rounds; total {total:.2f} ms):")
        print()
        print("| step | forward ms | backward ms | share |")
        print("|---|---:|---:|---:|")
        for n, f, b in rows:
            print(f"| {n} | {f:.3f} | {b:.3f} | {100 * (f + b) / total:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
