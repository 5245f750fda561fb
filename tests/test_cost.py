"""unlearnbench.foundation.cost: wall-clock, peak memory above a baseline (exact, not sampled), and RTE."""

from __future__ import annotations

import math
import time

import pytest
import torch

from unlearnbench.foundation.cost import Cost, peak_memory, run_time_efficiency, stopwatch


def test_stopwatch_returns_positive_seconds():
    with stopwatch("cpu") as cost:
        time.sleep(0.02)
    assert isinstance(cost, Cost) and 0.015 < cost.seconds < 5.0


def test_cpu_peak_memory_sees_a_short_temporary_allocation_exactly():
    with peak_memory("cpu") as cost:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched, freed at once: a sampler would miss it
        del block
    assert cost.memory_kind == "cpu-rss-peak-above-baseline"
    assert cost.peak_memory_mb == pytest.approx(64, rel=0.1)


def test_memory_freed_earlier_is_not_reused_silently():
    keep = torch.ones(32 * 2**20 // 4)
    del keep  # freed before the window: must not hide the next allocation
    with peak_memory("cpu") as cost:
        block = torch.ones(32 * 2**20 // 4)
        del block
    assert cost.peak_memory_mb == pytest.approx(32, rel=0.1)


def test_stopwatch_fills_cost_even_when_the_block_raises():
    cost = None
    with pytest.raises(RuntimeError):
        with stopwatch() as cost:
            raise RuntimeError("boom")
    assert cost is not None and cost.seconds > 0


def test_run_time_efficiency():
    assert run_time_efficiency(120.0, 30.0) == 4.0
    assert math.isnan(run_time_efficiency(0.0, 30.0)) and math.isnan(run_time_efficiency(120.0, 0.0))
    assert math.isnan(run_time_efficiency(None, 30.0))
