"""The one evaluator every method is scored by (METHODS.md, "Evaluation protocol").

For a model and a forget class c_f, with the protocol's sampler (CFG) and seed:

1. generate N = ``forget_samples`` images of c_f and M = ``retain_samples_per_class`` of every retained class
   (:meth:`Evaluator.generate`). The initial noise of class c is drawn from its own generator seeded with
   ``seed * 10007 + c``, so the first M samples of a class are the same noise whichever class is forgotten: the
   original model is sampled *once* (max(N, M) per class) and scored for every forget class
   (:meth:`SampleSet.take`); nothing is sampled twice;
2. read them with the committed yardstick (:mod:`unlearnbench.foundation.yardstick`; batched,
   ``torch.inference_mode``): the clean *classifier* and the noise-aware *reader*;
3. forgetting on the N images: the reader's recognised rate (the honest forgetting score), unrecognisable rate and
   dominant reading; the classifier's UA, mean entropy H (natural log), mean P(c_f) and predicted-class histogram
   (:mod:`unlearnbench.metrics.forgetting`); the forget-class distance: FID and KID between the N images and the real test
   images of c_f;
4. retained quality on the M·(K−1) images: the classifier's per-class accuracy acc_c and their mean, the reader's
   accuracy, FID and KID (± its std over subsets; on features divided by the real features' RMS, see
   :func:`unlearnbench.metrics.fid.feature_scale`) against the real *test* images of the retained classes (at most
   ``real_per_class`` each) in the configured feature space (:mod:`unlearnbench.metrics.fid`; the real features are cached);
5. optionally a grid PNG (first 8 samples of each class, forget row marked; :mod:`unlearnbench.metrics.grid`).

Scoring (:meth:`Evaluator.score`) is a pure function of the samples, the committed yardstick and the real images.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.foundation.config import EvaluationConfig, SamplerConfig
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.yardstick import Yardstick
from unlearnbench.metrics.fid import (
    RealFeatures,
    build_feature_extractor,
    extract_features,
    feature_scale,
    frechet_distance,
    kernel_distance,
    real_features,
)
from unlearnbench.metrics.forgetting import (
    class_histogram,
    dominant_reading,
    mean_class_probability,
    mean_entropy,
    per_class_accuracy,
    recognised_rate,
    unlearning_accuracy,
    unrecognisable_rate,
)
from unlearnbench.metrics.grid import save_sample_grid

GRID_PER_CLASS = 8
REAL_SPLIT = "test"
UNRECOGNISABLE = "unrecognisable"


def class_noise(seed: int, c: int, n: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The initial noise of the first ``n`` samples of class ``c`` (its own generator: ``seed * 10007 + c``)."""
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed * 10007 + c))


@dataclass
class SampleSet:
    """Generated images (N, C, H, W) in [-1, 1] with their labels (N,), grouped by class in ``counts`` order."""

    images: torch.Tensor
    labels: torch.Tensor
    counts: dict[int, int]
    seconds: float = 0.0

    def take(self, counts: dict[int, int]) -> SampleSet:
        """The first ``counts[c]`` samples of each class c (a prefix of the same noise: identical samples)."""
        parts = []
        for c, n in counts.items():
            idx = torch.nonzero(self.labels == c).flatten()
            if len(idx) < n:
                raise ValueError(f"the sample set holds {len(idx)} samples of class {c}, {n} requested")
            parts.append(idx[:n])
        keep = torch.cat(parts)
        return SampleSet(self.images[keep], self.labels[keep], dict(counts))


@dataclass
class EvaluationResult:
    """Every figure of one evaluation, and the protocol that produced it (flat; ``as_dict`` is JSON-able).

    ``retain_accuracy_per_class[i]`` belongs to class ``retain_classes[i]``; ``retain_accuracy`` is their
    mean. ``forget_histogram[k]`` counts forget-class samples classified as k. ``eval_seconds`` covers
    sampling and scoring (not the one-off extraction of the real images' features). Readings of the noise-aware
    reader: ``recognised_rate`` (share of forget samples read as c_f), ``unrecognisable_rate`` and the dominant
    reading (``dominant_class`` = K means unrecognisable). ``forget_fid``/``forget_kid``: the distance of the forget
    samples to the real test images of c_f. ``kid``/``kid_std``: KID on the retained classes, mean ± std over
    ``kid_subsets`` subsets.
    """

    forget_class: int
    forget_class_name: str
    recognised_rate: float
    unrecognisable_rate: float
    dominant_class: int
    dominant_class_name: str
    dominant_share: float
    ua: float
    forget_entropy: float
    forget_prob: float
    forget_histogram: list[int]
    forget_fid: float
    forget_kid: float
    forget_kid_std: float
    forget_real_images: int
    retain_accuracy: float
    retain_classes: list[int]
    retain_accuracy_per_class: list[float]
    reader_retain_accuracy: float
    fid: float
    kid: float
    kid_std: float
    kid_subsets: int
    fid_features: str
    fid_real_images: int
    fid_real_split: str
    classifier: str
    yardstick: str
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
        yardstick: the committed evaluation networks (moved to ``device``, kept in eval mode).
        data: the benchmark's data (class names, range check, real test images for FID/KID).
        sampler: the protocol's sampler (kind, steps, CFG w).
        config: the evaluation protocol (sample counts, batch, FID feature space, seed).
        cache_dir: where the real images' features are cached.

    Raises:
        InceptionWeightsError: ``config.fid_features == "inception"`` without a usable weights file.
    """

    def __init__(self, yardstick: Yardstick, data: UnlearningDataModule, sampler: SamplerConfig,
                 config: EvaluationConfig, cache_dir: str, device: torch.device | str = "cpu",
                 progress: bool = True) -> None:
        if config.forget_samples < 1 or config.retain_samples_per_class < 1:
            raise ValueError("evaluation needs forget_samples >= 1 and retain_samples_per_class >= 1")
        self.device = torch.device(device)
        self.yardstick = yardstick.to(self.device)
        self.classifier = yardstick.classifier
        self.reader = yardstick.reader
        self.data = data
        self.sampler = sampler
        self.config = config
        self.cache_dir = cache_dir
        self.progress = progress
        self.extractor = build_feature_extractor(config, self.classifier, data.channels, data.config.image_size,
                                                 yardstick.name).to(self.device)
        self._real: RealFeatures | None = None

    def real_features(self) -> RealFeatures:
        """The real test images' features in the FID space (computed or loaded once, then kept in memory)."""
        if self._real is None:
            self._real = real_features(self.extractor, self.data, self.cache_dir, REAL_SPLIT,
                                       self.config.real_per_class, self.config.batch_size, self.progress)
        return self._real

    def counts(self, forget_class: int) -> dict[int, int]:
        """The protocol's sample counts for a forget class: N of c_f first, then M of each retained class."""
        return self.continual_counts([forget_class])

    def all_classes_counts(self) -> dict[int, int]:
        """max(N, M) samples of every class: one sample set from which every forget class's set is a prefix."""
        n = max(self.config.forget_samples, self.config.retain_samples_per_class)
        return {c: n for c in range(self.data.num_classes)}

    def generate(self, model: ConditionalDiffusion, counts: dict[int, int], seed: int | None = None,
                 desc: str = "sampling") -> SampleSet:
        """Sample ``counts[c]`` images of each class c with the protocol's sampler (per-class noise, see above)."""
        if model.num_classes != self.data.num_classes:
            raise ValueError(f"the model has {model.num_classes} classes but the data has {self.data.num_classes}")
        seed = self.config.seed if seed is None else int(seed)
        shape = (self.data.channels, self.data.config.image_size, self.data.config.image_size)
        labels = torch.tensor([c for c, n in counts.items() for _ in range(n)], dtype=torch.long)
        noise = torch.cat([class_noise(seed, c, n, shape) for c, n in counts.items()])
        start = time.perf_counter()
        model.to(self.device)
        images = model.sample(labels, self.sampler, seed=seed, batch_size=self.config.batch_size,
                              progress=self.progress, desc=f"{desc}: {len(labels)} samples", noise=noise)
        return SampleSet(images, labels, dict(counts), time.perf_counter() - start)

    def evaluate(self, model: ConditionalDiffusion, forget_class: int, seed: int | None = None,
                 grid_path: str | Path | None = None) -> EvaluationResult:
        """Generate, read and score (see the module docstring); deterministic for a fixed ``seed``.

        Raises:
            ValueError: ``forget_class`` outside the data's classes, or a model with another class count.
        """
        samples = self.generate(model, self.counts(forget_class), seed, desc=f"evaluating (forget {forget_class})")
        return self.score(samples, forget_class, seed, grid_path)

    def read(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(classifier logits (N, K), reader logits (N, K + 1)) for images, batched."""
        with torch.inference_mode():
            return (self.classifier.predict_logits(images, self.config.batch_size),
                    self.reader.predict_logits(images, self.config.batch_size))

    def reading_name(self, reading: int) -> str:
        return UNRECOGNISABLE if reading == self.data.num_classes else self.data.class_names[reading]

    def score(self, samples: SampleSet, forget_class: int, seed: int | None = None,
              grid_path: str | Path | None = None) -> EvaluationResult:
        """Every figure of the protocol from a sample set holding exactly :meth:`counts` of ``forget_class``."""
        c_f = self.data.check_class(forget_class)
        if samples.counts != self.counts(c_f):
            samples = samples.take(self.counts(c_f))
        seed = self.config.seed if seed is None else int(seed)
        cfg = self.config
        start = time.perf_counter()
        retained = [c for c in range(self.data.num_classes) if c != c_f]
        real = self.real_features()
        images, labels = samples.images, samples.labels
        logits, reader_logits = self.read(images)
        forget = slice(0, cfg.forget_samples)
        retain = slice(cfg.forget_samples, None)
        features = extract_features(self.extractor, images, cfg.batch_size)
        quality = self.retained_quality(logits[retain], reader_logits[retain], labels[retain], features[retain],
                                        retained, seed)
        real_forget = real.of_classes([c_f])
        forget_kid, forget_kid_std = kernel_distance(real_forget, features[forget], cfg.kid_subsets, seed=seed,
                                                     scale=feature_scale(real.features))
        dominant, share = dominant_reading(reader_logits[forget])

        if grid_path is not None:
            title = f"forget class {c_f} | {self.sampler.describe()} | seed {seed}"
            grid_path = save_sample_grid(images, labels, grid_path, self.data.class_names, c_f,
                                         GRID_PER_CLASS, title=title)
        return EvaluationResult(
            forget_class=c_f,
            forget_class_name=self.data.class_names[c_f],
            recognised_rate=recognised_rate(reader_logits[forget], c_f),
            unrecognisable_rate=unrecognisable_rate(reader_logits[forget]),
            dominant_class=dominant,
            dominant_class_name=self.reading_name(dominant),
            dominant_share=share,
            ua=unlearning_accuracy(logits[forget], c_f),
            forget_entropy=mean_entropy(logits[forget]),
            forget_prob=mean_class_probability(logits[forget], c_f),
            forget_histogram=class_histogram(logits[forget]),
            forget_fid=frechet_distance(real_forget, features[forget]),
            forget_kid=forget_kid,
            forget_kid_std=forget_kid_std,
            forget_real_images=len(real_forget),
            **quality,
            kid_subsets=cfg.kid_subsets,
            fid_features=self.extractor.name,
            fid_real_split=REAL_SPLIT,
            classifier=self.classifier.name,
            yardstick=self.yardstick.fingerprint,
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
            eval_seconds=samples.seconds + time.perf_counter() - start,
            grid_path=None if grid_path is None else str(grid_path),
        )

    def retained_quality(self, logits: torch.Tensor, reader_logits: torch.Tensor, labels: torch.Tensor,
                         features: torch.Tensor, retained: list[int], seed: int) -> dict:
        """The retained-class figures of samples of the classes ``retained``: per-class and mean accuracy of the
        classifier, the reader's accuracy, FID and KID (± std) against the real test images of those classes."""
        real = self.real_features()
        real_retained = real.of_classes(retained)
        per_class = per_class_accuracy(logits, labels, retained)
        reader_per_class = per_class_accuracy(reader_logits, labels, retained)
        kid, kid_std = kernel_distance(real_retained, features, self.config.kid_subsets, seed=seed,
                                       scale=feature_scale(real.features))
        return {"retain_accuracy": sum(per_class) / len(per_class), "retain_classes": retained,
                "retain_accuracy_per_class": per_class,
                "reader_retain_accuracy": sum(reader_per_class) / len(reader_per_class),
                "fid": frechet_distance(real_retained, features), "kid": kid, "kid_std": kid_std,
                "fid_real_images": len(real_retained)}

    def continual_counts(self, forgotten: Sequence[int]) -> dict[int, int]:
        """N samples of every forgotten class (request order), then M of every class still kept."""
        gone = [self.data.check_class(c) for c in forgotten]
        kept = [c for c in range(self.data.num_classes) if c not in gone]
        return {**{c: self.config.forget_samples for c in gone},
                **{c: self.config.retain_samples_per_class for c in kept}}

    def evaluate_forgotten(self, model: ConditionalDiffusion, forgotten: Sequence[int], seed: int | None = None,
                           grid_path: str | Path | None = None) -> dict:
        """Continual requests: generate :meth:`continual_counts` and :meth:`score_forgotten` them."""
        samples = self.generate(model, self.continual_counts(forgotten), seed, desc=f"evaluating (forgotten "
                                f"{list(forgotten)})")
        return self.score_forgotten(samples, forgotten, seed, grid_path)

    def score_forgotten(self, samples: SampleSet, forgotten: Sequence[int], seed: int | None = None,
                        grid_path: str | Path | None = None) -> dict:
        """The scores of a model after a sequence of requests: for *every* class forgotten so far the reader's
        recognised rate and the classifier's UA on its N samples (``recognised_by_class``, their mean and max), and
        the retained quality (:meth:`retained_quality`) on the classes still kept. Same sampler, seed, noise and
        yardstick as :meth:`score`, so step 1 reads like a one-class run on the same samples."""
        counts = self.continual_counts(forgotten)
        if samples.counts != counts:
            samples = samples.take(counts)
        seed = self.config.seed if seed is None else int(seed)
        start = time.perf_counter()
        gone = list(counts)[:len(forgotten)]
        kept = [c for c in range(self.data.num_classes) if c not in gone]
        logits, reader_logits = self.read(samples.images)
        labels = samples.labels
        recognised = {c: recognised_rate(reader_logits[labels == c], c) for c in gone}
        ua = {c: unlearning_accuracy(logits[labels == c], c) for c in gone}
        keep = torch.isin(labels, torch.tensor(kept))
        features = extract_features(self.extractor, samples.images[keep], self.config.batch_size)
        quality = self.retained_quality(logits[keep], reader_logits[keep], labels[keep], features, kept, seed)
        if grid_path is not None:
            grid_path = save_sample_grid(samples.images, labels, grid_path, self.data.class_names, gone[-1],
                                         GRID_PER_CLASS, title=f"forgotten {gone} | {self.sampler.describe()} | "
                                         f"seed {seed}")
        names = self.data.class_names
        return {"forgotten": gone, "forgotten_names": [names[c] for c in gone],
                "recognised_by_class": {names[c]: r for c, r in recognised.items()},
                "ua_by_class": {names[c]: u for c, u in ua.items()},
                "recognised_mean": sum(recognised.values()) / len(gone), "recognised_max": max(recognised.values()),
                "ua_mean": sum(ua.values()) / len(gone), **quality, "sampler": self.sampler.describe(),
                "forget_samples": self.config.forget_samples,
                "retain_samples_per_class": self.config.retain_samples_per_class, "eval_seed": seed,
                "fid_features": self.extractor.name, "yardstick": self.yardstick.fingerprint,
                "eval_seconds": samples.seconds + time.perf_counter() - start,
                "grid_path": None if grid_path is None else str(grid_path)}

    def relearning(self, model: ConditionalDiffusion, forget_class: int, runtime, seed: int,
                   run_seed: int) -> dict:
        """The relearning attack (:mod:`unlearnbench.metrics.relearning`) on a copy of ``model``: the reader's recognised rate
        and the classifier's UA of c_f samples after it, and the recognised rate at each reading step
        (``relearn_curve``: [[step, rate], …]). Empty when ``relearn_steps`` is 0."""
        from unlearnbench.metrics.relearning import forget_class_images, relearn

        cfg = self.config
        if cfg.relearn_steps <= 0:
            return {}
        start = time.perf_counter()
        x, y = self.data.split("train")
        images = forget_class_images(x, y, forget_class, cfg.relearn_images)
        n = cfg.relearn_samples or cfg.forget_samples

        def read(attacked: ConditionalDiffusion) -> dict:
            samples = self.generate(attacked, {forget_class: n}, seed, desc=f"relearning (forget {forget_class})")
            logits, reader_logits = self.read(samples.images)
            return {"recognised": recognised_rate(reader_logits, forget_class),
                    "ua": unlearning_accuracy(logits, forget_class)}

        readings = relearn(model, images, forget_class, cfg, runtime, run_seed, read)
        last = readings[cfg.relearn_steps]
        return {"relearn_recognised_rate": last["recognised"], "relearn_ua": last["ua"],
                "relearn_curve": [[step, r["recognised"]] for step, r in sorted(readings.items())],
                "relearn_steps": cfg.relearn_steps, "relearn_images": len(images), "relearn_samples": n,
                "relearn_seconds": time.perf_counter() - start}
