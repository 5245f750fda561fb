"""The foundation layer: what every method and metric is built on.

Configuration (``config``), the content-addressed artefact store and atomic writes (``cache``), what identifies a
number's provenance (``provenance``: code fingerprint, hardware, library versions), the diffusion model and its
sampler (``diffusion``), the evaluation classifier (``classifier``), pretraining (``pretraining``) and the one
Trainer factory (``trainer``).

Dependency direction: ``datasets`` → ``unlearnbench.foundation`` → ``metrics`` → ``methods`` →
``unlearnbench.orchestration``. Nothing here imports ``methods`` or the orchestration layer, and of ``metrics``
only the pure score functions of ``unlearnbench.metrics.forgetting`` (the classifier's held-out per-class accuracy is scored
like generated images).
"""
