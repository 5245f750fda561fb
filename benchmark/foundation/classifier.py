"""The evaluation classifier: a timm architecture trained once per dataset / image size and cached.

It scores generated images (unlearning accuracy, retained accuracy, entropy) and, through its penultimate
features, gives the in-domain FID. The suite refuses to score with a classifier whose held-out accuracy is below
``classifier.min_accuracy``.
"""

from __future__ import annotations

import json
import time

import lightning as L
import timm
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.foundation.cache import artefact_dir, atomic_directory, config_hash, to_jsonable
from benchmark.foundation.config import ClassifierConfig, Profile
from benchmark.foundation.diffusion import CheckpointError
from benchmark.foundation.provenance import code_fingerprint, environment
from benchmark.foundation.trainer import build_trainer, pick_device
from datasets import UnlearningDataModule
from metrics.forgetting import per_class_accuracy


class ClassifierTooWeakError(RuntimeError):
    """The evaluation classifier's held-out accuracy is below the configured floor."""


class EvalClassifier(nn.Module):
    """timm model on images in [-1, 1]; resizes them to ``input_size`` first."""

    def __init__(self, config: ClassifierConfig, num_classes: int, channels: int) -> None:
        super().__init__()
        self.config = config
        self.num_classes = num_classes
        self.input_size = config.input_size
        self.net = timm.create_model(config.architecture, pretrained=False, num_classes=num_classes,
                                     in_chans=channels, **config.model_kwargs)

    @property
    def name(self) -> str:
        return f"{self.config.architecture}@{self.input_size}px"

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, K)."""
        return self.net(self._prepare(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate (pooled, pre-logits) features (N, D): the in-domain FID feature space."""
        return self.net.forward_head(self.net.forward_features(self._prepare(x)), pre_logits=True)

    @torch.inference_mode()
    def predict_logits(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Logits for many images, batched on the classifier's device; returns CPU float32."""
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        out = [self(chunk.to(device)).float().cpu() for chunk in images.split(batch_size)]
        self.train(was_training)
        return torch.cat(out) if out else torch.empty(0, self.num_classes)

    @torch.inference_mode()
    def accuracy(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
        return float((self.predict_logits(images, batch_size).argmax(1) == labels).float().mean())


class ClassifierTraining(L.LightningModule):
    """Cross-entropy training with light augmentation (random shifts of ±1/16 of the image)."""

    def __init__(self, classifier: EvalClassifier, config: ClassifierConfig, total_steps: int) -> None:
        super().__init__()
        self.classifier = classifier
        self.config = config
        self.total_steps = total_steps

    @staticmethod
    def augment(x: torch.Tensor) -> torch.Tensor:
        shift = max(1, x.shape[-1] // 16)
        dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,)))
        return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self.classifier(self.augment(x)), y)
        self.log("classifier/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.classifier.parameters(), lr=self.config.lr,
                                weight_decay=self.config.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.config.lr, total_steps=self.total_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def train_classifier(profile: Profile) -> tuple[EvalClassifier, dict]:
    cfg = profile.classifier
    L.seed_everything(profile.seed, verbose=False)
    data = UnlearningDataModule(profile.data, batch_size=cfg.batch_size, seed=profile.seed)
    steps = cfg.epochs * (len(data.split("train")[1]) // cfg.batch_size)
    model = EvalClassifier(cfg, data.num_classes, data.channels)
    module = ClassifierTraining(model, cfg, total_steps=max(1, steps))
    trainer = build_trainer(profile.runtime, max_steps=max(1, steps))
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    seconds = time.perf_counter() - start
    model = module.classifier.cpu().eval()
    x_test, y_test = data.split("test")
    logits = model.predict_logits(x_test)
    per_class = per_class_accuracy(logits, y_test, range(data.num_classes))
    meta = {
        "architecture": cfg.architecture,
        "name": model.name,
        "test_accuracy": float((logits.argmax(1) == y_test).float().mean()),  # over images, not a class mean
        "test_accuracy_per_class": per_class,
        "test_images": len(y_test),
        "train_seconds": round(seconds, 2),
        "steps": steps,
        "num_classes": data.num_classes,
        "channels": data.channels,
        "config": to_jsonable(cfg),
        "data": to_jsonable(profile.data),
        "seed": profile.seed,
    }
    return model, meta


def check_accuracy_floor(meta: dict, floor: float) -> None:
    acc = meta["test_accuracy"]
    if acc < floor:
        raise ClassifierTooWeakError(
            f"the evaluation classifier {meta['name']} reaches {acc:.2%} held-out accuracy, below the floor "
            f"{floor:.2%} (classifier.min_accuracy): scores from it would not be trustworthy. Train it longer "
            "(classifier.epochs), pick another architecture (classifier.architecture), or lower the floor "
            "knowingly."
        )


def train_or_load_classifier(profile: Profile, check_floor: bool = True) -> tuple[EvalClassifier, dict]:
    """The cached classifier for this data / image size / classifier config (trained on a miss)."""
    cfg = profile.classifier
    floor_free = {k: v for k, v in to_jsonable(cfg).items() if k != "min_accuracy"}
    directory = artefact_dir(profile.runtime.cache_dir, "classifier",
                             config_hash(profile.data, floor_free, profile.seed, code_fingerprint("model"),
                                         environment(pick_device(profile.runtime), profile.runtime.precision)))
    weights = directory / "classifier.pt"
    if weights.is_file() and (directory / "metadata.json").is_file():
        meta = json.loads((directory / "metadata.json").read_text())
        model = EvalClassifier(cfg, meta["num_classes"], meta["channels"])
        try:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        except Exception as err:
            raise CheckpointError(f"the cached classifier {weights} is corrupt ({type(err).__name__}); delete "
                                  f"{directory} and run again to retrain it") from err
        meta["cache_hit"] = True
    else:
        model, meta = train_classifier(profile)
        with atomic_directory(directory) as tmp:
            torch.save(model.state_dict(), tmp / "classifier.pt")
            (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        meta["cache_hit"] = False
    if check_floor:
        check_accuracy_floor(meta, cfg.min_accuracy)
    return model.eval(), meta
