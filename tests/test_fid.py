"""FID through torchmetrics: identities, agreement with a direct scipy Fréchet distance, Inception loading."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from unlearnbench.foundation.classifier import EvalClassifier
from unlearnbench.foundation.config import ClassifierConfig, EvaluationConfig
from unlearnbench.metrics.fid import (
    ClassifierFeatures,
    FeatureMoments,
    FIDScorer,
    IdentityFeatures,
    InceptionFeatures,
    InceptionWeightsError,
    RealFeatures,
    build_feature_extractor,
    extract_features,
    feature_scale,
    frechet_distance,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Reference: ‖μa − μb‖² + tr(Σa + Σb − 2 sqrtm(Σa Σb)), unbiased covariances."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(sa @ sb).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa + sb - 2 * root))


def features(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ mix


def test_fid_of_a_set_with_itself_is_zero():
    a = features(300, 16, 0)
    assert abs(frechet_distance(a, a)) < 1e-6


def test_fid_of_a_shifted_set_is_the_squared_shift():
    a = features(300, 16, 0)
    shift = torch.linspace(0.1, 1.0, 16, dtype=torch.float64)
    # Same covariance, so FID = ‖δ‖² exactly.
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift.pow(2).sum()), rel=1e-4)
    assert frechet_distance(a, a + shift) > 1.0


def test_torchmetrics_fid_agrees_with_scipy_sqrtm():
    a = features(400, 12, 1)
    b = 1.3 * features(350, 12, 2) + 0.4
    ours = frechet_distance(a, b)
    reference = scipy_frechet(a.numpy(), b.numpy())
    assert reference > 0.5
    assert ours == pytest.approx(reference, rel=1e-3)
    # float32 features (what the extractors return) agree too.
    assert frechet_distance(a.float(), b.float()) == pytest.approx(reference, rel=1e-3)


def test_scorer_real_side_equals_torchmetrics_update():
    """Precomputed real features give the same figure as feeding them through ``update(real=True)``."""
    a, b = features(200, 8, 3), features(150, 8, 4) + 0.2
    ours = FIDScorer(IdentityFeatures(8), a).update(b, batch_size=64).compute()
    metric = FrechetInceptionDistance(feature=IdentityFeatures(8))
    metric.update(a, real=True)
    metric.update(b, real=False)
    assert ours == pytest.approx(float(metric.compute()), rel=1e-9)


def test_real_side_moments_give_the_same_distance_and_are_computed_once_per_class_set(tmp_path):
    a, b = features(300, 6, 0).float(), features(120, 6, 1).float()
    labels = torch.arange(300) % 3
    real = RealFeatures(a, labels, "identity-6", "test", tmp_path, cache_hit=False)
    assert frechet_distance(real.moments([0, 2]), b) == frechet_distance(real.of_classes([0, 2]), b)  # exactly
    assert real.moments([0, 2]) is real.moments([0, 2]) and real.moments([0, 2]).count == 200
    assert real.moments([1]) is not real.moments([0, 2])
    assert real.scale == feature_scale(a) and "scale" in vars(real)  # cached on the object
    with pytest.raises(ValueError, match="dimension 5"):
        FIDScorer(IdentityFeatures(5), FeatureMoments.of(a))


def test_classifier_logits_and_features_come_from_one_pass_and_equal_the_two_passes():
    """In its own feature space the classifier's logits are its head on the very features FID uses: one backbone
    pass gives both, bit for bit what ``predict_logits`` and ``extract_features`` give separately."""
    torch.manual_seed(0)
    config = ClassifierConfig(model_kwargs={"layers": [1, 1, 1, 1], "channels": [8, 8, 16, 16], "stem_width": 8},
                              input_size=16)
    classifier = EvalClassifier(config, num_classes=5, channels=1).eval()
    extractor = ClassifierFeatures(classifier, channels=1, image_size=8, name="tiny")
    images = torch.rand(23, 1, 8, 8) * 2 - 1
    passes = []
    backbone = classifier.net.forward_features
    classifier.net.forward_features = lambda x: passes.append(len(x)) or backbone(x)
    logits, feats = classifier.predict_logits_and_features(images, batch_size=10)
    assert passes == [10, 10, 3]  # one backbone pass per batch
    assert torch.equal(logits, classifier.predict_logits(images, 10))
    assert torch.equal(feats, extract_features(extractor, images, 10))
    assert logits.shape == (23, 5) and feats.shape == (23, extractor.num_features)


def test_scorer_refuses_mismatched_real_features():
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        FIDScorer(IdentityFeatures(8), torch.zeros(10, 5))


class InputProbe(nn.Module):
    """Stands in for the Inception TorchScript: reports min, max, channels and size of what it is given."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        stats = [x.amin(dim=(1, 2, 3)), x.amax(dim=(1, 2, 3)),
                 torch.full((n,), float(x.shape[1])), torch.full((n,), float(x.shape[-1]))]
        return torch.stack(stats, dim=1)[:, :, None, None].expand(n, 4, 2, 2)  # spatial map, pooled by us


@pytest.fixture
def probe_weights(tmp_path):
    path = tmp_path / "probe.pt"
    torch.jit.script(InputProbe()).save(str(path))
    return path


def test_inception_features_prepare_the_input(probe_weights):
    ext = InceptionFeatures(probe_weights)
    assert ext.num_features == 4 and ext.name == "inception-v3:probe.pt" and len(ext.fingerprint) == 16
    images = torch.stack([torch.full((1, 8, 8), -1.0), torch.full((1, 8, 8), 1.0)])
    out = ext(images)
    assert out.shape == (2, 4)
    assert out[0].tolist() == pytest.approx([-1.0, -1.0, 3.0, 299.0])
    assert out[1].tolist() == pytest.approx([0.9921875, 0.9921875, 3.0, 299.0])


def test_inception_weights_missing_or_bad_give_clear_errors(tmp_path):
    with pytest.raises(InceptionWeightsError, match="inception_weights"):
        InceptionFeatures(tmp_path / "nowhere.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torchscript file")
    with pytest.raises(InceptionWeightsError, match="TorchScript"):
        InceptionFeatures(junk)
    config = EvaluationConfig(fid_features="inception", inception_weights=None)
    with pytest.raises(InceptionWeightsError, match="inception_weights"):
        build_feature_extractor(config, nn.Identity(), 1, 8, "unused")


def test_build_feature_extractor_inception(probe_weights):
    config = EvaluationConfig(fid_features="inception", inception_weights=str(probe_weights))
    ext = build_feature_extractor(config, nn.Identity(), 1, 8, "unused")
    assert isinstance(ext, InceptionFeatures)


def test_kid_is_unbiased_seeded_and_scale_free():
    from unlearnbench.metrics.fid import feature_scale, kernel_distance

    g = torch.Generator().manual_seed(0)
    real, same, shifted = (torch.randn(400, 8, generator=g) for _ in range(3))
    shifted = shifted + 0.5
    kid_same, std_same = kernel_distance(real, same, subsets=50, subset_size=200, seed=1)
    kid_shift, std_shift = kernel_distance(real, shifted, subsets=50, subset_size=200, seed=1)
    assert abs(kid_same) < 3 * std_same + 1e-3 and kid_shift > 10 * max(std_shift, abs(kid_same))
    assert kernel_distance(real, shifted, subsets=50, subset_size=200, seed=1) == (kid_shift, std_shift)
    big = 40.0  # a feature space 40× larger: the cubic kernel explodes unless the features are rescaled
    assert kernel_distance(big * real, big * shifted, 50, 200, seed=1)[0] > 100 * kid_shift
    scaled = kernel_distance(big * real, big * shifted, 50, 200, seed=1, scale=feature_scale(big * real))
    assert scaled[0] == pytest.approx(kernel_distance(real, shifted, 50, 200, seed=1, scale=feature_scale(real))[0],
                                      rel=1e-6)
