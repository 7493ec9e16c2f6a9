"""Label propagation: connected components over accepted edges, splitting components above a size
limit by repeatedly dropping their weakest edges (CDP's propagation step). numpy only."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

# Fraction of a too-large component's edges dropped (weakest first) before it is split again.
DROP_FRACTION = 0.05


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Root index of each of ``n`` nodes in the graph with edges (i[e], j[e]) (smallest index of its component).

    Hook-and-compress: every edge points the larger root at the smaller one, then pointer jumping
    flattens the trees; each round strictly lowers the sum of the parents, so it terminates.
    """
    parent = np.arange(n)
    while len(i):
        pi, pj = parent[i], parent[j]
        differ = pi != pj
        if not differ.any():
            break
        np.minimum.at(parent, np.maximum(pi, pj)[differ], np.minimum(pi, pj)[differ])
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def propagate(n: int, i: np.ndarray, j: np.ndarray, score: np.ndarray, threshold: float,
              max_size: Optional[int] = None) -> np.ndarray:
    """Labels 0..C-1 for the components (≥ 2 faces) of the edges with ``score >= threshold``, largest
    first; -1 for faces left alone. No component is larger than ``max_size`` (None: no limit)."""
    if max_size is not None and max_size < 1:
        raise ValueError("max_size must be at least 1")
    keep = score >= threshold
    i, j, score = i[keep], j[keep], score[keep]
    order = np.argsort(score, kind="stable")  # weakest first, for splitting
    i, j, score = i[order], j[order], score[order]
    roots = components(n, i, j)
    if max_size is not None:
        roots = _split_large(n, roots, i, j, max_size)
    return _relabel(roots)


def _split_large(n: int, roots: np.ndarray, i: np.ndarray, j: np.ndarray, max_size: int) -> np.ndarray:
    """Re-split every component above ``max_size``; edges arrive sorted weakest first."""
    roots = roots.copy()
    sizes = np.bincount(roots, minlength=n)
    pending = [(int(r), np.flatnonzero(roots[i] == r)) for r in np.flatnonzero(sizes > max_size)]
    while pending:
        root, edges = pending.pop()
        nodes = np.flatnonzero(roots == root)
        edges = edges[max(1, math.ceil(len(edges) * DROP_FRACTION)):]
        local = np.full(n, -1)
        local[nodes] = np.arange(len(nodes))
        sub = components(len(nodes), local[i[edges]], local[j[edges]])
        roots[nodes] = nodes[sub]  # new root: the piece's smallest global index
        piece_sizes = np.bincount(sub, minlength=len(nodes))
        for piece in np.flatnonzero(piece_sizes > max_size):
            new_root = nodes[piece]
            pending.append((int(new_root), edges[roots[i[edges]] == new_root]))
    return roots


def _relabel(roots: np.ndarray) -> np.ndarray:
    """Roots → labels 0..C-1 by decreasing size (ties: first face), singletons → -1."""
    labels = np.full(len(roots), -1, np.int64)
    if len(roots) == 0:
        return labels
    unique, first, inverse, counts = np.unique(roots, return_index=True, return_inverse=True, return_counts=True)
    groups = np.flatnonzero(counts >= 2)
    ranked = groups[np.lexsort((first[groups], -counts[groups]))]
    label_of = np.full(len(unique), -1, np.int64)
    label_of[ranked] = np.arange(len(ranked))
    return label_of[inverse.ravel()]
