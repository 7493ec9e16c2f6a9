"""Exact k-nearest-neighbour graphs by cosine similarity, in row blocks so memory stays bounded."""
from __future__ import annotations

import numpy as np

# One block of the similarity matrix holds at most this many float32 values (32 MB; argpartition's
# int64 answer for it takes twice that), whatever N is.
BLOCK_VALUES = 8 * 1024 * 1024


def knn(x: np.ndarray, k: int, block_values: int = BLOCK_VALUES) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` most similar other rows of unit vectors ``x`` (N×D).

    Returns (indices N×k int64, similarities N×k float32), each row sorted by decreasing similarity.
    ``k`` is clipped to N-1. A row is never its own neighbour (exact duplicates of it still are).
    """
    n = len(x)
    k = min(int(k), n - 1)
    if k <= 0:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)
    x = np.ascontiguousarray(x, np.float32)
    rows = max(1, block_values // max(n, 1))
    indices = np.empty((n, k), np.int64)
    sims = np.empty((n, k), np.float32)
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        negated = np.matmul(x[start:stop], x.T)
        np.negative(negated, out=negated)  # in place: argpartition finds the smallest
        negated[np.arange(stop - start), np.arange(start, stop)] = np.inf  # not one's own neighbour
        top = np.argpartition(negated, k - 1, axis=1)[:, :k]
        top_neg = np.take_along_axis(negated, top, axis=1)
        del negated
        order = np.argsort(top_neg, axis=1, kind="stable")
        indices[start:stop] = np.take_along_axis(top, order, axis=1)
        sims[start:stop] = -np.take_along_axis(top_neg, order, axis=1)
    return indices, sims


def candidate_pairs(neighbours: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Unordered pairs (i < j) that are neighbours in at least one of the graphs, deduplicated."""
    if not neighbours or neighbours[0].shape[1] == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty
    n = len(neighbours[0])
    i = np.concatenate([np.repeat(np.arange(n), idx.shape[1]) for idx in neighbours])
    j = np.concatenate([idx.ravel() for idx in neighbours])
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    keys = np.unique(lo * n + hi)
    return keys // n, keys % n
