r"""Weight saliency (Fan et al., ICLR 2024, SalUn's step 1) and the gradient masks built from it.

The saliency of a parameter for the forget class is |G|, G = Σ_b clip_{‖·‖≤c}(∇_θ L_guided(x_b, c_f)) summed over
all of D_f in batches, with the model in eval mode and its weights fixed during the pass:

    L_guided(x_0, c_f) = Σ_pixels (ε − [(1+w)·ε_θ(x_t, t, c_f) − w·ε_θ(x_t, t, ∅)])²   (mean over the batch).

A mask keeps the ``ratio`` parameters with the largest |G|, ranked globally over all parameters. Used by SalUn
and by SAFEMax's ``trainable = "salun_mask"`` arm (issue 10's capacity study), so both rank weights identically.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from unlearnbench.foundation.diffusion import ConditionalDiffusion


def saliency(model: ConditionalDiffusion, forget_set: Dataset, forget_class: int, batch_size: int = 128,
             guidance: float = 2.0, clip: float | None = 1.0) -> list[torch.Tensor]:
    """G, one tensor per parameter of ``model`` (its gradients are left cleared; its mode is restored)."""
    params = list(model.parameters())
    device = params[0].device
    total = [torch.zeros_like(p) for p in params]
    was_training = model.training
    model.eval()
    for x0, _ in DataLoader(forget_set, batch_size=batch_size):
        x0 = x0.to(device)
        model.zero_grad(set_to_none=True)
        labels = torch.full((len(x0),), forget_class, dtype=torch.long, device=device)
        model.denoising_loss(x0, labels, reduction="pixel_sum", guidance=guidance).backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        for acc, p in zip(total, params, strict=True):
            if p.grad is not None:
                acc.add_(p.grad)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return total


def top_fraction_masks(model: torch.nn.Module, scores: list[torch.Tensor], ratio: float) -> list[torch.Tensor]:
    """Boolean masks, True on the ``ratio`` of entries with the largest |score| over all parameters (exactly
    round(ratio · #params) entries; ties broken by ``torch.topk``)."""
    flat = torch.cat([s.abs().flatten() for s in scores])
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[torch.topk(flat, round(ratio * flat.numel()), sorted=False).indices] = True
    params = list(model.parameters())
    return [m.view_as(p) for m, p in zip(keep.split([p.numel() for p in params]), params, strict=True)]


def embedding_row_masks(model: ConditionalDiffusion, row: int) -> list[torch.Tensor]:
    """Boolean masks that are True only on row ``row`` of the UNet's class-embedding table."""
    table = model.unet.class_embedding.weight
    masks = []
    for p in model.parameters():
        mask = torch.zeros_like(p, dtype=torch.bool)
        if p is table:
            mask[row] = True
        masks.append(mask)
    return masks
