"""The core's layers as ONNX nodes: what each layer computes in inference, written
with the operators of :data:`~gridnet.export.graph.OPSET`.

A tensor flows through the export as ``(name, kind)``: ``kind`` "grid" for a float32
``(n, c, h, w)`` or ``(n, d)`` array, "tokens" for a one-hot word grid given by its
indices, int64 ``(n, positions)`` with -1 for padding (:class:`adapters.OneHotGrid`'s
``indices``). A layer that reads one-hot grids as they are (an embedding convolution,
:class:`~gridnet.core.Embedding`, :class:`~gridnet.core.NgramBag`) takes the indices;
any other first gets them made dense, as the core does.
"""
from __future__ import annotations

import numpy as np

from ..core import (Branches, Conv2D, Dense, Dropout, Embedding, Flatten, GlobalMaxPool,
                    MaxPool2D, NgramBag, NgramLinear, ReLU, RowCenter)
from ..core.bag import PAIR_HASH
from ..core.fused import ConvMax, ConvPool

__all__ = ["export_layers", "ExportError"]


class ExportError(ValueError):
    """A network or model the exporter cannot write; the message names the part."""


def export_layers(g, layers, x, kind):
    """Add ``layers`` (built, in order) to graph ``g`` on input ``(x, kind)``; return the
    output ``(name, kind)``."""
    for i, layer in enumerate(layers):
        try:
            x, kind = _export(g, layer, x, kind)
        except ExportError as exc:
            raise ExportError(f"layer {i}: {exc}") from None
    return x, kind


def _reads_tokens(layer):
    if isinstance(layer, (Embedding, NgramBag, NgramLinear)):
        return True
    return isinstance(layer, Conv2D) and layer.accepts_onehot()


def _densify(g, x, width):
    """Token indices (n, h) -> the one-hot grid (n, 1, h, width) float32."""
    idx = g.op("Where", [g.op("Less", [x, g.int64(0)]), g.int64(width), x])
    hot = g.op("OneHot", [idx, g.int64([width + 1]), g.const(np.array([0, 1], np.float32))])
    hot = g.op("Slice", [hot, g.int64([0]), g.int64([width]), g.int64([2])])
    return g.op("Unsqueeze", [hot, g.int64([1])])


def _export(g, layer, x, kind):
    if kind == "tokens" and not _reads_tokens(layer):
        if not isinstance(layer, (Branches, Dropout)):
            x, kind = _densify(g, x, layer.in_shape[2]), "grid"
    if isinstance(layer, (ConvPool, ConvMax)):
        return export_layers(g, [layer.conv, layer.pool], x, kind)
    handler = _HANDLERS.get(type(layer))
    if handler is None:
        raise ExportError(f"the ONNX exporter does not know {type(layer).__name__} layers "
                          f"(it knows {sorted(t.__name__ for t in _HANDLERS)})")
    return handler(g, layer, x, kind)


def _relu(g, x, activation):
    return g.op("Relu", [x]) if activation == "relu" else x


def _conv(g, conv, x, kind):
    f, ho, _ = conv.out_shape
    W = conv.weights()                       # divided by the feature's size when normalized
    pt, pb, pl, pr = (int(p) for p in conv.pads)
    if kind == "tokens":
        return _conv_tokens(g, conv, x, W, f, ho, pt, pb), "grid"
    c, kh, kw = conv.in_shape[0], *conv.kernel_size
    y = g.op("Conv", [x, g.const(W.reshape(f, c, kh, kw)), g.const(conv.params["b"])],
             kernel_shape=[kh, kw], strides=list(conv.stride), pads=[pt, pl, pb, pr])
    return _relu(g, y, conv.activation), "grid"


def _conv_tokens(g, conv, x, W, f, ho, pt, pb):
    """A convolution spanning a one-hot grid's width: at output row ``t``, the sum over
    the kernel's rows ``i`` of row ``i`` of the weights at the hot column of input row
    ``t * stride + i`` (padding rows, -1, add nothing; the bias is added everywhere)."""
    kh, sh = conv.kernel_size[0], conv.stride[0]
    w = conv.in_shape[2]
    idx = g.op("Where", [g.op("Less", [x, g.int64(0)]), g.int64(w), x])
    if pt or pb:
        idx = g.op("Pad", [idx, g.int64([0, pt, 0, pb]), g.int64(w)])
    W3 = W.reshape(f, kh, w)
    total = None
    for i in range(kh):
        rows = g.op("Slice", [idx, g.int64([i]), g.int64([i + sh * (ho - 1) + 1]), g.int64([1]),
                              g.int64([sh])])
        table = np.vstack([W3[:, i, :].T, np.zeros((1, f), W.dtype)])
        part = g.op("Gather", [g.const(table), rows], axis=0)        # (n, ho, f)
        total = part if total is None else g.op("Add", [total, part])
    total = _relu(g, g.op("Add", [total, g.const(conv.params["b"])]), conv.activation)
    return g.op("Unsqueeze", [g.op("Transpose", [total], perm=[0, 2, 1]), g.int64([3])])


def _embedding(g, layer, x, kind):
    """Token indices: the trained vector of each word's column (columns past the trained
    ones take column 0's) beside its fixed vector (kept float16, as the layer keeps it),
    zeros for padding. A dense grid: its product with the whole table."""
    if kind != "tokens":
        table = layer.lookup_table(np.float32)
        out = g.op("MatMul", [g.op("Squeeze", [x, g.int64([1])]), g.const(table)])
        return g.op("Unsqueeze", [g.op("Transpose", [out], perm=[0, 2, 1]), g.int64([3])]), "grid"
    pad = g.op("Less", [x, g.int64(0)])
    idx = g.op("Where", [pad, g.int64(0), x])
    cols = g.op("Where", [g.op("GreaterOrEqual", [idx, g.int64(layer.n_trained)]), g.int64(0), idx])
    out = g.op("Gather", [g.const(np.ascontiguousarray(layer.params["W"].T)), cols], axis=0)
    if layer.fixed_dim:
        fixed = g.op("Gather", [g.const(layer.buffers["fixed"]), idx], axis=0)
        out = g.op("Concat", [out, g.op("Cast", [fixed], to=1)], axis=2)          # (n, h, D)
    keep = g.op("Cast", [g.op("Not", [pad])], to=1)
    out = g.op("Mul", [out, g.op("Unsqueeze", [keep, g.int64([2])])])
    return g.op("Unsqueeze", [g.op("Transpose", [out], perm=[0, 2, 1]), g.int64([3])]), "grid"


def _words(g, layer, x, kind):
    """(word index of each position (n, h) int64, the unknown word 0 for words from
    ``trained`` on and for padding; whether the position holds a word (n, h))."""
    trained = layer.in_shape[2] if layer.trained is None else layer.trained
    if kind != "tokens":            # a dense 0/1 grid: each row's hot column, or -1
        rows = g.op("Squeeze", [x, g.int64([1])])
        hot = g.op("Greater", [g.op("ReduceMax", [rows], axes=[2], keepdims=0), g.const(np.float32(0))])
        x = g.op("Where", [hot, g.op("ArgMax", [rows], axis=2, keepdims=0), g.int64(-1)])
    keep = g.op("GreaterOrEqual", [x, g.int64(0)])
    words = g.op("Where", [g.op("GreaterOrEqual", [x, g.int64(trained)]), g.int64(0), x])
    return g.op("Where", [keep, words, g.int64(0)]), keep


def _pairs(g, words, keep, h):
    """The hashed ids of neighbouring word pairs (n, h - 1), before the modulo, as
    :func:`gridnet.core.bag.ngram_ids` makes them, and where both are words."""
    def cut(t, a, b):
        return g.op("Slice", [t, g.int64([a]), g.int64([b]), g.int64([1])])
    a, b = cut(words, 0, h - 1), cut(words, 1, h)
    both = g.op("And", [cut(keep, 0, h - 1), cut(keep, 1, h)])
    ids = g.op("Add", [g.op("Add", [g.op("Mul", [a, g.int64(PAIR_HASH[0])]),
                                    g.op("Mul", [b, g.int64(PAIR_HASH[1])])]), g.int64(1)])
    return ids, both


def _table_rows(g, columns, ids):
    """(the row of each bucket id through a ``columns`` buffer (buckets,) int32, 0 where
    it has none; whether it has one), as int64 and bool tensors shaped like ``ids``."""
    cols = g.op("Cast", [g.op("Gather", [columns, ids], axis=0)], to=7)
    has = g.op("GreaterOrEqual", [cols, g.int64(0)])
    return g.op("Where", [has, cols, g.int64(0)]), has


def _bag(g, layer, x, kind):
    """The mean of the table rows of the sentence's words and neighbouring word pairs,
    hashed as :func:`gridnet.core.bag.ngram_ids` hashes them, times ``scale``."""
    words, keep = _words(g, layer, x, kind)
    buckets = g.int64(layer.buckets)
    T = g.const(layer.params["T"])

    columns = g.const(layer.buffers["columns"]) if layer.rows is not None else None

    def gathered(ids, mask):
        maskf = g.op("Cast", [mask], to=1)                                    # float32
        ids = g.op("Mod", [ids, buckets])
        held = maskf
        if columns is not None:      # a compact table: a bucket without a row adds 0
            ids, has = _table_rows(g, columns, ids)
            held = g.op("Mul", [maskf, g.op("Cast", [has], to=1)])
        rows = g.op("Mul", [g.op("Gather", [T, ids], axis=0),
                            g.op("Unsqueeze", [held, g.int64([2])])])
        return (g.op("ReduceSum", [rows, g.int64([1])], keepdims=0),
                g.op("ReduceSum", [maskf, g.int64([1])], keepdims=0))

    total, count = gathered(words, keep)
    h = layer.in_shape[1]
    if layer.n >= 2 and h > 1:
        pairs, n_pairs = gathered(*_pairs(g, words, keep, h))
        total, count = g.op("Add", [total, pairs]), g.op("Add", [count, n_pairs])
    weight = g.op("Div", [g.const(np.float32(layer.scale)),
                          g.op("Max", [count, g.const(np.float32(1))])])
    out = g.op("Mul", [total, g.op("Unsqueeze", [weight, g.int64([1])])])
    return g.op("Unsqueeze", [out, g.int64([2, 3])]), "grid"


def _linear(g, layer, x, kind):
    """:class:`~gridnet.core.NgramLinear`: each n-gram occurrence carries ``(1 + log c)
    / c`` times its idf, ``c`` its count in the sentence (equal bucket ids, counted over
    the sentence's n-grams), so that an n-gram's occurrences sum to its TF-IDF entry;
    the sentence's length over n-grams is ``sqrt(sum (1 + log c)^2 idf^2 / c)``."""
    words, keep = _words(g, layer, x, kind)
    ids, mask, h = words, keep, layer.in_shape[1]
    if layer.n >= 2 and h > 1:
        pairs, both = _pairs(g, words, keep, h)
        ids = g.op("Concat", [words, pairs], axis=1)
        mask = g.op("Concat", [keep, both], axis=1)
    ids = g.op("Mod", [ids, g.int64(layer.buckets)])
    cols, has = _table_rows(g, g.const(layer.buffers["columns"]), ids)
    valid = g.op("And", [mask, has])
    validf = g.op("Cast", [valid], to=1)
    same = g.op("Cast", [g.op("Equal", [g.op("Unsqueeze", [cols, g.int64([2])]),
                                        g.op("Unsqueeze", [cols, g.int64([1])])])], to=1)
    count = g.op("ReduceSum", [g.op("Mul", [same, g.op("Unsqueeze", [validf, g.int64([1])])]),
                               g.int64([2])], keepdims=0)
    count = g.op("Max", [count, g.const(np.float32(1))])
    tf = g.op("Add", [g.const(np.float32(1)), g.op("Log", [count])])
    idf = g.op("Gather", [g.const(layer.buffers["idf"].astype(np.float32)), cols], axis=0)
    entry = g.op("Mul", [tf, idf])                              # the n-gram's TF-IDF entry
    share = g.op("Mul", [g.op("Div", [entry, count]), validf])  # one occurrence's part of it
    norm = g.op("Sqrt", [g.op("ReduceSum", [g.op("Mul", [share, entry]), g.int64([1])], keepdims=1)])
    share = g.op("Div", [share, g.op("Max", [norm, g.const(np.float32(1e-12))])])
    rows = g.op("Gather", [g.const(layer.buffers["W"].astype(np.float32)), cols], axis=0)
    z = g.op("ReduceSum", [g.op("Mul", [rows, g.op("Unsqueeze", [share, g.int64([2])])]),
                           g.int64([1])], keepdims=0)
    z = g.op("Add", [z, g.const(layer.buffers["b"].astype(np.float32))])
    return g.op("Mul", [z, g.const(np.float32(layer.scale))]), "grid"


def _branches(g, layer, x, kind):
    outs = [export_layers(g, branch, x, kind)[0] for branch in layer.branches]
    if layer.join == "mean":        # an ensemble: its networks' outputs averaged
        return g.op("Mean", outs), "grid"
    return g.op("Concat", outs, axis=1), "grid"


def _maxpool(g, layer, x, kind):
    pt, pb, pl, pr = (int(p) for p in layer.pads)
    return g.op("MaxPool", [x], kernel_shape=list(layer.window), strides=list(layer.stride),
                pads=[pt, pl, pb, pr]), "grid"


def _global_max(g, layer, x, kind):
    axes = {"height": [2], "width": [3], "both": [2, 3]}[layer.axis]
    return g.op("ReduceMax", [x], axes=axes, keepdims=1), "grid"


def _row_center(g, layer, x, kind):
    centred = g.op("Sub", [x, g.op("ReduceMean", [x], axes=[3], keepdims=1)])
    return (g.op("Concat", [x, centred], axis=1) if layer.keep_input else centred), "grid"


def _dense(g, layer, x, kind):
    y = g.op("Add", [g.op("MatMul", [x, g.const(layer.params["W"])]), g.const(layer.params["b"])])
    return _relu(g, y, layer.activation), "grid"


_HANDLERS = {
    Conv2D: _conv,
    Embedding: _embedding,
    NgramBag: _bag,
    NgramLinear: _linear,
    Branches: _branches,
    MaxPool2D: _maxpool,
    GlobalMaxPool: _global_max,
    Flatten: lambda g, layer, x, kind: (g.op("Flatten", [x], axis=1), "grid"),
    Dense: _dense,
    ReLU: lambda g, layer, x, kind: (g.op("Relu", [x]), "grid"),
    RowCenter: _row_center,
    Dropout: lambda g, layer, x, kind: (x, kind),          # inference: the identity
}
