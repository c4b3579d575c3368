"""The CNN engine: layers, networks, losses and optimizers on numpy (and scipy), with a
few inner loops compiled by numba (:mod:`gridnet.core.kernels`, each with a numpy twin).

Nothing here imports scikit-learn or an adapter; :mod:`gridnet.estimator` wraps the
engine as a scikit-learn classifier.
"""
from .conv import Conv2D
from .bag import NgramBag, NgramLinear
from .embedding import Embedding
from .fused import ConvMax, ConvPool
from .layers import Dense, Dropout, Flatten, GlobalMaxPool, Layer, MaxPool2D, ReLU, RowCenter
from .onehot import ONEHOT_CONTRACT, is_onehot, onehot_contract_gaps
from .losses import SoftmaxCrossEntropy, softmax
from .network import Branches, Network, layer_from_config
from .optimizers import SGD, Adam, make_optimizer

__all__ = ["Layer", "Conv2D", "Embedding", "NgramBag", "NgramLinear", "ConvPool", "ConvMax", "ReLU", "MaxPool2D", "GlobalMaxPool", "RowCenter", "Flatten",
           "Dense", "Dropout", "Branches", "Network", "layer_from_config", "is_onehot", "ONEHOT_CONTRACT", "onehot_contract_gaps",
           "SoftmaxCrossEntropy", "softmax", "SGD", "Adam", "make_optimizer"]
