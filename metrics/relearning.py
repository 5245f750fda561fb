r"""The relearning attack: is a forgotten class gone, or merely hidden?

An unlearned model is fine-tuned on a few real images of the forget class with the standard loss

.. math:: \mathcal{L}(\theta) = \mathbb{E}_{t,\varepsilon} \lVert \varepsilon - \varepsilon_\theta(x_t, t, c_f)\rVert^2

for ``evaluation.relearn_steps`` Adam steps at ``relearn_lr`` (batch = the ``relearn_images`` first training
images of c_f, no label dropout); c_f is sampled and read by the yardstick after each step listed in
``relearn_readings`` and after the last one (a relearning curve). A method that only hid the
class (e.g. by pushing ε towards 0 for c_f's label) comes back in a few steps; Retrain, which never saw c_f, is the
reference for how much a model learns c_f from scratch in the same steps. The attack runs on a copy: the unlearned
model itself is unchanged. It is scored, not timed into the method's cost.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from unlearnbench.foundation.config import EvaluationConfig, RuntimeConfig
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.trainer import build_trainer, single_device


class RelearningAttack(L.LightningModule):
    """Fine-tunes ``model`` with the standard denoising loss on (image, c_f) batches."""

    def __init__(self, model: ConditionalDiffusion, lr: float) -> None:
        super().__init__()
        self.model = model
        self.lr = lr

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.model.denoising_loss(x, y)
        self.log("relearn/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)


class ReadAtSteps(L.Callback):
    """Calls ``read(model)`` after the optimiser steps in ``steps`` and keeps the results by step."""

    def __init__(self, steps: list[int], read: Callable[[ConditionalDiffusion], dict]) -> None:
        self.steps = set(steps)
        self.read = read
        self.readings: dict[int, dict] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step in self.steps and trainer.global_step not in self.readings:
            self.readings[trainer.global_step] = self.read(pl_module.model)


def forget_class_images(images: torch.Tensor, labels: torch.Tensor, forget_class: int, n: int) -> torch.Tensor:
    """The first ``n`` images of ``forget_class`` in dataset order (the attacker's data: fixed, not sampled)."""
    chosen = images[labels == forget_class][:n]
    if len(chosen) == 0:
        raise ValueError(f"no training image of class {forget_class} for the relearning attack")
    return chosen


def relearn(model: ConditionalDiffusion, images: torch.Tensor, forget_class: int, config: EvaluationConfig,
            runtime: RuntimeConfig, seed: int, read: Callable[[ConditionalDiffusion], dict]) -> dict[int, dict]:
    """Attack a copy of ``model`` (``config.relearn_steps`` steps on ``images``, all labelled c_f) and return
    ``read(model)`` after each reading step (``config.relearn_readings`` and the last step), keyed by step."""
    L.seed_everything(seed, verbose=False)
    attacked = model.clone().train()
    labels = torch.full((len(images),), forget_class, dtype=torch.long)
    loader = DataLoader(TensorDataset(images, labels), batch_size=len(images), shuffle=False)
    steps = sorted({s for s in config.relearn_readings if 0 < s < config.relearn_steps} | {config.relearn_steps})
    reader = ReadAtSteps(steps, read)
    trainer = build_trainer(single_device(runtime), max_steps=config.relearn_steps, callbacks=[reader],
                            log_every_n_steps=max(1, config.relearn_steps))
    trainer.fit(RelearningAttack(attacked, config.relearn_lr), train_dataloaders=loader)
    return reader.readings
