"""Issue 11's published baselines: what defines Selective Amnesia, IAU and ESD (tiny profile)."""

from __future__ import annotations

import warnings

import pytest
import torch

from unlearnbench.foundation.pretraining import load_original
from unlearnbench.methods import create_method, run_unlearning

FORGET = 0


@pytest.fixture
def original(profile):
    return load_original(profile)[0]


def sa(original, data, profile, **options):
    defaults = {"replay_per_class": 3, "fisher_samples": 4, "fisher_timesteps": 5}
    return create_method("sa", original, FORGET, data, profile, seed=0, overrides={**defaults, **options})


def test_sa_replay_is_generated_for_the_retained_classes_only(original, data, profile):
    method = sa(original, data, profile)
    method.prepare()
    images, labels = method.replay.tensors
    assert FORGET not in labels.tolist()
    assert sorted(set(labels.tolist())) == [c for c in range(data.num_classes) if c != FORGET]
    assert len(labels) == 3 * (data.num_classes - 1) and images.shape[1:] == original.image_shape
    assert images.abs().max() <= 1.0
    assert all(f.min() >= 0 for f in method.fisher) and sum(float(f.sum()) for f in method.fisher) > 0


def test_sa_ewc_term_is_zero_at_the_original_and_grows_with_fisher_weighted_distance(original, data, profile):
    method = sa(original, data, profile)
    method.prepare()
    assert method.ewc_penalty().item() == 0.0
    params = list(method.model.parameters())
    deltas = [torch.randn_like(p) * 1e-2 for p in params]
    with torch.no_grad():
        for p, d in zip(params, deltas, strict=True):
            p.add_(d)
    expected = sum(float((f * d**2).sum()) for f, d in zip(method.fisher, deltas, strict=True))
    assert method.ewc_penalty().item() == pytest.approx(expected, rel=1e-4)
    with torch.no_grad():
        for p, d in zip(params, deltas, strict=True):
            p.add_(d)  # twice the distance: four times the penalty
    assert method.ewc_penalty().item() == pytest.approx(4 * expected, rel=1e-4)


def test_sa_forget_term_trains_on_uniform_noise_labelled_with_the_forget_class(original, data, profile, monkeypatch):
    method = sa(original, data, profile, ewc_lambda=0.0)
    method.prepare()
    seen = {}
    real = method.model.forward

    def spy(x, t, c):
        seen.update(x=x.detach().clone(), t=t.clone(), c=c.clone())
        return real(x, t, c)

    monkeypatch.setattr(method.model, "forward", spy)
    batch = tuple(v[:6] for v in method.replay.tensors)
    method.loss(None, batch)
    assert seen["c"][:6].tolist() == [FORGET] * 6 and FORGET not in seen["c"][6:].tolist()
    assert torch.equal(seen["t"][:6], seen["t"][6:])  # both terms at the same timesteps


def iau(original, data, profile, **options):
    return create_method("iau", original, FORGET, data, profile, seed=0, overrides=options)


def fixed_gradients(method):
    g = torch.Generator().manual_seed(5)
    g_f = [torch.randn(p.shape, generator=g) for p in method.model.parameters()]
    g_r = [torch.randn(p.shape, generator=g) for p in method.model.parameters()]
    return g_f, g_r


@pytest.mark.parametrize("form", ["paper", "adam"])
def test_iau_takes_exactly_one_update_along_the_gradient_difference(original, data, profile, form):
    method = iau(original, data, profile, form=form, eta=0.5, lr=1e-3)
    g_f, g_r = fixed_gradients(method)
    calls = []
    method.mean_gradient = lambda dataset, on_forget: calls.append(on_forget) or (g_f if on_forget else g_r)
    outcome = run_unlearning(method)
    assert outcome.steps == 1 and sorted(calls) == [False, True]
    for (name, p), gf, gr in zip(original.named_parameters(), g_f, g_r, strict=True):
        step = outcome.model.state_dict()[name] - p.detach()
        diff = gf - gr
        expected = 0.5 * diff if form == "paper" else 1e-3 * diff / (diff.abs() + 1e-8)
        assert torch.allclose(step, expected, atol=1e-6), name


def test_iau_mean_gradient_is_the_gradient_of_the_set_mean(original, data, profile, monkeypatch):
    method = iau(original, data, profile, gradient_batch_size=5)
    model = method.model

    def deterministic_loss(batch, reduction="mean", on_forget=False):  # the loss of each image is fixed
        x0, labels = batch
        return (model(x0, torch.full((len(x0),), 300), labels) - x0).pow(2).mean()

    monkeypatch.setattr(method, "standard_loss", deterministic_loss)
    dataset = data.forget_dataset(FORGET)
    assert len(dataset) % 5 != 0  # a short last batch must be weighted by its size
    batched = method.mean_gradient(dataset, on_forget=True)
    full = torch.autograd.grad(deterministic_loss(dataset.tensors), list(model.parameters()))
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(batched, full, strict=True))


def test_esd_target_comes_from_the_frozen_original(original, data, profile):
    method = create_method("esd", original, FORGET, data, profile, seed=0, overrides={"eta": 2.0})
    x0 = data.forget_dataset(FORGET).tensors[0][:4]
    t = torch.tensor([10, 200, 500, 900])
    x_t = original.add_noise(x0, torch.randn_like(x0), t)
    target = method.target(x_t, t)
    with torch.no_grad():
        cond = original(x_t, t, torch.full((4,), FORGET))
        null = original(x_t, t, torch.full((4,), original.null_class))
        for p in method.model.parameters():
            p.add_(1.0)  # the model being trained moves: the target must not
    assert torch.allclose(target, null - 2.0 * (cond - null), atol=1e-5)
    assert torch.equal(method.target(x_t, t), target)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = run_unlearning(method)
    # the frozen original is in eval mode on purpose: Lightning's warning about it is not shown (issue 21, quiet logs)
    assert not [w for w in caught if "in eval mode" in str(w.message)], [str(w.message) for w in caught]
    assert all(torch.equal(a, b) for a, b in zip(method.frozen.state_dict().values(),
                                                 original.state_dict().values(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(outcome.model.state_dict().values(),
                                                     original.state_dict().values(), strict=True))


def test_sa_label_dropout_options_act_on_its_passes(original, data, profile, monkeypatch):
    method = sa(original, data, profile, ewc_lambda=0.0, forget_label_dropout=0.99, label_dropout=0.99)
    method.prepare()
    seen = {}
    real = method.model.forward
    monkeypatch.setattr(method.model, "forward", lambda x, t, c: seen.update(c=c.clone()) or real(x, t, c))
    method.loss(None, tuple(v[:20] for v in method.replay.tensors))
    assert (seen["c"] == original.null_class).float().mean() > 0.8  # the default (0) leaves every label


def test_sa_as_published_scales_only_its_own_step_budget(original, data, profile):
    equal = sa(original, data, profile)
    published = sa(original, data, profile, steps_scale=2.5)
    assert equal.max_steps() == profile.unlearning.steps
    assert published.max_steps() == round(2.5 * profile.unlearning.steps)
    assert run_unlearning(published).steps == published.max_steps()
    with pytest.raises(ValueError, match="steps_scale"):
        sa(original, data, profile, steps_scale=0)
