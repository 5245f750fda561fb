"""Image sources and the Lightning DataModule of the unlearning benchmark.

This top-level package is named ``datasets`` (the design card's layout) and therefore shadows Hugging Face's
``datasets`` when both are installed; :func:`benchmark.check_own_datasets_package` stops early if the wrong one
is imported.
"""

from datasets.datamodule import UnlearningDataModule
from datasets.sources import (
    DataConfig,
    DataSourceError,
    ImageSet,
    available_sources,
    load_source,
    register_source,
)

UNLEARNBENCH_DATASETS = True  # marker checked at start-up (see benchmark.check_own_datasets_package)

__all__ = [
    "DataConfig",
    "DataSourceError",
    "ImageSet",
    "UnlearningDataModule",
    "available_sources",
    "load_source",
    "register_source",
]
