"""Small, pure statistics for the leaderboard: t intervals of a mean, paired differences between two methods with
their paired t-test, and Holm's correction of a family of tests.

Intervals use Student's t because a plan has few runs (forget classes × seeds, often 1–10): with n values x₁…xₙ,

    mean x̄ = Σ xᵢ / n,   sample std s = √(Σ (xᵢ − x̄)² / (n − 1))   (ddof = 1),
    95 % interval = x̄ ± t₀.₉₇₅,ₙ₋₁ · s / √n,

where t₀.₉₇₅,ₙ₋₁ is the 97.5 % quantile of Student's t with n − 1 degrees of freedom (``scipy.stats.t.ppf``).
With n < 2 there is no spread to estimate, so no interval (the half-width is NaN). NaN values are left out first.
A quantity with known bounds (a rate in [0, 1]) has its interval clamped to them (:meth:`Interval.clamped`).

The paired t-test of A − B: t = d̄ / (s_d / √n), two-sided p = 2 · P(T_{n−1} ≥ |t|) (``scipy.stats.t.sf``); it
rejects "mean difference 0" at level α exactly when the (1 − α) interval of d̄ excludes 0. Several such tests are
corrected together with Holm's step-down rule (:func:`holm`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05  # family-wise error rate of the Holm-corrected comparisons


@dataclass(frozen=True)
class Interval:
    """``mean ± half_width`` = [``low``, ``high``] over ``n`` values; ``half_width`` is NaN when n < 2."""

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    @property
    def defined(self) -> bool:
        return self.n >= 2 and not math.isnan(self.half_width)

    def clamped(self, lower: float, upper: float) -> tuple[float, float]:
        """(max(lower, low), min(upper, high)): the interval cut to the quantity's bounds, e.g. (0, 1) for a rate,
        (−1, 1) for a difference of two rates. NaN ends stay NaN."""
        low, high = self.low, self.high
        return (low if math.isnan(low) else max(lower, low), high if math.isnan(high) else min(upper, high))


@dataclass(frozen=True)
class PairedDifference:
    """Mean paired difference A − B with its t interval and the two-sided paired t-test's ``p_value`` (NaN when
    n < 2); ``significant`` is None when n < 2 (not testable)."""

    interval: Interval
    p_value: float = float("nan")

    @property
    def mean(self) -> float:
        return self.interval.mean

    @property
    def n(self) -> int:
        return self.interval.n

    @property
    def significant(self) -> bool | None:
        """True when the interval excludes 0 (both ends strictly on one side), False when it contains 0."""
        if not self.interval.defined:
            return None
        return bool(self.interval.low > 0 or self.interval.high < 0)


def _as_floats(values: Iterable[float]) -> np.ndarray:
    """``values`` as a float array in their order, non-numbers → NaN (nothing dropped)."""
    return pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(dtype=float)


def _clean(values: Iterable[float]) -> np.ndarray:
    array = _as_floats(values)
    return array[~np.isnan(array)]


def t_quantile(n: int, confidence: float = CONFIDENCE) -> float:
    """t_{(1+c)/2, n−1}: the two-sided Student-t quantile for ``n`` values (NaN for n < 2)."""
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1))


def t_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> Interval:
    """Interval of the mean: x̄ ± t_{(1+c)/2, n−1} · s / √n with the sample std s (ddof = 1), NaNs left out.

    n = 0 gives mean NaN; n = 1 gives the value with half-width NaN (no interval).
    """
    x = _clean(values)
    n = len(x)
    if n == 0:
        return Interval(float("nan"), float("nan"), 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, float("nan"), n)
    s = float(x.std(ddof=1))
    return Interval(mean, t_quantile(n, confidence) * s / math.sqrt(n), n)


def paired_difference(a: Mapping | pd.Series, b: Mapping | pd.Series,
                      confidence: float = CONFIDENCE) -> PairedDifference:
    """Paired t interval of A − B: the values of A and B are matched by key (e.g. (forget class, seed)); only keys
    with a value in both count. dᵢ = aᵢ − bᵢ, then ``t_interval(d)``: d̄ ± t_{(1+c)/2, n−1} · s_d / √n.

    Significant (at the confidence level) when that interval excludes 0; needs n ≥ 2 paired values. The p-value is
    :func:`paired_t_p_value` of the same differences.
    """
    sa = pd.to_numeric(pd.Series(a, dtype=object), errors="coerce")
    sb = pd.to_numeric(pd.Series(b, dtype=object), errors="coerce")
    joined = pd.concat([sa.rename("a"), sb.rename("b")], axis=1, join="inner").dropna()
    d = joined["a"] - joined["b"]
    return PairedDifference(t_interval(d, confidence), paired_t_p_value(d))


def paired_t_p_value(differences: Iterable[float]) -> float:
    """Two-sided p-value of the paired t-test that the mean of dᵢ = aᵢ − bᵢ is 0 (NaNs left out), by
    ``scipy.stats.ttest_1samp``: t = d̄ / (s_d / √n) with s_d of ddof = 1, p = 2 · P(T_{n−1} ≥ |t|). NaN for
    n < 2. When every dᵢ is equal (s_d = 0), t is ±∞ (p = 0) for d̄ ≠ 0 and undefined for d̄ = 0, taken as
    p = 1 (no difference at all)."""
    d = _clean(differences)
    n = len(d)
    if n < 2:
        return float("nan")
    if (d == d[0]).all():  # exactly (s_d computed in floating point need not be 0 here)
        return 0.0 if d[0] != 0 else 1.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)


@dataclass(frozen=True)
class HolmResult:
    """Holm's correction of m tests, in the order given: ``adjusted`` p-values and ``rejected`` flags (NaN / False
    for a test without a p-value)."""

    adjusted: np.ndarray
    rejected: np.ndarray


def holm(p_values: Iterable[float], alpha: float = ALPHA) -> HolmResult:
    """Holm–Bonferroni step-down correction at family-wise error rate ``alpha``.

    NaN p-values are not tests: they are left out of the family (m counts the others), get adjusted p NaN and are
    never rejected. Order the m p-values p₍₁₎ ≤ p₍₂₎ ≤ … ≤ p₍ₘ₎ (ties in input order). Step down from the
    smallest: for k = 1, 2, …, m, if p₍ₖ₎ ≤ α / (m − k + 1) reject H₍ₖ₎ and go on; at the first k where
    p₍ₖ₎ > α / (m − k + 1) stop and keep H₍ₖ₎, …, H₍ₘ₎. Adjusted p-values:
    p̃₍ₖ₎ = min(1, max_{j ≤ k} (m − j + 1) · p₍ⱼ₎); H₍ₖ₎ is rejected exactly when p̃₍ₖ₎ ≤ α.

    Example (known answer): p = [0.01, 0.04, 0.03, 0.005], α = 0.05, m = 4: 0.005 ≤ 0.05/4 (reject), 0.01 ≤ 0.05/3
    (reject), 0.03 > 0.05/2 (stop) → rejected [True, False, False, True], adjusted [0.03, 0.06, 0.06, 0.02].
    """
    p = _as_floats(p_values)
    adjusted = np.full(len(p), np.nan)
    rejected = np.zeros(len(p), dtype=bool)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    order = tested[np.argsort(p[tested], kind="stable")]
    running = 0.0
    stopped = False
    for k, i in enumerate(order):  # k = 0 … m − 1: the (k + 1)-th smallest p-value, threshold α / (m − k)
        running = max(running, (m - k) * p[i])
        adjusted[i] = min(1.0, running)
        stopped = stopped or p[i] > alpha / (m - k)
        rejected[i] = not stopped
    return HolmResult(adjusted, rejected)

