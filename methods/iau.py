r"""IAU, influence-approximation unlearning (Liu et al., 2025), adapted to the diffusion loss — an adaptation.

IAU removes the forget set's influence with one first-order update computed from two accumulated gradients, no
Hessian and no training loop. With L the standard ε-prediction loss averaged over a whole set (METHODS.md, "IAU"
[code + paper]):

    g_f = ∇_θ L(D_f),   g_r = ∇_θ L(D_r)   (each the gradient of the mean loss over its set, at θ*),

* ``form = "adam"`` (default, the released code's form): one step of a freshly created Adam on L(D_r) − L(D_f),
  i.e. with gradient g = g_r − g_f. Adam's first step is θ ← θ* − lr · ĝ / (|ĝ| + ε) with ĝ = g (bias-corrected
  moments), ≈ a sign step of size ``lr`` per weight.
* ``form = "paper"``: θ ← θ* + η · (g_f − g_r), η = ``eta``.

Both move along the gradient difference g_f − g_r (tested): up the forget loss, down the retain loss. The default
is the released code's form because its step is scale-free (each weight moves by about ``lr``), so the suite's
shared learning-rate grid tunes it like every other method; the paper form's η has to be matched to the gradients'
scale, which depends on the loss reduction and the model.

Options and defaults (``Config``), all our choices where not marked:

* ``lr`` = 1e-4 ([open] suite default) for the Adam form; ``eta`` = 1.0 for the paper form.
* the loss is averaged over all elements (``reduction`` mean); t ~ U{0..T−1} and ε drawn once per image (seeded);
  ``label_dropout`` = ``forget_label_dropout`` = 0 (the gradients are of the conditional loss the model is
  evaluated with).
* ``retain_images`` = None: all of D_r (``N`` = a seeded random subset of N images, for large data);
  ``gradient_batch_size`` = 256 (memory only: the result is the gradient of the set mean either way).
* ``grad_clip`` is not applied: there is a single step, and Adam's first step does not depend on the scale.
* The optional gradient-restriction pretraining of the paper (ℓ + α‖∇ℓ‖) changes the original model itself and
  is not built (it would be a separate row). Steps and batch of the profile's budget do not apply: IAU takes
  exactly one update (``steps`` = 1 in its record); the two gradient passes are its cost (``unlearn_seconds``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from unlearnbench.foundation.cost import stopwatch
from unlearnbench.foundation.trainer import pick_device
from unlearnbench.methods.base import MethodConfig, UnlearningMethod, UnlearningOutcome
from unlearnbench.methods.registry import register_method


@register_method("iau", version=1)
class IAU(UnlearningMethod):
    """IAU (influence approximation, adapted): one update along ∇L(D_f) − ∇L(D_r); Adam (code) or η-step (paper)."""

    @dataclass
    class Config(MethodConfig):
        """IAU hyper-parameters; see the module docstring."""

        form: Literal["adam", "paper"] = "adam"
        eta: float = 1.0
        retain_images: int | None = None
        gradient_batch_size: int = 256
        label_dropout: float = 0.0
        forget_label_dropout: float = 0.0

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.eta <= 0 or self.gradient_batch_size < 1:
                raise ValueError(f"eta must be > 0 and gradient_batch_size >= 1, got {self.eta}, "
                                 f"{self.gradient_batch_size}")
            if self.retain_images is not None and self.retain_images < 1:
                raise ValueError(f"retain_images must be >= 1 or None, got {self.retain_images}")

    def retain_set(self) -> Dataset:
        """D_r, or a seeded random subset of ``retain_images`` of it."""
        full = super().retain_set()
        n = self.config.retain_images
        if n is None or n >= len(full):
            return full
        keep = torch.randperm(len(full), generator=torch.Generator().manual_seed(self.seed))[:n]
        return Subset(full, keep.tolist())

    def mean_gradient(self, dataset: Dataset, on_forget: bool) -> list[torch.Tensor]:
        """∇_θ of the standard loss averaged over every image of ``dataset`` (one t and ε per image)."""
        params = list(self.model.parameters())
        device = params[0].device
        total = [torch.zeros_like(p) for p in params]
        n = len(dataset)
        for x0, labels in DataLoader(dataset, batch_size=self.config.gradient_batch_size):
            self.model.zero_grad(set_to_none=True)
            batch = (x0.to(device), labels.to(device))
            (self.standard_loss(batch, "mean", on_forget=on_forget) * (len(x0) / n)).backward()
            for acc, p in zip(total, params, strict=True):
                if p.grad is not None:
                    acc.add_(p.grad)
        self.model.zero_grad(set_to_none=True)
        return total

    @torch.no_grad()
    def update(self, g_forget: list[torch.Tensor], g_retain: list[torch.Tensor]) -> None:
        """The one update: an Adam step on g_r − g_f (``adam``) or θ += η (g_f − g_r) (``paper``)."""
        params = list(self.model.parameters())
        if self.config.form == "paper":
            for p, gf, gr in zip(params, g_forget, g_retain, strict=True):
                p.add_(gf - gr, alpha=self.config.eta)
            return
        optimizer = torch.optim.Adam(params, lr=self.config.lr)
        for p, gf, gr in zip(params, g_forget, g_retain, strict=True):
            p.grad = gr - gf
        optimizer.step()
        self.model.zero_grad(set_to_none=True)

    def run(self, logger: Any = False) -> UnlearningOutcome:
        """Seed, accumulate g_f and g_r at θ*, take the one update; all of it is timed as the unlearning."""
        L.seed_everything(self.seed, workers=True, verbose=False)
        device = pick_device(self.profile.runtime)
        self.model.to(device).train()
        with stopwatch(device) as cost:
            g_forget = self.mean_gradient(self.data.forget_dataset(self.forget_class), on_forget=True)
            g_retain = self.mean_gradient(self.retain_set(), on_forget=False)
            self.update(g_forget, g_retain)
        norm = torch.sqrt(sum(((gf - gr) ** 2).sum() for gf, gr in zip(g_forget, g_retain, strict=True)))
        return UnlearningOutcome(model=self.unlearned_model(), prepare_seconds=0.0, unlearn_seconds=cost.seconds,
                                 steps=1, extra={"gradient_difference_norm": float(norm)})
