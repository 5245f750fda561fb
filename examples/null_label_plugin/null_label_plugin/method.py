"""NullLabel: make the forget class predict what the model predicts without a label (an example plugin).

    L = MSE( ε_θ(x_t, t, c_f), sg[ε_θ(x_t, t, ∅)] ) + α · L_pixel-sum(x_r, c_r)

Defaults (our choices for this example): α = 1e-3, no label dropout on the two forget passes, and the
optimiser settings of ``unlearnbench.MethodConfig`` (Adam 1e-4, clip 1.0, label dropout 0.1 on the retain pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from unlearnbench import Batch, MethodConfig, UnlearningMethod


class NullLabel(UnlearningMethod):
    """NullLabel (example plugin): pull ε_θ(·, c_f) onto the unconditional prediction ε_θ(·, ∅)."""

    name = "null_label"

    @dataclass
    class Config(MethodConfig):
        alpha: float = 1e-3

    def loss(self, forget_batch: Batch, retain_batch: Batch) -> torch.Tensor:
        """L = MSE(ε_θ(x_t, t, c_f), sg ε_θ(x_t, t, ∅)) + α · L(x_r, c_r)."""
        x0, labels = forget_batch
        x_t, t, _ = self.noised(x0)
        with torch.no_grad():
            target = self.model(x_t, t, torch.full_like(labels, self.model.null_class))
        forget = F.mse_loss(self.model(x_t, t, labels), target)
        return forget + self.config.alpha * self.standard_loss(retain_batch, "pixel_sum")
