"""adapters: scikit-learn transformers that turn raw data into grids ``(n, c, h, w)``.

Each adapter is independent of the CNN core (``gridnet``) and the core never imports
an adapter. Each writes and reads its own fitted state as plain JSON
(``adapter.to_state()``, :func:`from_state`).
"""
from .audio import AudioAdapter, AudioError
from .image import ImageAdapter
from .onehot import OneHotGrid
from .tabular import TabularAdapter, similarity_order
from .text import TextAdapter

__all__ = ["AudioAdapter", "AudioError", "ImageAdapter", "TabularAdapter", "TextAdapter",
           "OneHotGrid", "from_state", "similarity_order"]

_CLASSES = {cls.__name__: cls for cls in (AudioAdapter, ImageAdapter, TabularAdapter, TextAdapter)}
_CLASSES["TableEncoder"] = TabularAdapter     # what gridnet 0.1's command line saved


def from_state(state):
    """The fitted adapter described by ``state`` (from ``adapter.to_state()``)."""
    if not isinstance(state, dict) or state.get("class") not in _CLASSES:
        name = state.get("class") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"unknown adapter {name!r}; expected one of {sorted(_CLASSES)}")
    return _CLASSES[state["class"]].from_state(state)
