from __future__ import annotations

import numpy as np
import pytest

import edgeface
from edgeface.evaluation import best_accuracy_threshold, kfold_accuracy, tar_at_far, threshold_at_far


def synthetic(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.5
    scores = np.where(labels, rng.normal(0.7, 0.1, n), rng.normal(0.1, 0.1, n))
    return scores, labels


def test_threshold_at_far_meets_the_rate():
    scores, labels = synthetic()
    for far in (1e-1, 1e-2, 1e-3):
        t = threshold_at_far(scores, labels, far)
        measured = np.mean(scores[~labels] >= t)
        assert measured <= far
        # and it is the smallest such threshold: one impostor more would be accepted just below it
        assert np.mean(scores[~labels] >= np.nextafter(t, -np.inf) - 1e-9) > far or measured == 0


def test_best_accuracy_threshold_is_optimal():
    scores, labels = synthetic(500, 1)
    t = best_accuracy_threshold(scores, labels)
    best = np.mean((scores >= t) == labels)
    brute = max(np.mean((scores >= c) == labels) for c in np.concatenate([scores, [np.inf]]))
    assert best == pytest.approx(brute)


def test_kfold_uses_other_folds_and_perfect_separation():
    labels = np.array([1, 0] * 50, bool)
    scores = np.where(labels, 0.9, 0.1)
    res = kfold_accuracy(scores, labels, np.arange(100) % 5)
    assert res.mean == 1.0 and len(res.fold_accuracies) == 5
    noisy, lab = synthetic(1000, 2)
    res = kfold_accuracy(noisy, lab, np.arange(1000) % 5)
    assert 0.98 < res.mean <= 1.0 and res.std < 0.02
    assert 0.9 < tar_at_far(noisy, lab, 1e-2) <= 1.0


def test_bad_inputs():
    with pytest.raises(edgeface.InvalidArgumentError):
        threshold_at_far(np.zeros(3), np.ones(3), 0.1)  # no impostors
    with pytest.raises(edgeface.InvalidArgumentError):
        threshold_at_far(np.zeros(3), np.ones(4), 0.1)
