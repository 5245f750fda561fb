"""Image sources and the Lightning DataModule of the unlearning benchmark.

The repository's ``datasets/`` folder, installed as ``unlearnbench.datasets`` (never as a top-level ``datasets``, so
Hugging Face's package of that name is untouched). Its names are imported on first use, so
``from unlearnbench.datasets import DataConfig`` does not load torch.
"""

from __future__ import annotations

from unlearnbench import lazy_exports

_EXPORTS = {
    "DataConfig": "unlearnbench.datasets.config",
    "Split": "unlearnbench.datasets.config",
    "DataSourceError": "unlearnbench.datasets.sources",
    "ImageSet": "unlearnbench.datasets.sources",
    "available_sources": "unlearnbench.datasets.sources",
    "load_source": "unlearnbench.datasets.sources",
    "register_source": "unlearnbench.datasets.sources",
    "UnlearningDataModule": "unlearnbench.datasets.datamodule",
}

__all__, __getattr__ = lazy_exports("unlearnbench.datasets", _EXPORTS)
