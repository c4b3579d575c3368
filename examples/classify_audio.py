"""Classify spoken digits: AudioAdapter + GridNetClassifier on the Free Spoken Digit
Dataset, against what a user would pick instead (MFCC statistics + an SVM).

Standard split: takes 0-4 of every speaker and digit are the test set (300 clips), the
rest (2,700) train. With --loso, also leave-one-speaker-out (6 folds) for both models,
since new voices are what users meet.

    python examples/classify_audio.py [--data ../shared/data/fsdd] [--loso]

Prints ``test accuracy: 0.XXXX`` (the standard split) last.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from adapters import AudioAdapter  # noqa: E402
from shared_data import load_fsdd  # noqa: E402
from gridnet import GridNetClassifier  # noqa: E402
from gridnet.augment import spec_augment  # noqa: E402

SETTINGS = dict(sr=8000, n_fft=512, hop_length=128, n_mels=40)


def gridnet_model(seed=0):
    """Log-mel grids 40 x 48 (0.77 s after trimming silence) and the audio preset,
    trained with SpecAugment-style masks and shifts for 30 epochs, the weights as
    trained (the settings this example was measured with; no moving average)."""
    adapter = AudioAdapter(trim=True, frames=48, n_jobs=2, **SETTINGS)
    clf = GridNetClassifier(preset="audio", max_epochs=30, early_stopping=False, random_state=seed,
                            augment=spec_augment(freq_width=4, time_width=4, max_shift=4),
                            ema_momentum=None)
    return adapter, clf


def mfcc_stats(files):
    """The usual baseline features: mean and standard deviation of 20 MFCCs and their
    deltas over each clip."""
    import librosa
    out = []
    for f in files:
        y, sr = librosa.load(f, sr=8000)
        m = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20, n_fft=512, hop_length=128, n_mels=40)
        d = librosa.feature.delta(m, width=min(9, m.shape[1] - (m.shape[1] + 1) % 2))
        out.append(np.concatenate([m.mean(1), m.std(1), d.mean(1), d.std(1)]))
    return np.array(out)


def baseline_model():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    return make_pipeline(StandardScaler(), SVC(C=10, gamma="scale"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="the fsdd folder (default ../shared/data/fsdd)")
    parser.add_argument("--loso", action="store_true", help="also leave-one-speaker-out (about 10 minutes)")
    args = parser.parse_args(argv)
    files, digits, speakers, take = load_fsdd(args.data)
    files = np.array(files)
    test = take <= 4

    t0 = time.perf_counter()
    adapter, clf = gridnet_model()
    grids_train = adapter.fit_transform(files[~test])
    grids_test = adapter.transform(files[test])
    clf.fit(grids_train, digits[~test])
    acc = clf.score(grids_test, digits[test])
    t_grid = time.perf_counter() - t0
    t0 = time.perf_counter()
    feats = mfcc_stats(files)
    base = baseline_model().fit(feats[~test], digits[~test])
    base_acc = base.score(feats[test], digits[test])
    t_base = time.perf_counter() - t0
    print(f"standard split ({(~test).sum()} train, {test.sum()} test clips)")
    print(f"  gridnet (log-mel {grids_train.shape[2]}x{grids_train.shape[3]}, audio preset): "
          f"{acc:.4f}  ({t_grid:.0f} s, features and training)")
    print(f"  MFCC statistics + SVM:                   {base_acc:.4f}  ({t_base:.0f} s)")

    if args.loso:
        print("leave one speaker out (the speaker's 500 clips are the test set)")
        rows = []
        for spk in np.unique(speakers):
            held = speakers == spk
            adapter, clf = gridnet_model()
            g_acc = clf.fit(adapter.fit_transform(files[~held]), digits[~held]).score(
                adapter.transform(files[held]), digits[held])
            b_acc = baseline_model().fit(feats[~held], digits[~held]).score(feats[held], digits[held])
            rows.append((g_acc, b_acc))
            print(f"  {spk:<10} gridnet {g_acc:.4f}   MFCC+SVM {b_acc:.4f}", flush=True)
        g, b = np.mean(rows, axis=0)
        print(f"  {'mean':<10} gridnet {g:.4f}   MFCC+SVM {b:.4f}")
    print(f"baseline accuracy: {base_acc:.4f}")
    print(f"test accuracy: {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
