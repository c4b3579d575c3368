"""TabularAdapter: encoding, layouts, similarity ordering, bad input."""
import pickle

import numpy as np
import pytest
from sklearn.base import clone

from adapters import TabularAdapter
from adapters.tabular import similarity_order


def smooth_table(n=300, f=24, seed=0):
    """Columns are time steps of smooth random curves: neighbours are correlated."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, f)
    freq = rng.uniform(0.5, 2, size=(n, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    return np.sin(2 * np.pi * freq * t + phase) + 0.05 * rng.standard_normal((n, f))


def adjacent_corr(Z):
    c = np.corrcoef(Z, rowvar=False)
    return np.mean(np.abs(np.diag(c, 1)))


def test_strip_and_square_layouts():
    X = np.random.default_rng(0).standard_normal((50, 10))
    strip = TabularAdapter().fit_transform(X)
    assert strip.shape == (50, 1, 1, 10) and strip.dtype == np.float32
    np.testing.assert_allclose(strip.mean(axis=0), 0, atol=1e-5)          # standardised
    sq = TabularAdapter(layout="square").fit_transform(X)
    assert sq.shape == (50, 1, 4, 3)
    np.testing.assert_array_equal(sq.reshape(50, -1)[:, :10], strip[:, 0, 0])
    assert (sq.reshape(50, -1)[:, 10:] == 0).all()


def test_similarity_order_recovers_hidden_structure():
    Z = smooth_table()
    perm = np.random.default_rng(1).permutation(Z.shape[1])
    shuffled = Z[:, perm]
    t = TabularAdapter(order="similarity").fit(shuffled)
    assert sorted(t.feature_order_) == list(range(Z.shape[1]))
    ordered = t.transform(shuffled)[:, 0, 0]
    assert adjacent_corr(ordered) > adjacent_corr(Z) - 0.02
    assert adjacent_corr(ordered) > adjacent_corr(shuffled) + 0.2
    assert list(t.get_feature_names_out()) == [f"x{i}" for i in t.feature_order_]
    assert (TabularAdapter().fit(shuffled).feature_order_ == np.arange(Z.shape[1])).all()
    assert list(similarity_order(Z[:, :2])) == [0, 1]


def test_dataframe_with_categories_and_missing_values():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"age": [20, 30, np.nan, 50], "job": ["a", "b", "a", None],
                       "score": [1.0, 2.0, 3.0, 4.0]})
    t = TabularAdapter().fit(df)
    assert t.categorical_columns_ == ["job"] and t.numeric_columns_ == ["age", "score"]
    out = t.transform(df)
    assert out.shape == (4, 1, 1, 4) and np.isfinite(out).all()       # age, job=a, job=b, score
    assert list(t.feature_names_) == ["age", "job=a", "job=b", "score"]  # encoded in place
    unseen = t.transform(pd.DataFrame({"age": [1], "job": ["zzz"], "score": [0.0]}))
    assert (unseen[0, 0, 0, 1:3] == 0).all()                            # unknown category
    arr = TabularAdapter(categorical=[1]).fit_transform(np.array([[1, "x"], [2, "y"]], dtype=object))
    assert arr.shape == (2, 1, 1, 3)


def test_deterministic_clone_pickle():
    Z = smooth_table(100, 12)
    t = TabularAdapter(order="similarity", layout="square").fit(Z)
    np.testing.assert_array_equal(t.transform(Z), pickle.loads(pickle.dumps(t)).transform(Z))
    np.testing.assert_array_equal(t.transform(Z), clone(t).fit(Z).transform(Z))


def test_bad_input():
    X = np.zeros((5, 3))
    X[3, 1] = np.inf
    with pytest.raises(ValueError, match="column 'x1' has an infinite value \\(row 3\\)"):
        TabularAdapter().fit(X)
    X[3, 1] = 1e300                  # finite, but no float32 grid holds it
    with pytest.raises(ValueError, match="column 'x1' holds 1e\\+300, which is too large for a "
                       "float32 grid \\(row 3\\)"):
        TabularAdapter().fit(X)
    fitted = TabularAdapter().fit(np.arange(15.0).reshape(5, 3))
    for value, why in ((np.inf, "infinite"), (-np.inf, "infinite"),
                       (1e300, "too large for a float32 grid")):
        Y = np.zeros((4, 3))
        Y[2, 0] = value
        with pytest.raises(ValueError, match=f"column 'x0' holds .*, which is {why} \\(row 2\\)"):
            fitted.transform(Y)
    Y = np.zeros((4, 3))
    Y[2, 0] = 1e30                   # large but a float32 once scaled: encoded, not refused
    assert np.isfinite(fitted.transform(Y)).all()
    with pytest.raises(ValueError, match="2-D table"):
        TabularAdapter().fit(np.zeros(5))
    with pytest.raises(ValueError, match="layout must be"):
        TabularAdapter(layout="cube").fit(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="X is empty"):
        TabularAdapter().fit(np.zeros((0, 3)))
