"""The class-signal curve (issue 10): zero where the label cannot matter, positive where it does; files written."""

from __future__ import annotations

import json

import pytest
import torch

from unlearnbench.foundation.config import UNetConfig
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.metrics.class_signal import class_signal, psi, write_class_signal


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
