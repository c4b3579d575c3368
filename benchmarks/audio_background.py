"""Background recordings (issue 41): the default audio pipeline against the same given a
folder of the noise to expect, on FSDD's standard split (train takes 5-49, test takes
0-4), the same seeds, the same run.

The folder holds 20 recordings of babble, each three training clips summed and
repeated to 2 s (seeded); the test babble is ``audio_robustness.py``'s: three test
clips of other speakers, at 5 and 0 dB SNR. So the background is the kind of noise the
test adds, never the same clips.

Usage: ``python benchmarks/audio_background.py [--seeds 0,1,2]`` (FSDD from
../shared/data). Prints a Markdown table, mean of the seeds.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from audio_robustness import DATA, noisy, seed_means  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from adapters import AudioAdapter  # noqa: E402
from gridnet import GridNetClassifier  # noqa: E402
from gridnet.augment import audio_augment  # noqa: E402

TESTS = [("clean", None), ("babble", 5), ("babble", 0), ("white", 5), ("pink", 5)]


def babble_folder(waves, folder, seed, count=20, seconds=2.0, sr=8000):
    """``count`` recordings in ``folder``, each three of ``waves`` summed (each scaled
    to unit power and repeated to ``seconds``)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    for k in range(count):
        mix = np.zeros(n)
        for i in rng.choice(len(waves), 3, replace=False):
            mix += np.resize(waves[i], n) / np.sqrt(np.mean(waves[i] ** 2) + 1e-12)
        sf.write(Path(folder) / f"babble{k:02d}.wav", (0.05 * mix).astype(np.float32), sr)
    return folder


def fit(files, labels, seed, background=None):
    adapter = AudioAdapter(background=background)
    grids = adapter.fit_transform(files)
    extra = {} if background is None else {"augment": audio_augment(adapter.background_)}
    clf = GridNetClassifier(random_state=seed, **extra).fit(grids, labels)
    return make_pipeline(adapter, clf)


def run(seeds):
    from shared_data import load_fsdd
    files, digits, speakers, take = load_fsdd(DATA / "fsdd")
    files = np.array(files)
    wave = [sf.read(f, dtype="float32")[0] for f in files]
    train, test = take >= 5, take <= 4
    clips = [(wave[i], speakers[i]) for i in np.nonzero(test)[0]]
    rows = {}
    for seed in seeds:
        with tempfile.TemporaryDirectory() as folder:
            babble_folder([wave[i] for i in np.nonzero(train)[0]], folder, seed)
            for name, background in (("defaults", None), ("with the background folder", folder)):
                t0 = time.perf_counter()
                pipe = fit(list(files[train]), digits[train], seed, background)
                rows.setdefault((name, "time"), []).append(time.perf_counter() - t0)
                for colour, snr in TESTS:
                    x = list(files[test]) if colour == "clean" else noisy(
                        clips, colour, snr, 1000 * seed + snr, clips)
                    rows.setdefault((name, colour, snr), []).append(
                        np.mean(pipe.predict(x) == digits[test]))
        print(f"seed {seed} done", file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    mean = seed_means(run, __doc__.splitlines()[0], argv)
    names = ("defaults", "with the background folder")
    print("| standard split | " + " | ".join(names) + " |")
    print("|---|---:|---:|")
    for colour, snr in TESTS:
        label = colour if snr is None else f"{colour} {snr} dB"
        print(f"| {label} | " + " | ".join(f"{mean[(n, colour, snr)]:.3f}" for n in names) + " |")
    print("| fit + predict (s) | " + " | ".join(f"{mean[(n, 'time')]:.0f}" for n in names) + " |")


if __name__ == "__main__":
    main()
