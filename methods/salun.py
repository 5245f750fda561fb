r"""SalUn (Fan et al., ICLR 2024): saliency-masked Random Label unlearning.

Step 1, the saliency mask (``prepare()``, timed separately as the method's prior; [code] as METHODS.md states it):
one pass over all of D_f in batches of 128 with the model in eval mode; per batch the standard loss of the
CFG-guided prediction (w = 2, no label dropout),

    g_b = clip_{‖·‖≤1}( ∇_θ E_batch Σ_pixels (ε − [(1+w)·ε_θ(x_t, t, c_f) − w·ε_θ(x_t, t, ∅)])² ),

is back-propagated, its gradient clipped to norm 1.0 and added to a running sum G = Σ_b g_b. The mask is 1 on the
``mask_ratio`` (50 %) parameters with the largest |G|, ranked globally over all parameters (the median threshold;
exactly round(ratio · #params) entries, ties broken by ``torch.topk``).

Step 2, unlearning: Random Label's loss (see :mod:`unlearnbench.methods.random_label`),

    L = MSE( ε_θ(x_t, t, c_f), sg[ε_θ(x_t, t, c′)] ) + α · L_pixel-sum(x_r, c_r),   α = 1e-3, c′ = (c_f + 1) mod K,

with the update: backward → clip gradient norm to 1.0 (over all parameters) → multiply gradients by the mask →
Adam (lr 1e-4, weight decay 0): the base class's ``gradient_masks`` (see
:meth:`unlearnbench.methods.base.UnlearningMethod.configure_gradient_clipping`); masked-out parameters stay
bit-identical (tested). The saliency itself is :func:`unlearnbench.methods.saliency.saliency`.

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

from unlearnbench.methods.random_label import RandomLabel
from unlearnbench.methods.registry import register_method
from unlearnbench.methods.saliency import saliency, top_fraction_masks


@register_method("salun", version=1)
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

    def prepare(self) -> None:
        """The saliency mask: 1 on the top ``mask_ratio`` of |G| ranked over all parameters, else 0."""
        cfg = self.config
        scores = saliency(self.model, self.data.forget_dataset(self.forget_class), self.forget_class,
                          cfg.saliency_batch_size, cfg.saliency_guidance, cfg.saliency_clip)
        self.gradient_masks = top_fraction_masks(self.model, scores, cfg.mask_ratio)

    def on_fit_start(self) -> None:
        if self.gradient_masks is None:
            raise RuntimeError("SalUn.prepare() (the saliency mask) must run before training; use run_unlearning()")
