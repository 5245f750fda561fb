r"""Cost of a step: wall-clock (CUDA-synchronised on GPU), peak memory above a baseline, and the run-time efficiency.

**Memory rule** (one rule on CPU and GPU): the peak of what a call allocates *above a baseline taken when it
starts*; the runner starts the window after the shared inputs exist (the original model, the data and its
forget/retain sets), so the figure is what the method itself allocates — its model copy, optimiser state,
activations, extra batches, masks.

- CUDA: ``torch.cuda.max_memory_allocated() − torch.cuda.memory_allocated()`` at the start, with the allocator's
  peak reset at the start (the allocator's own statistics; cached-but-free blocks are not counted).
- CPU (Linux): the kernel's exact resident-set high-water mark ``VmHWM`` minus the resident set at the start.
  Before the baseline, freed memory is handed back to the kernel (``gc.collect()``, glibc ``malloc_trim(0)``)
  and the high-water mark is reset to the current RSS (``echo 5 > /proc/self/clear_refs``), so memory an
  earlier run freed is not silently reused and the figure does not depend on run order; nothing is sampled, so
  no short peak is missed.
- Elsewhere (no ``/proc``): not measured (NaN, ``memory_kind`` says so).

Windows do not nest: resetting the high-water mark inside a window would lose the outer window's peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

PROC_STATUS = Path("/proc/self/status")
PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


def format_seconds(seconds: float) -> str:
    """``1h02m03s`` or ``2m03s``: how progress lines and run summaries print a duration."""
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


@dataclass
class Cost:
    """Wall-clock seconds and peak memory (MiB above the window's baseline) of one measured call."""

    seconds: float = 0.0
    peak_memory_mb: float = math.nan
    memory_kind: str = "not measured"


def _status_mb(field: str) -> float:
    for line in PROC_STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise OSError(f"{field} missing from {PROC_STATUS}")


@lru_cache(maxsize=1)
def _libc_malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Collect garbage and return the allocator's free pages to the kernel (glibc ``malloc_trim``)."""
    gc.collect()
    trim = _libc_malloc_trim()
    if trim is not None:
        trim(0)


def _reset_cpu_peak() -> bool:
    """Reset the kernel's RSS high-water mark to the current RSS; False where that is not possible."""
    try:
        PROC_CLEAR_REFS.write_text("5")
        _status_mb("VmHWM")
        return True
    except OSError:
        return False


@contextmanager
def stopwatch(device: torch.device | str | None = None) -> Iterator[Cost]:
    """``with stopwatch(device) as cost: ...`` fills ``cost.seconds`` (CUDA work is synchronised at both ends)."""
    cost = Cost()
    cuda = device is not None and torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    try:
        yield cost
    finally:
        if cuda:
            torch.cuda.synchronize()
        cost.seconds = time.perf_counter() - start


@contextmanager
def peak_memory(device: torch.device | str | None = None) -> Iterator[Cost]:
    """``with peak_memory(device) as cost: ...`` fills ``cost.peak_memory_mb``/``memory_kind`` (see the module rule)."""
    cost = Cost()
    cuda = device is not None and torch.device(device).type == "cuda"
    release_freed_memory()
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        cost.memory_kind = "cuda-allocated-peak-above-baseline"
    elif _reset_cpu_peak():
        base = _status_mb("VmRSS")
        cost.memory_kind = "cpu-rss-peak-above-baseline"
    else:
        cost.memory_kind = "not measured (needs CUDA or Linux /proc)"
    try:
        yield cost
    finally:
        if cuda:
            torch.cuda.synchronize()
            cost.peak_memory_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
        elif cost.memory_kind.startswith("cpu"):
            cost.peak_memory_mb = max(0.0, _status_mb("VmHWM") - base)


def run_time_efficiency(retrain_seconds: float, method_seconds: float) -> float:
    """RTE = t_retrain / t_method (METHODS.md); NaN when either time is unknown or zero."""
    if not retrain_seconds or not method_seconds or method_seconds <= 0 or math.isnan(retrain_seconds):
        return math.nan
    return retrain_seconds / method_seconds
