"""The locality check: verdicts on known data, calibration, report, parallel runs."""
import json
import sys

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits

from gridnet import LocalityReport, locality_check
from gridnet.locality.statistic import statistic as _statistic


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.images / 16.0, d.target


def waveforms(n=600, f=64, seed=0):
    """A table whose columns are the time steps of class-dependent noisy sine waves."""
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 3, n)
    t = np.linspace(0, 1, f)
    freq = np.array([2.0, 3.0, 4.0])[cls][:, None] * rng.uniform(0.9, 1.1, (n, 1))
    X = np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    return X + 0.5 * rng.standard_normal((n, f)), cls


# -- verdicts on data whose answer is known ---------------------------------------------
def test_digits_as_grids_are_local(digits):
    X, y = digits
    r = locality_check(X[:, None], y, axis="both", random_state=0)
    assert r.verdict == "local", str(r)
    assert r.model["gain"] >= 0.02 and r.statistic["p_value"] <= 0.025


def test_digits_flattened_in_raster_order_are_local(digits):
    X, y = digits
    r = locality_check(X.reshape(len(X), 64), y, random_state=0)
    assert r.verdict == "local", str(r)


def test_digits_with_shuffled_pixels_are_not_local(digits):
    X, y = digits
    perm = np.random.default_rng(0).permutation(64)
    r = locality_check(X.reshape(len(X), 64)[:, perm], y, random_state=0)
    assert r.verdict == "not local", str(r)
    assert r.statistic["p_value"] > 0.05


def test_breast_cancer_is_not_local():
    d = load_breast_cancer()
    r = locality_check(d.data, d.target, random_state=0)
    assert r.verdict == "not local", str(r)
    assert r.model["baseline_score"] > r.model["score"]   # an order-free model is better here


def test_waveform_time_steps_are_local():
    X, y = waveforms()
    r = locality_check(X, y, random_state=0)
    assert r.verdict == "local", str(r)
    assert r.model["gain"] > 0.05


def test_statistic_alone_without_labels():
    rng = np.random.default_rng(0)
    walks = np.cumsum(rng.standard_normal((400, 30)), axis=1)
    r = locality_check(walks, random_state=0)
    assert r.model is None and r.verdict == "local" and r.statistic["effect_size"] > 3
    flat = locality_check(rng.standard_normal((400, 30)), random_state=3, method="statistic")
    assert flat.statistic["p_value"] > 0.05 and flat.verdict == "not local"


def test_grid_axes(digits):
    X, _ = digits
    G = X[:, None]
    for axis in ("width", "height", "both"):
        assert locality_check(G, axis=axis, random_state=0, n_permutations=199).verdict == "local"
    # shuffling only the rows leaves the width axis local and makes the height axis not
    rows = G[:, :, np.random.default_rng(1).permutation(8), :]
    assert _statistic(rows, "height", 199, np.random.default_rng(0))["p_value"] > 0.05
    assert _statistic(rows, "width", 199, np.random.default_rng(0))["p_value"] < 0.01


# -- calibration -------------------------------------------------------------------------
def test_statistic_false_positive_rate_over_many_seeds():
    """Columns put in a random order have no locality by construction: "local" at most
    about alpha = 5% of the time, and the p-values are uniform (not over-cautious)."""
    verdicts, pvalues = [], []
    for seed in range(400):
        rng = np.random.default_rng(seed)
        latent = rng.standard_normal((80, 3))
        X = latent @ rng.standard_normal((3, 12)) + rng.standard_normal((80, 12))
        X = X[:, rng.permutation(12)]
        r = locality_check(X, random_state=seed)          # 999 permutations
        verdicts.append(r.verdict)
        pvalues.append(r.statistic["p_value"])
    rate = np.mean(np.array(verdicts) == "local")
    assert rate <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / 400)          # 0.077
    assert 0.4 <= np.mean(np.array(pvalues) <= 0.5) <= 0.6


def test_model_based_false_positive_rate():
    """With labels and 39 permutations both tests can decide; on tables with a random
    column order the verdict is "local" at most rarely (expected <= 5% of 16 runs)."""
    local = 0
    for seed in range(16):
        rng = np.random.default_rng(100 + seed)
        y = rng.integers(0, 2, 90)
        X = rng.standard_normal((90, 8)) + 0.8 * y[:, None] * rng.standard_normal(8)
        r = locality_check(X, y, random_state=seed, n_permutations=39, cv=2)
        assert r.model["n_permutations"] == 39
        local += r.verdict == "local"
    assert local <= 2


# -- report, parallelism, bad input --------------------------------------------------------
def test_report_text_dict_and_plot(tmp_path):
    X, y = waveforms(n=200, f=20)
    r = locality_check(X, y, random_state=0, n_permutations=19)
    assert isinstance(r, LocalityReport)
    text = str(r)
    assert f"Verdict: {r.verdict.upper()}" in text and "Recommendation:" in text
    d = json.loads(json.dumps(r.to_dict()))
    assert d["verdict"] == r.verdict and len(d["model"]["shuffled_scores"]) == 19
    plt = pytest.importorskip("matplotlib.pyplot", reason="matplotlib is optional")
    import matplotlib
    matplotlib.use("Agg")
    fig = r.plot()
    fig.savefig(tmp_path / "null.png")
    assert (tmp_path / "null.png").stat().st_size > 0
    plt.close(fig)


def test_plot_without_matplotlib_is_a_clear_message(monkeypatch):
    r = locality_check(np.random.default_rng(0).standard_normal((50, 5)), random_state=0)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="needs matplotlib"):
        r.plot()


def test_parallel_runs_give_the_same_report():
    X, y = waveforms(n=150, f=16)
    a = locality_check(X, y, random_state=0, n_permutations=5, n_jobs=1)
    b = locality_check(X, y, random_state=0, n_permutations=5, n_jobs=2)
    assert a.model["shuffled_scores"] == b.model["shuffled_scores"]
    assert a.statistic["null"] == b.statistic["null"]


def test_dask_backend_runs_the_permutations():
    pytest.importorskip("dask.distributed", reason="dask[distributed] is not installed")
    from dask.distributed import Client, LocalCluster
    from joblib import parallel_config
    X, y = waveforms(n=150, f=16)
    serial = locality_check(X, y, random_state=0, n_permutations=4)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        with parallel_config(backend="dask"):
            remote = locality_check(X, y, random_state=0, n_permutations=4, n_jobs=-1)
        assert client.scheduler_info()["workers"]
    assert remote.model["shuffled_scores"] == serial.model["shuffled_scores"]


@pytest.mark.parametrize("X,y,kw,message", [
    (np.full((10, 4), np.nan), None, {}, "NaN"),
    (np.zeros((10, 1)), None, {}, "at least 2"),
    (np.array([["a", "b"]] * 5), None, {}, "numeric"),
    (np.zeros((10, 4)), None, {"axis": "height"}, "only columns"),
    (np.zeros((10, 4)), [0, 1], {}, "10 samples but y has 2"),
    (np.zeros((10, 4)), None, {"method": "model"}, "needs labels"),
    (np.zeros((10, 4)), None, {"axis": "diagonal"}, "axis must be"),
])
def test_bad_input(X, y, kw, message):
    with pytest.raises(ValueError, match=message):
        locality_check(X, y, **kw)
