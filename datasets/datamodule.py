"""Lightning DataModule: resized images in [-1, 1], split by class into forget / retain sets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler, TensorDataset

from unlearnbench.datasets.sources import DataConfig, DataSourceError, ImageSet, Split, load_source


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 (N, C, size, size) in [-1, 1] (antialiased bilinear when shrinking)."""
    x = images.float().div_(127.5).sub_(1.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        out = []
        for chunk in x.split(4096):
            out.append(F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
        x = torch.cat(out).clamp_(-1.0, 1.0)
    return x.contiguous()


@lru_cache(maxsize=8)
def _prepared(source: str, path: str | None, image_size: int, max_per_class: int | None, split: Split):
    raw = load_source(DataConfig(source, path, image_size, max_per_class), split)
    images, labels = raw.images, raw.labels
    if max_per_class is not None and split == "train":
        keep = torch.cat([torch.nonzero(labels == c).flatten()[:max_per_class] for c in range(raw.num_classes)])
        keep = keep.sort().values
        images, labels = images[keep], labels[keep]
    return resize_uint8(images, image_size), labels.clone(), tuple(raw.class_names)


@lru_cache(maxsize=4)
def _subset(source: str, path: str | None, image_size: int, max_per_class: int | None, classes: tuple[int, ...],
            split: Split) -> TensorDataset:
    x, y, _ = _prepared(source, path, image_size, max_per_class, split)
    mask = torch.isin(y, torch.as_tensor(classes, dtype=y.dtype))
    if not mask.any():
        raise DataSourceError(f"{source}/{split} has no images of classes {list(classes)}")
    return TensorDataset(x[mask], y[mask])


def prepared_split(config: DataConfig, split: Split) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(images in [-1,1] at the profile size, labels, class names); cached in memory per config and split."""
    x, y, names = _prepared(config.source, config.path, config.image_size, config.max_per_class, split)
    return x, y, list(names)


class StepBatchSampler(Sampler[list[int]]):
    """Endless training batches whose content depends only on (seed, step): resumable at any step, exactly.

    Epoch ``e`` is the permutation drawn by a generator seeded with ``(seed, e)``; step ``s`` is batch
    ``s % batches_per_epoch`` of epoch ``s // batches_per_epoch`` (the last incomplete batch is dropped when the set
    holds more than one batch; a set smaller than one batch is one whole batch). A fit resumed at global step ``k``
    starts here at ``start_step=k`` and sees exactly the batches an uninterrupted fit sees from step ``k`` on, however
    many batches were drawn (or prefetched) before the interruption.

    Under data parallelism every rank draws the same global batch and keeps ``[rank::world_size]`` of it, so the
    global batch (and so the recipe) does not depend on the device count.
    """

    def __init__(self, size: int, batch_size: int, seed: int, start_step: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start_step, self.rank, self.world_size = start_step, rank, world_size
        self.batches_per_epoch = max(1, size // batch_size)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=generator)

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        epoch, order = -1, torch.empty(0, dtype=torch.long)
        while True:
            if step // self.batches_per_epoch != epoch:
                epoch = step // self.batches_per_epoch
                order = self.epoch_order(epoch)
            first = (step % self.batches_per_epoch) * self.batch_size
            yield order[first:first + self.batch_size][self.rank::self.world_size].tolist()
            step += 1


class UnlearningDataModule(L.LightningDataModule):
    """Images of one source at the profile's size, with class-based forget/retain views.

    ``train_dataloader`` serves the classes in ``classes`` (all by default), which is how both the original model
    (all classes) and Retrain (retained classes only) are trained on the same pipeline.
    """

    def __init__(
        self,
        config: DataConfig,
        batch_size: int = 128,
        classes: Sequence[int] | None = None,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.config = config
        self.batch_size = batch_size
        self.classes = None if classes is None else sorted(int(c) for c in classes)
        self.seed = seed
        self.num_workers = num_workers

    # -- raw access ---------------------------------------------------------------------------------------
    def split(self, split: Split = "train") -> tuple[torch.Tensor, torch.Tensor]:
        x, y, _ = prepared_split(self.config, split)
        return x, y

    @property
    def class_names(self) -> list[str]:
        return prepared_split(self.config, "train")[2]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.split("train")[0].shape[1])

    def check_class(self, c: int) -> int:
        if not 0 <= int(c) < self.num_classes:
            raise ValueError(
                f"class index {c} is out of range: {self.config.source} has classes 0..{self.num_classes - 1} "
                f"({', '.join(self.class_names)})"
            )
        return int(c)

    def subset(self, classes: Sequence[int], split: Split = "train") -> TensorDataset:
        """The images of ``classes`` only (a TensorDataset of (image, label)); the same object for the same data,
        classes and split (cached), so Retrain's training set *is* the shared retain set."""
        for c in classes:
            self.check_class(c)
        return _subset(self.config.source, self.config.path, self.config.image_size, self.config.max_per_class,
                       tuple(sorted(int(c) for c in classes)), split)

    def loader(self, dataset: TensorDataset, shuffle: bool = True, batch_size: int | None = None,
               drop_last: bool = False) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(dataset, batch_size=batch_size or self.batch_size, shuffle=shuffle, drop_last=drop_last,
                          generator=generator, num_workers=self.num_workers)

    def classes_except(self, *excluded: int) -> list[int]:
        """Every class index of the data but ``excluded`` (each range-checked), ascending: the retained classes of
        one forget class or of a sequence of them."""
        gone = {self.check_class(c) for c in excluded}
        return [c for c in range(self.num_classes) if c not in gone]

    def forget_dataset(self, forget_class: int, split: Split = "train") -> TensorDataset:
        """The images of ``forget_class`` only."""
        return self.subset([forget_class], split)

    def retain_dataset(self, forget_class: int, split: Split = "train") -> TensorDataset:
        """The images of every class but ``forget_class``."""
        return self.subset(self.classes_except(forget_class), split)

    # -- Lightning hooks -------------------------------------------------------------------------------------
    def training_set(self) -> TensorDataset:
        """The training images of ``classes`` (every class by default)."""
        return self.subset(self.classes if self.classes is not None else self.classes_except(), "train")

    def train_dataloader(self) -> DataLoader:
        ds = self.training_set()
        return self.loader(ds, shuffle=True, drop_last=len(ds) > self.batch_size)

    def pretraining_dataloader(self, start_step: int = 0, rank: int = 0, world_size: int = 1) -> DataLoader:
        """Endless pretraining batches of ``classes`` (:class:`StepBatchSampler`) from global step ``start_step``:
        a fit resumed from a checkpoint continues the uninterrupted data order exactly. Under data parallelism each
        rank serves its share of the global batch ``batch_size``."""
        ds = self.training_set()
        sampler = StepBatchSampler(len(ds), self.batch_size, self.seed, start_step, rank, world_size)
        # its own generator: creating the iterator must not draw from the global RNG (restored on resume)
        return DataLoader(ds, batch_sampler=sampler, num_workers=self.num_workers,
                          generator=torch.Generator().manual_seed(self.seed))


__all__ = ["ImageSet", "StepBatchSampler", "UnlearningDataModule", "prepared_split", "resize_uint8"]
