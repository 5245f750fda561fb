r"""O3's orthogonal LoRA (Gao et al., ICLR 2025, "On Large Language Model Continual Unlearning"), adapted to
class-conditional diffusion: one low-rank adapter per forget request, the base weights frozen, the new adapter's
A matrices kept orthogonal to every earlier adapter's.

For request k the UNet's weights W (every ``Conv2d`` and ``Linear`` layer, via ``peft``) become W + (α/r)·B_k A_k
with only A_k, B_k trained (B_k = 0 at the start: the step begins exactly at the previous model). The loss is the
forget objective plus O3's orthogonality penalty (METHODS.md, "O3 → orthogonal LoRA")::

    L = L_forget(θ + ΔW_k) + μ · Σ_{i<k} Σ_layers ‖A_i A_kᵀ‖²_F,

with a Conv2d's A (r × C_in × k_h × k_w) flattened to r × (C_in·k_h·k_w). After the request the adapter is merged
into the weights and its A matrices are kept (``continual_state``): the adapters *stack* at inference (W + Σ_k ΔW_k,
identical to keeping them unmerged since LoRA is additive) and the next request's penalty sees them. A one-request
run (the leaderboard) has no earlier adapter, so it is the forget objective through one rank-r adapter.

Options and defaults (``Config``, on top of Random Label's):

* ``rank`` r = 8, ``lora_alpha`` = 16, ``ortho_weight`` μ = 0.1 — O3's LLM code ([code]).
* The forget objective is Random Label's relabelling (:mod:`unlearnbench.methods.random_label`):
  L_forget = MSE(ε_θ(x_t, t, c_f), sg ε_θ(x_t, t, c′)) with c′ drawn uniformly per sample from the classes still
  kept (``pseudo_label`` = ``random``) — the diffusion analogue of O3's released code, which trains each adapter on
  the request's data with random answers (its "random_force" sets). ``alpha`` = 0: no retain data, as in O3
  (METHODS.md); with ``alpha`` > 0 the retain set excludes every earlier request. Label dropout as RL (0.1).
* Every ``Conv2d``/``Linear`` of the UNet gets an adapter (the analogue of O3's all linear layers); the class
  embedding does not (a LoRA on it could rewrite c_f's row directly, issue 10's finding, not O3's mechanism).
* Adapter k starts fresh (peft's default init, B = 0) — our choice: the LLM code starts adapter k from adapter
  k − 1, which with B_{k−1} copied would re-apply the previous update and start the orthogonality penalty at its
  maximum.
* O3's input gate (an OOD detector that decides whether to load the adapters) is not offered: with class
  conditioning the label is known at sampling time, so a gate is access control, not forgetting (README).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.methods.base import Batch
from unlearnbench.methods.random_label import RandomLabel
from unlearnbench.methods.registry import register_method

ADAPTER = "request"


def lora_a_matrices(unet: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every adapter A matrix of ``unet`` as r × fan_in (a Conv2d's r × C_in × k_h × k_w flattened), by layer."""
    return {name.removesuffix(f".lora_A.{ADAPTER}.weight"): p.flatten(1)
            for name, p in unet.named_parameters() if name.endswith(f".lora_A.{ADAPTER}.weight")}


def orthogonality_penalty(current: dict[str, torch.Tensor], earlier: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    """Σ_{i<k} Σ_layers ‖A_i A_kᵀ‖²_F (0 without earlier adapters)."""
    total = torch.zeros((), device=next(iter(current.values())).device)
    for old in earlier:
        for name, a_k in current.items():
            if name in old:
                total = total + (old[name].to(a_k.device) @ a_k.T).pow(2).sum()
    return total


@register_method("o3", version=1)
class OrthogonalLoRA(RandomLabel):
    """O3 (Gao et al., 2025): one LoRA per request (r 8, α 16), A ⟂ earlier adapters' A (μ 0.1); random relabelling."""

    @dataclass
    class Config(RandomLabel.Config):
        """O3 adapter options on top of Random Label's; see the module docstring."""

        alpha: float = 0.0
        pseudo_label: Literal["next", "random"] = "random"
        rank: int = 8
        lora_alpha: float = 16.0
        ortho_weight: float = 0.1

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.rank < 1 or self.lora_alpha <= 0 or self.ortho_weight < 0 or self.alpha < 0:
                raise ValueError(f"need rank >= 1, lora_alpha > 0, ortho_weight >= 0, alpha >= 0; got {self.rank}, "
                                 f"{self.lora_alpha}, {self.ortho_weight}, {self.alpha}")

    def __init__(self, original: ConditionalDiffusion, *args: Any, **kwargs: Any) -> None:
        super().__init__(original, *args, **kwargs)
        # the A matrices of the adapters of earlier requests (a continual chain hands them on with the model)
        self.earlier_adapters: list[dict[str, torch.Tensor]] = list(
            getattr(original, "continual_state", {}).get("lora_a", []))
        self._lora = None

    def prepare(self) -> None:
        """Freeze the UNet and add this request's adapter to every Conv2d/Linear layer (peft)."""
        from peft import LoraConfig
        from peft.tuners.lora import LoraModel

        if self._lora is not None:  # already added (prepare() called before run())
            return
        cfg = self.config
        unet = self.model.unet
        targets = [n for n, m in unet.named_modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
        lora = LoraModel(unet, LoraConfig(r=cfg.rank, lora_alpha=cfg.lora_alpha, target_modules=targets,
                                          lora_dropout=0.0), ADAPTER)
        object.__setattr__(self, "_lora", lora)  # not a submodule: it wraps the UNet the method already holds
        for name, p in self.model.named_parameters():
            p.requires_grad_(f".lora_A.{ADAPTER}." in name or f".lora_B.{ADAPTER}." in name)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam at ``lr`` on this request's adapter only."""
        return torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad], lr=self.config.lr)

    def loss(self, forget_batch: Batch | None, retain_batch: Batch | None) -> torch.Tensor:
        r"""Random Label's loss through the adapter + μ·Σ_{i<k} ‖A_i A_kᵀ‖²_F."""
        loss = super().loss(forget_batch, retain_batch)
        if self.earlier_adapters and self.config.ortho_weight > 0:
            penalty = orthogonality_penalty(lora_a_matrices(self.model.unet), self.earlier_adapters)
            self.log("unlearn/orthogonality", penalty, batch_size=len(forget_batch[0]))
            loss = loss + self.config.ortho_weight * penalty
        return loss

    def extra_info(self) -> dict[str, Any]:
        current = lora_a_matrices(self.model.unet) if self._lora is not None else {}
        info = {"adapter_parameters": sum(p.numel() for p in self.model.parameters() if p.requires_grad),
                "earlier_adapters": len(self.earlier_adapters)}
        if current and self.earlier_adapters:
            with torch.no_grad():
                info["orthogonality_penalty"] = float(orthogonality_penalty(current, self.earlier_adapters))
        return info

    def unlearned_model(self) -> ConditionalDiffusion:
        """Merge this request's adapter into the weights (adapters stack additively) and hand its A matrices on."""
        if self._lora is not None:
            a_k = {name: a.detach().cpu().clone() for name, a in lora_a_matrices(self.model.unet).items()}
            self.model.unet = self._lora.merge_and_unload()
            self._lora = None
            for p in self.model.parameters():
                p.requires_grad_(True)
            self.model.continual_state = {"lora_a": [*self.earlier_adapters, a_k]}
        return super().unlearned_model()
