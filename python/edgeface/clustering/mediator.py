"""The CDP mediator: pair features describing how the committee's views agree on a neighbour pair, and
the small model (numpy only at inference) that turns them into a same-person probability.

The model ships as JSON (``edgeface/data/cdp_mediator_v1.json``; never a pickle): one entry per set
of views, so a caller with fewer views (no MobileFaceNet, no flipped crops) still gets a mediator
trained for exactly what it has. Training: ``tools/train_mediator.py``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from ..errors import InvalidArgumentError, ModelError
from .graph import knn

FORMAT = "edgeface-cdp-mediator"
FORMAT_VERSION = 1
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "cdp_mediator_v1.json"
# Edges whose features are computed together: bounds the E×k×k shared-neighbour comparison to ~20 MB.
EDGE_BLOCK = 50_000
PER_VIEW_FEATURES = ("cosine", "mutual", "either", "shared", "mean_nbr", "max_mean_nbr", "kth_nbr", "rel_cosine")


@dataclass(frozen=True)
class ViewGraph:
    """One view's unit vectors and its kNN graph."""

    vectors: np.ndarray
    indices: np.ndarray
    sims: np.ndarray


def build_graphs(views: Mapping[str, np.ndarray], names: Sequence[str], k: int) -> list[ViewGraph]:
    return [ViewGraph(views[n], *knn(views[n], k)) for n in names]


def _contains(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """rows: E×k neighbour lists; values: E → whether values[e] is in rows[e]."""
    return (rows == values[:, None]).any(axis=1)


def pair_features(graphs: Sequence[ViewGraph], i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """E×(views·8) features of the pairs (i[e], j[e]); names in ``feature_names``."""
    out = np.empty((len(i), len(graphs) * len(PER_VIEW_FEATURES)), np.float32)
    for start in range(0, len(i), EDGE_BLOCK):
        a, b = i[start:start + EDGE_BLOCK], j[start:start + EDGE_BLOCK]
        columns = []
        for g in graphs:
            k = max(g.indices.shape[1], 1)
            cos = np.einsum("ed,ed->e", g.vectors[a], g.vectors[b])
            in_a, in_b = _contains(g.indices[a], b), _contains(g.indices[b], a)
            shared = (g.indices[a][:, :, None] == g.indices[b][:, None, :]).any(axis=2).sum(axis=1) / k
            mean_a, mean_b = g.sims[a].mean(axis=1), g.sims[b].mean(axis=1)
            kth = 0.5 * (g.sims[a][:, -1] + g.sims[b][:, -1])
            columns += [cos, in_a & in_b, in_a | in_b, shared, 0.5 * (mean_a + mean_b),
                        np.maximum(mean_a, mean_b), kth, cos - np.maximum(mean_a, mean_b)]
        out[start:start + len(a)] = np.stack(columns, axis=1)
    return out


def feature_names(views: Sequence[str]) -> list[str]:
    return [f"{v}:{f}" for v in views for f in PER_VIEW_FEATURES]


@dataclass(frozen=True)
class Mediator:
    """Standardize → dense layers (ReLU between) → sigmoid. ``threshold`` and ``max_size`` are the
    propagation settings tuned with it; ``k`` the neighbour count its features were trained with."""

    views: tuple[str, ...]
    dims: tuple[int, ...]
    k: int
    mean: np.ndarray
    scale: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    threshold: float
    max_size: int
    info: Mapping[str, Any]

    def predict(self, features: np.ndarray) -> np.ndarray:
        x = (features - self.mean) / self.scale
        for n, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = x @ w + b
            if n < len(self.weights) - 1:
                x = np.maximum(x, 0.0)
        return (1.0 / (1.0 + np.exp(-np.clip(x[:, 0], -50, 50)))).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"views": list(self.views), "dims": list(self.dims), "k": self.k,
                "features": feature_names(self.views), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "layers": [{"weight": w.tolist(), "bias": b.tolist()} for w, b in zip(self.weights, self.biases)],
                "threshold": self.threshold, "max_size": self.max_size, "info": dict(self.info)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "Mediator":
        views = tuple(str(v) for v in raw["views"])
        n_features = len(views) * len(PER_VIEW_FEATURES)
        if list(raw["features"]) != feature_names(views):
            raise ValueError("feature list does not match this version's features")
        mean, scale = np.asarray(raw["mean"], np.float32), np.asarray(raw["scale"], np.float32)
        weights = tuple(np.asarray(layer["weight"], np.float32) for layer in raw["layers"])
        biases = tuple(np.asarray(layer["bias"], np.float32) for layer in raw["layers"])
        width = n_features
        for w, b in zip(weights, biases):
            if w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
                raise ValueError("layer shapes do not chain")
            width = w.shape[1]
        if mean.shape != (n_features,) or scale.shape != (n_features,) or width != 1 or not np.all(scale > 0):
            raise ValueError("standardization or output shape is wrong")
        return cls(views, tuple(int(d) for d in raw["dims"]), int(raw["k"]), mean, scale, weights, biases,
                   float(raw["threshold"]), int(raw["max_size"]), dict(raw.get("info", {})))


def save_mediators(path: Path, mediators: Sequence[Mediator], info: Mapping[str, Any]) -> None:
    """Write the mediator file atomically (temporary file in the same folder, then rename)."""
    import os
    import tempfile
    payload = {"format": FORMAT, "version": FORMAT_VERSION, "info": dict(info),
               "models": [m.to_dict() for m in mediators]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".mediator-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o644)  # package data: readable by everyone (mkstemp makes 0600)
            json.dump(payload, f, separators=(",", ":"))
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_mediators(path: Union[str, Path, None] = None) -> list[Mediator]:
    """Every mediator in the file (default: the one shipped with edgeface). Plain JSON, no pickle."""
    path = Path(path) if path is not None else DEFAULT_PATH
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the clustering mediator {path}: {exc}; reinstall edgeface") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or raw.get("version") != FORMAT_VERSION:
        raise ModelError(f"{path} is not an edgeface mediator file of version {FORMAT_VERSION}")
    try:
        return [Mediator.from_dict(m) for m in raw["models"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"the clustering mediator {path} is damaged ({exc}); reinstall edgeface") from exc


def choose_mediator(mediators: Sequence[Mediator], available: Sequence[str],
                    views: Optional[Sequence[str]] = None) -> Mediator:
    """The mediator for exactly ``views`` if given, else the best cross-validated one among those whose
    views are all available (more views are not always better: see docs/clustering.md)."""
    if views is not None:
        for m in mediators:
            if list(m.views) == list(views):
                return m
        known = "; ".join(", ".join(m.views) for m in mediators)
        raise InvalidArgumentError(f"no mediator is trained for views {list(views)}; trained view sets: {known}")
    usable = [m for m in mediators if set(m.views) <= set(available)]
    if not usable:
        known = "; ".join(", ".join(m.views) for m in mediators)
        raise InvalidArgumentError(f"no mediator fits the views given ({', '.join(available)}); "
                                   f"trained view sets: {known}")
    return max(usable, key=lambda m: (float(m.info.get("cv_bcubed_f", 0.0)), len(m.views)))


def preferred_views(mediators: Sequence[Mediator], installed: Sequence[str]) -> tuple[str, ...]:
    """The views to compute by default: those of the first mediator in the file (the file lists them
    best-value first) whose views are all installed."""
    for m in mediators:
        if set(m.views) <= set(installed):
            return m.views
    raise ModelError("no clustering mediator fits the installed embedding models; reinstall edgeface")
