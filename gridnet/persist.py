"""Saving and loading a fitted GridNetClassifier without pickle.

The file is a numpy ``.npz`` archive read with ``allow_pickle=False``: the weights as
plain arrays, and one JSON document (format name and version, the estimator's
parameters, the network's layer configuration, classes, history, and a SHA-256 of the
weights). Nothing in it is executed on load; a truncated, corrupt or altered file
raises ``ValueError``. An ``augment`` callable is not saved (it only matters for
training); neither is the optimizer's state (training a loaded model with
``warm_start`` starts the optimizer afresh).
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile

import numpy as np

from .network import Network, layer_from_config

__all__ = ["save_classifier", "load", "FORMAT", "VERSION"]

FORMAT = "gridnet-classifier"
VERSION = 1
_CLASS_KINDS = {"str": str, "int": int, "float": float, "bool": bool}


def _digest(weights):
    h = hashlib.sha256()
    for name in sorted(weights):
        a = np.ascontiguousarray(weights[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _classes_to_json(classes):
    for kind, typ in (("bool", (bool, np.bool_)), ("int", (int, np.integer)),
                      ("float", (float, np.floating)), ("str", (str, np.str_))):
        if all(isinstance(c, typ) for c in classes):
            return kind, [_CLASS_KINDS[kind](c) for c in classes]
    raise ValueError("only str, int, float or bool class labels can be saved without pickle; "
                     f"got {sorted({type(c).__name__ for c in classes})}; use pickle or joblib")


def _layer_configs(layers):
    return [{"type": type(layer).__name__, **layer.get_config()} for layer in layers]


def save_classifier(clf, path, extra=None):
    """Write fitted ``clf`` to ``path``. ``extra`` (JSON-able dict) is stored alongside
    (the command line keeps its adapter settings there)."""
    from sklearn.utils.validation import check_is_fitted
    check_is_fitted(clf)
    params = clf.get_params(deep=False)
    params["augment"] = None
    if params["layers"] is not None:
        params["layers"] = _layer_configs(params["layers"])
    for key in ("random_state",):
        if not (params[key] is None or isinstance(params[key], int)):
            params[key] = None
    if isinstance(params.get("class_weight"), dict):
        params["class_weight"] = None
    weights = clf.network_.get_weights()
    kind, classes = _classes_to_json(list(clf.classes_))
    doc = {
        "format": FORMAT, "version": VERSION, "params": params,
        "network": clf.network_.get_config(), "grid_shape": list(clf.grid_shape_),
        "n_features_in": int(clf.n_features_in_), "classes_kind": kind, "classes": classes,
        "feature_names_in": list(map(str, getattr(clf, "feature_names_in_", []))) or None,
        "history": clf.history_, "n_iter": int(clf.n_iter_),
        "embedding_started": int(getattr(clf, "embedding_started_", 0)), "weights_sha256": _digest(weights),
        "extra": extra,
    }
    try:
        text = json.dumps(doc)
    except TypeError as exc:
        raise ValueError(f"cannot save this classifier without pickle: {exc}") from None
    arrays = {f"w/{name}": a for name, a in weights.items()}
    with open(path, "wb") as fh:   # np.savez would append ".npz" to a name without it
        np.savez(fh, __gridnet__=np.array(text), **arrays)


def load(path, return_extra=False):
    """Load a classifier saved by :meth:`GridNetClassifier.save`.

    Examples
    --------
    >>> import gridnet, tempfile, os
    >>> from sklearn.datasets import load_digits
    >>> d = load_digits()
    >>> clf = gridnet.GridNetClassifier(max_epochs=1, random_state=0).fit(d.images[:100], d.target[:100])
    >>> path = os.path.join(tempfile.mkdtemp(), "digits.gridnet")
    >>> clf.save(path)
    >>> (gridnet.load(path).predict(d.images[:5]) == clf.predict(d.images[:5])).all()
    True
    """
    from .estimator import GridNetClassifier
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
    try:
        params = dict(doc["params"])
        if params.get("layers") is not None:
            params["layers"] = [layer_from_config(c) for c in params["layers"]]
        clf = GridNetClassifier(**params)
        net = Network.from_config(doc["network"])
        net.build(tuple(doc["grid_shape"]), np.random.default_rng(0))
        net.set_weights(weights)
        kind = doc["classes_kind"]
        classes = np.array([_CLASS_KINDS[kind](c) for c in doc["classes"]])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{name} holds an invalid gridnet model ({type(exc).__name__}: {exc})") from None
    clf.network_ = net
    clf.classes_ = classes
    clf.grid_shape_ = tuple(doc["grid_shape"])
    clf.n_features_in_ = int(doc["n_features_in"])
    if doc.get("feature_names_in"):
        clf.feature_names_in_ = np.array(doc["feature_names_in"], dtype=object)
    clf.history_ = doc.get("history") or []
    clf.loss_curve_ = [h["loss"] for h in clf.history_]
    clf.validation_scores_ = [h["val_score"] for h in clf.history_ if h.get("val_score") is not None]
    clf.n_iter_ = int(doc.get("n_iter", 0))
    clf.embedding_started_ = int(doc.get("embedding_started", 0))
    clf.best_loss_ = min(clf.loss_curve_) if clf.loss_curve_ else float("nan")
    clf._optimizer = None
    return (clf, doc.get("extra")) if return_extra else clf
