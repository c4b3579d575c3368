"""The locality check: does the order of the columns carry information a CNN can use?

Rule of thumb: if your data is just as useful after swapping any of its columns with
each other, a CNN will not help. :func:`locality_check` measures it before training,
with two permutation tests:

- a model-free statistic (no labels): the mean correlation of neighbouring columns,
  across the samples, against its distribution when the columns are put in random
  orders (a Moran's-I-style statistic along the axis);
- a model-based test (labels): the cross-validated score of a small gridnet on the
  data as given against the same on the data with its columns shuffled (one
  permutation applied to every sample, several permutations), with beside it a model
  that ignores column order (logistic regression on the flattened data).

Both p-values are exact permutation p-values, ``(1 + #{null >= observed}) / (1 + B)``:
when the given order is no better than a random one (as with data whose columns were
put in a random order), the test says "local" at most ``alpha`` of the time.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["locality_check", "LocalityReport", "neighbour_statistic"]

logger = logging.getLogger(__name__)

_AXES = ("columns", "width", "height", "both")


# -- the model-free statistic ------------------------------------------------------------
def _standardize(a):
    """Columns of a (n, k) to zero mean, unit norm (constant columns stay zero)."""
    a = a.astype(np.float64, copy=True)
    a -= a.mean(axis=0)
    norm = np.sqrt((a * a).sum(axis=0))
    a /= np.where(norm > 1e-12, norm, 1.0)
    return a


def _mean_corr_matrix(x, axis_len, blocks):
    """Mean over ``blocks`` of the (axis_len x axis_len) correlation matrices.

    ``x`` is (n, blocks, axis_len): for a table, one block; for grids, one block per
    channel and row (width axis) or channel and column (height axis).
    """
    M = np.zeros((axis_len, axis_len))
    for b in range(blocks):
        z = _standardize(x[:, b, :])                         # (n, L)
        M += z.T @ z
    return M / blocks


def _adjacent_mean(M, order):
    return float(M[order[:-1], order[1:]].mean())


def neighbour_statistic(M, n_permutations, rng):
    """Observed mean neighbour correlation of matrix ``M`` in its given order, and the
    null distribution over ``n_permutations`` random orders. M: (L, L)."""
    L = M.shape[0]
    observed = _adjacent_mean(M, np.arange(L))
    null = np.empty(n_permutations)
    for k in range(n_permutations):
        null[k] = _adjacent_mean(M, rng.permutation(L))
    return observed, null


def _as_axes(X, axis):
    """X -> list of (n, blocks, L) views, one per axis tested, and the grid shape."""
    X = np.asarray(X)
    if X.ndim == 2:
        if axis not in ("columns", "width"):
            raise ValueError(f"a table (n, f) has only columns; axis={axis!r} needs grids (n, c, h, w)")
        return [X[:, None, :]], X.shape[1:]
    if X.ndim == 3:
        X = X[:, None]
    if X.ndim != 4:
        raise ValueError(f"X has shape {X.shape}; expected a table (n, f) or grids (n, c, h, w)")
    n, c, h, w = X.shape
    views = []
    if axis in ("columns", "width", "both"):
        views.append(X.reshape(n, c * h, w))
    if axis in ("height", "both"):
        views.append(X.transpose(0, 1, 3, 2).reshape(n, c * w, h))
    return views, X.shape[1:]


def _statistic(X, axis, n_permutations, rng):
    views, _ = _as_axes(X, axis)
    observed, null, all_pairs = 0.0, np.zeros(n_permutations), 0.0
    for v in views:
        L = v.shape[2]
        if L < 3:
            raise ValueError(f"the tested axis has {L} positions; the locality check needs at least 3")
        M = _mean_corr_matrix(v, L, v.shape[1])
        o, nl = neighbour_statistic(M, n_permutations, rng)
        observed += o / len(views)
        null += nl / len(views)
        off = M[~np.eye(L, dtype=bool)]
        all_pairs += float(off.mean()) / len(views)
    std = float(null.std())
    return {
        "observed": observed,
        "mean_all_pairs": all_pairs,
        "null_mean": float(null.mean()),
        "null_std": std,
        "effect_size": (observed - float(null.mean())) / std if std > 0 else 0.0,
        "p_value": float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_permutations)),
        "n_permutations": int(n_permutations),
        "null": null.tolist(),
    }


# -- the model-based test ----------------------------------------------------------------
def _default_model(grid_shape, random_state):
    """The probe: one convolution with a small receptive field, then the maximum of
    each feature over all positions. It can use the layout only through
    neighbourhoods (which position a pattern sits at is lost), so shuffling the
    columns hurts it exactly as much as the neighbourhoods mattered."""
    from . import layers as L
    from .estimator import GridNetClassifier
    c, h, w = grid_shape
    kh = 3 if h >= 3 else h
    kw = (5 if h == 1 else 3) if w >= 5 else min(w, 3)
    body = [L.Conv2D(64, (kh, kw), padding="same", activation="relu"), L.GlobalMaxPool("both"),
            L.Flatten()]
    return GridNetClassifier(layers=body, max_epochs=10, learning_rate=5e-3, batch_size=32,
                             n_iter_no_change=3, random_state=random_state)


def _permute(G, perms):
    """Apply one column permutation (and/or row permutation) to every sample."""
    pw, ph = perms
    if pw is not None:
        G = G[:, :, :, pw]
    if ph is not None:
        G = G[:, :, ph, :]
    return np.ascontiguousarray(G)


def _cv_score(model, G, y, cv, scoring="accuracy"):
    from sklearn.base import clone
    from sklearn.model_selection import cross_validate
    res = cross_validate(clone(model), G, y, cv=cv, scoring=("accuracy", "neg_log_loss"))
    return float(np.mean(res["test_accuracy"])), float(-np.mean(res["test_neg_log_loss"]))


def _baseline_score(G, y, cv, random_state):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    flat = G.reshape(len(G), -1)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(np.mean(cross_val_score(model, flat, y, cv=cv))), "logistic regression (flattened)"


def _model_test(G, y, axis, n_permutations, cv, n_repeats, estimator, rng, n_jobs, random_state):
    from joblib import Parallel, delayed
    from sklearn.model_selection import RepeatedStratifiedKFold
    n, c, h, w = G.shape
    splitter = RepeatedStratifiedKFold(n_splits=cv, n_repeats=n_repeats,
                                       random_state=int(rng.integers(2**31)))
    folds = list(splitter.split(np.zeros(n), y))
    model = estimator if estimator is not None else _default_model((c, h, w), random_state)
    perms = []
    for _ in range(n_permutations):
        pw = rng.permutation(w) if axis in ("columns", "width", "both") else None
        ph = rng.permutation(h) if axis in ("height", "both") else None
        perms.append((pw, ph))
    jobs = [delayed(_cv_score)(model, G, y, folds)]
    jobs += [delayed(_cv_score)(model, _permute(G, p), y, folds) for p in perms]
    scores = np.array(Parallel(n_jobs=n_jobs)(jobs))
    observed, null = scores[0, 0], scores[1:, 0]
    lobs, lnull = scores[0, 1], scores[1:, 1]
    base, base_name = _baseline_score(G, y, folds, random_state)
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


# -- the report ---------------------------------------------------------------------------
@dataclass
class LocalityReport:
    """What :func:`locality_check` found. ``str(report)`` reads as a report;
    ``to_dict()`` is JSON-serialisable; ``plot()`` draws the null distributions."""

    verdict: str
    explanation: str
    recommendation: str
    axis: str
    shape: tuple
    alpha: float
    statistic: dict
    model: dict | None = None
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)

    def to_dict(self):
        d = asdict(self)
        d["shape"] = list(self.shape)
        return json.loads(json.dumps(d))

    def __str__(self):
        s = self.statistic
        lines = [
            f"Locality check on data of shape {tuple(self.shape)} (axis: {self.axis})",
            f"Verdict: {self.verdict.upper()}",
            "",
            "Model-free statistic (mean correlation of neighbouring columns):",
            f"  given order {s['observed']:+.3f}; random orders {s['null_mean']:+.3f} "
            f"+/- {s['null_std']:.3f} ({s['n_permutations']} permutations)",
            f"  effect size {s['effect_size']:+.1f} standard deviations, p = {s['p_value']:.4f}",
        ]
        if self.model:
            m = self.model
            lines += [
                "",
                f"Model-based test ({m['cv']}-fold cross-validated {m['scoring']} x {m['n_repeats']}, "
                f"{m['n_samples']} samples):",
                f"  probe CNN, columns as given:       {m['score']:.4f}",
                f"  probe CNN, columns shuffled:       {m['shuffled_mean']:.4f} "
                f"(min {min(m['shuffled_scores']):.4f}, max {max(m['shuffled_scores']):.4f}, "
                f"{m['n_permutations']} permutations)",
                f"  gain from the order {m['gain']:+.4f}, p = {m['p_value']:.4f}",
                f"  order-free baseline, {m['baseline']}: {m['baseline_score']:.4f}",
            ]
        lines += ["", self.explanation, "", "Recommendation: " + self.recommendation,
                  f"({self.seconds:.1f} s)"]
        return "\n".join(lines)

    def plot(self, ax=None):
        """Histogram of the null distribution(s) with the observed value marked."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("report.plot() needs matplotlib: pip install matplotlib "
                              "(or pip install 'gridnet-toolkit[plot]')") from None
        panels = [("neighbour correlation", self.statistic["null"], self.statistic["observed"])]
        if self.model:
            panels.append(("cross-validated score", self.model["shuffled_scores"], self.model["score"]))
        if ax is None:
            fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
            axes = axes[0]
        else:
            axes = np.atleast_1d(ax)
            fig = axes[0].figure
        for a, (title, null, obs) in zip(axes, panels):
            a.hist(null, bins=30, color="0.7", label="shuffled columns")
            a.axvline(obs, color="C3", lw=2, label="columns as given")
            a.set_title(title)
            a.legend(loc="best", fontsize="small")
        fig.suptitle(f"locality check: {self.verdict}")
        return fig


def _verdict(stat, model, alpha, min_gain):
    """(verdict, explanation, recommendation).

    Without labels: "local" when the statistic's p-value is at most ``alpha``.
    With labels: "local" needs a significant order, by the statistic or by the
    model-based test, each at ``alpha / 2`` (Bonferroni, so the false-positive rate
    stays at most ``alpha``), and a gain in the CNN's score of at least
    ``min_gain`` from the order; a smaller gain is "not local". A larger gain that is
    not significant is "inconclusive" when one test comes close (p <= alpha) or the
    gain is over twice the spread of the shuffled scores, else "not local".
    """
    ps = stat["p_value"]
    if model is None:
        if 1.0 / (1 + stat["n_permutations"]) > alpha:
            return ("inconclusive", "Too few permutations to reach the significance level.",
                    "Run more permutations (n_permutations).")
        if ps <= alpha:
            return ("local",
                    f"Neighbouring columns are more alike ({stat['observed']:+.3f}) than columns in "
                    f"random orders ({stat['null_mean']:+.3f}; p = {ps:.3g}): the layout has the "
                    "local structure convolutions exploit.",
                    "A CNN may help; run the model-based test (pass y) to see whether the "
                    "structure matters for your labels.")
        return ("not local",
                f"Neighbouring columns are no more alike ({stat['observed']:+.3f}) than in random "
                f"orders ({stat['null_mean']:+.3f}; p = {ps:.3g}).",
                "A CNN is unlikely to help with this layout; use a model that ignores column "
                "order, or reorder the columns by similarity and check again.")
    pm, gain = model["p_value"], model["gain"]
    base, cnn = model["baseline_score"], model["score"]
    worth = (f"For scale: the probe (a deliberately position-blind CNN) scores {cnn:.3f} on the "
             f"data as given; {model['baseline']}, which ignores column order, scores {base:.3f}.")
    significant = ps <= alpha / 2 or pm <= alpha / 2
    evidence = f"statistic p = {ps:.3g}, model-based p = {pm:.3g}"
    if gain < min_gain:
        return ("not local",
                f"The columns as given gain the probe CNN only {gain:+.3f} in accuracy over "
                f"shuffled orders (less than {min_gain}; {evidence}): the data is about as "
                "useful with its columns swapped, "
                "so a convolution's view of neighbours adds little. " + worth,
                "Use a model that ignores column order (e.g. gradient boosting or logistic "
                "regression), or reorder the columns (TabularAdapter(order='similarity')) and "
                "check again.")
    if significant:
        rec = ("Local structure is there for a CNN to use: keep the columns in this order, "
               f"train a CNN and compare it with the order-free baseline's {base:.3f}.")
        return ("local",
                f"The small CNN scores {gain:+.3f} better with the columns as given than with "
                f"them shuffled, and the order is significant ({evidence}): neighbouring "
                "columns carry information together. " + worth, rec)
    spread = float(np.std(model["shuffled_scores"]))
    if ps <= alpha or pm <= alpha or (spread > 0 and gain >= 2 * spread):
        return ("inconclusive",
                f"The small CNN does {gain:+.3f} better with the columns as given, but the "
                f"order is not significant ({evidence}). " + worth,
                "Use more samples or more permutations before deciding.")
    return ("not local",
            f"Neither test finds the order significant ({evidence}); the probe's gain of "
            f"{gain:+.3f} is within the spread of shuffled orders (+/- {spread:.3f}). " + worth,
            "Use a model that ignores column order (e.g. gradient boosting or logistic "
            "regression), or reorder the columns (TabularAdapter(order='similarity')) and "
            "check again.")


def locality_check(X, y=None, *, axis="columns", method="auto", n_permutations=None, cv=3,
                   n_repeats=1, estimator=None, alpha=0.05, min_gain=0.02, max_samples=5000,
                   random_state=None, n_jobs=None):
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
        cross-validation), default 19. The statistic is cheap and always uses at least
        999. The model-based p-value can
        decide the verdict alone only from 39 permutations (it must reach alpha / 2).
    cv : int, default 3 ; n_repeats : int, default 1
        The model-based score is the mean over ``n_repeats`` repetitions of stratified
        ``cv``-fold cross-validation (the same folds for every column order).
    estimator : classifier, optional. The model used (default: a small gridnet).
    alpha : float, default 0.05. The false-positive rate of a "local" verdict.
    min_gain : float, default 0.02
        The smallest gain in cross-validated accuracy from the order that counts: with
        labels, "local" needs the order to be significant (statistic or model-based
        p-value at most ``alpha / 2``) and to gain at least this much.
    max_samples : int, default 5000. Rows used by the model-based test (random).
    random_state, n_jobs : reproducibility; joblib parallelism over permutations
        (``joblib.parallel_config(backend="dask")`` runs them on a Dask cluster).

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
    if axis not in _AXES:
        raise ValueError(f"axis must be one of {_AXES}; got {axis!r}")
    if method not in ("auto", "statistic", "model"):
        raise ValueError(f"method must be 'auto', 'statistic' or 'model'; got {method!r}")
    if method == "model" and y is None:
        raise ValueError("method='model' needs labels y")
    X = np.asarray(X)
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
    stat = _statistic(X, axis, max(999, int(n_permutations or 0)), rng)
    model = None
    if y is not None and method in ("auto", "model"):
        from sklearn.utils.multiclass import check_classification_targets
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)} labels")
        check_classification_targets(y)
        G = X.astype(np.float32)
        if X.ndim == 2:   # standardised columns, rare extreme values clipped
            G = np.clip(_standardize(X) * np.sqrt(len(X)), -3, 3)
            G = G.astype(np.float32)[:, None, None, :]
        elif X.ndim == 3:
            G = G[:, None]
        if len(G) > max_samples:
            keep = np.sort(rng.choice(len(G), max_samples, replace=False))
            G, y = G[keep], y[keep]
        model = _model_test(G, y, "width" if axis == "columns" else axis, int(n_permutations or 19),
                            cv, n_repeats, estimator, rng, n_jobs, random_state)
    verdict, explanation, recommendation = _verdict(stat, model, alpha, min_gain)
    return LocalityReport(verdict=verdict, explanation=explanation, recommendation=recommendation,
                          axis=axis, shape=tuple(int(s) for s in X.shape), alpha=alpha,
                          statistic=stat, model=model, seconds=time.perf_counter() - t0,
                          settings={"method": method, "cv": cv, "min_gain": min_gain,
                                    "max_samples": max_samples})
