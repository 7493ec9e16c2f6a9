"""Verification metrics on labeled pairs: thresholds at a false-accept rate, k-fold accuracy, TAR@FAR.

Used by the benchmarks (``bench/accuracy_lfw.py --write-thresholds`` calibrates the manifest); also
handy for calibrating on your own data. Scores are similarities (higher = more alike); labels are 1 for same person, 0 otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidArgumentError


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if s.ndim != 1 or s.shape != y.shape:
        raise InvalidArgumentError(f"scores and labels must be 1-D of equal length, got {s.shape} and {y.shape}")
    if y.all() or not y.any():
        raise InvalidArgumentError("labels must contain both same (1) and different (0) pairs")
    return s, y


def threshold_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """Smallest threshold whose false-accept rate (impostor scores >= threshold) is <= ``far``."""
    s, y = _check(scores, labels)
    impostors = np.sort(s[~y])[::-1]
    allowed = int(np.floor(far * len(impostors)))  # impostors that may score at or above the threshold
    if allowed >= len(impostors):
        return float(impostors[-1])
    # Just above the (allowed+1)-th highest impostor score; ties there are rejected too.
    return float(np.nextafter(impostors[allowed], np.inf))


def tar_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """True-accept rate of genuine pairs at the threshold of ``threshold_at_far``."""
    s, y = _check(scores, labels)
    return float(np.mean(s[y] >= threshold_at_far(s, y, far)))


def best_accuracy_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold maximising accuracy (midpoint between neighbouring scores at the optimum)."""
    s, y = _check(scores, labels)
    order = np.argsort(s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # Threshold placed below index i accepts s_sorted[i:]: correct = genuines at/above + impostors below.
    genuine_at_or_above = np.concatenate([np.cumsum(y_sorted[::-1])[::-1], [0]])
    impostors_below = np.concatenate([[0], np.cumsum(~y_sorted)])
    correct = genuine_at_or_above + impostors_below
    i = int(np.argmax(correct))
    if i == 0:
        return float(s_sorted[0] - 1e-6)
    if i == len(s_sorted):
        return float(s_sorted[-1] + 1e-6)
    return float((s_sorted[i - 1] + s_sorted[i]) / 2)


@dataclass(frozen=True)
class KFoldResult:
    mean: float
    std: float
    fold_accuracies: tuple[float, ...]
    fold_thresholds: tuple[float, ...]


def kfold_accuracy(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> KFoldResult:
    """LFW protocol: for each fold, pick the best threshold on the other folds, measure on this one."""
    s, y = _check(scores, labels)
    f = np.asarray(folds)
    accs, thrs = [], []
    for fold in np.unique(f):
        test = f == fold
        t = best_accuracy_threshold(s[~test], y[~test])
        accs.append(float(np.mean((s[test] >= t) == y[test])))
        thrs.append(t)
    return KFoldResult(float(np.mean(accs)), float(np.std(accs)), tuple(accs), tuple(thrs))


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, TAR) at every distinct threshold, for plotting."""
    s, y = _check(scores, labels)
    order = np.argsort(-s, kind="stable")
    y_sorted = y[order]
    tar = np.cumsum(y_sorted) / y.sum()
    far = np.cumsum(~y_sorted) / (~y).sum()
    return np.concatenate([[0.0], far]), np.concatenate([[0.0], tar])
