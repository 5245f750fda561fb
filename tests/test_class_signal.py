"""The class-signal curve (issue 10): zero where the label cannot matter, positive where it does; files written;
stored curves reused only for the same original model and ``CLASS_SIGNAL_VERSION``."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from unlearnbench.foundation.config import UNetConfig
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.pretraining import original_identity
from unlearnbench.metrics import class_signal as class_signal_module
from unlearnbench.metrics.class_signal import class_signal, curve_identity, psi, stored_curves, write_class_signal


def tiny_model() -> ConditionalDiffusion:
    torch.manual_seed(0)
    return ConditionalDiffusion.create(UNetConfig(block_out_channels=[8, 16], norm_num_groups=4), 8, 1, 3)


def test_a_model_that_ignores_the_label_has_no_class_signal():
    model = tiny_model()
    emb = model.unet.class_embedding.weight
    with torch.no_grad():
        emb.copy_(emb[0].expand_as(emb))  # every label (and the null label) embedded identically
    images, labels = torch.rand(12, 1, 8, 8) * 2 - 1, torch.arange(3).repeat(4)
    rows = class_signal(model, images, labels, timesteps=(1, 500, 999), batch_size=5)
    assert len(rows) == 3 * 3 and {r["n"] for r in rows} == {4}
    assert all(r["d_null"] == 0.0 and r["d_swap"] == 0.0 for r in rows)


def test_a_label_that_matters_shows_and_the_files_are_written(tmp_path):
    model = tiny_model()
    with torch.no_grad():
        model.unet.class_embedding.weight.mul_(50.0)  # make the label dominate the time embedding
    images, labels = torch.rand(12, 1, 8, 8) * 2 - 1, torch.arange(3).repeat(4)
    rows = class_signal(model, images, labels, timesteps=(10, 500), seed=3)
    assert all(r["d_null"] > 0 and r["d_swap"] > 0 for r in rows)
    assert rows == class_signal(model, images, labels, timesteps=(10, 500), seed=3)  # seeded
    frame = write_class_signal(rows, tmp_path, {"model": "tiny", "parameters": 1})
    assert len(frame) == 6 and (tmp_path / "class_signal.png").stat().st_size > 1000
    assert json.loads((tmp_path / "class_signal.json").read_text())["model"] == "tiny"
    with pytest.raises(ValueError, match="timesteps"):
        class_signal(model, images, labels, timesteps=(1000,))
    assert float(psi(0, 1.0)) == 1.0 and float(psi(1000, 1.0)) == pytest.approx(0.3679, abs=1e-4)


def test_stored_curves_are_reused_only_for_the_same_original_and_version(tmp_path, smoke_profile, monkeypatch):
    identity = curve_identity(smoke_profile, 4)
    assert identity["class_signal_version"] == class_signal_module.CLASS_SIGNAL_VERSION
    assert identity["original_identity"] == original_identity(smoke_profile)  # the original's cache key
    assert identity["unet"]["block_out_channels"] == list(smoke_profile.unet.block_out_channels)
    rows = [{"t": 10, "class": 0, "n": 4, "d_null": 0.1, "d_swap": 0.2}]
    assert stored_curves(tmp_path, identity) is None  # nothing stored
    write_class_signal(rows, tmp_path, {**identity, "model": "tiny", "code_fingerprint": "any"})
    assert stored_curves(tmp_path, identity).to_dict("records") == rows

    longer = copy.deepcopy(smoke_profile)
    longer.pretrain.steps += 1  # another original
    other = curve_identity(longer, 4)
    assert other["original_identity"] != identity["original_identity"] and stored_curves(tmp_path, other) is None
    assert stored_curves(tmp_path, curve_identity(smoke_profile, 5)) is None  # other images
    monkeypatch.setattr(class_signal_module, "CLASS_SIGNAL_VERSION", 2)
    assert stored_curves(tmp_path, curve_identity(smoke_profile, 4)) is None  # the measurement changed
    (tmp_path / "class_signal.json").write_text("{not json")
    assert stored_curves(tmp_path, identity) is None
