"""Checking what GridNetClassifier is given: its parameters, the grids (arrays,
memmaps, one-hot grids), the labels and the sample weights."""
from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d, validate_data

from . import architectures
from .calibration import CALIBRATIONS
from .core import is_onehot
from .core.optimizers import OPTIMIZERS

__all__ = ["prepare_fit", "check_params", "validate_grids", "check_missing_labels", "sample_weights",
           "encode_labels", "check_reject"]


def prepare_fit(est, X, y, classes, partial):
    """What ``fit`` (``partial_fit`` with ``partial``) is given, checked; sets ``classes_``
    and the grid's shape. -> (grid, label codes (n,), whether training starts afresh)."""
    check_params(est)
    if partial:    # partial_fit starts afresh only on its first call
        first = not hasattr(est, "classes_")
    else:          # fit starts afresh unless warm_start continues a fitted network
        first = not (est.warm_start and hasattr(est, "network_"))
    grid = validate_grids(est, X, reset=first)
    if partial:
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            est.classes_ = np.unique(np.asarray(classes))
        _, codes = encode_labels(y, grid.shape[0], est.classes_)
    else:
        classes_, codes = encode_labels(y, grid.shape[0])
        if not first and not np.array_equal(classes_, est.classes_):
            raise ValueError(f"warm_start fit got classes {classes_.tolist()}; the model "
                             f"has {est.classes_.tolist()}")
        est.classes_ = classes_
    return grid, codes, first


def _fraction(v):
    """Whether ``v`` is a number (not a bool) in [0, 1)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and 0.0 <= v < 1.0


def check_params(est):
    """The estimator's parameters, checked before anything is learned."""
    architectures.check_preset(est.preset)
    for name in ("batch_size", "max_epochs", "n_iter_no_change"):
        v = getattr(est, name)
        if name == "n_iter_no_change" and v is None:
            continue
        if not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    if not (isinstance(est.learning_rate, numbers.Real) and est.learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number; got {est.learning_rate!r}")
    t = est.tol
    if not (t is None or (isinstance(t, numbers.Real) and not isinstance(t, bool) and t >= 0)):
        raise ValueError(f"tol must be None or a number >= 0; got {t!r}")
    if not 0.0 < est.validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1); got {est.validation_fraction!r}")
    if not (est.augment is None or est.augment == "auto" or callable(est.augment)):
        raise ValueError(f"augment must be None, 'auto' or a callable (batch, rng) -> batch; "
                         f"got {est.augment!r}")
    m = est.ema_momentum
    if not (m is None or (isinstance(m, str) and m == "auto") or _fraction(m)):
        raise ValueError(f"ema_momentum must be 'auto', None or a number in [0, 1); got {m!r}")
    e = est.label_smoothing
    if not (e is None or _fraction(e)):
        raise ValueError(f"label_smoothing must be None or a number in [0, 1); got {e!r}")
    architectures.ensemble_size(None, est.ensemble_size)      # (raises on a bad value)
    if est.calibration not in CALIBRATIONS:
        raise ValueError(f"calibration must be 'temperature' or None; got {est.calibration!r}")
    check_reject(est.reject)
    r = est.reject_rate
    if not _fraction(r):
        raise ValueError(f"reject_rate must be a number in [0, 1); got {r!r}")
    if est.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be 'adam', 'sgd' or 'nesterov'; got {est.optimizer!r}")


def check_reject(reject):
    """``reject`` is a switch: a string such as "no" must not turn rejection on."""
    if not isinstance(reject, (bool, np.bool_)):
        raise ValueError(f"reject must be True or False; got {reject!r}")


_CHECK_CHUNK = 1 << 16     # samples per chunk when checking a memmap for NaN/inf


def _check_finite_memmap(X):
    """A float memmap, checked chunk by chunk (never read whole)."""
    if X.dtype.kind != "f":
        raise ValueError(f"a memmap X must hold floats; got dtype {X.dtype}")
    if X.shape[0] == 0:
        raise ValueError("X is empty: 0 samples; at least 1 is required")
    for start in range(0, X.shape[0], _CHECK_CHUNK):
        block = np.asarray(X[start:start + _CHECK_CHUNK])
        if not np.isfinite(block).all():
            bad = start + int(np.nonzero(~np.isfinite(block.reshape(len(block), -1)).all(axis=1))[0][0])
            raise ValueError(f"X contains NaN or infinity (first at sample {bad})")
    return X


def _as_4d(grid):
    """(n, f) -> (n, 1, 1, f) strips; (n, h, w) -> (n, 1, h, w); (n, c, h, w) as is."""
    if grid.ndim == 2:
        return grid.reshape(grid.shape[0], 1, 1, grid.shape[1])
    if grid.ndim == 3:
        return grid.reshape(grid.shape[0], 1, *grid.shape[1:])
    if grid.ndim != 4:
        hint = (" Reshape your data: X.reshape(-1, 1) for one feature or "
                "X.reshape(1, -1) for one sample." if grid.ndim == 1 else "")
        raise ValueError(f"X has {grid.ndim} dimension(s) {grid.shape}; expected "
                         f"(n, c, h, w), (n, h, w) or (n, features).{hint}")
    return grid


def validate_grids(est, X, reset):
    """X -> an array (a memmap stays one) or one-hot grid of shape (n, c, h, w); sets
    (``reset``) or checks ``est.grid_shape_`` and ``n_features_in_``."""
    if is_onehot(X):
        grid = X
    elif sp.issparse(X):
        raise TypeError("GridNetClassifier does not take scipy sparse matrices; "
                        "pass a dense array (n, f), (n, h, w) or (n, c, h, w)")
    elif isinstance(X, np.memmap):
        grid = _as_4d(_check_finite_memmap(X))
    else:
        grid = check_array(X, dtype=[np.float32, np.float64], ensure_2d=False,
                           allow_nd=True, input_name="X").astype(np.float32, copy=False)
        if grid.ndim == 2:    # feature names and counts, as scikit-learn does
            validate_data(est, X if hasattr(X, "columns") else grid, reset=reset,
                          skip_check_array=True)
        grid = _as_4d(grid)
    shape = tuple(grid.shape)
    if shape[0] == 0:
        raise ValueError(f"X is empty: shape {shape}; at least 1 sample is required")
    if 0 in shape[1:]:
        raise ValueError(f"X has an empty axis: shape {shape}")
    cell = tuple(int(s) for s in shape[1:])
    if reset:
        est.grid_shape_, est.n_features_in_ = cell, int(np.prod(cell))
    elif cell != est.grid_shape_:
        name, nf = type(est).__name__, int(np.prod(cell))
        if nf != est.n_features_in_:
            raise ValueError(f"X has {nf} features, but {name} is expecting {est.n_features_in_} "
                             f"features as input (grids of shape {est.grid_shape_}; got {cell})")
        raise ValueError(f"X has grids of shape {cell}, but {name} was fitted on grids of "
                         f"shape {est.grid_shape_}")
    return grid


def check_missing_labels(y, what="y"):
    """An object array of labels holding None or NaN: a ``ValueError`` naming the
    samples (scikit-learn's own checks would fail on sorting them)."""
    y = np.asarray(y)
    if y.dtype.kind != "O":
        return
    miss = [i for i, v in enumerate(y)
            if v is None or (isinstance(v, (float, np.floating)) and np.isnan(v))]
    if miss:
        shown = ", ".join(map(str, miss[:10])) + (", ..." if len(miss) > 10 else "")
        raise ValueError(f"{what} has {len(miss)} missing labels (None or NaN), at samples "
                         f"{shown}; drop those samples or give them a label")


def sample_weights(sample_weight, grid):
    """``sample_weight`` checked as scikit-learn checks it (a number is every sample's
    weight): float32 (n,), non-negative, finite, not all zero; None stays None (every
    sample counts once)."""
    if sample_weight is None:
        return None
    n = grid.shape[0]
    if isinstance(sample_weight, numbers.Number):
        w = np.full(n, float(sample_weight))
    else:
        w = check_array(sample_weight, ensure_2d=False, dtype=np.float64, copy=True,
                        input_name="sample_weight")
        if w.shape != (n,):
            raise ValueError(f"sample_weight.shape == {w.shape}, expected {(n,)}!")
    bad = np.nonzero(~(w >= 0))[0]           # negative or NaN
    if len(bad):
        raise ValueError(f"sample_weight must be non-negative; sample {bad[0]} has weight "
                         f"{float(w[bad[0]])} ({len(bad)} such)")
    if not w.any():
        raise ValueError("sample_weight is zero for every sample; at least one must be positive")
    return w.astype(np.float32)


def encode_labels(y, n, classes=None):
    """Labels ``y`` (n,) -> (classes, codes (n,) indices into classes). With ``classes``
    given, every label must be one of them."""
    if y is None:
        raise ValueError("GridNetClassifier requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per sample); got shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"X has {n} samples but y has {len(y)} labels; they must match")
    check_missing_labels(y)
    check_classification_targets(y)
    if classes is None:
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y has only 1 class ({classes[0].item()!r}); a classifier needs "
                             "samples of at least 2 classes")
        return classes, codes.astype(np.intp)
    unknown = np.setdiff1d(y, classes)
    if len(unknown):
        raise ValueError(f"y has labels {unknown.tolist()[:5]} that are not in classes "
                         f"{classes.tolist()}")
    return classes, np.searchsorted(classes, y).astype(np.intp)
