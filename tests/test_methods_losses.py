"""The defining losses on an untrained tiny model (no training loop): SAFEMax's minimiser and weights, RL labels."""

from __future__ import annotations

import math

import pytest
import torch

from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.foundation.diffusion import NUM_TRAIN_TIMESTEPS, ConditionalDiffusion
from unlearnbench.methods import RandomLabel, SAFEMax, build_config

FORGET = 3


@pytest.fixture
def data(tiny_profile) -> UnlearningDataModule:
    return UnlearningDataModule(tiny_profile.data, batch_size=16, seed=0)


@pytest.fixture
def model(tiny_profile, data) -> ConditionalDiffusion:
    torch.manual_seed(0)
    return ConditionalDiffusion.create(tiny_profile.unet, tiny_profile.data.image_size, data.channels,
                                       data.num_classes)


def constant_output(model: ConditionalDiffusion, value: float) -> ConditionalDiffusion:
    """ε_θ ≡ value everywhere: the UNet's last convolution outputs its bias only."""
    model.unet.conv_out.weight.data.zero_()
    model.unet.conv_out.bias.data.fill_(value)
    return model


def forget_batch(data: UnlearningDataModule) -> tuple[torch.Tensor, torch.Tensor]:
    return data.forget_dataset(FORGET).tensors


def safemax(model, data, profile, **options) -> SAFEMax:
    return SAFEMax(model, FORGET, data, build_config(SAFEMax, options), profile.unlearning, profile, seed=0)


def test_safemax_zero_target_is_exactly_zero_for_a_zero_prediction(model, data, tiny_profile):
    batch = forget_batch(data)
    zero = safemax(constant_output(model, 0.0), data, tiny_profile, target="zero")
    assert zero.loss(batch, None).item() == 0.0
    offset = safemax(constant_output(model, 0.5), data, tiny_profile, target="zero")
    assert offset.loss(batch, None).item() > 0.0


def test_safemax_noise_target_is_minimised_by_a_zero_prediction(model, data, tiny_profile):
    """E[ψ‖ε_T − b‖²] = E[ψ]·(1 + b²) per element: the zero prediction is the minimiser, not the true noise."""
    torch.manual_seed(0)
    batch = forget_batch(data)
    mean_psi = torch.exp(-torch.arange(NUM_TRAIN_TIMESTEPS) / NUM_TRAIN_TIMESTEPS).mean().item()

    def expected(b: float) -> float:
        method = safemax(constant_output(model, b), data, tiny_profile, label_dropout=0.0)
        with torch.no_grad():
            return sum(method.loss(batch, None).item() for _ in range(30)) / 30

    zero, half = expected(0.0), expected(0.5)
    assert zero == pytest.approx(mean_psi, rel=0.05)
    assert half == pytest.approx(mean_psi * 1.25, rel=0.05)
    assert zero < half


def test_safemax_target_is_independent_of_the_forward_noise(model, data, tiny_profile, monkeypatch):
    """A model that recovers ε_t exactly (the standard loss's optimum) scores 2·E[ψ], not 0: ε_T ⟂ ε_t."""
    torch.manual_seed(0)
    method = safemax(model, data, tiny_profile)
    abar = method.model.alphas_cumprod
    monkeypatch.setattr(method.model, "forward", lambda x_t, t, labels: x_t / (1 - abar[t]).sqrt().view(-1, 1, 1, 1))
    x0 = torch.zeros_like(forget_batch(data)[0])  # x_t = √(1−ᾱ_t)·ε_t, so the "model" returns ε_t
    mean_psi = torch.exp(-torch.arange(NUM_TRAIN_TIMESTEPS) / NUM_TRAIN_TIMESTEPS).mean().item()
    loss = sum(method.loss((x0, None), None).item() for _ in range(30)) / 30
    assert loss == pytest.approx(2 * mean_psi, rel=0.05)


@pytest.mark.parametrize("lam", [0.0, 1.0, 5.0, -3.0])
def test_safemax_timestep_weights(model, data, tiny_profile, lam, monkeypatch):
    method = safemax(constant_output(model, 0.5), data, tiny_profile, target="zero", lam=lam)
    t = torch.tensor([0, 1, 250, 500, 999])
    assert torch.allclose(method.timestep_weights(t), torch.exp(-lam * t.float() / 1000))
    assert method.timestep_weights(torch.tensor([0])).item() == 1.0

    # the loss applies ψ(t) per sample: with ε_θ ≡ 0.5 and target 0 every sample's mean error is 0.25
    x0 = forget_batch(data)[0][:5]
    monkeypatch.setattr(method.model, "sample_timesteps", lambda n, device: t[:n].to(device))
    expected = 0.25 * torch.exp(-lam * t.float() / 1000).mean().item()
    assert method.loss((x0, None), None).item() == pytest.approx(expected, rel=1e-5)
    pixel_sum = safemax(constant_output(model, 0.5), data, tiny_profile, target="zero", lam=lam,
                        reduction="pixel_sum")
    monkeypatch.setattr(pixel_sum.model, "sample_timesteps", lambda n, device: t[:n].to(device))
    assert pixel_sum.loss((x0, None), None).item() == pytest.approx(expected * x0[0].numel(), rel=1e-5)
    assert math.isclose(method.config.lam, lam)


def test_safemax_timestep_window_draws_t_only_inside_it(model, data, tiny_profile, monkeypatch):
    method = safemax(model, data, tiny_profile, t_min=150, t_max=500)
    seen = []
    real = method.model.forward
    monkeypatch.setattr(method.model, "forward", lambda x, t, c: seen.append(t.clone()) or real(x, t, c))
    for _ in range(20):
        method.loss(forget_batch(data), None)
    t = torch.cat(seen)
    assert int(t.min()) >= 150 and int(t.max()) <= 499 and t.unique().numel() > 50
    with pytest.raises(ValueError, match="t_min"):
        safemax(model, data, tiny_profile, t_min=500, t_max=500)


def test_safemax_loads_retain_batches_only_with_a_retain_weight(model, data, tiny_profile):
    assert set(safemax(model, data, tiny_profile).train_dataloader().iterables) == {"forget"}
    with_retain = safemax(constant_output(model, 0.0), data, tiny_profile, retain_weight=0.5, target="zero")
    loaders = with_retain.train_dataloader().iterables
    assert set(loaders) == {"forget", "retain"}
    assert FORGET not in loaders["retain"].dataset.tensors[1]
    assert set(loaders["forget"].dataset.tensors[1].tolist()) == {FORGET}
    # forget term exactly 0 (ε_θ ≡ 0, target 0), so L = β·L_r = 0.5·E‖ε‖²/element ≈ 0.5
    loss = with_retain.loss(forget_batch(data), data.retain_dataset(FORGET).tensors)
    assert loss.item() == pytest.approx(0.5, rel=0.05)


def test_random_label_pseudo_labels(model, data, tiny_profile):
    nxt = RandomLabel(model, FORGET, data, None, tiny_profile.unlearning, tiny_profile)
    assert nxt.pseudo_labels(4, "cpu").tolist() == [FORGET + 1] * 4
    last = RandomLabel(model, data.num_classes - 1, data, None, tiny_profile.unlearning, tiny_profile)
    assert last.pseudo_labels(2, "cpu").tolist() == [0, 0]
    rnd = RandomLabel(model, FORGET, data, build_config(RandomLabel, {"pseudo_label": "random"}),
                      tiny_profile.unlearning, tiny_profile)
    labels = rnd.pseudo_labels(2000, "cpu")
    assert set(labels.tolist()) == set(range(data.num_classes)) - {FORGET}


def test_random_label_target_is_stop_gradient(model, data, tiny_profile):
    """Only the c_f branch receives gradient: the class embedding of c′ gets none from the forget term."""
    method = RandomLabel(model, FORGET, data, build_config(RandomLabel, {"alpha": 0.0, "label_dropout": 0.0}),
                         tiny_profile.unlearning, tiny_profile)
    method.model.unet.class_embedding.weight.data.normal_()  # make the two predictions differ
    method.loss(forget_batch(data), data.retain_dataset(FORGET).tensors).backward()
    grad = method.model.unet.class_embedding.weight.grad
    assert grad[FORGET].abs().sum() > 0
    assert grad[FORGET + 1].abs().sum() == 0
