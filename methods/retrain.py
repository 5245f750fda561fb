r"""Retrain (the gold standard): train from scratch on the retained classes only, with the pretraining recipe.

Nothing is fine-tuned: the model is :func:`unlearnbench.foundation.pretraining.train_or_load_diffusion` on the
retained classes {0..K−1} \ {c_f} (in a continual sequence also without the classes earlier requests forgot,
:meth:`~unlearnbench.methods.base.UnlearningMethod.retained_classes`) — same UNet, steps, optimiser, warm-up,
clip, label dropout and EMA as the original model ([code]), seeded with the profile's seed like the original. Its
data module serves the retained classes only, so no forgotten class's image is ever seen.

It is cached (``<cache_dir>/retrain/<key>``), so one Retrain model per set of retained classes serves every run
seed and every rerun. The outcome always reports the *recorded* training time (``train_seconds`` of the cached
metadata) as ``unlearn_seconds`` — the reference t_retrain of RTE = t_retrain / t_method — with ``cached`` saying
whether it was trained now; the actual wall-clock of this call is ``extra["load_seconds"]``. The cache key includes
the hardware, thread count, precision and library versions, so that recorded time was measured on this hardware.
The training's peak memory (measured by :func:`unlearnbench.methods.registry.unlearn` under the suite's memory
rule) is stored next to the cached model (``retrain_cost.json``) and reported again on cache hits. Workers sharing
the cache train each Retrain model once: a Retrain run holds the cache entry's lock
(:func:`unlearnbench.foundation.cache.cache_lock`) from the look-up until that peak memory is stored, so a worker
that waited for the model loads it with its cost.

A user's own original model (``--pretrained``) does not change Retrain: it always trains with the *profile's*
recipe (``pretrain.*`` and ``unet.*``), which is only a fair "never saw the class" reference if the user's model
was trained with that same recipe (README, "Bring your own original model").

Options: none (``Config`` is empty); change ``pretrain.*`` in the profile to change the recipe, which also
changes the original model.
"""

from __future__ import annotations

import json
import math
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from unlearnbench.foundation.cache import cache_lock, write_json_atomic
from unlearnbench.foundation.cost import Cost, stopwatch
from unlearnbench.foundation.pretraining import diffusion_dir, train_or_load_diffusion
from unlearnbench.foundation.trainer import pick_device
from unlearnbench.methods.base import UnlearningMethod, UnlearningOutcome
from unlearnbench.methods.registry import register_method

COST_FILE = "retrain_cost.json"


@register_method("retrain", version=1)
class Retrain(UnlearningMethod):
    """Retrain (gold standard): from scratch on the retained classes with the pretraining recipe; cached."""

    @dataclass
    class Config:
        """No options: Retrain is the profile's ``pretrain`` recipe on the retained classes."""

    def run(self, logger: Any = False) -> UnlearningOutcome:
        """Train (or load the cached) retained-classes model; report its recorded training time (and, on a cache
        hit, the peak memory recorded when it was trained).

        The entry's lock is held from here until :meth:`record_memory` has stored a fresh training's peak memory
        (on a cache hit it is released before returning), so no worker reads the model without its cost.
        """
        device = pick_device(self.profile.runtime)
        classes, seed = self.retained_classes(), self.profile.seed
        self._entry_hold = ExitStack()
        self._entry_hold.enter_context(cache_lock(diffusion_dir(self.profile, classes, seed, "retrain")))
        try:
            with stopwatch(device) as cost:
                model, meta, directory = train_or_load_diffusion(self.profile, classes=classes, seed=seed,
                                                                 kind="retrain", logger=logger)
        except BaseException:
            self._release_lock()
            raise
        if meta["cache_hit"]:
            self._release_lock()  # nothing to record
        self._cost_file = directory / COST_FILE
        recorded = json.loads(self._cost_file.read_text()) if meta["cache_hit"] and self._cost_file.is_file() else {}
        self.model = model
        return UnlearningOutcome(
            model=self.unlearned_model(),
            prepare_seconds=0.0,
            unlearn_seconds=float(meta["train_seconds"]),
            steps=int(meta["steps"]),
            cached=bool(meta["cache_hit"]),
            world_size=int(meta.get("world_size", 1)),
            peak_memory_mb=float(recorded.get("peak_memory_mb", math.nan)) if meta["cache_hit"] else None,
            memory_kind=str(recorded.get("memory_kind", "not recorded")) if meta["cache_hit"] else "",
            extra={"load_seconds": cost.seconds, "retrain_seed": int(meta["seed"])},
        )

    def record_memory(self, cost: Cost) -> None:
        """Keep the training's peak memory next to the cached model, for later cache hits; then let other workers
        load the model."""
        try:
            write_json_atomic(self._cost_file, {"peak_memory_mb": cost.peak_memory_mb,
                                                "memory_kind": cost.memory_kind})
        finally:
            self._release_lock()

    def _release_lock(self) -> None:
        hold, self._entry_hold = getattr(self, "_entry_hold", None), None
        if hold is not None:
            hold.close()
