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

__all__ = ["default_model", "model_test", "baseline_models"]


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


def model_test(G, y, axis, n_permutations, cv, n_repeats, estimator, rng, n_jobs, random_state,
               verbose=False, flat=None):
    """The cross-validated score of ``estimator`` (default: :func:`default_model`,
    seeded with ``random_state``) on grids ``G`` (n, c, h, w) as given, against the
    same on ``n_permutations`` random orders of ``axis``, and the order-free
    baselines' on ``flat`` (n, f), the samples as the user gave them (default: ``G``
    flattened); the same folds for all."""
    from joblib import Parallel, delayed, effective_n_jobs
    from sklearn.model_selection import RepeatedStratifiedKFold
    from tqdm.auto import tqdm
    n, c, h, w = G.shape
    splitter = RepeatedStratifiedKFold(n_splits=cv, n_repeats=n_repeats,
                                       random_state=int(rng.integers(2**31)))
    folds = list(splitter.split(np.zeros(n), y))
    n_train = min(len(tr) for tr, _ in folds)
    model = estimator if estimator is not None else default_model((c, h, w), n_train, random_state)
    perms = [None]
    for _ in range(n_permutations):
        pw = rng.permutation(w) if axis in ("columns", "width", "both") else None
        ph = rng.permutation(h) if axis in ("height", "both") else None
        perms.append((pw, ph))
    flat = G.reshape(n, -1) if flat is None else flat
    bases = baseline_models(random_state)
    probes = [delayed(_fold)(model, G, y, p, tr, te) for p in perms for tr, te in folds]
    others = [delayed(_fold)(b, flat, y, None, tr, te) for b in bases.values() for tr, te in folds]
    with tqdm(total=len(probes) + len(others), desc="column orders x folds", unit="fit",
              disable=not verbose, leave=False) as bar:
        if estimator is None and effective_n_jobs(n_jobs) == 1:
            out = np.array(_run_here(probes, others, bar))
        else:
            results = Parallel(n_jobs=n_jobs, return_as="generator")(probes + others)
            out = np.array([bar.update() or r for r in results])
    k = len(folds)
    scores = out[:len(perms) * k].reshape(len(perms), k, 2).mean(axis=1)
    base_scores = out[len(perms) * k:].reshape(len(bases), k, 2).mean(axis=1)
    baselines = {name: float(s) for name, s in zip(bases, base_scores[:, 0])}
    best = max(baselines, key=baselines.get)
    observed, null = scores[0, 0], scores[1:, 0]
    return {
        "score": float(observed),
        "shuffled_scores": null.tolist(),
        "shuffled_mean": float(null.mean()),
        "gain": float(observed - null.mean()),
        "p_value": float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_permutations)),
        "n_permutations": int(n_permutations),
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
