"""How an adapter writes and reads its own fitted state: plain JSON, no pickle.

:meth:`StateMixin.to_state` gives ``{"class", "params", "fitted"}``: the constructor
parameters and the fitted attributes (names ending in ``_``), numpy arrays written as
``{"__array__": nested lists, "dtype": ...}``. :meth:`StateMixin.from_state` makes the
fitted adapter again. A model file keeps this document (see :mod:`gridnet.persist`).
"""
from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["StateMixin", "encode_value", "decode_value"]


def encode_value(v):
    """A fitted value -> JSON: arrays as ``{"__array__", "dtype"}``, tuples as lists,
    numpy scalars as Python numbers."""
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "O":
            return {"__array__": [encode_value(x) for x in v.tolist()], "dtype": "object"}
        return {"__array__": v.tolist(), "dtype": str(v.dtype)}
    if isinstance(v, (tuple, list)):
        return [encode_value(x) for x in v]
    if isinstance(v, dict):
        return {k: encode_value(x) for k, x in v.items()}
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    return v


def decode_value(v):
    if isinstance(v, dict) and "__array__" in v:
        return np.array(v["__array__"], dtype=v["dtype"])
    return v


class StateMixin:
    """``to_state`` / ``from_state`` for a scikit-learn transformer whose fitted
    attributes are plain data (numbers, strings, lists, dicts, arrays)."""

    #: parameters that serve fitting only, written as these values instead
    _FIT_ONLY_PARAMS = {}
    #: fitted attributes that serve fitting only and are not written
    _FIT_ONLY_ATTRIBUTES = ()
    #: fitted attributes read back as tuples
    _TUPLE_ATTRIBUTES = ("grid_shape_",)

    def to_state(self):
        """The fitted adapter as a JSON-able dict ``{"class", "params", "fitted"}``."""
        check_is_fitted(self)
        fitted = {k: encode_value(v) for k, v in vars(self).items()
                  if k.endswith("_") and not k.startswith("_") and k not in self._FIT_ONLY_ATTRIBUTES}
        params = {k: encode_value(v) for k, v in self.get_params(deep=False).items()}
        return {"class": type(self).__name__, "params": {**params, **self._FIT_ONLY_PARAMS},
                "fitted": fitted}

    @classmethod
    def from_state(cls, state):
        """The fitted adapter that :meth:`to_state` wrote."""
        if state.get("class") != cls.__name__:
            raise ValueError(f"the state is of a {state.get('class')!r}, not a {cls.__name__}")
        params, fitted = state.get("params"), state.get("fitted")
        if not isinstance(params, dict) or not isinstance(fitted, dict):
            raise ValueError(f"the {cls.__name__} state needs 'params' and 'fitted' mappings")
        unknown = sorted(set(params) - set(cls().get_params(deep=False)))
        if unknown:
            raise ValueError(f"the {cls.__name__} state has unknown parameters {unknown}")
        adapter = cls(**params)
        for k, v in fitted.items():
            if not (isinstance(k, str) and k.endswith("_")):
                raise ValueError(f"the {cls.__name__} state has a fitted value named {k!r}")
            v = decode_value(v)
            setattr(adapter, k, tuple(v) if k in cls._TUPLE_ATTRIBUTES else v)
        return adapter
