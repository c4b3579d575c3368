"""The model file: what a fitted classifier, or a pipeline of an adapter and a
classifier, writes and reads. The one owner of the file's content.

:mod:`gridnet.persist` is the container (a JSON header and named arrays in a
pickle-free ``.npz``, one checksum over both, large values of ``extra`` kept as arrays).
This module fills it: the classifier's parameters, network configuration, classes and
history, the network's weights and buffers (an array equal to one already written is
named in the header's ``same_weights`` instead: an ensemble's networks share their
fixed word vectors), and, for a pipeline, the adapter's fitted
state under ``extra["adapter"]`` with its modality (as ``gridnet fit`` writes it), so
that a model saved from Python runs in ``gridnet predict`` and a ``gridnet fit`` model
loads in Python as the pipeline it is. Version-1 and version-2 files load; a file whose
rejection threshold is a top probability (``reject_threshold``, before the log-odds) loads
with that threshold as log-odds.
"""
from __future__ import annotations

import numpy as np

from . import persist, rejection, views
from .architectures import ensemble_members
from .core import Network, layer_from_config
from .core.stack import layer_config

__all__ = ["save", "load", "MODALITIES", "is_classifier"]

#: the command line's modality of each adapter class
MODALITIES = {"AudioAdapter": "audio", "TextAdapter": "text", "ImageAdapter": "image",
              "TabularAdapter": "table"}

_CLASS_KINDS = {"str": str, "int": int, "float": float, "bool": bool}


def _classes_to_json(classes):
    for kind, typ in (("bool", (bool, np.bool_)), ("int", (int, np.integer)),
                      ("float", (float, np.floating)), ("str", (str, np.str_))):
        if all(isinstance(c, typ) for c in classes):
            return kind, [_CLASS_KINDS[kind](c) for c in classes]
    raise ValueError("only str, int, float or bool class labels can be saved without pickle; "
                     f"got {sorted({type(c).__name__ for c in classes})}; use pickle or joblib")


def _header(clf, extra):
    """The JSON header of a fitted classifier's model file. An ``augment`` callable is
    not saved (it only matters for training); neither is the optimizer's state
    (training a loaded model with ``warm_start`` starts the optimizer afresh)."""
    params = clf.get_params(deep=False)
    params["augment"] = params["augment"] if isinstance(params["augment"], str) else None
    if params["layers"] is not None:
        params["layers"] = [layer_config(layer) for layer in params["layers"]]
    if not (params["random_state"] is None or isinstance(params["random_state"], int)):
        params["random_state"] = None
    if isinstance(params.get("class_weight"), dict):
        params["class_weight"] = None
    if isinstance(params.get("reject_label"), np.generic):
        params["reject_label"] = params["reject_label"].item()
    oos = getattr(clf, "oos_label_", None)
    kind, classes = _classes_to_json(list(clf.classes_))
    return {
        "params": params, "network": clf.network_.get_config(), "grid_shape": list(clf.grid_shape_),
        "n_features_in": int(clf.n_features_in_), "classes_kind": kind, "classes": classes,
        "feature_names_in": list(map(str, getattr(clf, "feature_names_in_", []))) or None,
        "history": clf.history_, "n_iter": int(clf.n_iter_),
        "embedding_started": int(getattr(clf, "embedding_started_", 0)),
        "preset": getattr(clf, "preset_", clf.preset), "extra": extra,
        "best_epoch": getattr(clf, "best_epoch_", None),
        "histories": clf.histories_ if getattr(clf, "ensemble_size_", 1) > 1 else None,
        "best_validation_score": getattr(clf, "best_validation_score_", None),
        "temperature": float(getattr(clf, "temperature_", 1.0)),
        "tta": [list(v) for v in getattr(clf, "tta_", ())],
        "linear_share": float(getattr(clf, "linear_share_", 0.0)),
        "reject_log_odds": getattr(clf, "reject_threshold_", None),
        "reject_novelty": novelty_json(getattr(clf, "reject_novelty_", None)),
        "oos_class": None if oos is None else list(clf.classes_).index(oos),
    }


def novelty_json(state):
    """``reject_novelty_`` as JSON: the reference's columns as lists, the words' keys."""
    if state is None:
        return None
    return {"reference": [[float(v) for v in col] for col in np.asarray(state["reference"]).T],
            "words": [int(k) for k in state["words"]]}


def _novelty(doc):
    """The header's ``reject_novelty`` as ``reject_novelty_`` (:mod:`gridnet.rejection`):
    None, or its reference's sorted columns of shares and its sorted (class, word) keys."""
    if doc is None:
        return None
    if not isinstance(doc, dict) or set(doc) != {"reference", "words"}:
        raise ValueError("reject_novelty must hold a reference and words")
    reference = np.array(doc["reference"], dtype=np.float64).T
    words = np.array(doc["words"], dtype=np.int64)
    if (reference.ndim != 2 or reference.shape[1] != 2 or not len(reference)
            or np.any(np.diff(reference, axis=0) < 0) or reference.min() < 0 or reference.max() > 1):
        raise ValueError("reject_novelty's reference must be two sorted lists of shares in [0, 1]")
    if words.ndim != 1 or np.any(np.diff(words) <= 0) or (len(words) and words.min() < 1):
        raise ValueError("reject_novelty's words must be increasing positive keys")
    return {"reference": reference, "words": words}


def is_classifier(obj):
    """A GridNetClassifier (this module is imported by the estimator, not the other way)."""
    return hasattr(obj, "network_") or type(obj).__name__ == "GridNetClassifier"


def _parts(model):
    """(classifier, adapter or None) of a fitted GridNetClassifier or a fitted
    Pipeline of one adapter and a GridNetClassifier."""
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps if step != "passthrough" and step is not None]
        if len(steps) != 2 or not is_classifier(steps[1]) or not hasattr(steps[0], "to_state"):
            raise ValueError("a pipeline is saved as one adapter (with to_state) and a "
                             f"GridNetClassifier; this one has {[type(s).__name__ for s in steps]}")
        clf, adapter = steps[1], steps[0]
    elif is_classifier(model):
        clf, adapter = model, None
    else:
        raise TypeError(f"gridnet saves a GridNetClassifier or a pipeline of an adapter and "
                        f"one; got {type(model).__name__}")
    check_is_fitted(clf)
    return clf, adapter


def save(model, path, extra=None):
    """Save a fitted :class:`~gridnet.GridNetClassifier`, or a fitted pipeline of an
    adapter and one, to ``path`` (a pickle-free ``.npz``); :func:`load` reads it back.
    ``extra`` (a JSON-able dict) is kept beside it (``return_extra``).

    Examples
    --------
    >>> import gridnet, tempfile, os
    >>> from sklearn.pipeline import make_pipeline
    >>> from adapters import TextAdapter
    >>> pipe = make_pipeline(TextAdapter(embedding=None),
    ...                      gridnet.GridNetClassifier(max_epochs=1, kernel_size=1, random_state=0))
    >>> pipe = pipe.fit(["a good film", "a bad film"] * 5, [1, 0] * 5)
    >>> path = os.path.join(tempfile.mkdtemp(), "films.gridnet")
    >>> gridnet.save(pipe, path)
    >>> back = gridnet.load(path)                  # the pipeline, adapter included
    >>> bool((back.predict_proba(["a good film"]) == pipe.predict_proba(["a good film"])).all())
    True
    """
    clf, adapter = _parts(model)
    extra = dict(extra) if extra is not None else None
    if adapter is not None:
        if type(adapter).__name__ not in MODALITIES:
            raise ValueError(f"cannot save a pipeline with a {type(adapter).__name__}; "
                             f"gridnet saves the adapters {sorted(MODALITIES)}")
        extra = {**(extra or {}), "modality": MODALITIES[type(adapter).__name__],
                 "adapter": adapter.to_state()}
    weights, same = _distinct(clf.network_.get_weights())
    header = _header(clf, extra)
    if same:
        header["same_weights"] = same
    persist.write_model(path, header, weights)


def _distinct(weights):
    """``weights`` without arrays equal to an earlier one (an ensemble's networks share
    their fixed word vectors), and ``{left out: the equal one kept}``."""
    kept, same = {}, {}
    for name, w in weights.items():
        twin = next((k for k, v in kept.items() if v.dtype == w.dtype and v.shape == w.shape
                     and w.size > 1 and np.array_equal(v, w)), None)
        if twin is None:
            kept[name] = w
        else:
            same[name] = twin
    return kept, same


def load(path, cls, return_extra=False):
    """What :func:`gridnet.load` returns (see there); ``cls``: the classifier's class."""
    doc, weights = persist.read_model(path)
    clf = _classifier(doc, weights, str(path), cls)
    extra = doc.get("extra")
    model = clf
    if isinstance(extra, dict) and "adapter" in extra:
        import adapters
        from sklearn.pipeline import make_pipeline
        try:
            adapter = adapters.from_state(extra["adapter"])
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise ValueError(f"{path}: the model's adapter cannot be read: {exc}") from None
        model = make_pipeline(adapter, clf)
    return (model, extra) if return_extra else model


def _classifier(doc, weights, name, cls):
    """The fitted ``cls`` a model file's header ``doc`` and ``weights`` describe."""
    try:
        params = dict(doc["params"])
        if params.get("layers") is not None:
            params["layers"] = [layer_from_config(c) for c in params["layers"]]
        clf = cls(**params)
        net = Network.from_config(doc["network"])
        net.build(tuple(doc["grid_shape"]), np.random.default_rng(0))
        same = doc.get("same_weights") or {}
        if not isinstance(same, dict):
            raise TypeError(f"same_weights is a {type(same).__name__}, not a mapping")
        net.set_weights({**weights, **{name: weights[twin] for name, twin in same.items()}})
        kind = doc["classes_kind"]
        classes = np.array([_CLASS_KINDS[kind](c) for c in doc["classes"]])
        tta = views.resolve(doc.get("tta") or None, None, doc["grid_shape"])  # older: none
        novelty = _novelty(doc.get("reject_novelty"))    # older: none, the log-odds alone
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
    clf.temperature_ = float(doc.get("temperature", 1.0))     # files before calibration: 1
    clf.tta_ = tta
    clf.linear_share_ = float(doc.get("linear_share", 0.0))     # (older files: no linear member)
    threshold, oos = doc.get("reject_log_odds"), doc.get("oos_class")   # (older files: none)
    if threshold is None and doc.get("reject_threshold") is not None:  # a top probability
        threshold = rejection.from_probability(doc["reject_threshold"])
    clf.reject_threshold_ = None if threshold is None else float(threshold)
    clf.oos_label_ = None if oos is None else classes[int(oos)]
    clf.reject_novelty_ = novelty
    clf.preset_ = doc.get("preset", params.get("preset"))
    clf.best_loss_ = min(clf.loss_curve_) if clf.loss_curve_ else float("nan")
    best = doc.get("best_epoch")
    clf.best_epoch_ = int(best) if isinstance(best, int) and 0 < best <= len(clf.history_) else None
    clf.best_validation_score_ = (clf.history_[clf.best_epoch_ - 1].get("val_score")
                                  if clf.best_epoch_ else None)
    if isinstance(doc.get("best_validation_score"), float):    # an ensemble's own
        clf.best_validation_score_ = doc["best_validation_score"]
    clf.histories_ = doc.get("histories") or [clf.history_]
    clf.ensemble_size_ = len(ensemble_members(net))
    return clf           # (no optimizer state: a warm_start fit starts it afresh)
