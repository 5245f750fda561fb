"""The one evaluator every method is scored by (METHODS.md, "Evaluation protocol").

For a model and the classes forgotten so far — one forget class c_f, or the requests of a continual sequence —
with the protocol's sampler (CFG) and seed:

1. generate N = ``forget_samples`` images of every forgotten class and M = ``retain_samples_per_class`` of every
   retained class (:meth:`Evaluator.generate`, :meth:`Evaluator.counts`). The initial noise of class c is drawn
   from its own generator seeded with ``seed * 10007 + c``, so the first M samples of a class are the same noise
   whichever classes are forgotten: the original model is sampled *once* (max(N, M) per class) and scored for every
   forget class (:meth:`SampleSet.take`); nothing is sampled twice;
2. read them once with the committed yardstick (:mod:`unlearnbench.foundation.yardstick`; batched,
   ``torch.inference_mode``): the clean *classifier* (its logits and, in the default feature space, its features
   from the same pass) and the noise-aware *reader* (:meth:`Evaluator.read`);
3. forgetting on the N images of each forgotten class: the reader's recognised rate (the honest forgetting score)
   and the classifier's UA; for a single forget class also the reader's unrecognisable rate and dominant reading,
   the classifier's mean entropy H (natural log), mean P(c_f) and predicted-class histogram
   (:mod:`unlearnbench.metrics.forgetting`), and the forget-class distance: MMD², KID and FID between the N images
   and the real test images of c_f;
4. retained quality on the M images of each retained class: the classifier's per-class accuracy acc_c and their
   mean, the reader's accuracy, and the quality distances to the real *test* images of the retained classes (at
   most ``real_per_class`` each) in the configured feature space (default: the reader's; the real features are
   cached on disk, their per-class-set statistics in memory): the Gaussian-kernel MMD² (the headline), KID over
   subsets of half the generated count (± its std), FID, recall and coverage (precision and density recorded);
   the space and the measures were chosen on known answers (:mod:`unlearnbench.metrics.quality`,
   results/studies/quality-known-answers);
5. optionally a grid PNG (first 8 samples of each class, the last forgotten row marked;
   :mod:`unlearnbench.metrics.grid`).

Both entry points share that one path: :meth:`Evaluator.score` (one forget class, a flat
:class:`EvaluationResult`) is :meth:`Evaluator.score_forgotten` (several, a dict) with one class plus the
single-class figures. Scoring is a pure function of the samples, the committed yardstick and the real images.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.foundation.classifier import EvalClassifier
from unlearnbench.foundation.config import EvaluationConfig, RuntimeConfig, SamplerConfig
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.provenance import tensors_hash
from unlearnbench.foundation.yardstick import Yardstick
from unlearnbench.metrics.fid import (
    ClassifierFeatures,
    RealFeatures,
    build_feature_extractor,
    extract_features,
    frechet_distance,
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
from unlearnbench.metrics.quality import RBFMMD, prdc_scores, resampled_kid

GRID_PER_CLASS = 8
REAL_SPLIT = "test"
UNRECOGNISABLE = "unrecognisable"
DISAGREEMENT = 0.15  # a run is flagged when the clean classifier's share of c_f exceeds the reader's by more


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
class Reading:
    """The yardstick's reading of N images: classifier logits (N, K), reader logits (N, K + 1) and, when asked
    for, their features in the FID space (N, D)."""

    logits: torch.Tensor
    reader_logits: torch.Tensor
    features: torch.Tensor | None = None

    def of(self, mask: torch.Tensor) -> Reading:
        """The reading of the images selected by the boolean ``mask`` (N,), in their order."""
        return Reading(self.logits[mask], self.reader_logits[mask],
                       None if self.features is None else self.features[mask])


@dataclass
class ScoredSamples:
    """What every score of a sample set shares (:meth:`Evaluator.scored`): the samples scored (exactly the
    protocol's counts), the forgotten classes (request order) with the yardstick's reading of each one's samples,
    its recognised rate and UA, the retained-quality figures, the evaluation seed and the scoring's start time
    (``time.perf_counter``)."""

    samples: SampleSet
    forgotten: list[int]
    of_class: dict[int, Reading]
    quality: dict
    seed: int
    start: float
    recognised: dict[int, float]
    ua: dict[int, float]

    def seconds(self) -> float:
        """Sampling plus scoring time so far."""
        return self.samples.seconds + time.perf_counter() - self.start


@dataclass
class EvaluationResult:
    """Every figure of one evaluation, and the protocol that produced it (flat; ``as_dict`` is JSON-able).

    ``retain_accuracy_per_class[i]`` belongs to class ``retain_classes[i]``; ``retain_accuracy`` is their
    mean. ``forget_histogram[k]`` counts forget-class samples classified as k. ``eval_seconds`` covers
    sampling and scoring (not the one-off extraction of the real images' features). Readings of the noise-aware
    reader: ``recognised_rate`` (share of forget samples read as c_f), ``unrecognisable_rate`` and the dominant
    reading (``dominant_class`` = K means unrecognisable), its mean P(c_f) (``reader_forget_prob``) and
    ``reader_disagrees``: the classifier's share of c_f (1 − UA) exceeds the reader's recognised rate by more than
    :data:`DISAGREEMENT` (a faint or odd rendering the reader may miss: flagged, never averaged away). ``collapsed``:
    retained accuracy below ``collapse_floor`` (attack scores of such a model are not robustness).
    ``forget_mmd``/``forget_fid``/``forget_kid``: the distance of the forget
    samples to the real test images of c_f. ``mmd``: the Gaussian-kernel MMD² on the retained classes (the headline
    quality), ``kid``/``kid_std``: KID, mean ± std over ``kid_subsets`` subsets of half the generated count,
    ``recall``/``coverage`` (diversity) and ``precision``/``density``.
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
    reader_forget_prob: float
    reader_disagrees: bool
    forget_histogram: list[int]
    forget_mmd: float
    forget_fid: float
    forget_kid: float
    forget_kid_std: float
    forget_real_images: int
    retain_accuracy: float
    retain_classes: list[int]
    retain_accuracy_per_class: list[float]
    reader_retain_accuracy: float
    mmd: float
    recall: float
    coverage: float
    precision: float
    density: float
    collapsed: bool
    collapse_floor: float
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
    """Scores any ``ConditionalDiffusion`` against one forget class, or the classes forgotten by a sequence of
    requests, with one fixed protocol (see the module docstring).

    Args:
        yardstick: the committed evaluation networks (moved to ``device``, kept in eval mode).
        data: the benchmark's data (class names, range check, real test images for FID/KID).
        sampler: the protocol's sampler (kind, steps, CFG w).
        config: the evaluation protocol (sample counts, batch, FID feature space, seed).
        cache_dir: where the real images' features are cached.
        device: where models are sampled and the yardstick reads.
        progress: show progress bars.

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
                                                 yardstick.name, reader=self.reader).to(self.device)
        # the feature space is one yardstick network's own pre-logits features: its logits and features come from
        # one pass (None: a separate extractor, e.g. Inception)
        network = self.extractor.classifier if isinstance(self.extractor, ClassifierFeatures) else None
        self.feature_network = network if isinstance(network, EvalClassifier) and any(
            network is n for n in (self.classifier, self.reader)) else None
        self._real: RealFeatures | None = None
        self._mmd: dict[tuple[int, ...], RBFMMD] = {}

    def real_features(self) -> RealFeatures:
        """The real test images' features in the FID space (computed or loaded once, then kept in memory)."""
        if self._real is None:
            self._real = real_features(self.extractor, self.data, self.cache_dir, REAL_SPLIT,
                                       self.config.real_per_class, self.config.batch_size, self.progress)
        return self._real

    def counts(self, *forgotten: int) -> dict[int, int]:
        """The protocol's sample counts: N of every forgotten class (request order), then M of every retained
        class (ascending)."""
        gone = [self.data.check_class(c) for c in forgotten]
        return {**{c: self.config.forget_samples for c in gone},
                **{c: self.config.retain_samples_per_class for c in self.data.classes_except(*gone)}}

    def all_classes_counts(self) -> dict[int, int]:
        """max(N, M) samples of every class: one sample set from which every forget class's set is a prefix."""
        n = max(self.config.forget_samples, self.config.retain_samples_per_class)
        return dict.fromkeys(self.data.classes_except(), n)

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
        """Generate :meth:`counts` of ``forget_class`` and :meth:`score` them; deterministic for a fixed ``seed``.

        Raises:
            ValueError: ``forget_class`` outside the data's classes, or a model with another class count.
        """
        samples = self.generate(model, self.counts(forget_class), seed, desc=f"evaluating (forget {forget_class})")
        return self.score(samples, forget_class, seed, grid_path)

    def evaluate_forgotten(self, model: ConditionalDiffusion, forgotten: Sequence[int], seed: int | None = None,
                           grid_path: str | Path | None = None) -> dict:
        """Continual requests: generate :meth:`counts` of the classes ``forgotten`` and :meth:`score_forgotten`
        them."""
        samples = self.generate(model, self.counts(*forgotten), seed, desc=f"evaluating (forgotten {list(forgotten)})")
        return self.score_forgotten(samples, forgotten, seed, grid_path)

    def read(self, images: torch.Tensor, with_features: bool = False) -> Reading:
        """The yardstick's reading of ``images``, batched: classifier and reader logits and, ``with_features``,
        their features in the FID space. In the classifier's own feature space the classifier runs once per image
        for both its logits and its features."""
        batch_size = self.config.batch_size
        with torch.inference_mode():
            if not with_features:
                return Reading(self.classifier.predict_logits(images, batch_size),
                               self.reader.predict_logits(images, batch_size))
            features = None
            if self.feature_network is self.reader:
                reader_logits, features = self.reader.predict_logits_and_features(images, batch_size)
            else:
                reader_logits = self.reader.predict_logits(images, batch_size)
            if self.feature_network is self.classifier:
                logits, features = self.classifier.predict_logits_and_features(images, batch_size)
            else:
                logits = self.classifier.predict_logits(images, batch_size)
            if features is None:
                features = extract_features(self.extractor, images, batch_size)
        return Reading(logits, reader_logits, features)

    def mmd(self, classes: Sequence[int]) -> RBFMMD:
        """The Gaussian-kernel MMD² against the real test features of ``classes`` (its real-side term and bandwidth
        computed once per class set)."""
        key = tuple(classes)
        if key not in self._mmd:
            self._mmd[key] = RBFMMD(self.real_features().of_classes(key))
        return self._mmd[key]

    def reading_name(self, reading: int) -> str:
        """The name of a reader output: a class name, or "unrecognisable" for output K."""
        return UNRECOGNISABLE if reading == self.data.num_classes else self.data.class_names[reading]

    def scored(self, samples: SampleSet, forgotten: Sequence[int], seed: int | None = None) -> ScoredSamples:
        """The one scoring path: the samples of :meth:`counts` of ``forgotten`` (taken from ``samples`` when it holds
        more or another order), read once; the recognised rate and UA of every forgotten class on its N samples,
        and the retained quality (:meth:`retained_quality`) on the classes still kept."""
        counts = self.counts(*forgotten)
        if list(samples.counts.items()) != list(counts.items()):
            samples = samples.take(counts)
        seed = self.config.seed if seed is None else int(seed)
        start = time.perf_counter()
        gone = list(counts)[:len(forgotten)]
        kept = self.data.classes_except(*gone)
        reading = self.read(samples.images, with_features=True)
        labels = samples.labels
        of_class = {c: reading.of(labels == c) for c in gone}
        keep = torch.isin(labels, torch.tensor(kept))
        quality = self.retained_quality(reading.of(keep), labels[keep], kept, seed)
        return ScoredSamples(samples, gone, of_class, quality, seed, start,
                             recognised={c: recognised_rate(r.reader_logits, c) for c, r in of_class.items()},
                             ua={c: unlearning_accuracy(r.logits, c) for c, r in of_class.items()})

    def score(self, samples: SampleSet, forget_class: int, seed: int | None = None,
              grid_path: str | Path | None = None) -> EvaluationResult:
        """Every figure of the protocol for one forget class: :meth:`scored` with that class, plus the
        single-class figures of its N samples (see the module docstring)."""
        c_f = self.data.check_class(forget_class)
        scored = self.scored(samples, [c_f], seed)
        cfg, seed, forget = self.config, scored.seed, scored.of_class[c_f]
        real = self.real_features()
        forget_kid, forget_kid_std = resampled_kid(real.of_classes([c_f]), forget.features, cfg.kid_subsets,
                                                   seed=seed)
        dominant, share = dominant_reading(forget.reader_logits)
        grid_path = self.save_grid(scored, grid_path, f"forget class {c_f}")
        return EvaluationResult(
            forget_class=c_f,
            forget_class_name=self.data.class_names[c_f],
            recognised_rate=scored.recognised[c_f],
            unrecognisable_rate=unrecognisable_rate(forget.reader_logits),
            dominant_class=dominant,
            dominant_class_name=self.reading_name(dominant),
            dominant_share=share,
            ua=scored.ua[c_f],
            forget_entropy=mean_entropy(forget.logits),
            forget_prob=mean_class_probability(forget.logits, c_f),
            reader_forget_prob=mean_class_probability(forget.reader_logits, c_f),
            reader_disagrees=(1 - scored.ua[c_f]) - scored.recognised[c_f] > DISAGREEMENT,
            forget_histogram=class_histogram(forget.logits),
            forget_mmd=self.mmd([c_f])(forget.features),
            forget_fid=frechet_distance(real.moments([c_f]), forget.features),
            forget_kid=forget_kid,
            forget_kid_std=forget_kid_std,
            forget_real_images=real.moments([c_f]).count,
            **scored.quality,
            collapsed=scored.quality["retain_accuracy"] < cfg.collapse_floor,
            collapse_floor=cfg.collapse_floor,
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
            eval_seconds=scored.seconds(),
            grid_path=grid_path,
        )

    def score_forgotten(self, samples: SampleSet, forgotten: Sequence[int], seed: int | None = None,
                        grid_path: str | Path | None = None) -> dict:
        """The scores of a model after a sequence of requests (:meth:`scored`): for *every* class forgotten so far
        the reader's recognised rate and the classifier's UA on its N samples (``recognised_by_class``, their mean
        and max), and the retained quality on the classes still kept; one request reads exactly like
        :meth:`score` of that class."""
        scored = self.scored(samples, forgotten, seed)
        gone, recognised, ua = scored.forgotten, scored.recognised, scored.ua
        grid_path = self.save_grid(scored, grid_path, f"forgotten {gone}")
        names = self.data.class_names
        return {"forgotten": gone, "forgotten_names": [names[c] for c in gone],
                "recognised_by_class": {names[c]: r for c, r in recognised.items()},
                "ua_by_class": {names[c]: u for c, u in ua.items()},
                "recognised_mean": sum(recognised.values()) / len(gone), "recognised_max": max(recognised.values()),
                "ua_mean": sum(ua.values()) / len(gone), **scored.quality, "sampler": self.sampler.describe(),
                "forget_samples": self.config.forget_samples,
                "retain_samples_per_class": self.config.retain_samples_per_class, "eval_seed": scored.seed,
                "fid_features": self.extractor.name, "yardstick": self.yardstick.fingerprint,
                "eval_seconds": scored.seconds(), "grid_path": grid_path}

    def retained_quality(self, reading: Reading, labels: torch.Tensor, retained: list[int], seed: int) -> dict:
        """The retained-class figures of samples of the classes ``retained`` (their ``reading`` and ``labels``):
        per-class and mean accuracy of the classifier, the reader's accuracy, and the quality distances to the real
        test images of those classes (:mod:`unlearnbench.metrics.quality`): the Gaussian-kernel MMD² (the headline),
        KID over subsets of half the generated count (± its std), FID, and recall / coverage (diversity: a collapsed
        model loses them) with precision / density (recorded; they fail the known-answer table: a collapsed set is
        "precise")."""
        real = self.real_features()
        per_class = per_class_accuracy(reading.logits, labels, retained)
        reader_per_class = per_class_accuracy(reading.reader_logits, labels, retained)
        kid, kid_std = resampled_kid(real.of_classes(retained), reading.features, self.config.kid_subsets,
                                     seed=seed)
        prdc = prdc_scores(real.of_classes(retained), reading.features, seed=seed)
        return {"retain_accuracy": sum(per_class) / len(per_class), "retain_classes": retained,
                "retain_accuracy_per_class": per_class,
                "reader_retain_accuracy": sum(reader_per_class) / len(reader_per_class),
                "mmd": self.mmd(retained)(reading.features), "recall": prdc["recall"], "coverage": prdc["coverage"],
                "precision": prdc["precision"], "density": prdc["density"],
                "fid": frechet_distance(real.moments(retained), reading.features), "kid": kid, "kid_std": kid_std,
                "fid_real_images": real.moments(retained).count}

    def save_grid(self, scored: ScoredSamples, grid_path: str | Path | None, title: str) -> str | None:
        """The sample grid of a scored set (last forgotten row marked) at ``grid_path``, if one is given."""
        if grid_path is None:
            return None
        images, labels = scored.samples.images, scored.samples.labels
        return str(save_sample_grid(images, labels, grid_path, self.data.class_names, scored.forgotten[-1],
                                    GRID_PER_CLASS, title=f"{title} | {self.sampler.describe()} | seed {scored.seed}"))

    def attacks(self, model: ConditionalDiffusion, forget_class: int, runtime: RuntimeConfig, seed: int,
                run_seed: int, label_dropout: float = 0.0) -> dict:
        """Every attack of the protocol on copies of ``model`` (trained under ``run_seed``; c_f sampled under
        ``seed`` at each reading, ``relearn_samples`` images, read by the reader): relearning
        (:func:`~unlearnbench.metrics.relearning.relearn`, score = the curve's maximum), class-embedding inversion
        from both starts (:mod:`unlearnbench.metrics.inversion`), fine-tuning on retained data only
        (``label_dropout``: the pretraining's) and unconditional leakage. Every curve is [[step, rate], …] from
        step 0; every attack's score is the maximum over its curve. Empty when ``relearn_steps`` is 0.

        A reading is a pure function of the attacked weights (same seed, same sampler, same reader), so readings
        are kept by weight content (:func:`~unlearnbench.foundation.provenance.tensors_hash`): step 0 of
        relearning, of inversion from row c_f and of fine-tuning without forget data is the model as it is, read
        once instead of three times (2 of the full set's 14 readings)."""
        from unlearnbench.metrics.inversion import STARTS, invert_embedding
        from unlearnbench.metrics.relearning import (
            curve_summary,
            fine_tune_on_retained,
            forget_class_images,
            relearn,
            retained_images,
        )

        cfg = self.config
        if cfg.relearn_steps <= 0:
            return {}
        start = time.perf_counter()
        x, y = self.data.split("train")
        images = forget_class_images(x, y, forget_class, cfg.relearn_images)
        n = cfg.relearn_samples or cfg.forget_samples

        readings_by_weights: dict[str, dict] = {}

        def read(attacked: ConditionalDiffusion) -> dict:
            weights = tensors_hash(attacked.state_dict().items())
            if weights not in readings_by_weights:
                samples = self.generate(attacked, {forget_class: n}, seed,
                                        desc=f"attack reading (forget {forget_class})")
                reading = self.read(samples.images)
                readings_by_weights[weights] = {"recognised": recognised_rate(reading.reader_logits, forget_class),
                                                "ua": unlearning_accuracy(reading.logits, forget_class)}
            return dict(readings_by_weights[weights])

        def curve(readings: dict[int, dict]) -> list[list[float]]:
            return [[step, r["recognised"]] for step, r in sorted(readings.items())]

        readings = relearn(model, images, forget_class, cfg.relearn_steps, cfg.relearn_lr, cfg.relearn_readings,
                           runtime, run_seed, read)
        relearn_curve = curve(readings)
        peak, area = curve_summary(relearn_curve)
        out = {"relearn_curve": relearn_curve, "relearn_max": peak, "relearn_area": area,
               "relearn_recognised_rate": readings[cfg.relearn_steps]["recognised"],
               "relearn_ua": readings[cfg.relearn_steps]["ua"], "relearn_steps": cfg.relearn_steps,
               "relearn_images": len(images), "relearn_samples": n, "relearn_lr": cfg.relearn_lr}
        if cfg.inversion_steps > 0:
            for how in STARTS:
                inverted = curve(invert_embedding(model, images, forget_class, how, cfg.inversion_steps,
                                                  cfg.inversion_lr, [cfg.inversion_steps // 2], runtime, run_seed,
                                                  read))
                out[f"inversion_{how}_curve"] = inverted
                out[f"inversion_{how}_recognised"] = curve_summary(inverted)[0]
            out["inversion_recognised"] = max(out[f"inversion_{how}_recognised"] for how in STARTS)
            out["inversion_steps"] = cfg.inversion_steps
        if cfg.no_forget_steps > 0:
            xr, yr = retained_images(x, y, forget_class, cfg.no_forget_images_per_class)
            retained = curve(fine_tune_on_retained(model, xr, yr, cfg.no_forget_steps, cfg.relearn_lr,
                                                   cfg.no_forget_batch_size, label_dropout, runtime, run_seed, read))
            out.update(no_forget_data_curve=retained, no_forget_data_recognised=curve_summary(retained)[0],
                       no_forget_data_steps=cfg.no_forget_steps)
        if cfg.null_samples > 0:
            null = self.generate(model, {model.null_class: cfg.null_samples}, seed, desc="unconditional samples")
            reader = self.read(null.images).reader_logits
            out.update(null_recognised=recognised_rate(reader, forget_class), null_samples=cfg.null_samples)
        out["attack_set"] = attack_set(cfg)
        out["attack_seconds"] = time.perf_counter() - start
        return out


FULL_ATTACKS = {"relearn_steps": 100, "inversion_steps": 100, "no_forget_steps": 100, "null_samples": 1}


def attack_set(config: EvaluationConfig) -> str:
    """``full`` when every attack runs at least METHODS.md's budget (:data:`FULL_ATTACKS`: relearning read up to
    100 steps, inversion and no-forget-data 100 steps, leakage measured), else ``light``."""
    full = all(getattr(config, name) >= least for name, least in FULL_ATTACKS.items())
    return "full" if full else "light"
