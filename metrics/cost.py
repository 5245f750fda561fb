"""Cost of a step: wall-clock (CUDA-synchronised on GPU) and peak memory, and the run-time efficiency ratio."""

from __future__ import annotations

import os
import resource
import sys
import threading
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

    On CUDA, ``peak_memory_mb`` is ``torch.cuda.max_memory_allocated`` during the call. On CPU it is the highest
    resident set size seen during the call minus the RSS when it started (sampled every
    ``RSS_SAMPLE_SECONDS`` by a background thread, so allocations shorter than that can be missed): the memory the
    call itself added, comparable between methods run one after another in the same process.
    """

    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    memory_kind: str = "cpu-rss-peak-above-start"


RSS_SAMPLE_SECONDS = 0.02


def _rss_mb() -> float:
    """Current resident set size (Linux /proc); elsewhere the process's peak RSS so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


class _RssPeak(threading.Thread):
    """Polls the RSS until stopped and keeps the highest value."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss_mb()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(RSS_SAMPLE_SECONDS):
            self.peak = max(self.peak, _rss_mb())

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return max(self.peak, _rss_mb())


@contextmanager
def measure(device: torch.device | str | None = None) -> Iterator[Cost]:
    """``with measure(device) as cost: ...`` fills ``cost`` when the block ends."""
    cost = Cost()
    cuda = torch.device(device).type == "cuda" if device is not None else False
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cost.memory_kind = "cuda-max-allocated"
    else:
        base = _rss_mb()
        sampler = _RssPeak()
        sampler.start()
    start = time.perf_counter()
    try:
        yield cost
    finally:
        if cuda:
            torch.cuda.synchronize()
            cost.peak_memory_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            cost.peak_memory_mb = max(0.0, sampler.stop() - base)
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
