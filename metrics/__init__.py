"""Scores of the benchmark: forgetting (:mod:`unlearnbench.metrics.forgetting`), FID/KID
(:mod:`unlearnbench.metrics.fid`), sample grids (:mod:`unlearnbench.metrics.grid`), the fine-tuning attacks
(:mod:`unlearnbench.metrics.relearning`: relearning, no forget data), class-embedding inversion
(:mod:`unlearnbench.metrics.inversion`), the class signal (:mod:`unlearnbench.metrics.class_signal`) and the one
:class:`unlearnbench.metrics.evaluator.Evaluator`.

Submodules are imported explicitly (``from unlearnbench.metrics.evaluator import Evaluator``) so that importing
this package loads no models.
"""

# The version of the evaluation protocol's numbers: sampling, reading (the yardstick's use) and scoring. Part of
# every run key; bump it when tests/test_pinned_numbers.py says the evaluator's scores on fixed samples changed.
# 2 (issue 19): reader v2 and its stress card, attacks read from step 0 and scored by their maximum, class-embedding
# inversion, no-forget-data and unconditional leakage, the quality measure chosen on known answers.
PROTOCOL_VERSION = 2
