"""``gridnet explain``: a picture per input of what drove the model's decision, and its
top cells (audio, image, table) or words and n-grams (text) printed."""
from __future__ import annotations

import os

import numpy as np

from .data import CLIError, collect_inputs, read_table, text_rows, text_table, to_grids
from .inputs import check_inputs, load_model, read_lines

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
    from ..plotting import plot_map, plot_words, pyplot
    try:
        plt = pyplot()
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    clf, extra, adapter = load_model(args.model)
    modality = extra["modality"]
    inputs = collect_inputs(args, modality, read_lines)
    if not inputs:
        raise CLIError("nothing to explain: give inputs as arguments or with --file")
    target = None
    if args.target is not None:
        known = {str(c): c for c in clf.classes_}
        if args.target not in known:
            raise CLIError(f"--target {args.target!r} is not a class of the model; it knows "
                           f"{', '.join(map(repr, known))}")
        target = known[args.target]
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise CLIError(f"-o {args.output}: exists and is not a folder")
    os.makedirs(args.output, exist_ok=True)
    line_of = None
    if modality == "table":
        if len(inputs) != 1:
            raise CLIError("a table model explains the rows of one CSV file")
        header, columns, line_of = read_table(inputs[0], encoding=args.encoding)
        data = dict(zip(header, columns))
        names = [f"line {at}" for at in line_of]
    elif modality == "text" and text_table(inputs):
        data, names = text_rows(inputs[0], extra, args.encoding)
    else:
        check_inputs(modality, inputs)
        data, names = inputs, inputs
    grids = to_grids(adapter, data, source=inputs[0], line_of=line_of)
    proba = clf.predict_proba(grids)
    codes = (proba.argmax(axis=1) if target is None
             else np.full(len(proba), list(clf.classes_).index(target)))
    # the classes to explain, from the one forward pass above (not one per explanation)
    explained = clf.classes_[codes]
    maps = clf.explain(grids, target=explained)
    windows = (clf.explain_windows(grids, target=explained, top=args.top)
               if modality == "text" else None)
    tokens = adapter.tokens_at_positions(data) if modality == "text" else None
    xs, ys, xlabel, ylabel = axes_of(adapter, modality)
    used = set()
    for i, name in enumerate(names):
        label, p = clf.classes_[codes[i]], proba[i, codes[i]]
        what = "explained" if target is not None else "predicted"
        print(f"{name}\t{label}\t{p:.3f}")
        title = f"{os.path.basename(name) if modality != 'text' else ''} {what}: {label} ({p:.2f})".strip()
        if modality == "text":
            words = [(t, float(v)) for t, v in zip(tokens[i], maps[i]) if t is not None]
            ranked = sorted(words, key=lambda wv: -wv[1])[:args.top]
            print("  top words: " + ", ".join(f"{w!r} {v:+.3f}" for w, v in ranked))
            grams = [" ".join(t for t in tokens[i][s:e] if t is not None) for s, e, _ in windows[i]]
            print("  n-grams:   " + ", ".join(f"{g!r} {v:+.3f}"
                                            for g, (_, _, v) in zip(grams, windows[i])))
            fig, ax = plt.subplots(figsize=(min(2 + 0.9 * len(words), 16), 1.6))
            plot_words([w for w, _ in words], [v for _, v in words], ax=ax, title=title)
            path = _out_name(args.output, f"sentence-{i + 1:03d}", used)
        elif modality == "table":
            feats = list(adapter.feature_names_)
            row = maps[i].reshape(-1)
            order = np.argsort(-np.abs(row))[:args.top]
            print("  top columns: " + ", ".join(f"{feats[j]} {row[j]:+.3f}" for j in order))
            show = np.argsort(-np.abs(row))[:15][::-1]
            fig, ax = plt.subplots(figsize=(6, 0.35 * len(show) + 1.2))
            ax.barh([feats[j] for j in show], row[show],
                    color=["tab:red" if row[j] > 0 else "tab:blue" for j in show])
            ax.set_xlabel("gradient x input (share of the class's margin)")
            ax.set_title(title)
            path = _out_name(args.output, f"row-{name.split()[-1]}", used)
        else:
            m = maps[i]
            flat = np.argsort(-m.reshape(-1))[:args.top]
            cells = [np.unravel_index(k, m.shape) for k in flat]
            print("  top cells: " + ", ".join(f"{_cell_text(modality, xs, ys, r, c)} {m[r, c]:+.3f}"
                                             for r, c in cells))
            fig, ax = plt.subplots(figsize=(7, 4))
            plot_map(np.asarray(grids[i]).mean(axis=0), m, ax=ax, x_values=xs, y_values=ys,
                     x_label=xlabel, y_label=ylabel, title=title,
                     origin="lower" if modality == "audio" else "upper")
            path = _out_name(args.output, os.path.splitext(os.path.basename(name))[0], used)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
    print(f"wrote {len(names)} picture(s) to {args.output}")
    return 0
