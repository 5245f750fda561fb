"""Small, pure statistics for the leaderboard: t intervals of a mean and paired differences between two methods.

Both use Student's t because a plan has few runs (forget classes × seeds, often 1–10): with n values x₁…xₙ,

    mean x̄ = Σ xᵢ / n,   sample std s = √(Σ (xᵢ − x̄)² / (n − 1))   (ddof = 1),
    95 % interval = x̄ ± t₀.₉₇₅,ₙ₋₁ · s / √n,

where t₀.₉₇₅,ₙ₋₁ is the 97.5 % quantile of Student's t with n − 1 degrees of freedom (``scipy.stats.t.ppf``).
With n < 2 there is no spread to estimate, so no interval (the half-width is NaN). NaN values are left out first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95


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


@dataclass(frozen=True)
class PairedDifference:
    """Mean paired difference A − B with its t interval; ``significant`` is None when n < 2 (not testable)."""

    interval: Interval

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


def _clean(values: Iterable[float]) -> np.ndarray:
    array = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(dtype=float)
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

    Significant (at the confidence level) when that interval excludes 0; needs n ≥ 2 paired values.
    """
    sa = pd.to_numeric(pd.Series(a, dtype=object), errors="coerce")
    sb = pd.to_numeric(pd.Series(b, dtype=object), errors="coerce")
    joined = pd.concat([sa.rename("a"), sb.rename("b")], axis=1, join="inner").dropna()
    return PairedDifference(t_interval(joined["a"] - joined["b"], confidence))
