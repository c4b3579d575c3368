"""``gridnet explain``: a picture per input of what drove the model's decision, and its
top cells (audio, image, table) or words and n-grams (text) printed."""
from __future__ import annotations

import os

import numpy as np

from .data import CLIError, to_grids
from .inputs import load_model, read_inputs

__all__ = ["explain", "axes_of"]


def axes_of(adapter, modality):
    """(x values, y values, x label, y label) of a grid of ``adapter``'s, for a picture."""
    if modality == "audio":
        step = adapter.hop_length_ / adapter.sr_
        xs = np.arange(adapter.n_frames_) * step
        if adapter.feature == "logmel":
            import librosa
            ys = librosa.mel_frequencies(adapter.n_mels + 2, fmin=adapter.fmin,
                                         fmax=adapter.fmax or adapter.sr_ / 2)[1:-1]
            ylabel = "frequency (Hz, mel band centre)"
        elif adapter.feature == "stft":
            ys = np.arange(1 + adapter.n_fft_ // 2) * adapter.sr_ / adapter.n_fft_
            ylabel = "frequency (Hz)"
        else:
            ys, ylabel = np.arange(adapter.n_mfcc), "MFCC"
        return xs, ys, "time in the grid (s; the clip after trimming)", ylabel
    return None, None, "column", "row"


def _cell_text(modality, xs, ys, r, c):
    if modality == "audio":
        unit = "Hz" if ys is not None and ys.max() > 100 else ""
        return f"t={xs[c]:.2f} s, {ys[r]:.0f} {unit}".rstrip()
    return f"row {r}, column {c}"


def _out_name(out, label, used):
    base = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)[:60] or "input"
    name, k = base, 1
    while name in used:
        k += 1
        name = f"{base}-{k}"
    used.add(name)
    return os.path.join(out, name + ".png")


def explain(args):
    from ..plotting import pyplot
    try:
        plt = pyplot()
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    clf, extra, adapter = load_model(args.model)
    modality = extra["modality"]
    target = _target(args, clf)
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise CLIError(f"-o {args.output}: exists and is not a folder")
    data, names, line_of, source = read_inputs(args, modality, extra, "explain")
    os.makedirs(args.output, exist_ok=True)
    grids = to_grids(adapter, data, source=source, line_of=line_of)
    proba = clf.predict_proba(grids)
    codes = (proba.argmax(axis=1) if target is None
             else np.full(len(proba), list(clf.classes_).index(target)))
    # the classes to explain, from the one forward pass above (not one per explanation)
    explained = clf.classes_[codes]
    maps = clf.explain(grids, target=explained)
    draw = {"text": _TextPictures, "table": _TablePictures}.get(modality, _GridPictures)(
        args, clf, adapter, modality, data, grids, explained)
    used = set()
    for i, name in enumerate(names):
        label, p = clf.classes_[codes[i]], proba[i, codes[i]]
        what = "explained" if target is not None else "predicted"
        print(f"{name}\t{label}\t{p:.3f}")
        title = f"{os.path.basename(name) if modality != 'text' else ''} {what}: {label} ({p:.2f})".strip()
        fig, stem = draw(plt, i, name, maps[i], title)
        fig.tight_layout()
        fig.savefig(_out_name(args.output, stem, used), dpi=110)
        plt.close(fig)
    print(f"wrote {len(names)} picture(s) to {args.output}")
    return 0


def _target(args, clf):
    """``--target`` as one of the model's classes, or None."""
    if args.target is None:
        return None
    known = {str(c): c for c in clf.classes_}
    if args.target not in known:
        raise CLIError(f"--target {args.target!r} is not a class of the model; it knows "
                       f"{', '.join(map(repr, known))}")
    return known[args.target]


class _TextPictures:
    """A sentence's words coloured by their share, its top words and n-grams printed."""

    def __init__(self, args, clf, adapter, modality, data, grids, explained):
        self.top = args.top
        self.windows = clf.explain_windows(grids, target=explained, top=args.top)
        self.tokens = adapter.tokens_at_positions(data)

    def __call__(self, plt, i, name, m, title):
        from ..plotting import plot_words
        tokens = self.tokens[i]
        words = [(t, float(v)) for t, v in zip(tokens, m) if t is not None]
        ranked = sorted(words, key=lambda wv: -wv[1])[:self.top]
        print("  top words: " + ", ".join(f"{w!r} {v:+.3f}" for w, v in ranked))
        grams = [" ".join(t for t in tokens[s:e] if t is not None) for s, e, _ in self.windows[i]]
        print("  n-grams:   " + ", ".join(f"{g!r} {v:+.3f}"
                                        for g, (_, _, v) in zip(grams, self.windows[i])))
        fig, ax = plt.subplots(figsize=(min(2 + 0.9 * len(words), 16), 1.6))
        plot_words([w for w, _ in words], [v for _, v in words], ax=ax, title=title)
        return fig, f"sentence-{i + 1:03d}"


class _TablePictures:
    """A row's columns as bars of their share (the 15 largest), the top ones printed."""

    def __init__(self, args, clf, adapter, modality, data, grids, explained):
        self.top, self.feats = args.top, list(adapter.feature_names_)

    def __call__(self, plt, i, name, m, title):
        feats, row = self.feats, m.reshape(-1)
        order = np.argsort(-np.abs(row))[:self.top]
        print("  top columns: " + ", ".join(f"{feats[j]} {row[j]:+.3f}" for j in order))
        show = np.argsort(-np.abs(row))[:15][::-1]
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(show) + 1.2))
        ax.barh([feats[j] for j in show], row[show],
                color=["tab:red" if row[j] > 0 else "tab:blue" for j in show])
        ax.set_xlabel("gradient x input (share of the class's margin)")
        ax.set_title(title)
        return fig, f"row-{name.split()[-1]}"


class _GridPictures:
    """A spectrogram or picture with its map over it, the top cells printed."""

    def __init__(self, args, clf, adapter, modality, data, grids, explained):
        self.top, self.modality, self.grids = args.top, modality, grids
        self.xs, self.ys, self.xlabel, self.ylabel = axes_of(adapter, modality)

    def __call__(self, plt, i, name, m, title):
        from ..plotting import plot_map
        flat = np.argsort(-m.reshape(-1))[:self.top]
        cells = [np.unravel_index(k, m.shape) for k in flat]
        print("  top cells: " + ", ".join(
            f"{_cell_text(self.modality, self.xs, self.ys, r, c)} {m[r, c]:+.3f}" for r, c in cells))
        fig, ax = plt.subplots(figsize=(7, 4))
        plot_map(np.asarray(self.grids[i]).mean(axis=0), m, ax=ax, x_values=self.xs,
                 y_values=self.ys, x_label=self.xlabel, y_label=self.ylabel, title=title,
                 origin="lower" if self.modality == "audio" else "upper")
        return fig, os.path.splitext(os.path.basename(name))[0]
