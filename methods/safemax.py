r"""SAFEMax (Spartalis et al., 2025): forget a class by maximising the entropy of what the model generates for it.

Conditioned on the forget class c_f, the model is trained to predict noise that is independent of its input, so
in expectation ε_θ(x_t, t, c_f) → 0 and the sampler stops denoising: samples of c_f stay Gaussian noise. No anchor
class, no mask, no Fisher matrix — one forward/backward pass per step (with the default β = 0).

Loss (METHODS.md, [paper, poster])::

    L_f = E_{x_0 ∈ D_f, t, ε_t, ε_T} [ ψ(t) · ‖ε_T − ε_θ(x_t, t, c_f)‖² ],   x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε_t,
    ψ(t) = exp(−λ · t / T),
    L    = L_f + β · L_r,   L_r = E_{(x_0, c) ∈ D_r} ‖ε − ε_θ(x_t, t, c)‖²   (the standard loss).

Options and defaults (``Config``):

* ``lam`` λ = 1 — the paper's main setting ([paper]); λ = 0 weights all timesteps equally; λ < 0 (our
  extension, issue 10's timestep arm) weights large t more. ψ is not normalised (E_t ψ ≈ 0.63 at λ = 1),
  exactly as written in the paper.
* ``t_min``, ``t_max`` = 0, 1000 — our extension for issue 10's timestep arms: t is drawn from U{t_min..t_max−1}
  instead of U{0..T−1} (ψ still applies). The default is the paper's full range.
* ``trainable`` = ``all`` — our extension for issue 10's control arms: ``forget_embedding`` lets only row c_f of
  the class-embedding table change (the retained classes' rows, the null row and every shared weight stay
  bit-identical, so whatever forgetting it reaches goes through that row alone); ``salun_mask`` restricts the
  update to SalUn's saliency mask (:mod:`unlearnbench.methods.saliency`, ``mask_ratio`` 0.5, SalUn's defaults;
  computed in ``prepare()`` and timed as the prior). Gradients are clipped over all parameters, then masked
  (SalUn's order).
* ``target`` = ``noise`` — [open]: ε_T is a fresh N(0, I) sample independent of x_t (the literal loss); ``zero``
  uses ε_T = 0, the same expected gradient with less variance.
* ``retain_weight`` β = 0 — [open]: the poster shows L_f only, and β = 0 matches its one-batch-per-step memory
  figure. With β = 0 no retain batch is loaded at all.
* ``reduction`` = ``mean`` — [open], our choice: both ‖·‖² terms are averaged over all elements (pixels,
  channels, batch), like the pretraining loss; ``pixel_sum`` sums over pixels and averages over the batch, as the
  SalUn reference code does (it multiplies the loss, hence β's scale, by C·H·W).
* ``lr`` = 1e-4 (Adam, weight decay 0), ``grad_clip`` = 1.0 — [open] optimiser defaults of METHODS.md; the number
  of steps and the batch size are the profile's shared budget (``unlearning.steps`` / ``batch_size``).
* ``forget_label_dropout`` = 0 — our choice (every method has this switch; SalUn/RL/GA keep the shared 0.1):
  the loss is defined on ε_θ(x_t, t, c_f), so every forget pass is conditioned on c_f. Keeping the
  pretraining's 10 % dropout would also train the *null* (unconditional) prediction towards noise on forget
  images, and the null prediction enters every class's CFG sample ((1 + w)·ε_c − w·ε_∅), spilling
  the forgetting into retained classes. The committed reference results carry the shared 0.1 as an
  ablation row (``safemax_fld0.1``). ``label_dropout`` (0.1) applies to the retain term.

Caveat (METHODS.md, "Observed in a quick probe"): on small models the forgetting spills into retained classes and
the working window of lr/steps/β/target is narrow; tune it on a validation forget class, with the same budget as
every other method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from unlearnbench.foundation.diffusion import NUM_TRAIN_TIMESTEPS
from unlearnbench.methods.base import Batch, MethodConfig, UnlearningMethod
from unlearnbench.methods.registry import register_method
from unlearnbench.methods.saliency import embedding_row_masks, saliency, top_fraction_masks


@register_method("safemax", version=1)
class SAFEMax(UnlearningMethod):
    """SAFEMax (Spartalis et al., 2025): drive ε_θ(·, t, c_f) to input-independent noise, weight ψ(t)=exp(−λt/T)."""

    @dataclass
    class Config(MethodConfig):
        """SAFEMax hyper-parameters; see the module docstring for which defaults are [paper] or [open]."""

        lam: float = 1.0
        target: Literal["noise", "zero"] = "noise"
        retain_weight: float = 0.0
        reduction: Literal["mean", "pixel_sum"] = "mean"
        forget_label_dropout: float = 0.0
        t_min: int = 0
        t_max: int = NUM_TRAIN_TIMESTEPS
        trainable: Literal["all", "forget_embedding", "salun_mask"] = "all"
        mask_ratio: float = 0.5

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.retain_weight < 0:
                raise ValueError(f"retain_weight must be >= 0, got {self.retain_weight}")
            if not 0 <= self.t_min < self.t_max <= NUM_TRAIN_TIMESTEPS:
                raise ValueError(f"need 0 <= t_min < t_max <= {NUM_TRAIN_TIMESTEPS}, got {self.t_min}, {self.t_max}")
            if not 0.0 < self.mask_ratio <= 1.0:
                raise ValueError(f"mask_ratio must lie in (0, 1], got {self.mask_ratio}")

    def needs_retain(self) -> bool:
        return self.config.retain_weight > 0

    def prepare(self) -> None:
        """The ``trainable`` restriction as gradient masks (none for ``all``)."""
        if self.config.trainable == "forget_embedding":
            self.gradient_masks = embedding_row_masks(self.model, self.forget_class)
        elif self.config.trainable == "salun_mask":
            scores = saliency(self.model, self.data.forget_dataset(self.forget_class), self.forget_class)
            self.gradient_masks = top_fraction_masks(self.model, scores, self.config.mask_ratio)

    def timestep_weights(self, t: torch.Tensor) -> torch.Tensor:
        """ψ(t) = exp(−λ · t / T) with T = 1000."""
        return torch.exp(-self.config.lam * t.float() / NUM_TRAIN_TIMESTEPS)

    def loss(self, forget_batch: Batch | None, retain_batch: Batch | None) -> torch.Tensor:
        r"""L = E[ψ(t)·‖ε_T − ε_θ(x_t, t, c_f)‖²] + β·L(x_r, c_r), ψ(t) = exp(−λt/T), ε_T ⟂ x_t (or 0)."""
        x0, _ = forget_batch
        x_t, t, _ = self.noised(x0, (self.config.t_min, self.config.t_max))
        eps = self.model(x_t, t, self.dropped(self.forget_labels(len(x0), x0.device), on_forget=True))
        target = torch.randn_like(eps) if self.config.target == "noise" else torch.zeros_like(eps)
        per_sample = (target - eps).pow(2).flatten(1)
        per_sample = per_sample.mean(1) if self.config.reduction == "mean" else per_sample.sum(1)
        loss = (self.timestep_weights(t) * per_sample).mean()
        if self.config.retain_weight > 0:
            loss = loss + self.config.retain_weight * self.standard_loss(retain_batch, self.config.reduction)
        return loss
