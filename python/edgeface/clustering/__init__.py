"""Group faces by person without labels: consensus-driven propagation (CDP, Zhan et al., ECCV 2018).

1. a kNN graph per committee view (exact cosine search, ``graph.knn``);
2. the mediator scores each candidate pair from how the views agree on it (``mediator``);
3. connected components over the accepted pairs, oversized ones split at their weakest edges (``propagate``).

    labels = edgeface.cluster(embeddings)                      # N×128 dlib vectors
    labels = edgeface.cluster({"dlib_resnet_v1": a, "dlib_resnet_v1+flip": b})   # a committee

numpy only: no scikit-learn or scipy at run time.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

import numpy as np

from ..errors import InvalidArgumentError, InvalidDTypeError
from .graph import candidate_pairs, knn
from .mediator import EDGE_BLOCK, Mediator, build_graphs, choose_mediator, load_mediators, pair_features, preferred_views
from .propagate import components, propagate
from .views import Committee, View, available_views

__all__ = ["cluster", "score_pairs", "Committee", "View", "Mediator", "load_mediators", "available_views",
           "knn", "components", "propagate", "default_views", "DEFAULT_VIEW"]

DEFAULT_VIEW = "dlib_resnet_v1"  # what a plain array of embeddings is taken to be


def default_views() -> tuple[str, ...]:
    """The committee views ``edgeface cluster`` computes: the best-value set whose models are installed."""
    return preferred_views(load_mediators(), available_views(
        [v for m in load_mediators() for v in m.views]))


def _check_views(embeddings: Union[np.ndarray, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    views = {DEFAULT_VIEW: embeddings} if isinstance(embeddings, np.ndarray) else dict(embeddings)
    if not views:
        raise InvalidArgumentError("give at least one view of embeddings")
    n = None
    out = {}
    for name, x in views.items():
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            raise InvalidDTypeError(f"embeddings of view {name!r} must be a float numpy array (N, D)")
        if x.ndim != 2 or x.shape[1] == 0:
            raise InvalidArgumentError(f"embeddings of view {name!r} must have shape (N, D), got {x.shape}")
        if n is not None and len(x) != n:
            raise InvalidArgumentError(f"every view needs one row per face: view {name!r} has {len(x)}, not {n}")
        n = len(x)
        if not np.isfinite(x).all():
            raise InvalidArgumentError(f"embeddings of view {name!r} contain NaN or infinite values")
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if (norms == 0).any():
            raise InvalidArgumentError(f"embeddings of view {name!r} contain all-zero rows")
        out[str(name)] = (x / norms).astype(np.float32)
    return out


def score_pairs(embeddings: Union[np.ndarray, Mapping[str, np.ndarray]], mediator: Mediator,
                k: Optional[int] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs (i, j) from every view's kNN graph and the mediator's same-person probability."""
    views = _check_views(embeddings)
    for name, dim in zip(mediator.views, mediator.dims):
        if name not in views:
            raise InvalidArgumentError(f"the mediator needs view {name!r}; given: {', '.join(views)}")
        if views[name].shape[1] != dim:
            raise InvalidArgumentError(f"view {name!r} must have {dim} dimensions, got {views[name].shape[1]}")
    graphs = build_graphs(views, mediator.views, k or mediator.k)
    i, j = candidate_pairs([g.indices for g in graphs])
    prob = np.empty(len(i), np.float32)
    for start in range(0, len(i), EDGE_BLOCK):  # features block by block: memory stays O(pairs), not O(pairs·features)
        stop = start + EDGE_BLOCK
        prob[start:stop] = mediator.predict(pair_features(graphs, i[start:stop], j[start:stop]))
    return i, j, prob


def cluster(embeddings: Union[np.ndarray, Mapping[str, np.ndarray]], *, threshold: Optional[float] = None,
            max_size: Optional[int] = None, k: Optional[int] = None, views: Optional[Sequence[str]] = None,
            mediator: Union[Mediator, str, None] = None) -> np.ndarray:
    """Person labels 0..C-1 for N faces (largest group first), -1 for faces in no group.

    ``embeddings``: an N×D array of unit vectors of the default embedder (``dlib_resnet_v1`` or its INT8
    twin), or {view name: N×D} for a committee (names like ``"dlib_resnet_v1+flip"``, see
    ``Committee``). The best cross-validated mediator whose views were all given is used, or the one
    for exactly ``views``. ``threshold`` (mediator probability to accept a pair), ``max_size`` (largest group
    before its weakest links are cut) and ``k`` (neighbours per face) default to the values tuned with
    the mediator on LFW people it was not trained on.
    """
    given = _check_views(embeddings)
    n = len(next(iter(given.values())))
    if isinstance(mediator, Mediator):
        chosen = mediator
    else:
        chosen = choose_mediator(load_mediators(mediator), list(given), views)
    if k is not None and k < 1:
        raise InvalidArgumentError(f"k must be at least 1, got {k}")
    if max_size is not None and max_size < 2:
        raise InvalidArgumentError(f"max_size must be at least 2, got {max_size}")
    if n < 2:
        return np.full(n, -1, np.int64)
    i, j, prob = score_pairs(given, chosen, k)
    return propagate(n, i, j, prob, chosen.threshold if threshold is None else float(threshold),
                     chosen.max_size if max_size is None else max_size)
