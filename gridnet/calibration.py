"""Calibrated probabilities: temperature scaling fitted on held-out data, and the
top-label calibration error with its reliability curve.

A network trained to a low loss is often overconfident: its top probability says 0.99
where it is right 0.95 of the time. Temperature scaling (Guo et al., 2017) divides the
logits by one number ``T`` chosen to minimise the negative log-likelihood of held-out
samples; the order of the logits, and so every prediction, stays the same.
"""
from __future__ import annotations

import numpy as np

__all__ = ["fit_temperature", "calibration_error", "reliability_curve", "CALIBRATIONS",
           "N_BINS"]

#: the classifier's ``calibration`` settings
CALIBRATIONS = ("temperature", None)
#: bins of the top probability for the calibration error and the reliability diagram
N_BINS = 15
#: the range searched for the temperature (its logarithm is searched, bounded)
_LOG_T = (np.log(0.05), np.log(20.0))


def fit_temperature(logits, codes, sample_weight=None):
    """The temperature ``T`` that minimises the (weighted) mean negative log-likelihood
    of ``softmax(logits / T)`` for the true class indices ``codes`` (n,); logits
    ``(n, k)``. In ``[0.05, 20]``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(2000, 3)) * 4            # confident logits ...
    >>> codes = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in z / 2])
    >>> round(fit_temperature(z, codes), 1)           # ... of labels drawn at T = 2
    2.0
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax
    z = np.asarray(logits, dtype=np.float64)
    codes = np.asarray(codes)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)

    def nll(log_t):
        ll = log_softmax(z / np.exp(log_t), axis=1)[np.arange(len(codes)), codes]
        return -float(np.average(ll, weights=w))

    result = minimize_scalar(nll, bounds=_LOG_T, method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def reliability_curve(codes, proba, n_bins=N_BINS):
    """Top-label reliability: the samples binned by their top probability into
    ``n_bins`` equal-width bins of (0, 1] -> (mean top probability, accuracy, count),
    each ``(n_bins,)`` (NaN for an empty bin)."""
    proba = np.asarray(proba, dtype=np.float64)
    top = proba.max(axis=1)
    hit = proba.argmax(axis=1) == np.asarray(codes)
    which = np.clip(np.ceil(top * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, weights=top, minlength=n_bins) / count
        accuracy = np.bincount(which, weights=hit, minlength=n_bins) / count
    return confidence, accuracy, count


def calibration_error(codes, proba, n_bins=N_BINS):
    """Expected calibration error of the top label: the mean, over bins of the top
    probability weighted by their share of samples, of |accuracy - mean top
    probability|. ``codes`` (n,): the true class indices (columns of ``proba`` (n, k)).

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    >>> round(calibration_error([0, 1, 0, 0], proba), 4)   # 0.9: right half the time
    0.4
    """
    confidence, accuracy, count = reliability_curve(codes, proba, n_bins)
    seen = count > 0
    return float(np.sum(count[seen] * np.abs(accuracy[seen] - confidence[seen])) / count.sum())
