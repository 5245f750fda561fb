r"""Fine-tune (FT): continue training on the retained classes only, hoping the forget class fades (a baseline).

Loss (METHODS.md, "Extra baselines")::

    L = E_{(x_0, c) ∈ D_r} ‖ε − ε_θ(x_t, t, c)‖²

Options and defaults (``Config``):

* ``reduction`` = ``mean`` — [open], our choice: the pretraining loss's reduction (mean over all elements);
  ``pixel_sum`` sums over pixels and averages over the batch like the SalUn reference code.
* ``lr`` = 1e-4 Adam (weight decay 0), ``grad_clip`` = 1.0, ``label_dropout`` = 0.1 — the shared fine-tuning
  defaults ([open] for this baseline); no forget batch is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from unlearnbench.methods.base import Batch, MethodConfig, UnlearningMethod
from unlearnbench.methods.registry import register_method


@register_method("ft", version=1)
class FineTune(UnlearningMethod):
    """Fine-tune (FT): the standard loss on retained classes only."""

    @dataclass
    class Config(MethodConfig):
        """FT hyper-parameters; see the module docstring."""

        reduction: Literal["mean", "pixel_sum"] = "mean"

    def needs_forget(self) -> bool:
        return False

    def loss(self, forget_batch: Batch | None, retain_batch: Batch | None) -> torch.Tensor:
        r"""L = L(x_r, c_r) = ‖ε − ε_θ(x_t, t, c_r)‖² on a retained batch."""
        return self.standard_loss(retain_batch, self.config.reduction)
