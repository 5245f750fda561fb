"""Issue 21's faster plan: several runs at once (``runtime.workers``), children forked from a warm fork server, and
the committed original model loaded instead of trained while its recipe is the profile's; ``unlearnbench original
--commit`` makes such a folder."""

from __future__ import annotations

import json
import multiprocessing

import pytest
import torch

from unlearnbench.foundation import pretraining
from unlearnbench.foundation.config import ConfigError, RuntimeConfig, load_profile
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.pretraining import (
    ORIGINALS_ROOT,
    committed_original,
    diffusion_cache_key,
    load_original,
    original_identity,
)
from unlearnbench.foundation.provenance import directory_fingerprint, tensors_hash
from unlearnbench.foundation.trainer import configure_threads, serial_stage, serial_threads, worker_threads
from unlearnbench.methods.isolation import PRELOAD, child_context
from unlearnbench.orchestration.cli import main
from unlearnbench.orchestration.runner import BenchmarkRunner
from unlearnbench.orchestration.verify import compare

TINY = ["runtime.progress=false", "runtime.logger=none", "runtime.isolate_runs=false", "runtime.num_threads=1",
        "pretrain.steps=60", "pretrain.warmup_steps=10", "unlearning.steps=3", "evaluation.forget_samples=8",
        "evaluation.retain_samples_per_class=2", "evaluation.relearn_samples=8", "evaluation.null_samples=8",
        "unlearning.methods=[ga,retrain]", "unlearning.forget_classes=[0,1]"]
EXCESS = ("retrain_run_key", "relearn_excess", "null_excess")


def plan_records(out, session_cache, workers: int) -> dict[tuple[str, int], dict]:
    profile = load_profile("smoke", [*TINY, f"runtime.output_dir={out}", f"runtime.cache_dir={session_cache}",
                                     f"runtime.workers={workers}"])
    BenchmarkRunner(profile).run()
    records = [json.loads(p.read_text()) for p in (out / "smoke" / "runs").glob("*.json")]
    return {(r["method"], r["forget_class"]): r for r in records}


def test_runs_at_once_write_the_records_of_one_at_a_time(tmp_path, session_cache, capsys):
    parallel = plan_records(tmp_path / "two", session_cache, workers=2)  # first: Retrain is trained in a worker
    printed = capsys.readouterr().err
    serial = plan_records(tmp_path / "one", session_cache, workers=1)
    assert "2 runs at once (runtime.workers), 1 CPU thread(s) each; Retrain first" in printed
    assert len(parallel) == 6 and set(parallel) == set(serial)
    assert all(r["status"] == "ok" for r in parallel.values()), [r.get("error") for r in parallel.values()]
    for row, record in parallel.items():
        assert record["run_key"] == serial[row]["run_key"]  # the number of workers is not part of any key
        assert compare(serial[row], record, exact=True) == [], row  # every score, bit for bit
        assert (record["workers"], serial[row]["workers"]) == (2, 1)
        if row[0] != "retrain":  # each run's attack excess was read against its Retrain's record, as in series
            assert all(record[k] == serial[row][k] for k in EXCESS), row


def test_workers_share_the_cores_and_refuse_what_cannot_mix(monkeypatch):
    monkeypatch.delenv("UNLEARNBENCH_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        configure_threads(RuntimeConfig(workers=2))
        assert torch.get_num_threads() == worker_threads(2)
        configure_threads(RuntimeConfig(workers=2, num_threads=3))  # the user's thread count wins
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="runtime.workers must be >= 1"):
        RuntimeConfig(workers=0)
    with pytest.raises(ValueError, match="give one of them"):
        RuntimeConfig(workers=2, devices=2)


def test_the_original_is_trained_and_keyed_alone_beside_workers(monkeypatch):
    """With runs at once the runner's process computes on a worker's threads, but the original is pretrained alone
    before the runs start: on torch's default threads (or the user's count), and keyed with that count whatever the
    process's count is when a key is made (a run key made in a one-thread worker names the same original). Retrain,
    trained inside a worker, keeps the worker's count in its key."""
    monkeypatch.delenv("UNLEARNBENCH_THREADS", raising=False)
    profile = load_profile("smoke", ["runtime.workers=2", "pretrain.committed=null"])
    before = torch.get_num_threads()
    try:
        originals, retrains = set(), set()
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            originals.add(json.dumps(original_identity(profile)))
            retrains.add(diffusion_cache_key(profile, [1, 2, 3], 0))
            with serial_stage(profile.runtime):
                assert torch.get_num_threads() == serial_threads(profile.runtime)
            assert torch.get_num_threads() == n  # restored
        assert len(originals) == 1 and len(retrains) == 3
        assert serial_threads(profile.runtime) == serial_threads(RuntimeConfig())  # workers do not apply
        assert serial_threads(load_profile("smoke", ["runtime.workers=2", "runtime.num_threads=1"]).runtime) == 1
    finally:
        torch.set_num_threads(before)



def test_children_start_from_a_warm_fork_server():
    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork server on this platform: children are spawned")
    assert child_context().get_start_method() == "forkserver"
    assert {"torch", "lightning.pytorch", "diffusers"} <= set(PRELOAD)


def test_the_committed_original_stands_for_its_recipe_only():
    profile = load_profile("mnist")
    directory = committed_original(profile)
    assert directory == ORIGINALS_ROOT / "mnist-16px"
    assert original_identity(profile) == {"pretrained": directory_fingerprint(directory)}  # keyed by content
    meta = json.loads((directory / "metadata.json").read_text())
    model = ConditionalDiffusion.load(directory, image_size=16)
    assert tensors_hash(model.state_dict().items()) == meta["weights"]  # the weights its training recorded
    assert (meta["pretrain"]["steps"], meta["hardware"]["torch_threads"]) == (2000, 2)
    for changed in (["pretrain.steps=100"], ["pretrain.committed=null"], ["unet.block_out_channels=[32,64,64]"]):
        other = load_profile("mnist", changed)
        assert committed_original(other) is None, changed  # another recipe: trained, keyed by its recipe
        assert set(original_identity(other)) == {"original"}
    with pytest.raises(ConfigError, match="pretrain.committed=nope: no committed original"):
        committed_original(load_profile("mnist", ["pretrain.committed=nope"]))


def test_an_original_committed_by_the_command_is_loaded_instead_of_trained(session_cache, tmp_path, monkeypatch,
                                                                            capsys):
    monkeypatch.setattr(pretraining, "ORIGINALS_ROOT", tmp_path / "originals")
    sets = [*TINY, f"runtime.cache_dir={session_cache}"]
    assert main(["original", "--profile", "smoke", "--commit", "tiny", "--set", *sets]) == 0
    directory = tmp_path / "originals" / "tiny"
    assert "pretrain.committed=tiny" in capsys.readouterr().out
    profile = load_profile("smoke", [*sets, "pretrain.committed=tiny"])
    assert committed_original(profile) == directory  # the recipe it records is the profile's
    assert original_identity(profile) == {"pretrained": directory_fingerprint(directory)}
    recorded = json.loads((directory / "metadata.json").read_text())
    assert load_original(profile)[1]["weights"] == recorded["weights"]  # loaded, the trained weights
    assert not list(directory.rglob("*.lock"))
    assert main(["original", "--profile", "smoke", "--commit", "tiny", "--set", *sets]) == 0  # the same: kept
    # named without --commit: reported (what runs load), nothing trained
    capsys.readouterr()
    assert main(["original", "--profile", "smoke", "--set", *sets, "pretrain.committed=tiny"]) == 0
    assert f"original {recorded['weights']} is committed in {directory}" in capsys.readouterr().out
    (directory / "metadata.json").write_text(json.dumps({**recorded, "weights": "other"}))
    assert main(["original", "--profile", "smoke", "--commit", "tiny", "--set", *sets]) == 2
    assert "holds another original" in capsys.readouterr().err
    assert main(["original", "--profile", "smoke", "--commit", "../up", "--set", *sets]) == 2
    # a folder of that name that is not a committed original (a README only): refused before any training, untouched
    (tmp_path / "originals" / "notes").mkdir()
    (tmp_path / "originals" / "notes" / "README.md").write_text("notes")
    def no_training(*args, **kwargs):
        raise AssertionError("trained before the folder was checked")

    monkeypatch.setattr(pretraining, "train_or_load_diffusion", no_training)
    capsys.readouterr()
    assert main(["original", "--profile", "smoke", "--commit", "notes", "--set", *sets]) == 2
    assert "holds no committed original (no metadata.json)" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "originals" / "notes").iterdir()] == ["README.md"]
    # named with another recipe (another seed): trained from the recipe, and said so
    monkeypatch.setattr(pretraining, "train_or_load_diffusion", lambda profile: (None, {"weights": "w", "steps": 1,
                                                                                        "train_seconds": 0}, tmp_path))
    capsys.readouterr()
    assert main(["original", "--profile", "smoke", "--set", *sets, "pretrain.committed=tiny", "seed=1"]) == 0
    assert "records another recipe than this profile's: the original is trained" in capsys.readouterr().out
