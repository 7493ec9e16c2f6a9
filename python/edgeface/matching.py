"""Comparing embeddings: cosine similarity, and 1:1 verification at a calibrated threshold.

Thresholds are calibrated per model on LFW (``bench/accuracy_lfw.py --write-thresholds``) and stored in the
manifest: users choose an operating point by false-accept rate, not by a raw number.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from .errors import InvalidArgumentError, InvalidDTypeError, ModelError
from .models import ModelSpec

OPERATING_POINTS = ("far_1e-2", "far_1e-3", "far_1e-4", "best_accuracy")
DEFAULT_OPERATING_POINT = "far_1e-3"


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        raise InvalidDTypeError(f"{name} must be a float array of embeddings, got {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise InvalidArgumentError(f"{name} must have shape (D,) or (N, D), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"{name} contains NaN or infinity")
    return arr.astype(np.float32, copy=False)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity: (N, D) × (M, D) → (N, M); 1-D inputs count as one row."""
    ma, mb = _as_matrix(a, "a"), _as_matrix(b, "b")
    if ma.shape[1] != mb.shape[1]:
        raise InvalidArgumentError(f"embedding sizes differ: {ma.shape[1]} vs {mb.shape[1]}")
    ma = ma / np.maximum(np.linalg.norm(ma, axis=1, keepdims=True), 1e-12)
    mb = mb / np.maximum(np.linalg.norm(mb, axis=1, keepdims=True), 1e-12)
    return ma @ mb.T


def threshold_for(spec: ModelSpec, operating_point: str = DEFAULT_OPERATING_POINT) -> float:
    """The calibrated cosine threshold of ``spec`` at an operating point ("far_1e-3", ...)."""
    if operating_point not in OPERATING_POINTS:
        raise InvalidArgumentError(f"operating point must be one of {OPERATING_POINTS}, got {operating_point!r}")
    thresholds = spec.thresholds or {}
    if operating_point not in thresholds:
        raise ModelError(
            f"model {spec.name!r} has no calibrated threshold for {operating_point}: use it with a numeric cosine "
            f"threshold (edgeface.matching.verify(a, b, threshold=0.5)), or, for an imported model, import it "
            f"again with --calibrate PAIRS.tsv (your labelled photo pairs) to calibrate its operating points"
        )
    return float(thresholds[operating_point])


@dataclass(frozen=True)
class Verification:
    score: float  # cosine similarity in [-1, 1]
    threshold: float
    same: bool


def verify(a: np.ndarray, b: np.ndarray, threshold: Union[float, str, None] = None,
           spec: Optional[ModelSpec] = None) -> Verification:
    """1:1 verification of two embeddings. ``threshold`` is a cosine value, or an operating point
    name resolved against ``spec``'s calibrated thresholds (default: FAR 1e-3)."""
    score = float(cosine_similarity(a, b)[0, 0])
    if threshold is None or isinstance(threshold, str):
        if spec is None:
            raise InvalidArgumentError("pass a numeric threshold, or the model spec to use its calibrated ones")
        value = threshold_for(spec, threshold or DEFAULT_OPERATING_POINT)
    else:
        value = float(threshold)
    return Verification(score=score, threshold=value, same=score >= value)
