"""gridnet: one numpy CNN core for data turned into 2-D grids ``(n, c, h, w)``."""
from .layers import (Branches, Conv2D, Dense, Dropout, Flatten, GlobalMaxPool, MaxPool2D,
                     ReLU)
from .estimator import GridNetClassifier
from .locality import LocalityReport, locality_check
from .losses import SoftmaxCrossEntropy, softmax
from .network import Network
from .optimizers import SGD, Adam
from .persist import load

__version__ = "0.1.0"

__all__ = ["GridNetClassifier", "load", "locality_check", "LocalityReport", "Network", "Conv2D", "ReLU", "MaxPool2D", "GlobalMaxPool", "Flatten", "Dense",
           "Dropout", "Branches", "SoftmaxCrossEntropy", "softmax", "SGD", "Adam"]
