"""Predicting on recordings longer than the training clips: a window of the trained
width slides over the recording (see ``AudioAdapter.windows``), and each window is
classified."""
from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np

__all__ = ["Windows", "predict_windows"]


@dataclass
class Windows:
    """Per-window predictions over a recording: ``start``, ``end`` (seconds, (m,)),
    ``labels`` (m,), ``proba`` (m, k) with columns in the order of ``classes``."""

    start: np.ndarray
    end: np.ndarray
    labels: np.ndarray
    proba: np.ndarray
    classes: np.ndarray

    @property
    def probability(self):
        """The predicted label's probability per window, (m,)."""
        return self.proba.max(axis=1)

    def __len__(self):
        return len(self.start)

    def rows(self):
        """``(start, end, label, probability)`` per window."""
        return list(zip(self.start.tolist(), self.end.tolist(), self.labels.tolist(),
                        self.probability.tolist()))

    def to_csv(self, path):
        """Write the columns ``start``, ``end``, ``label``, ``probability``."""
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["start", "end", "label", "probability"])
            for a, b, label, p in self.rows():
                w.writerow([f"{a:.3f}", f"{b:.3f}", label, f"{p:.4f}"])


def predict_windows(pipeline, recording, hop=None, batch=256):
    """Labels and probabilities of the windows of a long recording.

    Parameters
    ----------
    pipeline : a fitted Pipeline whose first step has ``windows`` (``AudioAdapter``) and
        whose last step is a ``GridNetClassifier`` (its ``decision_function`` read; with
        its ``reject``, the windows it rejects get its ``reject_label``); steps between
        them transform the grids.
    recording : a file path, or a waveform as the adapter takes one
    hop : seconds between window starts (None: a quarter of the window)

    Returns
    -------
    Windows

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from adapters import AudioAdapter
    >>> from gridnet import GridNetClassifier, predict_windows
    >>> t = np.arange(4000) / 8000
    >>> clips = [(np.sin(2 * np.pi * f * t), 8000) for f in (300, 1200) * 10]
    >>> pipe = make_pipeline(AudioAdapter(trim=False), GridNetClassifier(max_epochs=3, random_state=0))
    >>> pipe = pipe.fit(clips, [300, 1200] * 10)
    >>> long = (np.concatenate([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 1200 * t)]), 8000)
    >>> w = predict_windows(pipe, long, hop=0.25)
    >>> w.start.tolist(), w.labels[[0, -1]].tolist()   # the hop in whole 16 ms steps
    ([0.0, 0.256, 0.496], [300, 1200])
    """
    try:
        adapter, clf, middle = pipeline[0], pipeline[-1], list(pipeline[1:-1])
    except (TypeError, KeyError):
        raise TypeError("pipeline must be a fitted Pipeline (adapter first, classifier "
                        f"last); got {type(pipeline).__name__}") from None
    if not hasattr(adapter, "windows"):
        raise TypeError(f"the pipeline's first step ({type(adapter).__name__}) cannot cut a "
                        "recording into windows; it must be an AudioAdapter")
    if not hasattr(clf, "decision_function"):
        raise TypeError(f"the pipeline's last step ({type(clf).__name__}) gives no logits "
                        "(decision_function); it must be a GridNetClassifier")
    from .core import softmax
    from .rejection import calibrated_logits, predict as rejecting
    starts, ends, logits = [], [], []
    for grids, start, end in adapter.windows(recording, hop=hop, batch=batch):
        for step in middle:
            grids = step.transform(grids)
        logits.append(calibrated_logits(clf, grids))
        starts.append(start)
        ends.append(end)
    z = np.concatenate(logits)
    if getattr(clf, "reject", False):     # a rejected window (silence, part of a word)
        labels = rejecting(clf, z)
    else:
        labels = clf.classes_[z.argmax(axis=1)]
    return Windows(np.concatenate(starts), np.concatenate(ends), labels, softmax(z), clf.classes_)
