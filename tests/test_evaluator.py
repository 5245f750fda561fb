"""The Evaluator: stub models of known behaviour, the real-feature cache, the grid, and the tiny real pipeline.

The stubs live on a synthetic 4-class source whose class is the image's grey level, so a stub classifier reads
it exactly and a stub "model" decides which class each generated image shows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.datasets import DataConfig, ImageSet, UnlearningDataModule, register_source
from unlearnbench.foundation.config import EvaluationConfig, SamplerConfig
from unlearnbench.foundation.yardstick import Yardstick
from unlearnbench.metrics.evaluator import EvaluationResult, Evaluator
from unlearnbench.metrics.fid import FeatureExtractor, InceptionWeightsError, real_features

SOURCE = "metrics-test-levels"
K = 4
LEVELS = [40 + 60 * k for k in range(K)]  # uint8 grey level of class k
NAMES = ["zero", "one", "two", "three"]


def level_images(classes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """8×8 grey images in [-1, 1] at the level of ``classes`` ± 10 grey values of noise."""
    levels = torch.tensor(LEVELS, dtype=torch.float32)[classes]
    pixels = levels[:, None, None, None] + torch.empty(len(classes), 1, 8, 8).uniform_(-10, 10, generator=generator)
    return pixels / 127.5 - 1


@register_source(SOURCE)
def load_levels(config: DataConfig, split: str) -> ImageSet:
    labels = torch.arange(K).repeat_interleave(30)
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    images = ((level_images(labels, g) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return ImageSet(images, labels, NAMES)


class LevelClassifier(nn.Module):
    """Logits −((mean pixel − centre_k)/0.05)²; features = 2×2 average pool (4 numbers)."""

    name = "level-stub"

    def __init__(self) -> None:
        super().__init__()
        self.centres = nn.Parameter(torch.tensor(LEVELS, dtype=torch.float32) / 127.5 - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -((x.mean(dim=(1, 2, 3))[:, None] - self.centres) / 0.05) ** 2

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, 2).flatten(1)

    @torch.inference_mode()
    def predict_logits(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        return torch.cat([self(chunk) for chunk in images.split(batch_size)])


class LevelReader(LevelClassifier):
    """The noise-aware stub: K + 1 outputs; an image whose pixels spread more than a level's (std > 0.2) is
    "unrecognisable" (output K), otherwise read like the classifier."""

    name = "level-reader-stub"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
        noisy = x.flatten(1).std(dim=1) > 0.2
        junk = torch.where(noisy, torch.zeros(len(x)), torch.full((len(x),), -1e4))
        return torch.cat([torch.where(noisy[:, None], torch.full_like(logits, -1e4), logits), junk[:, None]], 1)


def stub_yardstick() -> Yardstick:
    return Yardstick(LevelClassifier(), LevelReader(), {}, "stub", Path("stub"))


class StubModel(nn.Module):
    """A ``ConditionalDiffusion`` look-alike that shows, for label c, class ``remap.get(c, c)``, or a random
    class when ``ignore_label``."""

    num_classes = K

    def __init__(self, remap: dict[int, int] | None = None, ignore_label: bool = False,
                 noise_for: int | None = None) -> None:
        super().__init__()
        self.remap, self.ignore_label, self.noise_for = remap or {}, ignore_label, noise_for

    def sample(self, labels, sampler=None, seed=0, batch_size=500, progress=False, desc="",
               noise=None) -> torch.Tensor:
        labels = torch.as_tensor(labels)
        g = torch.Generator().manual_seed(seed)
        if self.ignore_label:
            shown = torch.randint(0, K, labels.shape, generator=g)
        else:
            shown = torch.tensor([self.remap.get(int(c), int(c)) for c in labels], dtype=torch.long)
        images = level_images(shown, g)
        if self.noise_for is not None:  # saturated noise instead of the class: what a halted sampler leaves
            junk = labels == self.noise_for
            images[junk] = torch.randn(images[junk].shape, generator=g).sign()
        return images


@pytest.fixture
def data() -> UnlearningDataModule:
    return UnlearningDataModule(DataConfig(source=SOURCE, image_size=8))


def make_evaluator(data, cache_dir, forget_samples=40, per_class=150, **config) -> Evaluator:
    cfg = EvaluationConfig(forget_samples=forget_samples, retain_samples_per_class=per_class, batch_size=128,
                           **config)
    return Evaluator(stub_yardstick(), data, SamplerConfig(steps=5), cfg, str(cache_dir), progress=False)


def test_faithful_model_keeps_its_forget_class(data, tmp_path):
    result = make_evaluator(data, tmp_path, per_class=20).evaluate(StubModel(), 1)
    assert isinstance(result, EvaluationResult)
    assert result.ua == 0.0 and result.forget_prob > 0.99 and result.forget_entropy < 0.05
    assert result.forget_histogram == [0, 40, 0, 0]
    assert result.retain_classes == [0, 2, 3] and result.retain_accuracy_per_class == [1.0, 1.0, 1.0]
    assert result.retain_accuracy == 1.0
    assert result.retain_accuracy_by_class == {"zero": 1.0, "two": 1.0, "three": 1.0}
    assert result.fid_real_images == 90 and result.fid_features == "reader:level-stub#stub"
    assert result.recognised_rate == 1.0 and result.unrecognisable_rate == 0.0
    assert (result.dominant_class, result.dominant_class_name, result.dominant_share) == (1, "one", 1.0)
    assert result.reader_retain_accuracy == 1.0 and result.yardstick == "stub"
    assert result.forget_real_images == 30 and math.isfinite(result.forget_kid) and result.kid_subsets == 100


def test_forgetting_model_scores_full_unlearning(data, tmp_path):
    result = make_evaluator(data, tmp_path, per_class=20).evaluate(StubModel({2: 3}), 2)
    assert result.ua == 1.0 and result.forget_prob < 0.01
    assert result.forget_histogram == [0, 0, 0, 40]
    assert result.retain_accuracy == 1.0
    assert result.recognised_rate == 0.0 and result.dominant_class_name == "three"


def test_noise_for_the_forget_class_is_unrecognisable_not_forgotten_into_a_class(data, tmp_path):
    result = make_evaluator(data, tmp_path, per_class=20).evaluate(StubModel(noise_for=1), 1)
    assert result.recognised_rate == 0.0 and result.unrecognisable_rate == 1.0
    assert (result.dominant_class, result.dominant_class_name) == (K, "unrecognisable")
    assert result.retain_accuracy == 1.0 and result.reader_retain_accuracy == 1.0
    faithful = make_evaluator(data, tmp_path, per_class=20).evaluate(StubModel(), 1)
    assert result.forget_kid > faithful.forget_kid + 0.1 and result.forget_fid > faithful.forget_fid + 0.1


def test_kid_is_reported_with_its_spread_and_ranks_like_fid(data, tmp_path):
    evaluator = make_evaluator(data, tmp_path, per_class=30)
    faithful, damaged = evaluator.evaluate(StubModel(), 0), evaluator.evaluate(StubModel({3: 2}), 0)
    assert faithful.kid_std >= 0 and damaged.kid_std > 0
    assert damaged.kid > faithful.kid + 3 * damaged.kid_std and damaged.fid > faithful.fid


def test_damaged_retained_class_shows_in_its_own_accuracy(data, tmp_path):
    result = make_evaluator(data, tmp_path, per_class=20).evaluate(StubModel({3: 2}), 0)
    assert result.retain_classes == [1, 2, 3] and result.retain_accuracy_per_class == [1.0, 1.0, 0.0]
    assert result.retain_accuracy == pytest.approx(2 / 3)
    assert result.retain_accuracy_by_class["three"] == 0.0


def test_label_ignoring_model_is_at_chance(data, tmp_path):
    evaluator = make_evaluator(data, tmp_path)
    ignoring = evaluator.evaluate(StubModel(ignore_label=True), 0)
    assert ignoring.retain_accuracy == pytest.approx(1 / K, abs=0.08)
    assert all(abs(a - 1 / K) < 0.15 for a in ignoring.retain_accuracy_per_class)
    assert ignoring.ua == pytest.approx(1 - 1 / K, abs=0.2)
    assert sum(ignoring.forget_histogram) == 40
    assert ignoring.forget_entropy < 0.1  # every image still looks like *some* class
    faithful = evaluator.evaluate(StubModel(), 0)
    assert faithful.fid < 0.05 < ignoring.fid  # mixing the forget class into retained samples shows in FID


def test_deterministic_under_seed(data, tmp_path):
    evaluator = make_evaluator(data, tmp_path, per_class=30)
    model = StubModel(ignore_label=True)

    def figures(result: EvaluationResult) -> dict:
        return {k: v for k, v in result.as_dict().items() if k != "eval_seconds"}

    first = evaluator.evaluate(model, 0, seed=7)
    assert figures(first) == figures(evaluator.evaluate(model, 0, seed=7))
    assert figures(first) != figures(evaluator.evaluate(model, 0, seed=8))
    assert evaluator.evaluate(model, 0).seed == evaluator.config.seed


def test_refuses_bad_forget_class_and_wrong_model(data, tmp_path):
    evaluator = make_evaluator(data, tmp_path, per_class=5)
    for bad in (K, -1):
        with pytest.raises(ValueError, match="out of range"):
            evaluator.evaluate(StubModel(), bad)
    wrong = StubModel()
    wrong.num_classes = K + 1
    with pytest.raises(ValueError, match="classes"):
        evaluator.evaluate(wrong, 0)


def test_record_is_flat_and_carries_the_protocol(data, tmp_path):
    result = make_evaluator(data, tmp_path, per_class=5).evaluate(StubModel(), 3, seed=11)
    record = result.as_dict()
    json.dumps(record)
    assert all(isinstance(v, (int, float, str, list, type(None))) for v in record.values())
    assert record["sampler"] == "DDIM-5, eta=0, CFG w=2, x0 clip none" and record["sampler_steps"] == 5
    assert record["sampler_kind"] == "ddim" and record["guidance"] == 2.0
    assert record["forget_samples"] == 40 and record["retain_samples_per_class"] == 5
    assert record["seed"] == 11 and record["forget_class_name"] == "three" and record["eval_seconds"] > 0
    assert record["grid_path"] is None and record["classifier"] == "level-stub"


class CountingFeatures(FeatureExtractor):
    def __init__(self) -> None:
        super().__init__()
        self.name, self.num_features, self.fingerprint, self.images_seen = "counting", 4, "v1", 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images_seen += len(x)
        return F.adaptive_avg_pool2d(x, 2).flatten(1)


def test_real_statistics_are_computed_once_and_cached(data, tmp_path):
    ext = CountingFeatures()
    first = real_features(ext, data, tmp_path, real_per_class=10)
    assert not first.cache_hit and ext.images_seen == 40
    assert torch.bincount(first.labels).tolist() == [10] * K
    second = real_features(ext, data, tmp_path, real_per_class=10)
    assert second.cache_hit and ext.images_seen == 40 and second.directory == first.directory
    assert torch.equal(first.features, second.features) and torch.equal(first.labels, second.labels)
    assert second.of_classes([1, 3]).shape == (20, 4)
    other = real_features(ext, data, tmp_path, real_per_class=None)  # another protocol: another entry
    assert not other.cache_hit and len(other.labels) == 120 and other.directory != first.directory
    meta = json.loads((first.directory / "metadata.json").read_text())
    assert meta["extractor"] == "counting" and meta["split"] == "test" and meta["per_class"] == [10] * K


def test_evaluators_share_the_cached_real_statistics(data, tmp_path):
    assert not make_evaluator(data, tmp_path).real_features().cache_hit
    assert make_evaluator(data, tmp_path).real_features().cache_hit


def test_grid_png_marks_the_forget_row(data, tmp_path):
    path = tmp_path / "grids" / "forget1.png"
    result = make_evaluator(data, tmp_path, per_class=10).evaluate(StubModel(), 1, grid_path=path)
    assert result.grid_path == str(path) and path.is_file()
    from matplotlib.image import imread

    pixels = np.asarray(imread(path))[..., :3]
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    red = (pixels[..., 0] > 0.75) & (pixels[..., 1] < 0.3) & (pixels[..., 2] < 0.3)
    assert red.sum() > 50  # the red frame around the forget row


def test_inception_requested_without_weights_is_refused(data, tmp_path):
    with pytest.raises(InceptionWeightsError, match="inception_weights"):
        make_evaluator(data, tmp_path, fid_features="inception", inception_weights=str(tmp_path / "none.pt"))


def test_end_to_end_on_tiny_profile(tiny_profile, tmp_path):
    from unlearnbench.foundation.pretraining import train_or_load_diffusion
    from unlearnbench.foundation.yardstick import load_yardstick

    model, _, _ = train_or_load_diffusion(tiny_profile)
    yardstick = load_yardstick(tiny_profile)
    data = UnlearningDataModule(tiny_profile.data)
    cfg = tiny_profile.evaluation
    evaluator = Evaluator(yardstick, data, tiny_profile.sampler, cfg, tiny_profile.runtime.cache_dir,
                          progress=False)
    result = evaluator.evaluate(model, 0, grid_path=tmp_path / "grid.png")
    assert 0.0 <= result.ua <= 1.0 and 0.0 <= result.forget_prob <= 1.0
    assert 0.0 <= result.forget_entropy <= math.log(10) + 1e-9
    assert sum(result.forget_histogram) == cfg.forget_samples and len(result.forget_histogram) == 10
    assert len(result.retain_accuracy_per_class) == 9 and 0.0 <= result.retain_accuracy <= 1.0
    assert math.isfinite(result.fid) and result.fid >= 0.0 and math.isfinite(result.kid)
    assert result.fid_features == f"reader:{yardstick.name}" and result.fid_real_split == "test"
    assert result.sampler == tiny_profile.sampler.describe() and result.seed == cfg.seed
    assert (tmp_path / "grid.png").stat().st_size > 1000
    json.dumps(result.as_dict())
    again = Evaluator(yardstick, data, tiny_profile.sampler, cfg, tiny_profile.runtime.cache_dir, progress=False)
    assert again.real_features().cache_hit


def test_the_original_is_sampled_once_and_scored_for_every_forget_class(tiny_profile):
    """Per-class noise makes each forget class's sample set a prefix of one all-class set: same figures."""
    from unlearnbench.foundation.pretraining import train_or_load_diffusion
    from unlearnbench.foundation.yardstick import load_yardstick

    model, _, _ = train_or_load_diffusion(tiny_profile)
    data = UnlearningDataModule(tiny_profile.data)
    cfg = EvaluationConfig(forget_samples=6, retain_samples_per_class=4, batch_size=64, kid_subsets=5)
    evaluator = Evaluator(load_yardstick(tiny_profile), data, tiny_profile.sampler, cfg,
                          tiny_profile.runtime.cache_dir, progress=False)
    everything = evaluator.generate(model, evaluator.all_classes_counts())
    assert len(everything.labels) == 6 * 10
    for c in (0, 7):
        fresh = evaluator.evaluate(model, c).as_dict()
        reused = evaluator.score(everything, c).as_dict()
        fresh.pop("eval_seconds"), reused.pop("eval_seconds")
        assert fresh.keys() == reused.keys()
        for key, value in fresh.items():
            if isinstance(value, float):  # batch composition may move the last float bits
                assert reused[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
            else:
                assert reused[key] == value, key


def test_every_attack_reads_a_curve_from_step_0_on_a_copy_and_scores_its_maximum(tiny_profile, monkeypatch):
    import copy
    import uuid

    from unlearnbench.foundation.pretraining import train_or_load_diffusion
    from unlearnbench.foundation.yardstick import load_yardstick
    from unlearnbench.metrics import evaluator as evaluator_module
    from unlearnbench.metrics.relearning import forget_class_images

    model, _, _ = train_or_load_diffusion(tiny_profile)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = UnlearningDataModule(tiny_profile.data)
    cfg = copy.deepcopy(tiny_profile.evaluation)
    cfg.relearn_steps, cfg.relearn_readings, cfg.relearn_samples, cfg.relearn_images = 4, [2, 9], 6, 8
    cfg.inversion_steps, cfg.no_forget_steps, cfg.no_forget_images_per_class, cfg.null_samples = 2, 2, 2, 5
    evaluator = Evaluator(load_yardstick(tiny_profile), data, tiny_profile.sampler, cfg,
                          tiny_profile.runtime.cache_dir, progress=False)
    sampled = []
    generate = evaluator.generate
    monkeypatch.setattr(evaluator, "generate", lambda *a, **k: sampled.append(k.get("desc")) or generate(*a, **k))
    out = evaluator.attacks(model, 3, tiny_profile.runtime, seed=1, run_seed=0, label_dropout=0.1)
    # 11 readings (relearning 3, inversion 2 x 3, no forget data 2), the model as it is sampled once for three
    assert sum(desc.startswith("attack reading") for desc in sampled) == 9
    assert [step for step, _ in out["relearn_curve"]] == [0, 2, 4]  # readings past the last step are dropped
    rates = [rate for _, rate in out["relearn_curve"]]
    assert out["relearn_max"] == max(rates) and out["relearn_curve"][-1][1] == out["relearn_recognised_rate"]
    assert 0 <= out["relearn_ua"] <= 1 and out["relearn_images"] == 8 and out["relearn_samples"] == 6
    assert [step for step, _ in out["inversion_fresh_curve"]] == [0, 1, 2]
    assert out["inversion_recognised"] == max(out["inversion_row_recognised"], out["inversion_fresh_recognised"])
    assert out["inversion_row_curve"][0][1] == out["relearn_curve"][0][1]  # step 0 of "row": the model as it is
    assert [step for step, _ in out["no_forget_data_curve"]] == [0, 2]
    assert 0 <= out["null_recognised"] <= 1 and out["null_samples"] == 5 and out["attack_set"] == "light"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model itself is untouched
    x, y = data.split("train")
    assert torch.equal(forget_class_images(x, y, 3, 8), x[y == 3][:8])
    again = evaluator.attacks(model, 3, tiny_profile.runtime, 1, 0, label_dropout=0.1)
    assert {**again, "attack_seconds": 0} == {**out, "attack_seconds": 0}  # deterministic
    # the readings kept by weight content are those computed afresh (every hash distinct: nothing kept)
    monkeypatch.setattr(evaluator_module, "tensors_hash", lambda named: uuid.uuid4().hex)
    sampled.clear()
    fresh = evaluator.attacks(model, 3, tiny_profile.runtime, 1, 0, label_dropout=0.1)
    assert sum(desc.startswith("attack reading") for desc in sampled) == 11
    assert {**fresh, "attack_seconds": 0} == {**out, "attack_seconds": 0}
    cfg.relearn_steps = 0
    assert evaluator.attacks(model, 3, tiny_profile.runtime, 1, 0) == {}


def test_inversion_learns_one_embedding_row_and_leaves_every_other_weight(tiny_profile):
    from unlearnbench.foundation.pretraining import train_or_load_diffusion
    from unlearnbench.metrics.inversion import class_embedding, only_row

    model, _, _ = train_or_load_diffusion(tiny_profile)
    attacked = model.clone()
    before = {k: v.clone() for k, v in attacked.state_dict().items()}
    params = only_row(3, "fresh")(attacked)
    table = class_embedding(attacked)
    assert params == [table.weight] and torch.equal(table.weight[3], table.weight[attacked.null_class])
    optimiser = torch.optim.Adam(params, lr=0.1)
    for _ in range(3):
        optimiser.zero_grad()
        attacked.denoising_loss(torch.zeros(4, 1, 8, 8), torch.full((4,), 3)).backward()
        optimiser.step()
    after = attacked.state_dict()
    moved = [k for k, v in after.items() if not torch.equal(before[k], v)]
    assert moved == ["unet.class_embedding.weight"]
    changed_rows = (after["unet.class_embedding.weight"] != before["unet.class_embedding.weight"]).any(1)
    assert changed_rows.nonzero().flatten().tolist() == [3]
    with pytest.raises(ValueError, match="unknown inversion start"):
        only_row(3, "zeros")


def test_curve_summary_is_the_worst_case_and_the_mean_rate():
    from unlearnbench.metrics.relearning import curve_summary, reading_steps

    assert curve_summary([[0, 0.0], [5, 0.7], [10, 0.84], [20, 0.04]]) == (0.84, pytest.approx(
        (5 * 0.35 + 5 * 0.77 + 10 * 0.44) / 20))  # the embedding-row arm: 4 % at the end, 84 % at worst
    assert curve_summary([[0, 0.3]]) == (0.3, 0.3)
    assert reading_steps([5, 10, 20, 50, 100, 500], 100) == [0, 5, 10, 20, 50, 100]


def test_continual_scores_every_forgotten_class_and_step_one_reads_like_a_one_class_run(data, tmp_path):
    evaluator = make_evaluator(data, tmp_path, forget_samples=20, per_class=20)
    model = StubModel(noise_for=1)  # class 1 gone, class 2 still drawn
    one = evaluator.evaluate(model, 1)
    step1 = evaluator.evaluate_forgotten(model, [1])
    name = data.class_names
    assert step1["recognised_by_class"] == {name[1]: one.recognised_rate} and step1["ua_mean"] == one.ua
    assert (step1["retain_accuracy"], step1["fid"], step1["retain_classes"]) == (one.retain_accuracy, one.fid,
                                                                                 one.retain_classes)
    step2 = evaluator.evaluate_forgotten(model, [1, 2], grid_path=tmp_path / "grid.png")
    assert step2["forgotten"] == [1, 2] and step2["retain_classes"] == [0, 3]
    assert step2["recognised_by_class"] == {name[1]: 0.0, name[2]: 1.0}  # class 2 was never forgotten: still recognised
    assert (step2["recognised_mean"], step2["recognised_max"]) == (0.5, 1.0)
    assert step2["retain_accuracy"] == 1.0 and (tmp_path / "grid.png").is_file()


def test_counts_list_the_forgotten_classes_in_request_order_then_the_retained_ones(data, tmp_path):
    evaluator = make_evaluator(data, tmp_path, forget_samples=6, per_class=4)
    assert list(evaluator.counts(2).items()) == [(2, 6), (0, 4), (1, 4), (3, 4)]
    assert list(evaluator.counts(3, 1).items()) == [(3, 6), (1, 6), (0, 4), (2, 4)]
    assert list(evaluator.all_classes_counts().items()) == [(0, 6), (1, 6), (2, 6), (3, 6)]
    with pytest.raises(ValueError, match="out of range"):
        evaluator.counts(1, K)


def test_a_set_with_the_same_counts_in_another_order_is_scored_by_class_not_by_position(data, tmp_path):
    """N = M: the all-classes set holds exactly the counts of every forget class, in class order, not forget class
    first; its samples of c_f are still the forget samples (this raised "no sample of class 0" before)."""
    evaluator = make_evaluator(data, tmp_path, forget_samples=20, per_class=20)
    model = StubModel({2: 3})
    everything = evaluator.generate(model, evaluator.all_classes_counts())
    for c in (0, 2):
        whole = evaluator.score(everything, c).as_dict()
        taken = evaluator.score(everything.take(evaluator.counts(c)), c).as_dict()
        whole.pop("eval_seconds"), taken.pop("eval_seconds")
        assert whole == taken and whole["forget_histogram"] == ([20, 0, 0, 0] if c == 0 else [0, 0, 0, 20])


def test_one_request_is_scored_by_the_one_class_path_exactly(data, tmp_path):
    evaluator = make_evaluator(data, tmp_path, forget_samples=20, per_class=20)
    samples = evaluator.generate(StubModel(ignore_label=True), evaluator.counts(1), seed=4)
    one, step1 = evaluator.score(samples, 1, seed=4).as_dict(), evaluator.score_forgotten(samples, [1], seed=4)
    shared = ["retain_accuracy", "retain_classes", "retain_accuracy_per_class", "reader_retain_accuracy", "fid", "kid",
              "kid_std", "fid_real_images", "sampler", "forget_samples", "retain_samples_per_class", "fid_features",
              "yardstick"]
    assert {k: step1[k] for k in shared} == {k: one[k] for k in shared}
    assert (step1["recognised_mean"], step1["ua_mean"], step1["eval_seed"]) == (one["recognised_rate"], one["ua"], 4)


def test_each_network_reads_each_sample_once_when_the_quality_space_is_its_own(data, tmp_path):
    """Real (untrained) evaluation networks: with the quality features in the reader's own space (the default) the
    reader's backbone runs once per batch for its logits and features together, with exactly the figures of
    separate passes; likewise the classifier's in its space."""
    from unlearnbench.foundation.classifier import EvalClassifier
    from unlearnbench.foundation.config import ClassifierConfig

    torch.manual_seed(0)
    config = ClassifierConfig(model_kwargs={"layers": [1, 1, 1, 1], "channels": [8, 8, 16, 16], "stem_width": 8},
                              input_size=16)
    yardstick = Yardstick(EvalClassifier(config, K, 1).eval(), EvalClassifier(config, K + 1, 1).eval(), {}, "net",
                          Path("net"))
    for space, network in (("reader", yardstick.reader), ("classifier", yardstick.classifier)):
        cfg = EvaluationConfig(forget_samples=12, retain_samples_per_class=9, batch_size=16, kid_subsets=10,
                               fid_features=space)
        evaluator = Evaluator(yardstick, data, SamplerConfig(steps=5), cfg, str(tmp_path / space), progress=False)
        assert evaluator.feature_network is network
        evaluator.real_features()  # the real images' features are extracted (once) before counting
        samples = evaluator.generate(StubModel(), evaluator.counts(2))
        passes = []
        backbone = network.net.forward_features
        network.net.forward_features = lambda x, b=backbone, seen=passes: seen.append(len(x)) or b(x)
        once = evaluator.score(samples, 2).as_dict()
        assert passes == [16, 16, 7], space  # 12 + 3 × 9 = 39 samples in batches of 16: each read once
        evaluator.feature_network = None
        twice = evaluator.score(samples, 2).as_dict()
        assert passes[3:] == [16, 16, 7] * 2, space  # separate passes: the backbone reads every sample twice
        network.net.forward_features = backbone
        once.pop("eval_seconds"), twice.pop("eval_seconds")
        assert once == twice, space
