"""The model-based test's sequential rule (Besag and Clifford's sequential p-value):
when it adds orders, when it stops, and the p-value it gives. A cheap estimator stands
in for the probe CNN."""
import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from gridnet import locality_check
from gridnet.locality import model_based
from gridnet.locality.model_based import SEQUENTIAL_H, _summary, model_test


class FirstColumn(ClassifierMixin, BaseEstimator):
    """Logistic regression on the strip's first column only: its score depends on which
    column the order puts first."""

    def fit(self, X, y):
        self.m_ = LogisticRegression().fit(X[:, 0, 0, :1], y)
        self.classes_ = self.m_.classes_
        return self

    def predict_proba(self, X):
        return self.m_.predict_proba(X[:, 0, 0, :1])


class AllColumns(FirstColumn):
    """Logistic regression on every column: blind to their order."""

    def fit(self, X, y):
        self.m_ = LogisticRegression().fit(X.reshape(len(X), -1), y)
        self.classes_ = self.m_.classes_
        return self

    def predict_proba(self, X):
        return self.m_.predict_proba(X.reshape(len(X), -1))


def data(n=200, w=40, seed=0, informative=True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    G = rng.standard_normal((n, 1, 1, w)).astype(np.float32)
    if informative:
        G[:, 0, 0, 0] += 2.0 * y
    return G, y


def run(G, y, estimator, budget, needed=None, n_permutations=19, seed=0):
    return model_test(G, y, "width", n_permutations, 2, 1, estimator, np.random.default_rng(seed),
                      1, 0, flat=G.reshape(len(G), -1), time_budget=budget, needed=needed)


def test_an_order_blind_model_stops_at_h_shuffled_orders_as_good():
    G, y = data()
    m = run(G, y, AllColumns(), budget=60)
    # every shuffled order scores as the given one: the 10th came at order 10
    assert m["exceedances"] == 19 and m["n_permutations"] == 19
    assert m["p_value"] == SEQUENTIAL_H / 10 == 1.0
    assert m["sequential"]["stopped"] == "10 shuffled orders scored at least the given one"


def test_orders_are_added_until_the_most_orders(monkeypatch):
    monkeypatch.setattr(model_based, "MAX_ORDERS", 59)
    G, y = data()
    m = run(G, y, FirstColumn(), budget=600)
    assert m["n_permutations"] == 59 and m["sequential"]["stopped"] == "59 orders"
    assert m["exceedances"] < SEQUENTIAL_H
    assert m["p_value"] == (m["exceedances"] + 1) / 60
    assert m["sequential"]["rule"] == "Besag-Clifford" and m["sequential"]["seconds_added"] > 0


def test_the_budget_and_the_verdict_stop_it_and_zero_budget_is_fixed():
    G, y = data()
    m = run(G, y, FirstColumn(), budget=1e-9)
    assert m["n_permutations"] == 19 and m["sequential"]["stopped"] == "the time budget (1e-09 s)"
    assert m["p_value"] == (m["exceedances"] + 1) / 20
    m = run(G, y, FirstColumn(), budget=600, needed=lambda result: False)
    assert m["n_permutations"] == 19
    assert m["sequential"]["stopped"] == "the verdict no longer depends on the p-value"
    asked = []
    m = run(G, y, FirstColumn(), budget=600,
            needed=lambda result: asked.append(result["n_permutations"]) or len(asked) < 3)
    assert asked == [19, 29, 39] and m["n_permutations"] == 39      # batches of 10
    m = run(G, y, FirstColumn(), budget=0)
    assert m["n_permutations"] == 19 and m["sequential"] == {
        "rule": None, "h": None, "time_budget": 0.0, "seconds_added": 0.0,
        "stopped": "fixed number of orders"}


def test_the_sequential_p_value_by_hand():
    baselines = {"logistic regression": 0.5}
    # the given order's 0.8 first; the 10th shuffled order at least as good is the 14th
    null = [0.9] * 5 + [0.1] * 3 + [0.8] * 5 + [0.2] * 6
    scores = np.array([[0.8, 0.0]] + [[v, 0.0] for v in null])
    m = _summary(scores, baselines, True, 100, 2, 1)
    assert m["exceedances"] == 10 and m["p_value"] == 10 / 13
    assert _summary(scores, baselines, False, 100, 2, 1)["p_value"] == 11 / 20
    few = np.array([[0.8, 0.0]] + [[0.1, 0.0]] * 38 + [[0.85, 0.0]])
    assert _summary(few, baselines, True, 100, 2, 1)["p_value"] == 2 / 40


def test_locality_check_adds_orders_only_without_n_permutations():
    G, y = data(n=120, w=12)
    fixed = locality_check(G[:, 0, 0], y, estimator=FirstColumn(), n_permutations=19,
                           random_state=0)
    assert fixed.model["sequential"]["rule"] is None and fixed.model["n_permutations"] == 19
    seq = locality_check(G[:, 0, 0], y, estimator=FirstColumn(), random_state=0)
    assert seq.model["sequential"]["rule"] == "Besag-Clifford"
    assert seq.to_dict()["model"]["sequential"]["time_budget"] == 30.0
    assert locality_check(G[:, 0, 0], y, estimator=FirstColumn(), random_state=0,
                          time_budget=0).model["n_permutations"] == 19
    for bad in (-1, "10", True):
        with pytest.raises(ValueError, match="time_budget must be a number of seconds >= 0"):
            locality_check(G[:, 0, 0], y, time_budget=bad)
