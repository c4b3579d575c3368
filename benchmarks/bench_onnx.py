"""Inference latency of an exported model in onnxruntime beside gridnet's own, side by
side in one run: one input and a batch of 64.

- net A (benchmarks/bench_core.py) as a bare network: a 1x32x32 grid in, logits out;
- the audio preset: a default ``make_pipeline(AudioAdapter(), GridNetClassifier())``
  trained (5 epochs) on FSDD's training clips; one clip is a waveform in, the label out
  (gridnet: ``predict`` on the waveform, the front end included; onnxruntime: the
  exported model, front end in the graph); a batch of 64 is 64 such clips (the exported
  front end takes one clip a call) and, separately, the network alone on 64 grids.

Each figure is the median of ``--rounds`` timings after a warm-up. Also prints the
largest difference in probabilities. Needs onnx and onnxruntime (the test extra) and
../shared/data/fsdd for the audio rows.

Usage: ``python benchmarks/bench_onnx.py [--rounds 15]``
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_core import net_a  # noqa: E402

FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"


def median_time(fn, rounds):
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def session(proto):
    import onnxruntime as ort
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def net_a_rows(rounds):
    from gridnet.export import to_onnx
    net, shape, _ = net_a()
    net.build(shape, np.random.default_rng(0))
    sess = session(to_onnx(net))
    x = np.random.default_rng(1).normal(size=(64, 1, 32, 32)).astype(np.float32)
    diff = float(np.abs(sess.run(None, {"grid": x})[0] - net.forward(x)).max())
    rows = []
    for n in (1, 64):
        xb = x[:n]
        rows.append((f"net A, {n} grid{'s' * (n > 1)}",
                     median_time(lambda: net.forward(xb), rounds),
                     median_time(lambda: sess.run(None, {"grid": xb}), rounds)))
    return rows, diff


def audio_rows(rounds):
    import soundfile as sf
    from sklearn.pipeline import make_pipeline

    from adapters import AudioAdapter
    from gridnet import GridNetClassifier
    from gridnet.export import to_onnx
    files = sorted(FSDD.glob("*.wav"))
    take = np.array([int(f.stem.split("_")[2]) for f in files])
    digit = np.array([int(f.stem.split("_")[0]) for f in files])
    train = [str(f) for f, t in zip(files, take) if t > 4]
    test = [str(f) for f, t in zip(files, take) if t <= 4][:64]
    pipe = make_pipeline(AudioAdapter(), GridNetClassifier(max_epochs=5, random_state=0))
    pipe.fit(train, digit[take > 4])
    waves = [sf.read(f, dtype="float32")[0] for f in test]
    pairs = [(w, 8000) for w in waves]
    whole, net_only = session(to_onnx(pipe)), session(to_onnx(pipe[-1]))
    grids = pipe[0].transform(pairs)
    proba = pipe.predict_proba(pairs)
    diff = max(float(np.abs(whole.run(None, {"waveform": w})[0][0] - p).max())
               for w, p in zip(waves, proba))
    rows = [
        ("audio preset, 1 clip (waveform in)",
         median_time(lambda: pipe.predict(pairs[:1]), rounds),
         median_time(lambda: whole.run(None, {"waveform": waves[0]}), rounds)),
        ("audio preset, 64 clips (waveform in)",
         median_time(lambda: pipe.predict(pairs), max(3, rounds // 3)),
         median_time(lambda: [whole.run(None, {"waveform": w}) for w in waves], max(3, rounds // 3))),
        ("audio network, 64 grids",
         median_time(lambda: pipe[-1].predict_proba(grids), rounds),
         median_time(lambda: net_only.run(None, {"grid": grids}), rounds)),
    ]
    return rows, diff


def main(argv=None):
    import onnxruntime
    from threadpoolctl import threadpool_info
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    rows, diff_a = net_a_rows(args.rounds)
    notes = [f"net A: largest logit difference {diff_a:.2e}"]
    if FSDD.is_dir():
        more, diff = audio_rows(args.rounds)
        rows += more
        notes.append(f"audio preset: largest probability difference {diff:.2e}")
    else:
        notes.append(f"audio rows skipped: FSDD not found at {FSDD}")
    blas = next((i.get("internal_api") for i in threadpool_info() if i.get("user_api") == "blas"), "?")
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"onnxruntime {onnxruntime.__version__}, numpy BLAS {blas}")
    print()
    print("| model, input | gridnet | onnxruntime | gridnet / onnxruntime |")
    print("|---|---:|---:|---:|")
    for name, ours, theirs in rows:
        print(f"| {name} | {ours * 1e3:.2f} ms | {theirs * 1e3:.2f} ms | {ours / theirs:.2f}x |")
    print()
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
