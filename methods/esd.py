r"""ESD, adapted to class conditioning (Gandikota et al., ICCV 2023, "Erasing Concepts from Diffusion Models").

ESD fine-tunes the model so that, conditioned on the erased concept, it predicts the *negatively guided* noise of
the frozen original ε*: the class is steered away from, not replaced. With the class label c_f in place of a text
prompt and the null class ∅ as the unconditional branch (METHODS.md, "ESD, adapted" [code, an older SalUn
commit])::

    L = E_{x_0 ∈ D_f, t, ε} ‖ ε_θ(x_t, t, c_f) − sg[ ε*(x_t, t, ∅) − η · (ε*(x_t, t, c_f) − ε*(x_t, t, ∅)) ] ‖²,
    x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε.

ε* is a frozen copy of the original taken when the method is built; the target never depends on the weights being
trained (tested). No retain term: only the forget class's conditional prediction is trained.

Options and defaults (``Config``):

* ``eta`` η = 7.5 — METHODS.md's CIFAR-scale value ([code]); ESD's paper uses η = 1 for Stable Diffusion.
* ``x_t`` from the forward process on real forget-class images — the [open] simplification METHODS.md allows; the
  reference code draws x_t by partially sampling the model from noise instead.
* ``forget_label_dropout`` = 0 — our choice, as for SAFEMax: the objective is defined on ε_θ(·, c_f); dropping the
  label would train the null branch, which every class's CFG sample uses, towards the negated guidance.
* loss averaged over all elements; ``lr`` = 1e-4 Adam, ``grad_clip`` = 1.0 — the suite's shared [open] defaults;
  steps and batch are the profile's budget (tune lr with ``unlearnbench tune``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.methods.base import Batch, MethodConfig, UnlearningMethod, UnlearningOutcome
from unlearnbench.methods.registry import register_method


@register_method("esd", version=1)
class ESD(UnlearningMethod):
    """ESD (Gandikota et al., 2023), class-conditional: ε_θ(x_t, c_f) → ε*(x_t, ∅) − η(ε*(x_t, c_f) − ε*(x_t, ∅))."""

    @dataclass
    class Config(MethodConfig):
        """ESD hyper-parameters; see the module docstring."""

        eta: float = 7.5
        forget_label_dropout: float = 0.0

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.eta < 0:
                raise ValueError(f"eta must be >= 0, got {self.eta}")

    def __init__(self, original: ConditionalDiffusion, *args, **kwargs) -> None:
        super().__init__(original, *args, **kwargs)
        self.frozen = original.clone().eval().requires_grad_(False)  # ε*: moves with the module, never trained

    def needs_retain(self) -> bool:
        return False

    def run(self, logger: Any = False) -> UnlearningOutcome:
        """The shared fine-tuning run, without Lightning's warning that ε*'s modules are in eval mode at the start
        of training: the frozen original is kept in eval mode on purpose."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
            return super().run(logger)

    @torch.no_grad()
    def target(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """ε*(x_t, ∅) − η · (ε*(x_t, c_f) − ε*(x_t, ∅)) from the frozen original (one batched pass)."""
        n = x_t.shape[0]
        labels = torch.cat([self.forget_labels(n, x_t.device),
                            torch.full((n,), self.frozen.null_class, dtype=torch.long, device=x_t.device)])
        cond, null = self.frozen(torch.cat([x_t, x_t]), torch.cat([t, t]), labels).chunk(2)
        return null - self.config.eta * (cond - null)

    def loss(self, forget_batch: Batch | None, retain_batch: Batch | None) -> torch.Tensor:
        r"""L = ‖ε_θ(x_t, t, c_f) − sg[ε*(x_t, ∅) − η(ε*(x_t, c_f) − ε*(x_t, ∅))]‖² (mean over elements)."""
        x0, _ = forget_batch
        x_t, t, _ = self.noised(x0)
        eps = self.model(x_t, t, self.dropped(self.forget_labels(len(x0), x0.device), on_forget=True))
        return F.mse_loss(eps, self.target(x_t, t))

