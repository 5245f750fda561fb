"""Each method's unlearning in a fresh process, so its peak memory does not depend on what ran before it.

In one long process, memory an earlier run freed (allocator caches, kernel workspaces, one-off buffers of a code
path's first use) is reused without growing the resident set, so the same run measured 0 or 48 MiB depending on
the order of the grid. Here the runner starts a child per run; the
child loads the shared inputs (data, forget/retain sets, the cached original on the device), then runs
:func:`unlearnbench.methods.registry.unlearn` inside its memory window (:mod:`unlearnbench.foundation.cost`), and
hands back the unlearned weights, the outcome and its training curve (Lightning's ``CSVLogger``), which the parent
replays into its own logger (W&B). Times are measured inside the child exactly as in-process; the start-up of the
child is not. The child runs with a fixed glibc mmap threshold (see ``MALLOC_MMAP_THRESHOLD``).

**Warm start** (issue 21). A fresh interpreter spends ~13 s importing torch, Lightning, diffusers and the suite
before a run can start (measured on the 2-core CPU). Children are therefore forked from a *fork server*
(``multiprocessing``'s ``forkserver``, started once per parent process) that has imported those modules
(:data:`PRELOAD`) and done nothing else: each child is still a process that no earlier run has touched (no
allocator cache, no kernel workspace, no CUDA context: the server never initialises CUDA), so the memory rule is
unchanged, and it skips the imports. Where ``forkserver`` does not exist (Windows), children are spawned.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import os
import tempfile
import traceback
from pathlib import Path
from typing import Any

import torch

from unlearnbench.foundation.config import Profile
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.parent_watch import exit_when_gone

MODEL_FILE, OUTCOME_FILE, ERROR_FILE = "model.pt", "outcome.json", "error.txt"
# A fixed glibc mmap threshold in the child (32 MiB, glibc's maximum) instead of the dynamic one, whose
# run-to-run adjustments made the same run's peak vary by 5-7 %. Measured, SalUn peak over repeated fresh runs:
# mnist profile 369/395 MiB dynamic vs 367/374 MiB fixed at 32 MiB (same speed); smoke model 98.9-104.5 MiB vs
# 100.1-101.8 MiB. Lower thresholds were steadier still but slow: at 1 MiB every batch-128 activation of the mnist
# UNet got its own mapping and Retrain's training took 620 s instead of 290 s.
MALLOC_ENV, MALLOC_MMAP_THRESHOLD = "MALLOC_MMAP_THRESHOLD_", str(32 * 2**20)
# What the fork server imports before it forks any child: the libraries every run imports, nothing that allocates.
PRELOAD = ["torch", "lightning.pytorch", "diffusers", "unlearnbench.datasets", "unlearnbench.methods",
           "unlearnbench.foundation.pretraining"]


def child_context() -> multiprocessing.context.BaseContext:
    """The ``forkserver`` context with :data:`PRELOAD` (``spawn`` where there is no fork server). The server starts
    at the first child, with this process's environment then, glibc's mmap threshold included (set by
    :func:`unlearn_isolated`), which its children inherit."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


class IsolatedRunError(RuntimeError):
    """The child process failed; the message is the child's error, ``child_traceback`` its traceback."""

    def __init__(self, message: str, child_traceback: str = "") -> None:
        super().__init__(message)
        self.child_traceback = child_traceback


def _child(profile: Profile, pretrained: str | None, method: str, forget_class: int, seed: int,
           overrides: dict[str, Any], threads: int, log_curves: bool, workdir: str, requester: int) -> None:
    out = Path(workdir)
    exit_when_gone(requester)  # the worker or runner that asked for it (its parent is the fork server, which stays)
    try:
        torch.set_num_threads(threads)
        from unlearnbench.datasets import UnlearningDataModule
        from unlearnbench.foundation.pretraining import load_original
        from unlearnbench.foundation.trainer import pick_device
        from unlearnbench.methods import unlearn

        data = UnlearningDataModule(profile.data, batch_size=profile.unlearning.batch_size, seed=profile.seed)
        original, _ = load_original(profile, pretrained)
        original.to(pick_device(profile.runtime))
        logger = False
        if log_curves:
            from lightning.pytorch.loggers import CSVLogger

            logger = CSVLogger(save_dir=str(out), name="curves", version=0)
        outcome = unlearn(method, original, forget_class, data, profile, seed=seed, overrides=overrides,
                          logger=logger)
        torch.save(outcome.model.unet.state_dict(), out / MODEL_FILE)
        fields = {k: getattr(outcome, k) for k in ("prepare_seconds", "unlearn_seconds", "peak_memory_mb",
                                                   "memory_kind", "steps", "cached", "world_size",
                                                   "extra")}
        (out / OUTCOME_FILE).write_text(json.dumps(fields))
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which records the failure
        (out / ERROR_FILE).write_text(f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=8)}")
        raise SystemExit(1) from None


def unlearn_isolated(profile: Profile, pretrained: str | None, original: ConditionalDiffusion, method: str,
                     forget_class: int, seed: int, overrides: dict[str, Any], logger: Any = False):
    """Run ``unlearn(method, …)`` in a fresh process; returns the outcome with the unlearned model (on CPU).

    ``original`` is only used as the template to rebuild the unlearned model from its weights. Raises
    :class:`IsolatedRunError` with the child's error.
    """
    from unlearnbench.methods import UnlearningOutcome

    with tempfile.TemporaryDirectory(prefix="unlearnbench-run-") as workdir:
        child = child_context().Process(target=_child, args=(profile, pretrained, method, forget_class, seed,
                                                             dict(overrides), torch.get_num_threads(), bool(logger),
                                                             workdir, os.getpid()))
        saved = os.environ.get(MALLOC_ENV)
        os.environ.setdefault(MALLOC_ENV, MALLOC_MMAP_THRESHOLD)  # read by glibc when the server/child starts
        try:
            child.start()
        finally:
            if saved is None:
                os.environ.pop(MALLOC_ENV, None)
        try:
            child.join()
        except BaseException:
            child.terminate()
            child.join()
            raise
        out = Path(workdir)
        if child.exitcode != 0 or not (out / OUTCOME_FILE).is_file():
            error = (out / ERROR_FILE).read_text() if (out / ERROR_FILE).is_file() else f"exit code {child.exitcode}"
            message, _, trace = error.partition("\n")
            raise IsolatedRunError(message, trace)
        fields = json.loads((out / OUTCOME_FILE).read_text())
        model = original.clone().cpu()
        model.unet.load_state_dict(torch.load(out / MODEL_FILE, map_location="cpu", weights_only=True))
        if logger:
            replay_curves(out / "curves" / "version_0" / "metrics.csv", logger)
    peak = fields["peak_memory_mb"]
    fields["peak_memory_mb"] = math.nan if peak is None else float(peak)
    return UnlearningOutcome(model=model.eval(), **fields)


def replay_curves(path: Path, logger: Any) -> None:
    """Log the child's training curve (``metrics.csv``) to the parent's logger, step by step."""
    if not path.is_file():
        return
    with open(path) as f:
        for row in csv.DictReader(f):
            step = int(row.pop("step", 0) or 0)
            metrics = {k: float(v) for k, v in row.items() if v not in ("", None) and k != "epoch"}
            if metrics:
                logger.log_metrics(metrics, step=step)
