"""Audio that holds up (issue 41): the default audio pipeline on new voices and in noise,
beside the defaults before it (the audio preset's augmentation then: SpecAugment-style
masks and shifts only; no RowCenter first), the same seeds, the same run.

- leave one speaker out, all six FSDD speakers (train on the other five): george,
  lucas and yweweler are the dev folds (settings were chosen on them), jackson,
  nicolas and theo the test folds;
- the standard split (train takes 5-49, test takes 0-4), clean and with white and pink
  noise at 10, 5 and 0 dB SNR (seeded; the SNR over the whole clip), and babble at 5 dB:
  three training clips of other speakers summed (never used in training or for
  choosing).

Usage: ``python benchmarks/audio_robustness.py [--seeds 0,1,2]`` (FSDD from
../shared/data). Prints a Markdown table, mean of the seeds.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
from sklearn.pipeline import make_pipeline  # noqa: E402

from adapters import AudioAdapter  # noqa: E402
from gridnet import GridNetClassifier  # noqa: E402
from gridnet.augment import spec_augment  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SPEAKERS = ("george", "lucas", "yweweler", "jackson", "nicolas", "theo")   # dev folds first
NOISES = [(c, snr) for c in ("white", "pink") for snr in (10, 5, 0)] + [("babble", 5)]


def pipelines(seed):
    """{name: pipeline}: today's defaults, and the defaults before (the augmentation, the
    network's first layer and the stopping tolerance given as they were)."""
    return {"defaults": make_pipeline(AudioAdapter(), GridNetClassifier(random_state=seed)),
            "before": make_pipeline(AudioAdapter(), GridNetClassifier(
                random_state=seed, augment=spec_augment(freq_width=4, time_width=4, max_shift=4),
                center_rows=False, tol=1e-4))}


def _colour(n, colour):
    if colour == "pink":
        spectrum = np.fft.rfft(n)
        k = np.arange(len(spectrum), dtype=np.float64)
        k[0] = 1.0
        n = np.fft.irfft(spectrum / np.sqrt(k), len(n))
    return n


def noisy(clips, colour, snr, seed, babble_from=None):
    """(waveform, 8000) pairs: each clip plus noise at ``snr`` dB over the whole clip."""
    rng = np.random.default_rng(seed)
    out = []
    for y, speaker in clips:
        if colour == "babble":
            others = [c for c in babble_from if c[1] != speaker]
            n = np.zeros(len(y))
            for i in rng.choice(len(others), 3, replace=False):
                b = others[i][0]
                b = np.resize(b, len(y)) if len(b) < len(y) else b[:len(y)]
                n += b / np.sqrt(np.mean(b ** 2) + 1e-12)
        else:
            n = _colour(rng.standard_normal(len(y)), colour)
        n *= np.sqrt(np.mean(y ** 2) / 10 ** (snr / 10) / np.mean(n ** 2))
        out.append(((y + n).astype(np.float32), 8000))
    return out


def run(seeds):
    from shared_data import load_fsdd
    files, digits, speakers, take = load_fsdd(DATA / "fsdd")
    files = np.array(files)
    wave = [sf.read(f, dtype="float32")[0] for f in files]
    rows = {}
    for seed in seeds:
        for who in SPEAKERS:
            out = speakers == who
            for name, pipe in pipelines(seed).items():
                pipe.fit(list(files[~out]), digits[~out])
                rows.setdefault((name, who), []).append(np.mean(pipe.predict(list(files[out])) == digits[out]))
        train, test = take >= 5, take <= 4
        clips = [(wave[i], speakers[i]) for i in np.nonzero(test)[0]]
        babble_from = [(wave[i], speakers[i]) for i in np.nonzero(train)[0]]
        for name, pipe in pipelines(seed).items():
            t0 = time.perf_counter()
            pipe.fit(list(files[train]), digits[train])
            rows.setdefault((name, "clean"), []).append(np.mean(pipe.predict(list(files[test])) == digits[test]))
            rows.setdefault((name, "time"), []).append(time.perf_counter() - t0)
            rows.setdefault((name, "epochs"), []).append(pipe[-1].n_iter_)
            for colour, snr in NOISES:
                x = noisy(clips, colour, snr, 1000 * seed + snr, babble_from)
                rows.setdefault((name, f"{colour} {snr} dB"), []).append(np.mean(pipe.predict(x) == digits[test]))
        print(f"seed {seed} done", file=sys.stderr, flush=True)
    return rows


def seed_means(run, description, argv=None):
    """``--seeds`` from ``argv``, then ``run(seeds)``'s rows {key: [one value per seed]}
    as {key: mean over the seeds}."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", default="0,1,2")
    seeds = [int(s) for s in parser.parse_args(argv).seeds.split(",")]
    return {k: float(np.mean(v)) for k, v in run(seeds).items()}


def main(argv=None):
    mean = seed_means(run, __doc__.splitlines()[0], argv)
    print("| test | before | defaults |")
    print("|---|---:|---:|")
    for who in SPEAKERS:
        print(f"| leave out {who}{' (dev)' if who in SPEAKERS[:3] else ''} | "
              f"{mean[('before', who)]:.3f} | {mean[('defaults', who)]:.3f} |")
    for label, group in (("all six", SPEAKERS), ("dev folds", SPEAKERS[:3]), ("test folds", SPEAKERS[3:])):
        print(f"| leave one speaker out, mean over {label} | "
              + " | ".join(f"{np.mean([mean[(n, w)] for w in group]):.3f}" for n in ("before", "defaults")) + " |")
    print(f"| standard split, clean | {mean[('before', 'clean')]:.4f} | {mean[('defaults', 'clean')]:.4f} |")
    for colour, snr in NOISES:
        key = f"{colour} {snr} dB"
        print(f"| standard split, {key} | {mean[('before', key)]:.3f} | {mean[('defaults', key)]:.3f} |")
    print(f"| fit + predict, standard split (s) | {mean[('before', 'time')]:.0f} | {mean[('defaults', 'time')]:.0f} |")
    # early stopping sets the epochs, and they, more than an epoch's cost, set the time's ratio
    print(f"| epochs, standard split | {mean[('before', 'epochs')]:.1f} | {mean[('defaults', 'epochs')]:.1f} |")


if __name__ == "__main__":
    main()
