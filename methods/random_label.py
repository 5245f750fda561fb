r"""Random Label (RL): SalUn's loss without the saliency mask (Fan et al., ICLR 2024; a cheap extra baseline).

The forget class is relabelled: on forget images the model's prediction for c_f is pulled towards its own
(stop-gradient) prediction for another class c′, while a small standard loss on retained data keeps the rest::

    L = MSE( ε_θ(x_t, t, c_f), sg[ε_θ(x_t, t, c′)] )  +  α · E_{(x_0, c) ∈ D_r} Σ_pixels (ε − ε_θ(x_t, t, c))²
        (mean over elements)                               (summed over pixels, mean over the batch)

Both reductions follow the reference DDPM code ([code]); α = 1e-3 is calibrated to exactly these reductions.

**The retain weight depends on the image size** (issue 20). The forget term is a mean over the C·H·W elements and
the retain term a sum over them, so per element the retain term weighs α·C·H·W against the forget term's 1:

=====================  =======  =============  =====================================
images                 C·H·W    α·C·H·W        relative to the calibration (CIFAR)
=====================  =======  =============  =====================================
16×16 grey (mnist)     256      0.256          1/12
28×28 grey             784      0.784          1/3.9
32×32 RGB (CIFAR-10)   3,072    3.072          1 (where α = 1e-3 was chosen)
=====================  =======  =============  =====================================

So at this suite's default 16 px the retain term is 12× weaker, relative to the forget term, than in the setting
the reference's α was calibrated for. α stays 1e-3 ([code]); the CIFAR-equivalent weight at C·H·W pixels is
α = 3.072 / (C·H·W) (0.012 at 16×16 grey), a variant to tune beside the default, not a silent rescaling.

Options and defaults (``Config``):

* ``alpha`` α = 1e-3 ([code], the SalUn README's command).
* ``pseudo_label`` = ``next`` ([code]): c′ = (c_f + 1) mod K, a fixed class, as in the current reference code;
  ``random`` draws c′ uniformly from the other K − 1 classes per sample (the paper and older code) — [open]. In a
  continual sequence c′ is never a class an earlier request forgot: ``next`` skips to the next retained class.
* ``forget_label_dropout`` = ``label_dropout`` = 0.1 ([code]): the forget pass and the c′ pass (on forget
  images) and the retain pass each drop labels to the null class independently with p = 0.1, as the reference
  model does in training mode.
* ``lr`` = 1e-4 Adam (weight decay 0), ``grad_clip`` = 1.0 ([code]); steps and batch size (forget and retain) are
  the profile's shared budget (reference: 1000 steps at batch 128 + 128, no EMA).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from unlearnbench.methods.base import Batch, MethodConfig, UnlearningMethod
from unlearnbench.methods.registry import register_method


@register_method("rl", version=1)
class RandomLabel(UnlearningMethod):
    """Random Label (RL): SalUn's relabelling loss without the mask (forget c_f → stop-grad prediction for c′)."""

    @dataclass
    class Config(MethodConfig):
        """RL hyper-parameters; see the module docstring."""

        alpha: float = 1e-3
        pseudo_label: Literal["next", "random"] = "next"

    def pseudo_labels(self, n: int, device: torch.device | str) -> torch.Tensor:
        """c′ ∈ :meth:`retained_classes`: the next one after c_f (cyclically: (c_f + 1) mod K unless an earlier
        request forgot it), or a uniformly random one per sample."""
        others = self.retained_classes()  # never c_f, nor a class forgotten by an earlier request
        if self.config.pseudo_label == "next":
            k = self.model.num_classes
            nxt = next(c % k for c in range(self.forget_class + 1, self.forget_class + k) if c % k in others)
            return torch.full((n,), nxt, dtype=torch.long, device=device)
        return torch.as_tensor(others, device=device)[torch.randint(0, len(others), (n,), device=device)]

    def needs_retain(self) -> bool:
        return self.config.alpha > 0

    def relabel_loss(self, forget_batch: Batch) -> torch.Tensor:
        r"""MSE(ε_θ(x_t, t, c_f), sg ε_θ(x_t, t, c′)) on forget images (mean over elements)."""
        x0, _ = forget_batch
        x_t, t, _ = self.noised(x0)
        eps = self.model(x_t, t, self.dropped(self.forget_labels(len(x0), x0.device), on_forget=True))
        with torch.no_grad():
            target = self.model(x_t, t, self.dropped(self.pseudo_labels(len(x0), x0.device), on_forget=True))
        return F.mse_loss(eps, target)

    def loss(self, forget_batch: Batch | None, retain_batch: Batch | None) -> torch.Tensor:
        r"""L = MSE(ε_θ(x_t, t, c_f), sg ε_θ(x_t, t, c′)) + α · L(x_r, c_r) (pixel sum, batch mean)."""
        loss = self.relabel_loss(forget_batch)
        if self.config.alpha > 0:
            loss = loss + self.config.alpha * self.standard_loss(retain_batch, "pixel_sum")
        return loss
