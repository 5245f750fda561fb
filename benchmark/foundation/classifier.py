"""The evaluation networks' architecture and training loop (a timm model on images in [-1, 1]).

The suite scores with two such networks per dataset, trained once by ``unlearnbench yardstick`` and committed
(:mod:`unlearnbench.foundation.yardstick`): the *classifier* (K classes, clean images: UA, entropy, retained accuracy,
and its penultimate features for FID/KID) and the noise-aware *reader* (K + 1 outputs, the last one meaning
"unrecognisable"). This module only defines the network and how it is trained; runs never train it.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import timm
import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.foundation.config import ClassifierConfig, RuntimeConfig
from unlearnbench.foundation.trainer import build_trainer, single_device

BatchTransform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class ClassifierTooWeakError(RuntimeError):
    """An evaluation network misses one of its accuracy floors."""


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
        return self._predict(images, batch_size, with_features=False)[0]

    @torch.inference_mode()
    def predict_logits_and_features(self, images: torch.Tensor, batch_size: int = 500
                                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N, K), :meth:`features` (N, D)) from one backbone pass per batch: the logits are the head
        applied to the pre-logits features, as in the forward pass. CPU float32."""
        return self._predict(images, batch_size, with_features=True)

    def _predict(self, images: torch.Tensor, batch_size: int, with_features: bool
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        logits, features = [], []
        for chunk in images.split(batch_size):
            chunk = chunk.to(device)
            if with_features:
                pre_logits = self.features(chunk)
                logits.append(self.net.get_classifier()(pre_logits).float().cpu())
                features.append(pre_logits.flatten(1).float().cpu())
            else:
                logits.append(self(chunk).float().cpu())
        self.train(was_training)
        out = torch.cat(logits) if logits else torch.empty(0, self.num_classes)
        if not with_features:
            return out, None
        return out, torch.cat(features) if features else torch.empty(0, 0)

    @torch.inference_mode()
    def accuracy(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
        return float((self.predict_logits(images, batch_size).argmax(1) == labels).float().mean())


class ClassifierTraining(L.LightningModule):
    """Cross-entropy training with light augmentation (random shifts of ±1/16 of the image), then an optional
    ``transform`` of the batch (the reader's noise corruption and "unrecognisable" examples)."""

    def __init__(self, classifier: EvalClassifier, config: ClassifierConfig, total_steps: int,
                 transform: BatchTransform | None = None) -> None:
        super().__init__()
        self.classifier = classifier
        self.config = config
        self.total_steps = total_steps
        self.transform = transform

    @staticmethod
    def augment(x: torch.Tensor) -> torch.Tensor:
        shift = max(1, x.shape[-1] // 16)
        dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,)))
        return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        x = self.augment(x)
        if self.transform is not None:
            x, y = self.transform(x, y)
        loss = F.cross_entropy(self.classifier(x), y)
        self.log("classifier/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.classifier.parameters(), lr=self.config.lr,
                                weight_decay=self.config.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.config.lr, total_steps=self.total_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def train_network(config: ClassifierConfig, runtime: RuntimeConfig, data: UnlearningDataModule, num_outputs: int,
                  epochs: int, transform: BatchTransform | None = None) -> tuple[EvalClassifier, int]:
    """Train one evaluation network on ``data``'s training split for ``epochs``; returns (network on CPU, steps).

    The caller seeds the RNGs (``lightning.seed_everything``) so that the command is deterministic.
    """
    steps = max(1, epochs * (len(data.split("train")[1]) // config.batch_size))
    model = EvalClassifier(config, num_outputs, data.channels)
    module = ClassifierTraining(model, config, total_steps=steps, transform=transform)
    build_trainer(single_device(runtime), max_steps=steps).fit(module, datamodule=data)
    return module.classifier.cpu().eval(), steps
