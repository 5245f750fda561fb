r"""Gradient ascent (GA): climb the standard loss on the forget class, descend it (weakly) on retained classes.

Loss ([code], the ``ga`` branch of the SalUn reference DDPM code)::

    L = − E_{x_0 ∈ D_f} Σ_pixels (ε − ε_θ(x_t, t, c_f))²  +  α · E_{(x_0, c) ∈ D_r} Σ_pixels (ε − ε_θ(x_t, t, c))²

both summed over pixels and averaged over the batch, both with the 10 % CFG label dropout of training mode.
Known to over-forget and to damage retained classes: the forget term is unbounded below.

Options and defaults (``Config``):

* ``alpha`` α = 1e-3 — [open], our choice. The reference code uses one ``--alpha`` flag for all its methods and
  documents only SalUn's 1e-3; METHODS.md gives GA "the same optimiser and steps as SalUn", so GA gets SalUn's
  α (calibrated to the same pixel-sum reductions) as well.
* ``lr`` = 1e-4 Adam (weight decay 0), ``grad_clip`` = 1.0, ``label_dropout`` = ``forget_label_dropout`` = 0.1 —
  as SalUn ([code]): the ascent term is a pass on forget images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unlearnbench.methods.base import Batch, MethodConfig, UnlearningMethod
from unlearnbench.methods.registry import register_method


@register_method("ga", version=1)
class GradientAscent(UnlearningMethod):
    """Gradient ascent (GA): −L(x_f, c_f) + α·L(x_r, c_r), pixel-sum losses, α = 1e-3."""

    @dataclass
    class Config(MethodConfig):
        """GA hyper-parameters; see the module docstring."""

        alpha: float = 1e-3

    def loss(self, forget_batch: Batch | None, retain_batch: Batch | None) -> torch.Tensor:
        r"""L = −L(x_f, c_f) + α · L(x_r, c_r), both summed over pixels and averaged over the batch."""
        return -self.standard_loss(forget_batch, "pixel_sum", on_forget=True) + self.config.alpha * self.standard_loss(
            retain_batch, "pixel_sum")
