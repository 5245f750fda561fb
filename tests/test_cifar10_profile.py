"""The paper-scale ``cifar10`` profile end to end, on a tiny synthetic dataset in CIFAR-10's exact on-disk format.

The data is written as ``cifar-10-batches-py`` (pickled dicts: ``data_batch_1..5`` and ``test_batch`` with
``b"data"`` uint8 rows of 3072 = R, G, B planes of 32×32 and ``b"labels"``, ``batches.meta`` with
``b"label_names"``), ten classes told apart by their colour and a stripe. The profile's code paths are kept (3
channels, 32 px, a four-level UNet with attention blocks at resolution 16 and dropout, DDIM with η = 1 and no x0
clipping, its resnet18 yardstick recipe) and only sizes shrink: narrow UNet, 4 pretraining steps, a 2-step sampler,
a handful of samples, one forget class, SAFEMax and SalUn, fp32 on CPU, no relearning attack. A yardstick is trained
for the test into a temporary folder with floors of 0 (a weak tiny classifier is fine: the test checks the
pipeline, not the scores).
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np

from unlearnbench.foundation.config import load_profile
from unlearnbench.foundation.diffusion import build_unet
from unlearnbench.foundation.yardstick import train_yardstick
from unlearnbench.orchestration.runner import BenchmarkRunner

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_PER_CLASS, TEST_PER_CLASS = 20, 6


def synthetic_images(n_per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """``n_per_class`` 32×32×3 uint8 images per class as CIFAR rows (3072 bytes, channel planes), shuffled."""
    labels = np.repeat(np.arange(len(CLASSES)), n_per_class)
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(len(labels), 3, 32, 32)).astype(np.int64)
    for i, c in enumerate(labels):
        colour = np.array([(c * 97) % 256, (c * 53 + 80) % 256, (c * 29 + 160) % 256])
        images[i] += colour[:, None, None] // 2
        images[i, :, 3 * c:3 * c + 3, :] += 120  # a class-specific horizontal stripe
    return np.clip(images, 0, 255).astype(np.uint8).reshape(len(labels), 3072), labels.tolist()


def write_cifar10(root: Path) -> Path:
    """A ``cifar-10-batches-py`` folder of synthetic images in the exact format of the python CIFAR-10 release."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    data, labels = synthetic_images(TRAIN_PER_CLASS, rng)
    for i, part in enumerate(np.array_split(np.arange(len(labels)), 5), 1):
        batch = {b"batch_label": f"training batch {i} of 5".encode(), b"labels": [labels[j] for j in part],
                 b"data": data[part], b"filenames": [f"img_{j}.png".encode() for j in part]}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    data, labels = synthetic_images(TEST_PER_CLASS, rng)
    (folder / "test_batch").write_bytes(pickle.dumps({b"batch_label": b"testing batch 1 of 1", b"labels": labels,
                                                      b"data": data}))
    meta = {b"label_names": [n.encode() for n in CLASSES], b"num_cases_per_batch": 10000, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder


def test_cifar10_profile_end_to_end_on_synthetic_cifar(tmp_path):
    path = write_cifar10(tmp_path)
    common = [f"data.path={path}", f"runtime.cache_dir={tmp_path / 'cache'}", f"runtime.output_dir={tmp_path / 'out'}",
              "runtime.precision=32-true", "runtime.accelerator=cpu", "runtime.num_threads=1", "runtime.progress=false",
              "runtime.logger=none", "runtime.isolate_runs=false",
              "classifier.model_kwargs={layers: [1, 1, 1, 1], channels: [16, 32, 64, 64], stem_width: 16}",
              "classifier.epochs=2", "classifier.reader_epochs=2", "classifier.batch_size=32",
              "classifier.min_accuracy=0", "classifier.min_noisy_accuracy=0", "classifier.min_unrecognisable=0",
              "classifier.min_readable=0", "classifier.min_unreadable=0"]
    yardstick = train_yardstick(load_profile("cifar10", common), directory=tmp_path / "yardstick")
    assert yardstick.card["channels"] == 3 and yardstick.card["class_names"] == CLASSES

    profile = load_profile("cifar10", [
        *common, f"classifier.directory={tmp_path / 'yardstick'}",
        "unet.block_out_channels=[16, 32, 32, 32]", "unet.layers_per_block=1", "unet.norm_num_groups=8",
        "pretrain.steps=4", "pretrain.batch_size=16", "pretrain.warmup_steps=1",
        "sampler.steps=2", "evaluation.forget_samples=4", "evaluation.retain_samples_per_class=2",
        "evaluation.batch_size=32", "evaluation.kid_subsets=5", "evaluation.relearn_steps=0",
        "unlearning.methods=[safemax, salun]", "unlearning.forget_classes=[0]", "unlearning.steps=2",
        "unlearning.batch_size=8",
    ])
    # what the test keeps of the paper-scale profile
    assert (profile.data.image_size, profile.unet.attention_resolutions, profile.unet.dropout) == (32, [16], 0.1)
    assert (profile.sampler.kind, profile.sampler.eta, profile.sampler.clip) == ("ddim", 1.0, "none")
    assert "AttnDownBlock2D" in build_unet(profile.unet, 32, 3, len(CLASSES)).config.down_block_types
    records = BenchmarkRunner(profile).run()

    assert sorted(r["method"] for r in records) == ["original", "safemax", "salun"]
    for record in records:
        assert record["status"] == "ok", record.get("error")
        assert (record["sampler_kind"], record["sampler_eta"], record["sampler_steps"]) == ("ddim", 1.0, 2)
        for key in ("recognised_rate", "ua", "retain_accuracy", "fid", "kid", "forget_kid"):
            assert math.isfinite(record[key]), (record["method"], key, record[key])
