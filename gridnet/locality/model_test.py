"""The model-based test: a small CNN's cross-validated score on the data as given
against the same on the data with its columns shuffled (one permutation applied to
every sample, several permutations), with beside it a model that ignores column order
(logistic regression on the flattened data)."""
from __future__ import annotations

import numpy as np

from ..core import Conv2D, Flatten, GlobalMaxPool
from ..estimator import GridNetClassifier

__all__ = ["default_model", "model_test"]


def default_model(grid_shape, random_state):
    """The probe: one convolution with a small receptive field, then the maximum of
    each feature over all positions. It can use the layout only through
    neighbourhoods (which position a pattern sits at is lost), so shuffling the
    columns hurts it exactly as much as the neighbourhoods mattered."""
    c, h, w = grid_shape
    kh = 3 if h >= 3 else h
    kw = (5 if h == 1 else 3) if w >= 5 else min(w, 3)
    body = [Conv2D(64, (kh, kw), padding="same", activation="relu"), GlobalMaxPool("both"),
            Flatten()]
    # its schedule pinned (10 epochs, stopping on the training loss), whatever the
    # estimator's defaults: the check's calibration was measured with it
    return GridNetClassifier(layers=body, max_epochs=10, learning_rate=5e-3, batch_size=32,
                             n_iter_no_change=3, early_stopping=False, augment=None,
                             random_state=random_state)


def _permute(G, perms):
    """Apply one column permutation (and/or row permutation) to every sample."""
    pw, ph = perms
    if pw is not None:
        G = G[:, :, :, pw]
    if ph is not None:
        G = G[:, :, ph, :]
    return np.ascontiguousarray(G)


def _cv_score(model, G, y, cv):
    from sklearn.base import clone
    from sklearn.model_selection import cross_validate
    res = cross_validate(clone(model), G, y, cv=cv, scoring=("accuracy", "neg_log_loss"))
    return float(np.mean(res["test_accuracy"])), float(-np.mean(res["test_neg_log_loss"]))


def _baseline_score(G, y, cv):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    flat = G.reshape(len(G), -1)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(np.mean(cross_val_score(model, flat, y, cv=cv))), "logistic regression (flattened)"


def model_test(G, y, axis, n_permutations, cv, n_repeats, estimator, rng, n_jobs, random_state,
               verbose=False):
    """The cross-validated score of ``estimator`` (default: :func:`default_model`,
    seeded with ``random_state``) on grids ``G`` (n, c, h, w) as given, against the
    same on ``n_permutations`` random orders of ``axis`` (the same folds for all)."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import RepeatedStratifiedKFold
    n, c, h, w = G.shape
    splitter = RepeatedStratifiedKFold(n_splits=cv, n_repeats=n_repeats,
                                       random_state=int(rng.integers(2**31)))
    folds = list(splitter.split(np.zeros(n), y))
    model = estimator if estimator is not None else default_model((c, h, w), random_state)
    perms = []
    for _ in range(n_permutations):
        pw = rng.permutation(w) if axis in ("columns", "width", "both") else None
        ph = rng.permutation(h) if axis in ("height", "both") else None
        perms.append((pw, ph))
    jobs = [delayed(_cv_score)(model, G, y, folds)]
    jobs += [delayed(_cv_score)(model, _permute(G, p), y, folds) for p in perms]
    from tqdm.auto import tqdm
    results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
    scores = np.array(list(tqdm(results, total=len(jobs), desc="column orders", unit="order",
                                disable=not verbose, leave=False)))
    observed, null = scores[0, 0], scores[1:, 0]
    lobs, lnull = scores[0, 1], scores[1:, 1]
    base, base_name = _baseline_score(G, y, folds)
    return {
        "score": observed,
        "shuffled_scores": null.tolist(),
        "shuffled_mean": float(null.mean()),
        "gain": float(observed - null.mean()),
        "p_value": float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_permutations)),
        "n_permutations": int(n_permutations),
        "cv": int(cv),
        "n_repeats": int(n_repeats),
        "scoring": "accuracy",
        "baseline": base_name,
        "baseline_score": base,
        "n_samples": int(n),
        "log_loss": float(lobs),
        "shuffled_log_loss": lnull.tolist(),
    }
