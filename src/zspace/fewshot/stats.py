"""Mean and 95% confidence intervals over repeated draws (Student t, since draws are few)."""

from __future__ import annotations

import math

from scipy import stats as scipy_stats


def mean_ci95(values) -> tuple[float, float, float]:
    """(mean, low, high): the t-distribution 95% interval of the mean of `values`.

    With a single value the interval is that value (no spread can be estimated)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, mean, mean
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    half = scipy_stats.t.ppf(0.975, len(values) - 1) * math.sqrt(variance / len(values))
    return mean, mean - half, mean + half


def paired_difference(first, second) -> tuple[float, float, float]:
    """Mean and 95% CI of first[i] - second[i] (the draws pair the two methods)."""
    if len(first) != len(second):
        raise ValueError("paired values differ in length")
    return mean_ci95([a - b for a, b in zip(first, second)])
