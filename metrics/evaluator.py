"""The one evaluator every method is scored by (METHODS.md, "Evaluation protocol").

For a model and a forget class c_f, with the protocol's sampler (CFG) and seed:

1. generate N = ``forget_samples`` images of c_f and M = ``retain_samples_per_class`` of every retained class,
   in one batched, seeded ``model.sample`` call (the sampler's progress bar shows it);
2. classify them with the evaluation classifier (batched, ``torch.inference_mode``);
3. forgetting on the N images: UA, mean entropy H (natural log), mean P(c_f) and the predicted-class histogram
   (:mod:`metrics.forgetting`);
4. retained quality on the M·(K−1) images: per-class accuracy acc_c and their mean, and FID against the real
   *test* images of the retained classes (at most ``real_per_class`` each) in the configured feature space
   (:mod:`metrics.fid`; the real features are cached on disk);
5. optionally a grid PNG (first 8 samples of each class, forget row marked; :mod:`metrics.grid`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.foundation.classifier import EvalClassifier
from benchmark.foundation.config import EvaluationConfig, SamplerConfig
from benchmark.foundation.diffusion import ConditionalDiffusion
from datasets import UnlearningDataModule
from metrics.fid import FIDScorer, RealFeatures, build_feature_extractor, real_features
from metrics.forgetting import (
    class_histogram,
    mean_class_probability,
    mean_entropy,
    per_class_accuracy,
    unlearning_accuracy,
)
from metrics.grid import save_sample_grid

GRID_PER_CLASS = 8
REAL_SPLIT = "test"


@dataclass
class EvaluationResult:
    """Every figure of one evaluation, and the protocol that produced it (flat; ``as_dict`` is JSON-able).

    ``retain_accuracy_per_class[i]`` belongs to class ``retain_classes[i]``; ``retain_accuracy`` is their
    mean. ``forget_histogram[k]`` counts forget-class samples classified as k. ``eval_seconds`` covers
    sampling and scoring (not the one-off extraction of the real images' features).
    """

    forget_class: int
    forget_class_name: str
    ua: float
    forget_entropy: float
    forget_prob: float
    forget_histogram: list[int]
    retain_accuracy: float
    retain_classes: list[int]
    retain_accuracy_per_class: list[float]
    fid: float
    fid_features: str
    fid_real_images: int
    fid_real_split: str
    classifier: str
    class_names: list[str]
    sampler: str
    sampler_kind: str
    sampler_steps: int
    sampler_clip: str
    sampler_eta: float
    guidance: float
    forget_samples: int
    retain_samples_per_class: int
    seed: int
    eval_seconds: float
    grid_path: str | None = None

    def as_dict(self) -> dict:
        """A flat dict of JSON-able scalars and lists."""
        return dataclasses.asdict(self)

    @property
    def retain_accuracy_by_class(self) -> dict[str, float]:
        """Retained accuracy keyed by class name."""
        return {self.class_names[c]: a for c, a in zip(self.retain_classes, self.retain_accuracy_per_class,
                                                       strict=True)}


class Evaluator:
    """Scores any ``ConditionalDiffusion`` against a forget class with one fixed protocol.

    Args:
        classifier: the evaluation classifier (moved to ``device``, kept in eval mode).
        data: the benchmark's data (class names, range check, real test images for FID).
        sampler: the protocol's sampler (kind, steps, CFG w).
        config: the evaluation protocol (sample counts, batch, FID feature space, seed).
        cache_dir: where the real images' features are cached.
        classifier_name: the name recorded with every figure (default ``classifier.name``).

    Raises:
        InceptionWeightsError: ``config.fid_features == "inception"`` without a usable weights file.
    """

    def __init__(self, classifier: EvalClassifier, data: UnlearningDataModule, sampler: SamplerConfig,
                 config: EvaluationConfig, cache_dir: str, device: torch.device | str = "cpu",
                 progress: bool = True, classifier_name: str | None = None) -> None:
        if config.forget_samples < 1 or config.retain_samples_per_class < 1:
            raise ValueError("evaluation needs forget_samples >= 1 and retain_samples_per_class >= 1")
        self.device = torch.device(device)
        self.classifier = classifier.to(self.device).eval()
        self.data = data
        self.sampler = sampler
        self.config = config
        self.cache_dir = cache_dir
        self.progress = progress
        self.classifier_name = classifier_name or classifier.name
        self.extractor = build_feature_extractor(config, self.classifier, data.channels,
                                                 data.config.image_size, self.classifier_name).to(self.device)
        self._real: RealFeatures | None = None

    def real_features(self) -> RealFeatures:
        """The real test images' features in the FID space (computed or loaded once, then kept in memory)."""
        if self._real is None:
            self._real = real_features(self.extractor, self.data, self.cache_dir, REAL_SPLIT,
                                       self.config.real_per_class, self.config.batch_size, self.progress)
        return self._real

    def evaluate(self, model: ConditionalDiffusion, forget_class: int, seed: int | None = None,
                 grid_path: str | Path | None = None) -> EvaluationResult:
        """Generate, classify and score (see the module docstring); deterministic for a fixed ``seed``.

        Raises:
            ValueError: ``forget_class`` outside the data's classes, or a model with another class count.
        """
        c_f = self.data.check_class(forget_class)
        num_classes = self.data.num_classes
        if model.num_classes != num_classes:
            raise ValueError(f"the model has {model.num_classes} classes but the data has {num_classes}")
        seed = self.config.seed if seed is None else int(seed)
        retained = [c for c in range(num_classes) if c != c_f]
        real = self.real_features().of_classes(retained)
        cfg = self.config
        start = time.perf_counter()

        labels = torch.tensor([c_f] * cfg.forget_samples
                              + [c for c in retained for _ in range(cfg.retain_samples_per_class)])
        model.to(self.device)
        desc = f"evaluating (forget {c_f}): {len(labels)} samples"
        images = model.sample(labels, self.sampler, seed=seed, batch_size=cfg.batch_size,
                              progress=self.progress, desc=desc)
        with torch.inference_mode():
            logits = self.classifier.predict_logits(images, cfg.batch_size)
        forget = slice(0, cfg.forget_samples)
        retain = slice(cfg.forget_samples, None)
        per_class = per_class_accuracy(logits[retain], labels[retain], retained)
        fid = FIDScorer(self.extractor, real).update(images[retain], cfg.batch_size).compute()

        if grid_path is not None:
            title = f"forget class {c_f} | {self.sampler.describe()} | seed {seed}"
            grid_path = save_sample_grid(images, labels, grid_path, self.data.class_names, c_f,
                                         GRID_PER_CLASS, title=title)
        return EvaluationResult(
            forget_class=c_f,
            forget_class_name=self.data.class_names[c_f],
            ua=unlearning_accuracy(logits[forget], c_f),
            forget_entropy=mean_entropy(logits[forget]),
            forget_prob=mean_class_probability(logits[forget], c_f),
            forget_histogram=class_histogram(logits[forget]),
            retain_accuracy=sum(per_class) / len(per_class),
            retain_classes=retained,
            retain_accuracy_per_class=per_class,
            fid=fid,
            fid_features=self.extractor.name,
            fid_real_images=len(real),
            fid_real_split=REAL_SPLIT,
            classifier=self.classifier_name,
            class_names=list(self.data.class_names),
            sampler=self.sampler.describe(),
            sampler_kind=self.sampler.kind,
            sampler_steps=self.sampler.steps,
            sampler_clip=self.sampler.clip,
            sampler_eta=self.sampler.eta,
            guidance=self.sampler.guidance,
            forget_samples=cfg.forget_samples,
            retain_samples_per_class=cfg.retain_samples_per_class,
            seed=seed,
            eval_seconds=time.perf_counter() - start,
            grid_path=None if grid_path is None else str(grid_path),
        )
