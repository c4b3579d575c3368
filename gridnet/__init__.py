"""gridnet: one numpy CNN core for data turned into 2-D grids ``(n, c, h, w)``.

The engine (:mod:`gridnet.core`: layers, networks, losses, optimizers) needs numpy and
scipy, and numba for a few compiled loops (with numpy twins), and is imported eagerly. The scikit-learn side (``GridNetClassifier``,
``save``, ``load``, ``locality_check``, ``LocalityReport``) is imported on first use, so that
``import gridnet`` works, and stays fast, without scikit-learn.
"""
from importlib import import_module

from .core import (SGD, Adam, Branches, Conv2D, Dense, Dropout, Flatten, GlobalMaxPool,
                   MaxPool2D, Network, ReLU, RowCenter, SoftmaxCrossEntropy, softmax)

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {"GridNetClassifier": ".estimator", "load": ".estimator", "save": ".model_file",
         "locality_check": ".locality", "LocalityReport": ".locality",
         "plot_history": ".plotting", "plot_confusion_matrix": ".plotting",
         "predict_windows": ".timeline", "to_onnx": ".export"}

__all__ = ["GridNetClassifier", "load", "save", "locality_check", "LocalityReport", "plot_history",
           "plot_confusion_matrix", "predict_windows", "to_onnx", "Network", "Conv2D",
           "ReLU", "MaxPool2D", "GlobalMaxPool", "Flatten", "Dense", "Dropout", "Branches", "RowCenter",
           "SoftmaxCrossEntropy", "softmax", "SGD", "Adam"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
