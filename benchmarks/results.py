"""Run the examples and print a Markdown table of their results for the README.

    python benchmarks/results.py [--data ../shared/data] [--only audio,text,text-rand,images,locality]

Each example prints ``baseline accuracy: X`` and ``test accuracy: Y`` as its last lines;
this script runs it in a fresh process, reads them and times the whole run (features,
training and evaluation). An example whose data is missing is reported as skipped.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = [
    # key, script, dataset, baseline name, data subfolder, extra arguments
    ("audio", "classify_audio.py", "FSDD spoken digits (300 test clips)", "MFCC stats + SVM", "fsdd", []),
    ("text", "classify_sentences.py", "TREC-6 questions (500 test), word vectors started "
     "from WordNet text", "TF-IDF n-grams + LR", "trec", []),
    ("text-rand", "classify_sentences.py", "TREC-6 questions (500 test), random start",
     "TF-IDF n-grams + LR", "trec", ["--corpus", "none"]),
    ("images", "classify_images.py", "sklearn digits 8x8 (held-out quarter)", "LR on pixels", None, []),
    ("locality", "locality_tabular.py", "locality check: breast cancer + digits", "-", None, []),
]


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def run(script, data, extra=()):
    cmd = [sys.executable, str(ROOT / "examples" / script), *extra]
    if data is not None:
        cmd += ["--data", str(data)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        return None, None, seconds, (proc.stderr.strip().splitlines() or ["failed"])[-1]
    acc = re.findall(r"^test accuracy: ([0-9.]+)$", proc.stdout, re.M)
    base = re.findall(r"^baseline accuracy: ([0-9.]+)$", proc.stdout, re.M)
    return (float(acc[-1]) if acc else None, float(base[-1]) if base else None, seconds, None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", default=None, help="comma-separated keys: audio,text,text-rand,images,locality")
    args = parser.parse_args(argv)
    keys = set(args.only.split(",")) if args.only else None
    print(f"Measured {datetime.date.today().isoformat()} on {machine()}.\n")
    print("| dataset | gridnet accuracy | baseline | baseline accuracy | whole example run |")
    print("|---|---|---|---|---|")
    for key, script, name, base_name, sub, extra in EXAMPLES:
        if keys and key not in keys:
            continue
        data = args.data / sub if sub else None
        if data is not None and not data.exists():
            print(f"| {name} | skipped: no data at {data} | {base_name} | | |")
            continue
        acc, base, seconds, error = run(script, data, extra)
        if error:
            print(f"| {name} | failed: {error} | {base_name} | | {seconds:.0f} s |")
            continue
        fmt = lambda v: "-" if v is None else f"{v:.4f}"
        print(f"| {name} | {fmt(acc)} | {base_name} | {fmt(base)} | {seconds:.0f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
