"""One place that builds Lightning Trainers, so every stage and every method runs on identical settings.

Lightning's chatter is kept out of the suite's output (:func:`quiet_lightning`): its start-up banners ("GPU
available", "TPU available", the Tensor Cores hint), its "💡 Tip" advertising (litlogger, litmodels), its
"`Trainer.fit` stopped" notes, and the warnings of :data:`UNCONCERNING_WARNINGS`, which are about settings this
module chooses for the user. Lightning's other warnings and every error still show.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar, TQDMProgressBar
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from unlearnbench.foundation.config import ConfigError, RuntimeConfig
from unlearnbench.foundation.cost import format_seconds

STEPS_METRIC = "fit/global_step"  # how a spawned fit reports its step count back (only metrics come back)

# Lightning's loggers: their INFO messages are banners, tips and "fit stopped" notes, never something to act on.
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")
# (message regex, category) of warnings about settings the suite chooses, not the user: the data loaders' worker
# count, the logging interval of short fits, and Lightning's own use of a deprecated torch API.
UNCONCERNING_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    (r"The number of training batches \(\d+\) is smaller than the logging interval", Warning),
    (r".*does not have many workers", Warning),
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
)


def silence_lightning() -> dict[str, int]:
    """Raise Lightning's loggers to WARNING and ignore :data:`UNCONCERNING_WARNINGS` in this process; returns the
    loggers' previous levels. Lasting: use :func:`quiet_lightning` to restore them (a ``ddp_spawn`` worker, which
    lives for one fit, calls this directly)."""
    previous = {}
    for name in LIGHTNING_LOGGERS:
        log = logging.getLogger(name)
        previous[name] = log.level
        log.setLevel(max(log.getEffectiveLevel(), logging.WARNING))
    for pattern, category in UNCONCERNING_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=category)
    return previous


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's INFO messages and :data:`UNCONCERNING_WARNINGS` silenced for the duration (see the module
    docstring); the log levels and warning filters are restored afterwards."""
    with warnings.catch_warnings():
        previous = silence_lightning()
        try:
            yield
        finally:
            for name, level in previous.items():
                logging.getLogger(name).setLevel(level)


def available_cores() -> int:
    """The CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_threads(workers: int, cores: int | None = None) -> int:
    """CPU threads for each of ``workers`` processes sharing this machine: max(1, cores // workers)."""
    return max(1, (cores or available_cores()) // max(1, workers))


def requested_threads(runtime: RuntimeConfig) -> int:
    """The CPU threads asked for: ``runtime.num_threads``, else ``UNLEARNBENCH_THREADS``, else 0 (none asked)."""
    return runtime.num_threads or int(os.environ.get("UNLEARNBENCH_THREADS", "0") or 0)


def configure_threads(runtime: RuntimeConfig) -> None:
    """Honour ``runtime.num_threads`` (or ``UNLEARNBENCH_THREADS``); without either, ``runtime.workers`` > 1 gives
    every process :func:`worker_threads` threads, so that the workers share the machine instead of each using all
    of it (two workers on 2 cores: 1 thread each)."""
    n = requested_threads(runtime)
    if n <= 0 and runtime.workers > 1:
        n = worker_threads(runtime.workers)
    if n > 0:
        torch.set_num_threads(n)


# torch's own choice of CPU threads for this process, read before any configure_threads: what a stage that runs
# alone uses when nothing else is asked for
_DEFAULT_THREADS = torch.get_num_threads()


def serial_threads(runtime: RuntimeConfig) -> int:
    """CPU threads of a stage that runs alone, never beside other runs (the original's pretraining, the
    yardstick): ``runtime.num_threads`` or ``UNLEARNBENCH_THREADS``, else torch's default for this process. Unlike
    :func:`configure_threads`, ``runtime.workers`` does not apply: no other run shares the machine then."""
    return requested_threads(runtime) or _DEFAULT_THREADS


@contextmanager
def serial_stage(runtime: RuntimeConfig) -> Iterator[None]:
    """Compute on :func:`serial_threads` threads for the duration, then restore the process's count."""
    before = torch.get_num_threads()
    torch.set_num_threads(serial_threads(runtime))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def per_device_batch(batch_size: int, world_size: int, what: str) -> int:
    """The per-device share of the global ``batch_size`` on ``world_size`` devices; ConfigError if it does not
    divide (the global batch is part of the recipe and the equal budget, so it must not change with the device
    count)."""
    if batch_size % world_size:
        raise ConfigError(f"{what}={batch_size} is not divisible by runtime.devices={world_size}: the global batch "
                          f"is kept fixed across device counts; choose a batch size or device count that divides it")
    return batch_size // world_size


def single_device(runtime: RuntimeConfig) -> RuntimeConfig:
    """``runtime`` on one device: evaluation (the relearning attack) and the yardstick never run data-parallel."""
    return dataclasses.replace(runtime, devices=1, strategy="auto")


class FitReport(Callback):
    """Every fit's shared bookkeeping: ranks draw distinct noise, and the step count comes back from spawned fits.

    Under ``ddp_spawn`` every worker starts with the caller's RNG state, so all ranks would draw the same noise,
    timesteps and label dropout for their different images; each rank re-seeds from that state plus its rank
    instead (deterministic). The number of optimiser steps is put in the callback metrics (``fit/global_step``),
    the only trainer state a spawned fit hands back (:func:`fitted_steps`).
    """

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)  # never empty state: pickle calls __setstate__ only for a state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled in a child process: a ``ddp_spawn`` worker, which lives for this one fit, so Lightning is
        silenced there for good (its distributed start-up banners come before any hook could scope it)."""
        self.__dict__.update(state)
        if multiprocessing.parent_process() is not None:
            silence_lightning()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.world_size > 1:
            torch.manual_seed(int(torch.randint(0, 2**62, (1,))) + trainer.global_rank)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.callback_metrics[STEPS_METRIC] = torch.tensor(float(trainer.global_step))


def fitted_steps(trainer: L.Trainer) -> int:
    """Optimiser steps of the finished fit, also when it ran in spawned processes."""
    return int(trainer.callback_metrics.get(STEPS_METRIC, trainer.global_step))


class StepLines(Callback):
    """Progress of a long fit that has no bar (``runtime.progress=false``: studies, and runs computed by workers):
    ``    training <what>: step k/n, <elapsed> (about <left> left)`` on stderr at every tenth of the steps, so a
    training of an hour is not an hour of silence. Elapsed and left count this attempt only (a resumed fit starts
    from its checkpoint's step). Printed by global rank 0; each line is written whole, so the lines of two workers
    training at once interleave by line."""

    def __init__(self, what: str, lines: int = 10, stream: Any = None) -> None:
        self.what, self.lines, self.stream = what, lines, stream
        self.start, self.first_step = 0.0, 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start, self.first_step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step, total = trainer.global_step, trainer.max_steps
        every = max(1, total // self.lines)
        if not trainer.is_global_zero or (step % every and step != total) or step == self.first_step:
            return
        elapsed = time.perf_counter() - self.start
        left = elapsed / (step - self.first_step) * (total - step)
        print(f"    training {self.what}: step {step}/{total}, {format_seconds(elapsed)} "
              f"(about {format_seconds(left)} left)", file=self.stream or sys.stderr, flush=True)


class _WithoutVersionNumber:
    """A progress bar mixin that drops Lightning's ``v_num`` (the logger's version, always 0 in a run's own folder)
    from the bar's metrics: the bar shows the fit's loss only."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items


class StepBoundRichProgressBar(_WithoutVersionNumber, RichProgressBar):
    """Lightning's Rich bar with the epoch shown as "Epoch N": the suite's fits are bounded by steps
    (``max_epochs=-1``), for which the stock bar printed "Epoch N/-2"; no ``v_num``."""

    def _get_train_description(self, current_epoch: int) -> str:
        return f"Epoch {current_epoch}"


class QuietTQDMProgressBar(_WithoutVersionNumber, TQDMProgressBar):
    """Lightning's tqdm bar without ``v_num`` (where Rich is not installed)."""


def progress_bar() -> Callback:
    """The fits' progress bar: :class:`StepBoundRichProgressBar` where Rich is installed, else the tqdm bar
    (Lightning's own choice between the two)."""
    try:
        return StepBoundRichProgressBar()
    except ModuleNotFoundError:
        return QuietTQDMProgressBar()


class QuietTrainer(L.Trainer):
    """A Lightning Trainer whose ``fit`` runs under :func:`quiet_lightning` (in this process; spawned workers are
    silenced by :class:`FitReport`)."""

    def fit(self, *args: Any, **kwargs: Any) -> None:
        with quiet_lightning():
            super().fit(*args, **kwargs)


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

    With ``runtime.devices`` > 1 the fit runs data-parallel with ``ddp_spawn`` (see ``RuntimeConfig.devices``).
    Finished artefacts are saved by the suite's cache, atomically; Lightning writes checkpoints only when a
    ``ModelCheckpoint`` is among ``callbacks`` (pretraining's resumable checkpoints). ``use_distributed_sampler``
    False: the data module shards the batches over ranks itself (pretraining's
    :class:`unlearnbench.datasets.datamodule.StepBatchSampler`). Built and fitted without Lightning's banners and
    tips (:class:`QuietTrainer`).
    """
    strategy = "ddp_spawn" if runtime.devices > 1 and runtime.strategy == "auto" else runtime.strategy
    with quiet_lightning():
        return QuietTrainer(
            accelerator=runtime.accelerator,
            devices=runtime.devices,
            strategy=strategy,
            precision=runtime.precision,
            max_steps=max_steps,
            max_epochs=-1,
            gradient_clip_val=grad_clip,
            gradient_clip_algorithm="norm",
            callbacks=[FitReport(), *([progress_bar()] if runtime.progress else []), *(callbacks or [])],
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


def data_parallel(runtime: RuntimeConfig) -> dict[str, int]:
    """The data-parallel setting as a key part: ``{"devices": N}`` for N > 1 (per-rank noise and sharding change
    the numbers), empty on one device so that single-device keys stay what they were."""
    return {"devices": runtime.devices} if runtime.devices > 1 else {}
