"""A long recording through a fitted audio model: time and peak memory (issue 15).

Builds a recording of ``--minutes`` (default 60) by joining FSDD test clips (takes 0-4,
which the model never trained on) with a second of silence between them, writes it as
a 16-bit WAV, then runs ``gridnet predict MODEL long.wav --windows --csv`` in a fresh
process and reports its wall time and peak RSS (``ru_maxrss`` of the child). Also
scores the timeline: for each clip, the majority label of the windows overlapping it
by at least half their width. With ``--reject`` (``predict --windows --reject``): of the
windows with at least half their span outside every clip, the share rejected, and of the
windows whose centre lies inside a clip, the share kept.

Usage: ``python benchmarks/bench_long_recording.py MODEL [--minutes 60] [--hop 0.1] [--reject]``
(MODEL: from ``gridnet fit FSDD_TRAIN_FOLDER --modality audio``).
"""
from __future__ import annotations

import argparse
import csv
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fsdd" / "recordings"


def build(path, minutes, seed=0):
    """Write the joined recording; return [(start s, end s, digit)]."""
    files = sorted(f for f in DATA.glob("*.wav") if int(f.stem.split("_")[2]) <= 4)
    if not files:
        sys.exit(f"no FSDD clips under {DATA}")
    rng = np.random.default_rng(seed)
    sr = 8000
    silence = np.zeros(sr, np.int16)
    places, t = [], 1.0
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, subtype="PCM_16") as out:
        out.write(silence)
        while t < minutes * 60:
            f = files[rng.integers(len(files))]
            clip, rate = sf.read(f, dtype="int16")
            assert rate == sr
            out.write(clip)
            places.append((t, t + len(clip) / sr, f.stem.split("_")[0]))
            t += len(clip) / sr + 1.0
            out.write(silence)
    return places


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--hop", type=float, default=0.1)
    ap.add_argument("--reject", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wav, table = Path(tmp) / "long.wav", Path(tmp) / "timeline.csv"
        places = build(wav, args.minutes)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gridnet", "predict", args.model, str(wav),
                        "--windows", "--hop", str(args.hop), "--csv", str(table)]
                       + ["--reject"] * args.reject,
                       check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        rows = list(csv.DictReader(table.open()))
        size = wav.stat().st_size
    start = np.array([float(r["start"]) for r in rows])
    end = np.array([float(r["end"]) for r in rows])
    labels = np.array([r["label"] for r in rows])
    width = float(np.median(end - start))
    right = 0
    for a, b, digit in places:
        near = (np.minimum(end, b) - np.maximum(start, a)) >= 0.5 * min(width, b - a)
        if near.any():
            values, counts = np.unique(labels[near], return_counts=True)
            right += values[counts.argmax()] == digit
    print("| recording | clips | windows | wall time | peak RSS | clips whose windows' majority is right |")
    print("|---|---|---|---|---|---|")
    print(f"| {args.minutes:g} min, {size / 2**20:.0f} MB WAV | {len(places)} | {len(rows)} | "
          f"{wall:.1f} s | {max(peak, before) / 1024:.0f} MB | {right / len(places):.3f} |")
    if args.reject:
        rejected = labels == "unknown"
        a, b = np.array([p[0] for p in places]), np.array([p[1] for p in places])
        overlap = np.array([np.clip(np.minimum(e, b) - np.maximum(s, a), 0, None).sum()
                            for s, e in zip(start, end)])
        centre = (start + end) / 2
        inside = np.array([np.any((a <= c) & (c <= b)) for c in centre])
        outside = overlap <= 0.5 * (end - start)
        print(f"\nwindows at least half outside every clip: {outside.sum()}, rejected "
              f"{rejected[outside].mean():.3f}; windows centred in a clip: {inside.sum()}, "
              f"kept {(~rejected[inside]).mean():.3f}")


if __name__ == "__main__":
    main()
