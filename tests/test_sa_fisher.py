"""Selective Amnesia's Fisher (issue 20): the unbiased estimate of the reference's (Σ_t g_t)², exhaustively on small T
and against the direct per-timestep computation on a tiny model."""

from __future__ import annotations

import itertools

import pytest
import torch

from unlearnbench.foundation.diffusion import NUM_TRAIN_TIMESTEPS
from unlearnbench.foundation.pretraining import load_original
from unlearnbench.methods import create_method
from unlearnbench.methods.selective_amnesia import square_of_sum_estimate


def test_the_estimate_averaged_over_every_subset_is_the_square_of_the_full_sum():
    g = torch.randn(7, 5, dtype=torch.float64)  # T = 7 terms of a 5-entry gradient
    for m in (2, 3, 6, 7):
        subsets = list(itertools.combinations(range(7), m))
        mean = sum(square_of_sum_estimate(g[list(s)].sum(0), g[list(s)].pow(2).sum(0), m, 7) for s in subsets)
        torch.testing.assert_close(mean / len(subsets), g.sum(0).pow(2))
    # version 1's estimator, (T/m · Σ_S g)², is biased upwards by its inflated per-term part
    biased = sum((7 / 2 * g[list(s)].sum(0)).pow(2) for s in itertools.combinations(range(7), 2)) / 21
    assert (biased - g.sum(0).pow(2)).sum() > 0
    with pytest.raises(ValueError, match="2 <= m <= T"):
        square_of_sum_estimate(g[0], g[0] ** 2, 1, 7)


def test_with_every_timestep_the_fisher_of_a_sample_is_the_direct_square_of_the_summed_gradient(data, profile):
    original = load_original(profile)[0]
    method = create_method("sa", original, 0, data, profile, seed=0, overrides={"fisher_timesteps": 2})
    torch.manual_seed(0)
    x = torch.rand(original.image_shape) * 2 - 1
    c = torch.tensor(3)
    steps = torch.arange(NUM_TRAIN_TIMESTEPS)
    noise = torch.randn(NUM_TRAIN_TIMESTEPS, *original.image_shape)
    estimate = method.sample_fisher(x, c, steps, noise)
    # direct: one batched pass over all T timesteps, the loss summed, its gradient squared
    model = method.model
    model.zero_grad(set_to_none=True)
    x_t = model.add_noise(x.expand(len(steps), *x.shape), noise, steps)
    (noise - model(x_t, steps, c.expand(len(steps)))).pow(2).sum().backward()
    direct = [p.grad.pow(2) for p in model.parameters()]
    scale = max(float(d.abs().max()) for d in direct)  # one scale: a key bias's gradient is 0 up to rounding
    for e, d in zip(estimate, direct, strict=True):
        torch.testing.assert_close(e, d, rtol=1e-3, atol=1e-4 * scale)  # measured: 2e-5 of the scale
    with pytest.raises(ValueError, match="fisher_timesteps in 2..1000"):
        create_method("sa", original, 0, data, profile, seed=0, overrides={"fisher_timesteps": 1})


def test_the_batched_per_timestep_gradients_equal_one_backward_pass_per_timestep(data, profile):
    original = load_original(profile)[0]
    method = create_method("sa", original, 0, data, profile, seed=0)
    torch.manual_seed(1)
    x = torch.rand(original.image_shape) * 2 - 1
    c = torch.tensor(5)
    steps = torch.tensor([3, 400, 999])
    noise = torch.randn(3, *original.image_shape)
    model = method.model
    per_step = []
    for t, eps in zip(steps, noise, strict=True):
        model.zero_grad(set_to_none=True)
        x_t = model.add_noise(x[None], eps[None], t.view(1))
        (eps[None] - model(x_t, t.view(1), c.view(1))).pow(2).sum().backward()
        per_step.append([p.grad.clone() for p in model.parameters()])
    model.zero_grad(set_to_none=True)
    expected = [square_of_sum_estimate(g.sum(0), g.pow(2).sum(0), 3, NUM_TRAIN_TIMESTEPS)
                for g in (torch.stack(grads) for grads in zip(*per_step, strict=True))]
    scale = max(float(e.abs().max()) for e in expected)  # one scale: a key bias's gradient is 0 up to rounding
    for e, d in zip(method.sample_fisher(x, c, steps, noise), expected, strict=True):
        torch.testing.assert_close(e, d, rtol=1e-3, atol=1e-5 * scale)
