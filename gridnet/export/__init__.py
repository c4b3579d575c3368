"""ONNX export of a network, a fitted classifier, or a fitted pipeline of an adapter and
one: :func:`to_onnx` (the command line's ``gridnet export``). Needs the ``onnx``
package (``pip install "gridnet-toolkit[onnx]"``).

What the exported model takes and gives:

- a bare :class:`~gridnet.core.Network`: ``grid`` float32 ``(n, c, h, w)`` (or
  ``tokens``, below) -> ``logits``, the network's output;
- a classifier -> ``probabilities`` ``(n, k)`` (``predict_proba``) and ``label``
  ``(n,)``, the index of the top class in the metadata's ``classes`` (JSON); the
  metadata's ``reject_log_odds`` and ``reject_label`` (and ``oos_class``) reject as
  ``predict`` with ``reject=True`` does (``rejection`` says how);
- sentences (the text preset, or a pipeline with a one-hot :class:`TextAdapter`):
  ``tokens`` int64 ``(n, positions)``, ``TextAdapter.transform(X).indices`` (-1 for
  padding): tokenising stays in Python; dense text grids take ``grid``;
- audio (a pipeline with an :class:`AudioAdapter`): ``waveform`` float32 ``(samples,)``,
  one mono clip at the adapter's sample rate (``sample_rate`` in the metadata;
  resampling stays outside), through the front end (:mod:`.audio`) into the network, and
  a third output ``valid`` ``(1,)`` bool, False where gridnet would refuse the clip;
  ``to_onnx(adapter)`` exports the front end alone (``waveform`` -> ``grid``);
- images and tables (a pipeline with an ImageAdapter or TabularAdapter): ``grid``, the
  adapter's ``transform`` run in Python (said in the metadata's ``input``).

Dropout is left out (inference), and fused convolution + pooling steps are written as
their plain Conv and MaxPool nodes. The front end is put in the same graph as the
network (one file to deploy, one call per clip); exported alone, it serves a network run
elsewhere or checking it against the adapter.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..model_file import is_classifier, novelty_json
from .graph import OPSET, GraphBuilder
from .layers import ExportError, export_layers

__all__ = ["to_onnx", "ExportError", "OPSET"]


def _need_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install "
                          "\"gridnet-toolkit[onnx]\" (or pip install onnx)") from None
    return onnx


def _split(model):
    """model -> (network, classifier or None, adapter or None)."""
    from ..core import Network
    if isinstance(model, Network):
        if model.steps is None:
            raise ExportError("the network is not built (network.build(in_shape) first)")
        return model, None, None
    if type(model).__name__ == "AudioAdapter":
        return None, None, model
    steps = getattr(model, "steps", None)
    adapter = None
    if isinstance(steps, list) and not isinstance(model, Network):       # a Pipeline
        parts = [s for _, s in steps if s is not None and s != "passthrough"]
        if len(parts) != 2 or not is_classifier(parts[1]):
            raise ExportError("a pipeline is exported as one adapter and a GridNetClassifier; "
                              f"this one has {[type(s).__name__ for s in parts]}")
        adapter, model = parts
    if not is_classifier(model):
        raise ExportError(f"gridnet exports a Network, a GridNetClassifier, a pipeline of an "
                          f"adapter and one, or an AudioAdapter; got {type(model).__name__}")
    if not hasattr(model, "network_"):
        raise ExportError("the GridNetClassifier is not fitted: call fit before exporting")
    return model.network_, model, adapter


def _input_kind(net, clf, adapter, tokens):
    """"tokens", "grid" or "waveform"."""
    name = type(adapter).__name__ if adapter is not None else None
    if name == "AudioAdapter":
        return "waveform"
    if name == "TextAdapter":
        onehot = adapter.vectors in ("onehot", "hashing") and not adapter.dense
        return "tokens" if onehot else "grid"
    if tokens is not None:
        return "tokens" if tokens else "grid"
    if clf is not None and clf.preset is None and getattr(clf, "preset_", None) == "text":
        return "tokens"             # the preset was picked from a one-hot word grid
    from ..core import Branches, Embedding, NgramBag, NgramLinear
    from ..core.stack import leaves
    first = next((layer for layer in leaves(net.layers[:1]) if not isinstance(layer, Branches)), None)
    return "tokens" if isinstance(first, (Embedding, NgramBag, NgramLinear)) else "grid"


def _grid_shape(net):
    return tuple(int(s) for s in net.layers[0].in_shape)


def to_onnx(model, path=None, *, tokens=None, opset=OPSET):
    """Export ``model`` to ONNX; return the ``onnx.ModelProto`` (and write it to ``path``).

    Parameters
    ----------
    model : Network, GridNetClassifier, Pipeline (adapter + classifier) or AudioAdapter
        Fitted (a network: built).
    path : str or path-like, optional
        Where to write the ``.onnx`` file; its folder must exist and be writable (checked
        before anything is built).
    tokens : bool, optional
        Whether the model takes word indices instead of a grid (None: from the model;
        see the module's docstring).

    Examples
    --------
    >>> import numpy as np, onnxruntime as ort
    >>> from gridnet import GridNetClassifier
    >>> from gridnet.export import to_onnx
    >>> X = np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32)
    >>> clf = GridNetClassifier(max_epochs=2, random_state=0).fit(X, [0, 1] * 20)
    >>> session = ort.InferenceSession(to_onnx(clf).SerializeToString())
    >>> proba, label = session.run(None, {"grid": X[:3]})
    >>> bool(np.allclose(proba, clf.predict_proba(X[:3]), atol=1e-5))
    True
    """
    if path is not None:
        check_output_path(path)
    onnx = _need_onnx()
    from onnx import TensorProto, helper
    net, clf, adapter = _split(model)
    g = GraphBuilder()
    meta = {"producer": "gridnet"}
    inputs, outputs = [], []
    kind = _input_kind(net, clf, adapter, tokens) if net is not None else "waveform"
    if kind == "waveform":
        from .audio import export_audio_front_end
        if type(adapter).__name__ != "AudioAdapter":
            raise ExportError("a waveform input goes with an AudioAdapter")
        inputs.append(helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["samples"]))
        x, valid = export_audio_front_end(g, "waveform", adapter)
        meta["sample_rate"] = str(int(adapter.sr_))
        meta["input"] = (f"waveform: one mono clip, float32 samples in [-1, 1] at "
                         f"{int(adapter.sr_)} Hz (sample_rate; resample it first)")
        if net is None:
            outputs.append(helper.make_tensor_value_info(g.rename(x, "grid"), TensorProto.FLOAT,
                                                         [1, 1, None, None]))
        x_kind = "grid"
    elif kind == "tokens":
        h = _grid_shape(net)[1]
        inputs.append(helper.make_tensor_value_info("tokens", TensorProto.INT64, ["n", h]))
        x, x_kind = "tokens", "tokens"
        meta["input"] = ("tokens: int64 (n, positions), the word index at each position, -1 "
                         "for padding: TextAdapter.transform(sentences).indices")
    else:
        c, h, w = _grid_shape(net)
        inputs.append(helper.make_tensor_value_info("grid", TensorProto.FLOAT, ["n", c, h, w]))
        x, x_kind = "grid", "grid"
        meta["input"] = "grid: float32 (n, c, h, w)" + (
            f", {type(adapter).__name__}.transform(X) run in Python" if adapter is not None else "")
    if net is not None:
        logits = _views(g, net, x, x_kind, getattr(clf, "tta_", ()) if clf is not None else ())
        if clf is None:
            outputs.append(helper.make_tensor_value_info(g.rename(logits, "logits"),
                                                         TensorProto.FLOAT, ["n", None]))
        else:
            k = len(clf.classes_)
            temperature = float(getattr(clf, "temperature_", 1.0))
            if temperature != 1.0:          # the classifier's calibration
                logits = g.op("Div", [logits, g.const(np.float32(temperature))])
                meta["temperature"] = repr(temperature)
            proba = g.rename(g.op("Softmax", [logits], axis=1), "probabilities")
            label = g.rename(g.op("ArgMax", [logits], axis=1, keepdims=0), "label")
            outputs += [helper.make_tensor_value_info(proba, TensorProto.FLOAT, ["n", k]),
                        helper.make_tensor_value_info(label, TensorProto.INT64, ["n"])]
            meta["classes"] = json.dumps([_plain(c) for c in clf.classes_])
            meta["outputs"] = ("probabilities: float32 (n, classes), as predict_proba; label: "
                               "int64 (n,), the index of the top class in classes")
            meta.update(_rejection(clf))
    if kind == "waveform":
        outputs.append(helper.make_tensor_value_info(g.rename(valid, "valid"), TensorProto.BOOL, [1]))
        meta["valid"] = ("False where gridnet would refuse the clip (silent, or far from the "
                         "trained length): the other outputs mean nothing then")
    graph = helper.make_graph(g.nodes, "gridnet", inputs, outputs, g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", int(opset))],
                              producer_name="gridnet")
    proto.ir_version = min(proto.ir_version, 8)        # readable by onnxruntime >= 1.13
    helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto)
    if path is not None:
        _write(proto, path)
    return proto


def _views(g, net, x, kind, views):
    """The network's logits on input ``x``, or with test-time ``views`` (the
    classifier's ``tta_``) the mean of its log-probabilities over them, as
    :func:`gridnet.views.logits` computes it."""
    if not views:
        return export_layers(g, net.layers, x, kind)[0]
    from ..augment import warp_matrices
    _, h, w = _grid_shape(net)
    total = None
    for warp, shift in views:
        v = x
        if warp != 1.0:          # (h, h) @ (n, c, h, w): the rows stretched
            v = g.op("MatMul", [g.const(warp_matrices([warp], h)[0]), v])
        if shift:                # the columns moved, the border column filling in
            v = g.op("Gather", [v, g.int64(np.clip(np.arange(w) - shift, 0, w - 1))], axis=3)
        z = g.op("LogSoftmax", [export_layers(g, net.layers, v, kind)[0]], axis=1)
        total = z if total is None else g.op("Add", [total, z])
    return g.op("Div", [total, g.const(np.float32(len(views)))])


def _rejection(clf):
    """The metadata that lets a runtime reject as ``predict`` with ``reject=True`` does
    (:mod:`gridnet.rejection`); none when the classifier has no threshold."""
    from ..rejection import NOVELTY_WEIGHT, label_of, oos_code
    try:
        label = label_of(clf)
    except ValueError:
        return {}
    meta = {"reject_log_odds": repr(float(clf.reject_threshold_)),
            "reject_label": json.dumps(_plain(label)),
            "rejection": "an input is out of scope (reject_label) when log(p / q) is under "
                         "reject_log_odds, p its top probability and q the sum of its other "
                         "probabilities (not 1 - p, which rounds to 0)"}
    state = getattr(clf, "reject_novelty_", None)
    if state is not None:      # sentences: the unseen words' surprise is added first
        from ..core import Embedding
        from ..core.stack import leaves
        meta["trained_columns"] = str(next(layer.n_trained for layer in leaves(clf.network_.layers)
                                           if isinstance(layer, Embedding)))
        stated = novelty_json(state)
        meta["reject_novelty"] = json.dumps({"reference": stated["reference"],
                                             "class_words": stated["words"]})
        meta["rejection"] += (
            f" once {NOVELTY_WEIGHT} * (log(r1) + log(r2)) is added to log(p / q). For a "
            "sentence of tokens t (-1, padding, left out) whose top class is c, with T = "
            "trained_columns: f1 is the share of its tokens with t = 0 or t >= T, f2 the share "
            "of those or of tokens with c * T + t not in reject_novelty's class_words; ri = 1 "
            "where fi = 0, else (1 + the number of values of reject_novelty's reference[i - 1] "
            "at least fi) / (1 + their number)")
    code = oos_code(clf)
    if code is not None:
        meta["oos_class"] = str(code)
        meta["rejection"] += " or its label is oos_class"
    return meta


def _plain(label):
    """A class label as JSON takes it."""
    return label.item() if isinstance(label, np.generic) else label


def check_output_path(path):
    """A one-line ``ExportError`` unless a file can be written at ``path`` (as for a
    model file: not a folder, in a folder that exists and is writable)."""
    from ..persist import check_writable
    try:
        check_writable(path)
    except ValueError as exc:
        raise ExportError(str(exc)) from None


def _write(proto, path):
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(proto.SerializeToString())
    os.replace(tmp, path)
