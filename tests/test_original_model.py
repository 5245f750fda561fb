"""The original model: CFG formula, sampling, determinism, save/load round trip, cache hit, bad checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from unlearnbench.foundation.config import SamplerConfig, UNetConfig
from unlearnbench.foundation.diffusion import CheckpointError, ConditionalDiffusion
from unlearnbench.foundation.pretraining import train_or_load_diffusion


@pytest.fixture
def tiny_model() -> ConditionalDiffusion:
    torch.manual_seed(0)
    return ConditionalDiffusion.create(UNetConfig(block_out_channels=[8, 16], norm_num_groups=4), 8, 1, 10)


def test_guided_eps_is_one_plus_w_form(tiny_model):
    x, t = torch.randn(3, 1, 8, 8), torch.tensor([5, 500, 999])
    labels = torch.tensor([0, 4, 9])
    with torch.no_grad():
        cond = tiny_model(x, t, labels)
        uncond = tiny_model(x, t, torch.full_like(labels, tiny_model.null_class))
        guided = tiny_model.guided_eps(x, t, labels, 2.0)
    torch.testing.assert_close(guided, 3.0 * cond - 2.0 * uncond, rtol=1e-4, atol=1e-5)


def test_label_dropout_rate(tiny_model):
    torch.manual_seed(0)
    dropped = tiny_model.drop_labels(torch.zeros(20_000, dtype=torch.long), 0.1)
    assert abs((dropped == tiny_model.null_class).float().mean().item() - 0.1) < 0.01


def test_sampling_shape_range_and_determinism(tiny_model):
    sampler = SamplerConfig(kind="ddim", steps=5, guidance=2.0)
    a = tiny_model.sample([0, 1, 2, 3, 4], sampler, seed=7, batch_size=2)
    b = tiny_model.sample([0, 1, 2, 3, 4], sampler, seed=7, batch_size=5)
    c = tiny_model.sample([0, 1, 2, 3, 4], sampler, seed=8)
    again = tiny_model.sample([0, 1, 2, 3, 4], sampler, seed=7, batch_size=2)
    assert torch.equal(a, again)  # bit-identical rerun
    assert a.shape == (5, 1, 8, 8) and a.dtype == torch.float32 and a.device.type == "cpu"
    assert a.min() >= -1 and a.max() <= 1
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)  # same noise whatever the batch (float-level diffs)
    assert not torch.allclose(a, c)


def test_ddpm_sampler_runs_and_is_deterministic(tiny_model):
    sampler = SamplerConfig(kind="ddpm", guidance=1.0)
    a = tiny_model.sample([1, 2], sampler, seed=3)
    b = tiny_model.sample([1, 2], sampler, seed=3)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kind", ["ddim", "ddpm"])
def test_both_samplers_honour_steps_and_the_clip_option(tiny_model, kind, monkeypatch):
    calls = []
    real = tiny_model.guided_eps
    monkeypatch.setattr(tiny_model, "guided_eps", lambda *a, **k: calls.append(1) or real(*a, **k))
    eta = 1.0 if kind == "ddim" else 0.0
    none = tiny_model.sample([1, 2], SamplerConfig(kind=kind, steps=7, eta=eta, clip="none"), seed=3)
    assert len(calls) == 7, "the sampler did not take sampler.steps steps"
    clipped = tiny_model.sample([1, 2], SamplerConfig(kind=kind, steps=7, eta=eta, clip="consistent"), seed=3)
    assert not torch.allclose(none, clipped), "x0 clipping is not applied"
    assert "x0 clip consistent" in SamplerConfig(clip="consistent").describe()


def test_ddpm_refuses_an_eta():
    with pytest.raises(ValueError, match="eta"):
        SamplerConfig(kind="ddpm", eta=1.0)


def test_a_corrupt_cached_original_stops_in_one_line(tiny_profile, tmp_path, capsys):
    from unlearnbench.orchestration.cli import main

    _, _, directory = train_or_load_diffusion(tiny_profile)
    weights = next((directory / "unet").glob("*.safetensors"))
    saved = weights.read_bytes()
    try:
        weights.write_bytes(b"garbage")
        code = main(["run", "--profile", "smoke", "--cache-dir", tiny_profile.runtime.cache_dir, "--output-dir",
                     str(tmp_path), "--logger", "none", "--set", "runtime.progress=false", "pretrain.steps=60",
                     "pretrain.warmup_steps=10", "classifier.epochs=1", "classifier.min_accuracy=0.0"])
    finally:
        weights.write_bytes(saved)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "corrupt" in err[-1] and "delete the directory" in err[-1]
    assert not any("Traceback" in line for line in err)
    assert not list(tmp_path.rglob("runs/*.json")), "nothing is written for runs that could not start"


def test_save_load_round_trip(tiny_model, tmp_path):
    tiny_model.save(tmp_path / "m", {"note": "x"})
    loaded = ConditionalDiffusion.load(tmp_path / "m", image_size=8, channels=1)
    assert loaded.num_classes == 10
    for (k, v), (k2, v2) in zip(tiny_model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    # a bare diffusers UNet directory (a user's own model) loads too
    bare = ConditionalDiffusion.load(tmp_path / "m" / "unet")
    assert bare.num_classes == 10


def test_bad_checkpoints_give_clear_errors(tiny_model, tmp_path):
    with pytest.raises(CheckpointError, match="no diffusers UNet"):
        ConditionalDiffusion.load(tmp_path / "missing")
    tiny_model.save(tmp_path / "m")
    weights = next((tmp_path / "m" / "unet").glob("*.safetensors"))
    weights.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        ConditionalDiffusion.load(tmp_path / "m")
    tiny_model.save(tmp_path / "n")
    with pytest.raises(CheckpointError, match="sample_size"):
        ConditionalDiffusion.load(tmp_path / "n", image_size=16)
    with pytest.raises(CheckpointError, match="num_class_embeds"):
        ConditionalDiffusion.load(tmp_path / "n", num_classes=5)


def test_training_cache_hit_and_metadata(tiny_profile):
    model, meta, directory = train_or_load_diffusion(tiny_profile)
    again, meta2, directory2 = train_or_load_diffusion(tiny_profile)
    assert directory == directory2 and meta2["cache_hit"]
    saved = json.loads((directory / "metadata.json").read_text())
    for key in ("seed", "steps", "train_seconds", "versions", "data", "unet", "pretrain", "num_classes"):
        assert key in saved
    for v1, v2 in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(v1, v2)
    # a change of recipe is a different artefact
    tiny_profile.pretrain.steps += 1
    from unlearnbench.foundation.pretraining import diffusion_cache_key

    assert diffusion_cache_key(tiny_profile, None, 0) not in str(directory)
