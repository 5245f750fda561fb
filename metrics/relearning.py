r"""The relearning attack: is a forgotten class gone, or merely hidden?

An unlearned model is fine-tuned on a few real images of the forget class with the standard loss

.. math:: \mathcal{L}(\theta) = \mathbb{E}_{t,\varepsilon} \lVert \varepsilon - \varepsilon_\theta(x_t, t, c_f)\rVert^2

for ``evaluation.relearn_steps`` Adam steps at ``relearn_lr`` (batch = the ``relearn_images`` first training
images of c_f, no label dropout), then c_f is sampled again and read by the yardstick. A method that only hid the
class (e.g. by pushing ε towards 0 for c_f's label) comes back in a few steps; Retrain, which never saw c_f, is the
reference for how much a model learns c_f from scratch in the same steps. The attack runs on a copy: the unlearned
model itself is unchanged. It is scored, not timed into the method's cost.
"""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from benchmark.foundation.config import EvaluationConfig, RuntimeConfig
from benchmark.foundation.diffusion import ConditionalDiffusion
from benchmark.foundation.trainer import build_trainer


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


def forget_class_images(images: torch.Tensor, labels: torch.Tensor, forget_class: int, n: int) -> torch.Tensor:
    """The first ``n`` images of ``forget_class`` in dataset order (the attacker's data: fixed, not sampled)."""
    chosen = images[labels == forget_class][:n]
    if len(chosen) == 0:
        raise ValueError(f"no training image of class {forget_class} for the relearning attack")
    return chosen


def relearn(model: ConditionalDiffusion, images: torch.Tensor, forget_class: int, config: EvaluationConfig,
            runtime: RuntimeConfig, seed: int) -> ConditionalDiffusion:
    """A copy of ``model`` after the attack (``config.relearn_steps`` steps on ``images``, all labelled c_f)."""
    L.seed_everything(seed, verbose=False)
    attacked = model.clone().train()
    labels = torch.full((len(images),), forget_class, dtype=torch.long)
    loader = DataLoader(TensorDataset(images, labels), batch_size=len(images), shuffle=False)
    trainer = build_trainer(runtime, max_steps=config.relearn_steps, log_every_n_steps=max(1, config.relearn_steps))
    trainer.fit(RelearningAttack(attacked, config.relearn_lr), train_dataloaders=loader)
    return attacked.eval()
