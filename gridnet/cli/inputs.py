"""What predict, evaluate and explain share: the model file with its adapter, and the
reading and checking of the inputs they classify (evaluate's labelled data is read as
``gridnet fit`` reads it, :func:`.data.load_data`)."""
from __future__ import annotations

import os

from .data import (AUDIO_EXT, IMAGE_EXT, MODALITIES, CLIError, collect_inputs, read_table,
                   text_rows, text_table)

__all__ = ["load_model", "read_inputs", "check_inputs", "read_lines", "article"]


def read_inputs(args, modality, extra, verb):
    """The inputs of ``gridnet predict`` or ``explain`` (``verb``) -> (data for the
    adapter, a name per sample, the file line of each row of a CSV file or None, the
    first input, which names the source in an adapter's error): the
    rows of one CSV file for a table model, of its text column for a text model given
    one; else the files (or sentences) named, checked against the model's modality."""
    inputs = collect_inputs(args, modality, read_lines)
    if not inputs:
        raise CLIError(f"nothing to {verb}: give inputs as arguments, with --file, or - for stdin")
    if modality == "table":
        if len(inputs) != 1:
            raise CLIError(f"a table model {verb}s the rows of one CSV file")
        header, columns, line_of = read_table(inputs[0], encoding=args.encoding)
        return dict(zip(header, columns)), [f"line {at}" for at in line_of], line_of, inputs[0]
    if modality == "text" and text_table(inputs):
        data, names = text_rows(inputs[0], extra, args.encoding)
        return data, names, None, inputs[0]
    check_inputs(modality, inputs)
    return inputs, inputs, None, inputs[0]


def load_model(path):
    """(classifier, extra, adapter) of a model file that holds an adapter."""
    from sklearn.pipeline import Pipeline

    from ..estimator import load
    try:
        model, extra = load(path, return_extra=True)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    if not isinstance(model, Pipeline):
        raise CLIError(f"{path}: not a model saved with its adapter (by 'gridnet fit' or "
                       "gridnet.save(pipeline, path)); it carries no adapter")
    if extra.get("modality") not in MODALITIES:
        raise CLIError(f"{path}: the model file names no known modality ({extra.get('modality')!r}; "
                       f"expected one of {', '.join(MODALITIES)})")
    return model[-1], extra, model[0]


def check_inputs(modality, inputs):
    """A file of the wrong kind for the model is an error that says so."""
    from adapters.files import file_kind
    for p in inputs:
        if modality == "text":
            if not os.path.isfile(p):
                continue                     # a sentence
            kind, fmt = file_kind(p)
            if kind not in ("audio", "image") and p.lower().endswith(AUDIO_EXT + IMAGE_EXT):
                kind, fmt = ("audio" if p.lower().endswith(AUDIO_EXT) else "image"), "by its name"
            if kind in ("audio", "image"):
                raise CLIError(f"{p}: an {kind} file ({fmt}); this is a text model, which "
                               "classifies sentences: pass them as arguments, or --file FILE "
                               "with one sentence a line")
            # any other file named where a sentence goes: its name would be classified
            raise CLIError(f"{p} is a file, not a sentence; this is a text model: pass "
                           f"sentences as arguments, --file {p} to read one a line, or one "
                           "CSV file with the sentences in its text column")
        if os.path.isdir(p):
            raise CLIError(f"{p} is a folder; give the {modality} files themselves")
        if not os.path.isfile(p):
            raise CLIError(f"{p}: no such file")
        kind, fmt = file_kind(p)
        if kind is not None and kind != modality:
            what = "a text file" if kind == "text" else f"{article(kind)} {kind} file ({fmt})"
            raise CLIError(f"{p}: {what}, not {article(modality)} {modality} file; this is "
                           f"{article(modality)} {modality} model")


def article(word):
    """'a' or 'an' before ``word``."""
    return "an" if word[0] in "aeiou" else "a"


def read_lines(path, encoding):
    """The non-blank lines of a text file (an input a line), errors in one line."""
    try:
        with open(path, encoding=encoding) as fh:
            return [line.rstrip("\r\n") for line in fh if line.strip()]
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CLIError(f"{path} is a folder; --file reads a text file, one input a line") from None
    except UnicodeDecodeError as exc:
        raise CLIError(f"{path}: not {encoding} text ({exc.reason} at byte {exc.start}); "
                       "pass --encoding") from None
