"""Pictures of training and of explanations (matplotlib, an optional dependency:
``pip install "gridnet-toolkit[plot]"``).

:func:`plot_history` draws ``history_``; :func:`plot_confusion_matrix` is
scikit-learn's :class:`~sklearn.metrics.ConfusionMatrixDisplay`; :func:`plot_map` and
:func:`plot_words` draw an explanation over its grid or sentence;
:func:`plot_reliability` the top-label reliability diagram (scikit-learn's
``CalibrationDisplay`` is for two classes).
"""
from __future__ import annotations

import numpy as np

__all__ = ["plot_history", "plot_confusion_matrix", "plot_reliability", "plot_map", "plot_words",
           "pyplot"]


def pyplot():
    """matplotlib's pyplot on a non-interactive backend when none was chosen, or an
    ImportError that says how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib, which is not installed: "
                          "pip install matplotlib (or the gridnet-toolkit[plot] extra)") from None
    import sys
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_history(clf, ax=None):
    """The training loss, the validation loss and the validation score per epoch of a
    fitted :class:`~gridnet.GridNetClassifier` (its ``history_``); the epoch whose
    weights were kept is marked. Returns the Axes (the score on a twin axis).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> import gridnet
    >>> d = load_digits()
    >>> clf = gridnet.GridNetClassifier(max_epochs=3, random_state=0).fit(d.images[:200], d.target[:200])
    >>> ax = gridnet.plot_history(clf)
    >>> [line.get_label() for line in ax.get_lines()][:2]
    ['training loss', 'validation loss']
    """
    history = getattr(clf, "history_", None)
    if not history:
        raise ValueError("the classifier has no training history (history_); fit it first")
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["loss"] for h in history], "o-", label="training loss")
    val = [h for h in history if h.get("val_loss") is not None]
    handles = ax.get_lines()[:]
    if val:
        ax.plot([h["epoch"] for h in val], [h["val_loss"] for h in val], "s-",
                label="validation loss")
        twin = ax.twinx()
        line, = twin.plot([h["epoch"] for h in val], [h["val_score"] for h in val], "^-",
                          color="tab:green", label="validation accuracy")
        twin.set_ylabel("validation accuracy")
        kept = getattr(clf, "best_epoch_", None)
        if kept is not None:
            ax.axvline(kept, color="grey", linestyle=":", label=f"kept: epoch {kept}")
        handles = ax.get_lines() + [line]
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(handles=handles, labels=[h.get_label() for h in handles], loc="best")
    ax.set_title("training history")
    return ax


def plot_confusion_matrix(y_true, y_pred, labels=None, ax=None):
    """scikit-learn's ``ConfusionMatrixDisplay.from_predictions`` (rows: true labels);
    returns the display."""
    from sklearn.metrics import ConfusionMatrixDisplay
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    return ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=labels, ax=ax,
                                                   colorbar=False, xticks_rotation="vertical")


def plot_reliability(codes, proba, ax=None, n_bins=None):
    """Top-label reliability diagram: for bins of the top probability, the share of
    samples whose top class is right against the bins' mean top probability (bars,
    their width the bin's), the diagonal of perfect calibration, and the calibration
    error in the title. ``codes`` (n,): the true classes' columns of ``proba`` (n, k).
    Returns the Axes.

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    >>> plot_reliability([0, 1, 1], proba).get_title()
    'calibration error 0.4000 (3 samples, 15 bins)'
    """
    from .calibration import N_BINS, calibration_error, reliability_curve
    n_bins = int(n_bins or N_BINS)
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    confidence, accuracy, count = reliability_curve(codes, proba, n_bins)
    edges = np.linspace(0, 1, n_bins + 1)
    seen = count > 0
    ax.bar(edges[:-1][seen], accuracy[seen], width=1 / n_bins, align="edge",
           edgecolor="black", alpha=0.7, label="accuracy")
    ax.plot(confidence[seen], accuracy[seen], "o", color="C1", zorder=3,
            label="share right at the bin's mean top probability")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    for left, acc, n in zip(edges[:-1][seen], accuracy[seen], count[seen]):
        ax.text(left + 0.5 / n_bins, acc + 0.01, str(int(n)), ha="center", va="bottom", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("top probability (bar labels: samples in the bin)")
    ax.set_ylabel("share right")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"calibration error {calibration_error(codes, proba, n_bins):.4f} "
                 f"({int(count.sum())} samples, {n_bins} bins)")
    return ax


def plot_map(grid, explanation, ax=None, *, x_values=None, y_values=None, x_label=None,
             y_label=None, title=None, ticks=6, origin="lower"):
    """A grid ``(h, w)`` in grey with its explanation ``(h, w)`` over it (red: raised
    the class's margin, blue: lowered it; clear: no effect). ``x_values`` (w,) and
    ``y_values`` (h,) label the axes' ticks (seconds and Hz for a spectrogram, whose
    mel bands are not evenly spaced in Hz); row 0 is at the bottom (``origin="lower"``,
    a spectrogram's low frequencies) or the top (``"upper"``, a picture). Returns the
    Axes."""
    plt = pyplot()
    grid, explanation = np.asarray(grid, float), np.asarray(explanation, float)
    if grid.shape != explanation.shape or grid.ndim != 2:
        raise ValueError(f"grid {grid.shape} and explanation {explanation.shape} must be "
                         "the same 2-D shape")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    h, w = grid.shape
    ax.imshow(grid, origin=origin, aspect="auto", cmap="Greys", interpolation="nearest")
    top = float(np.abs(explanation).max()) or 1.0
    rgba = plt.get_cmap("bwr")((explanation / top + 1) / 2)
    rgba[..., 3] = np.clip(np.abs(explanation) / top, 0, 1) ** 0.7 * 0.85
    ax.imshow(rgba, origin=origin, aspect="auto", interpolation="nearest")
    for values, n, axis in ((x_values, w, ax.xaxis), (y_values, h, ax.yaxis)):
        if values is not None:
            values = np.asarray(values, float)
            if len(values) != n:
                raise ValueError(f"{len(values)} tick values for an axis of {n} cells")
            at = np.unique(np.linspace(0, n - 1, min(ticks, n)).round().astype(int))
            axis.set_ticks(at)
            axis.set_ticklabels([f"{values[i]:.0f}" if abs(values[i]) >= 100 else
                                 f"{values[i]:.3g}" for i in at])
    ax.set_xlabel(x_label or "column")
    ax.set_ylabel(y_label or "row")
    if title:
        ax.set_title(title)
    return ax


def plot_words(words, scores, ax=None, title=None):
    """A sentence with each word shaded by its score (red: raised the class's margin,
    blue: lowered it). ``words`` and ``scores`` are aligned lists. Returns the Axes."""
    plt = pyplot()
    if len(words) != len(scores):
        raise ValueError(f"{len(words)} words but {len(scores)} scores")
    if ax is None:
        _, ax = plt.subplots(figsize=(min(2 + 0.9 * len(words), 16), 1.6))
    scores = np.asarray(scores, float)
    top = float(np.abs(scores).max()) if len(scores) else 1.0
    top = top or 1.0
    cmap = plt.get_cmap("bwr")
    ax.set_axis_off()
    x = 0.01
    for word, s in zip(words, scores):
        text = ax.text(x, 0.5, word, fontsize=13, va="center", ha="left",
                       transform=ax.transAxes,
                       bbox=dict(boxstyle="round,pad=0.25", ec="none",
                                 fc=cmap((s / top + 1) / 2)))
        ax.figure.canvas.draw()
        box = text.get_window_extent().transformed(ax.transAxes.inverted())
        x = box.x1 + 0.012
    if title:
        ax.set_title(title, fontsize=11, loc="left")
    return ax
