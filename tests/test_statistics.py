"""t intervals, paired differences, paired t-tests and Holm's correction against hand-computed answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from unlearnbench.orchestration.statistics import (
    holm,
    paired_difference,
    paired_t_p_value,
    t_interval,
    t_quantile,
)


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


def test_rate_interval_is_clamped_to_its_bounds():
    # [0, 0, 0.03]: mean 0.01, s = 0.0173205, half-width = 4.30265 * 0.0173205 / sqrt(3) = 0.0430265
    interval = t_interval([0.0, 0.0, 0.03])
    assert interval.half_width == pytest.approx(0.0430265, abs=1e-6)
    assert interval.low == pytest.approx(-0.0330265, abs=1e-6)  # the raw interval runs below 0 %
    assert interval.clamped(0.0, 1.0) == pytest.approx((0.0, 0.0530265), abs=1e-6)
    high = t_interval([1.0, 1.0, 0.97]).clamped(0.0, 1.0)
    assert high == pytest.approx((0.9469735, 1.0), abs=1e-6)  # and above 100 %
    assert t_interval([0.2, 0.4]).clamped(-math.inf, math.inf) == pytest.approx(
        (0.3 - 12.7062 * 0.1, 0.3 + 12.7062 * 0.1), abs=1e-4)  # unbounded: unchanged
    assert all(math.isnan(v) for v in t_interval([0.5]).clamped(0.0, 1.0))  # no interval stays none


def test_paired_t_p_value_hand_computed():
    # d = [1, 2, 3, 4]: d̄ = 2.5, s_d = 1.29099, t = 2.5 / (1.29099 / 2) = 3.87298, 3 df, p = 2 P(T3 ≥ 3.87298)
    assert paired_t_p_value([1.0, 2.0, 3.0, 4.0]) == pytest.approx(0.030466, abs=1e-6)
    assert paired_t_p_value([1.0, 2.0, 3.0, 4.0]) == pytest.approx(stats.ttest_rel([1, 2, 3, 4], [0, 0, 0, 0]).pvalue)
    diff = paired_difference({0: 3.0, 1: 4.0, 2: 5.0, 3: 6.0}, {0: 2.0, 1: 2.0, 2: 2.0, 3: 2.0})
    assert diff.p_value == pytest.approx(0.030466, abs=1e-6)  # the same differences, matched by key
    assert paired_t_p_value([-1.0, -2.0, -3.0, -4.0]) == pytest.approx(0.030466, abs=1e-6)  # two-sided
    assert paired_t_p_value([0.2, 0.2, 0.2]) == 0.0 and paired_t_p_value([0.0, 0.0]) == 1.0  # s_d = 0
    assert math.isnan(paired_t_p_value([0.5])) and math.isnan(paired_difference({0: 1.0}, {0: 0.0}).p_value)
    assert math.isnan(paired_t_p_value([0.5, float("nan")]))  # NaNs left out first: n = 1


def test_holm_known_answer():
    # sorted: 0.005 ≤ 0.05/4 reject; 0.01 ≤ 0.05/3 reject; 0.03 > 0.05/2 stop (0.04 kept too)
    result = holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    assert result.rejected.tolist() == [True, False, False, True]
    # adjusted: 4·0.005 = 0.02; max(0.02, 3·0.01) = 0.03; max(0.03, 2·0.03) = 0.06; max(0.06, 1·0.04) = 0.06
    assert result.adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_steps_down_and_stops_at_the_first_failure():
    # 0.02 > 0.05/3: stop, nothing rejected, although 0.045 ≤ 0.05 (a step-up rule such as Hochberg's would reject)
    result = holm([0.02, 0.04, 0.045])
    assert not result.rejected.any()
    assert result.adjusted == pytest.approx([0.06, 0.08, 0.08])
    # more than Bonferroni: 0.03 > 0.05/2 but is rejected once 0.012 ≤ 0.05/2 is
    assert holm([0.03, 0.012]).rejected.tolist() == [True, True]
    assert holm([0.5, 0.6]).adjusted == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.01, 0.01, 0.01]).rejected.all()  # ties: 3·0.01 ≤ 0.05 for all


def test_holm_leaves_untestable_comparisons_out_of_the_family():
    result = holm([0.01, float("nan"), 0.04, None])  # m = 2: 0.01 ≤ 0.025, then 0.04 ≤ 0.05
    assert result.rejected.tolist() == [True, False, True, False]
    assert result.adjusted[[0, 2]] == pytest.approx([0.02, 0.04])
    assert np.isnan(result.adjusted[[1, 3]]).all()
    empty = holm([])
    assert len(empty.adjusted) == 0 and len(empty.rejected) == 0


def test_holm_rejects_exactly_where_the_adjusted_p_is_at_most_alpha():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = rng.uniform(0, 0.1, size=rng.integers(1, 12))
        result = holm(p, alpha=0.05)
        assert result.rejected.tolist() == (result.adjusted <= 0.05).tolist()
