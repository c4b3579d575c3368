"""The model file format: one JSON header and named arrays in a numpy ``.npz``, no pickle.

The archive is read with ``allow_pickle=False``. It holds ``__gridnet__`` (the JSON
header: format name and version, and whatever the writer describes itself with) and the
arrays under ``w/`` (the network's weights). Version 2 records one SHA-256 over the
whole header and the weights (``sha256``), so that no setting can be changed outside the
checksum; version 1 (gridnet 0.1) covered the weights only (``weights_sha256``) and is
still read. Nothing in it is executed on load; a truncated, corrupt or altered file
raises ``ValueError``. A file is written to a temporary name beside its destination and
renamed over it, so that a crash never leaves half a model where a good one was.

This module knows the container, not what is in it: the classifier
(:mod:`gridnet.estimator`) writes and reads its own header fields, an adapter its own
state (the command line keeps it under the header's ``extra``). Large values in
``extra`` (an array or a list of strings of more than :data:`LARGE` items, such as a
pretrained vocabulary) are kept in the archive's arrays under ``x/`` instead of the JSON,
which names them (``{"__stored__": name, "kind": "array" | "strings"}``); the checksum
covers them too. It imports nothing from the rest of gridnet.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import zipfile

import numpy as np

__all__ = ["write_model", "read_model", "check_writable", "FORMAT", "VERSION", "READABLE", "LARGE"]

FORMAT = "gridnet-classifier"
VERSION = 2
READABLE = (1, 2)
#: values in ``extra`` with more items than this go to the archive's arrays
LARGE = 1000
_SEP = "\n"         # between the strings of a stored list (none may hold one)


def _pack(value, arrays, name):
    """``value`` with its large parts moved into ``arrays`` (see the module's doc)."""
    if isinstance(value, dict):
        if "__array__" in value and value.get("dtype") != "object":
            a = np.asarray(value["__array__"], dtype=value["dtype"])
            if a.size > LARGE:
                arrays[name] = a
                return {"__stored__": name, "kind": "array"}
            return value
        return {k: _pack(v, arrays, f"{name}/{k}") for k, v in value.items()}
    if isinstance(value, list):
        if (len(value) > LARGE and all(isinstance(v, str) for v in value)
                and not any(_SEP in v for v in value)):
            arrays[name] = np.frombuffer(_SEP.join(value).encode("utf-8"), dtype=np.uint8)
            return {"__stored__": name, "kind": "strings", "count": len(value)}
        return [_pack(v, arrays, f"{name}/{i}") for i, v in enumerate(value)]
    return value


def _unpack(value, arrays):
    """The inverse of :func:`_pack`: the stored parts read back from ``arrays``."""
    if isinstance(value, dict):
        if "__stored__" in value:
            a = arrays.get(value["__stored__"])
            if a is None:
                raise ValueError(f"the header names a stored value {value['__stored__']!r} "
                                 "that the archive lacks")
            if value.get("kind") == "strings":
                words = a.tobytes().decode("utf-8").split(_SEP) if a.size else []
                if len(words) != value.get("count"):
                    raise ValueError(f"{value['__stored__']!r} holds {len(words)} strings; "
                                     f"the header says {value.get('count')}")
                return words
            return a
        return {k: _unpack(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, arrays) for v in value]
    return value


def _digest(weights):
    h = hashlib.sha256()
    for name in sorted(weights):
        a = np.ascontiguousarray(weights[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _sealed(doc, weights):
    """SHA-256 of the header ``doc`` (without its own ``sha256``) and the weights."""
    body = json.dumps({k: v for k, v in doc.items() if k != "sha256"}, sort_keys=True)
    return hashlib.sha256(body.encode() + _digest(weights).encode()).hexdigest()


def check_writable(path):
    """Raise ``ValueError`` naming the problem when a model cannot be written to
    ``path`` (a folder, a missing or read-only folder): checked before long work."""
    name = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(name))
    if os.path.isdir(name):
        raise ValueError(f"{name} is a folder; give the model a file name")
    if not os.path.isdir(folder):
        raise ValueError(f"{name}: no such folder {folder}")
    if not os.access(folder, os.W_OK) or (os.path.exists(name) and not os.access(name, os.W_OK)):
        raise ValueError(f"{name}: not writable")


def write_model(path, header, weights):
    """Write ``header`` (a JSON-able dict) and ``weights`` (name -> array) to ``path``,
    atomically (a temporary file in the same folder, then renamed)."""
    check_writable(path)
    stored = {}
    header = dict(header)
    if header.get("extra") is not None:
        header["extra"] = _pack(header["extra"], stored, "extra")
    weights = {**weights, **{f"x/{k}": a for k, a in stored.items()}}
    doc = {"format": FORMAT, "version": VERSION, **header}
    try:                   # (the seal serialises the header first: its error counts too)
        doc["sha256"] = _sealed(doc, weights)
        text = json.dumps(doc)
    except TypeError as exc:
        raise ValueError(f"cannot save this classifier without pickle: {exc}") from None
    arrays = {f"w/{name}": a for name, a in weights.items()}
    name = os.fspath(path)
    # a new name beside the destination, made as open() makes a file (the umask applies;
    # tempfile.mkstemp would make it 0600, and the rename would keep that)
    tmp = os.path.join(os.path.dirname(os.path.abspath(name)), f".gridnet-{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:   # np.savez would append ".npz" to a name without it
            np.savez(fh, __gridnet__=np.array(text), **arrays)
        os.replace(tmp, name)
    except BaseException:
        os.unlink(tmp)
        raise


def read_model(path):
    """``path`` -> (header dict, weights dict); checks the format, version and checksum."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"no such model file: {name}")
    if os.path.isdir(name):
        raise ValueError(f"{name} is a folder, not a gridnet model file")
    if not zipfile.is_zipfile(name):
        raise ValueError(f"{name} is not a readable gridnet model file: not a .npz archive "
                         "(a model is one written by 'gridnet fit' or GridNetClassifier.save; "
                         "this file is of another kind, or truncated)")
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
    if doc.get("version") not in READABLE:
        raise ValueError(f"{name} has format version {doc.get('version')!r}; this gridnet reads "
                         f"versions {', '.join(map(str, READABLE))}")
    if doc["version"] == 1:
        if _digest(weights) != doc.get("weights_sha256"):
            raise ValueError(f"{name}: the weights do not match their recorded checksum (file altered or corrupt)")
    elif _sealed(doc, weights) != doc.get("sha256"):
        raise ValueError(f"{name}: the header and weights do not match their recorded checksum "
                         "(file altered or corrupt)")
    stored = {k[2:]: weights.pop(k) for k in [k for k in weights if k.startswith("x/")]}
    if doc.get("extra") is not None:
        try:
            doc["extra"] = _unpack(doc["extra"], stored)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{name} is not a readable gridnet model file ({exc})") from None
    return doc, weights
