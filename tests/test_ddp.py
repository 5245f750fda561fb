"""One fit across several devices (issue 12): ``runtime.devices=2`` on CPU (gloo, ``ddp_spawn``).

The fits (pretraining and the method) run in 2 spawned worker processes with the profile's *global* batch split
over them; planning, evaluation and writing happen once, in the runner's process. Checked: one record, written once,
with ``world_size`` 2 and the per-device batch, a finite recognised rate, and the original trained data-parallel
(its cached metadata says world size 2 and batch 64 per device of 128) and written once into the cache.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import unlearnbench.foundation.cache as cache_module
import unlearnbench.orchestration.runner as runner_module
from unlearnbench.foundation.config import ConfigError, load_profile
from unlearnbench.foundation.pretraining import diffusion_dir
from unlearnbench.orchestration.runner import BenchmarkRunner

DDP = ["runtime.devices=2", "runtime.strategy=ddp_spawn", "runtime.accelerator=cpu"]
TINY = ["runtime.progress=false", "runtime.logger=none", "runtime.isolate_runs=false", "runtime.num_threads=1",
        "pretrain.steps=20", "pretrain.warmup_steps=5", "unlearning.steps=3", "unlearning.methods=[ga]",
        "unlearning.include_original=false", "evaluation.forget_samples=8", "evaluation.retain_samples_per_class=2",
        "evaluation.relearn_steps=0"]


def ddp_profile(tmp_path: Path, *extra: str):
    return load_profile("smoke", [f"runtime.output_dir={tmp_path / 'out'}", f"runtime.cache_dir={tmp_path / 'cache'}",
                                  *TINY, *DDP, *extra])


def test_two_device_run_writes_one_record_once(tmp_path, monkeypatch):
    profile = ddp_profile(tmp_path)
    writes: list[Path] = []
    real_write = runner_module.write_json_atomic

    def counting_write(path, data):
        writes.append(Path(path))
        return real_write(path, data)

    monkeypatch.setattr(runner_module, "write_json_atomic", counting_write)
    saves: list[Path] = []
    real_directory = cache_module.atomic_directory

    def counting_directory(final):
        saves.append(Path(final))
        return real_directory(final)

    monkeypatch.setattr("unlearnbench.foundation.pretraining.atomic_directory", counting_directory)
    runner = BenchmarkRunner(profile)
    records = runner.run()

    assert len(records) == 1
    record = records[0]
    assert record["status"] == "ok", record.get("error")
    assert record["world_size"] == 2 and record["per_device_batch_size"] == profile.unlearning.batch_size // 2
    assert math.isfinite(record["recognised_rate"])
    record_files = list(runner.runs_dir.glob("*.json"))
    assert len(record_files) == 1
    assert [w for w in writes if w.parent == runner.runs_dir] == record_files  # written once, by this process

    original = diffusion_dir(profile)
    meta = json.loads((original / "metadata.json").read_text())
    assert meta["world_size"] == 2 and meta["per_device_batch_size"] == profile.pretrain.batch_size // 2
    assert saves == [original]  # the cache entry was written once


def test_batch_not_divisible_by_devices_is_refused(tmp_path):
    profile = ddp_profile(tmp_path, "unlearning.batch_size=33")
    with pytest.raises(ConfigError, match="not divisible by runtime.devices=2"):
        BenchmarkRunner(profile).validate()
