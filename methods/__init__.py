"""Unlearning methods: the base class, the registry and the built-ins.

Built-ins: ``safemax`` (SAFEMax), ``salun`` (SalUn), ``rl`` (Random Label), ``ga`` (gradient ascent), ``ft``
(fine-tune), ``retrain`` (Retrain), ``sa`` (Selective Amnesia), ``iau`` (IAU, adapted), ``esd`` (ESD,
adapted), ``o3`` (O3's orthogonal LoRA, one adapter per request).
Plugins: a class path ``pkg.module:Class`` or an entry point in group
``unlearnbench.methods`` (see :mod:`methods.registry` and ``examples/null_label_plugin``).

Names are imported on first use (``from methods import SAFEMax`` loads torch; ``methods.registry`` alone does not).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Batch": "methods.base",
    "MethodConfig": "methods.base",
    "UnlearningMethod": "methods.base",
    "UnlearningOutcome": "methods.base",
    "run_unlearning": "methods.base",
    "ENTRY_POINT_GROUP": "methods.registry",
    "MethodConfigError": "methods.registry",
    "MethodError": "methods.registry",
    "UnknownMethodError": "methods.registry",
    "available_methods": "methods.registry",
    "build_config": "methods.registry",
    "canonical_name": "methods.registry",
    "check_method_args": "methods.registry",
    "create_method": "methods.registry",
    "get_method": "methods.registry",
    "method_config_for": "methods.registry",
    "method_summary": "methods.registry",
    "register_method": "methods.registry",
    "resolve_entry": "methods.registry",
    "unlearn": "methods.registry",
    "ESD": "methods.esd",
    "FineTune": "methods.finetune",
    "GradientAscent": "methods.gradient_ascent",
    "IAU": "methods.iau",
    "OrthogonalLoRA": "methods.orthogonal_lora",
    "RandomLabel": "methods.random_label",
    "Retrain": "methods.retrain",
    "SAFEMax": "methods.safemax",
    "SalUn": "methods.salun",
    "SelectiveAmnesia": "methods.selective_amnesia",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'methods' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
