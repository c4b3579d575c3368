"""Softmax cross-entropy, numerically stable, with optional class weights and label
smoothing."""
from __future__ import annotations

import numpy as np

__all__ = ["softmax", "SoftmaxCrossEntropy"]


def softmax(logits):
    """logits: (n, k) -> probabilities (n, k), computed stably (max subtracted)."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels.

    With ``class_weight`` (an array ``(k,)``) each sample counts with the weight of its
    class and the mean is taken over the weights, as PyTorch's ``CrossEntropyLoss`` does;
    a ``sample_weight`` ``(n,)`` multiplies it. So a weight of 2 counts as the sample
    twice in the batch, and a weight of 0 takes the sample out (a batch whose weights
    are all 0 has loss 0 and gradient 0).

    A label of -1 marks an outlier (an input of no class, Hendrycks et al.'s outlier
    exposure): its target is the uniform distribution over the ``k`` classes, its loss
    ``logsumexp(z) - mean(z)``, its class weight 1.

    With ``label_smoothing`` ``e`` in [0, 1) a labelled sample's target is ``1 - e`` on
    its class plus ``e / k`` on every class (Szegedy et al. 2016; PyTorch's and Keras's
    ``label_smoothing``): its loss ``(1 - e) nll + e (logsumexp(z) - mean(z))``.

    Examples
    --------
    >>> import numpy as np
    >>> loss, grad = SoftmaxCrossEntropy()(np.zeros((2, 4), np.float32), np.array([0, 3]))
    >>> round(float(loss), 4)   # log(4)
    1.3863
    >>> loss, grad = SoftmaxCrossEntropy()(np.zeros((1, 4), np.float32), np.array([-1]))
    >>> round(float(loss), 4), float(abs(grad).max())   # uniform already: log(4), its least
    (1.3863, 0.0)
    >>> loss, grad = SoftmaxCrossEntropy(label_smoothing=0.1)(np.array([[9.0, 0.0]]), np.array([0]))
    >>> np.round(grad, 3)        # softmax - target: target 0.95 / 0.05, not 1 / 0
    array([[ 0.05, -0.05]])
    """

    def __init__(self, class_weight=None, label_smoothing=0.0):
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1); got {label_smoothing!r}")
        self.class_weight = class_weight
        self.label_smoothing = float(label_smoothing)

    def __call__(self, logits, y, sample_weight=None):
        """logits: (n, k), y: (n,) ints (-1: an outlier) -> (loss, dL/dlogits (n, k))."""
        n, k = logits.shape
        z = logits - logits.max(axis=1, keepdims=True)
        logsum = np.log(np.exp(z).sum(axis=1))
        rows = np.arange(n)
        y = np.asarray(y)
        outlier = y < 0
        e = self.label_smoothing
        if outlier.any():        # -1 must not index the last class
            y = np.where(outlier, 0, y)
            nll = logsum - np.where(outlier, z.mean(axis=1), z[rows, y])
        else:
            outlier = None
            nll = logsum - z[rows, y]
        if e:                    # an outlier's term is its uniform loss either way
            nll = (1 - e) * nll + e * (logsum - z.mean(axis=1))
        if self.class_weight is None and sample_weight is None and n > 0:
            # every weight 1: the same numbers as below (w * nll is nll, the weights
            # sum to n exactly, w / total is 1 / n), with fewer numpy calls
            total = logits.dtype.type(n)
            loss = float(nll.sum() / total)
            scale = logits.dtype.type(1) / total
        else:
            w = np.ones(n, dtype=logits.dtype)
            if self.class_weight is not None:
                w = np.asarray(self.class_weight, dtype=logits.dtype)[y]
                if outlier is not None:
                    w[outlier] = 1
            if sample_weight is not None:
                w = w * np.asarray(sample_weight, dtype=logits.dtype)
            total = w.sum()
            if not total > 0:           # every sample weighted 0: nothing to learn from
                return 0.0, np.zeros_like(logits)
            loss = float((w * nll).sum() / total)
            scale = (w / total)[:, None]
        grad = np.exp(z - logsum[:, None])
        hit = logits.dtype.type(1 - e)
        if e:
            grad -= logits.dtype.type(e / k)
        if outlier is None:
            grad[rows, y] -= hit
        else:
            grad[rows[~outlier], y[~outlier]] -= hit
            grad[outlier] -= hit / k
        grad *= scale
        return loss, grad.astype(logits.dtype, copy=False)
