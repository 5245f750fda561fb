"""Pretraining (and so Retrain) survives an interruption: it resumes from its last checkpoint, exactly.

What is exact (CPU, same process settings): the resumed model's EMA weights equal an uninterrupted run's bit for bit
(``torch.equal``, tolerance 0), because the data order depends only on (seed, step), the torch RNG (noise,
timesteps, label dropout) is restored from the checkpoint, and the optimiser, scheduler and EMA state (averaged
weights and ``n_averaged``) come back with it. What is not: ``train_seconds`` is a wall-clock sum over attempts
(only checked to include the interrupted attempt's seconds). On CUDA non-deterministic kernels would make even two
uninterrupted runs differ, so exactness is claimed for CPU only.
"""

from __future__ import annotations

import copy

import pytest
import torch
from lightning.pytorch.callbacks import Callback, WeightAveraging

from unlearnbench.foundation.config import load_profile
from unlearnbench.foundation.pretraining import (
    CHECKPOINT_FILE,
    checkpoint_dir_of,
    diffusion_dir,
    train_diffusion,
    train_or_load_diffusion,
)

STEPS, EVERY, KILL_AT = 12, 4, 6  # checkpoint at steps 4 and 8; the "kill" comes at step 6, after the first one


class Killed(RuntimeError):
    """Stands for the job being killed: an exception that propagates out of the fit."""


class KillAt(Callback):
    """Raises after optimiser step ``step`` (after the checkpoint of that step, if any, was written)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            raise Killed(f"killed at step {trainer.global_step}")


class StepCounter(Callback):
    """Counts the optimiser steps this fit ran, the global step it started at and the EMA's ``n_averaged``."""

    def __init__(self) -> None:
        self.started_at: int | None = None
        self.batches = 0
        self.n_averaged: int | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.started_at = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches += 1

    def on_train_end(self, trainer, pl_module) -> None:
        ema = next(c for c in trainer.callbacks if isinstance(c, WeightAveraging))
        self.n_averaged = int(ema._average_model.n_averaged)


@pytest.fixture
def resume_profile(tmp_path):
    """Smoke with 100 digits (3 batches of 32 per epoch, so the 12 steps cross epoch boundaries), 12 steps and a
    checkpoint every 4 steps, in its own cache."""
    return load_profile("smoke", [f"runtime.cache_dir={tmp_path / 'cache'}", "runtime.progress=false",
                                  "runtime.logger=none", "data.max_per_class=10", f"pretrain.steps={STEPS}",
                                  "pretrain.batch_size=32", "pretrain.warmup_steps=3",
                                  f"pretrain.checkpoint_every_n_steps={EVERY}"])


def test_killed_pretraining_resumes_exactly(resume_profile, tmp_path, capsys):
    """Killed at step 6, the rerun starts at the step-4 checkpoint, runs the 8 missing steps and ends with the EMA
    weights of an uninterrupted run, exactly (CPU). Without a bar, the resumed fit's progress lines count from the
    checkpoint's step to the last."""
    reference = StepCounter()
    uninterrupted, _ = train_diffusion(copy.deepcopy(resume_profile), callbacks=[reference])
    assert (reference.started_at, reference.batches, reference.n_averaged) == (0, STEPS, STEPS)

    checkpoints = tmp_path / "checkpoints"
    with pytest.raises(Killed):
        train_diffusion(copy.deepcopy(resume_profile), checkpoint_dir=checkpoints, callbacks=[KillAt(KILL_AT)])
    saved = torch.load(checkpoints / CHECKPOINT_FILE, map_location="cpu", weights_only=False)
    assert saved["global_step"] == EVERY
    assert int(saved["averaging_state"]["n_averaged"]) == EVERY  # the EMA's state is in the checkpoint
    assert saved["unlearnbench"]["train_seconds"] > 0

    resumed_counter = StepCounter()
    capsys.readouterr()
    resumed, meta = train_diffusion(copy.deepcopy(resume_profile), checkpoint_dir=checkpoints,
                                    callbacks=[resumed_counter], what="the test model")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("    training the test model")]
    assert [line.split(",")[0].split()[-1] for line in lines] == [f"{s}/{STEPS}" for s in range(EVERY + 1, STEPS + 1)]
    assert lines[-1].endswith("(about 0m00s left)")
    assert meta["resumed_from_step"] == EVERY and resumed_counter.started_at == EVERY
    assert EVERY + resumed_counter.batches == STEPS  # interrupted + resumed = the uninterrupted run's steps
    assert resumed_counter.n_averaged == STEPS
    assert meta["train_seconds"] >= round(saved["unlearnbench"]["train_seconds"], 2)

    expected, got = uninterrupted.unet.state_dict(), resumed.unet.state_dict()
    assert expected.keys() == got.keys()
    differing = [name for name in expected if not torch.equal(expected[name], got[name])]
    assert not differing, f"resumed EMA weights differ from the uninterrupted run's in {differing[:5]}"


def test_a_checkpoint_of_the_last_step_gives_the_ema_weights(resume_profile, tmp_path):
    """Killed after the final checkpoint (written at the last step) but before the model was cached, the rerun
    takes the EMA weights from that checkpoint: Lightning alone would skip the finished fit and return the raw
    weights, without the EMA."""
    profile = copy.deepcopy(resume_profile)
    profile.pretrain.steps = 2 * EVERY  # a checkpoint at the last step
    finished, _ = train_diffusion(copy.deepcopy(profile), checkpoint_dir=tmp_path / "checkpoints")
    again, meta = train_diffusion(copy.deepcopy(profile), checkpoint_dir=tmp_path / "checkpoints")
    assert meta["resumed_from_step"] == 2 * EVERY
    expected, got = finished.unet.state_dict(), again.unet.state_dict()
    assert all(torch.equal(expected[name], got[name]) for name in expected)


def test_cached_training_removes_its_checkpoints(resume_profile):
    """Once the model is saved in the cache, its checkpoint folder is deleted; a fresh run records no resume."""
    profile = copy.deepcopy(resume_profile)
    profile.pretrain.steps = 2 * EVERY
    _, meta, directory = train_or_load_diffusion(profile)
    assert (directory / "metadata.json").is_file() and meta["resumed_from_step"] is None
    assert directory == diffusion_dir(profile)
    assert not checkpoint_dir_of(directory).exists()
