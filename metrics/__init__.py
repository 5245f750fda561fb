"""Scores of the benchmark: forgetting (:mod:`unlearnbench.metrics.forgetting`), FID (:mod:`unlearnbench.metrics.fid`), sample grids
(:mod:`unlearnbench.metrics.grid`), the one :class:`unlearnbench.metrics.evaluator.Evaluator`, and cost (:mod:`unlearnbench.foundation.cost`).

Submodules are imported explicitly (``from unlearnbench.metrics.evaluator import Evaluator``) so that light users such as
``unlearnbench.foundation.cost`` do not pull in the models.
"""
