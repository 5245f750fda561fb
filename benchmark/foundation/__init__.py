"""The foundation layer: what every metric, method and orchestration step is built on.

Configuration (``config``), the content-addressed artefact store and atomic writes (``cache``), what identifies a
number (``provenance``: content hashes and versions for keys, code fingerprint and hardware as a record), the
diffusion model and its sampler (``diffusion``), the evaluation networks (``classifier``, ``yardstick``),
pretraining (``pretraining``), timing and memory (``cost``), tables and figures (``report_files``) and the one
Trainer factory (``trainer``).

Layers: ``unlearnbench.datasets`` → ``unlearnbench.foundation`` → (``unlearnbench.metrics`` |
``unlearnbench.methods``) → ``unlearnbench.orchestration``. Nothing here imports a later layer.
"""
