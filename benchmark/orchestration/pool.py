"""Several runs of a plan at once on this machine (``runtime.workers`` > 1): long-lived worker processes.

Each worker is a fresh (``spawn``) process that builds the same runner once — data, yardstick, original, the one
evaluator — and then computes runs one after another with :meth:`BenchmarkRunner.compute
<unlearnbench.orchestration.runner.BenchmarkRunner.compute>`, exactly as the serial loop does: each run under its
lock, each method's unlearning in its own child process (so its peak memory is still measured without what ran
before it), each record written atomically. On CPU every worker (and its children) uses
:func:`~unlearnbench.foundation.trainer.worker_threads` threads, the count every key of the plan carries; on CUDA
each worker gets its own GPU. The parent keeps at most ``workers`` runs in flight, so it knows when each starts,
and prints the same lines as the serial loop; progress bars are off in the workers (two would overwrite each other).
A runner stopped by a signal (``kill``) takes its workers and their unlearning children with it: each exits once the
process it works for is gone (:mod:`unlearnbench.foundation.parent_watch`).

Order: Retrain runs first (they are the longest, and every other run's attack excess is read against Retrain's
record: a run that finishes while its Retrain is still being computed waits for that record,
:meth:`~unlearnbench.orchestration.runner.BenchmarkRunner.excess_over_retrain`).

Measured on the default ``mnist`` profile's UNet (2-core CPU, batch 128): a bare training step takes 0.224 s in one
2-thread process and 0.313 s in each of two single-thread processes at once (1.43x the throughput); Lightning's
training 1.33x; two Retrains side by side in ``make bench`` 1.2x (README, "Two runs at once").
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from unlearnbench.foundation.config import Profile
from unlearnbench.foundation.parent_watch import exit_when_gone

if TYPE_CHECKING:
    from unlearnbench.orchestration.progress import StageLog
    from unlearnbench.orchestration.runner import BenchmarkRunner, RunSpec

_WORKER: dict[str, Any] = {}  # this worker process's runner, plan and workspace (set by _start_worker)


def _start_worker(runner_pid: int, profile: Profile, pretrained: str | None, force: bool, gpu_slots: Any) -> None:
    """A worker's set-up, once: the watch on its runner (a worker exits when the runner is gone,
    :func:`~unlearnbench.foundation.parent_watch.exit_when_gone`), its GPU (``CUDA_VISIBLE_DEVICES``, before CUDA
    starts), then the runner, the plan and the shared inputs."""
    exit_when_gone(runner_pid)  # a runner stopped by a signal takes its workers with it
    gpu = gpu_slots.get() if gpu_slots is not None else None
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    from unlearnbench.foundation.pretraining import load_original
    from unlearnbench.orchestration.runner import BenchmarkRunner

    runner = BenchmarkRunner(profile, force=force, pretrained=pretrained)
    data, specs = runner.validate()
    original, _ = load_original(profile, pretrained)
    _WORKER.update(runner=runner, specs={s.key: s for s in specs}, workspace=runner.workspace(data, original))


def _compute(key: str) -> dict:
    """One run in this worker (the serial loop's body); returns its record."""
    return _WORKER["runner"].compute(_WORKER["specs"][key], _WORKER["workspace"])


def worker_profile(profile: Profile) -> Profile:
    """The profile the workers run: the same, without progress bars (not part of any key)."""
    return dataclasses.replace(profile, runtime=dataclasses.replace(profile.runtime, progress=False))


def run_in_workers(runner: BenchmarkRunner, todo: list[RunSpec], workers: int, stages: StageLog,
                   class_names: list[str]) -> None:
    """Compute ``todo`` (in its order) on ``workers`` worker processes, printing a line when each run starts and
    one with its scores when it ends. A worker that dies (not a failed run, which is recorded as failed) stops the
    plan with a RuntimeError; records already written are kept, and a rerun resumes."""
    from unlearnbench.orchestration.runner import run_summary

    ctx = multiprocessing.get_context("spawn")
    gpu_slots = None
    if runner.device.type == "cuda":
        from unlearnbench.orchestration.launcher import local_gpus

        gpu_slots = ctx.Queue()
        for gpu in local_gpus()[:workers]:  # the launcher's rule: CUDA_VISIBLE_DEVICES' indices, else every GPU
            gpu_slots.put(gpu)
    number = {s.key: i for i, s in enumerate(todo, 1)}  # ``todo`` is in the runner's order: Retrain first
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_start_worker,
                             initargs=(os.getpid(), worker_profile(runner.profile), runner.pretrained, runner.force,
                                       gpu_slots)) as pool:
        upcoming = list(todo)
        running: dict[Future, RunSpec] = {}
        try:
            while upcoming or running:
                while upcoming and len(running) < workers:
                    spec = upcoming.pop(0)
                    stages.say(runner.run_line(number[spec.key], len(todo), spec, class_names))
                    running[pool.submit(_compute, spec.key)] = spec
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    spec = running.pop(future)
                    stages.say(f"  {spec.label} (run {number[spec.key]}): " + run_summary(future.result()))
        except BrokenProcessPool as err:
            raise RuntimeError(f"a worker process died ({err}); the records written so far are kept: rerun the "
                               "same command to resume, or set runtime.workers=1 to compute one run at a time"
                               ) from None
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
