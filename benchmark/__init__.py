"""unlearnbench: the reference benchmark of machine unlearning in class-conditional diffusion models.

One namespace for everything public: a plugin author writes ``from unlearnbench import UnlearningMethod,
MethodConfig, Batch`` and nothing else. The repository's top-level folders are the package's parts (``pyproject.toml``
maps them): ``benchmark/`` is ``unlearnbench`` itself (``foundation``, ``orchestration``, profiles, yardsticks),
``datasets/`` is ``unlearnbench.datasets``, ``metrics/`` is ``unlearnbench.metrics`` and ``methods/`` is
``unlearnbench.methods``. No top-level ``datasets``, ``metrics`` or ``methods`` is installed, so Hugging Face's
``datasets`` (or any other distribution of those names) lives beside the suite untouched.

Layers, each importing only those before it: ``datasets`` → ``foundation`` → (``metrics`` | ``methods``) →
``orchestration``; ``metrics`` and ``methods`` do not import each other.

Names are imported on first use (:func:`lazy_exports`), so ``import unlearnbench`` loads no torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__version__ = "0.1.0"


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """``(__all__, __getattr__)`` for a package whose names live in submodules imported on first use (PEP 562).

    ``exports`` maps each public name to the module that defines it.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return sorted(exports), __getattr__


_PUBLIC = {
    # writing a method (plugins)
    "Batch": "unlearnbench.methods.base",
    "MethodConfig": "unlearnbench.methods.base",
    "UnlearningMethod": "unlearnbench.methods.base",
    "UnlearningOutcome": "unlearnbench.methods.base",
    "register_method": "unlearnbench.methods.registry",
    "available_methods": "unlearnbench.methods.registry",
    "create_method": "unlearnbench.methods.registry",
    "unlearn": "unlearnbench.methods.registry",
    "MethodError": "unlearnbench.methods.registry",
    "MethodConfigError": "unlearnbench.methods.registry",
    # the model, the data, the configuration
    "ConditionalDiffusion": "unlearnbench.foundation.diffusion",
    "Profile": "unlearnbench.foundation.config",
    "load_profile": "unlearnbench.foundation.config",
    "ConfigError": "unlearnbench.foundation.config",
    "DataConfig": "unlearnbench.datasets.config",
    "UnlearningDataModule": "unlearnbench.datasets.datamodule",
    "register_source": "unlearnbench.datasets.sources",
    # scoring and running
    "Evaluator": "unlearnbench.metrics.evaluator",
    "BenchmarkRunner": "unlearnbench.orchestration.runner",
}

__all__, __getattr__ = lazy_exports("unlearnbench", _PUBLIC)
__all__ = [*__all__, "lazy_exports"]
