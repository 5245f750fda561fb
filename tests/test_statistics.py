"""t intervals and paired differences against hand-computed answers."""

from __future__ import annotations

import math

import pytest

from unlearnbench.orchestration.statistics import paired_difference, t_interval, t_quantile


def test_t_quantiles_match_the_table():
    assert t_quantile(2) == pytest.approx(12.7062, abs=1e-4)  # t_{0.975, 1}
    assert t_quantile(4) == pytest.approx(3.1824, abs=1e-4)  # t_{0.975, 3}
    assert t_quantile(11) == pytest.approx(2.2281, abs=1e-4)  # t_{0.975, 10}
    assert math.isnan(t_quantile(1))


def test_t_interval_hand_computed():
    # [1, 2, 3, 4]: mean 2.5, s = sqrt(5/3) = 1.29099, half-width = 3.18245 * 1.29099 / 2 = 2.05426
    interval = t_interval([1.0, 2.0, 3.0, 4.0])
    assert interval.n == 4 and interval.mean == 2.5
    assert interval.half_width == pytest.approx(2.05426, abs=1e-5)
    assert (interval.low, interval.high) == pytest.approx((0.44574, 4.55426), abs=1e-5)
    # [0, 2]: s = sqrt(2), half-width = t_{0.975,1} * sqrt(2) / sqrt(2) = 12.7062
    assert t_interval([0.0, 2.0]).half_width == pytest.approx(12.7062, abs=1e-4)


def test_t_interval_small_n_and_nan():
    one = t_interval([0.3, float("nan"), None])
    assert one.n == 1 and one.mean == 0.3 and math.isnan(one.half_width) and not one.defined
    empty = t_interval([])
    assert empty.n == 0 and math.isnan(empty.mean)
    constant = t_interval([5.0, 5.0, 5.0])
    assert constant.defined and constant.half_width == 0.0


def test_identical_methods_differ_by_zero_and_not_significantly():
    a = {(0, 0): 0.2, (1, 0): 0.5, (2, 0): 0.9, (0, 1): 0.4}
    diff = paired_difference(a, dict(a))
    assert diff.n == 4 and diff.mean == 0.0 and diff.significant is False


def test_constant_shift_with_small_noise_is_significant_even_when_classes_vary_a_lot():
    base = {(c, s): 0.1 * c for c in range(5) for s in range(2)}  # spread 0..0.4 between forget classes
    noise = [0.003, -0.002, 0.001, -0.004, 0.002, 0.0, -0.001, 0.004, -0.003, 0.001]
    shifted = {k: v - 0.05 + e for (k, v), e in zip(base.items(), noise, strict=True)}
    diff = paired_difference(shifted, base)
    assert diff.n == 10 and diff.mean == pytest.approx(-0.05 + sum(noise) / 10)
    assert diff.significant is True and diff.interval.high < 0
    assert paired_difference(base, shifted).interval.low > 0  # A − B, not B − A


def test_pairs_by_key_not_by_position_and_only_shared_keys():
    a = {(0, 0): 1.0, (1, 0): 2.0, (2, 0): 3.0}
    b = {(2, 0): 3.0, (0, 0): 1.0, (5, 0): 100.0}  # other order, one key only in each
    diff = paired_difference(a, b)
    assert diff.n == 2 and diff.mean == 0.0


def test_noisy_difference_around_zero_is_not_significant_and_n1_is_untestable():
    a = {i: float(i % 2) for i in range(6)}  # differences +1, -1, ...
    b = {i: 0.5 for i in range(6)}
    assert paired_difference(a, b).significant is False
    single = paired_difference({0: 1.0}, {0: 0.0})
    assert single.n == 1 and single.mean == 1.0 and single.significant is None
