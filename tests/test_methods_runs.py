"""Methods running on the suite's Trainer (a few steps on the tiny profile): SalUn's mask, GA, RL/FT, Retrain."""

from __future__ import annotations

import lightning
import pytest
import torch

from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.foundation.config import load_profile
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.pretraining import load_original
from unlearnbench.foundation.trainer import build_trainer
from unlearnbench.methods import UnlearningMethod, create_method, run_unlearning, unlearn

FORGET = 0


@pytest.fixture
def original(profile):
    return load_original(profile)[0]


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def forget_loss(model, data: UnlearningDataModule, repeats: int = 8) -> float:
    """The standard loss on all forget images, with fixed noise and timesteps (a deterministic estimate)."""
    x0, labels = data.forget_dataset(FORGET).tensors
    torch.manual_seed(123)
    model.eval()
    with torch.no_grad():
        return sum(model.denoising_loss(x0, labels).item() for _ in range(repeats)) / repeats


@pytest.mark.parametrize("name", ["safemax", "rl", "ga", "ft", "salun", "sa", "esd"])
def test_fine_tuning_methods_run_and_leave_the_original_untouched(name, original, data, profile):
    before = state(original)
    device, training = next(original.parameters()).device, original.training
    outcome = run_unlearning(create_method(name, original, FORGET, data, profile, seed=0))
    assert outcome.steps == profile.unlearning.steps
    assert outcome.unlearn_seconds > 0 and not outcome.cached
    assert torch.isfinite(torch.tensor(outcome.extra["final_loss"]))
    after = outcome.model.state_dict()
    assert any(not torch.equal(after[k], v) for k, v in before.items()), "the method changed nothing"
    assert all(torch.equal(v, before[k]) for k, v in original.state_dict().items()), "the original was modified"
    assert next(original.parameters()).device == device and original.training == training
    assert outcome.model is not original


def test_a_run_is_reproducible_from_its_seed(original, data, profile):
    def weights(seed: int) -> dict[str, torch.Tensor]:
        return run_unlearning(create_method("rl", original, FORGET, data, profile, seed=seed)).model.state_dict()

    first, again, other = weights(3), weights(3), weights(4)
    assert all(torch.equal(v, again[k]) for k, v in first.items())
    assert any(not torch.equal(v, other[k]) for k, v in first.items())


def assert_only_masked_weights_moved(method, original, masks) -> int:
    """Every weight outside ``masks`` is bit-identical to the original (and its Adam state is zero); returns how
    many weights inside the masks changed."""
    optimizer = method.trainer.optimizers[0]
    changed_kept = 0
    for (key, p), mask in zip(dict(method.model.named_parameters()).items(), masks, strict=True):
        orig = original.state_dict()[key]
        assert torch.equal(p.detach()[~mask], orig[~mask]), f"{key}: a masked-out weight moved"
        st = optimizer.state.get(p, {})
        if st:
            assert not st["exp_avg"][~mask].any() and not st["exp_avg_sq"][~mask].any(), f"{key}: Adam state"
        changed_kept += int((p.detach()[mask] != orig[mask]).sum())
    return changed_kept


def test_salun_mask_is_the_top_half_and_masked_weights_are_bit_identical(original, data, profile, monkeypatch):
    import unlearnbench.methods.salun

    captured = {}
    real_saliency = unlearnbench.methods.salun.saliency
    monkeypatch.setattr(unlearnbench.methods.salun, "saliency",
                        lambda *a, **k: captured.setdefault("g", real_saliency(*a, **k)))
    method = create_method("salun", original, FORGET, data, profile, seed=0)
    outcome = run_unlearning(method)

    masks = method.gradient_masks
    n = sum(m.numel() for m in masks)
    kept = sum(int(m.sum()) for m in masks)
    assert kept == round(0.5 * n) and outcome.extra["mask_fraction"] == pytest.approx(0.5, abs=1e-5)
    scores = torch.cat([g.abs().flatten() for g in captured["g"]])
    flat = torch.cat([m.flatten() for m in masks])
    assert scores[flat].min() >= scores[~flat].max(), "the mask is not the top |saliency| half"
    assert outcome.prepare_seconds > 0

    changed_kept = assert_only_masked_weights_moved(method, original, masks)
    assert changed_kept > 0.25 * kept, "the salient weights were not updated"


def test_safemax_forget_embedding_arm_changes_only_the_forget_row(original, data, profile):
    method = create_method("safemax", original, FORGET, data, profile, seed=0,
                           overrides={"trainable": "forget_embedding", "lr": 1e-2})
    outcome = run_unlearning(method)
    masks = method.gradient_masks
    assert sum(int(m.sum()) for m in masks) == original.unet.class_embedding.weight.shape[1]
    assert assert_only_masked_weights_moved(method, original, masks) > 0
    table = outcome.model.unet.class_embedding.weight
    assert not torch.equal(table[FORGET], original.unet.class_embedding.weight[FORGET])
    assert torch.equal(table[FORGET + 1:], original.unet.class_embedding.weight[FORGET + 1:])  # incl. the null row


def test_safemax_salun_mask_arm_uses_salun_s_mask(original, data, profile):
    arm = create_method("safemax", original, FORGET, data, profile, seed=0, overrides={"trainable": "salun_mask"})
    outcome = run_unlearning(arm)
    salun = create_method("salun", original, FORGET, data, profile, seed=0)
    lightning.seed_everything(0, verbose=False)  # what run() does before prepare(): same t and noise draws
    salun.prepare()
    assert all(torch.equal(a, b) for a, b in zip(arm.gradient_masks, salun.gradient_masks, strict=True))
    assert outcome.extra["mask_fraction"] == pytest.approx(0.5, abs=1e-5)
    assert assert_only_masked_weights_moved(arm, original, arm.gradient_masks) > 0


def test_salun_refuses_to_train_without_its_mask(original, data, profile):
    method = create_method("salun", original, FORGET, data, profile, seed=0)
    with pytest.raises(RuntimeError, match="prepare"):
        build_trainer(profile.runtime, max_steps=1).fit(method)


def test_gradient_ascent_increases_the_forget_loss(original, data, profile):
    method = create_method("ga", original, FORGET, data, profile, seed=0, overrides={"lr": 1e-3})
    outcome = run_unlearning(method)
    assert forget_loss(outcome.model, data) > 1.5 * forget_loss(original.clone(), data)


def test_retrain_never_sees_the_forget_class_and_reports_the_recorded_time(tmp_path, monkeypatch):
    profile = load_profile("smoke", [f"runtime.cache_dir={tmp_path}", "runtime.progress=false",
                                     "runtime.logger=none", "pretrain.steps=3", "pretrain.warmup_steps=1"])
    data = UnlearningDataModule(profile.data, seed=profile.seed)
    seen: list[torch.Tensor] = []
    real_loader = UnlearningDataModule.pretraining_dataloader

    def spy(self, *args):
        loader = real_loader(self, *args)
        seen.append(loader.dataset.tensors[1])
        return loader

    monkeypatch.setattr(UnlearningDataModule, "pretraining_dataloader", spy)
    # Retrain never uses the original's weights: an untrained model of the right shape will do
    fake_original = ConditionalDiffusion.create(profile.unet, profile.data.image_size, data.channels, data.num_classes)
    first = unlearn("retrain", fake_original, FORGET, data, profile, seed=0)
    labels = torch.cat(seen)
    assert len(seen) == 1 and FORGET not in labels
    assert set(labels.tolist()) == set(range(data.num_classes)) - {FORGET}
    assert not first.cached and first.steps == 3 and first.unlearn_seconds > 0

    again = unlearn("retrain", fake_original, FORGET, data, profile, seed=1)
    assert again.cached and len(seen) == 1, "the cached Retrain model was trained again"
    assert again.unlearn_seconds == first.unlearn_seconds  # the recorded training time, not the load time
    assert again.peak_memory_mb == first.peak_memory_mb > 0  # measured when trained, reported again when cached
    assert all(torch.equal(v, again.model.state_dict()[k]) for k, v in first.model.state_dict().items())


def test_a_minimal_subclass_only_needs_a_loss(original, data, profile):
    class NullForget(UnlearningMethod):
        name = "null_forget"

        def needs_retain(self) -> bool:
            return False

        def loss(self, forget_batch, retain_batch):
            x0, labels = forget_batch
            return self.model.denoising_loss(x0, torch.full_like(labels, self.model.null_class))

    outcome = NullForget(original, FORGET, data, None, profile.unlearning, profile).run()
    assert outcome.steps == profile.unlearning.steps
