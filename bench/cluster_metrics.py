"""Clustering quality against known identities: pairwise and BCubed precision/recall/F, NMI, counts.

A label of -1 (no group) counts as a group of its own for every face, as a user would see it.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def singletons_apart(labels: np.ndarray) -> np.ndarray:
    """-1 labels → fresh labels, one per face."""
    labels = np.asarray(labels, np.int64).copy()
    alone = labels < 0
    labels[alone] = labels.max(initial=-1) + 1 + np.arange(alone.sum())
    return labels


def _contingency(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    _, p = np.unique(pred, return_inverse=True)
    _, t = np.unique(truth, return_inverse=True)
    cells, counts = np.unique(p.ravel() * (t.max() + 1) + t.ravel(), return_counts=True)
    return p.ravel(), t.ravel(), cells // (t.max() + 1), cells % (t.max() + 1), counts


def _f(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def bcubed_f(labels: np.ndarray, truth: np.ndarray) -> float:
    return scores(labels, truth, nmi=False)["bcubed_f"]


def scores(labels: np.ndarray, truth: np.ndarray, nmi: bool = True) -> dict[str, Any]:
    pred = singletons_apart(labels)
    p, t, cell_p, cell_t, n = _contingency(pred, np.asarray(truth))
    size_p, size_t = np.bincount(p), np.bincount(t)
    n_items = len(pred)
    same = float((n * (n - 1) / 2).sum())
    pred_pairs = float((size_p * (size_p - 1) / 2).sum())
    true_pairs = float((size_t * (size_t - 1) / 2).sum())
    pw_p = same / pred_pairs if pred_pairs else 1.0
    pw_r = same / true_pairs if true_pairs else 1.0
    b_p = float((n.astype(float) ** 2 / size_p[cell_p]).sum() / n_items)
    b_r = float((n.astype(float) ** 2 / size_t[cell_t]).sum() / n_items)
    out = {"pairwise_precision": pw_p, "pairwise_recall": pw_r, "pairwise_f": _f(pw_p, pw_r),
           "bcubed_precision": b_p, "bcubed_recall": b_r, "bcubed_f": _f(b_p, b_r),
           "clusters": int((size_p >= 2).sum()), "singletons": int((size_p == 1).sum()),
           "largest": int(size_p.max(initial=0)), "people": int(len(size_t))}
    if nmi:
        from sklearn.metrics import normalized_mutual_info_score
        out["nmi"] = float(normalized_mutual_info_score(t, p))
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}
