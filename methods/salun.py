r"""SalUn (Fan et al., ICLR 2024): saliency-masked Random Label unlearning.

Step 1, the saliency mask (``prepare()``, timed separately as the method's prior; [code] as METHODS.md states it):
one pass over all of D_f in batches of 128 with the model in eval mode; per batch the standard loss of the
CFG-guided prediction (w = 2, no label dropout),

    g_b = clip_{‖·‖≤1}( ∇_θ E_batch Σ_pixels (ε − [(1+w)·ε_θ(x_t, t, c_f) − w·ε_θ(x_t, t, ∅)])² ),

is back-propagated, its gradient clipped to norm 1.0 and added to a running sum G = Σ_b g_b. The mask is 1 on the
``mask_ratio`` (50 %) parameters with the largest |G|, ranked globally over all parameters (the median threshold;
exactly round(ratio · #params) entries, ties broken by ``torch.topk``).

Step 2, unlearning: Random Label's loss (see :mod:`methods.random_label`),

    L = MSE( ε_θ(x_t, t, c_f), sg[ε_θ(x_t, t, c′)] ) + α · L_pixel-sum(x_r, c_r),   α = 1e-3, c′ = (c_f + 1) mod K,

with the update: backward → clip gradient norm to 1.0 (over all parameters) → multiply gradients by the mask →
Adam (lr 1e-4, weight decay 0). The masking runs in ``configure_gradient_clipping``, right after Lightning's own
clipping: in Lightning 2.x ``on_before_optimizer_step`` runs *before* clipping, so it is the wrong hook. A masked
parameter's gradient is exactly 0 at every step, so Adam's moments for it stay 0 and its update is 0/(0+eps) = 0:
masked-out parameters stay bit-identical (tested).

Options and defaults (``Config``, on top of Random Label's ``alpha``, ``pseudo_label``, ``lr``, ``grad_clip``,
``label_dropout``, ``forget_label_dropout``): ``mask_ratio`` = 0.5, ``saliency_batch_size`` = 128,
``saliency_guidance`` w = 2.0, ``saliency_clip`` = 1.0 (all [code]).

Differences from the public reference DDPM code, where METHODS.md is followed instead: the reference
``generate_mask`` also takes an optimiser step after every batch (so later batches see changed weights) and sums
|g_b| rather than taking |Σ g_b|; its ranking keeps the *smallest* half (``ranks < threshold`` on an ascending
argsort). Here the weights are fixed during the pass and the largest |G| are kept, as the paper describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader

from methods.random_label import RandomLabel
from methods.registry import register_method


@register_method("salun")
class SalUn(RandomLabel):
    """SalUn (Fan et al., ICLR 2024): Random Label updates restricted to the 50 % most forget-salient weights."""

    @dataclass
    class Config(RandomLabel.Config):
        """SalUn hyper-parameters; see the module docstring."""

        mask_ratio: float = 0.5
        saliency_batch_size: int = 128
        saliency_guidance: float = 2.0
        saliency_clip: float | None = 1.0

        def __post_init__(self) -> None:
            super().__post_init__()
            if not 0.0 < self.mask_ratio <= 1.0:
                raise ValueError(f"mask_ratio must lie in (0, 1], got {self.mask_ratio}")

    masks: list[torch.Tensor] | None = None

    def saliency(self) -> list[torch.Tensor]:
        """G = Σ_batches clip(∇_θ L_guided(x_f, c_f)) over all of D_f, one tensor per parameter (eval mode)."""
        model, cfg = self.model, self.config
        params = list(model.parameters())
        device = params[0].device
        total = [torch.zeros_like(p) for p in params]
        was_training = model.training
        model.eval()
        loader = DataLoader(self.data.forget_dataset(self.forget_class), batch_size=cfg.saliency_batch_size)
        for x0, _ in loader:
            x0 = x0.to(device)
            model.zero_grad(set_to_none=True)
            loss = model.denoising_loss(x0, self.forget_labels(len(x0), device), reduction="pixel_sum",
                                        guidance=cfg.saliency_guidance)
            loss.backward()
            if cfg.saliency_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.saliency_clip)
            for acc, p in zip(total, params, strict=True):
                if p.grad is not None:
                    acc.add_(p.grad)
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        return total

    def prepare(self) -> None:
        """The saliency mask: 1 on the top ``mask_ratio`` of |G| ranked over all parameters, else 0."""
        scores = torch.cat([g.abs().flatten() for g in self.saliency()])
        keep = torch.zeros_like(scores, dtype=torch.bool)
        keep[torch.topk(scores, round(self.config.mask_ratio * scores.numel()), sorted=False).indices] = True
        self.masks = [m.view_as(p) for m, p in zip(keep.split([p.numel() for p in self.model.parameters()]),
                                                      self.model.parameters(), strict=True)]

    def on_fit_start(self) -> None:
        if self.masks is None:
            raise RuntimeError("SalUn.prepare() (the saliency mask) must run before training; use run_unlearning()")

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: Any = None,
                                    gradient_clip_algorithm: Any = None) -> None:
        """Lightning's clipping (``grad_clip``), then gradients × mask — the order of the reference code."""
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        for p, mask in zip(self.model.parameters(), self.masks, strict=True):
            if p.grad is not None:
                p.grad.masked_fill_(~mask.to(p.grad.device), 0.0)

    def extra_info(self) -> dict[str, float]:
        kept = sum(int(m.sum()) for m in self.masks or [])
        return {"mask_fraction": kept / sum(p.numel() for p in self.model.parameters())}
