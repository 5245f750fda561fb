"""Unlearning methods: the base class, the registry and the built-ins (which register themselves on import).

Built-ins: ``safemax`` (SAFEMax), ``salun`` (SalUn), ``rl`` (Random Label), ``ga`` (gradient ascent), ``ft``
(fine-tune), ``retrain`` (Retrain). Plugins: a class path ``pkg.module:Class`` or an entry point in group
``unlearnbench.methods`` (see :mod:`methods.registry` and ``examples/null_label_plugin``).
"""

# importing the built-in modules registers them (each imports methods.registry itself)
from methods.base import Batch, MethodConfig, UnlearningMethod, UnlearningOutcome, run_unlearning
from methods.finetune import FineTune
from methods.gradient_ascent import GradientAscent
from methods.random_label import RandomLabel
from methods.registry import (
    ENTRY_POINT_GROUP,
    MethodConfigError,
    MethodError,
    UnknownMethodError,
    available_methods,
    build_config,
    create_method,
    get_method,
    method_config_for,
    register_method,
)
from methods.retrain import Retrain
from methods.safemax import SAFEMax
from methods.salun import SalUn

__all__ = [
    "Batch",
    "ENTRY_POINT_GROUP",
    "FineTune",
    "GradientAscent",
    "MethodConfig",
    "MethodConfigError",
    "MethodError",
    "RandomLabel",
    "Retrain",
    "SAFEMax",
    "SalUn",
    "UnknownMethodError",
    "UnlearningMethod",
    "UnlearningOutcome",
    "available_methods",
    "build_config",
    "create_method",
    "get_method",
    "method_config_for",
    "register_method",
    "run_unlearning",
]
