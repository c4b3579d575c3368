"""adapters: scikit-learn transformers that turn raw data into grids ``(n, c, h, w)``.

Each adapter is independent of the CNN core (``gridnet``) and the core never imports
an adapter.
"""
from .audio import AudioAdapter, AudioError
from .image import ImageAdapter
from .tabular import TabularAdapter
from .text import OneHotGrid, TextAdapter

__all__ = ["AudioAdapter", "AudioError", "ImageAdapter", "TabularAdapter", "TextAdapter",
           "OneHotGrid"]
