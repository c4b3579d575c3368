"""The report of a locality check and the rule that turns the tests into a verdict."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["LocalityReport", "verdict", "PROBE_SHORTFALL"]


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
                (f"  probe CNN, columns in the order:   {m['score']:.4f}" if self.settings.get("order")
                 else f"  probe CNN, columns as given:       {m['score']:.4f}"),
                f"  probe CNN, columns shuffled:       {m['shuffled_mean']:.4f} "
                f"(min {min(m['shuffled_scores']):.4f}, max {max(m['shuffled_scores']):.4f}, "
                f"{m['n_permutations']} permutations)",
                f"  gain from the order {m['gain']:+.4f}, p = {m['p_value']:.4f}",
            ]
            lines += [f"  order-free, {name}: {' ' * max(0, 21 - len(name))}{score:.4f}"
                      + ("  (best)" if name == m["baseline"] else "")
                      for name, score in m.get("baselines", {m["baseline"]: m["baseline_score"]}).items()]
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


#: The probe CNN counts as having learned the data when its score on the columns as
#: given is at most this far (in accuracy) below the best order-free model's; further
#: below, a "not local" would say nothing about what a CNN could do.
PROBE_SHORTFALL = 0.05


def _use(best, base, cnn, local, chosen_order=False):
    """The plain advice: which model to use."""
    if local and cnn >= base - 0.01:
        return (f"Use a CNN: keep the columns in this order (the probe CNN scores {cnn:.3f}, "
                f"the best order-free model, {best}, {base:.3f}).")
    if local:
        return (f"The order helps a CNN, but {best}, which ignores it, scores higher "
                f"({base:.3f} against the probe's {cnn:.3f}): use {best}, or train a full-sized "
                "CNN on this order and compare it with that figure.")
    advice = (f"Use {best} ({base:.3f}), or another model that ignores column order; a CNN "
              "has no layout to exploit here.")
    if chosen_order:
        return advice
    return advice + (" Reordering the columns by similarity may make one: check again with "
                     "them reordered (gridnet locality --reorder; in Python, "
                     "order=adapters.similarity_order(X)).")


def verdict(stat, model, alpha, min_gain, chosen_order=False):
    """(verdict, explanation, recommendation).

    Without labels: "local" when the statistic's p-value is at most ``alpha``.
    With labels: "local" needs a significant order, by the statistic or by the
    model-based test, each at ``alpha / 2`` (Bonferroni, so the false-positive rate
    stays at most ``alpha``), and a gain in the CNN's score of at least
    ``min_gain`` from the order (even when an order-free model scores higher: on the
    panel's "swapped shapes" gradient boosting scores 0.95, the probe 0.87 as given and
    0.76 shuffled, and the truth is "local"). Otherwise, when the probe CNN scores more
    than :data:`PROBE_SHORTFALL` below the best order-free model, "inconclusive" (it has
    not learned the data, so its comparison says little). Otherwise a smaller gain is
    "not local"; a larger gain that is not significant is "inconclusive" when one test comes
    close (p <= alpha) or the gain is over twice the spread of the shuffled scores, else
    "not local". ``chosen_order``: the layout was chosen from the data (a similarity
    ordering), so only the model-based test counts, at ``alpha``.
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
    base, best, cnn = model["baseline_score"], model["baseline"], model["score"]
    given = "in the chosen order" if chosen_order else "as given"
    worth = (f"For scale: the probe CNN scores {cnn:.3f} on the columns {given}; the best "
             f"model that ignores column order, {best}, scores {base:.3f}.")
    if chosen_order:
        significant = pm <= alpha
        evidence = (f"model-based p = {pm:.3g}; the statistic does not count for an order "
                    "chosen to put alike columns together")
    else:
        significant = ps <= alpha / 2 or pm <= alpha / 2
        evidence = f"statistic p = {ps:.3g}, model-based p = {pm:.3g}"
    if gain >= min_gain and significant:
        return ("local",
                f"The small CNN scores {gain:+.3f} better with the columns {given} than with "
                f"them shuffled, and the order is significant ({evidence}): neighbouring "
                "columns carry information together. " + worth, _use(best, base, cnn, True))
    if base - cnn > PROBE_SHORTFALL:
        return ("inconclusive",
                f"The probe CNN scores {cnn:.3f} with the columns {given}, far below {best} "
                f"({base:.3f}, which ignores column order): it has not learned this data well "
                f"enough for its comparison of column orders (gain {gain:+.3f}; {evidence}) to "
                "say what a CNN could do with them.",
                f"Use {best} ({base:.3f}); to judge the layout, pass a stronger CNN as "
                "estimator= and check again.")
    if gain < min_gain:
        return ("not local",
                f"The columns {given} gain the probe CNN only {gain:+.4f} in accuracy over "
                f"shuffled orders (less than {min_gain}; {evidence}): the data is about as "
                "useful to it with its columns swapped. " + worth,
                _use(best, base, cnn, False, chosen_order))
    spread = float(np.std(model["shuffled_scores"]))
    if ps <= alpha or pm <= alpha or (spread > 0 and gain >= 2 * spread):
        return ("inconclusive",
                f"The small CNN does {gain:+.3f} better with the columns {given}, but the "
                f"order is not significant ({evidence}). " + worth,
                "Use more samples or more permutations before deciding.")
    return ("not local",
            f"Neither test finds the order significant ({evidence}); the probe's gain of "
            f"{gain:+.3f} is within the spread of shuffled orders (+/- {spread:.3f}). " + worth,
            _use(best, base, cnn, False, chosen_order))
