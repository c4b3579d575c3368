"""The rule that turns the locality check's two tests into a verdict, and the report a
user reads: every branch with its exact words, each threshold on both sides. Numbers
are given by hand, so no probe is trained here."""
import json

import pytest

from gridnet.locality.report import PROBE_SHORTFALL, LocalityReport, verdict

QUIET = {"p_value": 0.5, "n_permutations": 999, "observed": 0.1, "null_mean": 0.1}
MODEL = {"p_value": 0.5, "gain": 0.03, "baseline": "logistic regression",
         "baseline_score": 0.9, "score": 0.89, "shuffled_scores": [0.86, 0.87] * 10,
         "n_permutations": 39}
SCALE = ("For scale: the probe CNN scores 0.890 on the columns as given; the best model that "
         "ignores column order, logistic regression, scores 0.900.")
REORDER = (" Reordering the columns by similarity may make one: check again with them "
           "reordered (gridnet locality --reorder; in Python, "
           "order=adapters.similarity_order(X)).")


def test_verdict_rules():
    stat = {"p_value": 0.001, "n_permutations": 999, "observed": 0.5, "null_mean": 0.1}
    model = {"p_value": 0.5, "gain": 0.03, "baseline": "logistic regression",
             "baseline_score": 0.9, "score": 0.88, "shuffled_scores": [0.85] * 19,
             "n_permutations": 19}
    assert verdict(stat, model, 0.05, 0.02)[0] == "local"
    # an order chosen to make neighbours alike: the statistic does not count
    v, why, _ = verdict(stat, model, 0.05, 0.02, chosen_order=True)
    assert v != "local" and "does not count" in why
    assert verdict(stat, dict(model, p_value=0.05), 0.05, 0.02, chosen_order=True)[0] == "local"
    # a gain too small: "not local" when the probe learned the data, else inconclusive
    small = dict(model, gain=0.0)
    assert verdict(stat, small, 0.05, 0.02)[0] == "not local"
    assert verdict(stat, dict(small, score=0.8), 0.05, 0.02)[0] == "inconclusive"


def test_verdict_thresholds_on_both_sides():
    """Each rule the verdict rests on, just inside and just outside its boundary."""
    from gridnet.locality.report import PROBE_SHORTFALL
    quiet = {"p_value": 0.5, "n_permutations": 999, "observed": 0.1, "null_mean": 0.1}
    model = {"p_value": 0.5, "gain": 0.03, "baseline": "logistic regression",
             "baseline_score": 0.9, "score": 0.89, "shuffled_scores": [0.86, 0.87] * 10,
             "n_permutations": 19}
    # Bonferroni: each test at alpha / 2 (0.025 of 0.05), the statistic's and the model's
    for p in (0.025, 0.024):
        assert verdict(dict(quiet, p_value=p), model, 0.05, 0.02)[0] == "local"
        assert verdict(quiet, dict(model, p_value=p), 0.05, 0.02)[0] == "local"
    for p in (0.026, 0.04):
        assert verdict(dict(quiet, p_value=p), model, 0.05, 0.02)[0] != "local"
        assert verdict(quiet, dict(model, p_value=p), 0.05, 0.02)[0] != "local"
    # the gain must reach min_gain, even when the order is significant
    sig = dict(model, p_value=0.01)
    assert verdict(quiet, dict(sig, gain=0.02), 0.05, 0.02)[0] == "local"
    assert verdict(quiet, dict(sig, gain=0.0199), 0.05, 0.02)[0] != "local"
    # the probe's shortfall below the best order-free model: more than PROBE_SHORTFALL
    # (0.05) is "inconclusive", at most it a small gain is "not local"
    small = dict(model, gain=0.0)
    assert PROBE_SHORTFALL == 0.05
    for short, expected in ((0.0499, "not local"), (0.0501, "inconclusive"), (0.06, "inconclusive")):
        got = verdict(quiet, dict(small, score=0.9 - short), 0.05, 0.02)[0]
        assert got == expected, (short, got)
    # without labels: the statistic alone at alpha, when the permutations can reach it
    assert verdict(dict(quiet, p_value=0.05), None, 0.05, 0.02)[0] == "local"
    assert verdict(dict(quiet, p_value=0.051), None, 0.05, 0.02)[0] == "not local"
    assert verdict(dict(quiet, p_value=0.05, n_permutations=18), None, 0.05, 0.02)[0] == "inconclusive"
    assert verdict(dict(quiet, p_value=0.05, n_permutations=19), None, 0.05, 0.02)[0] == "local"


def test_without_labels_every_branch_in_words():
    assert verdict(dict(QUIET, n_permutations=9), None, 0.05, 0.02) == (
        "inconclusive", "Too few permutations to reach the significance level.",
        "Run more permutations (n_permutations).")
    assert verdict(dict(QUIET, p_value=0.01, observed=0.4), None, 0.05, 0.02) == (
        "local", "Neighbouring columns are more alike (+0.400) than columns in random orders "
        "(+0.100; p = 0.01): the layout has the local structure convolutions exploit.",
        "A CNN may help; run the model-based test (pass y) to see whether the structure "
        "matters for your labels.")
    assert verdict(dict(QUIET, observed=-0.2), None, 0.05, 0.02) == (
        "not local", "Neighbouring columns are no more alike (-0.200) than in random orders "
        "(+0.100; p = 0.5).",
        "A CNN is unlikely to help with this layout; use a model that ignores column order, "
        "or reorder the columns by similarity and check again.")
    # a smaller alpha needs more permutations: 1 / (1 + 99) = 0.01
    assert verdict(dict(QUIET, p_value=0.01, n_permutations=98), None, 0.01, 0.02)[0] == "inconclusive"
    assert verdict(dict(QUIET, p_value=0.01, n_permutations=99), None, 0.01, 0.02)[0] == "local"


def test_local_in_words_and_the_advice_by_the_probe_against_the_order_free_model():
    v, why, advice = verdict(QUIET, dict(MODEL, p_value=0.01), 0.05, 0.02)
    assert v == "local"
    assert why == ("The small CNN scores +0.030 better with the columns as given than with "
                   "them shuffled, and the order is significant (statistic p = 0.5, "
                   "model-based p = 0.01): neighbouring columns carry information together. "
                   + SCALE)
    assert advice == ("Use a CNN: keep the columns in this order (the probe CNN scores 0.890, "
                      "the best order-free model, logistic regression, 0.900).")
    # the probe may trail the order-free model by 0.01 and still be the advice
    for score, cnn in ((0.89, True), (0.8901, True), (0.8899, False), (0.85, False)):
        advice = verdict(QUIET, dict(MODEL, p_value=0.01, score=score), 0.05, 0.02)[2]
        assert advice.startswith("Use a CNN") is cnn, (score, advice)
    advice = verdict(QUIET, dict(MODEL, p_value=0.01, score=0.85), 0.05, 0.02)[2]
    assert advice == ("The order helps a CNN, but logistic regression, which ignores it, "
                      "scores higher (0.900 against the probe's 0.850): use logistic "
                      "regression, or train a full-sized CNN on this order and compare it "
                      "with that figure.")


def test_a_chosen_order_counts_the_model_test_alone_at_alpha():
    chosen = ("(model-based p = 0.04; the statistic does not count for an order chosen to put "
              "alike columns together)")
    v, why, advice = verdict(dict(QUIET, p_value=0.0), dict(MODEL, p_value=0.04), 0.05, 0.02,
                             chosen_order=True)
    assert v == "local"
    assert why == ("The small CNN scores +0.030 better with the columns in the chosen order "
                   f"than with them shuffled, and the order is significant {chosen}: "
                   "neighbouring columns carry information together. For scale: the probe CNN "
                   "scores 0.890 on the columns in the chosen order; the best model that "
                   "ignores column order, logistic regression, scores 0.900.")
    assert verdict(QUIET, dict(MODEL, p_value=0.05), 0.05, 0.02, chosen_order=True)[0] == "local"
    assert verdict(QUIET, dict(MODEL, p_value=0.051), 0.05, 0.02, chosen_order=True)[0] != "local"
    v, why, advice = verdict(QUIET, dict(MODEL, gain=0.01), 0.05, 0.02, chosen_order=True)
    assert v == "not local"
    assert advice == ("Use logistic regression (0.900), or another model that ignores column "
                      "order; a CNN has no layout to exploit here.")      # no "reorder" again


def test_the_probe_that_has_not_learned_the_data_in_words():
    v, why, advice = verdict(QUIET, dict(MODEL, gain=0.0, score=0.8), 0.05, 0.02)
    assert v == "inconclusive"
    assert why == ("The probe CNN scores 0.800 with the columns as given, far below logistic "
                   "regression (0.900, which ignores column order): it has not learned this "
                   "data well enough for its comparison of column orders (gain +0.000; "
                   "statistic p = 0.5, model-based p = 0.5) to say what a CNN could do with "
                   "them.")
    assert advice == ("Use logistic regression (0.900); to judge the layout, pass a stronger "
                      "CNN as estimator= and check again.")
    # a significant gain is "local" however far the probe trails
    assert verdict(QUIET, dict(MODEL, p_value=0.01, score=0.5), 0.05, 0.02)[0] == "local"
    # the shortfall is measured against the baseline's score, not a fixed figure
    assert verdict(QUIET, dict(MODEL, gain=0.0, score=0.8, baseline_score=0.84),
                   0.05, 0.02)[0] == "not local"


def test_a_small_gain_is_not_local_in_words():
    v, why, advice = verdict(QUIET, dict(MODEL, gain=0.0199), 0.05, 0.02)
    assert v == "not local"
    assert why == ("The columns as given gain the probe CNN only +0.0199 in accuracy over "
                   "shuffled orders (less than 0.02; statistic p = 0.5, model-based p = 0.5): "
                   "the data is about as useful to it with its columns swapped. " + SCALE)
    assert advice == ("Use logistic regression (0.900), or another model that ignores column "
                      "order; a CNN has no layout to exploit here." + REORDER)


def test_a_gain_that_is_not_significant_by_whether_the_orders_could_decide_it():
    # 19 orders cannot give p <= 0.025: the data leaves it open, more orders decide it
    v, why, advice = verdict(QUIET, dict(MODEL, n_permutations=19), 0.05, 0.02)
    assert v == "inconclusive"
    assert why == ("The small CNN does +0.030 better with the columns as given, but 19 "
                   "shuffled orders cannot make a p-value as small as 0.025 (statistic p = "
                   "0.5, model-based p = 0.5). " + SCALE)
    assert advice == ("Check again with more orders: at least 39 (n_permutations, or leave "
                      "it unset and give the sequential test time: time_budget, the CLI's "
                      "--time-budget).")
    # 39 orders can (1 / 40 = 0.025): not significant is then "not local", however close
    for stat_p, model_p in ((0.026, 0.5), (0.5, 0.026), (0.04, 0.04)):
        v, why, advice = verdict(dict(QUIET, p_value=stat_p), dict(MODEL, p_value=model_p),
                                 0.05, 0.02)
        assert v == "not local"
        assert why == (f"Neither test finds the order significant (statistic p = {stat_p}, "
                       f"model-based p = {model_p}, over 39 shuffled orders); the probe's "
                       "gain of +0.030 is no more than shuffled orders give by chance. " + SCALE)
        assert advice == ("Use logistic regression (0.900), or another model that ignores "
                          "column order; a CNN has no layout to exploit here." + REORDER)
    assert verdict(QUIET, dict(MODEL, n_permutations=38), 0.05, 0.02)[0] == "inconclusive"
    # a chosen order is judged at alpha: 19 orders (1 / 20 = 0.05) can decide it
    assert verdict(QUIET, dict(MODEL, n_permutations=18), 0.05, 0.02, chosen_order=True)[0] == "inconclusive"
    assert verdict(QUIET, dict(MODEL, n_permutations=19), 0.05, 0.02, chosen_order=True)[0] == "not local"


def test_the_probe_is_judged_against_logistic_regression_not_the_best_trees():
    trees = dict(MODEL, gain=0.009, score=0.580, baseline="gradient boosting",
                 baseline_score=0.633, baselines={"logistic regression": 0.594,
                                                  "gradient boosting": 0.633})
    v, why, advice = verdict(QUIET, trees, 0.05, 0.01)
    assert v == "not local"
    assert advice.startswith("Use gradient boosting (0.633), or another model that ignores")
    # far below the linear model: the probe has not learned the data
    v, why, _ = verdict(QUIET, dict(trees, score=0.54), 0.05, 0.01)
    assert v == "inconclusive"
    assert why.startswith("The probe CNN scores 0.540 with the columns as given, far below "
                          "logistic regression (0.594, which ignores column order)")
    # on both sides of PROBE_SHORTFALL against logistic regression's 0.594
    assert verdict(QUIET, dict(trees, score=0.5441), 0.05, 0.01)[0] == "not local"
    assert verdict(QUIET, dict(trees, score=0.5439), 0.05, 0.01)[0] == "inconclusive"


def report(model=None, **kw):
    stat = dict(QUIET, observed=0.25, null_mean=0.05, null_std=0.02, effect_size=10.0,
                p_value=0.001, n_permutations=999, null=[0.05, 0.06])
    return LocalityReport(verdict="local", explanation="Why.", recommendation="Do this.",
                          axis="columns", shape=(120, 6), alpha=0.05, statistic=stat,
                          model=model, seconds=3.25, **kw)


def test_report_text_without_labels():
    assert str(report()) == "\n".join([
        "Locality check on data of shape (120, 6) (axis: columns)",
        "Verdict: LOCAL",
        "  statistic:         neighbouring columns more alike than in random orders, "
        "p = 0.0010 (significant at 0.05)",
        "",
        "Model-free statistic (mean correlation of neighbouring columns):",
        "  given order +0.250; random orders +0.050 +/- 0.020 (999 permutations)",
        "  effect size +10.0 standard deviations, p = 0.0010",
        "",
        "Why.",
        "",
        "Recommendation: Do this.",
        "(3.2 s)"])


MODEL_PART = dict(cv=5, scoring="accuracy", n_repeats=2, n_samples=120, score=0.91234,
                  shuffled_mean=0.8, shuffled_scores=[0.75, 0.85], n_permutations=2,
                  gain=0.11234, p_value=0.3333, baseline="gradient boosting",
                  baseline_score=0.95, baselines={"logistic regression": 0.9,
                                                  "gradient boosting": 0.95})


def test_report_text_with_the_model_test_and_every_order_free_model():
    lines = str(report(MODEL_PART)).splitlines()
    assert lines[1:5] == [
        "Verdict: LOCAL",
        "  statistic:         neighbouring columns more alike than in random orders, "
        "p = 0.0010 (significant at 0.025)",
        "  model test:        the order gains the probe +0.1123 (needs 0.01), p = 0.3333 over "
        "2 orders (not significant at 0.025)",
        "  order-free models: logistic regression 0.9000, the probe 0.9123: it has learned "
        "the data (within 0.05); best gradient boosting 0.9500"]
    assert lines[9:17] == [
        "",
        "Model-based test (5-fold cross-validated accuracy x 2, 120 samples):",
        "  probe CNN, columns as given:       0.9123",
        "  probe CNN, columns shuffled:       0.8000 (min 0.7500, max 0.8500, 2 permutations)",
        "  gain from the order +0.1123, p = 0.3333",
        "  order-free, logistic regression:   0.9000",
        "  order-free, gradient boosting:     0.9500  (best)",
        ""]
    assert lines[-3:] == ["", "Recommendation: Do this.", "(3.2 s)"]
    ordered = str(report(MODEL_PART, settings={"order": [1, 0]})).splitlines()
    assert ordered[2].endswith("(significant at 0.05; not counted for a chosen order)")
    assert ordered[3].endswith("(not significant at 0.05)")
    assert ordered[11] == "  probe CNN, columns in the order:   0.9123"
    poor = str(report(dict(MODEL_PART, score=0.8, gain=0.0,
                           sequential={"stopped": "the time budget (30 s)"}))).splitlines()
    assert poor[3].endswith("over 2 orders (not significant at 0.025; stopped: the time "
                            "budget (30 s))")
    assert "it has not learned the data (within 0.05)" in poor[4]
    # a report from before the baselines were listed names the best one alone
    old = {k: v for k, v in MODEL_PART.items() if k != "baselines"}
    lines = str(report(old)).splitlines()
    assert lines[4].startswith("  order-free models: gradient boosting 0.9500")
    assert lines[14:16] == ["  order-free, gradient boosting:     0.9500  (best)", ""]
    long_name = dict(MODEL_PART, baselines={"a model with a name past twenty": 0.9},
                     baseline="a model with a name past twenty", baseline_score=0.9)
    assert "  order-free, a model with a name past twenty: 0.9000" in str(report(long_name))


def test_report_dict_is_json_with_the_shape_as_a_list():
    d = report(MODEL_PART, settings={"cv": 5}).to_dict()
    assert d["shape"] == [120, 6] and d["model"]["baselines"]["gradient boosting"] == 0.95
    assert d == json.loads(json.dumps(d))
    assert set(d) == {"verdict", "explanation", "recommendation", "axis", "shape", "alpha",
                      "statistic", "model", "seconds", "settings"}
    assert report().to_dict()["model"] is None and report().to_dict()["settings"] == {}


def test_report_plot_panels(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot", reason="matplotlib is optional")
    import matplotlib
    matplotlib.use("Agg")
    fig = report(MODEL_PART).plot()
    titles = [a.get_title() for a in fig.axes]
    assert titles == ["neighbour correlation", "cross-validated score"]
    assert fig._suptitle.get_text() == "locality check: local"
    plt.close(fig)
    fig, axes = plt.subplots(1, 1)
    assert report().plot(ax=axes) is fig and axes.get_title() == "neighbour correlation"
    plt.close(fig)


def test_boundaries_exactly_on_the_threshold():
    # a shortfall of exactly PROBE_SHORTFALL is still a probe that learned the data
    assert 0.1 - 0.05 == PROBE_SHORTFALL
    on = dict(MODEL, gain=0.0, baseline_score=0.1, score=0.05)
    assert verdict(QUIET, on, 0.05, 0.02)[0] == "not local"
    # a gain of exactly min_gain is not "too small": the orders' resolution decides it
    assert verdict(QUIET, dict(MODEL, gain=0.02, n_permutations=19), 0.05, 0.02)[0] == "inconclusive"
    assert verdict(QUIET, dict(MODEL, gain=0.02), 0.05, 0.02)[0] == "not local"


def test_a_chosen_order_that_is_not_significant_is_not_local_without_reorder_advice():
    v, why, advice = verdict(QUIET, MODEL, 0.05, 0.02, chosen_order=True)
    assert v == "not local"
    assert why.startswith("Neither test finds the order significant (model-based p = 0.5; the "
                          "statistic does not count for an order chosen to put alike columns "
                          "together, over 39 shuffled orders)")
    assert advice == ("Use logistic regression (0.900), or another model that ignores column "
                      "order; a CNN has no layout to exploit here.")


def test_report_plot_draws_the_null_and_the_observed_value():
    pytest.importorskip("matplotlib.pyplot", reason="matplotlib is optional")
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba
    matplotlib.use("Agg")
    fig = report(MODEL_PART).plot()
    assert tuple(fig.get_size_inches()) == (10.0, 3.5)
    for ax, null, obs in zip(fig.axes, ([0.05, 0.06], [0.75, 0.85]), (0.25, 0.91234)):
        bars = ax.patches
        assert len(bars) == 30 and sum(b.get_height() for b in bars) == len(null)
        assert bars[0].get_facecolor() == to_rgba("0.7")
        (line,) = ax.get_lines()
        assert tuple(line.get_xdata()) == (obs, obs) and line.get_linewidth() == 2
        assert line.get_color() == "C3"
        legend = ax.get_legend()
        assert [t.get_text() for t in legend.get_texts()] == ["shuffled columns",
                                                              "columns as given"]
        assert legend.get_texts()[0].get_fontsize() == matplotlib.font_manager.FontProperties(
            size="small").get_size_in_points()
    plt.close(fig)
    assert tuple(report().plot().get_size_inches()) == (5.0, 3.5)
    plt.close("all")


def test_report_plot_without_matplotlib_says_how_to_install_it(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError) as info:
        report().plot()
    assert str(info.value) == ("report.plot() needs matplotlib: pip install matplotlib (or pip "
                               "install 'gridnet-toolkit[plot]')")


def test_the_findings_lines_on_their_boundaries():
    stat = dict(QUIET, observed=0.05, null_mean=0.1, null_std=0.02, effect_size=-2.5,
                p_value=0.025, n_permutations=999, null=[0.1])
    model = dict(MODEL_PART, p_value=0.025, gain=0.015, score=0.05,      # 0.1 - 0.05: exact
                 baselines={"logistic regression": 0.1, "gradient boosting": 0.95})
    r = LocalityReport(verdict="not local", explanation="Why.", recommendation="Do this.",
                       axis="columns", shape=(120, 6), alpha=0.05, statistic=stat, model=model,
                       settings={"min_gain": 0.02})
    assert str(r).splitlines()[2:5] == [
        "  statistic:         neighbouring columns no more alike than in random orders, "
        "p = 0.0250 (significant at 0.025)",
        "  model test:        the order gains the probe +0.0150 (needs 0.02), p = 0.0250 over "
        "2 orders (significant at 0.025)",
        "  order-free models: logistic regression 0.1000, the probe 0.0500: it has learned "
        "the data (within 0.05); best gradient boosting 0.9500"]
    just = dict(model, p_value=0.0251)
    stat = dict(stat, p_value=0.0251, observed=0.1)
    r = LocalityReport(verdict="not local", explanation="", recommendation="", axis="columns",
                       shape=(120, 6), alpha=0.05, statistic=stat, model=just)
    lines = str(r).splitlines()
    assert "no more alike" in lines[2] and "(not significant at 0.025)" in lines[2]
    assert "(not significant at 0.025)" in lines[3] and "(needs 0.01)" in lines[3]


def test_without_logistic_regression_the_probe_is_judged_against_the_best_model():
    only_trees = dict(MODEL, gain=0.0, baseline="gradient boosting", baseline_score=0.9,
                      baselines={"gradient boosting": 0.9}, score=0.84)
    v, why, _ = verdict(QUIET, only_trees, 0.05, 0.02)
    assert v == "inconclusive" and "far below gradient boosting (0.900" in why
