"""UA, entropy, P(c_f), histogram and per-class accuracy on hand-made logits."""

from __future__ import annotations

import math

import pytest
import torch

from unlearnbench.metrics.forgetting import (
    class_histogram,
    mean_class_probability,
    mean_entropy,
    per_class_accuracy,
    predicted_classes,
    unlearning_accuracy,
)

# Softmax rows by construction: exp(logits) ∝ [2, 1, 1], [1, 3, 1], ≈[0, 0, 1], [6, 3, 1].
LOGITS = torch.tensor([
    [math.log(2), 0.0, 0.0],
    [0.0, math.log(3), 0.0],
    [0.0, 0.0, 100.0],
    [math.log(6), math.log(3), 0.0],
], dtype=torch.float64)
PROBS = [[0.5, 0.25, 0.25], [0.2, 0.6, 0.2], [0.0, 0.0, 1.0], [0.6, 0.3, 0.1]]


def entropy(p: list[float]) -> float:
    return -sum(q * math.log(q) for q in p if q > 0)


def test_predictions_and_histogram():
    assert predicted_classes(LOGITS).tolist() == [0, 1, 2, 0]
    assert class_histogram(LOGITS) == [2, 1, 1]
    assert class_histogram(torch.tensor([[0.0, 5.0, 0.0]] * 3)) == [0, 3, 0]


def test_unlearning_accuracy_by_hand():
    assert unlearning_accuracy(LOGITS, 0) == pytest.approx(1 - 2 / 4)
    assert unlearning_accuracy(LOGITS, 1) == pytest.approx(1 - 1 / 4)
    assert unlearning_accuracy(LOGITS[2:3], 2) == 0.0
    assert unlearning_accuracy(LOGITS[2:3], 0) == 1.0


def test_mean_entropy_by_hand():
    expected = sum(entropy(p) for p in PROBS) / 4
    assert mean_entropy(LOGITS) == pytest.approx(expected, abs=1e-9)
    assert entropy(PROBS[0]) == pytest.approx(1.5 * math.log(2))
    assert mean_entropy(torch.zeros(5, 7)) == pytest.approx(math.log(7))  # uniform: ln K
    assert mean_entropy(torch.tensor([[0.0, -1e4, -float("inf")]])) == pytest.approx(0.0, abs=1e-9)


def test_mean_class_probability_by_hand():
    assert mean_class_probability(LOGITS, 0) == pytest.approx((0.5 + 0.2 + 0.0 + 0.6) / 4, abs=1e-9)
    assert mean_class_probability(LOGITS, 2) == pytest.approx((0.25 + 0.2 + 1.0 + 0.1) / 4, abs=1e-9)


def test_per_class_accuracy_by_hand():
    labels = torch.tensor([0, 1, 1, 0])
    assert per_class_accuracy(LOGITS, labels, [0, 1]) == [1.0, 0.5]
    assert per_class_accuracy(LOGITS, labels, [1, 0]) == [0.5, 1.0]
    with pytest.raises(ValueError, match="no sample of class 2"):
        per_class_accuracy(LOGITS, labels, [2])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="empty"):
        unlearning_accuracy(torch.empty(0, 3), 0)
    with pytest.raises(ValueError, match="shape"):
        mean_entropy(torch.zeros(3))
    with pytest.raises(ValueError, match="out of range"):
        unlearning_accuracy(LOGITS, 3)
    with pytest.raises(ValueError, match="out of range"):
        mean_class_probability(LOGITS, -1)
