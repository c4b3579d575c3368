"""The model file format: one JSON header and named arrays in a numpy ``.npz``, no pickle.

The archive is read with ``allow_pickle=False``. It holds ``__gridnet__`` (the JSON
header: format name and version, and whatever the writer describes itself with) and the
arrays under ``w/`` (the network's weights) with their SHA-256 in the header. Nothing in
it is executed on load; a truncated, corrupt or altered file raises ``ValueError``.

This module knows the container, not what is in it: the classifier
(:mod:`gridnet.estimator`) writes and reads its own header fields, an adapter its own
state (the command line keeps it under the header's ``extra``). It imports nothing
from the rest of gridnet.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile

import numpy as np

__all__ = ["write_model", "read_model", "FORMAT", "VERSION"]

FORMAT = "gridnet-classifier"
VERSION = 1


def _digest(weights):
    h = hashlib.sha256()
    for name in sorted(weights):
        a = np.ascontiguousarray(weights[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_model(path, header, weights):
    """Write ``header`` (a JSON-able dict) and ``weights`` (name -> array) to ``path``."""
    doc = {"format": FORMAT, "version": VERSION, **header, "weights_sha256": _digest(weights)}
    try:
        text = json.dumps(doc)
    except TypeError as exc:
        raise ValueError(f"cannot save this classifier without pickle: {exc}") from None
    arrays = {f"w/{name}": a for name, a in weights.items()}
    with open(path, "wb") as fh:   # np.savez would append ".npz" to a name without it
        np.savez(fh, __gridnet__=np.array(text), **arrays)


def read_model(path):
    """``path`` -> (header dict, weights dict); checks the format, version and checksum."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"no such model file: {name}")
    try:
        with np.load(name, allow_pickle=False) as data:
            if "__gridnet__" not in data.files:
                raise ValueError("it has no gridnet header")
            doc = json.loads(str(data["__gridnet__"][()]))
            weights = {k[2:]: data[k] for k in data.files if k.startswith("w/")}
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{name} is not a readable gridnet model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{name} is not a gridnet classifier file")
    if doc.get("version") != VERSION:
        raise ValueError(f"{name} has format version {doc.get('version')!r}; this gridnet reads version {VERSION}")
    if _digest(weights) != doc.get("weights_sha256"):
        raise ValueError(f"{name}: the weights do not match their recorded checksum (file altered or corrupt)")
    return doc, weights
