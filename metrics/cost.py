"""Cost of a step: wall-clock (CUDA-synchronised on GPU) and peak memory, and the run-time efficiency ratio."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import torch

T = TypeVar("T")


@dataclass
class Cost:
    """Wall-clock seconds and peak memory (MiB) of one measured call.

    On CUDA, ``peak_memory_mb`` is ``torch.cuda.max_memory_allocated`` during the call. On CPU it is the growth
    of the process's peak resident set size (``ru_maxrss``) during the call: 0 when the call stayed under an
    earlier peak of the same process, so CPU figures are only comparable between runs in fresh processes or
    in the order they ran.
    """

    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    memory_kind: str = "cpu-rss-growth"


def _rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


@contextmanager
def measure(device: torch.device | str | None = None) -> Iterator[Cost]:
    """``with measure(device) as cost: ...`` fills ``cost`` when the block ends."""
    cost = Cost()
    cuda = torch.device(device).type == "cuda" if device is not None else False
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        cost.memory_kind = "cuda-max-allocated"
    else:
        base = _rss_mb()
    start = time.perf_counter()
    try:
        yield cost
    finally:
        if cuda:
            torch.cuda.synchronize()
            cost.peak_memory_mb = torch.cuda.max_memory_allocated() / 2**20
            _ = base
        else:
            cost.peak_memory_mb = max(0.0, _rss_mb() - base)
        cost.seconds = time.perf_counter() - start


def measure_call(fn: Callable[[], T], device: torch.device | str | None = None) -> tuple[T, Cost]:
    """Run ``fn()`` and return (its result, its Cost)."""
    with measure(device) as cost:
        result = fn()
    return result, cost


def run_time_efficiency(retrain_seconds: float, method_seconds: float) -> float:
    """RTE = t_retrain / t_method (METHODS.md); NaN when either time is unknown or zero."""
    if not retrain_seconds or not method_seconds or method_seconds <= 0:
        return float("nan")
    return retrain_seconds / method_seconds
