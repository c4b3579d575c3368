"""The report of a locality check and the rule that turns the tests into a verdict."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["LocalityReport", "verdict", "PROBE_SHORTFALL", "REFERENCE"]


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
            *self._findings(),
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

    def _findings(self):
        """One line each: what the statistic, the model test and the order-free models
        found, against the thresholds the verdict applies."""
        s, m, alpha = self.statistic, self.model, self.alpha
        chosen = bool(self.settings.get("order"))
        level = alpha if (m is None or chosen) else alpha / 2
        sig = "significant" if s["p_value"] <= level else "not significant"
        out = [f"  statistic:         neighbouring columns {'more' if s['observed'] > s['null_mean'] else 'no more'} "
               f"alike than in random orders, p = {s['p_value']:.4f} ({sig} at {level:g}"
               + ("; not counted for a chosen order)" if chosen and m else ")")]
        if m:
            min_gain = self.settings.get("min_gain", 0.01)
            sig = "significant" if m["p_value"] <= level else "not significant"
            seq = (m.get("sequential") or {}).get("stopped")
            out.append(f"  model test:        the order gains the probe {m['gain']:+.4f} "
                       f"(needs {min_gain:g}), p = {m['p_value']:.4f} over {m['n_permutations']} "
                       f"orders ({sig} at {level:g}" + (f"; stopped: {seq})" if seq else ")"))
            bases = m.get("baselines", {m["baseline"]: m["baseline_score"]})
            ref = REFERENCE if REFERENCE in bases else m["baseline"]
            learned = ("has learned the data" if bases[ref] - m["score"] <= PROBE_SHORTFALL
                       else "has not learned the data")
            out.append(f"  order-free models: {ref} {bases[ref]:.4f}, the probe {m['score']:.4f}: "
                       f"it {learned} (within {PROBE_SHORTFALL:g}); best {m['baseline']} "
                       f"{m['baseline_score']:.4f}")
        return out

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
#: given is at most this far (in accuracy) below :data:`REFERENCE`'s, an order-free
#: model of comparable capacity; further below, a "not local" would say nothing about
#: what a CNN could do. Trees scoring higher is a recommendation, not a failure: small
#: networks trail them on many tables.
PROBE_SHORTFALL = 0.05
#: the order-free model the probe's competence is judged against
REFERENCE = "logistic regression"


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
    than :data:`PROBE_SHORTFALL` below :data:`REFERENCE` (logistic regression; the best
    model's score, in a report without it), "inconclusive": it has not learned the
    data, so its comparison says little. Otherwise a smaller gain is "not local", and so
    is a larger one that is not significant, unless the orders measured could not
    have made it significant (the smallest p-value ``1 / (1 + orders)`` above the
    level): that one is "inconclusive", and more orders decide it. ``chosen_order``:
    the layout was chosen from the data (a similarity ordering), so only the
    model-based test counts, at ``alpha``.
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
    baselines = model.get("baselines", {best: base})
    ref = REFERENCE if REFERENCE in baselines else best
    given = "in the chosen order" if chosen_order else "as given"
    worth = (f"For scale: the probe CNN scores {cnn:.3f} on the columns {given}; the best "
             f"model that ignores column order, {best}, scores {base:.3f}.")
    if chosen_order:
        level = alpha
        significant = pm <= alpha
        evidence = (f"model-based p = {pm:.3g}; the statistic does not count for an order "
                    "chosen to put alike columns together")
    else:
        level = alpha / 2
        significant = ps <= alpha / 2 or pm <= alpha / 2
        evidence = f"statistic p = {ps:.3g}, model-based p = {pm:.3g}"
    if gain >= min_gain and significant:
        return ("local",
                f"The small CNN scores {gain:+.3f} better with the columns {given} than with "
                f"them shuffled, and the order is significant ({evidence}): neighbouring "
                "columns carry information together. " + worth, _use(best, base, cnn, True))
    if baselines[ref] - cnn > PROBE_SHORTFALL:
        return ("inconclusive",
                f"The probe CNN scores {cnn:.3f} with the columns {given}, far below {ref} "
                f"({baselines[ref]:.3f}, which ignores column order): it has not learned this "
                f"data well enough for its comparison of column orders (gain {gain:+.3f}; "
                f"{evidence}) to say what a CNN could do with them.",
                f"Use {best} ({base:.3f}); to judge the layout, pass a stronger CNN as "
                "estimator= and check again.")
    if gain < min_gain:
        return ("not local",
                f"The columns {given} gain the probe CNN only {gain:+.4f} in accuracy over "
                f"shuffled orders (less than {min_gain}; {evidence}): the data is about as "
                "useful to it with its columns swapped. " + worth,
                _use(best, base, cnn, False, chosen_order))
    orders = int(model["n_permutations"])
    if 1.0 / (1 + orders) > level:
        return ("inconclusive",
                f"The small CNN does {gain:+.3f} better with the columns {given}, but "
                f"{orders} shuffled orders cannot make a p-value as small as {level:g} "
                f"({evidence}). " + worth,
                f"Check again with more orders: at least {int(np.ceil(1 / level)) - 1} "
                "(n_permutations, or leave it unset and give the sequential test time: "
                "time_budget, the CLI's --time-budget).")
    return ("not local",
            f"Neither test finds the order significant ({evidence}, over {orders} "
            f"shuffled orders); the probe's gain of {gain:+.3f} is no more than shuffled "
            "orders give by chance. " + worth,
            _use(best, base, cnn, False, chosen_order))
