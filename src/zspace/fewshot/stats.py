"""Means and 95% confidence intervals over repeated draws (Student t, since draws are few).

Accuracies are proportions, so their interval must stay inside [0, 1]: a plain t-interval
around 99.6% with a spread of 0.3 points would claim accuracies above 100%. `accuracy_ci95`
therefore builds the t-interval on the logit scale and maps it back (see there). Paired
differences can be negative and keep the plain t-interval. Below MIN_DRAWS draws the spread
is too poorly known for an interval to mean anything: there is none (None, printed "n/a").
"""

from __future__ import annotations

import math

MIN_DRAWS = 3  # fewer draws: no interval


def mean(values) -> float:
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values")
    return sum(values) / len(values)


def _t_half_width(values: list[float]) -> float:
    """t(0.975, n-1) times the standard error of the mean of `values`."""
    # Imported here: scipy.stats takes seconds to import, and the CLI loads this module at
    # every start (for the few-shot commands' help).
    from scipy import stats as scipy_stats

    centre = mean(values)
    variance = sum((v - centre) ** 2 for v in values) / (len(values) - 1)
    return scipy_stats.t.ppf(0.975, len(values) - 1) * math.sqrt(variance / len(values))


def t_ci95(values) -> tuple[float, float] | None:
    """The Student-t 95% interval (low, high) of the mean of `values`; None below MIN_DRAWS."""
    values = [float(v) for v in values]
    centre = mean(values)
    if len(values) < MIN_DRAWS:
        return None
    half = _t_half_width(values)
    return centre - half, centre + half


def accuracy_ci95(accuracies) -> tuple[float, float] | None:
    """A 95% interval (low, high) of the mean accuracy over draws, inside [0, 1]; None below
    MIN_DRAWS draws.

    The t-interval is built on the logit scale around logit(mean) with the delta-method
    standard error se / (mean * (1 - mean)), then mapped back through the sigmoid. Near 50%
    it is the plain t-interval; towards 0 or 1 it shrinks on the side of the bound and can
    never cross it, and it always contains the mean the tables print. (The t-interval of the
    draws' own logits was the alternative: a draw at exactly 100% would need an arbitrary
    clamp that sets the width, and its centre is not the mean accuracy.) Draws that all agree
    give the point interval (mean, mean).
    """
    values = [float(a) for a in accuracies]
    if any(not 0.0 <= a <= 1.0 for a in values):
        raise ValueError(f"accuracies must lie in [0, 1], got {values}")
    centre = mean(values)
    if len(values) < MIN_DRAWS:
        return None
    half = _t_half_width(values)
    if half == 0.0 or not 0.0 < centre < 1.0:  # no spread (a mean of 0 or 1 means none too)
        return centre, centre
    logit_half = half / (centre * (1.0 - centre))
    logit = math.log(centre) - math.log1p(-centre)
    low, high = _sigmoid(logit - logit_half), _sigmoid(logit + logit_half)
    # min/max: rounding in logit/sigmoid must not push the mean out of a vanishing interval.
    return min(low, centre), max(high, centre)


def _sigmoid(x: float) -> float:
    """1 / (1 + e^-x) without overflow, for any x including +-inf."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    return math.exp(x) / (1.0 + math.exp(x))


def half_width(interval: tuple[float, float] | None) -> float | None:
    """Half the length of an interval (None for none); an asymmetric one counts its length."""
    return None if interval is None else (interval[1] - interval[0]) / 2


def paired_difference(first, second) -> tuple[float, tuple[float, float] | None]:
    """(mean, t-interval or None) of first[i] - second[i] (the draws pair the two methods)."""
    if len(first) != len(second):
        raise ValueError("paired values differ in length")
    differences = [float(a) - float(b) for a, b in zip(first, second)]
    return mean(differences), t_ci95(differences)
