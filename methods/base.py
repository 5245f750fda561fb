r"""The base class of every unlearning method and the one function the runner calls.

An :class:`UnlearningMethod` is a LightningModule that turns the original model into an unlearned one. It works
on ``self.model = original.clone()`` (the original is never modified) and is trained by the suite's one Trainer
(:func:`unlearnbench.foundation.trainer.build_trainer`), so device, precision and seeding are identical for every
method.

A fine-tuning method only has to define

* a ``Config`` dataclass of hyper-parameters with defaults (subclass :class:`MethodConfig`), and
* ``loss(forget_batch, retain_batch)``: the defining objective, one readable method.

Optional hooks: ``prepare()`` (work before the loop, e.g. SalUn's saliency mask; timed separately as the
method's "prior"), ``needs_forget()`` / ``needs_retain()`` (which batches the loader serves, so a forget-only
method never pays for a retain batch), ``configure_optimizers()`` (default Adam, ``config.lr``), ``extra_info()``
(scalars added to the run record) and, for methods that are not a fine-tuning loop at all (Retrain), ``run()``.

Every batch is ``(images in [-1, 1], labels)``. The standard loss is
:math:`L(x_0, c) = \lVert \varepsilon - \varepsilon_\theta(x_t, t, c) \rVert^2`, :math:`t \sim U\{0..T-1\}`,
:math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset

from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.foundation.config import Profile, UnlearningConfig
from unlearnbench.foundation.cost import Cost, stopwatch
from unlearnbench.foundation.diffusion import NUM_TRAIN_TIMESTEPS, ConditionalDiffusion, Reduction
from unlearnbench.foundation.trainer import build_trainer, fitted_steps, per_device_batch, pick_device

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class MethodConfig:
    """Hyper-parameters shared by the fine-tuning methods (each method's ``Config`` extends this).

    Attributes:
        lr: Adam learning rate (1e-4: SalUn's reference value; METHODS.md [open] for SAFEMax).
        grad_clip: gradient-norm clip applied by the Trainer before every step (``None`` = off); 1.0 as in the
            reference code.
        label_dropout: probability of replacing a class label by the null class in every conditional forward
            pass on *retained* images, as in pretraining (0.1, the shared recipe [code]).
        forget_label_dropout: the same for every conditional pass on *forget-class* images (0.1 [code] for
            SalUn/RL/GA). One switch for every method (equal budget); a method that changes its default says why
            in its docstring, and the leaderboard's protocol prints each method's setting.
    """

    lr: float = 1e-4
    grad_clip: float | None = 1.0
    label_dropout: float = 0.1
    forget_label_dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("label_dropout", "forget_label_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")


@dataclass
class UnlearningOutcome:
    """What one unlearning run produced and cost.

    Attributes:
        prepare_seconds: wall-clock of ``prepare()`` (the method's prior, e.g. SalUn's mask).
        unlearn_seconds: wall-clock of the unlearning itself (``trainer.fit``; Retrain: its recorded training time).
        peak_memory_mb / memory_kind: see :mod:`unlearnbench.foundation.cost`; ``None`` means "the window of
            :func:`unlearn` measures it" (a method reports its own figure only for work done elsewhere, e.g. a
            cached Retrain).
        steps: optimiser steps taken. cached: the result came from a cache (Retrain).
        world_size: devices the fit ran on (``runtime.devices``); each got ``budget.batch_size / world_size``.
        extra: method-specific scalars, stored in the run record as ``extra_<key>``.
    """

    model: ConditionalDiffusion
    prepare_seconds: float
    unlearn_seconds: float
    steps: int
    peak_memory_mb: float | None = None
    memory_kind: str = ""
    cached: bool = False
    world_size: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


class UnlearningMethod(L.LightningModule):
    """A LightningModule that turns the original model into an unlearned one (see the module docstring)."""

    name: ClassVar[str] = ""
    # The method's numbers' version: part of every run key of the method (with its name and resolved Config), so a
    # change that moves its numbers recomputes its runs and nothing else. Built-ins state it in their registration,
    # ``@register_method(name, version=N)``; tests/test_pinned_numbers.py pins their weights after a few steps and
    # fails until it is bumped. Plugins may keep 1: their key also carries a hash of their normalised source
    # (docstrings and comments do not count).
    version: ClassVar[int] = 1
    Config: ClassVar[type] = MethodConfig
    gradient_masks: list[torch.Tensor] | None = None  # set in prepare() to restrict which weights may change

    def __init__(
        self,
        original: ConditionalDiffusion,
        forget_class: int,
        data: UnlearningDataModule,
        config: Any = None,
        budget: UnlearningConfig | None = None,
        profile: Profile | None = None,
        seed: int | None = None,
        forgotten_before: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.profile = profile if profile is not None else Profile()
        self.budget = budget if budget is not None else self.profile.unlearning
        self.config = config if config is not None else self.Config()
        if not isinstance(self.config, self.Config):
            raise TypeError(f"config of {type(self).__name__} must be a {type(self).__name__}.Config, got "
                            f"{type(self.config).__name__} (build one with methods.build_config or create_method)")
        self.data = data
        self.forget_class = data.check_class(forget_class)
        self.forgotten_before = tuple(data.check_class(c) for c in forgotten_before)
        if self.forget_class in self.forgotten_before:
            raise ValueError(f"class {self.forget_class} was already forgotten by an earlier request "
                             f"({list(self.forgotten_before)}); a continual sequence names each class once")
        self.seed = self.profile.seed if seed is None else int(seed)
        self.model = original.clone()  # the original is never touched (not even moved to another device)

    # -- the method ---------------------------------------------------------------------------------------
    def loss(self, forget_batch: Batch | None, retain_batch: Batch | None) -> torch.Tensor:
        """The method's defining objective for one step (``None`` for a batch the method does not use)."""
        raise NotImplementedError(f"{type(self).__name__} must define loss(forget_batch, retain_batch)")

    def prepare(self) -> None:
        """Work before the training loop (timed separately as the method's prior). Default: nothing."""

    def needs_forget(self) -> bool:
        """Whether ``loss`` uses a batch of the forget class."""
        return True

    def needs_retain(self) -> bool:
        """Whether ``loss`` uses a batch of the retained classes."""
        return True

    def retained_classes(self) -> list[int]:
        """The classes the model must keep: every class but c_f and those forgotten by earlier requests of a
        continual sequence (``forgotten_before``). The retain batches, SA's replay and Retrain use exactly these."""
        return self.data.classes_except(self.forget_class, *self.forgotten_before)

    def retain_set(self) -> Dataset:
        """D_r: the training images of :meth:`retained_classes`."""
        return self.data.subset(self.retained_classes())

    def extra_info(self) -> dict[str, Any]:
        """Method-specific scalars for the run record; by default the fraction of weights the gradient masks
        let change (``mask_fraction``), when a method sets them."""
        if self.gradient_masks is None:
            return {}
        kept = sum(int(m.sum()) for m in self.gradient_masks)
        return {"mask_fraction": kept / sum(p.numel() for p in self.model.parameters())}

    def max_steps(self) -> int:
        """Optimiser steps of the loop: the profile's shared budget ``unlearning.steps`` (a method may scale it only
        through an option that says so, e.g. SA's "as published" ``steps_scale``; the record stores the steps
        taken)."""
        return self.budget.steps

    def record_memory(self, cost: Cost) -> None:
        """Called with the run's measured memory (a method that caches its work, like Retrain, keeps it)."""

    def unlearned_model(self) -> ConditionalDiffusion:
        """The unlearned model, on CPU in eval mode (like the original)."""
        return self.model.cpu().eval()

    # -- building blocks shared by the losses -------------------------------------------------------------
    def forget_labels(self, n: int, device: torch.device | str) -> torch.Tensor:
        """``n`` copies of the forget class c_f."""
        return torch.full((n,), self.forget_class, dtype=torch.long, device=device)

    def dropped(self, labels: torch.Tensor, on_forget: bool) -> torch.Tensor:
        """Labels with CFG label dropout applied (independently per call): ``forget_label_dropout`` for a pass on
        forget-class images (``on_forget=True``), ``label_dropout`` for a pass on retained images."""
        p = self.config.forget_label_dropout if on_forget else self.config.label_dropout
        return self.model.drop_labels(labels, p)

    def noised(self, x0: torch.Tensor, t_range: tuple[int, int] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_t, t, ε): a forward-process sample with t ~ U{0..T−1} (or U{lo..hi−1} for ``t_range``), ε ~ N(0, I)."""
        noise = torch.randn_like(x0)
        if t_range is None or tuple(t_range) == (0, NUM_TRAIN_TIMESTEPS):
            t = self.model.sample_timesteps(x0.shape[0], x0.device)
        else:
            t = torch.randint(t_range[0], t_range[1], (x0.shape[0],), device=x0.device)
        return self.model.add_noise(x0, noise, t), t, noise

    def standard_loss(self, batch: Batch, reduction: Reduction = "pixel_sum", on_forget: bool = False) -> torch.Tensor:
        """L(x_0, c) on a batch of (images, labels), with the label dropout of its kind of images."""
        x0, labels = batch
        return self.model.denoising_loss(x0, self.dropped(labels, on_forget), reduction=reduction)

    # -- Lightning -------------------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Batch], batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch.get("forget"), batch.get("retain"))
        size = next(iter(batch.values()))[0].shape[0]
        self.log("unlearn/loss", loss, prog_bar=True, batch_size=size)
        return loss

    def _loader(self, dataset: Dataset, offset: int) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed + offset)
        world = self.trainer.world_size if self._trainer is not None else 1
        bs = per_device_batch(self.budget.batch_size, world, "unlearning.batch_size")
        return DataLoader(dataset, batch_size=bs, shuffle=True, drop_last=len(dataset) > bs,
                          generator=generator, num_workers=self.data.num_workers)

    def train_dataloader(self) -> CombinedLoader:
        """Forget and/or retain batches of ``budget.batch_size``, cycled to the longer one, shuffled by the seed.

        On N devices each rank gets ``budget.batch_size / N`` (Lightning shards the data with a distributed sampler),
        so the global batch, and with it the equal budget, does not change with the device count."""
        loaders = {}
        if self.needs_forget():
            loaders["forget"] = self._loader(self.data.forget_dataset(self.forget_class), 0)
        if self.needs_retain():
            loaders["retain"] = self._loader(self.retain_set(), 1)
        if not loaders:
            raise RuntimeError(f"{type(self).__name__} needs neither forget nor retain data")
        return CombinedLoader(loaders, mode="max_size_cycle")

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: Any = None,
                                    gradient_clip_algorithm: Any = None) -> None:
        """Lightning's clipping (``grad_clip``), then, if ``gradient_masks`` is set, gradients × mask.

        The masking runs here, right after clipping (SalUn's reference order): in Lightning 2.x
        ``on_before_optimizer_step`` runs *before* clipping, so it is the wrong hook. A masked parameter's gradient
        is exactly 0 at every step, so Adam's moments for it stay 0 and its update is 0/(0 + eps) = 0: masked-out
        weights stay bit-identical.
        """
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        for p, mask in zip(self.model.parameters(), self.gradient_masks or [], strict=False):
            if p.grad is not None:
                p.grad.masked_fill_(~mask.to(p.grad.device), 0.0)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam (weight decay 0) at ``config.lr`` on all of the model's parameters."""
        return torch.optim.Adam(self.model.parameters(), lr=self.config.lr)

    # -- one complete run ------------------------------------------------------------------------------------
    def run(self, logger: Any = False) -> UnlearningOutcome:
        """Seed, time ``prepare()``, then time ``trainer.fit`` for :meth:`max_steps` steps on the suite's Trainer.

        Memory is measured around the whole run by :func:`unlearnbench.methods.registry.unlearn`. Methods that are not a
        fine-tuning loop override this and return their own outcome. On several devices (``runtime.devices``) the
        fit runs in spawned worker processes and this process gets rank 0's weights back (Lightning's
        ``ddp_spawn``); ``prepare()`` runs here, before, and its state travels with the module.
        """
        L.seed_everything(self.seed, workers=True, verbose=False)
        device = pick_device(self.profile.runtime)
        self.model.to(device)
        with stopwatch(device) as prior:
            self.prepare()
        trainer = build_trainer(self.profile.runtime, max_steps=self.max_steps(), grad_clip=self.config.grad_clip,
                                logger=logger)
        with stopwatch(device) as cost:
            trainer.fit(self)
        final = trainer.callback_metrics.get("unlearn/loss")
        extra = {"final_loss": float(final) if final is not None else float("nan"), **self.extra_info()}
        return UnlearningOutcome(
            model=self.unlearned_model(),
            prepare_seconds=prior.seconds,
            unlearn_seconds=cost.seconds,
            steps=fitted_steps(trainer),
            cached=False,
            world_size=trainer.world_size,
            extra=extra,
        )


def run_unlearning(method: UnlearningMethod, logger: Any = False) -> UnlearningOutcome:
    """Run an already created method (times only; :func:`unlearnbench.methods.registry.unlearn` also measures
    memory)."""
    return method.run(logger)
