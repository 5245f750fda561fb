"""One place that builds Lightning Trainers, so every stage and every method runs on identical settings."""

from __future__ import annotations

import os
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from benchmark.foundation.config import RuntimeConfig


def configure_threads(runtime: RuntimeConfig) -> None:
    """Honour ``runtime.num_threads`` (or ``UNLEARNBENCH_THREADS``) for CPU runs."""
    n = runtime.num_threads or int(os.environ.get("UNLEARNBENCH_THREADS", "0") or 0)
    if n > 0:
        torch.set_num_threads(n)


def build_trainer(
    runtime: RuntimeConfig,
    max_steps: int,
    grad_clip: float | None = None,
    callbacks: list[Callback] | None = None,
    logger: Any = False,
    log_every_n_steps: int = 50,
    use_distributed_sampler: bool = True,
) -> L.Trainer:
    """A Trainer for ``max_steps`` optimiser steps on the runtime's device/precision (CUDA when present).

    Finished artefacts are saved by the suite's cache, atomically; Lightning writes checkpoints only when a
    ``ModelCheckpoint`` is among ``callbacks`` (pretraining's resumable checkpoints). ``use_distributed_sampler``
    False: the data module shards the batches over ranks itself (pretraining's
    :class:`datasets.datamodule.StepBatchSampler`).
    """
    return L.Trainer(
        accelerator=runtime.accelerator,
        devices=runtime.devices,
        strategy=runtime.strategy,
        precision=runtime.precision,
        max_steps=max_steps,
        max_epochs=-1,
        gradient_clip_val=grad_clip,
        gradient_clip_algorithm="norm",
        callbacks=callbacks or [],
        logger=logger,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks or []),
        use_distributed_sampler=use_distributed_sampler,
        enable_progress_bar=runtime.progress,
        enable_model_summary=False,
        log_every_n_steps=log_every_n_steps,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        deterministic=False,
    )


def pick_device(runtime: RuntimeConfig) -> torch.device:
    """The device used outside the Trainer (sampling, evaluation): CUDA when available and allowed."""
    if runtime.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if runtime.accelerator == "mps" and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def is_global_zero() -> bool:
    """Whether this process is global rank 0 (always true without data parallelism, and in the main process of
    ``ddp_spawn``): only rank 0 writes cache entries, records and tables."""
    return getattr(rank_zero_only, "rank", 0) == 0
