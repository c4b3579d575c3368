"""The model-based test: a small CNN's cross-validated score on the data as given
against the same CNN's on the data with its columns shuffled (one permutation applied
to every sample, several permutations), and beside it the best of a few models that
ignore column order (logistic regression, histogram gradient boosting), on the same
folds."""
from __future__ import annotations

import numpy as np

from ..architectures import conv_layers
from ..core import Branches, Dense, Flatten
from ..estimator import GridNetClassifier

__all__ = ["default_model", "model_test", "baseline_models", "SEQUENTIAL_H", "MAX_ORDERS"]


#: The probe's training below EARLY_STOPPING_ROWS training rows: this many steps of
#: Adam (stopping early on a tenth of 100 or 300 rows is guesswork: on wine, 89 rows a
#: fold, it scored 0.92, 200 steps 0.97). From EARLY_STOPPING_ROWS rows it stops early
#: instead, since a fixed number of steps undertrains on more data (the digits as 8 x 8
#: grids, 898 rows a fold: 0.949 after 200 steps, no better than shuffled, 0.972
#: stopping early; FSDD's bands, 1,500 rows a fold: 0.880 and 0.906).
PROBE_STEPS = 200
EARLY_STOPPING_ROWS = 500


def default_model(grid_shape, n_train, random_state):
    """The probe: a real small CNN, the question's own model. Two blocks of
    [convolution, ReLU, max pool 2] (1 x 5 kernels along a one-row strip, 3 x 3 on
    grids; 8 then 16 features), their features flattened *beside the input itself*,
    then a dense layer of 32 (ReLU) and the output layer. The dense layer knows where
    each feature was found (spectra, profiles and aligned series carry their signal
    at fixed places), and the bypass makes the probe at least a small multilayer
    perceptron: it learns what an order-free network learns, and the order can only
    add to that through the convolutions.

    Trained with Adam (learning rate 0.003) in batches of about a sixteenth of the
    training rows (16 to 128), for :data:`PROBE_STEPS` steps, or from
    :data:`EARLY_STOPPING_ROWS` rows with early stopping on a tenth of them (patience 4,
    at most 60 epochs); the same schedule for every column order. ``grid_shape``
    (c, h, w); ``n_train`` the rows it is fitted on.
    """
    c, h, w = grid_shape
    conv = conv_layers(grid_shape, conv_blocks=2, filters=(8, 16),
                       kernel_size=(1, 5) if h == 1 else (3, 3), pool_size=2, dense_units=0,
                       dropout=0.0)
    body = [Branches([conv, [Flatten()]]), Dense(32, activation="relu")]
    batch = int(np.clip(n_train // 16, 16, 128))
    if n_train >= EARLY_STOPPING_ROWS:
        schedule = dict(early_stopping=True, max_epochs=60, n_iter_no_change=4)
    else:                                    # ceil(steps / steps per epoch) epochs
        schedule = dict(early_stopping=False, max_epochs=-(-PROBE_STEPS // -(-n_train // batch)))
    return GridNetClassifier(layers=body, batch_size=batch, learning_rate=3e-3, augment=None,
                             random_state=random_state, **schedule)


def baseline_models(random_state):
    """{name: model}: cheap models that ignore column order, fitted on the flattened
    samples (the same folds as the probe)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    seed = None if random_state is None else int(np.random.default_rng(random_state).integers(2**31))
    return {
        "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "gradient boosting": HistGradientBoostingClassifier(max_iter=100, learning_rate=0.2,
                                                            max_leaf_nodes=15, random_state=seed),
    }


def _permute(G, perms):
    """Apply one column permutation (and/or row permutation) to every sample."""
    pw, ph = perms
    if pw is not None:
        G = G[:, :, :, pw]
    if ph is not None:
        G = G[:, :, ph, :]
    return np.ascontiguousarray(G)


def _fold(model, X, y, perms, train, test):
    """(accuracy, log loss) of a clone of ``model`` fitted on ``train`` and scored on
    ``test``, the columns put in the order ``perms`` first."""
    from sklearn.base import clone
    from sklearn.metrics import log_loss
    if perms is not None:
        X = _permute(X, perms)
    m = clone(model).fit(X[train], y[train])
    if not hasattr(m, "predict_proba"):         # a user's estimator may not have it
        return float(np.mean(m.predict(X[test]) == y[test])), float("nan")
    proba = m.predict_proba(X[test])
    pred = m.classes_[np.argmax(proba, axis=1)]
    # a class too rare to be in every training fold: probability 0 for it (log_loss
    # clips), not an error about labels from deep inside scikit-learn
    labels = np.unique(y)
    full = np.zeros((len(test), len(labels)), dtype=proba.dtype)   # sums checked at its precision
    full[:, np.searchsorted(labels, m.classes_)] = proba
    return float(np.mean(pred == y[test])), float(log_loss(y[test], full, labels=labels))


def _run_here(probes, others, bar):
    """Results of the delayed ``probes`` then ``others``, in this process. The probe's
    fits run with one BLAS and one OpenMP thread (scikit-learn's KMeans limits its BLAS
    the same way): its products are small (at most 16 filters, 32 units) and a second
    BLAS thread mostly waits for its share (on the 2-core machine it doubled the CPU
    time of the digits' check and made its wall time 0-40% longer); the numbers are the
    same as with more threads. The order-free models keep their threads (histogram
    gradient boosting's OpenMP threads share its work well: 1.58 s on one thread, 1.16
    s on two, for the digits' two folds). (A second thread running the order-free
    models beside the probe was no faster: both are bound by Python's interpreter
    lock.)"""
    from threadpoolctl import threadpool_limits

    def run(calls):
        for fn, args, kwargs in calls:
            out.append(fn(*args, **kwargs))
            bar.update()
    out = []
    with threadpool_limits(limits=1, user_api="blas"), threadpool_limits(limits=1, user_api="openmp"):
        run(probes)
    run(others)
    return out


#: The sequential rule (Besag and Clifford, 1991, "Sequential Monte Carlo p-values"):
#: orders are added until this many shuffled orders have scored at least the given one,
#: when the p-value is ``SEQUENTIAL_H / L`` for the L orders drawn by then; a run that
#: ends before (at ``MAX_ORDERS`` or at the time budget, neither of which looks at the
#: scores) gives ``(k + 1) / (L + 1)`` for its k such orders. Both are valid p-values:
#: the rule never stops because a result looks significant.
SEQUENTIAL_H = 10
MAX_ORDERS = 999
#: orders added at a time, at most (fewer when the budget has room for fewer)
BATCH_ORDERS = 10


def _orders(rng, axis, h, w, k):
    return [(rng.permutation(w) if axis in ("columns", "width", "both") else None,
             rng.permutation(h) if axis in ("height", "both") else None) for _ in range(k)]


def _run(calls, estimator, n_jobs, bar):
    from joblib import Parallel, effective_n_jobs
    probes, others = calls
    if estimator is None and effective_n_jobs(n_jobs) == 1:
        return _run_here(probes, others, bar)
    results = Parallel(n_jobs=n_jobs, return_as="generator")(probes + others)
    return [bar.update() or r for r in results]


def model_test(G, y, axis, n_permutations, cv, n_repeats, estimator, rng, n_jobs, random_state,
               verbose=False, flat=None, time_budget=0.0, needed=None):
    """The cross-validated score of ``estimator`` (default: :func:`default_model`,
    seeded with ``random_state``) on grids ``G`` (n, c, h, w) as given, against the
    same on ``n_permutations`` random orders of ``axis``, and the order-free
    baselines' on ``flat`` (n, f), the samples as the user gave them (default: ``G``
    flattened); the same folds for all.

    With ``time_budget`` > 0 seconds, orders are then added by the sequential rule
    (:data:`SEQUENTIAL_H`) while ``needed(result)`` says the verdict still depends on
    the p-value and the budget has room for more; the result says how it ended.
    """
    import time

    from joblib import delayed
    from sklearn.model_selection import RepeatedStratifiedKFold
    from tqdm.auto import tqdm
    n, c, h, w = G.shape
    splitter = RepeatedStratifiedKFold(n_splits=cv, n_repeats=n_repeats,
                                       random_state=int(rng.integers(2**31)))
    folds = list(splitter.split(np.zeros(n), y))
    n_train = min(len(tr) for tr, _ in folds)
    model = estimator if estimator is not None else default_model((c, h, w), n_train, random_state)
    flat = G.reshape(n, -1) if flat is None else flat
    bases = baseline_models(random_state)
    k = len(folds)

    def probes(perms):
        return [delayed(_fold)(model, G, y, p, tr, te) for p in perms for tr, te in folds]

    perms = [None] + _orders(rng, axis, h, w, n_permutations)
    others = [delayed(_fold)(b, flat, y, None, tr, te) for b in bases.values() for tr, te in folds]
    with tqdm(total=len(perms) * k + len(others), desc="column orders x folds", unit="fit",
              disable=not verbose, leave=False) as bar:
        t0 = time.perf_counter()
        out = np.array(_run((probes(perms), others), estimator, n_jobs, bar))
        per_order = (time.perf_counter() - t0) / (len(perms) + len(others) / k)
        scores = out[:len(perms) * k].reshape(len(perms), k, 2).mean(axis=1)
        base_scores = out[len(perms) * k:].reshape(len(bases), k, 2).mean(axis=1)
        baselines = {name: float(s) for name, s in zip(bases, base_scores[:, 0])}
        sequential = time_budget > 0
        stopped, spent = "fixed number of orders", 0.0
        while sequential:
            result = _summary(scores, baselines, sequential, n, cv, n_repeats)
            if result["exceedances"] >= SEQUENTIAL_H:
                stopped = f"{SEQUENTIAL_H} shuffled orders scored at least the given one"
                break
            if needed is not None and not needed(result):
                stopped = "the verdict no longer depends on the p-value"
                break
            if len(scores) - 1 >= MAX_ORDERS:
                stopped = f"{MAX_ORDERS} orders"
                break
            room = int((time_budget - spent) / per_order)
            if room < 1:
                stopped = f"the time budget ({time_budget:g} s)"
                break
            more = _orders(rng, axis, h, w, min(BATCH_ORDERS, room, MAX_ORDERS + 1 - len(scores)))
            bar.total += len(more) * k
            t1 = time.perf_counter()
            new = np.array(_run((probes(more), []), estimator, n_jobs, bar))
            spent += time.perf_counter() - t1
            scores = np.vstack([scores, new.reshape(len(more), k, 2).mean(axis=1)])
    result = _summary(scores, baselines, sequential, n, cv, n_repeats)
    result["sequential"] = {"rule": "Besag-Clifford" if sequential else None,
                            "h": SEQUENTIAL_H if sequential else None,
                            "time_budget": float(time_budget), "seconds_added": round(spent, 3),
                            "stopped": stopped}
    return result


def _summary(scores, baselines, sequential, n, cv, n_repeats):
    """The model test's result from the per-order (accuracy, log loss) ``scores`` (the
    given order first) and the order-free ``baselines``."""
    observed, null = scores[0, 0], scores[1:, 0]
    above = null >= observed - 1e-12
    L, k = len(null), int(above.sum())
    if sequential and k >= SEQUENTIAL_H:       # the order at which the h-th one came
        p = SEQUENTIAL_H / (int(np.nonzero(above)[0][SEQUENTIAL_H - 1]) + 1)
    else:
        p = (1 + k) / (1 + L)
    best = max(baselines, key=baselines.get)
    return {
        "score": float(observed),
        "shuffled_scores": null.tolist(),
        "shuffled_mean": float(null.mean()),
        "gain": float(observed - null.mean()),
        "p_value": float(p),
        "n_permutations": int(L),
        "exceedances": k,
        "cv": int(cv),
        "n_repeats": int(n_repeats),
        "scoring": "accuracy",
        "baselines": baselines,
        "baseline": best,
        "baseline_score": baselines[best],
        "n_samples": int(n),
        "log_loss": float(scores[0, 1]),
        "shuffled_log_loss": scores[1:, 1].tolist(),
    }
