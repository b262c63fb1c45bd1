"""Intervals over draws: the t-interval of differences, the accuracy interval that stays inside
[0, 1], "n/a" below 3 draws, and how the tables and the curve's draw planning use them."""

from __future__ import annotations

import csv
import io
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zspace.errors import ZspaceError
from zspace.fewshot.curve import draw_rule, next_total
from zspace.fewshot.report import cell, interval_text, results_csv
from zspace.fewshot.stats import (
    MIN_DRAWS,
    accuracy_ci95,
    half_width,
    mean,
    paired_difference,
    t_ci95,
)
from zspace.fewshot.study import summarise, validation_split

T_975_2 = 4.302653  # t(0.975) with 2 degrees of freedom


def test_t_interval_of_differences_uses_the_t_distribution():
    low, high = t_ci95([0.5, 0.6, 0.7])
    # sd = 0.1; half width = t(0.975, 2) * 0.1 / sqrt(3)
    assert (high - low) / 2 == pytest.approx(T_975_2 * 0.1 / 3**0.5, rel=1e-6)
    assert (low + high) / 2 == pytest.approx(0.6)
    difference, interval = paired_difference([0.7, 0.8, 0.9], [0.72, 0.7, 0.71])
    assert difference == pytest.approx(0.09)
    assert interval[0] < 0 < interval[1]  # differences may be negative, and so may the bound


def test_no_interval_below_three_draws():
    for values in ([0.5], [0.5, 0.7]):
        assert len(values) < MIN_DRAWS
        assert accuracy_ci95(values) is None and t_ci95(values) is None
    assert paired_difference([0.7, 0.8], [0.6, 0.7]) == (pytest.approx(0.1), None)
    assert half_width(None) is None
    with pytest.raises(ValueError):
        accuracy_ci95([])


def test_accuracy_interval_is_the_t_interval_near_one_half():
    values = [0.48, 0.5, 0.52, 0.5]
    low, high = accuracy_ci95(values)
    plain_low, plain_high = t_ci95(values)
    assert low == pytest.approx(plain_low, abs=2e-4) and high == pytest.approx(plain_high, abs=2e-4)


def test_accuracy_interval_near_one_stays_below_one_where_the_t_interval_does_not():
    values = [0.999, 0.99, 1.0]
    assert t_ci95(values)[1] > 1  # what the tables used to print
    low, high = accuracy_ci95(values)
    assert low < mean(values) < high < 1
    assert 1 - high < mean(values) - low  # squeezed on the side of the bound


def test_all_equal_draws_give_a_point_interval():
    for value in (0.0, 0.37, 1.0):
        assert accuracy_ci95([value] * 5) == (value, value)
    assert t_ci95([0.2] * 4) == (pytest.approx(0.2), pytest.approx(0.2))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(0, 1, allow_nan=False),
            st.sampled_from([0.0, 1.0, 1e-300, 1 - 2**-53]),
            # accuracies on a test set are multiples of 1/N
            st.integers(0, 500).map(lambda k: k / 500),
        ),
        min_size=MIN_DRAWS,
        max_size=40,
    )
)
def test_accuracy_interval_stays_in_the_unit_interval_and_holds_the_mean(accuracies):
    low, high = accuracy_ci95(accuracies)
    centre = mean(accuracies)
    assert 0.0 <= low <= centre <= high <= 1.0
    assert math.isfinite(low) and math.isfinite(high)


def test_tables_print_n_a_without_an_interval():
    few = summarise("encoder+mlp", "(softmax,10)", 50, [0.7, 0.8])
    assert few["ci95"] is None and few["mean"] == pytest.approx(0.75)
    assert cell(few) == "75.00 n/a"
    enough = summarise("encoder+mlp", "(softmax,10)", 50, [0.7, 0.8, 0.75])
    assert cell(enough) == f"75.00 {interval_text(enough['ci95'])}"
    assert interval_text((-0.01, 0.02), signed=True) == "[-1.00, +2.00]"
    rows = list(csv.DictReader(io.StringIO(results_csv([few, enough]))))
    assert rows[0]["ci95_low"] == rows[0]["ci95_high"] == "" and rows[1]["ci95_low"] != ""


def test_curve_draws_balanced_at_multiples_of_ten_and_plans_more_draws():
    assert draw_rule(50) == {"per_class": 5} and draw_rule(25) == {"count": 25}
    # half-width 1.0 at 10 draws, target 0.5: about 4x the draws
    assert next_total(10, [0.004, 0.01], 0.005, 100, 10) == 40
    assert next_total(10, [0.0051], 0.005, 100, 10) == 15  # at least half a batch more
    assert next_total(10, [0.05], 0.005, 100, 10) == 100  # never past max_draws
    assert next_total(2, [None], 0.005, 100, 2) == 3  # an interval needs 3 draws


def test_validation_split_holds_out_the_last_sixth():
    images, labels = torch.arange(60_000), torch.arange(60_000) % 10
    pool, pool_labels, held_out, held_out_labels = validation_split(images, labels)
    assert (len(pool), len(held_out)) == (50_000, 10_000)
    assert held_out[0] == 50_000 and torch.equal(held_out_labels, labels[50_000:])
    assert len(validation_split(images[:3000], labels[:3000])[2]) == 500
    with pytest.raises(ZspaceError, match="too few"):
        validation_split(images[:5], labels[:5])
