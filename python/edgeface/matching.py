"""Comparing embeddings: cosine similarity, and 1:1 verification at a calibrated threshold.

Thresholds are calibrated per model on LFW (``bench/accuracy_lfw.py --write-thresholds``) and stored in the
manifest: users choose an operating point by false-accept rate, not by a raw number.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

from .errors import InvalidArgumentError, InvalidDTypeError, ModelError
from .models import ModelSpec

OPERATING_POINTS = ("far_1e-2", "far_1e-3", "far_1e-4", "best_accuracy")
DEFAULT_OPERATING_POINT = "far_1e-3"


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError):  # ragged nested lists, objects numpy cannot hold
        raise InvalidDTypeError(f"{name} must be a float array of embeddings (N, D) or (D,), got a ragged "
                                f"or non-numeric {type(x).__name__}") from None
    if not np.issubdtype(arr.dtype, np.floating):
        raise InvalidDTypeError(
            f"{name} must be a float array of embeddings, got {arr.dtype}; pass the float32 vectors that "
            "Embedder.embed / edgeface.embed return"
        )
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


def check_threshold(threshold: Any) -> float:
    """A cosine threshold as a float: a real number in [-1, 1]. NaN (which makes every comparison false,
    so everyone "different"/"unknown") and values no cosine can reach are refused."""
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, numbers.Real):
        raise InvalidDTypeError(
            f"threshold must be a number in [-1, 1] or an operating point name {OPERATING_POINTS}, "
            f"got {type(threshold).__name__}"
        )
    value = float(threshold)
    if not -1.0 <= value <= 1.0:  # also false for NaN
        raise InvalidArgumentError(
            f"threshold must be a cosine similarity in [-1, 1], got {value}; or pass an operating point "
            f"name {OPERATING_POINTS} to use the calibrated thresholds"
        )
    return value


def threshold_for(spec: ModelSpec, operating_point: str = DEFAULT_OPERATING_POINT,
                  detector: Optional[str] = None) -> float:
    """The calibrated cosine threshold of ``spec`` at an operating point ("far_1e-3", ...).

    ``detector`` names the detector whose landmarks align the faces: a threshold calibrated with
    other detectors' landmarks is refused (``ModelError``) rather than silently used.
    """
    if not isinstance(operating_point, str) or operating_point not in OPERATING_POINTS:
        raise InvalidArgumentError(f"operating point must be one of {OPERATING_POINTS}, got {operating_point!r}")
    if detector is not None and detector not in spec.thresholds_detectors:
        raise ModelError(
            f"The thresholds of model {spec.name!r} were calibrated for faces aligned with "
            f"{', '.join(spec.thresholds_detectors)} landmarks, not {detector!r}. Calibrate them with "
            f"`python bench/accuracy_lfw.py --detectors {detector} --write-thresholds`, or pass a numeric threshold."
        )
    thresholds = spec.thresholds or {}
    if operating_point not in thresholds:
        raise ModelError(
            f"model {spec.name!r} has no calibrated threshold for {operating_point}: use it with a numeric cosine "
            f"threshold (edgeface.matching.verify(a, b, threshold=0.5)), or, for an imported model, import it "
            f"again with --calibrate PAIRS.tsv (your labelled photo pairs) to calibrate its operating points"
        )
    try:
        return check_threshold(thresholds[operating_point])
    except (InvalidArgumentError, InvalidDTypeError) as exc:
        raise ModelError(
            f"model {spec.name!r} has an unusable {operating_point} threshold in the manifest: {exc}"
        ) from None


@dataclass(frozen=True)
class Verification:
    score: float  # cosine similarity in [-1, 1]
    threshold: float
    same: bool


def verify(a: np.ndarray, b: np.ndarray, threshold: Union[float, str, None] = None,
           spec: Optional[ModelSpec] = None) -> Verification:
    """1:1 verification of two embeddings. ``threshold`` is a cosine value, or an operating point
    name resolved against ``spec``'s calibrated thresholds (default: FAR 1e-3)."""
    scores = cosine_similarity(a, b)
    if scores.shape != (1, 1):
        raise InvalidArgumentError(
            f"verify compares one embedding with one other, got {scores.shape[0]} and {scores.shape[1]}; "
            "use cosine_similarity (or edgeface.match) for many"
        )
    score = float(scores[0, 0])
    if threshold is None or isinstance(threshold, str):
        if spec is None:
            raise InvalidArgumentError("pass a numeric threshold, or the model spec to use its calibrated ones")
        value = threshold_for(spec, threshold or DEFAULT_OPERATING_POINT)
    else:
        value = check_threshold(threshold)
    return Verification(score=score, threshold=value, same=score >= value)
