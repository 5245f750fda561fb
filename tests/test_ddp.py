"""One fit across several devices (issue 12): ``runtime.devices=2`` on CPU (gloo, ``ddp_spawn``).

The fits (pretraining and the method) run in 2 spawned worker processes with the profile's *global* batch split
over them; planning, evaluation and writing happen once, in the runner's process, which plays global rank 0.
Checked: one record with ``world_size`` 2 and the per-device batch and a finite recognised rate, and the original
trained data-parallel (its cached metadata says world size 2 and batch 64 per device of 128).

Writes are counted in every process, the runner's and each spawned worker's, by a Python audit hook
(:func:`start_write_audit`; a worker starts it when it unpickles the Trainer, :class:`WriteAudit`) that logs every
file the process opens for writing, renames into place, removes or creates, with the worker's global rank. Only the
runner's process writes the record and the cache entry (the entry is renamed into place once). Outside anonymous
temporary files (:func:`is_scratch`) a worker of non-zero rank writes nothing at all and rank 0's worker only
pretraining's resumable checkpoint. A test with a deliberate rank-1 write shows that the audit sees it.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

import unlearnbench.foundation.trainer as trainer_module
from unlearnbench.foundation.config import ConfigError, RuntimeConfig, load_profile
from unlearnbench.foundation.pretraining import checkpoint_dir_of, diffusion_dir
from unlearnbench.foundation.trainer import FitReport, build_trainer
from unlearnbench.orchestration.runner import BenchmarkRunner

AUDIT_ENV = "UNLEARNBENCH_TEST_WRITE_AUDIT"  # the folder where audited workers log (inherited by spawned workers)
RUNNER = "runner"  # the rank logged by the runner's own process
WRITE_EVENTS = ("os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.truncate", "shutil.rmtree")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_audit_log: dict[str, int | None] = {"fd": None}  # this process's open audit log; audit hooks cannot be removed


def _written_path(event: str, args: tuple) -> str | None:
    """The path an audit event writes (a rename's destination), or None when it writes nothing; bytecode caches do
    not count."""
    if event == "open":
        path, mode, flags = args
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & WRITE_FLAGS)
    else:
        path, writing = (args[1] if event == "os.rename" else args[0]) if args else None, event in WRITE_EVENTS
    if not writing or not isinstance(path, str | bytes | os.PathLike):
        return None
    path = os.fsdecode(path)
    return None if "__pycache__" in path else path


def _log_audit(line: dict[str, Any]) -> None:
    if _audit_log["fd"] is not None:
        os.write(_audit_log["fd"], (json.dumps(line) + "\n").encode())


def _audit_hook(event: str, args: tuple) -> None:
    if _audit_log["fd"] is not None and (path := _written_path(event, args)) is not None:
        _log_audit({"event": event, "path": path})


def start_write_audit(folder: str) -> None:
    """Log every write of this process to ``<folder>/<pid>.jsonl`` from now on (the hook is added once per process;
    :func:`stop_write_audit` makes it idle)."""
    if _audit_log.get("hooked") is None:
        sys.addaudithook(_audit_hook)
        _audit_log["hooked"] = 1
    _audit_log["fd"] = os.open(os.path.join(folder, f"{os.getpid()}.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)


def stop_write_audit() -> None:
    """Close this process's audit log; the hook stays (it cannot be removed) but writes nothing."""
    fd, _audit_log["fd"] = _audit_log["fd"], None
    if fd is not None:
        os.close(fd)


def is_scratch(path: str) -> bool:
    """Whether ``path`` lies in an anonymous temporary file or folder (``tempfile``'s ``tmp…`` names directly in
    the temporary directory): where Lightning hands rank 0's weights back and libraries keep scratch space (wandb
    makes and removes two at import), never a result."""
    try:
        return Path(path).relative_to(tempfile.gettempdir()).parts[0].startswith("tmp")
    except (ValueError, IndexError):
        return False


class WriteAudit(FitReport):
    """The suite's FitReport that, unpickled in a spawned worker while ``$UNLEARNBENCH_TEST_WRITE_AUDIT`` names a
    folder, audits that worker's writes (:func:`start_write_audit`) and logs its global rank at ``setup``."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if os.environ.get(AUDIT_ENV):
            start_write_audit(os.environ[AUDIT_ENV])

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        _log_audit({"rank": trainer.global_rank})


def audited_writes(folder: Path) -> list[tuple[int | str, list[str]]]:
    """(global rank or ``"runner"``, paths written) of every audited process."""
    processes = []
    for log in sorted(folder.glob("*.jsonl")):
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        ranks = [line["rank"] for line in lines if "rank" in line]
        assert len(ranks) == 1, (log, lines)  # one fit per worker, its rank logged before any write of the fit
        processes.append((ranks[0], [line["path"] for line in lines if "path" in line]))
    return processes


@pytest.fixture
def write_audit(tmp_path, monkeypatch) -> Iterator[Path]:
    """While active, this process's writes and those of every spawned worker of a Trainer built meanwhile are
    audited into the yielded folder."""
    folder = tmp_path / "write-audit"
    folder.mkdir()
    monkeypatch.setenv(AUDIT_ENV, str(folder))
    monkeypatch.setattr(trainer_module, "FitReport", WriteAudit)
    start_write_audit(str(folder))
    _log_audit({"rank": RUNNER})
    try:
        yield folder
    finally:
        stop_write_audit()


DDP = ["runtime.devices=2", "runtime.strategy=ddp_spawn", "runtime.accelerator=cpu"]
TINY = ["runtime.progress=false", "runtime.logger=none", "runtime.isolate_runs=false", "runtime.num_threads=1",
        "pretrain.steps=20", "pretrain.warmup_steps=5", "unlearning.steps=3", "unlearning.methods=[ga]",
        "unlearning.include_original=false", "evaluation.forget_samples=8", "evaluation.retain_samples_per_class=2",
        "evaluation.relearn_steps=0"]


def ddp_profile(tmp_path: Path, *extra: str):
    return load_profile("smoke", [f"runtime.output_dir={tmp_path / 'out'}", f"runtime.cache_dir={tmp_path / 'cache'}",
                                  *TINY, *DDP, *extra])


def test_two_device_run_writes_only_in_the_runner_process(tmp_path, write_audit):
    profile = ddp_profile(tmp_path)
    runner = BenchmarkRunner(profile)
    records = runner.run()

    assert len(records) == 1
    record = records[0]
    assert record["status"] == "ok", record.get("error")
    assert record["world_size"] == 2 and record["per_device_batch_size"] == profile.unlearning.batch_size // 2
    assert math.isfinite(record["recognised_rate"])
    record_files = list(runner.runs_dir.glob("*.json"))
    assert len(record_files) == 1
    original = diffusion_dir(profile)
    meta = json.loads((original / "metadata.json").read_text())
    assert meta["world_size"] == 2 and meta["per_device_batch_size"] == profile.pretrain.batch_size // 2

    processes = audited_writes(write_audit)
    assert sorted(map(str, (rank for rank, _ in processes))) == ["0", "0", "1", "1", RUNNER]  # both fits, both ranks
    runner_writes = next(paths for rank, paths in processes if rank == RUNNER)
    assert str(record_files[0]) in runner_writes  # the record: written by the runner's process
    assert runner_writes.count(str(original)) == 1  # the cache entry: renamed into place once, by it
    workers = [(rank, [p for p in paths if not is_scratch(p)]) for rank, paths in processes if rank != RUNNER]
    assert [paths for rank, paths in workers if rank != 0] == [[], []]  # rank 1 writes nothing
    checkpoints = checkpoint_dir_of(original)  # pretraining's resumable checkpoint: the training process writes it
    assert [p for _, paths in workers for p in paths if not Path(p).is_relative_to(checkpoints)] == []


def test_batch_not_divisible_by_devices_is_refused(tmp_path):
    profile = ddp_profile(tmp_path, "unlearning.batch_size=33")
    with pytest.raises(ConfigError, match="not divisible by runtime.devices=2"):
        BenchmarkRunner(profile).validate()


class WritesOnRankOne(L.LightningModule):
    """One linear layer whose first training step writes a file on global rank 1 (the write the audit must see)."""

    def __init__(self, target: str):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.target = target

    def training_step(self, batch, batch_idx):
        if self.global_rank == 1 and batch_idx == 0:
            Path(self.target).write_text("rank 1 was here")
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=2)


def test_the_write_audit_sees_a_write_of_a_non_zero_rank(tmp_path, write_audit):
    target = tmp_path / "rank1.txt"
    runtime = RuntimeConfig(accelerator="cpu", devices=2, strategy="ddp_spawn", progress=False, num_threads=1)
    build_trainer(runtime, max_steps=1).fit(WritesOnRankOne(str(target)))

    processes = audited_writes(write_audit)
    assert target.read_text() == "rank 1 was here" and not is_scratch(str(target))
    assert sorted(map(str, (rank for rank, _ in processes))) == ["0", "1", RUNNER]
    assert str(target) in next(paths for rank, paths in processes if rank == 1)
    assert str(target) not in next(paths for rank, paths in processes if rank == RUNNER)
