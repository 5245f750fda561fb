"""metrics.cost: wall-clock and memory of a call, and RTE."""

from __future__ import annotations

import math
import time

from metrics.cost import Cost, measure, measure_call, run_time_efficiency


def test_measure_returns_positive_seconds():
    with measure("cpu") as cost:
        time.sleep(0.02)
    assert isinstance(cost, Cost)
    assert 0.015 < cost.seconds < 5.0
    assert cost.peak_memory_mb >= 0.0 and cost.memory_kind == "cpu-rss-peak-above-start"


def test_cpu_peak_memory_sees_a_temporary_allocation():
    import torch

    with measure("cpu") as cost:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        time.sleep(0.1)
        del block
    assert cost.peak_memory_mb > 40.0


def test_measure_call_returns_result_and_cost():
    result, cost = measure_call(lambda: sum(range(10_000)))
    assert result == sum(range(10_000)) and cost.seconds > 0


def test_measure_fills_cost_even_when_the_block_raises():
    cost = None
    try:
        with measure() as cost:
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert cost is not None and cost.seconds > 0


def test_run_time_efficiency():
    assert run_time_efficiency(120.0, 30.0) == 4.0
    assert math.isnan(run_time_efficiency(0.0, 30.0)) and math.isnan(run_time_efficiency(120.0, 0.0))
