"""Training the original model (and Retrain, which reuses the recipe on retained classes only), with caching.

Recipe (METHODS.md): standard ε-prediction loss, labels dropped to the null class with p = 0.1, Adam(W) with
linear warm-up, gradient-norm clip, EMA of the weights (Lightning's ``WeightAveraging`` with a warmed-up decay);
the EMA weights are what is saved and used.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import WeightAveraging

from benchmark.foundation.cache import artefact_dir, atomic_directory, config_hash, load_or_build, to_jsonable
from benchmark.foundation.config import PretrainConfig, Profile
from benchmark.foundation.diffusion import ConditionalDiffusion
from benchmark.foundation.provenance import code_fingerprint, environment, hardware, library_versions
from benchmark.foundation.trainer import build_trainer, pick_device
from datasets import UnlearningDataModule


def ema_with_warmup(decay: float):
    """EMA update with the usual warm-up of the decay, min(decay, (1 + n) / (10 + n)) after n updates.

    Without the warm-up a fixed decay keeps decay^steps of the random initial weights (8 % after 2,500 steps at
    0.999), which we measured to ruin DDIM samples of the small profiles.
    """

    def avg_fn(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1.0 + float(num_averaged)) / (10.0 + float(num_averaged)))
        return d * averaged + (1.0 - d) * current

    return avg_fn


class DiffusionTraining(L.LightningModule):
    """Trains a ``ConditionalDiffusion`` with the shared pretraining recipe."""

    def __init__(self, model: ConditionalDiffusion, recipe: PretrainConfig) -> None:
        super().__init__()
        self.model = model
        self.recipe = recipe

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x0, labels = batch
        loss = self.model.denoising_loss(x0, self.model.drop_labels(labels, self.recipe.label_dropout))
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        r = self.recipe
        opt_cls = torch.optim.AdamW if r.optimizer == "adamw" else torch.optim.Adam
        opt = opt_cls(self.model.parameters(), lr=r.lr, weight_decay=r.weight_decay)
        warmup = max(1, r.warmup_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def train_diffusion(profile: Profile, classes: Sequence[int] | None = None, seed: int | None = None,
                    logger=False) -> tuple[ConditionalDiffusion, dict]:
    """Train from scratch on ``classes`` (all by default) with the profile's recipe; returns (EMA model, metadata)."""
    seed = profile.seed if seed is None else seed
    L.seed_everything(seed, workers=True, verbose=False)
    recipe = profile.pretrain
    data = UnlearningDataModule(profile.data, batch_size=recipe.batch_size, classes=classes, seed=seed)
    model = ConditionalDiffusion.create(profile.unet, profile.data.image_size, data.channels, data.num_classes)
    module = DiffusionTraining(model, recipe)
    trainer = build_trainer(profile.runtime, max_steps=recipe.steps, grad_clip=recipe.grad_clip,
                            callbacks=[WeightAveraging(avg_fn=ema_with_warmup(recipe.ema_decay))], logger=logger)
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    seconds = time.perf_counter() - start
    model = module.model.cpu().eval()
    meta = {
        "classes": list(range(data.num_classes)) if classes is None else sorted(classes),
        "class_names": data.class_names,
        "seed": seed,
        "steps": recipe.steps,
        "train_seconds": round(seconds, 2),
        "final_loss": float(trainer.callback_metrics.get("train/loss", float("nan"))),
        "data": profile.data,
        "unet": profile.unet,
        "pretrain": recipe,
        "versions": library_versions(),
        "hardware": hardware(pick_device(profile.runtime)),
        "code_fingerprint": code_fingerprint("model"),
    }
    return model, meta


def diffusion_cache_key(profile: Profile, classes: Sequence[int] | None, seed: int) -> str:
    """Hash of data, UNet, recipe, classes, seed, the model-layer code fingerprint and the environment (device,
    threads, precision, library versions): a model trained elsewhere or by other code is never reused."""
    env = environment(pick_device(profile.runtime), profile.runtime.precision)
    return config_hash(profile.data, profile.unet, profile.pretrain, None if classes is None else sorted(classes),
                       seed, code_fingerprint("model"), env)


def diffusion_dir(profile: Profile, classes: Sequence[int] | None = None, seed: int | None = None,
                  kind: str = "original") -> Path:
    """The cache entry ``<cache_dir>/<kind>/<key>`` of the model trained on ``classes`` (see
    :func:`diffusion_cache_key`)."""
    seed = profile.seed if seed is None else seed
    return artefact_dir(profile.runtime.cache_dir, kind, diffusion_cache_key(profile, classes, seed))


def train_or_load_diffusion(profile: Profile, classes: Sequence[int] | None = None, seed: int | None = None,
                            kind: str = "original", logger=False) -> tuple[ConditionalDiffusion, dict, Path]:
    """The cached model trained on ``classes`` with the profile's recipe; trains and saves it on a miss.

    Returns (model on CPU, metadata with ``cache_hit``, directory). The key hashes data, UNet, recipe, classes and
    seed, so any change retrains while an identical rerun loads in seconds. Workers sharing the cache train it
    once: the others wait for it and load it (:func:`benchmark.foundation.cache.load_or_build`).
    """
    seed = profile.seed if seed is None else seed
    directory = diffusion_dir(profile, classes, seed, kind)

    def load() -> tuple[ConditionalDiffusion, dict, Path] | None:
        if not (directory / "metadata.json").is_file():
            return None
        model = ConditionalDiffusion.load(directory, image_size=profile.data.image_size)
        meta = json.loads((directory / "metadata.json").read_text())
        return model, {**meta, "cache_hit": True}, directory

    def build() -> tuple[ConditionalDiffusion, dict, Path]:
        model, meta = train_diffusion(profile, classes, seed, logger=logger)
        with atomic_directory(directory) as tmp:
            model.save(tmp, to_jsonable(meta))
        return model, {**to_jsonable(meta), "num_classes": model.num_classes, "cache_hit": False}, directory

    return load_or_build(directory, load, build)


def load_original(profile: Profile, pretrained: str | None = None, logger=False) -> tuple[ConditionalDiffusion, dict]:
    """The original model: the user's own checkpoint directory when given, else the cached/trained one."""
    if pretrained:
        data = UnlearningDataModule(profile.data)
        model = ConditionalDiffusion.load(pretrained, num_classes=data.num_classes,
                                          image_size=profile.data.image_size, channels=data.channels)
        return model, {"source": str(pretrained), "cache_hit": True}
    model, meta, _ = train_or_load_diffusion(profile, logger=logger)
    return model, meta
