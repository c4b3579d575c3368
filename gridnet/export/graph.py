"""A small builder of ONNX graphs: fresh tensor names, constants, nodes.

The exporter's other modules say what each layer or front-end step computes; this one
only keeps the lists that :func:`onnx.helper.make_graph` takes.
"""
from __future__ import annotations

import numpy as np

__all__ = ["GraphBuilder", "OPSET"]

#: the ONNX operator set the exported graphs use (ReduceMax and friends take ``axes`` as
#: an attribute up to 17; onnxruntime has run opset 17 since 1.13)
OPSET = 17


class GraphBuilder:
    """Collects the nodes and constants of one ONNX graph.

    ``op(type, inputs, **attributes) -> output name`` adds a node with one output;
    ``const(array) -> name`` adds an initializer (float64 arrays become float32 unless
    ``dtype`` says otherwise); a large array equal to one already added is that one (an
    ensemble's networks share their fixed word vectors).
    """

    #: arrays of at least this many entries are looked up among the ones already added
    SHARED_SIZE = 1024

    def __init__(self):
        from onnx import helper
        self._helper = helper
        self.nodes, self.initializers = [], []
        self._count = 0
        self._large = []            # (array, name) of the large constants added

    def name(self, hint):
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, hint="c", dtype=None):
        from onnx import numpy_helper
        arr = np.asarray(value)
        if dtype is not None:
            arr = arr.astype(dtype)
        elif arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        large = arr.size >= self.SHARED_SIZE
        if large:
            twin = next((n for a, n in self._large if a.dtype == arr.dtype and a.shape == arr.shape
                         and np.array_equal(a, arr)), None)
            if twin is not None:
                return twin
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(arr.copy(order="C"), name))
        if large:
            self._large.append((arr, name))
        return name

    def int64(self, values, hint="i"):
        return self.const(np.asarray(values, dtype=np.int64), hint)

    def op(self, op_type, inputs, hint=None, **attrs):
        name = self.name(hint or op_type.lower())
        self.nodes.append(self._helper.make_node(op_type, list(inputs), [name], **attrs))
        return name

    def rename(self, name, new):
        """Give tensor ``name`` the graph-level name ``new`` (an Identity node)."""
        self.nodes.append(self._helper.make_node("Identity", [name], [new]))
        return new
