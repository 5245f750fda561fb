"""Scores of the benchmark: forgetting (:mod:`unlearnbench.metrics.forgetting`), FID/KID
(:mod:`unlearnbench.metrics.fid`), sample grids (:mod:`unlearnbench.metrics.grid`), the relearning attack
(:mod:`unlearnbench.metrics.relearning`), the class signal (:mod:`unlearnbench.metrics.class_signal`) and the one
:class:`unlearnbench.metrics.evaluator.Evaluator`.

Submodules are imported explicitly (``from unlearnbench.metrics.evaluator import Evaluator``) so that importing
this package loads no models.
"""

# The version of the evaluation protocol's numbers: sampling, reading (the yardstick's use) and scoring. Part of
# every run key; bump it when tests/test_pinned_numbers.py says the evaluator's scores on fixed samples changed.
PROTOCOL_VERSION = 1
