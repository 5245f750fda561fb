"""``unlearnbench launch``: a profile's plan spread over processes, GPUs or machines, one job per run (submitit).

1. **Plan where the jobs run.** A run's key hashes the hardware it runs on (device, CPU threads, …), so the plan
   is made with the jobs' settings: in this process for ``--executor local`` (same machine, the jobs' thread
   count), in one short job on the partition for ``--executor slurm`` (a login node's hardware is not the compute
   nodes').
2. **One job per pending run key**, each a fresh process that calls :func:`run_job`, i.e.
   :meth:`~unlearnbench.orchestration.runner.BenchmarkRunner.run_keys` exactly as ``unlearnbench run --key KEY``
   does. Slurm: one job array (``map_array``) with ``--workers`` as the array's parallelism. Local
   (``submitit.LocalExecutor``): at most ``--workers`` jobs at once, each on its own GPU when there are GPUs.
3. **Wait**, report every failed run with its job's log files, then rebuild the leaderboard from the records.

When the original model is not cached yet, step 2 runs in two stages (:func:`stages`): one job trains it, then the
others start, so that no worker holds a GPU for a whole pretraining while it waits for that model.

All jobs share one output folder and one cache folder. A prerequisite model (the original, each Retrain) and the
FID statistics are built by one worker while the others wait and load it
(:func:`unlearnbench.foundation.cache.load_or_build`); every run is computed under its own lock, and records and tables
are written atomically. A rerun of the same command submits only the runs that are not done.

**Threads.** Unless you set ``runtime.num_threads`` (or ``UNLEARNBENCH_THREADS``), a local job uses
max(1, cores // workers) CPU threads, so that N jobs share the machine instead of each using all of it (two jobs on
2 cores: 1 thread each); a slurm job uses ``--cpus-per-job`` threads when given. The thread count is part of the
keys on CPU: ``unlearnbench list`` and ``leaderboard`` show these runs with the same ``--set runtime.num_threads``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from unlearnbench.foundation.config import load_profile
from unlearnbench.foundation.trainer import worker_threads


@dataclass
class LaunchOptions:
    """How to run the jobs.

    Attributes:
        executor: ``local`` (processes on this machine) or ``slurm``.
        workers: jobs at once (local: default 1; slurm: the array's parallelism, default unlimited).
        partition: the slurm partition.
        timeout_min: the time limit of one job.
        gpus_per_job: GPUs per job (default: 1 on slurm unless ``--device cpu``; locally 1 when this machine's
            plan runs on CUDA, else 0).
        cpus_per_job: slurm CPUs per task (also the jobs' ``runtime.num_threads`` unless set).
        poll_seconds: how often finished jobs are looked for.
    """

    executor: Literal["local", "slurm"]
    workers: int | None = None
    partition: str | None = None
    timeout_min: int = 24 * 60
    gpus_per_job: int | None = None
    cpus_per_job: int | None = None
    poll_seconds: float = 2.0


@dataclass
class Plan:
    """The plan as seen where the jobs run: every run (``unlearnbench list`` rows), the keys to run, the protocol
    line of the leaderboard and the machine the keys carry."""

    profile: str
    rows: list[dict[str, Any]]
    todo: list[str]
    protocol: str
    machine: str
    device_type: str
    out_dir: str
    original_cached: bool = True


def plan_runs(profile: str, overrides: list[str], pretrained: str | None = None, force: bool = False) -> Plan:
    """Plan the profile here (a job on the partition for slurm): rows, pending keys, protocol and machine."""
    from unlearnbench.foundation.pretraining import diffusion_dir
    from unlearnbench.orchestration.runner import make_runner

    runner = make_runner(profile, overrides, pretrained, force)
    _, specs = runner.validate()
    return Plan(profile=runner.profile.name, rows=runner.listing(specs), todo=[s.key for s in runner.pending(specs)],
                protocol=runner.protocol_text(specs), machine=runner.machine_text(), device_type=runner.device.type,
                out_dir=str(runner.out_dir),
                original_cached=bool(pretrained) or (diffusion_dir(runner.profile) / "metadata.json").is_file())


def stages(plan: Plan) -> list[list[str]]:
    """The pending keys in the order that trains the shared original model without idle workers.

    Every run needs the original. When it is not cached yet, one job builds it first (the original's reference row
    when pending, else the first pending run), alone, and the other runs are submitted once it is done: otherwise
    every worker of the first wave would hold its GPU for the whole pretraining, waiting on the original's lock.
    Retrain models need no stage of their own: each is used only by the Retrain runs of its forget class.
    """
    from unlearnbench.orchestration.runner import ORIGINAL

    if plan.original_cached or len(plan.todo) <= 1:
        return [list(plan.todo)] if plan.todo else []
    labels = {r["key"]: r["label"] for r in plan.rows}
    first = next((k for k in plan.todo if labels.get(k) == ORIGINAL), plan.todo[0])
    return [[first], [k for k in plan.todo if k != first]]


def run_job(profile: str, overrides: list[str], pretrained: str | None, force: bool, key: str) -> dict[str, str]:
    """One launched job: exactly the run with this key, as ``unlearnbench run --key KEY`` (the same
    :meth:`~unlearnbench.orchestration.runner.BenchmarkRunner.run_keys`); returns its status and error."""
    from unlearnbench.orchestration.runner import make_runner

    record = make_runner(profile, overrides, pretrained, force).run_keys([key])[0]
    return {"key": key, "status": str(record.get("status", "no record")), "error": str(record.get("error", ""))}


# -- settings of the jobs -------------------------------------------------------------------------------------------
def job_overrides(profile: str, overrides: list[str], options: LaunchOptions) -> list[str]:
    """The user's overrides, plus absolute output and cache folders (every job finds the same ones whatever its
    working directory) and the jobs' CPU thread count unless the user set one (profile, ``--set`` or
    ``UNLEARNBENCH_THREADS``)."""
    loaded = load_profile(profile, overrides)
    rt = loaded.runtime
    extra = [f"runtime.output_dir={Path(rt.output_dir).expanduser().resolve()}",
             f"runtime.cache_dir={Path(rt.cache_dir).expanduser().resolve()}"]
    if rt.num_threads is None and not os.environ.get("UNLEARNBENCH_THREADS"):
        threads = worker_threads(options.workers or 1) if options.executor == "local" else options.cpus_per_job
        if threads:
            extra.append(f"runtime.num_threads={threads}")
    if options.executor == "local":  # each job computes one run; its record says how many ran beside it
        extra.append(f"runtime.workers={options.workers or 1}")
    return [*overrides, *extra]


def threads_of(overrides: list[str]) -> int | None:
    """The ``runtime.num_threads`` the overrides set last (``None`` if none)."""
    values = [o.partition("=")[2] for o in overrides if o.partition("=")[0].strip() == "runtime.num_threads"]
    return int(values[-1]) if values and values[-1].strip().isdigit() else None


@contextmanager
def job_environment(threads: int | None) -> Iterator[None]:
    """While jobs are submitted: their OpenMP/MKL pools have the jobs' thread count (unless already set). Jobs run
    this interpreter (``sys.executable``), so they import the suite installed in it."""
    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if threads:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, str(threads))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def local_gpus() -> list[int]:
    """The GPU indices this machine offers to local jobs (``CUDA_VISIBLE_DEVICES`` when it lists indices)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and all(v.strip().isdigit() for v in visible.split(",") if v.strip()):
        return [int(v) for v in visible.split(",") if v.strip()]
    import torch

    return list(range(torch.cuda.device_count()))


def make_executor(options: LaunchOptions, folder: Path, gpus_per_job: int):
    """A submitit executor writing its job files and logs under ``folder``."""
    import submitit

    if options.executor == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=options.timeout_min, gpus_per_node=gpus_per_job)
        return executor
    executor = submitit.SlurmExecutor(folder=folder)
    params: dict[str, Any] = {"time": options.timeout_min, "nodes": 1, "ntasks_per_node": 1, "job_name": "unlearnbench"}
    if gpus_per_job:
        params["gpus_per_node"] = gpus_per_job
    if options.partition:
        params["partition"] = options.partition
    if options.cpus_per_job:
        params["cpus_per_task"] = options.cpus_per_job
    if options.workers:
        params["array_parallelism"] = options.workers
    executor.update_parameters(**params)
    return executor


# -- running and watching jobs --------------------------------------------------------------------------------------
def drive(submit: Callable[[int, int], Any], count: int, workers: int, on_done: Callable[[int, Any], None],
          poll_seconds: float = 2.0, sleep: Callable[[float], None] = time.sleep) -> list[Any]:
    """Keep at most ``workers`` of ``count`` jobs running: ``submit(slot, index)`` starts job ``index`` in a free
    slot (0 … workers − 1); ``on_done(index, job)`` is called once per finished job. Returns the jobs in index
    order, all finished. (Jobs already submitted elsewhere, e.g. a slurm array: ``submit`` returns them and
    ``workers = count``.)"""
    jobs: list[Any] = [None] * count
    running: dict[int, int] = {}  # slot -> index
    upcoming = 0
    while upcoming < count or running:
        for slot, index in list(running.items()):
            if jobs[index].done():
                del running[slot]
                on_done(index, jobs[index])
        for slot in range(max(1, workers)):
            if slot not in running and upcoming < count:
                jobs[upcoming] = submit(slot, upcoming)
                running[slot] = upcoming
                upcoming += 1
        if running:
            sleep(poll_seconds)
    return jobs


def job_outcome(job: Any) -> tuple[str, str]:
    """(the run's status, error): from the job's result, or ``failed`` with the last line of the job's error (a
    crash, a timeout, a key that is not in the plan where the job ran)."""
    try:
        result = job.result()
    except Exception as err:  # noqa: BLE001 - every way a job can fail is reported the same way
        lines = [line.strip() for line in str(err).splitlines()]
        lines = lines[:next((i for i, line in enumerate(lines) if line.startswith("You can check full logs")),
                            len(lines))]
        text = next((line for line in reversed(lines) if line and not line.startswith("-")), type(err).__name__)
        return "failed", text
    return result["status"], result.get("error", "")


class Report:
    """Called once per finished job: prints it (with its log files when it failed) and keeps the failed keys."""

    def __init__(self, plan: Plan, say: Callable[[str], None]) -> None:
        self.plan, self.say = plan, say
        self.rows = {r["key"]: r for r in plan.rows}
        self.failures: list[str] = []
        self.keys = plan.todo  # the keys of the stage being run, in submission order

    def __call__(self, index: int, job: Any) -> None:
        key = self.keys[index]
        row = self.rows[key]
        status, error = job_outcome(job)
        what = f"{row['label']}, forget class {row['forget_class']}, seed {row['seed']} [{key}]"
        if status == "ok":
            self.say(f"done: {what}")
            return
        self.failures.append(key)
        self.say(f"FAILED: {what}: {error}\n    logs: {job.paths.stdout} {job.paths.stderr}")


def run_local(executor: Any, args: tuple, keys: list[str], workers: int, gpus: int, report: Report,
              poll_seconds: float) -> None:
    """At most ``workers`` local jobs at once, slot k on its own GPU(s) when ``gpus`` > 0; an interrupted launch
    cancels its running jobs (finished records are kept)."""
    gpu_ids = local_gpus() if gpus else []
    started: list[Any] = []

    def submit(slot: int, index: int) -> Any:
        if gpu_ids:  # slot k gets GPUs k·g … k·g + g − 1 (modulo the GPUs there are)
            executor.update_parameters(visible_gpus=[gpu_ids[(slot * gpus + i) % len(gpu_ids)] for i in range(gpus)])
        started.append(executor.submit(run_job, *args, keys[index]))
        return started[-1]

    try:
        drive(submit, len(keys), workers, report, poll_seconds)
    except BaseException:
        for job in started:
            if not job.done():
                job.cancel(check=False)
        raise


def run_slurm(executor: Any, args: tuple, keys: list[str], report: Report, poll_seconds: float) -> None:
    """One job array (its parallelism was set on the executor), watched until every job has finished."""
    array = executor.map_array(run_job, *[[a] * len(keys) for a in args], keys)
    drive(lambda slot, index: array[index], len(array), len(array), report, poll_seconds)


def launch(profile: str, overrides: list[str], options: LaunchOptions, pretrained: str | None = None,
           force: bool = False, stream=None) -> int:
    """``unlearnbench launch``: plan, one job per pending run, wait, report failures, rebuild the leaderboard.
    Returns 0 when every run is done, 1 when some failed (the leaderboard shows them)."""
    from unlearnbench.orchestration.run_logging import log_leaderboard
    from unlearnbench.orchestration.runner import write_plan_leaderboard

    stream = stream or sys.stderr
    if options.workers is not None and options.workers < 1:
        raise ValueError(f"--workers {options.workers}: give at least 1")
    if Path(profile).suffix in (".yaml", ".yml") and Path(profile).is_file():  # jobs may start elsewhere
        profile = str(Path(profile).resolve())
    pretrained = str(Path(pretrained).expanduser().resolve()) if pretrained else None
    user_overrides, overrides = overrides, job_overrides(profile, overrides, options)
    threads = threads_of(overrides)
    loaded = load_profile(profile, overrides)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = Path(loaded.runtime.output_dir) / loaded.name / "launch" / stamp
    args = (profile, overrides, pretrained, force)

    def say(message: str) -> None:
        print(f"[launch] {message}", file=stream, flush=True)

    with job_environment(threads):
        if options.executor == "slurm":
            on_gpu = loaded.runtime.accelerator != "cpu"
            gpus = options.gpus_per_job if options.gpus_per_job is not None else int(on_gpu)
            executor = make_executor(options, folder, gpus)
            planner = executor.submit(plan_runs, *args)
            say(f"planning on the partition (job {planner.job_id}, logs {planner.paths.stderr})")
            plan = planner.result()
        else:
            plan = plan_runs(*args)
            gpus = options.gpus_per_job if options.gpus_per_job is not None else int(plan.device_type == "cuda")
            executor = make_executor(options, folder, gpus)
        workers = options.workers or (1 if options.executor == "local" else len(plan.todo))
        say(f"{len(plan.rows)} runs in the plan, {len(plan.rows) - len(plan.todo)} done, {len(plan.todo)} to run "
            f"as {options.executor} jobs, {workers} at once" + (f", {threads} CPU thread(s) each" if threads else "")
            + f"; {plan.machine}; job logs in {folder}")
        report = Report(plan, say)
        planned = stages(plan)
        for number, keys in enumerate(planned, 1):
            if len(planned) > 1:
                say(f"stage {number}/{len(planned)}: " + ("one job trains the original model (the others wait for "
                                                          "it, not on it)" if number == 1 else f"{len(keys)} jobs"))
            report.keys = keys
            if options.executor == "slurm":
                run_slurm(executor, args, keys, report, options.poll_seconds)
            else:
                run_local(executor, args, keys, workers, gpus, report, options.poll_seconds)

    records, _ = write_plan_leaderboard(plan.out_dir, plan.profile, set(report.rows), protocol=plan.protocol)
    log_leaderboard(loaded, Path(plan.out_dir), records, plan.protocol)
    say(f"{len(plan.todo) - len(report.failures)} of {len(plan.todo)} jobs done, {len(report.failures)} failed; "
        f"{len(records)} of the plan's {len(plan.rows)} runs have a record; leaderboard in "
        f"{Path(plan.out_dir) / 'leaderboard.md'}")
    if threads and plan.device_type == "cpu" and threads_of(user_overrides) != threads:
        say(f"these runs' keys carry runtime.num_threads={threads}: give `--set runtime.num_threads={threads}` to "
            "`unlearnbench list` and `unlearnbench leaderboard`")
    return 1 if report.failures else 0
