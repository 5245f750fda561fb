r"""Fine-tuning attacks: is a forgotten class gone, or merely hidden behind the weights a method moved?

An attacker fine-tunes a *copy* of the unlearned model with the standard loss

.. math:: \mathcal{L}(\theta) = \mathbb{E}_{t,\varepsilon} \lVert \varepsilon - \varepsilon_\theta(x_t, t, c)\rVert^2

for a few Adam steps, and c_f is sampled and read by the yardstick before the first step and after each reading
step (a curve). Two attacks share this loop (:func:`fine_tune_attack`):

- **relearning** (:func:`relearn`): on the attacker's k real images of c_f, all labelled c_f (batch = all of them,
  no label dropout). The score is the *worst case*, the maximum recognised rate over the curve (and the curve's
  area): a class that comes back at step 10 and fades by step 20 was not forgotten. Retrain, which never saw c_f,
  under the same attack is the reference: how much a model learns c_f from scratch in those steps; the excess
  over Retrain is the largest lead over Retrain's curve at any reading step (:func:`curve_excess`).
- **no forget data** (:func:`fine_tune_on_retained`): on retained images only, with their own labels and the
  pretraining's label dropout; does c_f come back although the attacker never shows it (relearning attacks on
  class-conditional models; METHODS.md cites DiMRA, arXiv 2512.03564)?

Only the weights ``trainable`` returns are optimised (all by default; the class-embedding inversion of
:mod:`unlearnbench.metrics.inversion` trains one embedding row through the same loop). The unlearned model itself is
never changed; attacks are scored, not timed into a method's cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from unlearnbench.foundation.config import RuntimeConfig
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.trainer import build_trainer, single_device

Reading = Callable[[ConditionalDiffusion], dict]


class FineTuningAttack(L.LightningModule):
    """Adam on the standard denoising loss of (image, label) batches, over ``parameters`` of ``model`` only;
    ``label_dropout`` replaces labels by the null class with that probability (CFG training)."""

    def __init__(self, model: ConditionalDiffusion, lr: float, parameters: list[nn.Parameter],
                 label_dropout: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.lr = lr
        self.attacked = parameters
        self.label_dropout = label_dropout

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.model.denoising_loss(x, self.model.drop_labels(y, self.label_dropout))
        self.log("attack/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.attacked, lr=self.lr)


class ReadAtSteps(L.Callback):
    """Calls ``read(model)`` after the optimiser steps in ``steps`` and keeps the results by step."""

    def __init__(self, steps: list[int], read: Reading) -> None:
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
        raise ValueError(f"no training image of class {forget_class} for the attack")
    return chosen


def retained_images(images: torch.Tensor, labels: torch.Tensor, forget_class: int, per_class: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``per_class`` images of every class except ``forget_class`` (dataset order), with their labels."""
    keep = [torch.nonzero(labels == c).flatten()[:per_class] for c in labels.unique().tolist() if c != forget_class]
    index = torch.cat(keep).sort().values
    return images[index], labels[index]


def reading_steps(readings: list[int], steps: int) -> list[int]:
    """The curve's steps: 0, every reading inside (0, steps) and the last step, sorted."""
    return sorted({0, steps} | {s for s in readings if 0 < s < steps})


def fine_tune_attack(model: ConditionalDiffusion, images: torch.Tensor, labels: torch.Tensor, steps: int, lr: float,
                     readings: list[int], runtime: RuntimeConfig, seed: int, read: Reading,
                     batch_size: int | None = None, label_dropout: float = 0.0,
                     trainable: Callable[[ConditionalDiffusion], list[nn.Parameter]] | None = None) -> dict[int, dict]:
    """Attack a copy of ``model``: ``steps`` Adam steps at ``lr`` on (``images``, ``labels``) in shuffled batches of
    ``batch_size`` (all images when ``None``), over the weights ``trainable(copy)`` (all by default, the others
    frozen). Returns ``read(copy)`` at every step of :func:`reading_steps` (step 0 = before the first update), keyed
    by step. Deterministic for a fixed ``seed``."""
    L.seed_everything(seed, verbose=False)
    attacked = model.clone().train()
    parameters = list(attacked.parameters()) if trainable is None else trainable(attacked)
    chosen = {id(p) for p in parameters}
    for p in attacked.parameters():
        p.requires_grad_(id(p) in chosen)
    curve = reading_steps(readings, steps)
    first = read(attacked)
    attacked.train()
    batch = len(images) if batch_size is None else min(batch_size, len(images))
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch, shuffle=batch < len(images),
                        drop_last=batch < len(images), generator=torch.Generator().manual_seed(seed))
    reader = ReadAtSteps(curve[1:], read)
    # no Lightning bar: an attack is a step of a run's evaluation, whose readings show progress (the bar printed
    # "Epoch 99/-2" per attack)
    trainer = build_trainer(dataclasses.replace(single_device(runtime), progress=False), max_steps=steps,
                            callbacks=[reader], log_every_n_steps=max(1, steps))
    trainer.fit(FineTuningAttack(attacked, lr, parameters, label_dropout), train_dataloaders=loader)
    return {0: first, **reader.readings}


def relearn(model: ConditionalDiffusion, images: torch.Tensor, forget_class: int, steps: int, lr: float,
            readings: list[int], runtime: RuntimeConfig, seed: int, read: Reading) -> dict[int, dict]:
    """The relearning attack: :func:`fine_tune_attack` on ``images``, all labelled ``forget_class``, full batch."""
    labels = torch.full((len(images),), forget_class, dtype=torch.long)
    return fine_tune_attack(model, images, labels, steps, lr, readings, runtime, seed, read)


def fine_tune_on_retained(model: ConditionalDiffusion, images: torch.Tensor, labels: torch.Tensor, steps: int,
                          lr: float, batch_size: int, label_dropout: float, runtime: RuntimeConfig, seed: int,
                          read: Reading) -> dict[int, dict]:
    """The no-forget-data attack: :func:`fine_tune_attack` on retained ``images`` with their ``labels``, shuffled
    batches, the pretraining's ``label_dropout``; read before and after."""
    return fine_tune_attack(model, images, labels, steps, lr, [], runtime, seed, read, batch_size=batch_size,
                            label_dropout=label_dropout)


def curve_summary(curve: list[list[float]]) -> tuple[float, float]:
    """(maximum, area) of a curve [[step, rate], …]: the worst case and the mean rate over the steps (trapezoid
    rule divided by the last step; the single value for a one-point curve)."""
    if not curve:
        return float("nan"), float("nan")
    steps = [float(s) for s, _ in curve]
    rates = [float(r) for _, r in curve]
    if len(curve) == 1 or steps[-1] == steps[0]:
        return max(rates), rates[0]
    area = sum((steps[i + 1] - steps[i]) * (rates[i] + rates[i + 1]) / 2 for i in range(len(curve) - 1))
    return max(rates), area / (steps[-1] - steps[0])


def curve_excess(curve: list[list[float]], reference: list[list[float]]) -> float:
    r"""The largest lead of ``curve`` over the ``reference`` curve (Retrain under the same attack) at the reading
    steps both have: :math:`\max_s\,(r(s) - r_{\text{ref}}(s))`. A hidden class that is back at step 20 while
    Retrain needs 100 steps to relearn it leads by much at step 20, although both curves end near 100 %; NaN when
    the curves share no step."""
    ref = {int(step): float(rate) for step, rate in reference}
    leads = [float(rate) - ref[int(step)] for step, rate in curve if int(step) in ref]
    return max(leads) if leads else float("nan")
