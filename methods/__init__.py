"""Unlearning methods: the base class, the registry and the built-ins.

Built-ins: ``safemax`` (SAFEMax), ``salun`` (SalUn), ``rl`` (Random Label), ``ga`` (gradient ascent), ``ft``
(fine-tune), ``retrain`` (Retrain), ``sa`` (Selective Amnesia), ``iau`` (IAU, adapted), ``esd`` (ESD,
adapted), ``o3`` (O3's orthogonal LoRA, one adapter per request).
Plugins: a class path ``pkg.module:Class`` or an entry point in group
``unlearnbench.methods`` (see :mod:`unlearnbench.methods.registry` and ``examples/null_label_plugin``).

Names are imported on first use (``from unlearnbench.methods import SAFEMax`` loads torch;
``unlearnbench.methods.registry`` alone does not).
"""

from __future__ import annotations

from unlearnbench import lazy_exports

_EXPORTS = {
    "Batch": "unlearnbench.methods.base",
    "MethodConfig": "unlearnbench.methods.base",
    "UnlearningMethod": "unlearnbench.methods.base",
    "UnlearningOutcome": "unlearnbench.methods.base",
    "run_unlearning": "unlearnbench.methods.base",
    "ENTRY_POINT_GROUP": "unlearnbench.methods.registry",
    "MethodConfigError": "unlearnbench.methods.registry",
    "MethodError": "unlearnbench.methods.registry",
    "UnknownMethodError": "unlearnbench.methods.registry",
    "available_methods": "unlearnbench.methods.registry",
    "build_config": "unlearnbench.methods.registry",
    "canonical_name": "unlearnbench.methods.registry",
    "check_method_args": "unlearnbench.methods.registry",
    "create_method": "unlearnbench.methods.registry",
    "get_method": "unlearnbench.methods.registry",
    "method_config_for": "unlearnbench.methods.registry",
    "method_summary": "unlearnbench.methods.registry",
    "register_method": "unlearnbench.methods.registry",
    "resolve_entry": "unlearnbench.methods.registry",
    "unlearn": "unlearnbench.methods.registry",
    "ESD": "unlearnbench.methods.esd",
    "FineTune": "unlearnbench.methods.finetune",
    "GradientAscent": "unlearnbench.methods.gradient_ascent",
    "IAU": "unlearnbench.methods.iau",
    "OrthogonalLoRA": "unlearnbench.methods.orthogonal_lora",
    "RandomLabel": "unlearnbench.methods.random_label",
    "Retrain": "unlearnbench.methods.retrain",
    "SAFEMax": "unlearnbench.methods.safemax",
    "SalUn": "unlearnbench.methods.salun",
    "SelectiveAmnesia": "unlearnbench.methods.selective_amnesia",
}

__all__, __getattr__ = lazy_exports("unlearnbench.methods", _EXPORTS)
