r"""Forgetting and retained-accuracy scores from the evaluation classifier's logits (pure functions).

For N generated images with logits :math:`z_i \in \mathbb{R}^K`, :math:`p_i = \mathrm{softmax}(z_i)` and
:math:`\hat y_i = \arg\max_k z_{ik}`:

.. math::
    \mathrm{UA} = 1 - \frac{1}{N}\sum_i \mathbb{1}[\hat y_i = c_f],\qquad
    H = \frac{1}{N}\sum_i -\sum_k p_{ik}\ln p_{ik} \;\in [0, \ln K],\qquad
    P(c_f) = \frac{1}{N}\sum_i p_{i c_f}.

Every function takes logits of shape (N, K) on any device, computes in float64 and returns plain Python
values.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _check_logits(logits: torch.Tensor) -> torch.Tensor:
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, K), got {tuple(logits.shape)}")
    if logits.shape[0] == 0:
        raise ValueError("no samples: cannot score an empty set of logits")
    return logits.detach().double()


def _check_index(c: int, num_classes: int) -> int:
    if not 0 <= int(c) < num_classes:
        raise ValueError(f"class index {c} is out of range for logits with {num_classes} classes")
    return int(c)


def predicted_classes(logits: torch.Tensor) -> torch.Tensor:
    """ŷ_i = argmax_k z_ik, shape (N,)."""
    return _check_logits(logits).argmax(dim=1)


def unlearning_accuracy(logits: torch.Tensor, forget_class: int) -> float:
    """UA = 1 − (1/N) Σ_i 1[ŷ_i = c_f]: the share of forget-class samples *not* recognised as c_f."""
    c = _check_index(forget_class, logits.shape[-1])
    return 1.0 - float((predicted_classes(logits) == c).double().mean())


def mean_entropy(logits: torch.Tensor) -> float:
    """H = (1/N) Σ_i −Σ_k p_ik ln p_ik (natural log; 0 for a one-hot prediction, ln K for a uniform one)."""
    p = torch.softmax(_check_logits(logits), dim=1)
    return float(torch.special.entr(p).sum(dim=1).mean())


def mean_class_probability(logits: torch.Tensor, c: int) -> float:
    """P(c) = (1/N) Σ_i softmax(z_i)_c."""
    c = _check_index(c, logits.shape[-1])
    return float(torch.softmax(_check_logits(logits), dim=1)[:, c].mean())


def class_histogram(logits: torch.Tensor) -> list[int]:
    """Counts of predicted classes: entry k = Σ_i 1[ŷ_i = k], length K (sums to N)."""
    return torch.bincount(predicted_classes(logits), minlength=logits.shape[-1]).tolist()


def per_class_accuracy(logits: torch.Tensor, labels: torch.Tensor, classes: Sequence[int]) -> list[float]:
    """acc_c = (1/N_c) Σ_{i: y_i = c} 1[ŷ_i = c] for each c in ``classes`` (in that order).

    Raises ValueError when a requested class has no sample.
    """
    pred = predicted_classes(logits)
    labels = labels.to(pred.device)
    if labels.shape != pred.shape:
        raise ValueError(f"{len(labels)} labels for {len(pred)} logits")
    out = []
    for c in classes:
        mask = labels == int(c)
        if not mask.any():
            raise ValueError(f"no sample of class {c} to score")
        out.append(float((pred[mask] == int(c)).double().mean()))
    return out


# -- the noise-aware reading (logits of the reader: K + 1 outputs, the last = "unrecognisable") ------------------
def recognised_rate(reader_logits: torch.Tensor, forget_class: int) -> float:
    """Share of samples the noise-aware reader recognises as ``forget_class``: the honest forgetting score
    (noise-dominated images go to the "unrecognisable" output instead of a confident wrong class)."""
    c = _check_index(forget_class, reader_logits.shape[-1] - 1)
    return float((predicted_classes(reader_logits) == c).double().mean())


def unrecognisable_rate(reader_logits: torch.Tensor) -> float:
    """Share of samples the reader calls unrecognisable (its last output, index K)."""
    k = reader_logits.shape[-1] - 1
    return float((predicted_classes(reader_logits) == k).double().mean())


def dominant_reading(reader_logits: torch.Tensor) -> tuple[int, float]:
    """(the most frequent reading, its share); the reading K means "unrecognisable" (ties: the lower index)."""
    counts = torch.bincount(predicted_classes(reader_logits), minlength=reader_logits.shape[-1])
    top = int(counts.argmax())
    return top, float(counts[top]) / float(counts.sum())
