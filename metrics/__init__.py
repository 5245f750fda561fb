"""Scores of the benchmark: forgetting (:mod:`metrics.forgetting`), FID (:mod:`metrics.fid`), sample grids
(:mod:`metrics.grid`), the one :class:`metrics.evaluator.Evaluator`, and cost (:mod:`metrics.cost`).

Submodules are imported explicitly (``from metrics.evaluator import Evaluator``) so that light users such as
``metrics.cost`` do not pull in the models.
"""
