"""Past one machine (issue 12): `unlearnbench list`, `run --key`, `launch` with two local workers on one shared
output and cache folder, and the cache lock that makes a second builder wait and load."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from pathlib import Path

import pandas as pd

from unlearnbench.foundation.cache import cache_lock, load_or_build, write_text_atomic
from unlearnbench.foundation.config import load_profile
from unlearnbench.foundation.trainer import worker_threads
from unlearnbench.orchestration.cli import main
from unlearnbench.orchestration.launcher import (
    LaunchOptions,
    Plan,
    drive,
    job_overrides,
    make_executor,
    stages,
    threads_of,
)
from unlearnbench.orchestration.runner import BenchmarkRunner

# tiny and quick: the committed yardstick, a 60-step original, 3 unlearning steps, a handful of samples, in-process
TINY = ["runtime.progress=false", "runtime.logger=none", "runtime.isolate_runs=false", "runtime.num_threads=1",
        "pretrain.steps=60", "pretrain.warmup_steps=10", "unlearning.steps=3", "evaluation.forget_samples=8",
        "evaluation.retain_samples_per_class=2", "evaluation.relearn_samples=8"]


def plan_args(out: Path, cache: str | Path, *extra: str) -> list[str]:
    return ["--profile", "smoke", "--output-dir", str(out), "--cache-dir", str(cache), *extra, "--set", *TINY]


def listed(args: list[str], capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["list", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_list_shows_every_planned_run_with_its_status(tmp_path, session_cache, capsys):
    args = plan_args(tmp_path, session_cache, "--methods", "safemax,ga", "--seeds", "0,1")
    rows = listed(args, capsys)
    profile = load_profile("smoke", [f"runtime.output_dir={tmp_path}", f"runtime.cache_dir={session_cache}",
                                     "unlearning.methods=[safemax,ga]", "unlearning.seeds=[0,1]", *TINY])
    runner = BenchmarkRunner(profile)
    specs = runner.validate()[1]
    assert [(r["key"], r["label"], r["forget_class"], r["seed"]) for r in rows] == [
        (s.key, s.label, s.forget_class, s.seed) for s in specs]
    assert len(rows) == 6 and {r["label"] for r in rows} == {"original", "safemax", "ga"}
    assert all(r["status"] == "pending" for r in rows)

    # one finished run, one failed run: list reads them from the records (nothing is computed)
    for spec, status in ((specs[1], "ok"), (specs[2], "failed")):
        runner.record_path(spec).parent.mkdir(parents=True, exist_ok=True)
        runner.record_path(spec).write_text(json.dumps({"run_key": spec.key, "status": status}))
    assert main(["list", *args]) == 0
    printed = capsys.readouterr()
    lines = printed.out.strip().splitlines()
    assert lines[0].split() == ["key", "label", "forget_class", "seed", "status"] and len(lines) == 7
    status = {line.split()[0]: line.split()[-1] for line in lines[1:]}
    assert status == {s.key: "done" if s is specs[1] else "failed" if s is specs[2] else "pending" for s in specs}
    assert "6 runs: 1 done, 1 failed, 4 pending" in printed.err


def test_run_by_key_runs_exactly_that_run_and_an_unknown_key_fails_in_one_line(tmp_path, session_cache, capsys):
    args = plan_args(tmp_path, session_cache, "--methods", "ga", "--seeds", "0,1")
    rows = listed(args, capsys)
    key = next(r["key"] for r in rows if r["label"] == "ga" and r["seed"] == 1)
    assert main(["run", "--key", key, *args]) == 0
    out = tmp_path / "smoke"
    records = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    assert [(r["run_key"], r["status"]) for r in records] == [(key, "ok")], [r.get("error") for r in records]
    assert not (out / "leaderboard.md").exists(), "run --key wrote more than its record"
    assert [r["status"] for r in listed(args, capsys)] == ["pending", "pending", "pending", "done"]

    assert main(["run", "--key", key, *args]) == 0  # done: nothing is recomputed
    assert "1 of the 4 runs chosen, 1 already done, 0 to run" in capsys.readouterr().err

    assert main(["run", "--key", "0123456789abcdef", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "0123456789abcdef" in err and "unlearnbench list --profile smoke" in err


def stage_lines(folder: Path, text: str) -> int:
    return sum(log.read_text().count(text) for log in folder.rglob("*_log.err"))


def test_two_local_workers_share_one_grid_and_build_each_model_once(tmp_path, monkeypatch, capsys):
    """Two submitit jobs at once against one output and one (empty) cache folder: each run computed once, the
    original and the shared Retrain model trained once (the other job waits for them and loads them), and the
    leaderboard is the one a single process makes."""
    cache = tmp_path / "cache"
    extra = ("--methods", "retrain", "--seeds", "0,1")
    args = [*plan_args(tmp_path / "shared", cache, *extra), "unlearning.include_original=false"]
    assert main(["launch", "--executor", "local", "--workers", "2", *args]) == 0
    out = tmp_path / "shared" / "smoke"
    printed = capsys.readouterr()
    assert "2 runs in the plan, 0 done, 2 to run as local jobs, 2 at once" in printed.err

    records = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    keys = [r["key"] for r in listed(args, capsys)]
    assert sorted(r["run_key"] for r in records) == sorted(keys) and len(keys) == 2
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
    logs = out / "launch"
    for key in keys:  # each run was computed by exactly one job
        assert sum(log.read_text().count(f"[{key}]") for log in logs.rglob("*_log.err")) == 1, key
    # the original: trained by one job, loaded by the other; one cache entry
    assert stage_lines(logs, "done: trained (training took") == 1
    assert stage_lines(logs, "done: cached (training took") == 1
    assert len([p for p in (cache / "original").iterdir() if p.is_dir()]) == 1
    # Retrain (one model for both seeds): trained once, and the run that waited reports the recorded cost
    assert sorted(r["cached"] for r in records) == [False, True]
    assert len([p for p in (cache / "retrain").iterdir() if p.is_dir()]) == 1
    assert records[0]["peak_memory_mb"] == records[1]["peak_memory_mb"] and math.isfinite(
        records[0]["peak_memory_mb"])
    assert records[0]["unlearn_seconds"] == records[1]["unlearn_seconds"]

    # the same plan in one process (models now cached): the same leaderboard
    single = load_profile("smoke", [f"runtime.output_dir={tmp_path / 'single'}", f"runtime.cache_dir={cache}",
                                    "unlearning.methods=[retrain]", "unlearning.seeds=[0,1]",
                                    "unlearning.include_original=false", *TINY])
    BenchmarkRunner(single).run()
    pd.testing.assert_frame_equal(pd.read_csv(out / "leaderboard.csv"),
                                  pd.read_csv(tmp_path / "single" / "smoke" / "leaderboard.csv"))


def _build_once(entry: str, log: str, barrier) -> None:
    """A worker whose "artefact" takes a second to build (runs in a forked process)."""

    def load() -> str | None:
        return Path(entry).read_text() if Path(entry).is_file() else None

    def build() -> str:
        with open(log, "a") as f:
            f.write(f"build {os.getpid()}\n")
        time.sleep(1.0)
        write_text_atomic(entry, f"built by {os.getpid()}")
        return load()

    barrier.wait()
    value = load_or_build(entry, load, build)
    with open(log, "a") as f:
        f.write(f"got {value}\n")


def test_a_second_builder_waits_for_the_first_and_loads_its_artefact(tmp_path, capfd):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    entry, log = str(tmp_path / "cache" / "artefact"), str(tmp_path / "log.txt")
    workers = [ctx.Process(target=_build_once, args=(entry, log, barrier)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]
    lines = Path(log).read_text().splitlines()
    builds = [line for line in lines if line.startswith("build")]
    got = {line for line in lines if line.startswith("got")}
    assert len(builds) == 1, lines  # without the lock both would build
    assert got == {f"got built by {builds[0].split()[1]}"}, lines  # both hold the one artefact
    assert "another worker holds it" in capfd.readouterr().err  # the second one waited for it


def test_the_lock_is_reentrant_in_its_thread(tmp_path):
    entry = tmp_path / "entry"
    with cache_lock(entry):
        with cache_lock(entry):  # e.g. Retrain holds its entry while train_or_load_diffusion takes it again
            pass
        assert load_or_build(entry, lambda: None, lambda: "built") == "built"


class FakeJob:
    """Finishes after a few polls."""

    def __init__(self, polls: int) -> None:
        self.left = polls

    def done(self) -> bool:
        self.left -= 1
        return self.left < 0


def test_drive_keeps_at_most_workers_jobs_running():
    running, most, slots, finished = set(), 0, set(), []

    def submit(slot: int, index: int) -> FakeJob:
        nonlocal most
        assert slot not in slots, "a busy slot was given a second job"
        running.add(index)
        slots.add(slot)
        most = max(most, len(running))
        job = FakeJob(polls=index % 3)
        job.slot = slot
        return job

    def on_done(index: int, job: FakeJob) -> None:
        running.discard(index)
        slots.discard(job.slot)
        finished.append(index)

    jobs = drive(submit, 7, 2, on_done, poll_seconds=0.0, sleep=lambda s: None)
    assert most == 2 and sorted(finished) == list(range(7)) and not running
    assert all(isinstance(j, FakeJob) for j in jobs)


def test_local_workers_share_the_cores_unless_threads_are_set(monkeypatch):
    assert [worker_threads(w, cores=2) for w in (1, 2, 4)] == [2, 1, 1]
    assert worker_threads(2, cores=16) == 8
    monkeypatch.delenv("UNLEARNBENCH_THREADS", raising=False)
    local = LaunchOptions("local", workers=2)
    overrides = job_overrides("smoke", ["runtime.output_dir=out"], local)
    assert threads_of(overrides) == worker_threads(2)
    assert f"runtime.output_dir={Path('out').resolve()}" in overrides  # every job finds the same folder
    assert threads_of(job_overrides("smoke", ["runtime.num_threads=3"], local)) == 3  # the user's setting wins
    monkeypatch.setenv("UNLEARNBENCH_THREADS", "5")
    assert threads_of(job_overrides("smoke", [], local)) is None  # the environment's setting wins too
    monkeypatch.delenv("UNLEARNBENCH_THREADS")
    assert threads_of(job_overrides("smoke", [], LaunchOptions("slurm", cpus_per_job=8))) == 8


def test_slurm_jobs_get_the_partition_time_limit_and_parallelism(tmp_path, monkeypatch):
    import submitit

    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # pretend srun exists
    options = LaunchOptions("slurm", workers=4, partition="gpu", timeout_min=90, cpus_per_job=8)
    executor = make_executor(options, tmp_path, gpus_per_job=1)
    assert {k: executor.parameters[k] for k in ("partition", "time", "array_parallelism", "gpus_per_node",
                                                "cpus_per_task")} == {"partition": "gpu", "time": 90,
                                                                      "array_parallelism": 4, "gpus_per_node": 1,
                                                                      "cpus_per_task": 8}


def test_an_uncached_original_is_trained_by_one_job_before_the_others_start():
    rows = [{"key": k, "label": label} for k, label in (("a", "salun"), ("b", "original"), ("c", "retrain"))]

    def plan(todo, cached):
        return Plan("smoke", rows, todo, "", "", "cpu", "out", original_cached=cached)

    assert stages(plan(["a", "b", "c"], cached=False)) == [["b"], ["a", "c"]]  # the original's row first, alone
    assert stages(plan(["a", "c"], cached=False)) == [["a"], ["c"]]  # else the first pending run
    assert stages(plan(["a", "b", "c"], cached=True)) == [["a", "b", "c"]]  # nothing to wait for: one stage
    assert stages(plan(["c"], cached=False)) == [["c"]] and stages(plan([], cached=False)) == []
