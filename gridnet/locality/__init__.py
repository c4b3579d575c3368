"""The locality check: does the order of the columns carry information a CNN can use?

Rule of thumb: if your data is just as useful after swapping any of its columns with
each other, a CNN will not help. :func:`locality_check` measures it before training,
with two permutation tests:

- a model-free statistic (no labels): the mean correlation of neighbouring columns,
  across the samples, against its distribution when the columns are put in random
  orders (a Moran's-I-style statistic along the axis);
- a model-based test (labels): the cross-validated score of a small CNN (convolutions
  and pooling, then a dense layer that knows where each feature was found) on the data
  as given against the same CNN on the data with its columns shuffled (one permutation
  applied to every sample, several permutations), and beside it the best of a few
  models that ignore column order (logistic regression, gradient boosting), on the
  same folds. A probe that scores far below them cannot tell what a CNN could do with
  the order: the verdict is then "inconclusive", never "not local".

Both p-values are exact permutation p-values, ``(1 + #{null >= observed}) / (1 + B)``:
when the given order is no better than a random one (as with data whose columns were
put in a random order), the test says "local" at most ``alpha`` of the time.
"""
from __future__ import annotations

import time

import numpy as np

from .model_based import model_test
from .report import LocalityReport, verdict
from .statistic import neighbour_statistic, standardize, statistic

__all__ = ["locality_check", "LocalityReport", "neighbour_statistic"]

_AXES = ("columns", "width", "height", "both")


def locality_check(X, y=None, *, axis="columns", method="auto", n_permutations=None, cv=2,
                   n_repeats=1, estimator=None, alpha=0.05, min_gain=0.01, max_samples=5000,
                   order=None, time_budget=30.0, random_state=None, n_jobs=None, verbose=False):
    """Test whether the column order of ``X`` carries information a CNN can use.

    Parameters
    ----------
    X : array (n, f) table or (n, c, h, w) / (n, h, w) grids
    y : array (n,), optional. Labels; enable the model-based test.
    axis : {"columns", "width", "height", "both"}
        The axis whose order is tested ("columns" = the width of grids, the columns of
        a table); "both" permutes rows and columns.
    method : {"auto", "statistic", "model"}
        "auto": the statistic, plus the model-based test when ``y`` is given.
    n_permutations : int, optional
        Random orders in the null distribution of the model-based test (each is a
        cross-validation). None (the default): 19, then more by a sequential rule
        within ``time_budget`` (below). The statistic is cheap and always uses at least
        999. The model-based p-value can decide the verdict alone only from 39
        orders (it must reach alpha / 2).
    cv : int, default 2 ; n_repeats : int, default 1
        The model-based score is the mean over ``n_repeats`` repetitions of stratified
        ``cv``-fold cross-validation (the same folds for every column order). Two folds
        test every sample once, as three do, for half the training.
    estimator : classifier, optional. The model used (default: a small gridnet CNN,
        :func:`~gridnet.locality.model_based.default_model`).
    alpha : float, default 0.05. The false-positive rate of a "local" verdict.
    min_gain : float, default 0.01
        The smallest gain in cross-validated accuracy from the order that counts: with
        labels, "local" needs the order to be significant (statistic or model-based
        p-value at most ``alpha / 2``) and to gain at least this much (the margin of
        benchmarks/locality_panel.py's reference truth; significance, not this margin,
        keeps the false-positive rate at ``alpha``).
    max_samples : int, default 5000. Rows used by the model-based test (random).
    order : (f,) permutation of the columns, optional
        Test this layout instead of the columns as given (``X[..., order]``), for
        instance a similarity ordering (:func:`adapters.similarity_order`; the CLI's
        ``--reorder``). Such an order is chosen to put alike columns side by side, so
        the model-free statistic is reported but cannot count as evidence: the
        verdict rests on the model-based test alone (labels needed), at ``alpha``.
    time_budget : float, default 30
        Seconds the model-based test may spend on orders beyond the first 19, when
        ``n_permutations`` is None and the verdict depends on its p-value (a gain of at
        least ``min_gain`` that the statistic does not already make significant). It adds
        orders until 10 shuffled orders have scored at least the given one (Besag and
        Clifford's sequential p-value), 999 orders, or the budget's end, and decides from
        what it measured; it never stops because a result looks significant, so the
        false-positive rate stays at ``alpha``. How many orders fit in the budget
        depends on the machine: pass ``n_permutations`` for a run that does not. 0: no
        orders added.
    random_state, n_jobs : reproducibility; joblib parallelism over permutations
        (``joblib.parallel_config(backend="dask")`` runs them on a Dask cluster).
    verbose : bool, default False. A tqdm progress bar over the column orders.

    Returns
    -------
    LocalityReport

    Examples
    --------
    >>> import numpy as np
    >>> from gridnet import locality_check
    >>> rng = np.random.default_rng(0)
    >>> smooth = np.cumsum(rng.standard_normal((500, 30)), axis=1)   # random walks
    >>> report = locality_check(smooth, random_state=0)
    >>> report.verdict, report.statistic["p_value"] < 0.01
    ('local', True)
    """
    t0 = time.perf_counter()
    if not (isinstance(time_budget, (int, float, np.integer, np.floating))
            and not isinstance(time_budget, bool) and time_budget >= 0):
        raise ValueError(f"time_budget must be a number of seconds >= 0; got {time_budget!r}")
    if axis not in _AXES:
        raise ValueError(f"axis must be one of {_AXES}; got {axis!r}")
    if method not in ("auto", "statistic", "model"):
        raise ValueError(f"method must be 'auto', 'statistic' or 'model'; got {method!r}")
    if method == "model" and y is None:
        raise ValueError("method='model' needs labels y")
    X = np.asarray(X)
    if order is not None:
        X = _reordered(X, order, axis, y)
    if X.dtype.kind not in "fiub":
        raise ValueError(f"X must be numeric; got dtype {X.dtype} (encode categorical columns first)")
    if X.ndim == 2 and X.shape[1] < 2:
        raise ValueError(f"X has {X.shape[1]} column(s); the locality check needs at least 2 (3 for the statistic)")
    if not np.isfinite(X).all():
        rows = np.nonzero(~np.isfinite(X.reshape(len(X), -1)).all(axis=1))[0]
        raise ValueError(f"X contains NaN or infinite values (first in row {int(rows[0])})")
    if len(X) < 4:
        raise ValueError(f"X has {len(X)} samples; the locality check needs more")
    rng = np.random.default_rng(random_state if not isinstance(random_state, np.random.RandomState)
                                else random_state.randint(2**31))
    stat = statistic(X, axis, max(999, int(n_permutations or 0)), rng)
    model = None
    if y is not None and method in ("auto", "model"):
        from sklearn.utils.multiclass import check_classification_targets

        from ..validation import check_missing_labels
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)} labels")
        check_missing_labels(y)
        check_classification_targets(y)
        if X.ndim == 2:   # standardised columns, rare extreme values clipped
            G = np.clip(standardize(X) * np.sqrt(len(X)), -3, 3)
            G = G.astype(np.float32)[:, None, None, :]
        else:             # grids: one shift and scale for every cell, the layout kept
            G = X.astype(np.float64)
            G = ((G - G.mean()) / (G.std() if G.std() > 0 else 1.0)).astype(np.float32)
            G = G[:, None] if X.ndim == 3 else G
        if len(G) > max_samples:
            keep = np.sort(rng.choice(len(G), max_samples, replace=False))
            G, y = G[keep], y[keep]
        flat = X.reshape(len(X), -1)
        if len(flat) > len(G):
            flat = flat[keep]
        chosen = order is not None

        def needed(m):      # does the verdict still turn on the model-based p-value?
            return m["gain"] >= min_gain and (chosen or stat["p_value"] > alpha / 2)
        budget = 0.0 if n_permutations is not None else float(time_budget)
        model = model_test(G, y, "width" if axis == "columns" else axis, int(n_permutations or 19),
                           cv, n_repeats, estimator, rng, n_jobs, random_state, verbose, flat=flat,
                           time_budget=budget, needed=needed)
    verdict_, explanation, recommendation = verdict(stat, model, alpha, min_gain,
                                                    chosen_order=order is not None)
    return LocalityReport(verdict=verdict_, explanation=explanation, recommendation=recommendation,
                          axis=axis, shape=tuple(int(s) for s in X.shape), alpha=alpha,
                          statistic=stat, model=model, seconds=time.perf_counter() - t0,
                          settings={"method": method, "cv": cv, "min_gain": min_gain,
                                    "max_samples": max_samples, "time_budget": time_budget,
                                    "order": None if order is None else [int(i) for i in order]})


def _reordered(X, order, axis, y):
    """``X`` with its columns (the width of grids) in ``order``, checked."""
    if axis not in ("columns", "width"):
        raise ValueError(f"order reorders the columns; it cannot be used with axis={axis!r}")
    if y is None:
        raise ValueError("order needs labels y: a chosen order is judged by the model-based "
                         "test alone (the statistic would reward the choice itself)")
    if X.ndim not in (2, 3, 4):
        raise ValueError(f"X has shape {X.shape}; expected a table (n, f) or grids (n, c, h, w)")
    order = np.asarray(order)
    w = X.shape[-1]
    if order.ndim != 1 or order.dtype.kind not in "iu" or len(order) != w \
            or not np.array_equal(np.sort(order), np.arange(w)):
        raise ValueError(f"order must be a permutation of the {w} column indices 0..{w - 1}; "
                         f"got {order.tolist() if order.size <= 20 else f'{order.size} values'}")
    return X[..., order]
