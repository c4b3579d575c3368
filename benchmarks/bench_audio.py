"""Spectrogram extraction speed: AudioAdapter against a plain librosa loop.

Every clip of the Free Spoken Digit Dataset, log-mel with the same settings (8 kHz,
n_fft 512, hop 128, 40 mel bands, power in dB). The librosa loop is what a user writes:
``librosa.load`` then ``librosa.feature.melspectrogram`` and ``librosa.power_to_db``,
one file after another. Both are warmed up first (imports, numba) and timed in the same
run, best of ``--repeat``.

    python benchmarks/bench_audio.py [--data ../shared/data/fsdd] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import librosa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from adapters import AudioAdapter  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"
SETTINGS = dict(n_fft=512, hop_length=128, n_mels=40)


def librosa_loop(files, sr):
    out = []
    for f in files:
        y, _ = librosa.load(f, sr=sr)
        out.append(librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, **SETTINGS)))
    return out


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT, help="the fsdd folder (with recordings/)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rec = args.data / "recordings"
    files = sorted(str(p) for p in rec.glob("*.wav"))
    if not files:
        parser.error(f"no .wav files in {rec}; pass --data pointing at the FSDD folder")
    sr = 8000
    # frames: every clip at its full length (the longest clip), as the loop does
    adapter = AudioAdapter(sr=sr, normalize=None, **SETTINGS).fit(files)
    librosa_loop(files[:20], sr)
    adapter.transform(files[:20])
    rows = {"librosa loop": best_of(lambda: librosa_loop(files, sr), args.repeat)}
    rows["AudioAdapter n_jobs=1"] = best_of(lambda: adapter.transform(files), args.repeat)
    adapter.set_params(n_jobs=2)
    adapter.transform(files[:40])      # start the worker processes
    rows["AudioAdapter n_jobs=2"] = best_of(lambda: adapter.transform(files), args.repeat)
    rate = {k: len(files) / v for k, v in rows.items()}
    if args.json:
        print(json.dumps({"files": len(files), "files_per_s": rate}))
        return 0
    base = rate["librosa loop"]
    print(f"{len(files)} clips, log-mel 40 x {adapter.n_frames_}, best of {args.repeat}")
    print(f"{'method':<24}{'files/s':>10}{'vs loop':>10}")
    for k, v in rate.items():
        print(f"{k:<24}{v:>10.0f}{v / base:>9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
