"""Image sources and the Lightning DataModule of the unlearning benchmark.

This top-level package is named ``datasets`` (the design card's layout) and therefore shadows Hugging Face's
``datasets`` when both are installed; :func:`benchmark.check_own_datasets_package` stops early if the wrong one
is imported. Its names are imported on first use, so ``from datasets import DataConfig`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

UNLEARNBENCH_DATASETS = True  # marker checked at start-up (see benchmark.check_own_datasets_package)

_EXPORTS = {
    "DataConfig": "datasets.config",
    "Split": "datasets.config",
    "DataSourceError": "datasets.sources",
    "ImageSet": "datasets.sources",
    "available_sources": "datasets.sources",
    "load_source": "datasets.sources",
    "register_source": "datasets.sources",
    "UnlearningDataModule": "datasets.datamodule",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'datasets' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
